//! The page store's lowest layer: reads pages through the host storage,
//! verifies them against the checksum their parent holds, keeps hot pages
//! in a bounded cache (CLOCK eviction), and holds the pages the running
//! transaction writes until its commit puts them on disk. A large
//! transaction spills written leaf pages to disk early (they are its own,
//! unreachable from any commit), so its memory stays within about a quarter
//! more than the cache. It also reads and writes the file header (`header`)
//! and runs of pages outside the cache (large values, the bitmap), so no
//! layer above touches the storage itself.

mod cache;
pub mod header;

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::page::{page_checksum, Ref, PAGE};
use crate::storage::Storage;
use cache::{Cache, DirtySet, PageBuf};
pub use cache::FxMap;
use header::{Header, Slot, HEADER_BYTES};

/// Spare buffers a pager keeps before giving them back to the pool.
const SPARE_MAX: usize = 64;
/// Adjacent pages written in one host call at most.
const RUN_MAX: usize = 64;

/// Reads, caches and writes pages.
pub struct Pager {
    storage: Box<dyn Storage>,
    cache: Cache,
    /// Pages written by the running transaction, by page number.
    dirty: DirtySet,
    /// Dirty pages in the order they became dirty (some since gone).
    order: VecDeque<u32>,
    /// Pages of the running transaction already written, with checksums.
    spilled: FxMap<u32, u64>,
    spare: Vec<PageBuf>,
    /// Page reads that missed the cache (a statistic).
    misses: u64,
    /// Checks the layout of a page read from the host, so a damaged page
    /// that still matches its checksum is an error and never a crash.
    valid: fn(&[u8]) -> bool,
}

