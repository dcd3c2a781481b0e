//! Page allocation: which pages are in use, persisted as a bitmap.
//!
//! Two bitmaps are kept in memory. `used` is what the next durable commit
//! persists: a page freed by a transaction is clear there at once, because
//! after that commit is on disk nothing needs the page. `busy` is what the
//! allocator honours: a freed page stays busy until no open snapshot and no
//! commit that could still be recovered refers to it (see `defer` and
//! `release`).
//!
//! Like redb, the bitmap is persisted only by a clean close (in chunk pages
//! listed by one directory page), so a commit writes nothing but its tree
//! pages and the header. After a crash, opening rebuilds the bitmap by
//! walking the trees of the commit it recovers (`rebuild`, `mark`).

use std::collections::VecDeque;

use crate::error::{corrupt, Error, Result};
use crate::page::{get_u32, get_u64, page_checksum, put_u32, put_u64, Ref, PAGE};
use crate::pager::Pager;

pub const CHUNK_PAGE: u8 = 3;
pub const DIR_PAGE: u8 = 4;
const CHUNK_HDR: usize = 16;
const CHUNK_WORDS: usize = (PAGE - CHUNK_HDR) / 8;
/// Pages one bitmap chunk covers (about 127 MiB of file).
pub const CHUNK_BITS: usize = CHUNK_WORDS * 64;
const DIR_HDR: usize = 16;
const DIR_ENTRY: usize = 12;
/// Chunks one directory page lists: the file's size limit (about 42 GiB).
pub const DIR_MAX: usize = (PAGE - DIR_HDR) / DIR_ENTRY;
pub const MAX_PAGES: usize = DIR_MAX * CHUNK_BITS;

/// The allocator's state.
pub struct Allocator {
    used: Vec<u64>,
    busy: Vec<u64>,
    /// Pages the file spans (page 0 is the header).
    pub page_count: u32,
    /// Runs freed by a transaction, not yet reusable: (txn, pgno, pages).
    pending: VecDeque<(u64, u32, u32)>,
    changed: Vec<bool>,
    chunks: Vec<Ref>,
    /// The directory page of the last durable commit.
    pub dir: Ref,
    hint: usize,
}

fn bit(words: &[u64], p: usize) -> bool {
    words.get(p / 64).map_or(false, |w| w & (1 << (p % 64)) != 0)
}

impl Allocator {
    /// A new file: only the header page is in use.
    pub fn new() -> Allocator {
        let mut a = Allocator {
            used: Vec::new(),
            busy: Vec::new(),
            page_count: 1,
            pending: VecDeque::new(),
            changed: Vec::new(),
            chunks: Vec::new(),
            dir: Ref::EMPTY,
            hint: 0,
        };
        a.grow(1);
        a.mark(0, 1);
        a
    }

    /// Reads the bitmap of a commit whose directory is `dir`.
    pub fn load(pager: &mut Pager, dir: Ref, page_count: u32) -> Result<Allocator> {
        let mut a = Allocator::new();
        if dir.is_empty() {
            a.page_count = page_count.max(1);
            a.grow(a.page_count as usize);
            return Ok(a);
        }
        a.page_count = page_count;
        a.grow(page_count as usize);
        a.dir = dir;
        let mut page = vec![0u8; PAGE];
        read_verified(pager, &dir, &mut page, DIR_PAGE)?;
        let n = get_u32(&page, 4) as usize;
        if n > DIR_MAX || n * CHUNK_BITS < page_count as usize {
            return corrupt(format!("the page directory lists {} chunks", n));
        }
        let refs: Vec<Ref> = (0..n)
            .map(|i| {
                let at = DIR_HDR + i * DIR_ENTRY;
                Ref { pgno: get_u32(&page, at), checksum: get_u64(&page, at + 4), txn: 0 }
            })
            .collect();
        a.used.clear();
        for r in &refs {
            read_verified(pager, r, &mut page, CHUNK_PAGE)?;
            for w in 0..CHUNK_WORDS {
                a.used.push(get_u64(&page, CHUNK_HDR + w * 8));
            }
        }
        a.chunks = refs;
        a.changed = vec![false; n];
        a.grow(page_count as usize);
        a.busy = a.used.clone();
        Ok(a)
    }

