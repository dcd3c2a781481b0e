//! Opening a file: creating a new database, choosing the commit slot to
//! open, and recovering it after a crash.
//!
//! Choosing a slot. A commit writes its pages, then the slot that is not
//! current and the god byte naming it in one one-sector write, then syncs.
//! So the slot with the higher transaction id is the newest commit, and it
//! is the right one to open if it verifies: its pages written since the
//! last sync it knew of (each slot records that) are all read and checked.
//! If they do not verify, the commit never became durable (the process died
//! before its sync), and the older slot, the last durable commit, is opened.
//! The god byte is not trusted to choose: a flipped bit in it would open the
//! older commit and silently lose the newest.
//!
//! Damage to the slots themselves. A slot with one flipped bit is repaired
//! through its checksum (see `pager/header.rs`). A slot damaged beyond that
//! cannot be read, and what happens depends on which slot it is:
//!
//! - The god byte names it (it is the current slot): the header write is
//!   one sector, so a crash cannot leave the god byte naming a slot that
//!   was not written whole; this is damage to the last commit, and opening
//!   the older slot would silently lose it. Opening fails with a corruption
//!   error instead.
//! - It is the older slot: the newest commit is opened as usual; the damage
//!   is reported by the integrity check.
//!
//! What opening found and worked around (a repaired slot, a damaged god
//! byte, a newest commit that did not verify) is kept in `Db::recovery` and
//! listed by the integrity check.
//!
//! Only a clean close persists the allocation bitmap; after a crash it is
//! rebuilt from the recovered trees.

use super::versions::Versions;
use super::Db;
use crate::alloc::Allocator;
use crate::error::{corrupt, Result};
use crate::node::{self, Value, BRANCH};
use crate::page::{pages_for, Ref, PAGE};
use crate::pager::header::{Header, Read, Slot};
use crate::pager::Pager;
use crate::storage::Storage;
use crate::store::PageStore;

impl Db {
    /// Opens the database in `storage`, creating it when the file is empty.
    pub fn open(storage: Box<dyn Storage>, cache_pages: usize) -> Result<Db> {
        let mut pager = Pager::new(storage, cache_pages, node::sane);
        let len = pager.file_len()?;
        if len == 0 {
            return Db::create(pager);
        }
        let header = pager.read_header()?;
        let mut db = Db::new(PageStore::new(pager, Allocator::new()), len);
        db.open_slot(&header)?;
        Ok(db)
    }

    fn create(mut pager: Pager) -> Result<Db> {
        let first = Slot { page_count: 1, ..Slot::default() };
        let slots = [first, Slot::default()];
        pager.create_file(&slots)?;
        let mut db = Db::new(PageStore::new(pager, Allocator::new()), PAGE as u64);
        db.slots = slots;
        Ok(db)
    }

