//! The copy-on-write B+tree. A committed page is never changed: the first
//! change a transaction makes to a page copies it to a new page (and frees
//! the old one once nothing can see it); later changes in the same
//! transaction edit that copy in place. Checksums of changed pages are
//! filled in bottom-up when the transaction commits (`finalize`).

use crate::db::Db;
use crate::error::Result;
use crate::node::{self, Leaf, Ref, Value, BRANCH, LEAF, PAGE};
use crate::pager::page_checksum;

/// What an insert below a branch did to its child.
enum Ins {
    Same(Ref),
    Split(Ref, Vec<u8>, Ref),
}

/// What a delete below a branch did to its child.
enum Del {
    NotFound,
    /// The child's new reference (`None`: it became empty) and whether it
    /// is under a quarter full.
    Done(Option<Ref>, bool),
}

/// What an insert or delete replaced, for the caller's bookkeeping.
#[derive(Clone, Copy, Debug)]
pub struct Old {
    pub revision: u64,
    pub expires: u64,
    /// Overflow pages of the old value: (pgno, pages, txn).
    pub overflow: Option<(u32, u32, u64)>,
}

/// The number of overflow pages a value of `len` bytes takes.
pub fn overflow_pages(len: u32) -> u32 {
    ((len as usize + PAGE - 1) / PAGE) as u32
}

fn old_of(l: &Leaf) -> Old {
    Old {
        revision: l.revision,
        expires: l.expires,
        overflow: match l.value {
            Value::Overflow { len, pgno, txn, .. } => Some((pgno, overflow_pages(len), txn)),
            Value::Inline(_) => None,
        },
    }
}

/// The key of an encoded entry (leaf or branch: the key comes first).
fn entry_key(e: &[u8]) -> &[u8] {
    &e[2..2 + node::get_u16(e, 0)]
}

fn branch_entry_ref(e: &[u8]) -> Ref {
    let at = 2 + node::get_u16(e, 0);
    Ref { pgno: node::get_u32(e, at), checksum: node::get_u64(e, at + 4), txn: node::get_u64(e, at + 12) }
}

impl Db {
    /// Reads a tree page (verified and checked by the pager when loaded).
    /// A page the running transaction spilled is verified against the
    /// checksum kept at spilling (its parent's is filled in at commit).
    #[inline]
    pub(crate) fn node(&mut self, r: &Ref) -> Result<&[u8]> {
        if r.txn == self.txn_id() && r.txn != 0 && !self.pager.is_dirty(r.pgno) {
            if let Some(checksum) = self.pager.spilled(r.pgno) {
                let spilled = Ref { checksum, ..*r };
                return self.pager.read(&spilled);
            }
        }
        self.pager.read(r)
    }

