//! The page store: reads pages through the host, verifies them against the
//! checksum their parent holds, keeps hot pages in a bounded cache (CLOCK
//! eviction), and holds the pages the running transaction writes until its
//! commit puts them on disk. A large transaction spills written leaf pages
//! to disk early (they are its own, unreachable from any commit), so its
//! memory stays within about a quarter more than the cache.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::checksum::xxh64;
use crate::error::{Error, Result};
use crate::node::{Ref, PAGE};
use crate::storage::Storage;

/// A fast hasher for page numbers (FxHash's multiply-rotate).
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Pages a slab of page buffers holds (4 MiB).
const SLAB_PAGES: usize = 1024;

thread_local! {
    static POOL: std::cell::RefCell<Vec<PageBuf>> = std::cell::RefCell::new(Vec::new());
}

/// A page-sized buffer. Buffers come from slabs of 4 MiB and go back to a
/// pool shared by every database of the module, never to the allocator:
/// WebAssembly memory never shrinks anyway, and growing it in small steps
/// is slow in some engines (Node 20's copies its memory on each growth), so
/// it grows a slab at a time.
pub struct PageBuf(std::ptr::NonNull<u8>);

impl PageBuf {
    fn take() -> PageBuf {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.is_empty() {
                let slab: &'static mut [u8] = Box::leak(vec![0u8; SLAB_PAGES * PAGE].into_boxed_slice());
                for chunk in slab.chunks_exact_mut(PAGE) {
                    pool.push(PageBuf(std::ptr::NonNull::new(chunk.as_mut_ptr()).unwrap()));
                }
            }
            pool.pop().unwrap()
        })
    }

    /// Returns the buffer to the shared pool.
    fn give(self) {
        POOL.with(|pool| pool.borrow_mut().push(self));
    }
}

impl std::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // The buffer is PAGE bytes of a leaked slab, owned by this handle.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), PAGE) }
    }
}

impl std::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), PAGE) }
    }
}

/// The checksum of a page stored at `pgno`.
pub fn page_checksum(data: &[u8], pgno: u32) -> u64 {
    xxh64(data, pgno as u64)
}

struct Frame {
    pgno: u32,
    data: PageBuf,
    referenced: bool,
}

/// Page number to cache frame: a two-level radix table, faster than a hash
/// map on the read path. Second-level tables exist only for regions with
/// cached pages, so its size follows the cache, not the file.
#[derive(Default)]
struct PageTable {
    tables: Vec<Option<Box<[u32; TABLE]>>>,
    counts: Vec<u16>,
    len: usize,
}

const TABLE_BITS: u32 = 9;
const TABLE: usize = 1 << TABLE_BITS;

impl PageTable {
    #[inline(always)]
    fn get(&self, pgno: u32) -> Option<usize> {
        let t = (pgno >> TABLE_BITS) as usize;
        match self.tables.get(t) {
            Some(Some(table)) => match table[pgno as usize & (TABLE - 1)] {
                0 => None,
                i => Some(i as usize - 1),
            },
            _ => None,
        }
    }

    fn insert(&mut self, pgno: u32, frame: usize) {
        let t = (pgno >> TABLE_BITS) as usize;
        if self.tables.len() <= t {
            self.tables.resize_with(t + 1, || None);
            self.counts.resize(t + 1, 0);
        }
        let table = self.tables[t].get_or_insert_with(|| Box::new([0; TABLE]));
        let slot = &mut table[pgno as usize & (TABLE - 1)];
        if *slot == 0 {
            self.counts[t] += 1;
            self.len += 1;
        }
        *slot = frame as u32 + 1;
    }

    fn remove(&mut self, pgno: u32) -> Option<usize> {
        let t = (pgno >> TABLE_BITS) as usize;
        let table = self.tables.get_mut(t)?.as_mut()?;
        let slot = &mut table[pgno as usize & (TABLE - 1)];
        if *slot == 0 {
            return None;
        }
        let frame = *slot as usize - 1;
        *slot = 0;
        self.len -= 1;
        self.counts[t] -= 1;
        if self.counts[t] == 0 {
            self.tables[t] = None;
        }
        Some(frame)
    }
}

/// The running transaction's pages, found through a radix table (a hash
/// map's lookups miss the CPU cache on every level of every operation).
#[derive(Default)]
struct DirtySet {
    table: PageTable,
    pages: Vec<(u32, PageBuf)>,
}

