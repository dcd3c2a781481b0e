//! The copy-on-write B+tree over the page store. A committed page is never
//! changed: the first change a transaction makes to a page copies it to a
//! new page (and frees the old one once nothing can see it); later changes
//! in the same transaction edit that copy in place. Checksums of changed
//! pages are filled in bottom-up when the transaction commits (`finalize`).
//!
//! A `BTree` is a tree's root and the store it lives in, for the length of
//! a few calls. Inserts and removes return what they replaced; values too
//! large for a leaf live in pages of their own, which the tree frees with
//! the entry. Range scans go through a `Cursor`.

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::node::{self, Leaf, Value, BRANCH, INLINE_MAX, KEY_MAX, LEAF};
use crate::page::{get_ref, get_u16, page_checksum, pages_for, Ref, PAGE};
use crate::store::PageStore;

/// What an insert or a remove replaced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Old {
    pub revision: u64,
    /// 0: it did not expire.
    pub expires: u64,
    /// The length of its value.
    pub len: u32,
}

/// What an insert below a branch did to its child.
enum Ins {
    Same(Ref),
    Split(Ref, Vec<u8>, Ref),
}

/// What a remove below a branch did to its child.
enum Del {
    NotFound,
    /// The child's new reference (`None`: it became empty), whether it is
    /// under a quarter full, and the entry removed.
    Done(Option<Ref>, bool, Removed),
}

/// An entry taken out of a leaf: what it was, and its overflow pages.
#[derive(Clone, Copy)]
struct Removed {
    old: Old,
    /// (pgno, pages, txn) of a value in pages of its own.
    overflow: Option<(u32, u32, u64)>,
}

fn removed(l: &Leaf) -> Removed {
    let (len, overflow) = match l.value {
        Value::Inline(v) => (v.len() as u32, None),
        Value::Overflow { len, pgno, txn, .. } => (len, Some((pgno, pages_for(len), txn))),
    };
    Removed { old: Old { revision: l.revision, expires: l.expires, len }, overflow }
}

/// The key of an encoded entry (leaf or branch: the key comes first).
fn entry_key(e: &[u8]) -> &[u8] {
    &e[2..2 + get_u16(e, 0)]
}

fn branch_entry_ref(e: &[u8]) -> Ref {
    get_ref(e, 2 + get_u16(e, 0))
}

/// Whether a page may be written before its commit (see `Pager::spill`):
/// leaves, whose checksums nothing below them changes.
pub fn spillable(p: &[u8]) -> bool {
    node::kind(p) == LEAF
}

/// A tree: its root, in its store.
pub struct BTree<'s> {
    store: &'s mut PageStore,
    root: Ref,
}

