//! Versions: every write gets a revision (a key's `lastIndex`) from one
//! counter that is persisted and never goes back, also across crashes.
//! Readers may see non-durable commits, whose revisions a crash would lose
//! from the file; so a durable commit reserves revisions ahead, and after a
//! crash the counter restarts above the reservation. A commit that would go
//! past the reservation is made durable.

use super::Db;
use crate::error::Result;
use crate::pager::header::Slot;

/// Revisions a durable commit reserves ahead.
pub const REVISION_RESERVE: u64 = 1 << 20;

#[derive(Default)]
pub struct Versions {
    /// Revisions up to this one may have been given out.
    reserved: u64,
}

impl Versions {
    /// The counter as a recovered slot left it, and the revision it
    /// restarts from.
    pub fn restore(slot: &Slot) -> (Versions, u64) {
        (Versions { reserved: slot.reserved }, slot.state.revision.max(slot.reserved))
    }

    /// Whether a commit up to `revision` must be durable (it passes the
    /// reservation on disk).
    pub fn must_persist(&self, revision: u64) -> bool {
        revision > self.reserved
    }

    /// The reservation a durable commit up to `revision` writes: none ahead
    /// for a clean close (nothing can be lost after it).
    pub fn reservation(revision: u64, clean: bool) -> u64 {
        if clean {
            revision
        } else {
            revision + REVISION_RESERVE
        }
    }

    /// Records the reservation a commit wrote.
    pub fn reserved(&mut self, reserved: u64) {
        self.reserved = reserved;
    }
}

impl Db {
    /// Starts one caller's operation in the transaction: its writes get a
    /// new revision, returned. (The glue numbers operations itself: see
    /// `raise_revision`.)
    #[cfg(test)]
    pub fn op(&mut self) -> Result<u64> {
        self.writable_state()?;
        let w = self.work();
        w.revision += 1;
        Ok(w.revision)
    }

    /// The revision of the transaction's last operation.
    pub fn revision(&self) -> Result<u64> {
        self.writable_state()?;
        Ok(self.work.unwrap().revision)
    }

    /// Makes the transaction's revision at least `revision` (the glue
    /// numbers operations itself).
    pub fn raise_revision(&mut self, revision: u64) {
        if let Some(w) = self.work.as_mut() {
            w.revision = w.revision.max(revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open};
    use super::*;
    use crate::storage::MemFile;

    #[test]
    fn a_commit_past_the_reservation_is_made_durable() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"k", b"v", 0, 0).unwrap();
        assert!(db.commit(false).unwrap(), "a new file reserves nothing: the first commit is durable");
        db.sync().unwrap();
        db.synced().unwrap();
        db.begin().unwrap();
        db.op().unwrap();
        assert!(!db.commit(false).unwrap(), "within the reservation");
        db.begin().unwrap();
        db.raise_revision(5 + REVISION_RESERVE);
        assert!(db.commit(false).unwrap(), "past the reservation: it must be synced");
        db.sync().unwrap();
        db.synced().unwrap();
        db.begin().unwrap();
        db.op().unwrap();
        assert!(!db.commit(false).unwrap(), "within the new reservation");
    }

    #[test]
    fn revisions_readers_saw_are_not_given_again_after_a_crash() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        commit(&mut db);
        let mut highest = 0;
        for i in 0..50u32 {
            db.begin().unwrap();
            highest = db.op().unwrap();
            db.put(format!("k{}", i).as_bytes(), b"v", 0, 0).unwrap();
            assert!(!db.commit(false).unwrap());
        }
        // A crash: nothing synced since the first commit. Reopening finds
        // that commit, and the counter above what readers may have seen.
        let disk = MemFile::with(f.bytes());
        drop(db);
        let mut db = open(&disk, 16);
        assert!(db.stats().contains("\"keys\":0"));
        db.begin().unwrap();
        assert!(db.op().unwrap() > highest);
    }

    #[test]
    fn the_glue_numbers_operations_and_the_transaction_follows() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        assert_eq!(db.revision().unwrap(), 0);
        db.put_at(b"a", b"1", 7, 0, 0).unwrap();
        db.put_at(b"b", b"2", 5, 0, 0).unwrap();
        assert_eq!(db.revision().unwrap(), 7, "never back");
        assert_eq!(db.check(b"b", 0).unwrap(), Some(5));
        db.raise_revision(9);
        commit(&mut db);
        assert!(matches!(db.revision(), Err(crate::error::Error::Invalid(_))), "no transaction");
        db.begin().unwrap();
        assert_eq!(db.op().unwrap(), 10);
    }

    #[test]
    fn the_reservation_restores_from_a_slot() {
        let mut slot = Slot::default();
        slot.state.revision = 10;
        slot.reserved = 10 + REVISION_RESERVE;
        let (v, start) = Versions::restore(&slot);
        assert_eq!(start, 10 + REVISION_RESERVE);
        assert!(!v.must_persist(start));
        assert!(v.must_persist(start + 1));
        assert_eq!(Versions::reservation(7, true), 7);
        assert_eq!(Versions::reservation(7, false), 7 + REVISION_RESERVE);
    }
}