impl DirtySet {
    fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
    fn len(&self) -> usize {
        self.pages.len()
    }
    #[inline(always)]
    fn get(&self, pgno: &u32) -> Option<&PageBuf> {
        self.table.get(*pgno).map(|i| &self.pages[i].1)
    }
    #[inline(always)]
    fn get_mut(&mut self, pgno: &u32) -> Option<&mut PageBuf> {
        let i = self.table.get(*pgno)?;
        Some(&mut self.pages[i].1)
    }
    fn contains_key(&self, pgno: &u32) -> bool {
        self.table.get(*pgno).is_some()
    }
    fn insert(&mut self, pgno: u32, buf: PageBuf) {
        match self.table.get(pgno) {
            Some(i) => self.pages[i].1 = buf,
            None => {
                self.pages.push((pgno, buf));
                self.table.insert(pgno, self.pages.len() - 1);
            }
        }
    }
    fn remove(&mut self, pgno: &u32) -> Option<PageBuf> {
        let i = self.table.remove(*pgno)?;
        let (_, buf) = self.pages.swap_remove(i);
        if i < self.pages.len() {
            let moved = self.pages[i].0;
            self.table.insert(moved, i);
        }
        Some(buf)
    }
    fn keys(&self) -> impl Iterator<Item = &u32> {
        self.pages.iter().map(|(p, _)| p)
    }
}

impl std::ops::Index<&u32> for DirtySet {
    type Output = PageBuf;
    fn index(&self, pgno: &u32) -> &PageBuf {
        self.get(pgno).expect("page is not dirty")
    }
}

/// Clean pages, at most `capacity` of them.
struct Cache {
    map: PageTable,
    frames: Vec<Frame>,
    hand: usize,
    capacity: usize,
}

impl Cache {
    #[inline(always)]
    fn lookup(&mut self, pgno: u32) -> Option<usize> {
        let i = self.map.get(pgno)?;
        self.frames[i].referenced = true;
        Some(i)
    }

    /// Stores `data` as page `pgno`; returns its frame and a buffer freed by
    /// eviction, if any.
    fn insert(&mut self, pgno: u32, data: PageBuf) -> (usize, Option<PageBuf>) {
        if let Some(i) = self.map.get(pgno) {
            let old = std::mem::replace(&mut self.frames[i].data, data);
            self.frames[i].referenced = true;
            return (i, Some(old));
        }
        if self.frames.len() < self.capacity {
            self.frames.push(Frame { pgno, data, referenced: true });
            let i = self.frames.len() - 1;
            self.map.insert(pgno, i);
            return (i, None);
        }
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.frames.len();
            if self.frames[i].referenced {
                self.frames[i].referenced = false;
                continue;
            }
            self.map.remove(self.frames[i].pgno);
            let old = std::mem::replace(&mut self.frames[i].data, data);
            self.frames[i].pgno = pgno;
            self.frames[i].referenced = true;
            self.map.insert(pgno, i);
            return (i, Some(old));
        }
    }

    fn forget(&mut self, pgno: u32) {
        // The frame stays allocated; it is simply no longer found.
        if let Some(i) = self.map.remove(pgno) {
            self.frames[i].pgno = u32::MAX;
            self.frames[i].referenced = false;
        }
    }
}

/// Reads, caches and writes pages.
pub struct Pager {
    pub storage: Box<dyn Storage>,
    cache: Cache,
    /// Pages written by the running transaction, by page number.
    dirty: DirtySet,
    /// Dirty pages in the order they became dirty (some since gone).
    order: std::collections::VecDeque<u32>,
    /// Pages of the running transaction already written, with checksums.
    spilled: FxMap<u32, u64>,
    spare: Vec<PageBuf>,
    /// Page reads that missed the cache (a statistic).
    pub misses: u64,
    /// Checks the layout of a page read from the host, so a damaged page
    /// that still matches its checksum is an error and never a crash.
    valid: fn(&[u8]) -> bool,
}

impl Pager {
    pub fn new(storage: Box<dyn Storage>, cache_pages: usize, valid: fn(&[u8]) -> bool) -> Pager {
        Pager {
            storage,
            cache: Cache {
                map: PageTable::default(),
                frames: Vec::new(),
                hand: 0,
                capacity: cache_pages.max(16),
            },
            dirty: DirtySet::default(),
            order: std::collections::VecDeque::new(),
            spilled: FxMap::default(),
            spare: Vec::new(),
            misses: 0,
            valid,
        }
    }

