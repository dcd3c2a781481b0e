//! Expiry: an entry may carry an expiry time. Reads skip expired entries
//! at once; the expiry index (a second tree keyed by expiry time, then key)
//! finds them so a sweep can delete them in expiry order.

use super::Db;
use crate::btree::BTree;
use crate::error::{corrupt, Result};

/// The expiry index's key for `key` expiring at `expires`: the time
/// big-endian first, so the index is in expiry order.
fn ttl_key(expires: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The expiry time and key of an expiry index key.
fn split_ttl_key(k: &[u8]) -> Result<(u64, &[u8])> {
    if k.len() < 8 {
        return corrupt("the expiry index has a key of fewer than 8 bytes".into());
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&k[..8]);
    Ok((u64::from_be_bytes(t), &k[8..]))
}

impl Db {
    /// Adds `key`, expiring at `expires`, to the expiry index.
    pub(super) fn ttl_insert(&mut self, expires: u64, key: &[u8]) -> Result<()> {
        let root = self.work().ttl;
        let mut tree = BTree::new(&mut self.store, root);
        tree.insert(&ttl_key(expires, key), b"", 0, 0)?;
        let ttl = tree.root();
        self.work().ttl = ttl;
        Ok(())
    }

    /// Takes `key`, expiring at `expires`, out of the expiry index.
    pub(super) fn ttl_remove(&mut self, expires: u64, key: &[u8]) -> Result<()> {
        let root = self.work().ttl;
        let mut tree = BTree::new(&mut self.store, root);
        tree.remove(&ttl_key(expires, key))?;
        let ttl = tree.root();
        self.work().ttl = ttl;
        Ok(())
    }

    /// Deletes up to `max` expired entries; their keys go to `out` (length
    /// u32, bytes). Returns how many.
    pub fn sweep(&mut self, now: u64, max: u32, out: &mut Vec<u8>) -> Result<u32> {
        self.guarded(|db| {
            let root = db.work().ttl;
            // Index keys before (now + 1) expire at `now` or earlier.
            let end = now.checked_add(1).map(|t| t.to_be_bytes());
            let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut cursor = BTree::new(&mut db.store, root).range(b"", end.as_ref().map(|e| &e[..]))?;
            while (due.len() as u32) < max {
                let l = match cursor.next(&mut db.store)? {
                    Some(l) => l,
                    None => break,
                };
                let (expires, key) = split_ttl_key(l.key)?;
                due.push((expires, key.to_vec()));
            }
            let mut n = 0;
            for (expires, key) in due {
                let main = db.work().main;
                let current = BTree::new(&mut db.store, main).get(&key, |l| l.expires)?;
                if current == Some(expires) {
                    db.delete_inner(&key, now)?;
                    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                    out.extend_from_slice(&key);
                    n += 1;
                } else {
                    db.ttl_remove(expires, &key)?;
                }
            }
            Ok(n)
        })
    }

    /// The earliest expiry of any entry (ms since the epoch), or 0.
    pub fn next_expiry(&mut self) -> Result<u64> {
        let root = self.work.unwrap_or(self.latest).ttl;
        let mut cursor = BTree::new(&mut self.store, root).range(b"", None)?;
        let first = match cursor.next(&mut self.store)? {
            Some(l) => split_ttl_key(l.key)?.0,
            None => 0,
        };
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, open, verified};
    use super::*;
    use crate::storage::MemFile;

    #[test]
    fn index_keys_sort_by_expiry_first() {
        assert!(ttl_key(255, b"zzz") < ttl_key(256, b"a"));
        assert_eq!(split_ttl_key(&ttl_key(77, b"key")).unwrap(), (77, &b"key"[..]));
        assert!(split_ttl_key(b"short").is_err());
    }

    #[test]
    fn expired_entries_are_invisible_then_swept_in_expiry_order() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"a", b"1", 1000, 0).unwrap();
        db.put(b"b", b"2", 0, 0).unwrap();
        db.put(b"c", b"3", 2000, 0).unwrap();
        db.put(b"d", b"4", 500, 0).unwrap();
        // Rewritten without an expiry: its index entry goes.
        db.put(b"d", b"5", 0, 0).unwrap();
        commit(&mut db);
        let mut out = Vec::new();
        assert!(db.get(0, b"a", 999, &mut out).unwrap());
        assert!(!db.get(0, b"a", 1000, &mut out).unwrap());
        assert_eq!(db.next_expiry().unwrap(), 1000);
        db.begin().unwrap();
        out.clear();
        assert_eq!(db.sweep(5000, 1, &mut out).unwrap(), 1, "at most max");
        assert_eq!(&out[4..], b"a", "the earliest first");
        out.clear();
        assert_eq!(db.sweep(1500, 100, &mut out).unwrap(), 0, "c is not due yet");
        commit(&mut db);
        assert_eq!(db.next_expiry().unwrap(), 2000);
        let report = db.verify().unwrap();
        assert!(report.contains("\"keys\":3"), "{}", report);
        verified(&mut db).unwrap();
    }
}
