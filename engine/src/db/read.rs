//! Reads of a committed state (the visible one, or a snapshot's): a key's
//! entry, and the live entries under a prefix, in pages of output.

use super::write::live;
use super::Db;
use crate::btree::BTree;
use crate::cursor::prefix_end;
use crate::error::Result;
use crate::node::Value;
use crate::page::put_u32;

enum Hit {
    Expired,
    Inline,
    Overflow(u32, u32, u64),
}

impl Db {
    /// Reads `key` at a snapshot (0: the visible state). On a hit `out`
    /// holds: revision u64, expiry f64 (0: none), the value.
    pub fn get(&mut self, snapshot: u32, key: &[u8], now: u64, out: &mut Vec<u8>) -> Result<bool> {
        let state = self.state_of(snapshot)?;
        out.clear();
        let hit = BTree::new(&mut self.store, state.main).get(key, |l| {
            if !live(l.expires, now) {
                return Hit::Expired;
            }
            out.extend_from_slice(&l.revision.to_le_bytes());
            out.extend_from_slice(&(l.expires as f64).to_le_bytes());
            match l.value {
                Value::Inline(v) => {
                    out.extend_from_slice(v);
                    Hit::Inline
                }
                Value::Overflow { len, pgno, checksum, .. } => Hit::Overflow(len, pgno, checksum),
            }
        })?;
        match hit {
            None | Some(Hit::Expired) => Ok(false),
            Some(Hit::Inline) => Ok(true),
            Some(Hit::Overflow(len, pgno, checksum)) => {
                self.store.read_run(len, pgno, checksum, out)?;
                Ok(true)
            }
        }
    }

    /// Lists live entries whose key starts with `prefix` (after the key
    /// `after`, if given), into `out`: a header (more u32, count u32), then
    /// per entry key_len u32, value_len u32, revision u64, expiry f64, key,
    /// value. Stops after `max_bytes` of output or `max_count` entries (0:
    /// no limit); `more` says whether it stopped early.
    pub fn scan_prefix(
        &mut self,
        snapshot: u32,
        prefix: &[u8],
        after: Option<&[u8]>,
        now: u64,
        max_bytes: usize,
        max_count: u32,
        out: &mut Vec<u8>,
    ) -> Result<u32> {
        let state = self.state_of(snapshot)?;
        out.clear();
        out.extend_from_slice(&[0u8; 8]);
        let mut count = 0u32;
        let mut more = false;
        let end = prefix_end(prefix);
        let mut cursor = BTree::new(&mut self.store, state.main).range(after.unwrap_or(prefix), end.as_deref())?;
        while let Some(l) = cursor.next(&mut self.store)? {
            // (Only a key `after` outside the prefix gets here.)
            if !l.key.starts_with(prefix) {
                break;
            }
            if Some(l.key) == after || !live(l.expires, now) {
                continue;
            }
            if count > 0 && (out.len() >= max_bytes || count == max_count) {
                more = true;
                break;
            }
            let vlen = match l.value {
                Value::Inline(v) => v.len() as u32,
                Value::Overflow { len, .. } => len,
            };
            out.extend_from_slice(&(l.key.len() as u32).to_le_bytes());
            out.extend_from_slice(&vlen.to_le_bytes());
            out.extend_from_slice(&l.revision.to_le_bytes());
            out.extend_from_slice(&(l.expires as f64).to_le_bytes());
            out.extend_from_slice(l.key);
            match l.value {
                Value::Inline(v) => out.extend_from_slice(v),
                Value::Overflow { len, pgno, checksum, .. } => self.store.read_run(len, pgno, checksum, out)?,
            }
            count += 1;
        }
        put_u32(out, 0, more as u32);
        put_u32(out, 4, count);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{open, put_all};
    use crate::page::get_u32;
    use crate::storage::MemFile;

    /// The keys and values of a page of scan output, and whether more follow.
    fn decode(out: &[u8]) -> (Vec<(Vec<u8>, Vec<u8>)>, bool) {
        let n = get_u32(out, 4);
        let mut at = 8;
        let mut entries = Vec::new();
        for _ in 0..n {
            let kl = get_u32(out, at) as usize;
            let vl = get_u32(out, at + 4) as usize;
            at += 24;
            entries.push((out[at..at + kl].to_vec(), out[at + kl..at + kl + vl].to_vec()));
            at += kl + vl;
        }
        (entries, get_u32(out, 0) != 0)
    }

    #[test]
    fn a_prefix_scan_pages_through_live_entries_with_large_values() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let big = vec![8u8; 5000];
        let keys: Vec<String> = (0..300).map(|i| format!("p/{:03}", i)).collect();
        let mut pairs: Vec<(&[u8], &[u8])> =
            keys.iter().map(|k| (k.as_bytes(), if k.ends_with('7') { &big[..] } else { &b"v"[..] })).collect();
        pairs.push((b"p", b"not under p/"));
        pairs.push((b"q/0", b"after"));
        put_all(&mut db, &pairs);
        db.begin().unwrap();
        db.op().unwrap();
        db.put(b"p/expired", b"x", 10, 0).unwrap();
        db.commit(false).unwrap();
        let mut seen = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        let mut pages = 0;
        loop {
            let mut out = Vec::new();
            db.scan_prefix(0, b"p/", after.as_deref(), 100, 4096, 0, &mut out).unwrap();
            let (entries, more) = decode(&out);
            pages += 1;
            for (k, v) in entries {
                assert_eq!(v.len(), if k.ends_with(b"7") { 5000 } else { 1 });
                after = Some(k.clone());
                seen.push(String::from_utf8(k).unwrap());
            }
            if !more {
                break;
            }
        }
        assert!(seen == keys, "every key under p/ once, in order");
        assert!(pages > 10, "4 KiB pages of output");
        let mut out = Vec::new();
        db.scan_prefix(0, b"p/", None, 100, 1 << 20, 5, &mut out).unwrap();
        let (entries, more) = decode(&out);
        assert_eq!(entries.len(), 5);
        assert!(more);
    }
}