    fn buffer(&mut self) -> PageBuf {
        self.spare.pop().unwrap_or_else(PageBuf::take)
    }

    fn recycle(&mut self, buf: PageBuf) {
        if self.spare.len() < 64 {
            self.spare.push(buf);
        } else {
            buf.give();
        }
    }

    /// The page `r` names: the transaction's own copy, a cached one, or one
    /// read from the host and verified against `r.checksum`.
    #[inline]
    pub fn read(&mut self, r: &Ref) -> Result<&[u8]> {
        if !self.dirty.is_empty() {
            if let Some(page) = self.dirty.get(&r.pgno) {
            // Returning the borrow at once is sound; the borrow checker of
            // Rust 1.63 cannot see that the later paths do not overlap it.
                let page: *const [u8] = &**page;
                return Ok(unsafe { &*page });
            }
        }
        if let Some(i) = self.cache.lookup(r.pgno) {
            return Ok(&self.cache.frames[i].data);
        }
        self.misses += 1;
        let mut buf = self.buffer();
        self.storage.read(r.pgno as u64 * PAGE as u64, &mut buf)?;
        if page_checksum(&buf, r.pgno) != r.checksum {
            self.recycle(buf);
            return Err(Error::Corrupt(format!(
                "page {} does not match its checksum",
                r.pgno
            )));
        }
        if !(self.valid)(&buf) {
            self.recycle(buf);
            return Err(Error::Corrupt(format!("page {} is not a valid tree page", r.pgno)));
        }
        let (i, evicted) = self.cache.insert(r.pgno, buf);
        if let Some(old) = evicted {
            self.recycle(old);
        }
        Ok(&self.cache.frames[i].data)
    }

    /// Reads page `pgno` from the host without the cache, into `buf`.
    pub fn read_raw(&mut self, pgno: u32, buf: &mut [u8]) -> Result<()> {
        self.storage.read(pgno as u64 * PAGE as u64, buf)
    }

    /// Whether the running transaction has written page `pgno`.
    pub fn is_dirty(&self, pgno: u32) -> bool {
        self.dirty.contains_key(&pgno)
    }

    /// A new, zeroed page of the running transaction.
    pub fn create(&mut self, pgno: u32) -> &mut [u8] {
        let mut buf = self.buffer();
        buf.fill(0);
        self.dirty.insert(pgno, buf);
        self.order.push_back(pgno);
        self.dirty.get_mut(&pgno).unwrap()
    }

    /// Copies page `from` into the new page `to` of the running transaction.
    pub fn copy(&mut self, from: &Ref, to: u32) -> Result<()> {
        let mut buf = self.buffer();
        buf.copy_from_slice(self.read(from)?);
        self.dirty.insert(to, buf);
        self.order.push_back(to);
        Ok(())
    }

    /// The running transaction's page `pgno`, to change.
    pub fn write(&mut self, pgno: u32) -> &mut [u8] {
        self.dirty.get_mut(&pgno).expect("page is not dirty")
    }

    /// Drops a page the running transaction wrote and then freed.
    pub fn discard(&mut self, pgno: u32) {
        if let Some(buf) = self.dirty.remove(&pgno) {
            self.recycle(buf);
        }
        self.spilled.remove(&pgno);
    }

    /// Forgets a cached copy (of a page whose content changes on disk).
    pub fn forget(&mut self, pgno: u32) {
        self.cache.forget(pgno);
    }

    /// Writes dirty leaf pages to disk early while more than a quarter of
    /// the cache's capacity are dirty, oldest first; their checksums are kept in
    /// `spilled`. `is_leaf` tells which pages may go (branches stay, so
    /// checksums are filled in bottom-up at commit).
    pub fn spill(&mut self, is_leaf: fn(&[u8]) -> bool) -> Result<()> {
        let limit = (self.cache.capacity / 4).max(64);
        if self.dirty.len() <= limit {
            return Ok(());
        }
        // Spill a batch, down to three quarters of the limit, so writes come
        // in sorted runs and not one call per page.
        let target = limit * 3 / 4;
        let mut victims = Vec::new();
        let mut budget = self.order.len();
        while self.dirty.len() - victims.len() > target && budget > 0 {
            budget -= 1;
            let pgno = match self.order.pop_front() {
                Some(p) => p,
                None => break,
            };
            match self.dirty.get(&pgno) {
                None => continue,
                Some(page) if is_leaf(page) => victims.push(pgno),
                Some(_) => self.order.push_back(pgno),
            }
        }
        victims.sort_unstable();
        victims.dedup();
        let mut staging: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < victims.len() {
            let start = victims[i];
            let mut n = 1;
            while i + n < victims.len() && n < 64 && victims[i + n] == start + n as u32 {
                n += 1;
            }
            staging.clear();
            for k in 0..n {
                let pgno = start + k as u32;
                let buf = self.dirty.remove(&pgno).unwrap();
                staging.extend_from_slice(&buf);
                self.spilled.insert(pgno, page_checksum(&buf, pgno));
                let (_, evicted) = self.cache.insert(pgno, buf);
                if let Some(old) = evicted {
                    self.recycle(old);
                }
            }
            self.storage.write(start as u64 * PAGE as u64, &staging)?;
            i += n;
        }
        Ok(())
    }

