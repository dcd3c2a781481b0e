//! The database: trees over the page store, with transactions, snapshots
//! and durable commits. Each concern has its own module:
//!
//! - `open`: opening a file, choosing and recovering a commit slot;
//! - `txn`: the write transaction, its commit, durability, close;
//! - `snapshots`: MVCC read snapshots and when freed pages are reusable;
//! - `versions`: the revision counter, never reused across restarts;
//! - `read`: lookups and prefix scans of a committed state;
//! - `write`: puts and deletes in the write transaction;
//! - `expiry`: the expiry index and the sweep of expired entries;
//! - `verify`: the integrity check.
//!
//! This module holds the database's state and its statistics.

mod expiry;
mod open;
mod read;
mod snapshots;
mod txn;
mod verify;
mod versions;
mod write;

pub use crate::pager::header::State;
use crate::pager::header::Slot;
use crate::store::PageStore;
use snapshots::Snapshots;
use versions::Versions;

/// An open database.
pub struct Db {
    store: PageStore,
    /// What readers see: the last commit that is durable (or, for
    /// non-durable commits, the last commit).
    visible: State,
    /// The last commit, maybe still waiting for its sync.
    latest: State,
    /// The write transaction's state, while one runs.
    work: Option<State>,
    durable_txn: u64,
    /// A durable commit waits for its sync.
    in_flight: bool,
    snapshots: Snapshots,
    versions: Versions,
    /// The commit slots as last written, and which one is current.
    slots: [Slot; 2],
    primary: usize,
    file_len: u64,
    /// A write failed: writes are refused until the file is reopened.
    poisoned: bool,
    /// What opening found wrong and worked around, if anything (reported
    /// by the integrity check).
    recovery: Vec<String>,
}

impl Db {
    fn new(store: PageStore, file_len: u64) -> Db {
        Db {
            store,
            visible: State::default(),
            latest: State::default(),
            work: None,
            durable_txn: 0,
            in_flight: false,
            snapshots: Snapshots::default(),
            versions: Versions::default(),
            slots: [Slot::default(), Slot::default()],
            primary: 0,
            file_len,
            poisoned: false,
            recovery: Vec::new(),
        }
    }

    /// Numbers about the database, as JSON.
    pub fn stats(&self) -> String {
        format!(
            "{{\"txn\":{},\"revision\":{},\"keys\":{},\"pages\":{},\"freePages\":{},\"pendingPages\":{},\"cachedPages\":{},\"cachePages\":{},\"cacheMisses\":{},\"fileBytes\":{},\"snapshots\":{}}}",
            self.latest.txn,
            self.latest.revision,
            self.latest.count,
            self.store.alloc.page_count,
            self.store.alloc.free_pages(),
            self.store.alloc.pending_pages(),
            self.store.pager.cached(),
            self.store.pager.capacity(),
            self.store.pager.misses(),
            self.file_len,
            self.snapshots.len()
        )
    }
}

#[cfg(test)]
impl Db {
    /// Pages the running transaction has spilled (for tests).
    pub fn spilled_pages(&self) -> usize {
        self.store.pager.spilled_count()
    }
}

/// Helpers the db modules' unit tests share.
#[cfg(test)]
mod testing {
    use super::Db;
    use crate::storage::MemFile;

    /// Opens the database in `f` with a cache of `cache` pages.
    pub fn open(f: &MemFile, cache: usize) -> Db {
        Db::open(Box::new(f.clone()), cache).unwrap()
    }

    /// Commits the running transaction and syncs it.
    pub fn commit(db: &mut Db) {
        if db.commit(true).unwrap() {
            db.sync().unwrap();
            db.synced().unwrap();
        }
    }

    /// One committed transaction putting `pairs` (revisions from `op`).
    pub fn put_all(db: &mut Db, pairs: &[(&[u8], &[u8])]) {
        db.begin().unwrap();
        db.op().unwrap();
        for (k, v) in pairs {
            db.put(k, v, 0, 0).unwrap();
        }
        commit(db);
    }

    /// The value at `key` in the visible state.
    pub fn value(db: &mut Db, key: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if db.get(0, key, 0, &mut out).unwrap() {
            Some(out[16..].to_vec())
        } else {
            None
        }
    }

    /// Whether the integrity check passes; the report otherwise.
    pub fn verified(db: &mut Db) -> Result<(), String> {
        let report = db.verify().unwrap();
        if report.starts_with("{\"ok\":true") {
            Ok(())
        } else {
            Err(report)
        }
    }
}