    /// Chooses the slot to open (see the module's comment) and recovers it.
    fn open_slot(&mut self, header: &Header) -> Result<()> {
        let mut notes = Vec::new();
        let named = header.named();
        if named.is_none() {
            notes.push(format!("the header's god byte is damaged ({:#04x}); the newest commit was opened", header.god));
        }
        for (s, read) in header.slots.iter().enumerate() {
            match *read {
                Read::Repaired(slot, bit) => notes.push(format!(
                    "commit slot {} (commit {}) had bit {} flipped and was repaired",
                    s, slot.state.txn, bit
                )),
                Read::Damaged if named != Some(s) => {
                    notes.push(format!("commit slot {} (not the current one) is damaged", s))
                }
                _ => {}
            }
        }
        if let Some(n) = named {
            if header.slots[n].slot().is_none() && header.slots[1 - n].slot().is_some() {
                return corrupt(format!(
                    "commit slot {}, the current one, is damaged beyond repair; opening the older commit in slot {} would lose the last commit",
                    n,
                    1 - n
                ));
            }
        }
        let mut order: Vec<(usize, Slot)> = (0..2).filter_map(|s| header.slots[s].slot().map(|slot| (s, slot))).collect();
        // The newest first; on a tie (never written so), the named one.
        order.sort_by_key(|&(s, slot)| (std::cmp::Reverse(slot.state.txn), Some(s) != named));
        let mut reasons = Vec::new();
        for &(s, slot) in &order {
            if let Err(e) = self.recover(&slot) {
                reasons.push(format!("commit {} in slot {}: {}", slot.state.txn, s, e));
                self.store.pager.reset_cache();
                continue;
            }
            if named.map_or(false, |n| n != s) && reasons.is_empty() {
                notes.push(format!(
                    "the header's god byte names commit slot {}, but commit {} in slot {} is newer and verifies; it was opened",
                    1 - s,
                    slot.state.txn,
                    s
                ));
            }
            if !reasons.is_empty() {
                notes.push(format!(
                    "the newest commit did not verify ({}), so commit {} before it was opened: the newest was not durable (or was damaged)",
                    reasons.join("; "),
                    slot.state.txn
                ));
            }
            self.slots = [header.slots[0].slot().unwrap_or_default(), header.slots[1].slot().unwrap_or_default()];
            self.primary = s;
            let (versions, revision) = Versions::restore(&slot);
            self.versions = versions;
            let state = super::State { revision, ..slot.state };
            self.visible = state;
            self.latest = state;
            self.durable_txn = state.txn;
            self.recovery = notes;
            return Ok(());
        }
        for (s, read) in header.slots.iter().enumerate() {
            if read.slot().is_none() {
                reasons.push(format!("commit slot {} does not match its checksum", s));
            }
        }
        corrupt(format!("no commit verifies ({})", reasons.join("; ")))
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
            self.store.alloc = Allocator::rebuild(slot.page_count);
            self.mark_tree(slot.state.main)?;
            self.mark_tree(slot.state.ttl)?;
        } else {
            self.store.alloc = Allocator::load(&mut self.store.pager, slot.dir, slot.page_count)?;
        }
        Ok(())
    }

    /// Marks the pages of the tree at `r` in use (rebuilding the bitmap).
    fn mark_tree(&mut self, r: Ref) -> Result<()> {
        if r.is_empty() {
            return Ok(());
        }
        if !self.store.alloc.mark_used(r.pgno, 1) {
            return corrupt(format!("page {} is referred to twice or lies beyond the file", r.pgno));
        }
        let (kids, runs) = {
            let p = self.store.node(&r)?;
            let mut kids = Vec::new();
            let mut runs = Vec::new();
            for i in 0..node::count(p) {
                if node::kind(p) == BRANCH {
                    kids.push(node::child(p, i));
                } else if let Value::Overflow { len, pgno, .. } = node::leaf(p, i).value {
                    runs.push((pgno, pages_for(len)));
                }
            }
            (kids, runs)
        };
        for (pgno, n) in runs {
            if !self.store.alloc.mark_used(pgno, n) {
                return corrupt(format!("the value at page {} overlaps other pages", pgno));
            }
        }
        for c in kids {
            self.mark_tree(c)?;
        }
        Ok(())
    }

    /// Reads and verifies the pages and values under `r` written after
    /// transaction `synced` (those a crash may have lost).
    fn verify_recent(&mut self, r: Ref, synced: u64) -> Result<()> {
        if r.is_empty() || r.txn <= synced {
            return Ok(());
        }
        let (kids, values) = {
            let p = self.store.node(&r)?;
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
            self.store.read_run(len, pgno, checksum, &mut buf)?;
        }
        for c in kids {
            self.verify_recent(c, synced)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open, put_all, value, verified};
    use super::*;
    use crate::error::Error;
    use crate::pager::header::{slot_bit, GOD_AT, SLOT_BITS};
    use crate::storage::MemFile;

    /// A file after two acknowledged commits and no clean close: returns
    /// its bytes and the slot of the last commit.
    fn two_commits() -> (Vec<u8>, usize) {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let big = vec![6u8; 9000];
        put_all(&mut db, &[(b"first", b"1"), (b"big", &big)]);
        put_all(&mut db, &[(b"last", b"2")]);
        let current = db.primary;
        drop(db);
        (f.bytes(), current)
    }

    fn holds_the_last_commit(bytes: Vec<u8>) -> std::result::Result<bool, Error> {
        let f = MemFile::with(bytes);
        let mut db = Db::open(Box::new(f), 16)?;
        verified(&mut db).unwrap();
        Ok(value(&mut db, b"last").as_deref() == Some(&b"2"[..]) && value(&mut db, b"big").map(|v| v.len()) == Some(9000))
    }

    #[test]
    fn a_new_file_opens_empty_and_reopens() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        assert_eq!(f.bytes().len(), PAGE);
        verified(&mut db).unwrap();
        drop(db);
        let mut db = open(&f, 16);
        assert_eq!(value(&mut db, b"x"), None);
        put_all(&mut db, &[(b"x", b"1")]);
        db.close().unwrap();
        let mut db = open(&f, 16);
        assert_eq!(value(&mut db, b"x").as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn no_flipped_bit_of_the_god_byte_or_the_current_slot_loses_the_last_commit() {
        let (bytes, current) = two_commits();
        assert!(holds_the_last_commit(bytes.clone()).unwrap());
        for bit in 0..8 {
            let mut d = bytes.clone();
            d[GOD_AT] ^= 1 << bit;
            assert!(holds_the_last_commit(d).unwrap(), "god byte bit {}", bit);
        }
        let mut d = bytes.clone();
        d[GOD_AT] ^= 1;
        let mut db = open(&MemFile::with(d), 16);
        assert!(db.verify().unwrap().contains("is newer and verifies"));
        for bit in 0..SLOT_BITS {
            let mut d = bytes.clone();
            let (at, shift) = slot_bit(current, bit);
            d[at] ^= 1 << shift;
            match holds_the_last_commit(d) {
                Ok(true) => {}
                Ok(false) => panic!("slot bit {}: the last commit was silently lost", bit),
                Err(e) => panic!("slot bit {}: {}", bit, e),
            }
        }
    }

    #[test]
    fn a_current_slot_damaged_beyond_repair_is_an_error_not_an_older_commit() {
        let (bytes, current) = two_commits();
        for (x, y) in [(0, 9), (100, 101), (500, 1000)] {
            let mut d = bytes.clone();
            for bit in [x, y] {
                let (at, shift) = slot_bit(current, bit);
                d[at] ^= 1 << shift;
            }
            match holds_the_last_commit(d) {
                Err(Error::Corrupt(m)) => assert!(m.contains("the current one"), "{}", m),
                other => panic!("bits {} and {}: {:?}", x, y, other),
            }
        }
        // Damage to the older slot does not matter: the newest is opened.
        let mut d = bytes.clone();
        for bit in [3, 77, 300] {
            let (at, shift) = slot_bit(1 - current, bit);
            d[at] ^= 1 << shift;
        }
        let f = MemFile::with(d);
        let mut db = Db::open(Box::new(f), 16).unwrap();
        assert_eq!(value(&mut db, b"last").as_deref(), Some(&b"2"[..]));
        let report = db.verify().unwrap();
        assert!(report.contains("not the current one"), "{}", report);
    }

    #[test]
    fn a_repaired_slot_is_reported_and_rewritten_by_the_next_commit() {
        let (bytes, current) = two_commits();
        let mut d = bytes.clone();
        let (at, shift) = slot_bit(current, 42);
        d[at] ^= 1 << shift;
        let f = MemFile::with(d);
        let mut db = open(&f, 16);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":true") && report.contains("bit 42 flipped"), "{}", report);
        put_all(&mut db, &[(b"next", b"3")]);
        put_all(&mut db, &[(b"next", b"4")]);
        drop(db);
        let h = crate::pager::header::decode(&f.bytes()[..512]).unwrap();
        assert!(matches!(h.slots[0], Read::Intact(_)) && matches!(h.slots[1], Read::Intact(_)));
    }

    #[test]
    fn a_commit_whose_pages_did_not_land_falls_back_to_the_one_before() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        put_all(&mut db, &[(b"a", b"1")]);
        put_all(&mut db, &[(b"b", b"2")]);
        let root = db.slots[db.primary].state.main.pgno as usize;
        drop(db);
        // The header of the last commit landed, its root page did not.
        let mut d = f.bytes();
        d[root * PAGE..(root + 1) * PAGE].fill(0);
        let f = MemFile::with(d);
        let mut db = open(&f, 16);
        assert_eq!(value(&mut db, b"a").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&mut db, b"b"), None);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":true") && report.contains("did not verify"), "{}", report);
        // Writing goes on from there.
        put_all(&mut db, &[(b"c", b"3")]);
        drop(db);
        let mut db = open(&f, 16);
        assert_eq!(value(&mut db, b"c").as_deref(), Some(&b"3"[..]));
        verified(&mut db).unwrap();
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let (bytes, _) = two_commits();
        for len in [100, 600, PAGE + 10] {
            let f = MemFile::with(bytes[..len].to_vec());
            let e = Db::open(Box::new(f), 16).err();
            assert!(matches!(e, Some(Error::Foreign(_)) | Some(Error::Corrupt(_))), "{} bytes: {:?}", len, e);
        }
        let f = MemFile::with(b"name,value\n".repeat(100));
        assert!(matches!(Db::open(Box::new(f), 16), Err(Error::Foreign(_))));
    }

    #[test]
    fn a_clean_close_reopens_without_rebuilding() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        put_all(&mut db, &[(b"a", b"1")]);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"b", b"2", 0, 0).unwrap();
        commit(&mut db);
        db.close().unwrap();
        let mut db = open(&f, 16);
        assert!(!db.store.alloc.dir.is_empty(), "the bitmap was loaded");
        assert_eq!(value(&mut db, b"b").as_deref(), Some(&b"2"[..]));
        verified(&mut db).unwrap();
    }
}
