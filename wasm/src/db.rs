//! The database: the file header with its two commit slots and god byte,
//! opening (and recovering after a crash), write transactions and their
//! commit, read snapshots, and the integrity check.
//!
//! A commit writes its new pages, then the slot that is not current, then
//! flips the god byte; the host's `sync` makes all of it durable at once.
//! When the process dies before that sync, opening verifies the pages the
//! newest slot's commits wrote since the last sync (each slot says which
//! commit was last synced before it) and falls back to the other slot when
//! they do not verify: the file holds exactly the last durable commit, or a
//! later one that made it to disk whole. Only a clean close persists the
//! allocation bitmap; after a crash it is rebuilt from the recovered trees.

use crate::alloc::Allocator;
use crate::checksum::xxh64;
use crate::error::{corrupt, Error, Result};
use crate::node::{self, get_u32, get_u64, put_u32, put_u64, Leaf, Ref, Value, BRANCH, INLINE_MAX, PAGE};
use crate::pager::{page_checksum, FxMap, Pager};
use crate::storage::Storage;

/// The first bytes of every database file.
pub const MAGIC: &[u8; 16] = b"\x89valkeyrie\r\n\x1a\n\0\0";
/// The file format this engine writes and reads.
pub const FORMAT: u32 = 1;
const GOD: usize = 24;
const HEADER_SUM: usize = 32;
const SLOT_AT: [usize; 2] = [64, 192];
const SLOT_LEN: usize = 128;
/// The part of page 0 a commit rewrites: one sector, so it is never torn
/// between the slots and the god byte on disks with 512-byte sectors.
const HEADER_WRITE: usize = 512;
/// Revisions a commit reserves ahead. Reads may see non-durable commits, so
/// after a crash the counter restarts above the reservation and a
/// revision a reader saw is never given again.
const REVISION_RESERVE: u64 = 1 << 20;

/// A committed state of the database.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct State {
    pub txn: u64,
    pub main: Ref,
    pub ttl: Ref,
    /// The highest revision given to a write.
    pub revision: u64,
    /// Entries in the main tree (expired ones included until swept).
    pub count: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    state: State,
    reserved: u64,
    /// The last transaction known durable when this slot was written.
    synced: u64,
    dir: Ref,
    page_count: u32,
}

fn put_ref(b: &mut [u8], at: usize, r: &Ref) {
    put_u32(b, at, r.pgno);
    put_u64(b, at + 4, r.checksum);
    put_u64(b, at + 12, r.txn);
}

fn get_ref(b: &[u8], at: usize) -> Ref {
    Ref { pgno: get_u32(b, at), checksum: get_u64(b, at + 4), txn: get_u64(b, at + 12) }
}

fn encode_slot(s: &Slot, b: &mut [u8]) {
    b.fill(0);
    put_u64(b, 0, s.state.txn);
    put_u64(b, 8, s.state.revision);
    put_u64(b, 16, s.reserved);
    put_u64(b, 24, s.synced);
    put_u64(b, 32, s.state.count);
    put_ref(b, 40, &s.state.main);
    put_ref(b, 60, &s.state.ttl);
    put_ref(b, 80, &s.dir);
    put_u32(b, 100, s.page_count);
    let sum = xxh64(&b[..120], 0x5107);
    put_u64(b, 120, sum);
}

fn decode_slot(b: &[u8]) -> Option<Slot> {
    if get_u64(b, 120) != xxh64(&b[..120], 0x5107) || get_u32(b, 100) == 0 {
        return None;
    }
    Some(Slot {
        state: State {
            txn: get_u64(b, 0),
            revision: get_u64(b, 8),
            count: get_u64(b, 32),
            main: get_ref(b, 40),
            ttl: get_ref(b, 60),
        },
        reserved: get_u64(b, 16),
        synced: get_u64(b, 24),
        dir: get_ref(b, 80),
        page_count: get_u32(b, 100),
    })
}

