//! The write transaction's operations: puts, deletes, and deletes of a key
//! with everything under it. Each changes the main tree and keeps the
//! expiry index and the key count in step; after each, the store may spill
//! pages so a large transaction's memory stays bounded.

use super::Db;
use crate::btree::{self, BTree};
use crate::cursor::prefix_end;
use crate::error::Result;

/// Whether an entry expiring at `expires` (0: never) is live at `now`.
pub(super) fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

/// Keys a delete of a tree collects before deleting them.
const DELETE_BATCH: usize = 1024;

impl Db {
    /// The revision of `key` in the transaction's state, if it is live.
    pub fn check(&mut self, key: &[u8], now: u64) -> Result<Option<u64>> {
        self.writable_state()?;
        let main = self.work.unwrap().main;
        self.guarded(|db| {
            let found = BTree::new(&mut db.store, main).get(key, |l| if live(l.expires, now) { Some(l.revision) } else { None })?;
            Ok(found.flatten())
        })
    }

    /// Writes `value` at `key` with the current operation's revision and an
    /// expiry (0: none). Returns whether it replaced a live entry. (The glue
    /// uses `put_at`.)
    #[cfg(test)]
    pub fn put(&mut self, key: &[u8], value: &[u8], expires: u64, now: u64) -> Result<bool> {
        self.guarded(|db| {
            let revision = db.work().revision;
            db.put_inner(key, value, revision, expires, now)
        })
    }

    /// Like `put`, with the revision the glue numbered the operation with
    /// (it counts operations itself, sparing a call per operation).
    pub fn put_at(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        self.writable_state()?;
        self.raise_revision(revision);
        self.guarded(|db| db.put_inner(key, value, revision, expires, now))
    }

    fn put_inner(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        let replaced = self.put_entry(key, value, revision, expires, now)?;
        self.store.pager.spill(btree::spillable)?;
        Ok(replaced)
    }

    fn put_entry(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64, now: u64) -> Result<bool> {
        let root = self.work().main;
        let mut tree = BTree::new(&mut self.store, root);
        let old = tree.insert(key, value, revision, expires)?;
        let main = tree.root();
        self.work().main = main;
        match old {
            Some(o) if o.expires != 0 => self.ttl_remove(o.expires, key)?,
            Some(_) => {}
            None => self.work().count += 1,
        }
        if expires != 0 {
            self.ttl_insert(expires, key)?;
        }
        Ok(old.map_or(false, |o| live(o.expires, now)))
    }

    /// Deletes `key`. Returns whether a live entry was deleted.
    pub fn delete(&mut self, key: &[u8], now: u64) -> Result<bool> {
        self.guarded(|db| db.delete_inner(key, now))
    }

    pub(super) fn delete_inner(&mut self, key: &[u8], now: u64) -> Result<bool> {
        let deleted = self.delete_entry(key, now)?;
        self.store.pager.spill(btree::spillable)?;
        Ok(deleted)
    }

    fn delete_entry(&mut self, key: &[u8], now: u64) -> Result<bool> {
        let root = self.work().main;
        let mut tree = BTree::new(&mut self.store, root);
        let old = match tree.remove(key)? {
            None => return Ok(false),
            Some(o) => o,
        };
        let main = tree.root();
        let w = self.work();
        w.main = main;
        w.count -= 1;
        if old.expires != 0 {
            self.ttl_remove(old.expires, key)?;
        }
        Ok(live(old.expires, now))
    }

    /// Deletes `key` (unless empty) and every key starting with `dir`. The
    /// live keys deleted are appended to `out` (length u32, bytes) when
    /// `collect` is set. Returns how many live keys were deleted.
    pub fn delete_tree(&mut self, key: &[u8], dir: &[u8], now: u64, out: &mut Vec<u8>, collect: bool) -> Result<u32> {
        self.guarded(|db| {
            let mut n = 0;
            let note = |out: &mut Vec<u8>, k: &[u8]| {
                if collect {
                    out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    out.extend_from_slice(k);
                }
            };
            if !key.is_empty() && db.delete_inner(key, now)? {
                n += 1;
                note(out, key);
            }
            // Deleting while walking would change the tree under the
            // cursor: collect a batch, delete it, look again.
            let end = prefix_end(dir);
            loop {
                let root = db.work().main;
                let mut batch: Vec<Vec<u8>> = Vec::new();
                let mut cursor = BTree::new(&mut db.store, root).range(dir, end.as_deref())?;
                while let Some(l) = cursor.next(&mut db.store)? {
                    batch.push(l.key.to_vec());
                    if batch.len() == DELETE_BATCH {
                        break;
                    }
                }
                if batch.is_empty() {
                    return Ok(n);
                }
                for k in batch {
                    if db.delete_inner(&k, now)? {
                        n += 1;
                        note(out, &k);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open, put_all, value, verified};
    use crate::error::Error;
    use crate::storage::MemFile;

    #[test]
    fn puts_and_deletes_report_live_entries_and_keep_the_count() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        assert!(!db.put(b"a", b"1", 0, 0).unwrap(), "nothing replaced");
        assert!(db.put(b"a", b"2", 0, 0).unwrap(), "a live entry replaced");
        assert!(!db.put(b"b", b"x", 100, 0).unwrap());
        assert!(!db.put(b"b", b"y", 0, 150).unwrap(), "the entry it replaced had expired");
        assert!(!db.delete(b"zz", 0).unwrap());
        assert!(db.delete(b"a", 0).unwrap());
        db.op().unwrap();
        db.put(b"c", b"3", 0, 0).unwrap();
        assert_eq!(db.check(b"c", 0).unwrap(), Some(2));
        assert_eq!(db.check(b"a", 0).unwrap(), None);
        commit(&mut db);
        assert!(db.stats().contains("\"keys\":2"), "{}", db.stats());
        assert_eq!(value(&mut db, b"b").as_deref(), Some(&b"y"[..]));
        verified(&mut db).unwrap();
    }

    #[test]
    fn a_tree_delete_takes_the_key_and_everything_under_it_only() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let keys: Vec<Vec<u8>> = (0..4000u32)
            .map(|i| format!("{}/{:05}", ["d", "d0", "e"][i as usize % 3], i).into_bytes())
            .collect();
        let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_slice(), &b"v"[..])).collect();
        put_all(&mut db, &pairs);
        put_all(&mut db, &[(b"d", b"itself")]);
        db.begin().unwrap();
        db.op().unwrap();
        let mut out = Vec::new();
        let n = db.delete_tree(b"d", b"d/", 0, &mut out, true).unwrap();
        assert_eq!(n, 1335, "the key itself and its 1334 keys, in two batches");
        let first = u32::from_le_bytes([out[0], out[1], out[2], out[3]]) as usize;
        assert_eq!(&out[4..4 + first], b"d");
        commit(&mut db);
        assert_eq!(value(&mut db, b"d"), None);
        assert_eq!(value(&mut db, b"d/00000"), None);
        assert!(value(&mut db, b"d0/00001").is_some(), "d0/ does not start with d/");
        assert!(value(&mut db, b"e/00002").is_some());
        assert!(db.stats().contains("\"keys\":2666"), "{}", db.stats());
        verified(&mut db).unwrap();
    }

    #[test]
    fn a_bad_key_is_refused() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        assert!(matches!(db.put(b"", b"v", 0, 0), Err(Error::Invalid(_))));
    }
}
