//! Range scans: a cursor walks a tree's leaves in key order, from a start
//! key to an end key. It keeps the path of branches it came down and a copy
//! of the leaf it is in, not a borrow of the store, so between steps the
//! caller may read other pages (a large value, another tree). The tree must
//! not change while a cursor walks it: a committed tree never does, and a
//! writer collects what it will change, then changes it.

use crate::error::Result;
use crate::node::{self, Leaf, BRANCH};
use crate::page::{Ref, PAGE};
use crate::store::PageStore;

pub struct Cursor {
    /// The branches above the leaf, each with the next child to visit.
    stack: Vec<(Ref, usize)>,
    /// A copy of the current leaf (empty before the first and after the last).
    page: Vec<u8>,
    /// The next entry of `page`.
    at: usize,
    /// Keys from this one on are past the range.
    end: Option<Vec<u8>>,
}

impl Cursor {
    /// A cursor at the first entry of the tree at `root` whose key is at
    /// least `start`; it stops before `end` (`None`: after the last entry).
    pub fn new(store: &mut PageStore, root: Ref, start: &[u8], end: Option<&[u8]>) -> Result<Cursor> {
        let mut c = Cursor { stack: Vec::new(), page: Vec::new(), at: 0, end: end.map(|e| e.to_vec()) };
        if root.is_empty() {
            return Ok(c);
        }
        let mut r = root;
        loop {
            let p = store.node(&r)?;
            if node::kind(p) == BRANCH {
                let i = node::child_index(p, start);
                let child = node::child(p, i);
                c.stack.push((r, i + 1));
                r = child;
            } else {
                c.at = match node::search(p, start) {
                    Ok(i) | Err(i) => i,
                };
                c.page.resize(PAGE, 0);
                c.page.copy_from_slice(p);
                return Ok(c);
            }
        }
    }

    /// The next entry in the range, or `None` after the last.
    pub fn next(&mut self, store: &mut PageStore) -> Result<Option<Leaf<'_>>> {
        if self.page.is_empty() {
            return Ok(None);
        }
        while self.at >= node::count(&self.page) {
            if !self.next_leaf(store)? {
                self.page.clear();
                return Ok(None);
            }
        }
        if let Some(end) = &self.end {
            if node::compare(node::key(&self.page, self.at), end) != std::cmp::Ordering::Less {
                self.page.clear();
                return Ok(None);
            }
        }
        self.at += 1;
        Ok(Some(node::leaf(&self.page, self.at - 1)))
    }

    /// Moves to the first entry of the next leaf; false after the last leaf.
    fn next_leaf(&mut self, store: &mut PageStore) -> Result<bool> {
        let mut r = loop {
            let (b, next) = match self.stack.pop() {
                Some(top) => top,
                None => return Ok(false),
            };
            let p = store.node(&b)?;
            if next < node::count(p) {
                let c = node::child(p, next);
                self.stack.push((b, next + 1));
                break c;
            }
        };
        loop {
            let p = store.node(&r)?;
            if node::kind(p) == BRANCH {
                let c = node::child(p, 0);
                self.stack.push((r, 1));
                r = c;
            } else {
                self.page.copy_from_slice(p);
                self.at = 0;
                return Ok(true);
            }
        }
    }
}

/// The first key after every key that starts with `prefix` (`None`: no
/// such key, as for an empty prefix or one of 0xff bytes only).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::tests::{commit, store};
    use crate::btree::BTree;
    use crate::storage::MemFile;

    #[test]
    fn prefix_ends_bound_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_cursor_over_an_empty_tree_ends_at_once() {
        let f = MemFile::default();
        let mut s = store(&f, 16);
        let mut c = Cursor::new(&mut s, Ref::EMPTY, b"", None).unwrap();
        assert!(c.next(&mut s).unwrap().is_none());
        assert!(c.next(&mut s).unwrap().is_none());
    }

    #[test]
    fn a_prefix_range_yields_its_keys_only_across_leaves() {
        let f = MemFile::default();
        let mut s = store(&f, 16);
        let mut t = BTree::new(&mut s, Ref::EMPTY);
        for dir in ["a", "b", "b\u{7f}", "c"] {
            for i in 0..700u32 {
                let k = format!("{}/{:04}", dir, i);
                t.insert(k.as_bytes(), &[0u8; 50], i as u64, 0).unwrap();
            }
        }
        let root = t.root();
        let root = commit(&mut s, root);
        let end = prefix_end(b"b/");
        let mut c = Cursor::new(&mut s, root, b"b/", end.as_deref()).unwrap();
        let mut n = 0u32;
        while let Some(l) = c.next(&mut s).unwrap() {
            assert_eq!(l.key, format!("b/{:04}", n).as_bytes());
            assert_eq!(l.revision, n as u64);
            n += 1;
        }
        assert_eq!(n, 700, "700 keys over many leaves, none of the next prefix");
        assert!(c.next(&mut s).unwrap().is_none(), "an ended cursor stays ended");
    }
}
