//! The integrity check: reads every page of the last commit from the host
//! (not the cache), verifies checksums, layouts, key order, ranges, depths
//! and counts, and compares the pages reached with the allocation bitmap.
//!
//! A damaged page does not stop the check: it is reported, the walk goes on
//! with its siblings, and every damaged page found is listed. The pages
//! below a damaged page cannot be reached (its references are not to be
//! trusted), so pages in use that the walk did not reach are "unreachable
//! because of the damage" when there is damage, and "leaked" only when
//! there is none. Counts the damage makes incomplete are not compared.

use super::Db;
use crate::error::{Error, Result};
use crate::node::{self, Value, BRANCH};
use crate::page::{page_checksum, pages_for, Ref, PAGE};

struct Verifier {
    seen: Vec<bool>,
    errors: Vec<String>,
    /// The first page of each damaged page or value found.
    damaged: Vec<u32>,
    keys: u64,
    expiring: u64,
    ttl_entries: u64,
}

/// Messages listed in full; more are counted.
const ERRORS_MAX: usize = 100;

impl Verifier {
    fn error(&mut self, message: String) {
        if self.errors.len() < ERRORS_MAX {
            self.errors.push(message);
        } else if self.errors.len() == ERRORS_MAX {
            self.errors.push("(more errors are not listed)".into());
        }
    }

    fn damage(&mut self, pgno: u32, message: String) {
        self.damaged.push(pgno);
        self.error(message);
    }

    /// Marks `n` pages at `pgno` as reached; false when one is beyond the
    /// file or was reached before.
    fn mark(&mut self, db: &Db, pgno: u32, n: u32) -> bool {
        for p in pgno..pgno.saturating_add(n) {
            if p as usize >= self.seen.len() {
                self.error(format!("page {} is beyond the end of the file", p));
                return false;
            }
            if self.seen[p as usize] {
                self.error(format!("page {} is referred to twice", p));
                return false;
            }
            self.seen[p as usize] = true;
            if !db.store.alloc.is_used(p) {
                self.error(format!("page {} is in use but marked free", p));
            }
        }
        true
    }
}

fn json_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "'"))
}

impl Db {
    /// Runs the integrity check over the last commit; returns a JSON report.
    pub fn verify(&mut self) -> Result<String> {
        if self.work.is_some() || self.in_flight {
            return Err(Error::Invalid("a commit is still running".into()));
        }
        let page_count = self.store.alloc.page_count;
        let mut v = Verifier {
            seen: vec![false; page_count as usize],
            errors: Vec::new(),
            damaged: Vec::new(),
            keys: 0,
            expiring: 0,
            ttl_entries: 0,
        };
        v.mark(self, 0, 1);
        let state = self.latest;
        self.verify_tree(&mut v, state.main, None, None, false);
        self.verify_tree(&mut v, state.ttl, None, None, true);
        for r in self.store.alloc.chunk_refs() {
            if !r.is_empty() {
                v.mark(self, r.pgno, 1);
            }
        }
        let dir = self.store.alloc.dir;
        if !dir.is_empty() {
            v.mark(self, dir.pgno, 1);
        }
        if v.damaged.is_empty() {
            if v.keys != state.count {
                v.error(format!("the tree holds {} keys, the commit says {}", v.keys, state.count));
            }
            if v.expiring != v.ttl_entries {
                v.error(format!("{} keys expire but the expiry index has {}", v.expiring, v.ttl_entries));
            }
        }
        let mut leaked = 0u64;
        let mut unreachable = 0u64;
        let mut free = 0u64;
        for p in 0..page_count {
            if self.store.alloc.is_used(p) && !v.seen[p as usize] {
                if !v.damaged.is_empty() {
                    unreachable += 1;
                } else {
                    leaked += 1;
                    if leaked <= 5 {
                        v.error(format!("page {} is marked in use but nothing refers to it", p));
                    }
                }
            }
            if !self.store.alloc.is_busy(p) {
                free += 1;
            }
        }
        if unreachable > 0 {
            v.error(format!(
                "{} pages in use are unreachable because of the damaged pages (what is under them cannot be read)",
                unreachable
            ));
        }
        let errors: Vec<String> = v.errors.iter().map(|e| json_string(e)).collect();
        let damaged: Vec<String> = v.damaged.iter().map(|p| p.to_string()).collect();
        let recovery: Vec<String> = self.recovery.iter().map(|e| json_string(e)).collect();
        Ok(format!(
            "{{\"ok\":{},\"pages\":{},\"freePages\":{},\"leakedPages\":{},\"unreachablePages\":{},\"damagedPages\":[{}],\"keys\":{},\"errors\":[{}],\"recovery\":[{}]}}",
            v.errors.is_empty(),
            page_count,
            free,
            leaked,
            unreachable,
            damaged.join(","),
            v.keys,
            errors.join(","),
            recovery.join(",")
        ))
    }