fn ttl_key(expires: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn live(l: &Leaf, now: u64) -> bool {
    l.expires == 0 || l.expires > now
}

enum Hit {
    Expired,
    Inline,
    Overflow(u32, u32, u64),
}

/// An open database.
pub struct Db {
    pub pager: Pager,
    pub alloc: Allocator,
    /// What readers see: the last commit that is durable (or, for
    /// non-durable commits, the last commit).
    pub visible: State,
    /// The last commit, maybe still waiting for its sync.
    pub latest: State,
    work: Option<State>,
    txn: u64,
    durable_txn: u64,
    in_flight: bool,
    /// Runs of committed pages the running transaction freed.
    pub freed: Vec<(u32, u32)>,
    /// What the last insert or delete replaced.
    pub old: Option<crate::btree::Old>,
    snapshots: FxMap<u32, State>,
    next_snapshot: u32,
    slots: [Slot; 2],
    primary: usize,
    reserved: u64,
    file_len: u64,
    poisoned: bool,
    entry: Vec<u8>,
}

impl Db {
    /// Opens the database in `storage`, creating it when the file is empty.
    pub fn open(mut storage: Box<dyn Storage>, cache_pages: usize) -> Result<Db> {
        let len = storage.len()?;
        if len == 0 {
            return Db::create(storage, cache_pages);
        }
        if len < HEADER_WRITE as u64 {
            return Err(Error::Foreign(format!("the file is only {} bytes long", len)));
        }
        let mut head = vec![0u8; HEADER_WRITE];
        storage.read(0, &mut head)?;
        if &head[..16] != MAGIC {
            return Err(Error::Foreign("it does not start with the engine's magic number".into()));
        }
        if get_u64(&head, HEADER_SUM) != xxh64(&head[..GOD], 0) {
            return corrupt("the file header does not match its checksum".into());
        }
        let format = get_u32(&head, 16);
        if format != FORMAT {
            return Err(Error::Invalid(format!(
                "the file has format version {}, and this engine reads version {}",
                format, FORMAT
            )));
        }
        if get_u32(&head, 20) as usize != PAGE {
            return corrupt(format!("the file has pages of {} bytes", get_u32(&head, 20)));
        }
        let slots = [
            decode_slot(&head[SLOT_AT[0]..SLOT_AT[0] + SLOT_LEN]),
            decode_slot(&head[SLOT_AT[1]..SLOT_AT[1] + SLOT_LEN]),
        ];
        let primary = (head[GOD] & 1) as usize;
        let mut db = Db::new(Pager::new(storage, cache_pages, node::sane), Allocator::new(), len);
        let mut reasons = Vec::new();
        for &s in &[primary, 1 - primary] {
            let slot = match slots[s] {
                Some(slot) => slot,
                None => {
                    reasons.push(format!("commit slot {} does not match its checksum", s));
                    continue;
                }
            };
            match db.recover(&slot) {
                Ok(()) => {
                    db.slots = [slots[0].unwrap_or_default(), slots[1].unwrap_or_default()];
                    db.slots[s] = slot;
                    db.primary = s;
                    let mut state = slot.state;
                    state.revision = state.revision.max(slot.reserved);
                    db.reserved = slot.reserved;
                    db.visible = state;
                    db.latest = state;
                    db.durable_txn = state.txn;
                    return Ok(db);
                }
                Err(e) => {
                    reasons.push(format!("commit {} in slot {}: {}", slot.state.txn, s, e));
                    db.pager.reset_cache();
                }
            }
        }
        corrupt(format!("no commit verifies ({})", reasons.join("; ")))
    }

    fn new(pager: Pager, alloc: Allocator, file_len: u64) -> Db {
        Db {
            pager,
            alloc,
            visible: State::default(),
            latest: State::default(),
            work: None,
            txn: 0,
            durable_txn: 0,
            in_flight: false,
            freed: Vec::new(),
            old: None,
            snapshots: FxMap::default(),
            next_snapshot: 1,
            slots: [Slot::default(), Slot::default()],
            primary: 0,
            reserved: 0,
            file_len,
            poisoned: false,
            entry: Vec::new(),
        }
    }

    fn create(storage: Box<dyn Storage>, cache_pages: usize) -> Result<Db> {
        let mut db = Db::new(Pager::new(storage, cache_pages, node::sane), Allocator::new(), 0);
        db.slots[0] = Slot { page_count: 1, ..Slot::default() };
        db.slots[1] = Slot::default();
        let mut page = vec![0u8; PAGE];
        db.header(&mut page, 0);
        page[SLOT_AT[1]..SLOT_AT[1] + SLOT_LEN].fill(0);
        db.pager.storage.write(0, &page)?;
        db.pager.storage.sync()?;
        db.file_len = PAGE as u64;
        Ok(db)
    }

    /// Fills the header region of page 0 with the current slots and `god`.
    fn header(&self, b: &mut [u8], god: usize) {
        b[..HEADER_WRITE].fill(0);
        b[..16].copy_from_slice(MAGIC);
        put_u32(b, 16, FORMAT);
        put_u32(b, 20, PAGE as u32);
        let sum = xxh64(&b[..GOD], 0);
        put_u64(b, HEADER_SUM, sum);
        b[GOD] = god as u8;
        for s in 0..2 {
            encode_slot(&self.slots[s], &mut b[SLOT_AT[s]..SLOT_AT[s] + SLOT_LEN]);
        }
    }

    /// Loads the allocator of `slot` and verifies what it wrote since its
    /// last sync.
    fn recover(&mut self, slot: &Slot) -> Result<()> {
        if self.file_len < slot.page_count as u64 * PAGE as u64 {
            return corrupt(format!(
                "the file is {} bytes long but its commit needs {} (was it truncated?)",
                self.file_len,
                slot.page_count as u64 * PAGE as u64
            ));
        }
        self.verify_recent(slot.state.main, slot.synced)?;
        self.verify_recent(slot.state.ttl, slot.synced)?;
        if slot.dir.is_empty() {
            self.alloc = Allocator::rebuild(slot.page_count);
            self.mark_tree(slot.state.main)?;
            self.mark_tree(slot.state.ttl)?;
        } else {
            self.alloc = Allocator::load(&mut self.pager, slot.dir, slot.page_count)?;
        }
        Ok(())
    }

    /// Marks the pages of the tree at `r` in use (rebuilding the bitmap).
    fn mark_tree(&mut self, r: Ref) -> Result<()> {
        if r.is_empty() {
            return Ok(());
        }
        if !self.alloc.mark_used(r.pgno, 1) {
            return corrupt(format!("page {} is referred to twice or lies beyond the file", r.pgno));
        }
        let (kids, runs) = {
            let p = self.node(&r)?;
            let mut kids = Vec::new();
            let mut runs = Vec::new();
            for i in 0..node::count(p) {
                if node::kind(p) == BRANCH {
                    kids.push(node::child(p, i));
                } else if let Value::Overflow { len, pgno, .. } = node::leaf(p, i).value {
                    runs.push((pgno, crate::btree::overflow_pages(len)));
                }
            }
            (kids, runs)
        };
        for (pgno, n) in runs {
            if !self.alloc.mark_used(pgno, n) {
                return corrupt(format!("the value at page {} overlaps other pages", pgno));
            }
        }
        for c in kids {
            self.mark_tree(c)?;
        }
        Ok(())
    }

    fn verify_recent(&mut self, r: Ref, synced: u64) -> Result<()> {
        if r.is_empty() || r.txn <= synced {
            return Ok(());
        }
        let (kids, values) = {
            let p = self.node(&r)?;
            let mut kids = Vec::new();
            let mut values = Vec::new();
            for i in 0..node::count(p) {
                if node::kind(p) == BRANCH {
                    let c = node::child(p, i);
                    if c.txn > synced {
                        kids.push(c);
                    }
                } else if let Value::Overflow { len, pgno, checksum, txn } = node::leaf(p, i).value {
                    if txn > synced {
                        values.push((len, pgno, checksum));
                    }
                }
            }
            (kids, values)
        };
        let mut buf = Vec::new();
        for (len, pgno, checksum) in values {
            buf.clear();
            self.read_overflow(len, pgno, checksum, &mut buf)?;
        }
        for c in kids {
            self.verify_recent(c, synced)?;
        }
        Ok(())
    }

    /// Appends the overflow value at `pgno` to `out`, verified.
    pub fn read_overflow(&mut self, len: u32, pgno: u32, checksum: u64, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + len as usize, 0);
        self.pager.storage.read(pgno as u64 * PAGE as u64, &mut out[start..])?;
        if xxh64(&out[start..], pgno as u64) != checksum {
            out.truncate(start);
            return corrupt(format!("the value in pages from {} does not match its checksum", pgno));
        }
        Ok(())
    }

    /// The running transaction's id (0: none).
    #[inline]
    pub fn txn_id(&self) -> u64 {
        self.txn
    }

    fn state_of(&self, snapshot: u32) -> Result<State> {
        if snapshot == 0 {
            return Ok(self.visible);
        }
        self.snapshots
            .get(&snapshot)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("snapshot {} is not open", snapshot)))
    }

    /// Pins the visible state for a reader; returns its id.
    pub fn snapshot(&mut self) -> u32 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.insert(id, self.visible);
        id
    }

    /// Lets go of a snapshot.
    pub fn release(&mut self, id: u32) {
        self.snapshots.remove(&id);
        self.reclaim();
    }

    // Pages freed by a transaction are reused once it is durable and no
    // reader's state is older than it.
    fn reclaim(&mut self) {
        let mut oldest = self.visible.txn;
        for s in self.snapshots.values() {
            oldest = oldest.min(s.txn);
        }
        self.alloc.release(oldest.min(self.durable_txn));
    }

    /// Reads `key` at a snapshot (0: the visible state). On a hit `out`
    /// holds: revision u64, expiry f64 (0: none), the value.
    pub fn get(&mut self, snapshot: u32, key: &[u8], now: u64, out: &mut Vec<u8>) -> Result<bool> {
        let state = self.state_of(snapshot)?;
        out.clear();
        let hit = self.find(state.main, key, |l| {
            if !live(&l, now) {
                return Hit::Expired;
            }
            out.extend_from_slice(&l.revision.to_le_bytes());
            out.extend_from_slice(&(l.expires as f64).to_le_bytes());
            match l.value {
                Value::Inline(v) => {
                    out.extend_from_slice(v);
                    Hit::Inline
                }
                Value::Overflow { len, pgno, checksum, .. } => Hit::Overflow(len, pgno, checksum),
            }
        })?;
        match hit {
            None | Some(Hit::Expired) => Ok(false),
            Some(Hit::Inline) => Ok(true),
            Some(Hit::Overflow(len, pgno, checksum)) => {
                self.read_overflow(len, pgno, checksum, out)?;
                Ok(true)
            }
        }
    }

    /// Lists live entries whose key starts with `prefix` (after the key
    /// `after`, if given), into `out`: a header (more u32, count u32), then
    /// per entry key_len u32, value_len u32, revision u64, expiry f64, key,
    /// value. Stops after `max_bytes` of output or `max_count` entries (0:
    /// no limit); `more` says whether it stopped early.
    pub fn scan_prefix(
        &mut self,
        snapshot: u32,
        prefix: &[u8],
        after: Option<&[u8]>,
        now: u64,
        max_bytes: usize,
        max_count: u32,
        out: &mut Vec<u8>,
    ) -> Result<u32> {
        let state = self.state_of(snapshot)?;
        out.clear();
        out.extend_from_slice(&[0u8; 8]);
        let mut count = 0u32;
        let mut more = false;
        let from = after.unwrap_or(prefix);
        self.scan(state.main, from, &mut |db, l| {
            if !l.key.starts_with(prefix) {
                return Ok(false);
            }
            if Some(l.key) == after || !live(&l, now) {
                return Ok(true);
            }
            if count > 0 && (out.len() >= max_bytes || count == max_count) {
                more = true;
                return Ok(false);
            }
            let vlen = match l.value {
                Value::Inline(v) => v.len() as u32,
                Value::Overflow { len, .. } => len,
            };
            out.extend_from_slice(&(l.key.len() as u32).to_le_bytes());
            out.extend_from_slice(&vlen.to_le_bytes());
            out.extend_from_slice(&l.revision.to_le_bytes());
            out.extend_from_slice(&(l.expires as f64).to_le_bytes());
            out.extend_from_slice(l.key);
            match l.value {
                Value::Inline(v) => out.extend_from_slice(v),
                Value::Overflow { len, pgno, checksum, .. } => db.read_overflow(len, pgno, checksum, out)?,
            }
            count += 1;
            Ok(true)
        })?;
        put_u32(out, 0, more as u32);
        put_u32(out, 4, count);
        Ok(count)
    }

    fn writable_state(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.work.is_none() {
            return Err(Error::Invalid("no write transaction is open".into()));
        }
        Ok(())
    }

    /// Marks the database unwritable after a failed write.
    fn poison(&mut self) {
        self.poisoned = true;
        self.pager.clear_dirty();
        self.work = None;
        self.txn = 0;
    }

    fn guarded<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        self.writable_state()?;
        let result = f(self);
        if result.is_err() {
            self.poison();
        }
        result
    }

    fn work(&mut self) -> &mut State {
        self.work.as_mut().unwrap()
    }

    /// Starts the write transaction (one at a time).
    pub fn begin(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.work.is_some() {
            return Err(Error::Invalid("a write transaction is already open".into()));
        }
        if self.in_flight {
            return Err(Error::Invalid("the last commit is still waiting for its sync".into()));
        }
        self.reclaim();
        let txn = self.latest.txn + 1;
        self.work = Some(State { txn, ..self.latest });
        self.txn = txn;
        self.freed.clear();
        Ok(())
    }

    /// Starts one caller's operation in the transaction: its writes get a
    /// new revision, returned.
    pub fn op(&mut self) -> Result<u64> {
        self.writable_state()?;
        let w = self.work();
        w.revision += 1;
        Ok(w.revision)
    }

    /// The revision of `key` in the transaction's state, if it is live.
    pub fn check(&mut self, key: &[u8], now: u64) -> Result<Option<u64>> {
        self.writable_state()?;
        let main = self.work.unwrap().main;
        self.guarded(|db| Ok(db.find(main, key, |l| if live(&l, now) { Some(l.revision) } else { None })?.flatten()))
    }

    /// Writes `value` at `key` with the current operation's revision and an
    /// expiry (0: none). Returns whether it replaced a live entry.
    pub fn put(&mut self, key: &[u8], value: &[u8], expires: u64, now: u64) -> Result<bool> {
        self.guarded(|db| {
            let revision = db.work().revision;
            db.put_inner(key, value, revision, expires, now)
        })
    }

    /// Like `put`, with the revision the glue numbered the operation with
    /// (it counts operations itself, sparing a call per operation).
    pub fn put_at(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        self.writable_state()?;
        self.raise_revision(revision);
        self.guarded(|db| db.put_inner(key, value, revision, expires, now))
    }

    /// The revision of the transaction's last operation.
    pub fn revision(&self) -> Result<u64> {
        self.writable_state()?;
        Ok(self.work.unwrap().revision)
    }

    /// Makes the transaction's revision at least `revision`.
    pub fn raise_revision(&mut self, revision: u64) {
        if let Some(w) = self.work.as_mut() {
            w.revision = w.revision.max(revision);
        }
    }

    fn put_inner(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        let replaced = self.put_entry(key, value, revision, expires, now)?;
        self.pager.spill(|p| node::kind(p) == node::LEAF)?;
        Ok(replaced)
    }

    fn put_entry(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        if key.is_empty() || key.len() > node::KEY_MAX {
            return Err(Error::Invalid(format!("keys must be 1 to {} bytes long", node::KEY_MAX)));
        }
        if value.len() > u32::MAX as usize {
            return Err(Error::Invalid("the value is too large".into()));
        }
        let w = *self.work();
        let v = if value.len() > INLINE_MAX {
            let n = crate::btree::overflow_pages(value.len() as u32);
            let pgno = self.alloc.alloc(n)?;
            for p in pgno..pgno + n {
                self.pager.forget(p);
            }
            self.pager.storage.write(pgno as u64 * PAGE as u64, value)?;
            Value::Overflow { len: value.len() as u32, pgno, checksum: xxh64(value, pgno as u64), txn: w.txn }
        } else {
            Value::Inline(value)
        };
        let mut entry = std::mem::take(&mut self.entry);
        node::leaf_entry(&mut entry, key, revision, expires, v);
        self.old = None;
        let main = self.tree_insert(w.main, key, &entry);
        self.entry = entry;
        self.work().main = main?;
        let old = self.old.take();
        match old {
            Some(o) => {
                if let Some((pgno, n, txn)) = o.overflow {
                    self.free_pages(pgno, n, txn);
                }
                if o.expires != 0 {
                    self.ttl_remove(o.expires, key)?;
                }
            }
            None => self.work().count += 1,
        }
        if expires != 0 {
            let k = ttl_key(expires, key);
            node::leaf_entry(&mut self.entry, &k, 0, 0, Value::Inline(b""));
            let entry = std::mem::take(&mut self.entry);
            let root = self.work().ttl;
            let ttl = self.tree_insert(root, &k, &entry);
            self.entry = entry;
            self.work().ttl = ttl?;
        }
        Ok(old.map_or(false, |o| o.expires == 0 || o.expires > now))
    }

    fn ttl_remove(&mut self, expires: u64, key: &[u8]) -> Result<()> {
        let root = self.work().ttl;
        if let Some(r) = self.tree_delete(root, &ttl_key(expires, key))? {
            self.work().ttl = r;
        }
        self.old = None;
        Ok(())
    }

    /// Deletes `key`. Returns whether a live entry was deleted.
    pub fn delete(&mut self, key: &[u8], now: u64) -> Result<bool> {
        self.guarded(|db| db.delete_inner(key, now))
    }

    fn delete_inner(&mut self, key: &[u8], now: u64) -> Result<bool> {
        let deleted = self.delete_entry(key, now)?;
        self.pager.spill(|p| node::kind(p) == node::LEAF)?;
        Ok(deleted)
    }

    fn delete_entry(&mut self, key: &[u8], now: u64) -> Result<bool> {
        self.old = None;
        let root = self.work().main;
        let main = match self.tree_delete(root, key)? {
            None => return Ok(false),
            Some(r) => r,
        };
        self.work().main = main;
        self.work().count -= 1;
        let o = self.old.take().unwrap();
        if let Some((pgno, n, txn)) = o.overflow {
            self.free_pages(pgno, n, txn);
        }
        if o.expires != 0 {
            self.ttl_remove(o.expires, key)?;
        }
        Ok(o.expires == 0 || o.expires > now)
    }

    /// Deletes `key` (unless empty) and every key starting with `dir`. The
    /// live keys deleted are appended to `out` (length u32, bytes) when given.
    pub fn delete_tree(&mut self, key: &[u8], dir: &[u8], now: u64, out: &mut Vec<u8>, collect: bool) -> Result<u32> {
        self.guarded(|db| {
            let mut n = 0;
            let note = |out: &mut Vec<u8>, k: &[u8]| {
                if collect {
                    out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    out.extend_from_slice(k);
                }
            };
            if !key.is_empty() && db.delete_inner(key, now)? {
                n += 1;
                note(out, key);
            }
            // Deleting while walking would invalidate the walk: take batches.
            loop {
                let root = db.work().main;
                let mut batch: Vec<Vec<u8>> = Vec::new();
                db.scan(root, dir, &mut |_, l| {
                    if !l.key.starts_with(dir) {
                        return Ok(false);
                    }
                    batch.push(l.key.to_vec());
                    Ok(batch.len() < 1024)
                })?;
                if batch.is_empty() {
                    return Ok(n);
                }
                for k in batch {
                    if db.delete_inner(&k, now)? {
                        n += 1;
                        note(out, &k);
                    }
                }
            }
        })
    }

    /// Deletes up to `max` expired entries; their keys go to `out` (length
    /// u32, bytes). Returns how many.
    pub fn sweep(&mut self, now: u64, max: u32, out: &mut Vec<u8>) -> Result<u32> {
        self.guarded(|db| {
            let root = db.work().ttl;
            let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
            db.scan(root, b"", &mut |_, l| {
                let expires = u64::from_be_bytes([l.key[0], l.key[1], l.key[2], l.key[3], l.key[4], l.key[5], l.key[6], l.key[7]]);
                if expires > now || due.len() as u32 >= max {
                    return Ok(false);
                }
                due.push((expires, l.key[8..].to_vec()));
                Ok(true)
            })?;
            let mut n = 0;
            for (expires, key) in due {
                let main = db.work().main;
                let current = db.find(main, &key, |l| l.expires)?;
                if current == Some(expires) {
                    db.delete_inner(&key, now)?;
                    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                    out.extend_from_slice(&key);
                    n += 1;
                } else {
                    db.ttl_remove(expires, &key)?;
                }
            }
            Ok(n)
        })
    }

    /// The earliest expiry of any entry (ms since the epoch), or 0.
    pub fn next_expiry(&mut self) -> Result<u64> {
        let root = self.work.unwrap_or(self.latest).ttl;
        let mut first = 0;
        self.scan(root, b"", &mut |_, l| {
            first = u64::from_be_bytes([l.key[0], l.key[1], l.key[2], l.key[3], l.key[4], l.key[5], l.key[6], l.key[7]]);
            Ok(false)
        })?;
        Ok(first)
    }

    /// Commits the transaction: writes its pages and, when `durable`, the
    /// allocation bitmap and a commit slot. Returns whether the host must
    /// now sync (then call `synced`); until then readers see the state
    /// before this commit.
    pub fn commit(&mut self, durable: bool) -> Result<bool> {
        self.guarded(|db| db.commit_inner(durable, false))
    }

    fn commit_inner(&mut self, durable: bool, clean: bool) -> Result<bool> {
        let mut w = self.work.unwrap();
        w.main = self.finalize(w.main)?;
        w.ttl = self.finalize(w.ttl)?;
        let durable = durable || w.revision > self.reserved;
        let mut freed = std::mem::take(&mut self.freed);
        // The bitmap is persisted by a clean close only; any other commit
        // makes the persisted one stale.
        let dir = if clean {
            self.alloc.persist(&mut self.pager, w.txn, &mut freed)?
        } else {
            self.alloc.forget_persisted(&mut freed);
            Ref::EMPTY
        };
        self.pager.flush()?;
        let needed = self.alloc.page_count as u64 * PAGE as u64;
        if needed > self.file_len {
            self.pager.storage.set_len(needed)?;
            self.file_len = needed;
        }
        self.alloc.defer(w.txn, &freed);
        if durable {
            let reserved = if clean { w.revision } else { w.revision + REVISION_RESERVE };
            let target = 1 - self.primary;
            self.slots[target] = Slot {
                state: w,
                reserved,
                synced: self.durable_txn,
                dir,
                page_count: self.alloc.page_count,
            };
            let mut head = vec![0u8; HEADER_WRITE];
            self.header(&mut head, target);
            self.pager.storage.write(0, &head)?;
            self.primary = target;
            self.reserved = reserved;
            self.in_flight = true;
        }
        self.latest = w;
        self.work = None;
        self.txn = 0;
        if !durable {
            self.visible = w;
            self.reclaim();
        }
        Ok(durable)
    }

    /// Syncs through the host's `sync` call (the glue may instead sync
    /// asynchronously itself, then call `synced`).
    pub fn sync(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let result = self.pager.storage.sync();
        if result.is_err() {
            self.poison();
        }
        result
    }

    /// Records that the last commit is durable: readers now see it.
    pub fn synced(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.in_flight {
            self.in_flight = false;
            self.durable_txn = self.latest.txn;
            self.visible = self.latest;
            self.reclaim();
        }
        Ok(())
    }

    /// Records that the sync of the last commit failed.
    pub fn sync_failed(&mut self) {
        self.poison();
    }

    fn checkpoint(&mut self, clean: bool) -> Result<()> {
        self.begin()?;
        let result = self.commit_inner(true, clean);
        if result.is_err() {
            self.poison();
        }
        result?;
        self.sync()?;
        self.synced()
    }

    /// Makes everything durable, gives back free pages at the end of the
    /// file, and leaves a commit slot that needs no recovery.
    pub fn close(&mut self) -> Result<()> {
        if self.poisoned {
            return Ok(());
        }
        if self.work.is_some() || self.in_flight {
            return Err(Error::Invalid("a commit is still running".into()));
        }
        self.snapshots.clear();
        // The first checkpoint makes every commit durable; the second's slot
        // then says nothing needs verifying.
        self.checkpoint(false)?;
        self.alloc.release(u64::MAX);
        let before = self.alloc.page_count;
        self.alloc.shrink();
        self.checkpoint(true)?;
        if self.alloc.page_count < before {
            let len = self.alloc.page_count as u64 * PAGE as u64;
            self.pager.storage.set_len(len)?;
            self.pager.storage.sync()?;
            self.file_len = len;
        }
        Ok(())
    }

    /// Numbers about the database, as JSON.
    pub fn stats(&self) -> String {
        format!(
            "{{\"txn\":{},\"revision\":{},\"keys\":{},\"pages\":{},\"freePages\":{},\"pendingPages\":{},\"cachedPages\":{},\"cachePages\":{},\"cacheMisses\":{},\"fileBytes\":{},\"snapshots\":{}}}",
            self.latest.txn,
            self.latest.revision,
            self.latest.count,
            self.alloc.page_count,
            self.alloc.free_pages(),
            self.alloc.pending_pages(),
            self.pager.cached(),
            self.pager.capacity(),
            self.pager.misses,
            self.file_len,
            self.snapshots.len()
        )
    }

    /// The integrity check: reads every page of the last commit from the
    /// host, verifies checksums, key order and counts, and compares the
    /// pages reached with the allocation bitmap. Returns a JSON report.
    pub fn verify(&mut self) -> Result<String> {
        if self.work.is_some() || self.in_flight {
            return Err(Error::Invalid("a commit is still running".into()));
        }
        let mut v = Verifier {
            seen: vec![false; self.alloc.page_count as usize],
            errors: Vec::new(),
            keys: 0,
            expiring: 0,
            ttl_entries: 0,
        };
        v.mark(self, 0, 1);
        let state = self.latest;
        self.verify_tree(&mut v, state.main, None, None, false);
        self.verify_tree(&mut v, state.ttl, None, None, true);
        for r in self.alloc.chunk_refs() {
            if !r.is_empty() {
                v.mark(self, r.pgno, 1);
            }
        }
        if !self.alloc.dir.is_empty() {
            let dir = self.alloc.dir.pgno;
            v.mark(self, dir, 1);
        }
        if v.keys != state.count {
            v.errors.push(format!("the tree holds {} keys, the commit says {}", v.keys, state.count));
        }
        if v.expiring != v.ttl_entries {
            v.errors.push(format!("{} keys expire but the expiry index has {}", v.expiring, v.ttl_entries));
        }
        let mut leaked = 0u64;
        let mut free = 0u64;
        for p in 0..self.alloc.page_count {
            let used = self.alloc.is_used(p);
            if used && !v.seen[p as usize] {
                leaked += 1;
                if leaked <= 5 {
                    v.errors.push(format!("page {} is marked in use but nothing refers to it", p));
                }
            }
            if !self.alloc.is_busy(p) {
                free += 1;
            }
        }
        let errors: Vec<String> = v.errors.iter().map(|e| format!("\"{}\"", e.replace('"', "'"))).collect();
        Ok(format!(
            "{{\"ok\":{},\"pages\":{},\"freePages\":{},\"leakedPages\":{},\"keys\":{},\"errors\":[{}]}}",
            v.errors.is_empty(),
            self.alloc.page_count,
            free,
            leaked,
            v.keys,
            errors.join(",")
        ))
    }

    fn verify_tree(&mut self, v: &mut Verifier, r: Ref, low: Option<Vec<u8>>, high: Option<Vec<u8>>, ttl: bool) -> Option<usize> {
        if r.is_empty() {
            return Some(0);
        }
        if !v.mark(self, r.pgno, 1) {
            return None;
        }
        let mut page = vec![0u8; PAGE];
        if let Err(e) = self.pager.read_raw(r.pgno, &mut page) {
            v.errors.push(format!("page {}: {}", r.pgno, e));
            return None;
        }
        if page_checksum(&page, r.pgno) != r.checksum {
            v.errors.push(format!("page {} does not match its checksum", r.pgno));
            return None;
        }
        if !node::sane(&page) {
            v.errors.push(format!("page {} is not a valid tree page", r.pgno));
            return None;
        }
        let n = node::count(&page);
        for i in 0..n {
            let k = node::key(&page, i);
            let skip = node::kind(&page) == BRANCH && i == 0;
            if !skip {
                if i > (node::kind(&page) == BRANCH) as usize && node::key(&page, i - 1) >= k {
                    v.errors.push(format!("page {} has keys out of order", r.pgno));
                }
                if low.as_deref().map_or(false, |l| k < l) || high.as_deref().map_or(false, |h| k >= h) {
                    v.errors.push(format!("page {} has a key outside its parent's range", r.pgno));
                }
            }
        }
        if node::kind(&page) == BRANCH {
            let mut depth = None;
            for i in 0..n {
                let lo = if i == 0 { low.clone() } else { Some(node::key(&page, i).to_vec()) };
                let hi = if i + 1 < n { Some(node::key(&page, i + 1).to_vec()) } else { high.clone() };
                let d = self.verify_tree(v, node::child(&page, i), lo, hi, ttl)?;
                if depth.map_or(false, |x| x != d) {
                    v.errors.push(format!("page {} has subtrees of different depths", r.pgno));
                }
                depth = Some(d);
            }
            return depth.map(|d| d + 1);
        }
        for i in 0..n {
            let l = node::leaf(&page, i);
            if ttl {
                v.ttl_entries += 1;
                continue;
            }
            v.keys += 1;
            if l.expires != 0 {
                v.expiring += 1;
            }
            if let Value::Overflow { len, pgno, checksum, .. } = l.value {
                let pages = crate::btree::overflow_pages(len);
                v.mark(self, pgno, pages);
                let mut buf = Vec::new();
                if let Err(e) = self.read_overflow(len, pgno, checksum, &mut buf) {
                    v.errors.push(e.to_string());
                }
            }
        }
        Some(0)
    }
}

struct Verifier {
    seen: Vec<bool>,
    errors: Vec<String>,
    keys: u64,
    expiring: u64,
    ttl_entries: u64,
}

impl Verifier {
    fn mark(&mut self, db: &Db, pgno: u32, n: u32) -> bool {
        for p in pgno..pgno + n {
            if p as usize >= self.seen.len() {
                self.errors.push(format!("page {} is beyond the end of the file", p));
                return false;
            }
            if self.seen[p as usize] {
                self.errors.push(format!("page {} is referred to twice", p));
                return false;
            }
            self.seen[p as usize] = true;
            if !db.alloc.is_used(p) {
                self.errors.push(format!("page {} is in use but marked free", p));
            }
        }
        true
    }
}