    /// Finds `key` under `root` and hands its entry to `f`.
    pub fn find<R>(&mut self, root: Ref, key: &[u8], f: impl FnOnce(Leaf) -> R) -> Result<Option<R>> {
        if root.is_empty() {
            return Ok(None);
        }
        let mut r = root;
        loop {
            let p = self.node(&r)?;
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

    /// Calls `f` with each entry whose key is at least `from`, in key order,
    /// until it returns false. `f` may read pages (a leaf is copied first).
    pub fn scan(
        &mut self,
        root: Ref,
        from: &[u8],
        f: &mut dyn FnMut(&mut Db, Leaf) -> Result<bool>,
    ) -> Result<()> {
        if root.is_empty() {
            return Ok(());
        }
        let mut stack: Vec<(Ref, usize)> = Vec::new();
        let mut page = vec![0u8; PAGE];
        let mut r = root;
        let mut first = true;
        loop {
            loop {
                let p = self.node(&r)?;
                if node::kind(p) == BRANCH {
                    let i = if first { node::child_index(p, from) } else { 0 };
                    let c = node::child(p, i);
                    stack.push((r, i + 1));
                    r = c;
                } else {
                    page.copy_from_slice(p);
                    break;
                }
            }
            let start = if first {
                match node::search(&page, from) {
                    Ok(i) | Err(i) => i,
                }
            } else {
                0
            };
            first = false;
            for i in start..node::count(&page) {
                if !f(self, node::leaf(&page, i))? {
                    return Ok(());
                }
            }
            loop {
                let (b, next) = match stack.pop() {
                    Some(top) => top,
                    None => return Ok(()),
                };
                let p = self.node(&b)?;
                if next < node::count(p) {
                    let c = node::child(p, next);
                    stack.push((b, next + 1));
                    r = c;
                    break;
                }
            }
        }
    }

    fn own(&self, pgno: u32) -> Ref {
        Ref { pgno, checksum: 0, txn: self.txn_id() }
    }

    /// Frees `n` pages at `pgno` written by transaction `owner`.
    pub(crate) fn free_pages(&mut self, pgno: u32, n: u32, owner: u64) {
        if owner == self.txn_id() {
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
    fn writable(&mut self, r: Ref) -> Result<u32> {
        // A page the running transaction wrote is its own: every such page
        // stays dirty until the commit.
        if r.txn == self.txn_id() {
            if !self.pager.is_dirty(r.pgno) {
                self.pager.unspill(r.pgno)?;
            }
            return Ok(r.pgno);
        }
        self.node(&r)?;
        let pgno = self.alloc.alloc(1)?;
        self.pager.copy(&r, pgno)?;
        self.free_pages(r.pgno, 1, r.txn);
        Ok(pgno)
    }

    /// Inserts or replaces the encoded leaf entry `entry` for `key`; what it
    /// replaced is left in `self.old`. Returns the new root.
    pub fn tree_insert(&mut self, root: Ref, key: &[u8], entry: &[u8]) -> Result<Ref> {
        if root.is_empty() {
            let pgno = self.alloc.alloc(1)?;
            let p = self.pager.create(pgno);
            node::init(p, LEAF);
            node::insert(p, 0, entry);
            return Ok(self.own(pgno));
        }
        match self.insert_rec(root, key, entry)? {
            Ins::Same(r) => Ok(r),
            Ins::Split(left, sep, right) => {
                let pgno = self.alloc.alloc(1)?;
                let a = node::branch_entry(left, b"");
                let b = node::branch_entry(right, &sep);
                node::build(self.pager.create(pgno), BRANCH, &[&a, &b]);
                Ok(self.own(pgno))
            }
        }
    }

    fn insert_rec(&mut self, r: Ref, key: &[u8], entry: &[u8]) -> Result<Ins> {
        let (is_branch, i, c) = {
            let p = self.node(&r)?;
            if node::kind(p) == BRANCH {
                let i = node::child_index(p, key);
                (true, i, node::child(p, i))
            } else {
                (false, 0, Ref::EMPTY)
            }
        };
        if is_branch {
            let sub = self.insert_rec(c, key, entry)?;
            let pgno = self.writable(r)?;
            let own = self.own(pgno);
            return match sub {
                Ins::Same(nc) => {
                    node::set_child(self.pager.write(pgno), i, nc);
                    Ok(Ins::Same(own))
                }
                Ins::Split(left, sep, right) => {
                    let p = self.pager.write(pgno);
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
        let pgno = self.writable(r)?;
        let p = self.pager.write(pgno);
        let (at, appended) = match node::search(p, key) {
            Ok(j) => {
                self.old = Some(old_of(&node::leaf(p, j)));
                node::remove(p, j);
                (j, false)
            }
            Err(j) => (j, j == node::count(p)),
        };
        let p = self.pager.write(pgno);
        if node::insert(p, at, entry) {
            return Ok(Ins::Same(self.own(pgno)));
        }
        self.split(pgno, at, entry.to_vec(), appended)
    }

    /// Splits the full page `pgno` while inserting `e` at `at`.
    fn split(&mut self, pgno: u32, at: usize, e: Vec<u8>, appended: bool) -> Result<Ins> {
        let (kind, mut entries) = {
            let p = self.pager.write(pgno);
            let entries: Vec<Vec<u8>> = (0..node::count(p)).map(|i| node::entry(p, i).to_vec()).collect();
            (node::kind(p), entries)
        };
        entries.insert(at, e);
        let lens: Vec<usize> = entries.iter().map(|e| e.len()).collect();
        let m = node::split_point(&lens, appended);
        let right = self.alloc.alloc(1)?;
        let sep;
        if kind == LEAF {
            sep = node::separator(entry_key(&entries[m - 1]), entry_key(&entries[m]));
            let left: Vec<&[u8]> = entries[..m].iter().map(|e| e.as_slice()).collect();
            node::build(self.pager.write(pgno), LEAF, &left);
            let rest: Vec<&[u8]> = entries[m..].iter().map(|e| e.as_slice()).collect();
            node::build(self.pager.create(right), LEAF, &rest);
        } else {
            sep = entry_key(&entries[m]).to_vec();
            let first = node::branch_entry(branch_entry_ref(&entries[m]), b"");
            let left: Vec<&[u8]> = entries[..m].iter().map(|e| e.as_slice()).collect();
            node::build(self.pager.write(pgno), BRANCH, &left);
            let mut rest: Vec<&[u8]> = vec![&first];
            rest.extend(entries[m + 1..].iter().map(|e| e.as_slice()));
            node::build(self.pager.create(right), BRANCH, &rest);
        }
        Ok(Ins::Split(self.own(pgno), sep, self.own(right)))
    }

    /// Deletes `key`; what it removed is left in `self.old`. Returns the new
    /// root, or `None` when the key was not there (nothing changed).
    pub fn tree_delete(&mut self, root: Ref, key: &[u8]) -> Result<Option<Ref>> {
        if root.is_empty() {
            return Ok(None);
        }
        match self.delete_rec(root, key)? {
            Del::NotFound => Ok(None),
            Del::Done(None, _) => Ok(Some(Ref::EMPTY)),
            Del::Done(Some(mut r), _) => {
                // A root branch with one child is replaced by that child.
                loop {
                    let only = {
                        let p = self.node(&r)?;
                        if node::kind(p) == BRANCH && node::count(p) == 1 {
                            Some(node::child(p, 0))
                        } else {
                            None
                        }
                    };
                    match only {
                        Some(c) => {
                            self.free_pages(r.pgno, 1, r.txn);
                            r = c;
                        }
                        None => return Ok(Some(r)),
                    }
                }
            }
        }
    }

    fn delete_rec(&mut self, r: Ref, key: &[u8]) -> Result<Del> {
        let (is_branch, i, c) = {
            let p = self.node(&r)?;
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
        if is_branch {
            let (nc, under) = match self.delete_rec(c, key)? {
                Del::NotFound => return Ok(Del::NotFound),
                Del::Done(nc, under) => (nc, under),
            };
            pgno = self.writable(r)?;
            match nc {
                None => {
                    let p = self.pager.write(pgno);
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
                    node::set_child(self.pager.write(pgno), i, nc);
                    if under {
                        self.merge(pgno, i)?;
                    }
                }
            }
        } else {
            pgno = self.writable(r)?;
            let p = self.pager.write(pgno);
            self.old = Some(old_of(&node::leaf(p, i)));
            node::remove(p, i);
        }
        let p = self.pager.write(pgno);
        if node::count(p) == 0 {
            let txn = self.txn_id();
            self.free_pages(pgno, 1, txn);
            return Ok(Del::Done(None, true));
        }
        let under = node::used(p) < PAGE / 4;
        Ok(Del::Done(Some(self.own(pgno)), under))
    }

    /// Merges child `i` of branch `pgno` with a neighbour when both fit one
    /// page, so deletes do not leave a tree of near-empty pages.
    fn merge(&mut self, pgno: u32, i: usize) -> Result<()> {
        let (left, right, sep) = {
            let p = self.pager.write(pgno);
            if node::count(p) < 2 {
                return Ok(());
            }
            let (li, ri) = if i > 0 { (i - 1, i) } else { (0, 1) };
            (node::child(p, li), node::child(p, ri), node::key(p, ri).to_vec())
        };
        let (kind, left_used) = {
            let p = self.node(&left)?;
            (node::kind(p), node::used(p))
        };
        let right_entries: Vec<Vec<u8>> = {
            let p = self.node(&right)?;
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
        let lpg = self.writable(left)?;
        {
            let p = self.pager.write(lpg);
            for e in &right_entries {
                let n = node::count(p);
                let ok = node::insert(p, n, e);
                debug_assert!(ok);
            }
        }
        self.free_pages(right.pgno, 1, right.txn);
        let own = self.own(lpg);
        let p = self.pager.write(pgno);
        let (li, ri) = if i > 0 { (i - 1, i) } else { (0, 1) };
        node::set_child(p, li, own);
        node::remove(p, ri);
        Ok(())
    }

    /// Fills in the checksums of the pages the running transaction wrote
    /// under `r`, bottom-up; returns `r` with its own checksum.
    pub fn finalize(&mut self, r: Ref) -> Result<Ref> {
        if r.is_empty() || r.txn != self.txn_id() {
            return Ok(r);
        }
        if !self.pager.is_dirty(r.pgno) {
            let checksum = self.pager.spilled(r.pgno).expect("own page neither dirty nor spilled");
            return Ok(Ref { checksum, ..r });
        }
        let kids: Vec<(usize, Ref)> = {
            let p = self.pager.write(r.pgno);
            if node::kind(p) == BRANCH {
                (0..node::count(p)).map(|i| (i, node::child(p, i))).filter(|(_, c)| c.txn == r.txn).collect()
            } else {
                Vec::new()
            }
        };
        for (i, c) in kids {
            let done = self.finalize(c)?;
            node::set_child(self.pager.write(r.pgno), i, done);
        }
        let checksum = page_checksum(self.pager.write(r.pgno), r.pgno);
        Ok(Ref { pgno: r.pgno, checksum, txn: r.txn })
    }
}