    /// Checks the tree at `r`, whose keys must be in [low, high); returns
    /// its depth, or `None` when damage below hides it.
    fn verify_tree(&mut self, v: &mut Verifier, r: Ref, low: Option<Vec<u8>>, high: Option<Vec<u8>>, ttl: bool) -> Option<usize> {
        if r.is_empty() {
            return Some(0);
        }
        if !v.mark(self, r.pgno, 1) {
            return None;
        }
        let mut page = vec![0u8; PAGE];
        if let Err(e) = self.store.pager.read_direct(r.pgno, &mut page) {
            v.damage(r.pgno, format!("page {}: {}", r.pgno, e));
            return None;
        }
        if page_checksum(&page, r.pgno) != r.checksum {
            v.damage(r.pgno, format!("page {} does not match its checksum", r.pgno));
            return None;
        }
        if !node::sane(&page) {
            v.damage(r.pgno, format!("page {} is not a valid tree page", r.pgno));
            return None;
        }
        let n = node::count(&page);
        let branch = node::kind(&page) == BRANCH;
        for i in 0..n {
            if branch && i == 0 {
                continue;
            }
            let k = node::key(&page, i);
            if i > branch as usize && node::key(&page, i - 1) >= k {
                v.error(format!("page {} has keys out of order", r.pgno));
            }
            if low.as_deref().map_or(false, |l| k < l) || high.as_deref().map_or(false, |h| k >= h) {
                v.error(format!("page {} has a key outside its parent's range", r.pgno));
            }
        }
        if branch {
            let mut depth = None;
            let mut hidden = false;
            for i in 0..n {
                let lo = if i == 0 { low.clone() } else { Some(node::key(&page, i).to_vec()) };
                let hi = if i + 1 < n { Some(node::key(&page, i + 1).to_vec()) } else { high.clone() };
                match self.verify_tree(v, node::child(&page, i), lo, hi, ttl) {
                    None => hidden = true,
                    Some(d) => {
                        if depth.map_or(false, |x| x != d) {
                            v.error(format!("page {} has subtrees of different depths", r.pgno));
                        }
                        depth = Some(d);
                    }
                }
            }
            return if hidden && depth.is_none() { None } else { depth.map(|d| d + 1) };
        }
        for i in 0..n {
            let l = node::leaf(&page, i);
            if ttl {
                v.ttl_entries += 1;
                continue;
            }
            v.keys += 1;
            if l.expires != 0 {
                v.expiring += 1;
            }
            if let Value::Overflow { len, pgno, checksum, .. } = l.value {
                if !v.mark(self, pgno, pages_for(len)) {
                    continue;
                }
                let mut buf = Vec::new();
                if let Err(e) = self.store.read_run(len, pgno, checksum, &mut buf) {
                    v.damage(pgno, e.to_string());
                }
            }
        }
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{open, put_all, verified};
    use super::*;
    use crate::storage::MemFile;

    /// A database of `n` keys with 100-byte values, committed.
    fn filled(f: &MemFile, n: u32) -> Db {
        let mut db = open(f, 16);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            (0..n).map(|i| (format!("k{:06}", i).into_bytes(), vec![(i % 256) as u8; 100])).collect();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        put_all(&mut db, &refs);
        db
    }

    /// The children of the root (and below, `levels` down).
    fn pages_below(db: &mut Db, r: Ref, levels: usize) -> Vec<Ref> {
        let kids: Vec<Ref> = {
            let p = db.store.node(&r).unwrap();
            (0..node::count(p)).map(|i| node::child(p, i)).collect()
        };
        if levels == 1 {
            return kids;
        }
        kids.into_iter().flat_map(|c| pages_below(db, c, levels - 1)).collect()
    }

    fn number(report: &str, field: &str) -> u64 {
        let at = report.find(&format!("\"{}\":", field)).unwrap() + field.len() + 3;
        report[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
    }

    #[test]
    fn a_healthy_file_passes_and_a_leaked_page_is_found() {
        let f = MemFile::default();
        let mut db = filled(&f, 3000);
        verified(&mut db).unwrap();
        let report = db.verify().unwrap();
        assert_eq!(number(&report, "keys"), 3000);
        assert_eq!(number(&report, "leakedPages"), 0);
        let lost = db.store.alloc.alloc(1).unwrap();
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":false"), "{}", report);
        assert_eq!(number(&report, "leakedPages"), 1);
        assert!(report.contains(&format!("page {} is marked in use but nothing refers to it", lost)));
    }