impl<'s> BTree<'s> {
    /// The tree at `root` (`Ref::EMPTY`: the empty tree) in `store`.
    pub fn new(store: &'s mut PageStore, root: Ref) -> BTree<'s> {
        BTree { store, root }
    }

    /// The root as the calls so far left it.
    pub fn root(&self) -> Ref {
        self.root
    }

    /// Finds `key` and hands its entry to `f`.
    pub fn get<R>(&mut self, key: &[u8], f: impl FnOnce(Leaf) -> R) -> Result<Option<R>> {
        if self.root.is_empty() {
            return Ok(None);
        }
        let mut r = self.root;
        loop {
            let p = self.store.node(&r)?;
            if node::kind(p) == BRANCH {
                r = node::child(p, node::child_index(p, key));
            } else {
                return Ok(match node::search(p, key) {
                    Ok(i) => Some(f(node::leaf(p, i))),
                    Err(_) => None,
                });
            }
        }
    }

    /// A cursor over the entries with keys from `start` (included) to `end`
    /// (excluded; `None`: to the last). The tree must not change while it
    /// is used.
    pub fn range(&mut self, start: &[u8], end: Option<&[u8]>) -> Result<Cursor> {
        Cursor::new(self.store, self.root, start, end)
    }

    /// Writes `value` at `key` with a revision and an expiry (0: none);
    /// returns what it replaced.
    pub fn insert(&mut self, key: &[u8], value: &[u8], revision: u64, expires: u64) -> Result<Option<Old>> {
        if key.is_empty() || key.len() > KEY_MAX {
            return Err(Error::Invalid(format!("keys must be 1 to {} bytes long", KEY_MAX)));
        }
        if value.len() > u32::MAX as usize {
            return Err(Error::Invalid("the value is too large".into()));
        }
        let v = if value.len() > INLINE_MAX {
            let (pgno, checksum) = self.store.write_run(value)?;
            Value::Overflow { len: value.len() as u32, pgno, checksum, txn: self.store.txn() }
        } else {
            Value::Inline(value)
        };
        let mut entry = std::mem::take(&mut self.store.scratch);
        node::leaf_entry(&mut entry, key, revision, expires, v);
        let result = self.insert_entry(key, &entry);
        self.store.scratch = entry;
        let replaced = result?;
        Ok(replaced.map(|r| self.drop_removed(r)))
    }

    fn drop_removed(&mut self, r: Removed) -> Old {
        if let Some((pgno, n, txn)) = r.overflow {
            self.store.free(pgno, n, txn);
        }
        r.old
    }

    fn insert_entry(&mut self, key: &[u8], entry: &[u8]) -> Result<Option<Removed>> {
        if self.root.is_empty() {
            let pgno = self.store.alloc()?;
            let p = self.store.pager.create(pgno);
            node::init(p, LEAF);
            node::insert(p, 0, entry);
            self.root = self.store.own(pgno);
            return Ok(None);
        }
        let mut replaced = None;
        match self.insert_rec(self.root, key, entry, &mut replaced)? {
            Ins::Same(r) => self.root = r,
            Ins::Split(left, sep, right) => {
                let pgno = self.store.alloc()?;
                let a = node::branch_entry(left, b"");
                let b = node::branch_entry(right, &sep);
                node::build(self.store.pager.create(pgno), BRANCH, &[&a, &b]);
                self.root = self.store.own(pgno);
            }
        }
        Ok(replaced)
    }

    fn insert_rec(&mut self, r: Ref, key: &[u8], entry: &[u8], replaced: &mut Option<Removed>) -> Result<Ins> {
        let (is_branch, i, c) = {
            let p = self.store.node(&r)?;
            if node::kind(p) == BRANCH {
                let i = node::child_index(p, key);
                (true, i, node::child(p, i))
            } else {
                (false, 0, Ref::EMPTY)
            }
        };
        if is_branch {
            let sub = self.insert_rec(c, key, entry, replaced)?;
            let pgno = self.store.writable(r)?;
            let own = self.store.own(pgno);
            return match sub {
                Ins::Same(nc) => {
                    node::set_child(self.store.pager.write(pgno), i, nc);
                    Ok(Ins::Same(own))
                }
                Ins::Split(left, sep, right) => {
                    let p = self.store.pager.write(pgno);
                    node::set_child(p, i, left);
                    let e = node::branch_entry(right, &sep);
                    if node::insert(p, i + 1, &e) {
                        Ok(Ins::Same(own))
                    } else {
                        self.split(pgno, i + 1, e, false)
                    }
                }
            };
        }
        let pgno = self.store.writable(r)?;
        let p = self.store.pager.write(pgno);
        let (at, appended) = match node::search(p, key) {
            Ok(j) => {
                *replaced = Some(removed(&node::leaf(p, j)));
                node::remove(p, j);
                (j, false)
            }
            Err(j) => (j, j == node::count(p)),
        };
        if node::insert(p, at, entry) {
            return Ok(Ins::Same(self.store.own(pgno)));
        }
        self.split(pgno, at, entry.to_vec(), appended)
    }

    /// Splits the full page `pgno` while inserting `e` at `at`.
    fn split(&mut self, pgno: u32, at: usize, e: Vec<u8>, appended: bool) -> Result<Ins> {
        let (kind, mut entries) = {
            let p = self.store.pager.write(pgno);
            let entries: Vec<Vec<u8>> = (0..node::count(p)).map(|i| node::entry(p, i).to_vec()).collect();
            (node::kind(p), entries)
        };
        entries.insert(at, e);
        let lens: Vec<usize> = entries.iter().map(|e| e.len()).collect();
        let m = node::split_point(&lens, appended);
        let right = self.store.alloc()?;
        let sep;
        if kind == LEAF {
            sep = node::separator(entry_key(&entries[m - 1]), entry_key(&entries[m]));
            let left: Vec<&[u8]> = entries[..m].iter().map(|e| e.as_slice()).collect();
            node::build(self.store.pager.write(pgno), LEAF, &left);
            let rest: Vec<&[u8]> = entries[m..].iter().map(|e| e.as_slice()).collect();
            node::build(self.store.pager.create(right), LEAF, &rest);
        } else {
            sep = entry_key(&entries[m]).to_vec();
            let first = node::branch_entry(branch_entry_ref(&entries[m]), b"");
            let left: Vec<&[u8]> = entries[..m].iter().map(|e| e.as_slice()).collect();
            node::build(self.store.pager.write(pgno), BRANCH, &left);
            let mut rest: Vec<&[u8]> = vec![&first];
            rest.extend(entries[m + 1..].iter().map(|e| e.as_slice()));
            node::build(self.store.pager.create(right), BRANCH, &rest);
        }
        Ok(Ins::Split(self.store.own(pgno), sep, self.store.own(right)))
    }

    /// Removes `key`; returns what it removed (`None`: it was not there, and
    /// nothing changed).
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Old>> {
        if self.root.is_empty() {
            return Ok(None);
        }
        let (root, r) = match self.delete_rec(self.root, key)? {
            Del::NotFound => return Ok(None),
            Del::Done(None, _, r) => (Ref::EMPTY, r),
            Del::Done(Some(mut root), _, r) => {
                // A root branch with one child is replaced by that child.
                loop {
                    let only = {
                        let p = self.store.node(&root)?;
                        if node::kind(p) == BRANCH && node::count(p) == 1 {
                            Some(node::child(p, 0))
                        } else {
                            None
                        }
                    };
                    match only {
                        Some(c) => {
                            self.store.free(root.pgno, 1, root.txn);
                            root = c;
                        }
                        None => break,
                    }
                }
                (root, r)
            }
        };
        self.root = root;
        Ok(Some(self.drop_removed(r)))
    }

    fn delete_rec(&mut self, r: Ref, key: &[u8]) -> Result<Del> {
        let (is_branch, i, c) = {
            let p = self.store.node(&r)?;
            if node::kind(p) == BRANCH {
                let i = node::child_index(p, key);
                (true, i, node::child(p, i))
            } else {
                match node::search(p, key) {
                    Ok(j) => (false, j, Ref::EMPTY),
                    Err(_) => return Ok(Del::NotFound),
                }
            }
        };
        let pgno;
        let gone;
        if is_branch {
            let (nc, under) = match self.delete_rec(c, key)? {
                Del::NotFound => return Ok(Del::NotFound),
                Del::Done(nc, under, below) => {
                    gone = below;
                    (nc, under)
                }
            };
            pgno = self.store.writable(r)?;
            match nc {
                None => {
                    let p = self.store.pager.write(pgno);
                    if i == 0 && node::count(p) > 1 {
                        // The next child becomes the first: its separator goes.
                        let next = node::child(p, 1);
                        node::remove(p, 1);
                        node::remove(p, 0);
                        node::insert(p, 0, &node::branch_entry(next, b""));
                    } else {
                        node::remove(p, i);
                    }
                }
                Some(nc) => {
                    node::set_child(self.store.pager.write(pgno), i, nc);
                    if under {
                        self.merge(pgno, i)?;
                    }
                }
            }
        } else {
            pgno = self.store.writable(r)?;
            let p = self.store.pager.write(pgno);
            gone = removed(&node::leaf(p, i));
            node::remove(p, i);
        }
        let p = self.store.pager.write(pgno);
        if node::count(p) == 0 {
            let txn = self.store.txn();
            self.store.free(pgno, 1, txn);
            return Ok(Del::Done(None, true, gone));
        }
        let under = node::used(p) < PAGE / 4;
        Ok(Del::Done(Some(self.store.own(pgno)), under, gone))
    }

    /// Merges child `i` of branch `pgno` with a neighbour when both fit one
    /// page, so removes do not leave a tree of near-empty pages.
    fn merge(&mut self, pgno: u32, i: usize) -> Result<()> {
        let (li, ri) = if i > 0 { (i - 1, i) } else { (0, 1) };
        let (left, right, sep) = {
            let p = self.store.pager.write(pgno);
            if node::count(p) < 2 {
                return Ok(());
            }
            (node::child(p, li), node::child(p, ri), node::key(p, ri).to_vec())
        };
        let (kind, left_used) = {
            let p = self.store.node(&left)?;
            (node::kind(p), node::used(p))
        };
        let right_entries: Vec<Vec<u8>> = {
            let p = self.store.node(&right)?;
            let mut entries: Vec<Vec<u8>> = (0..node::count(p)).map(|k| node::entry(p, k).to_vec()).collect();
            if kind == BRANCH && !entries.is_empty() {
                entries[0] = node::branch_entry(branch_entry_ref(&entries[0]), &sep);
            }
            entries
        };
        let extra: usize = right_entries.iter().map(|e| e.len() + node::SLOT).sum();
        if left_used + extra > PAGE {
            return Ok(());
        }
        let lpg = self.store.writable(left)?;
        {
            let p = self.store.pager.write(lpg);
            for e in &right_entries {
                let n = node::count(p);
                let ok = node::insert(p, n, e);
                debug_assert!(ok);
            }
        }
        self.store.free(right.pgno, 1, right.txn);
        let own = self.store.own(lpg);
        let p = self.store.pager.write(pgno);
        node::set_child(p, li, own);
        node::remove(p, ri);
        Ok(())
    }

    /// Fills in the checksums of the pages the running transaction wrote,
    /// bottom-up; returns the root with its own checksum.
    pub fn finalize(&mut self) -> Result<Ref> {
        let root = self.finalize_at(self.root)?;
        self.root = root;
        Ok(root)
    }

    fn finalize_at(&mut self, r: Ref) -> Result<Ref> {
        if r.is_empty() || r.txn != self.store.txn() {
            return Ok(r);
        }
        if !self.store.pager.is_dirty(r.pgno) {
            let checksum = self.store.pager.spilled(r.pgno).expect("own page neither dirty nor spilled");
            return Ok(Ref { checksum, ..r });
        }
        let kids: Vec<(usize, Ref)> = {
            let p = self.store.pager.write(r.pgno);
            if node::kind(p) == BRANCH {
                (0..node::count(p)).map(|i| (i, node::child(p, i))).filter(|(_, c)| c.txn == r.txn).collect()
            } else {
                Vec::new()
            }
        };
        for (i, c) in kids {
            let done = self.finalize_at(c)?;
            node::set_child(self.store.pager.write(r.pgno), i, done);
        }
        let checksum = page_checksum(self.store.pager.write(r.pgno), r.pgno);
        Ok(Ref { pgno: r.pgno, checksum, txn: r.txn })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alloc::Allocator;
    use crate::pager::Pager;
    use crate::storage::MemFile;

    /// A store over a memory file holding only the header page, with
    /// transaction 1 running.
    pub(crate) fn store(f: &MemFile, cache: usize) -> PageStore {
        f.0.borrow_mut().bytes = vec![0u8; PAGE];
        let mut s = PageStore::new(Pager::new(Box::new(f.clone()), cache, node::sane), Allocator::new());
        s.begin(1);
        s
    }

    /// Commits the running transaction's tree: checksums, pages on disk,
    /// freed pages reusable; starts the next transaction.
    pub(crate) fn commit(s: &mut PageStore, root: Ref) -> Ref {
        let txn = s.txn();
        let root = BTree::new(s, root).finalize().unwrap();
        s.pager.flush().unwrap();
        let freed = s.end();
        s.alloc.defer(txn, &freed);
        s.alloc.release(txn);
        s.begin(txn + 1);
        root
    }

    fn key(i: u32) -> Vec<u8> {
        format!("key{:06}", i).into_bytes()
    }

    fn keys(s: &mut PageStore, root: Ref, start: &[u8], end: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut c = BTree::new(s, root).range(start, end).unwrap();
        let mut out = Vec::new();
        while let Some(l) = c.next(s).unwrap() {
            out.push(l.key.to_vec());
        }
        out
    }

    fn depth(s: &mut PageStore, root: Ref) -> usize {
        let mut r = root;
        let mut d = 1;
        loop {
            let p = s.node(&r).unwrap();
            if node::kind(p) != BRANCH {
                return d;
            }
            r = node::child(p, 0);
            d += 1;
        }
    }

    #[test]
    fn insert_and_remove_return_what_they_replaced() {
        let f = MemFile::default();
        let mut s = store(&f, 64);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        assert_eq!(t.insert(b"a", b"one", 1, 0).unwrap(), None);
        assert_eq!(t.insert(b"b", b"two", 2, 500).unwrap(), None);
        assert_eq!(t.insert(b"a", b"three!", 3, 0).unwrap(), Some(Old { revision: 1, expires: 0, len: 3 }));
        assert_eq!(t.get(b"a", |l| l.revision).unwrap(), Some(3));
        assert_eq!(t.remove(b"b").unwrap(), Some(Old { revision: 2, expires: 500, len: 3 }));
        assert_eq!(t.remove(b"b").unwrap(), None, "already gone");
        let root = t.root();
        assert_eq!(t.remove(b"zzz").unwrap(), None);
        assert_eq!(t.root(), root, "a remove that finds nothing changes nothing");
        assert_eq!(t.remove(b"a").unwrap(), Some(Old { revision: 3, expires: 0, len: 6 }));
        assert!(t.root().is_empty());
        assert!(matches!(t.insert(b"", b"x", 1, 0), Err(Error::Invalid(_))));
        assert!(matches!(t.insert(&[1u8; KEY_MAX + 1], b"x", 1, 0), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_cursor_walks_in_order_within_its_bounds_across_splits() {
        let f = MemFile::default();
        let mut s = store(&f, 64);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        // Scrambled order, so splits happen all over the tree.
        for i in 0..5000u32 {
            let k = (i * 7919) % 5000;
            assert!(t.insert(&key(k * 2), &[k as u8; 40], k as u64, 0).unwrap().is_none());
        }
        let root = t.root();
        assert!(depth(&mut s, root) >= 3, "the test needs branches of branches");
        let all = keys(&mut s, root, b"", None);
        let want: Vec<Vec<u8>> = (0..5000).map(|k| key(k * 2)).collect();
        assert!(all == want, "the cursor's order is not the keys' order");
        // Start between keys, at a key; end exclusive, between keys.
        let got = keys(&mut s, root, &key(1001), Some(&key(1010)));
        assert_eq!(got, vec![key(1002), key(1004), key(1006), key(1008)]);
        let got = keys(&mut s, root, &key(1002), Some(&key(1004)));
        assert_eq!(got, vec![key(1002)]);
        assert!(keys(&mut s, root, &key(10_000), None).is_empty(), "past the last key");
        assert!(keys(&mut s, root, b"", Some(b"key")).is_empty(), "before the first key");
        assert_eq!(keys(&mut s, root, &key(9996), None), vec![key(9996), key(9998)]);
        // The same walk over the committed tree, read back from the file.
        let root = commit(&mut s, root);
        s.pager.reset_cache();
        assert!(keys(&mut s, root, b"", None) == want);
    }

    #[test]
    fn removing_everything_merges_down_to_the_empty_tree() {
        let f = MemFile::default();
        let mut s = store(&f, 64);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        for i in 0..3000u32 {
            t.insert(&key(i), &[1u8; 60], 1, 0).unwrap();
        }
        let root = t.root();
        let root = commit(&mut s, root);
        let mut t = BTree::new(&mut s, root);
        for i in (0..3000u32).rev().filter(|i| i % 3 != 0) {
            assert!(t.remove(&key(i)).unwrap().is_some(), "key {}", i);
        }
        let root = t.root();
        let left = keys(&mut s, root, b"", None);
        assert_eq!(left.len(), 1000);
        assert!(left.iter().enumerate().all(|(n, k)| *k == key(n as u32 * 3)));
        let mut t = BTree::new(&mut s, root);
        for i in (0..3000u32).step_by(3) {
            assert!(t.remove(&key(i)).unwrap().is_some());
        }
        assert!(t.root().is_empty());
        commit(&mut s, Ref::EMPTY);
        assert_eq!(s.alloc.free_pages(), s.alloc.page_count as u64 - 1, "every tree page came back");
    }

    #[test]
    fn a_committed_tree_is_not_changed_by_later_transactions() {
        let f = MemFile::default();
        let mut s = store(&f, 16);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        for i in 0..2000u32 {
            t.insert(&key(i), b"old", 1, 0).unwrap();
        }
        let v1 = t.root();
        let v1 = commit(&mut s, v1);
        let mut t = BTree::new(&mut s, v1);
        for i in (0..2000u32).step_by(5) {
            t.insert(&key(i), b"new", 2, 0).unwrap();
        }
        t.remove(&key(1)).unwrap();
        let v2 = t.root();
        assert_ne!(v2.pgno, v1.pgno);
        // Nothing was freed for reuse yet: the old tree reads whole, from disk.
        s.pager.reset_cache();
        let old = |s: &mut PageStore, i: u32| BTree::new(s, v1).get(&key(i), |l| l.revision).unwrap();
        assert_eq!(old(&mut s, 5), Some(1));
        assert_eq!(old(&mut s, 1), Some(1));
        assert_eq!(BTree::new(&mut s, v2).get(&key(5), |l| l.revision).unwrap(), Some(2));
        assert_eq!(BTree::new(&mut s, v2).get(&key(1), |l| l.revision).unwrap(), None);
    }

    fn overflow_of(s: &mut PageStore, root: Ref, k: &[u8]) -> (u32, u32, u64) {
        BTree::new(s, root)
            .get(k, |l| match l.value {
                Value::Overflow { len, pgno, checksum, .. } => (len, pgno, checksum),
                Value::Inline(_) => panic!("a large value inline"),
            })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn large_values_live_in_their_own_pages_and_go_with_their_entry() {
        let f = MemFile::default();
        let mut s = store(&f, 64);
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        t.insert(b"big", &big, 1, 0).unwrap();
        t.insert(b"small", &[9u8; INLINE_MAX], 1, 0).unwrap();
        let root = t.root();
        let (len, pgno, checksum) = overflow_of(&mut s, root, b"big");
        assert_eq!(len, 20_000);
        let mut out = Vec::new();
        s.read_run(len, pgno, checksum, &mut out).unwrap();
        assert!(out == big);
        assert!(BTree::new(&mut s, root).get(b"small", |l| matches!(l.value, Value::Inline(_))).unwrap().unwrap());
        let root = commit(&mut s, root);
        // Replaced by a later transaction: its five pages wait for readers.
        let mut t = BTree::new(&mut s, root);
        let old = t.insert(b"big", b"now small", 2, 0).unwrap().unwrap();
        assert_eq!(old, Old { revision: 1, expires: 0, len: 20_000 });
        let root = t.root();
        for p in pgno..pgno + 5 {
            assert!(s.alloc.is_busy(p) && !s.alloc.is_used(p), "page {}", p);
        }
        let root = commit(&mut s, root);
        assert!((pgno..pgno + 5).all(|p| !s.alloc.is_busy(p)), "released with the commit");
        // Written and removed by one transaction: free at once.
        let mut t = BTree::new(&mut s, root);
        t.insert(b"tmp", &big, 3, 0).unwrap();
        let root = t.root();
        let (_, tmp, _) = overflow_of(&mut s, root, b"tmp");
        let mut t = BTree::new(&mut s, root);
        assert_eq!(t.remove(b"tmp").unwrap().map(|o| o.len), Some(20_000));
        assert!(!s.alloc.is_busy(tmp));
    }

    #[test]
    fn finalize_fills_in_checksums_that_a_cold_read_verifies() {
        let f = MemFile::default();
        let mut s = store(&f, 16);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        for i in 0..8000u32 {
            t.insert(&key(i), &[3u8; 30], 1, 0).unwrap();
        }
        // A small cache: leaves are spilled before the commit.
        let root = t.root();
        s.pager.spill(spillable).unwrap();
        assert!(s.pager.spilled_count() > 0);
        let root = commit(&mut s, root);
        assert_ne!(root.checksum, 0);
        s.pager.reset_cache();
        assert_eq!(keys(&mut s, root, b"", None).len(), 8000);
        // A damaged page on disk is found by its parent's checksum.
        s.pager.reset_cache();
        let leaf = {
            let p = s.node(&root).unwrap();
            node::child(p, 1).pgno
        };
        s.pager.reset_cache();
        f.flip(leaf as usize * PAGE + 2000, 5);
        let mut c = BTree::new(&mut s, root).range(b"", None).unwrap();
        let mut err = None;
        loop {
            match c.next(&mut s) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(err, Some(Error::Corrupt(_))), "{:?}", err);
    }
}
