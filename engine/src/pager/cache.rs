//! The pager's memory: page buffers from a shared pool, the radix table
//! that maps page numbers to frames, the running transaction's dirty pages,
//! and the bounded cache of clean pages (CLOCK eviction).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::page::PAGE;

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
pub(super) struct PageBuf(std::ptr::NonNull<u8>);

impl PageBuf {
    pub(super) fn take() -> PageBuf {
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
    pub(super) fn give(self) {
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

struct Frame {
    pgno: u32,
    data: PageBuf,
    referenced: bool,
}

/// Page number to slot: a two-level radix table, faster than a hash map on
/// the read path. Second-level tables exist only for regions with pages in
/// them, so its size follows what it holds, not the file.
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
pub(super) struct DirtySet {
    table: PageTable,
    pages: Vec<(u32, PageBuf)>,
}

impl DirtySet {
    pub(super) fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
    pub(super) fn len(&self) -> usize {
        self.pages.len()
    }
    #[inline(always)]
    pub(super) fn get(&self, pgno: u32) -> Option<&PageBuf> {
        self.table.get(pgno).map(|i| &self.pages[i].1)
    }
    #[inline(always)]
    pub(super) fn get_mut(&mut self, pgno: u32) -> Option<&mut PageBuf> {
        let i = self.table.get(pgno)?;
        Some(&mut self.pages[i].1)
    }
    pub(super) fn contains(&self, pgno: u32) -> bool {
        self.table.get(pgno).is_some()
    }
    /// Adds page `pgno`; a buffer it replaces is returned.
    pub(super) fn insert(&mut self, pgno: u32, buf: PageBuf) -> Option<PageBuf> {
        match self.table.get(pgno) {
            Some(i) => Some(std::mem::replace(&mut self.pages[i].1, buf)),
            None => {
                self.pages.push((pgno, buf));
                self.table.insert(pgno, self.pages.len() - 1);
                None
            }
        }
    }
    pub(super) fn remove(&mut self, pgno: u32) -> Option<PageBuf> {
        let i = self.table.remove(pgno)?;
        let (_, buf) = self.pages.swap_remove(i);
        if i < self.pages.len() {
            let moved = self.pages[i].0;
            self.table.insert(moved, i);
        }
        Some(buf)
    }
    /// The page numbers, sorted.
    pub(super) fn sorted(&self) -> Vec<u32> {
        let mut pages: Vec<u32> = self.pages.iter().map(|(p, _)| *p).collect();
        pages.sort_unstable();
        pages
    }
    /// Takes every buffer out.
    pub(super) fn drain(&mut self) -> Vec<PageBuf> {
        self.table = PageTable::default();
        self.pages.drain(..).map(|(_, b)| b).collect()
    }
}

/// Clean pages, at most `capacity` of them.
pub(super) struct Cache {
    map: PageTable,
    frames: Vec<Frame>,
    hand: usize,
    capacity: usize,
}

impl Cache {
    pub(super) fn new(capacity: usize) -> Cache {
        Cache { map: PageTable::default(), frames: Vec::new(), hand: 0, capacity }
    }

    /// The frame holding page `pgno`, marked recently used. (A frame
    /// number, not the page: the read path of Rust 1.63's borrow checker
    /// cannot return a borrow on one branch and go on on the other.)
    #[inline(always)]
    pub(super) fn lookup(&mut self, pgno: u32) -> Option<usize> {
        let i = self.map.get(pgno)?;
        self.frames[i].referenced = true;
        Some(i)
    }

    /// The page in frame `i` (from `lookup`).
    #[inline(always)]
    pub(super) fn frame(&self, i: usize) -> &[u8] {
        &self.frames[i].data
    }

    /// Stores `data` as page `pgno`; returns its frame and a buffer freed
    /// by the replacement or an eviction, if any.
    pub(super) fn insert(&mut self, pgno: u32, data: PageBuf) -> (usize, Option<PageBuf>) {
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
        // CLOCK: the hand clears reference bits until it finds a frame not
        // used since its last pass (a forgotten frame is never referenced).
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

    /// Drops the cached copy of page `pgno`, if any.
    pub(super) fn forget(&mut self, pgno: u32) {
        // The frame stays allocated; it is simply no longer found.
        if let Some(i) = self.map.remove(pgno) {
            self.frames[i].pgno = u32::MAX;
            self.frames[i].referenced = false;
        }
    }

    /// Drops every cached page.
    pub(super) fn clear(&mut self) {
        for i in 0..self.frames.len() {
            let pgno = self.frames[i].pgno;
            self.forget(pgno);
        }
    }

    /// How many pages are cached.
    pub(super) fn len(&self) -> usize {
        self.map.len
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes every buffer out.
    pub(super) fn drain(&mut self) -> Vec<PageBuf> {
        self.map = PageTable::default();
        self.hand = 0;
        self.frames.drain(..).map(|f| f.data).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Cache {
        fn get(&mut self, pgno: u32) -> Option<&[u8]> {
            let i = self.lookup(pgno)?;
            Some(self.frame(i))
        }
    }

    fn page(fill: u8) -> PageBuf {
        let mut b = PageBuf::take();
        b.fill(fill);
        b
    }

    #[test]
    fn the_page_table_maps_sparse_page_numbers() {
        let mut t = PageTable::default();
        t.insert(3, 0);
        t.insert(100_000, 1);
        t.insert(3, 2);
        assert_eq!(t.len, 2);
        assert_eq!(t.get(3), Some(2));
        assert_eq!(t.get(100_000), Some(1));
        assert_eq!(t.get(4), None);
        assert_eq!(t.remove(100_000), Some(1));
        assert_eq!(t.remove(100_000), None);
        // An emptied region drops its second-level table.
        assert!(t.tables[(100_000 >> TABLE_BITS) as usize].is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let mut c = Cache::new(8);
        let mut freed = 0;
        for p in 1..=100u32 {
            let (i, old) = c.insert(p, page(p as u8));
            assert_eq!(c.frame(i)[0], p as u8);
            if let Some(b) = old {
                freed += 1;
                b.give();
            }
            assert!(c.len() <= 8);
        }
        assert_eq!(c.len(), 8);
        assert_eq!(freed, 92, "each insert past the capacity evicts one page");
        assert_eq!(c.get(100).map(|d| d[0]), Some(100), "the newest page stays");
        for b in c.drain() {
            b.give();
        }
    }

    #[test]
    fn clock_keeps_a_page_used_since_the_hand_last_passed() {
        let mut c = Cache::new(4);
        for p in 1..=4u32 {
            assert!(c.insert(p, page(0)).1.is_none());
        }
        // The first eviction clears every reference bit and evicts page 1;
        // then page 2 is used again, so the next eviction passes it by.
        c.insert(5, page(0)).1.unwrap().give();
        assert!(c.get(1).is_none());
        assert!(c.get(2).is_some());
        c.insert(6, page(0)).1.unwrap().give();
        assert!(c.get(2).is_some(), "a recently used page was evicted");
        assert!(c.get(3).is_none());
        for b in c.drain() {
            b.give();
        }
    }

    #[test]
    fn a_forgotten_page_is_not_found_and_its_frame_is_reused() {
        let mut c = Cache::new(2);
        c.insert(1, page(1));
        c.insert(2, page(2));
        c.forget(1);
        assert!(c.get(1).is_none());
        assert_eq!(c.len(), 1);
        c.insert(3, page(3)).1.unwrap().give();
        assert!(c.get(2).is_some(), "the forgotten frame goes first");
        assert_eq!(c.len(), 2);
        c.clear();
        assert_eq!(c.len(), 0);
        for b in c.drain() {
            b.give();
        }
    }

    #[test]
    fn the_dirty_set_finds_pages_after_removals() {
        let mut d = DirtySet::default();
        for p in [9u32, 4, 7, 1] {
            assert!(d.insert(p, page(p as u8)).is_none());
        }
        d.remove(4).unwrap().give();
        assert!(!d.contains(4));
        assert_eq!(d.get(1).map(|b| b[0]), Some(1), "moved by swap_remove, still found");
        assert_eq!(d.sorted(), vec![1, 7, 9]);
        d.insert(7, page(70)).unwrap().give();
        assert_eq!(d.get(7).map(|b| b[0]), Some(70));
        assert_eq!(d.len(), 3);
        for b in d.drain() {
            b.give();
        }
        assert!(d.is_empty());
    }
}