    fn grow(&mut self, pages: usize) {
        let words = (pages + 63) / 64;
        if self.used.len() < words {
            self.used.resize(words, 0);
            self.busy.resize(words, 0);
        }
        let chunks = (pages + CHUNK_BITS - 1) / CHUNK_BITS;
        if self.changed.len() < chunks {
            self.changed.resize(chunks, true);
        }
    }

    fn set(&mut self, p: usize, n: usize, used: bool, busy: bool) {
        for q in p..p + n {
            let (w, b) = (q / 64, 1u64 << (q % 64));
            if used {
                self.used[w] |= b;
            } else {
                self.used[w] &= !b;
            }
            if busy {
                self.busy[w] |= b;
            } else {
                self.busy[w] &= !b;
            }
            self.changed[q / CHUNK_BITS] = true;
        }
    }

    fn mark(&mut self, p: usize, n: usize) {
        self.set(p, n, true, true);
    }

    /// An allocator for a file of `page_count` pages whose bitmap is to be
    /// rebuilt: mark every page the recovered commit reaches with `mark_used`.
    pub fn rebuild(page_count: u32) -> Allocator {
        let mut a = Allocator::new();
        a.page_count = page_count.max(1);
        a.grow(a.page_count as usize);
        a
    }

    /// Marks `n` pages at `p` in use (while rebuilding); false when any is
    /// beyond the file or already in use (a damaged tree).
    pub fn mark_used(&mut self, p: u32, n: u32) -> bool {
        let (p, n) = (p as usize, n as usize);
        if p + n > self.page_count as usize {
            return false;
        }
        if (p..p + n).any(|q| bit(&self.used, q)) {
            return false;
        }
        self.mark(p, n);
        true
    }

    /// Drops the persisted bitmap (its pages go to `freed`): commits do not
    /// keep it current, so only the commit that wrote it may use it.
    pub fn forget_persisted(&mut self, freed: &mut Vec<(u32, u32)>) {
        if self.dir.is_empty() {
            return;
        }
        for r in std::mem::take(&mut self.chunks) {
            if !r.is_empty() {
                self.free(r.pgno, 1, false);
                freed.push((r.pgno, 1));
            }
        }
        let dir = self.dir.pgno;
        self.free(dir, 1, false);
        freed.push((dir, 1));
        self.dir = Ref::EMPTY;
        for c in self.changed.iter_mut() {
            *c = true;
        }
    }

    /// Whether page `p` is in use now (for the integrity check).
    pub fn is_used(&self, p: u32) -> bool {
        bit(&self.used, p as usize)
    }

    /// Whether page `p` is in use or waiting to become free.
    pub fn is_busy(&self, p: u32) -> bool {
        bit(&self.busy, p as usize)
    }

    /// Allocates `n` contiguous pages, reusing free ones first.
    pub fn alloc(&mut self, n: u32) -> Result<u32> {
        let count = self.page_count as usize;
        let n = n as usize;
        if n == 1 {
            let mut w = self.hint;
            while w < self.busy.len() {
                if self.busy[w] != u64::MAX {
                    let p = w * 64 + (!self.busy[w]).trailing_zeros() as usize;
                    if p < count {
                        self.hint = w;
                        self.mark(p, 1);
                        return Ok(p as u32);
                    }
                    break;
                }
                w += 1;
            }
            self.hint = self.busy.len();
        }
        // A run of n free pages, or the free tail of the file extended.
        let mut run = 0;
        let mut p = if n == 1 { count } else { self.hint * 64 };
        let mut start = p;
        while p < count {
            if self.busy[p / 64] == u64::MAX && p % 64 == 0 {
                run = 0;
                p += 64;
                start = p;
                continue;
            }
            if bit(&self.busy, p) {
                run = 0;
                start = p + 1;
            } else {
                run += 1;
                if run == n {
                    self.mark(start, n);
                    return Ok(start as u32);
                }
            }
            p += 1;
        }
        let start = if run > 0 { count - run } else { count };
        if start + n > MAX_PAGES {
            return Err(Error::Invalid(
                "the database file is full (its limit is about 42 GiB)".into(),
            ));
        }
        self.page_count = (start + n).max(count) as u32;
        self.grow(self.page_count as usize);
        self.mark(start, n);
        Ok(start as u32)
    }