    #[test]
    fn two_damaged_pages_are_both_reported_and_nothing_is_called_leaked() {
        let f = MemFile::default();
        let mut db = filled(&f, 3000);
        let root = db.latest.main;
        let levels = depth_of(&mut db, root) - 1;
        let leaves = pages_below(&mut db, root, levels);
        assert!(leaves.len() > 10);
        let (a, b) = (leaves[2].pgno, leaves[leaves.len() - 3].pgno);
        f.flip(a as usize * PAGE + 3000, 1);
        f.flip(b as usize * PAGE + 100, 6);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":false"), "{}", report);
        assert!(report.contains(&format!("page {} does not match its checksum", a)), "{}", report);
        assert!(report.contains(&format!("page {} does not match its checksum", b)), "{}", report);
        assert!(report.contains(&format!("\"damagedPages\":[{},{}]", a, b)), "{}", report);
        assert_eq!(number(&report, "leakedPages"), 0);
        // The other leaves were all read: only the two leaves' keys are missing.
        let per_leaf = 3000 / leaves.len() as u64;
        assert!(number(&report, "keys") >= 3000 - 4 * per_leaf, "{}", report);
    }

    fn depth_of(db: &mut Db, root: Ref) -> usize {
        let mut r = root;
        let mut d = 1;
        loop {
            let p = db.store.node(&r).unwrap();
            if node::kind(p) != BRANCH {
                return d;
            }
            r = node::child(p, 0);
            d += 1;
        }
    }

    #[test]
    fn pages_under_a_damaged_branch_are_unreachable_not_leaked() {
        let f = MemFile::default();
        let mut db = filled(&f, 40_000);
        let root = db.latest.main;
        assert!(depth_of(&mut db, root) >= 3, "the test needs a branch below the root");
        let branches = pages_below(&mut db, root, 1);
        let hit = branches[0];
        let under = pages_below(&mut db, hit, 1).len() as u64;
        f.flip(hit.pgno as usize * PAGE + 50, 0);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":false"), "{}", report);
        assert!(report.contains(&format!("\"damagedPages\":[{}]", hit.pgno)), "{}", report);
        assert_eq!(number(&report, "leakedPages"), 0);
        assert!(number(&report, "unreachablePages") >= under, "{}", report);
        assert!(report.contains("unreachable because of the damaged pages"), "{}", report);
        assert!(number(&report, "keys") > 20_000, "the other subtrees were checked: {}", report);
    }

    #[test]
    fn a_damaged_value_is_reported_with_its_page() {
        let f = MemFile::default();
        let mut db = open(&f, 16);
        let big = vec![1u8; 30_000];
        put_all(&mut db, &[(b"a", &big), (b"b", &big), (b"c", b"small")]);
        let pgno = {
            let root = db.latest.main;
            let p = db.store.node(&root).unwrap();
            match node::leaf(p, 1).value {
                Value::Overflow { pgno, .. } => pgno,
                Value::Inline(_) => panic!("inline"),
            }
        };
        f.flip(pgno as usize * PAGE + 20_000, 2);
        let report = db.verify().unwrap();
        assert!(report.contains(&format!("\"damagedPages\":[{}]", pgno)), "{}", report);
        assert!(report.contains("the value in pages from"), "{}", report);
        assert_eq!(number(&report, "keys"), 3);
    }
}
