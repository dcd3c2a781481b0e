//! MVCC: a reader pins a committed state and sees it for its whole life,
//! also while later commits land. Pages a commit frees are reused only once
//! that commit is durable and no pinned state is older than it.

use super::{Db, State};
use crate::error::{Error, Result};
use crate::pager::FxMap;

/// The pinned states, by snapshot id.
pub struct Snapshots {
    pinned: FxMap<u32, State>,
    next: u32,
}

impl Default for Snapshots {
    fn default() -> Snapshots {
        Snapshots { pinned: FxMap::default(), next: 1 }
    }
}

impl Snapshots {
    /// Pins `state`; returns its id (never 0, which names the visible state).
    pub fn pin(&mut self, state: State) -> u32 {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.pinned.insert(id, state);
        id
    }

    pub fn get(&self, id: u32) -> Option<State> {
        self.pinned.get(&id).copied()
    }

    pub fn unpin(&mut self, id: u32) {
        self.pinned.remove(&id);
    }

    pub fn clear(&mut self) {
        self.pinned.clear();
    }

    pub fn len(&self) -> usize {
        self.pinned.len()
    }

    /// The oldest transaction a pinned state or `current` still sees.
    pub fn oldest(&self, current: u64) -> u64 {
        self.pinned.values().map(|s| s.txn).fold(current, u64::min)
    }
}

impl Db {
    /// The state snapshot `id` sees (0: the visible state).
    pub(super) fn state_of(&self, snapshot: u32) -> Result<State> {
        if snapshot == 0 {
            return Ok(self.visible);
        }
        self.snapshots
            .get(snapshot)
            .ok_or_else(|| Error::Invalid(format!("snapshot {} is not open", snapshot)))
    }

    /// Pins the visible state for a reader; returns its id.
    pub fn snapshot(&mut self) -> u32 {
        self.snapshots.pin(self.visible)
    }

    /// Lets go of a snapshot.
    pub fn release(&mut self, id: u32) {
        self.snapshots.unpin(id);
        self.reclaim();
    }

    /// Makes reusable the pages freed by transactions that are durable and
    /// older than every reader's state.
    pub(super) fn reclaim(&mut self) {
        let oldest = self.snapshots.oldest(self.visible.txn);
        self.store.alloc.release(oldest.min(self.durable_txn));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open, put_all, value, verified};
    use super::*;
    use crate::storage::MemFile;

    fn state(txn: u64) -> State {
        State { txn, ..State::default() }
    }

    #[test]
    fn snapshot_ids_are_distinct_and_the_oldest_state_bounds_reuse() {
        let mut s = Snapshots::default();
        let a = s.pin(state(5));
        let b = s.pin(state(3));
        let c = s.pin(state(8));
        assert!(a != b && b != c && a != 0);
        assert_eq!(s.oldest(10), 3);
        s.unpin(b);
        assert_eq!(s.oldest(10), 5);
        assert_eq!(s.get(c), Some(state(8)));
        assert_eq!(s.get(b), None);
        s.clear();
        assert_eq!(s.oldest(10), 10);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_snapshot_sees_its_state_while_commits_land() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        put_all(&mut db, &[(b"a", b"1"), (b"b", b"1")]);
        let snap = db.snapshot();
        put_all(&mut db, &[(b"a", b"2"), (b"c", b"2")]);
        let mut out = Vec::new();
        assert!(db.get(snap, b"a", 0, &mut out).unwrap());
        assert_eq!(&out[16..], b"1");
        assert!(!db.get(snap, b"c", 0, &mut out).unwrap());
        assert_eq!(value(&mut db, b"a").as_deref(), Some(&b"2"[..]));
        db.release(snap);
        assert!(matches!(db.get(snap, b"a", 0, &mut out), Err(Error::Invalid(_))));
    }

    #[test]
    fn pages_a_snapshot_can_see_are_reused_only_after_its_release() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            (0..400u32).map(|i| (format!("k{:04}", i).into_bytes(), vec![1u8; 100])).collect();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        put_all(&mut db, &refs);
        let snap = db.snapshot();
        let pages = |db: &Db| db.store.alloc.page_count;
        // Rewrite every key over and over: with the snapshot open, the pages
        // of its state must stay, so the file grows.
        let before = pages(&db);
        for round in 0..5u8 {
            let fresh: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(k, _)| (k.clone(), vec![round; 100])).collect();
            let refs: Vec<(&[u8], &[u8])> = fresh.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            put_all(&mut db, &refs);
        }
        let held = pages(&db);
        assert!(held >= before * 2, "the snapshot's pages were reused: {} then {}", before, held);
        let mut out = Vec::new();
        db.store.pager.reset_cache();
        assert!(db.get(snap, b"k0123", 0, &mut out).unwrap());
        assert_eq!(&out[16..], &[1u8; 100][..], "the snapshot reads its own state from disk");
        assert!(db.store.alloc.pending_pages() > 0);
        db.release(snap);
        assert_eq!(db.store.alloc.pending_pages(), 0, "released, the pages are free again");
        for round in 0..5u8 {
            let fresh: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(k, _)| (k.clone(), vec![round; 100])).collect();
            let refs: Vec<(&[u8], &[u8])> = fresh.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            put_all(&mut db, &refs);
        }
        assert!(pages(&db) <= held, "freed pages are not reused: {} pages, {} before", pages(&db), held);
        verified(&mut db).unwrap();
        commit_nothing(&mut db);
    }

    fn commit_nothing(db: &mut Db) {
        db.begin().unwrap();
        commit(db);
        verified(db).unwrap();
    }
}