    /// Frees `n` pages at `p`: at once (`now`, for pages no commit refers
    /// to) or once `release` says so.
    pub fn free(&mut self, p: u32, n: u32, now: bool) {
        let (p, n) = (p as usize, n as usize);
        if now {
            self.set(p, n, false, false);
            self.hint = self.hint.min(p / 64);
        } else {
            self.set(p, n, false, true);
        }
    }

    /// Records pages freed (not `now`) by transaction `txn`.
    pub fn defer(&mut self, txn: u64, runs: &[(u32, u32)]) {
        for &(p, n) in runs {
            self.pending.push_back((txn, p, n));
        }
    }

    /// Makes pages freed by transactions up to `txn` reusable.
    pub fn release(&mut self, txn: u64) {
        while let Some(&(t, p, n)) = self.pending.front() {
            if t > txn {
                break;
            }
            self.pending.pop_front();
            for q in p as usize..(p + n) as usize {
                self.busy[q / 64] &= !(1 << (q % 64));
            }
            self.hint = self.hint.min(p as usize / 64);
        }
    }

    /// Pages waiting to become free.
    pub fn pending_pages(&self) -> u64 {
        self.pending.iter().map(|&(_, _, n)| n as u64).sum()
    }

    /// Free pages (neither used nor waiting).
    pub fn free_pages(&self) -> u64 {
        let mut free = 0;
        for p in 0..self.page_count as usize {
            if !bit(&self.busy, p) {
                free += 1;
            }
        }
        free
    }

    /// Drops free pages at the end of the file.
    pub fn shrink(&mut self) {
        let mut count = self.page_count as usize;
        while count > 1 && !bit(&self.busy, count - 1) {
            count -= 1;
        }
        self.page_count = count as u32;
        self.hint = self.hint.min(count / 64);
    }

    /// Writes the chunks that changed and a new directory as pages of
    /// transaction `txn`; the pages they replace go to `freed`. Returns the
    /// new directory.
    pub fn persist(&mut self, pager: &mut Pager, txn: u64, freed: &mut Vec<(u32, u32)>) -> Result<Ref> {
        if !self.dir.is_empty() {
            let old = self.dir.pgno;
            self.free(old, 1, false);
            freed.push((old, 1));
        }
        let dir = self.alloc(1)?;
        let mut assigned: Vec<bool> = Vec::new();
        loop {
            let needed = (self.page_count as usize + CHUNK_BITS - 1) / CHUNK_BITS;
            self.grow(self.page_count as usize);
            if self.chunks.len() < needed {
                self.chunks.resize(needed, Ref::EMPTY);
            }
            assigned.resize(self.chunks.len(), false);
            let mut progress = false;
            for c in 0..self.chunks.len() {
                if !self.changed[c] || assigned[c] {
                    continue;
                }
                if !self.chunks[c].is_empty() {
                    let old = self.chunks[c].pgno;
                    self.free(old, 1, false);
                    freed.push((old, 1));
                }
                let p = self.alloc(1)?;
                self.chunks[c] = Ref { pgno: p, checksum: 0, txn };
                assigned[c] = true;
                progress = true;
            }
            if !progress {
                break;
            }
        }
        let n = self.chunks.len();
        if n > DIR_MAX {
            return Err(Error::Invalid("the database file is full".into()));
        }
        for c in 0..n {
            if !assigned[c] {
                continue;
            }
            let pgno = self.chunks[c].pgno;
            let page = pager.create(pgno);
            page[0] = CHUNK_PAGE;
            put_u32(page, 4, c as u32);
            for w in 0..CHUNK_WORDS {
                let word = self.used.get(c * CHUNK_WORDS + w).copied().unwrap_or(0);
                put_u64(page, CHUNK_HDR + w * 8, word);
            }
            let checksum = page_checksum(page, pgno);
            self.chunks[c].checksum = checksum;
            self.changed[c] = false;
        }
        let page = pager.create(dir);
        page[0] = DIR_PAGE;
        put_u32(page, 4, n as u32);
        for (i, r) in self.chunks.iter().enumerate() {
            let at = DIR_HDR + i * DIR_ENTRY;
            put_u32(page, at, r.pgno);
            put_u64(page, at + 4, r.checksum);
        }
        let checksum = page_checksum(page, dir);
        self.dir = Ref { pgno: dir, checksum, txn };
        Ok(self.dir)
    }