impl Pager {
    /// A pager over `storage` caching up to `cache_pages` pages (at least
    /// 16); `valid` checks each page read from the host.
    pub fn new(storage: Box<dyn Storage>, cache_pages: usize, valid: fn(&[u8]) -> bool) -> Pager {
        Pager {
            storage,
            cache: Cache::new(cache_pages.max(16)),
            dirty: DirtySet::default(),
            order: VecDeque::new(),
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
        if self.spare.len() < SPARE_MAX {
            self.spare.push(buf);
        } else {
            buf.give();
        }
    }

    fn cache_insert(&mut self, pgno: u32, buf: PageBuf) {
        let (_, evicted) = self.cache.insert(pgno, buf);
        if let Some(old) = evicted {
            self.recycle(old);
        }
    }

    fn make_dirty(&mut self, pgno: u32, buf: PageBuf) {
        if let Some(old) = self.dirty.insert(pgno, buf) {
            self.recycle(old);
        }
        self.order.push_back(pgno);
    }

    /// The page `r` names: the transaction's own copy, a cached one, or one
    /// read from the host and verified against `r.checksum`.
    #[inline]
    pub fn read(&mut self, r: &Ref) -> Result<&[u8]> {
        if !self.dirty.is_empty() {
            if let Some(page) = self.dirty.get(r.pgno) {
                // Returning the borrow at once is sound; the borrow checker of
                // Rust 1.63 cannot see that the later paths do not overlap it.
                let page: *const [u8] = &**page;
                return Ok(unsafe { &*page });
            }
        }
        if let Some(i) = self.cache.lookup(r.pgno) {
            return Ok(self.cache.frame(i));
        }
        self.misses += 1;
        let mut buf = self.buffer();
        self.storage.read(r.pgno as u64 * PAGE as u64, &mut buf)?;
        if page_checksum(&buf, r.pgno) != r.checksum {
            self.recycle(buf);
            return Err(Error::Corrupt(format!("page {} does not match its checksum", r.pgno)));
        }
        if !(self.valid)(&buf) {
            self.recycle(buf);
            return Err(Error::Corrupt(format!("page {} is not a valid tree page", r.pgno)));
        }
        let (i, evicted) = self.cache.insert(r.pgno, buf);
        if let Some(old) = evicted {
            self.recycle(old);
        }
        Ok(self.cache.frame(i))
    }

    /// Reads `buf.len()` bytes from page `pgno` on, from the host and not
    /// the cache (the caller verifies them).
    pub fn read_direct(&mut self, pgno: u32, buf: &mut [u8]) -> Result<()> {
        self.storage.read(pgno as u64 * PAGE as u64, buf)
    }

    /// Writes `data` from page `pgno` on, past the cache (a large value in
    /// pages of its own); cached copies of those pages are dropped.
    pub fn write_direct(&mut self, pgno: u32, data: &[u8]) -> Result<()> {
        let pages = (data.len() + PAGE - 1) / PAGE;
        for p in pgno..pgno + pages as u32 {
            self.cache.forget(p);
        }
        self.storage.write(pgno as u64 * PAGE as u64, data)
    }

    /// Whether the running transaction has written page `pgno`.
    pub fn is_dirty(&self, pgno: u32) -> bool {
        self.dirty.contains(pgno)
    }

    /// A new, zeroed page of the running transaction.
    pub fn create(&mut self, pgno: u32) -> &mut [u8] {
        let mut buf = self.buffer();
        buf.fill(0);
        self.make_dirty(pgno, buf);
        self.dirty.get_mut(pgno).unwrap()
    }

    /// Copies page `from` into the new page `to` of the running transaction.
    pub fn copy(&mut self, from: &Ref, to: u32) -> Result<()> {
        let mut buf = self.buffer();
        match self.read(from) {
            Ok(page) => buf.copy_from_slice(page),
            Err(e) => {
                self.recycle(buf);
                return Err(e);
            }
        }
        self.make_dirty(to, buf);
        Ok(())
    }

    /// The running transaction's page `pgno`, to change.
    pub fn write(&mut self, pgno: u32) -> &mut [u8] {
        self.dirty.get_mut(pgno).expect("page is not dirty")
    }

    /// Drops a page the running transaction wrote and then freed.
    pub fn discard(&mut self, pgno: u32) {
        if let Some(buf) = self.dirty.remove(pgno) {
            self.recycle(buf);
        }
        self.spilled.remove(&pgno);
    }

    /// Writes dirty pages to disk early while more than a quarter of the
    /// cache's capacity are dirty, oldest first; their checksums are kept
    /// (see `spilled`). `spillable` tells which pages may go (leaves: the
    /// checksums of branches are filled in bottom-up at commit).
    pub fn spill(&mut self, spillable: fn(&[u8]) -> bool) -> Result<()> {
        let limit = (self.cache.capacity() / 4).max(64);
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
            match self.dirty.get(pgno) {
                None => continue,
                Some(page) if spillable(page) => victims.push(pgno),
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
            while i + n < victims.len() && n < RUN_MAX && victims[i + n] == start + n as u32 {
                n += 1;
            }
            staging.clear();
            for k in 0..n {
                let pgno = start + k as u32;
                let buf = self.dirty.remove(pgno).unwrap();
                staging.extend_from_slice(&buf);
                self.spilled.insert(pgno, page_checksum(&buf, pgno));
                self.cache_insert(pgno, buf);
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
    #[cfg(test)]
    pub fn spilled_count(&self) -> usize {
        self.spilled.len()
    }

    /// Takes a spilled page back to change it again.
    pub fn unspill(&mut self, pgno: u32) -> Result<()> {
        let checksum = self.spilled.remove(&pgno).expect("page was not spilled");
        let r = Ref { pgno, checksum, txn: 0 };
        let mut buf = self.buffer();
        match self.read(&r) {
            Ok(page) => buf.copy_from_slice(page),
            Err(e) => {
                self.recycle(buf);
                return Err(e);
            }
        }
        self.make_dirty(pgno, buf);
        Ok(())
    }

    /// Writes every dirty page to the host (runs of adjacent pages in one
    /// call), then moves them into the cache.
    pub fn flush(&mut self) -> Result<()> {
        let pages = self.dirty.sorted();
        // Runs are staged in one buffer so the host sees few, large writes.
        let mut staging: Vec<u8> = Vec::with_capacity(RUN_MAX * PAGE);
        let mut i = 0;
        while i < pages.len() {
            let start = pages[i];
            let mut n = 1;
            while i + n < pages.len() && n < RUN_MAX && pages[i + n] == start + n as u32 {
                n += 1;
            }
            if n == 1 {
                let data = self.dirty.get(start).unwrap();
                self.storage.write(start as u64 * PAGE as u64, data)?;
            } else {
                staging.clear();
                for k in 0..n {
                    staging.extend_from_slice(self.dirty.get(start + k as u32).unwrap());
                }
                self.storage.write(start as u64 * PAGE as u64, &staging)?;
            }
            i += n;
        }
        for pgno in pages {
            let buf = self.dirty.remove(pgno).unwrap();
            self.cache_insert(pgno, buf);
        }
        self.order.clear();
        self.spilled.clear();
        Ok(())
    }

    /// Drops every dirty page (after a failed transaction).
    pub fn clear_dirty(&mut self) {
        for buf in self.dirty.drain() {
            self.recycle(buf);
        }
        self.order.clear();
        // Spilled pages may be cached: they belong to no commit.
        for (pgno, _) in self.spilled.drain() {
            self.cache.forget(pgno);
        }
    }

    /// Empties the cache (after a commit slot failed to verify at open).
    pub fn reset_cache(&mut self) {
        self.cache.clear();
    }

    /// How many pages the cache holds now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    pub fn capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Page reads that missed the cache so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// The file's length in bytes.
    pub fn file_len(&mut self) -> Result<u64> {
        self.storage.len()
    }

    /// Truncates or extends the file.
    pub fn set_file_len(&mut self, len: u64) -> Result<()> {
        self.storage.set_len(len)
    }

    /// Makes every write so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.storage.sync()
    }

    /// Reads and decodes the file header.
    pub fn read_header(&mut self) -> Result<Header> {
        let len = self.storage.len()?;
        if len < HEADER_BYTES as u64 {
            return Err(Error::Foreign(format!("the file is only {} bytes long", len)));
        }
        let mut b = [0u8; HEADER_BYTES];
        self.storage.read(0, &mut b)?;
        header::decode(&b)
    }

    /// Writes the header: `slots`, and the god byte naming slot `god`. One
    /// write of one sector.
    pub fn write_header(&mut self, god: usize, slots: &[Slot; 2]) -> Result<()> {
        let mut b = [0u8; HEADER_BYTES];
        header::encode(&mut b, god, slots);
        self.storage.write(0, &b)
    }

    /// Makes an empty file a database: page 0, the header with `slots` and
    /// the rest zero, synced.
    pub fn create_file(&mut self, slots: &[Slot; 2]) -> Result<()> {
        let mut page = vec![0u8; PAGE];
        header::encode(&mut page, 0, slots);
        self.storage.write(0, &page)?;
        self.storage.sync()
    }
}

impl Drop for Pager {
    // A closed database's buffers go back to the shared pool.
    fn drop(&mut self) {
        for buf in self.cache.drain() {
            buf.give();
        }
        for buf in self.dirty.drain() {
            buf.give();
        }
        for buf in self.spare.drain(..) {
            buf.give();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::header::State;
    use super::*;
    use crate::storage::MemFile;

    fn valid(p: &[u8]) -> bool {
        p[0] == 1
    }

    fn spillable(p: &[u8]) -> bool {
        p[1] == 0
    }

    /// A file of `n` pages; page p is filled with p's low byte after a 1.
    fn file(n: u32) -> (MemFile, Vec<Ref>) {
        let f = MemFile::default();
        let mut refs = vec![Ref::EMPTY];
        let mut bytes = vec![0u8; PAGE];
        for p in 1..n {
            let mut page = vec![p as u8; PAGE];
            page[0] = 1;
            refs.push(Ref { pgno: p, checksum: page_checksum(&page, p), txn: 1 });
            bytes.extend_from_slice(&page);
        }
        f.0.borrow_mut().bytes = bytes;
        (f, refs)
    }

    #[test]
    fn a_page_is_verified_against_its_reference() {
        let (f, refs) = file(4);
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        assert_eq!(pager.read(&refs[2]).unwrap()[5], 2);
        let wrong = Ref { checksum: refs[3].checksum ^ 1, ..refs[3] };
        let e = pager.read(&wrong).unwrap_err();
        assert!(matches!(e, Error::Corrupt(ref m) if m.contains("page 3 does not match")), "{:?}", e);
        // The failed read cached nothing.
        assert_eq!(pager.read(&refs[3]).unwrap()[5], 3);
        // A page that matches its checksum but not the layout is refused too.
        f.0.borrow_mut().bytes[PAGE] = 9;
        let mut page = vec![1u8; PAGE];
        page[0] = 9;
        let r = Ref { pgno: 1, checksum: page_checksum(&page, 1), txn: 1 };
        assert!(matches!(pager.read(&r), Err(Error::Corrupt(m)) if m.contains("not a valid")));
        assert_eq!(pager.cached(), 2);
    }

    #[test]
    fn the_cache_is_bounded_and_spares_the_host_hot_pages() {
        let (f, refs) = file(200);
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        for r in &refs[1..] {
            pager.read(r).unwrap();
            assert!(pager.cached() <= 16);
        }
        assert_eq!(pager.cached(), 16);
        assert_eq!(pager.misses(), 199);
        let reads = f.reads();
        for _ in 0..10 {
            assert_eq!(pager.read(&refs[199]).unwrap()[9], 199);
        }
        assert_eq!(f.reads(), reads, "a cached page is read from memory");
        pager.reset_cache();
        assert_eq!(pager.cached(), 0);
        pager.read(&refs[199]).unwrap();
        assert_eq!(f.reads(), reads + 1);
    }

    #[test]
    fn dirty_pages_come_first_and_flush_in_runs() {
        let (f, refs) = file(12);
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        pager.copy(&refs[2], 20).unwrap();
        pager.write(20)[7] = 0xEE;
        for p in [21u32, 22, 30] {
            let page = pager.create(p);
            page[0] = 1;
            page[1] = p as u8;
        }
        assert!(pager.is_dirty(20) && !pager.is_dirty(2));
        assert_eq!(pager.read(&Ref { pgno: 20, checksum: 0, txn: 2 }).unwrap()[7], 0xEE);
        let writes = f.0.borrow().writes;
        pager.flush().unwrap();
        assert_eq!(f.0.borrow().writes - writes, 2, "pages 20-22 in one write, 30 in another");
        assert!(!pager.is_dirty(20));
        let bytes = f.bytes();
        assert_eq!(bytes[20 * PAGE + 7], 0xEE);
        assert_eq!(bytes[20 * PAGE + 8], 2, "copied from page 2");
        assert_eq!(bytes[22 * PAGE + 1], 22);
        assert_eq!(bytes[30 * PAGE + 1], 30);
    }

    #[test]
    fn a_large_transaction_spills_its_leaves_and_takes_them_back() {
        let f = MemFile::default();
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        // The limit is 64 dirty pages; page 1 is a "branch" that must stay.
        for p in 1..=100u32 {
            let page = pager.create(p);
            page[0] = 1;
            page[1] = (p == 1) as u8;
            page[2] = p as u8;
        }
        pager.spill(spillable).unwrap();
        assert!(pager.spilled_count() >= 100 - 48, "{}", pager.spilled_count());
        assert!(pager.is_dirty(1), "a page that may not spill stays");
        assert!(!pager.is_dirty(2), "the oldest leaves go first");
        let checksum = pager.spilled(2).unwrap();
        assert_eq!(checksum, page_checksum(&f.bytes()[2 * PAGE..3 * PAGE], 2));
        pager.unspill(2).unwrap();
        assert!(pager.is_dirty(2) && pager.spilled(2).is_none());
        assert_eq!(pager.write(2)[2], 2);
        // A failed transaction forgets its spilled pages, also in the cache.
        let spilled = (3..=100).find(|&p| pager.spilled(p).is_some()).unwrap();
        pager.clear_dirty();
        assert!(pager.spilled(spilled).is_none() && !pager.is_dirty(1));
        let r = Ref { pgno: spilled, checksum: 0, txn: 0 };
        assert!(pager.read(&r).is_err(), "the spilled page was still cached");
    }

    #[test]
    fn a_direct_write_drops_stale_cached_copies() {
        let (f, refs) = file(6);
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        pager.read(&refs[4]).unwrap();
        let mut value = vec![1u8; PAGE + 10];
        value[1] = 0x44;
        pager.write_direct(4, &value).unwrap();
        let r = Ref { pgno: 4, checksum: page_checksum(&value[..PAGE], 4), txn: 2 };
        assert_eq!(pager.read(&r).unwrap()[1], 0x44, "read the new bytes, not the cached page");
        let mut back = vec![0u8; PAGE + 10];
        pager.read_direct(4, &mut back).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn the_header_round_trips_through_the_file() {
        let f = MemFile::default();
        let mut pager = Pager::new(Box::new(f.clone()), 16, valid);
        assert!(matches!(pager.read_header(), Err(Error::Foreign(_))));
        let first = Slot { page_count: 1, ..Slot::default() };
        pager.create_file(&[first, Slot::default()]).unwrap();
        assert_eq!(f.bytes().len(), PAGE);
        assert_eq!(f.0.borrow().syncs, 1);
        let h = pager.read_header().unwrap();
        assert_eq!(h.named(), Some(0));
        assert_eq!(h.slots[0].slot(), Some(first));
        assert_eq!(h.slots[1].slot(), None);
        let next = Slot {
            state: State { txn: 1, revision: 3, count: 1, ..State::default() },
            page_count: 2,
            ..Slot::default()
        };
        pager.write_header(1, &[first, next]).unwrap();
        let h = pager.read_header().unwrap();
        assert_eq!(h.named(), Some(1));
        assert_eq!(h.slots[1].slot(), Some(next));
        assert_eq!(f.bytes().len(), PAGE, "a header write stays in page 0");
    }
}