    /// The checksum of a page the running transaction spilled, if it did.
    pub fn spilled(&self, pgno: u32) -> Option<u64> {
        self.spilled.get(&pgno).copied()
    }

    /// How many pages the running transaction has spilled.
    pub fn spilled_count(&self) -> usize {
        self.spilled.len()
    }

    /// Takes a spilled page back to change it again.
    pub fn unspill(&mut self, pgno: u32) -> Result<()> {
        let checksum = self.spilled.remove(&pgno).expect("page was not spilled");
        let r = Ref { pgno, checksum, txn: 0 };
        let mut buf = self.buffer();
        buf.copy_from_slice(self.read(&r)?);
        self.dirty.insert(pgno, buf);
        self.order.push_back(pgno);
        Ok(())
    }

    /// Page numbers the running transaction wrote.
    pub fn dirty_pages(&self) -> Vec<u32> {
        let mut pages: Vec<u32> = self.dirty.keys().copied().collect();
        pages.sort_unstable();
        pages
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    /// Writes every dirty page to the host (runs of adjacent pages in one
    /// call), then moves them into the cache.
    pub fn flush(&mut self) -> Result<()> {
        let pages = self.dirty_pages();
        // Runs are staged in one buffer so the host sees few, large writes.
        const RUN_MAX: usize = 64;
        let mut staging: Vec<u8> = Vec::with_capacity(RUN_MAX * PAGE);
        let mut i = 0;
        while i < pages.len() {
            let start = pages[i];
            let mut n = 1;
            while i + n < pages.len() && n < RUN_MAX && pages[i + n] == start + n as u32 {
                n += 1;
            }
            if n == 1 {
                let data = &self.dirty[&start];
                self.storage.write(start as u64 * PAGE as u64, data)?;
            } else {
                staging.clear();
                for k in 0..n {
                    staging.extend_from_slice(&self.dirty[&(start + k as u32)]);
                }
                self.storage.write(start as u64 * PAGE as u64, &staging)?;
            }
            i += n;
        }
        for pgno in pages {
            let buf = self.dirty.remove(&pgno).unwrap();
            let (_, evicted) = self.cache.insert(pgno, buf);
            if let Some(old) = evicted {
                self.recycle(old);
            }
        }
        self.order.clear();
        self.spilled.clear();
        Ok(())
    }

    /// Drops every dirty page (after a failed transaction).
    pub fn clear_dirty(&mut self) {
        let pages = self.dirty_pages();
        for pgno in pages {
            self.discard(pgno);
        }
        self.order.clear();
        // Spilled pages may be cached: they belong to no commit.
        let spilled: Vec<u32> = self.spilled.keys().copied().collect();
        for pgno in spilled {
            self.cache.forget(pgno);
        }
        self.spilled.clear();
    }

    /// How many pages the cache holds now.
    pub fn cached(&self) -> usize {
        self.cache.map.len
    }

    pub fn capacity(&self) -> usize {
        self.cache.capacity
    }
}

impl Pager {
    /// Empties the cache (after a commit slot failed to verify at open).
    pub fn reset_cache(&mut self) {
        let pages: Vec<u32> = self.cache.frames.iter().map(|f| f.pgno).collect();
        for p in pages {
            self.cache.forget(p);
        }
    }
}

impl Drop for Pager {
    // A closed database's buffers go back to the shared pool.
    fn drop(&mut self) {
        for frame in self.cache.frames.drain(..) {
            frame.data.give();
        }
        for (_, buf) in self.dirty.pages.drain(..) {
            buf.give();
        }
        for buf in self.spare.drain(..) {
            buf.give();
        }
    }
}