    /// The chunks as the directory lists them (for the integrity check).
    pub fn chunk_refs(&self) -> Vec<Ref> {
        self.chunks.clone()
    }
}

/// Reads a bitmap page outside the cache and checks its checksum and kind.
fn read_verified(pager: &mut Pager, r: &Ref, page: &mut [u8], kind: u8) -> Result<()> {
    pager.read_direct(r.pgno, page)?;
    if page_checksum(page, r.pgno) != r.checksum {
        return corrupt(format!("allocation page {} does not match its checksum", r.pgno));
    }
    if page[0] != kind {
        return corrupt(format!("page {} is not an allocation page", r.pgno));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemFile;

    fn pager(f: &MemFile) -> Pager {
        Pager::new(Box::new(f.clone()), 16, |_| true)
    }

    #[test]
    fn a_page_freed_now_is_reused_first() {
        let mut a = Allocator::new();
        assert!(a.is_used(0), "the header page");
        let pages: Vec<u32> = (0..5).map(|_| a.alloc(1).unwrap()).collect();
        assert_eq!(pages, vec![1, 2, 3, 4, 5]);
        assert_eq!(a.page_count, 6);
        a.free(3, 1, true);
        assert!(!a.is_used(3) && !a.is_busy(3));
        assert_eq!(a.alloc(1).unwrap(), 3);
        assert_eq!(a.alloc(1).unwrap(), 6, "then the file grows");
    }

    #[test]
    fn a_deferred_free_is_reused_only_once_released() {
        let mut a = Allocator::new();
        for _ in 0..4 {
            a.alloc(1).unwrap();
        }
        // Transaction 7 frees page 2, which older snapshots may still read.
        a.free(2, 1, false);
        a.defer(7, &[(2, 1)]);
        assert!(!a.is_used(2), "the next commit no longer uses it");
        assert!(a.is_busy(2), "but it is not free yet");
        assert_eq!(a.pending_pages(), 1);
        assert_eq!(a.alloc(1).unwrap(), 5);
        a.release(6);
        assert_eq!(a.alloc(1).unwrap(), 6, "a reader older than 7 still holds it");
        a.release(7);
        assert_eq!(a.pending_pages(), 0);
        assert_eq!(a.alloc(1).unwrap(), 2);
    }

    #[test]
    fn runs_are_contiguous_and_fill_holes_that_fit() {
        let mut a = Allocator::new();
        for _ in 0..10 {
            a.alloc(1).unwrap();
        }
        a.free(3, 1, true);
        a.free(5, 3, true);
        assert_eq!(a.alloc(3).unwrap(), 5, "the first hole of three pages");
        let run = a.alloc(4).unwrap();
        assert_eq!(run, 11, "no hole fits: the file grows");
        assert_eq!(a.page_count, 15);
        for p in run..run + 4 {
            assert!(a.is_used(p));
        }
        // A free tail of the file is extended rather than skipped.
        a.free(12, 3, true);
        assert_eq!(a.alloc(5).unwrap(), 12);
        assert_eq!(a.page_count, 17);
    }

    #[test]
    fn shrinking_gives_back_the_free_tail_only() {
        let mut a = Allocator::new();
        for _ in 0..8 {
            a.alloc(1).unwrap();
        }
        a.free(2, 1, true);
        a.free(6, 3, true);
        a.shrink();
        assert_eq!(a.page_count, 6);
        assert_eq!(a.free_pages(), 1, "page 2 stays, inside the file");
        assert_eq!(a.alloc(1).unwrap(), 2);
    }

    #[test]
    fn rebuilding_refuses_pages_referred_to_twice_or_beyond_the_file() {
        let mut a = Allocator::rebuild(10);
        assert!(a.mark_used(3, 2));
        assert!(!a.mark_used(4, 1), "page 4 is already in use");
        assert!(!a.mark_used(9, 2), "page 10 is beyond the file");
        assert!(a.mark_used(9, 1));
        assert_eq!(a.free_pages(), 10 - 1 - 3);
    }

    #[test]
    fn the_bitmap_persists_and_loads_back() {
        let f = MemFile::with(vec![0u8; PAGE]);
        let mut pager = pager(&f);
        let mut a = Allocator::new();
        for _ in 0..300 {
            a.alloc(1).unwrap();
        }
        for p in (10..300).step_by(7) {
            a.free(p, 1, true);
        }
        let mut freed = Vec::new();
        let dir = a.persist(&mut pager, 1, &mut freed).unwrap();
        assert!(freed.is_empty(), "nothing was persisted before");
        assert_eq!(dir, a.dir);
        pager.flush().unwrap();
        let b = Allocator::load(&mut pager, dir, a.page_count).unwrap();
        for p in 0..a.page_count {
            assert_eq!(a.is_used(p), b.is_used(p), "page {}", p);
        }
        assert!(b.chunk_refs().iter().all(|r| b.is_used(r.pgno)) && b.is_used(b.dir.pgno));
        // Persisting again replaces the bitmap's pages, freeing the old ones.
        let mut a = b;
        let mut freed = Vec::new();
        a.persist(&mut pager, 2, &mut freed).unwrap();
        assert_eq!(freed.len(), 2, "the old chunk and directory");
        // A damaged bitmap page is an error, not a wrong bitmap.
        pager.flush().unwrap();
        let chunk = a.chunk_refs()[0].pgno as usize;
        f.flip(chunk * PAGE + 100, 3);
        assert!(matches!(
            Allocator::load(&mut pager, a.dir, a.page_count),
            Err(Error::Corrupt(m)) if m.contains("checksum")
        ));
    }

    #[test]
    fn a_forgotten_bitmap_frees_its_pages() {
        let f = MemFile::with(vec![0u8; PAGE]);
        let mut pager = pager(&f);
        let mut a = Allocator::new();
        a.alloc(1).unwrap();
        let mut freed = Vec::new();
        a.persist(&mut pager, 1, &mut freed).unwrap();
        let meta = vec![a.chunk_refs()[0].pgno, a.dir.pgno];
        let mut freed = Vec::new();
        a.forget_persisted(&mut freed);
        assert!(a.dir.is_empty());
        let mut pages: Vec<u32> = freed.iter().map(|&(p, _)| p).collect();
        pages.sort_unstable();
        let mut want = meta.clone();
        want.sort_unstable();
        assert_eq!(pages, want);
        assert!(meta.iter().all(|&p| !a.is_used(p) && a.is_busy(p)));
    }
}
