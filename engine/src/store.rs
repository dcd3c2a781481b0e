//! The page store the trees live in: the pager and the allocator, and the
//! running transaction's bookkeeping over them. Pages the transaction
//! wrote are its own (their references carry its id) and are edited in
//! place; a committed page is copied to a new page before its first change
//! (copy-on-write) and freed once nothing can see it. Large values live in
//! runs of pages of their own, written and read past the cache.

use crate::alloc::Allocator;
use crate::error::{corrupt, Result};
use crate::page::{page_checksum, pages_for, Ref};
use crate::pager::Pager;

pub struct PageStore {
    pub pager: Pager,
    pub alloc: Allocator,
    /// The running transaction (0: none).
    txn: u64,
    /// Runs of committed pages the running transaction freed.
    freed: Vec<(u32, u32)>,
    /// A buffer for encoding an entry (kept to spare an allocation per put).
    pub scratch: Vec<u8>,
}

impl PageStore {
    pub fn new(pager: Pager, alloc: Allocator) -> PageStore {
        PageStore { pager, alloc, txn: 0, freed: Vec::new(), scratch: Vec::new() }
    }

    /// The running transaction's id (0: none).
    #[inline]
    pub fn txn(&self) -> u64 {
        self.txn
    }

    /// Starts transaction `txn`: the pages it allocates are its own.
    pub fn begin(&mut self, txn: u64) {
        self.txn = txn;
        self.freed.clear();
    }

    /// Ends the running transaction; returns the runs of committed pages it
    /// freed (to be reused once no reader can see them).
    pub fn end(&mut self) -> Vec<(u32, u32)> {
        self.txn = 0;
        std::mem::take(&mut self.freed)
    }

    /// Drops the running transaction's pages (after a failed write).
    pub fn abort(&mut self) {
        self.pager.clear_dirty();
        self.txn = 0;
        self.freed.clear();
    }

    /// Reads a tree page (verified by the pager when loaded). A page the
    /// running transaction spilled is verified against the checksum kept at
    /// spilling (its parent's is filled in at commit).
    #[inline]
    pub fn node(&mut self, r: &Ref) -> Result<&[u8]> {
        if r.txn == self.txn && r.txn != 0 && !self.pager.is_dirty(r.pgno) {
            if let Some(checksum) = self.pager.spilled(r.pgno) {
                let spilled = Ref { checksum, ..*r };
                return self.pager.read(&spilled);
            }
        }
        self.pager.read(r)
    }

    /// A reference to the running transaction's page `pgno` (its checksum
    /// is filled in at commit).
    pub fn own(&self, pgno: u32) -> Ref {
        Ref { pgno, checksum: 0, txn: self.txn }
    }

    /// A new page of the running transaction.
    pub fn alloc(&mut self) -> Result<u32> {
        self.alloc.alloc(1)
    }

    /// Frees `n` pages at `pgno` written by transaction `owner`: at once
    /// when the running transaction wrote them (no commit refers to them),
    /// else once no reader can see them.
    pub fn free(&mut self, pgno: u32, n: u32, owner: u64) {
        if owner == self.txn {
            for p in pgno..pgno + n {
                self.pager.discard(p);
            }
            self.alloc.free(pgno, n, true);
        } else {
            self.alloc.free(pgno, n, false);
            self.freed.push((pgno, n));
        }
    }

    /// The page of `r` as the running transaction's own, copying it first if
    /// a commit wrote it.
    pub fn writable(&mut self, r: Ref) -> Result<u32> {
        // A page the running transaction wrote is its own: every such page
        // stays dirty (or spilled) until the commit.
        if r.txn == self.txn {
            if !self.pager.is_dirty(r.pgno) {
                self.pager.unspill(r.pgno)?;
            }
            return Ok(r.pgno);
        }
        self.node(&r)?;
        let pgno = self.alloc.alloc(1)?;
        self.pager.copy(&r, pgno)?;
        self.free(r.pgno, 1, r.txn);
        Ok(pgno)
    }

    /// Writes `data` to new pages of its own; returns the first page and
    /// the data's checksum.
    pub fn write_run(&mut self, data: &[u8]) -> Result<(u32, u64)> {
        let pgno = self.alloc.alloc(pages_for(data.len() as u32))?;
        self.pager.write_direct(pgno, data)?;
        Ok((pgno, page_checksum(data, pgno)))
    }

    /// Appends the `len` bytes stored from page `pgno` on to `out`,
    /// verified against `checksum`.
    pub fn read_run(&mut self, len: u32, pgno: u32, checksum: u64, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + len as usize, 0);
        if let Err(e) = self.pager.read_direct(pgno, &mut out[start..]) {
            out.truncate(start);
            return Err(e);
        }
        if page_checksum(&out[start..], pgno) != checksum {
            out.truncate(start);
            return corrupt(format!("the value in pages from {} does not match its checksum", pgno));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::page::PAGE;
    use crate::storage::MemFile;

    fn store(f: &MemFile) -> PageStore {
        PageStore::new(Pager::new(Box::new(f.clone()), 16, |_| true), Allocator::new())
    }

    #[test]
    fn a_committed_page_is_copied_before_a_change_and_freed_later() {
        let f = MemFile::with(vec![0u8; PAGE]);
        let mut s = store(&f);
        s.begin(1);
        let p = s.alloc().unwrap();
        s.pager.create(p)[0] = 7;
        assert_eq!(s.writable(s.own(p)).unwrap(), p, "its own page is edited in place");
        s.pager.flush().unwrap();
        let checksum = page_checksum(&f.bytes()[p as usize * PAGE..(p as usize + 1) * PAGE], p);
        assert!(s.end().is_empty());
        s.begin(2);
        let committed = Ref { pgno: p, checksum, txn: 1 };
        let q = s.writable(committed).unwrap();
        assert_ne!(q, p, "a committed page is never written in place");
        assert_eq!(s.pager.write(q)[0], 7);
        assert!(s.alloc.is_busy(p) && !s.alloc.is_used(p));
        assert_eq!(s.end(), vec![(p, 1)]);
    }

    #[test]
    fn an_own_page_freed_is_reusable_at_once() {
        let f = MemFile::with(vec![0u8; PAGE]);
        let mut s = store(&f);
        s.begin(3);
        let p = s.alloc().unwrap();
        s.pager.create(p);
        s.free(p, 1, 3);
        assert!(!s.pager.is_dirty(p));
        assert_eq!(s.alloc().unwrap(), p);
        assert!(s.end().is_empty());
    }

    #[test]
    fn a_run_round_trips_and_damage_is_an_error() {
        let f = MemFile::with(vec![0u8; PAGE]);
        let mut s = store(&f);
        s.begin(1);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let (pgno, checksum) = s.write_run(&data).unwrap();
        assert_eq!(s.alloc.page_count, pgno + 3, "10000 bytes take three pages");
        let mut out = b"prefix".to_vec();
        s.read_run(data.len() as u32, pgno, checksum, &mut out).unwrap();
        assert_eq!(&out[6..], &data[..]);
        f.flip(pgno as usize * PAGE + 5000, 0);
        let mut out = b"prefix".to_vec();
        let e = s.read_run(data.len() as u32, pgno, checksum, &mut out).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)));
        assert_eq!(out, b"prefix", "nothing of a damaged value is returned");
    }
}
