//! The write transaction and its commit. One writer at a time: `begin`
//! starts it, the operations of `write` and `expiry` change its state, and
//! `commit` writes its pages, then (when durable) the commit slot that is
//! not current and the god byte naming it, in one write of the header; the
//! host's one `sync` makes all of it durable at once, and only then do
//! readers see the commit (`synced`). A failed write leaves the database
//! refusing writes until it is reopened, so what is on disk stays the last
//! good commit.

use super::versions::Versions;
use super::{Db, State};
use crate::btree::BTree;
use crate::error::{Error, Result};
use crate::page::{Ref, PAGE};
use crate::pager::header::Slot;

impl Db {
    pub(super) fn writable_state(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.work.is_none() {
            return Err(Error::Invalid("no write transaction is open".into()));
        }
        Ok(())
    }

    /// Marks the database unwritable after a failed write.
    pub(super) fn poison(&mut self) {
        self.poisoned = true;
        self.store.abort();
        self.work = None;
    }

    /// Runs a change of the transaction; a failure poisons the database
    /// (the transaction's state in memory may be half-changed).
    pub(super) fn guarded<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        self.writable_state()?;
        let result = f(self);
        if result.is_err() {
            self.poison();
        }
        result
    }

    /// The transaction's state (one must be running).
    pub(super) fn work(&mut self) -> &mut State {
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
        self.store.begin(txn);
        Ok(())
    }

    /// Commits the transaction: writes its pages and, when `durable`, a
    /// commit slot. Returns whether the host must now sync (then call
    /// `synced`); until then readers see the state before this commit.
    pub fn commit(&mut self, durable: bool) -> Result<bool> {
        self.guarded(|db| db.commit_inner(durable, false))
    }

    /// `clean`: the last commit of a clean close, which also persists the
    /// allocation bitmap.
    fn commit_inner(&mut self, durable: bool, clean: bool) -> Result<bool> {
        let mut w = self.work.unwrap();
        w.main = BTree::new(&mut self.store, w.main).finalize()?;
        w.ttl = BTree::new(&mut self.store, w.ttl).finalize()?;
        let durable = durable || self.versions.must_persist(w.revision);
        let mut freed = self.store.end();
        // The bitmap is persisted by a clean close only; any other commit
        // makes the persisted one stale.
        let dir = if clean {
            self.store.alloc.persist(&mut self.store.pager, w.txn, &mut freed)?
        } else {
            self.store.alloc.forget_persisted(&mut freed);
            Ref::EMPTY
        };
        self.store.pager.flush()?;
        let needed = self.store.alloc.page_count as u64 * PAGE as u64;
        if needed > self.file_len {
            self.store.pager.set_file_len(needed)?;
            self.file_len = needed;
        }
        self.store.alloc.defer(w.txn, &freed);
        if durable {
            let reserved = Versions::reservation(w.revision, clean);
            let target = 1 - self.primary;
            self.slots[target] = Slot {
                state: w,
                reserved,
                synced: self.durable_txn,
                dir,
                page_count: self.store.alloc.page_count,
            };
            self.store.pager.write_header(target, &self.slots)?;
            self.primary = target;
            self.versions.reserved(reserved);
            self.in_flight = true;
        }
        self.latest = w;
        self.work = None;
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
        let result = self.store.pager.sync();
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
        self.store.alloc.release(u64::MAX);
        let before = self.store.alloc.page_count;
        self.store.alloc.shrink();
        self.checkpoint(true)?;
        if self.store.alloc.page_count < before {
            let len = self.store.alloc.page_count as u64 * PAGE as u64;
            self.store.pager.set_file_len(len)?;
            self.store.pager.sync()?;
            self.file_len = len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open, put_all, value, verified};
    use super::*;
    use crate::storage::MemFile;

    #[test]
    fn a_durable_commit_is_visible_only_once_synced() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"k", b"v", 0, 0).unwrap();
        assert!(db.commit(true).unwrap());
        assert_eq!(value(&mut db, b"k"), None, "not yet synced");
        assert!(matches!(db.begin(), Err(Error::Invalid(_))), "one commit in flight at a time");
        let syncs = f.0.borrow().syncs;
        db.sync().unwrap();
        assert_eq!(f.0.borrow().syncs, syncs + 1, "one sync per commit");
        db.synced().unwrap();
        assert_eq!(value(&mut db, b"k").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_failed_write_refuses_writes_and_loses_nothing_committed() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        put_all(&mut db, &[(b"kept", b"1")]);
        f.0.borrow_mut().fail_writes = true;
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"lost", b"2", 0, 0).unwrap();
        assert!(matches!(db.commit(true), Err(Error::Io(_))));
        assert!(matches!(db.begin(), Err(Error::Poisoned)));
        assert_eq!(value(&mut db, b"kept").as_deref(), Some(&b"1"[..]), "reads go on");
        f.0.borrow_mut().fail_writes = false;
        assert!(matches!(db.begin(), Err(Error::Poisoned)), "until reopened");
        drop(db);
        let mut db = open(&f, 16);
        assert_eq!(value(&mut db, b"kept").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&mut db, b"lost"), None);
        verified(&mut db).unwrap();
    }

    #[test]
    fn a_failed_sync_refuses_writes() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"k", b"v", 0, 0).unwrap();
        assert!(db.commit(true).unwrap());
        f.0.borrow_mut().fail_syncs = true;
        assert!(db.sync().is_err());
        assert!(matches!(db.synced(), Err(Error::Poisoned)));
        assert!(matches!(db.begin(), Err(Error::Poisoned)));
        assert_eq!(value(&mut db, b"k"), None, "never acknowledged, never visible");
    }

    #[test]
    fn a_sync_the_glue_reports_failed_refuses_writes() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"k", b"v", 0, 0).unwrap();
        assert!(db.commit(true).unwrap());
        db.sync_failed();
        assert!(matches!(db.begin(), Err(Error::Poisoned)));
        assert_eq!(value(&mut db, b"k"), None);
        assert!(db.close().is_ok(), "closing writes nothing more");
    }

    #[test]
    fn a_clean_close_shrinks_the_file_and_persists_the_bitmap() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let big = vec![5u8; 50_000];
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..40u32).map(|i| (format!("k{}", i).into_bytes(), big.clone())).collect();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        put_all(&mut db, &refs);
        db.begin().unwrap();
        db.op().unwrap();
        db.delete_tree(b"", b"k", 0, &mut Vec::new(), false).unwrap();
        commit(&mut db);
        put_all(&mut db, &[(b"small", b"1")]);
        let grown = f.bytes().len();
        db.close().unwrap();
        assert!(f.bytes().len() < grown / 10, "{} bytes after close, {} before", f.bytes().len(), grown);
        let mut db = open(&f, 16);
        assert!(!db.slots[db.primary].dir.is_empty(), "the clean slot lists the bitmap");
        assert_eq!(value(&mut db, b"small").as_deref(), Some(&b"1"[..]));
        verified(&mut db).unwrap();
        // The next commit makes that bitmap stale: its pages are freed.
        put_all(&mut db, &[(b"more", b"2")]);
        assert!(db.store.alloc.dir.is_empty());
        verified(&mut db).unwrap();
    }
}
