//! B+tree node pages: a slotted layout. A node is one 4 KiB page: an 8-byte
//! header, an array of slots (sorted by key) growing up, and entries
//! packed from the end of the page growing down. A slot is the entry's
//! offset (u16) and the first four bytes of its key (its "head"), so a
//! binary search mostly reads the slot array, not the entries. Inserting is a slot shift
//! and a copy; removing leaves garbage that is compacted when space runs out.
//!
//! Leaf entry:   key_len u16, key, flags u8, revision u64, [expires u64],
//!               inline: value_len u16, value
//!               overflow: value_len u32, pgno u32, checksum u64, txn u64
//! Branch entry: key_len u16, key (the separator; empty for the first
//!               child), child pgno u32, child checksum u64, child txn u64
//!
//! The key comes first so a binary search reads it without decoding the
//! rest of the entry.

use crate::page::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64, Ref, PAGE};

pub const HDR: usize = 8;
/// Bytes of a slot: offset u16, key head u32 (big-endian).
pub const SLOT: usize = 6;
pub const LEAF: u8 = 1;
pub const BRANCH: u8 = 2;

/// Leaf flag: the value is in overflow pages.
pub const F_OVERFLOW: u8 = 1;
/// Leaf flag: the entry has an expiry time.
pub const F_EXPIRES: u8 = 2;

/// Values up to this size are stored in the leaf. Together with the key limit
/// it keeps the largest entry under half a page, so a split always fits.
pub const INLINE_MAX: usize = 900;
/// The longest key a node accepts (three separators fit a branch page).
pub const KEY_MAX: usize = 1024;

const BRANCH_FIXED: usize = 22;

pub fn kind(p: &[u8]) -> u8 {
    p[0]
}
pub fn count(p: &[u8]) -> usize {
    get_u16(p, 2)
}
fn set_count(p: &mut [u8], n: usize) {
    put_u16(p, 2, n)
}
// An empty page has upper == PAGE, which does not fit u16; 0 stands for it.
fn upper(p: &[u8]) -> usize {
    match get_u16(p, 4) {
        0 => PAGE,
        v => v,
    }
}
fn set_upper(p: &mut [u8], v: usize) {
    put_u16(p, 4, if v == PAGE { 0 } else { v })
}
fn garbage(p: &[u8]) -> usize {
    get_u16(p, 6)
}
fn set_garbage(p: &mut [u8], v: usize) {
    put_u16(p, 6, v)
}

#[inline(always)]
pub fn slot(p: &[u8], i: usize) -> usize {
    get_u16(p, HDR + SLOT * i)
}

/// The first four bytes of a key as a big-endian number (zero-padded):
/// comparing heads orders keys unless the heads are equal.
#[inline(always)]
pub fn head_of(k: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = k.len().min(4);
    b[..n].copy_from_slice(&k[..n]);
    u32::from_be_bytes(b)
}

#[inline(always)]
fn head(p: &[u8], i: usize) -> u32 {
    let at = HDR + SLOT * i + 2;
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

/// Compares key `i` with `k` whose head is `kh`.
#[inline(always)]
fn compare_at(p: &[u8], i: usize, k: &[u8], kh: u32) -> std::cmp::Ordering {
    match head(p, i).cmp(&kh) {
        std::cmp::Ordering::Equal => compare(key(p, i), k),
        other => other,
    }
}

/// Makes `p` an empty node of `kind`.
pub fn init(p: &mut [u8], kind: u8) {
    p.fill(0);
    p[0] = kind;
    set_count(p, 0);
    set_upper(p, PAGE);
    set_garbage(p, 0);
}

/// Checks the layout so a damaged page is reported, not misread. Pages are
/// checksummed, so this only guards against engine bugs and crafted files:
/// it reads nothing outside the page, whatever the page holds.
pub fn sane(p: &[u8]) -> bool {
    let k = kind(p);
    if k != LEAF && k != BRANCH {
        return false;
    }
    let n = count(p);
    let up = upper(p);
    if HDR + SLOT * n > up || up > PAGE {
        return false;
    }
    for i in 0..n {
        let off = slot(p, i);
        if off < up {
            return false;
        }
        let klen = match checked_entry_len(p, off) {
            Some(_) => get_u16(p, off),
            None => return false,
        };
        if head(p, i) != head_of(&p[off + 2..off + 2 + klen]) {
            return false;
        }
    }
    true
}

/// The length of the entry at `off` if all of it lies inside the page.
fn checked_entry_len(p: &[u8], off: usize) -> Option<usize> {
    if off + 2 > PAGE {
        return None;
    }
    let klen = get_u16(p, off);
    let fixed = if kind(p) == BRANCH { BRANCH_FIXED } else { 11 };
    if off + fixed + klen > PAGE {
        return None;
    }
    if kind(p) == LEAF {
        let flags = p[off + 2 + klen];
        let mut len = 11 + klen;
        if flags & F_EXPIRES != 0 {
            len += 8;
        }
        // The overflow fields, or the inline value's length.
        if off + len + 2 > PAGE {
            return None;
        }
    }
    let len = entry_len(p, off);
    if off + len > PAGE {
        return None;
    }
    Some(len)
}

/// The length of the entry at `off`.
pub fn entry_len(p: &[u8], off: usize) -> usize {
    let klen = get_u16(p, off);
    if kind(p) == BRANCH {
        return BRANCH_FIXED + klen;
    }
    let flags = p[off + 2 + klen];
    let mut len = 11 + klen;
    if flags & F_EXPIRES != 0 {
        len += 8;
    }
    if flags & F_OVERFLOW != 0 {
        len += 24;
    } else {
        len += 2 + get_u16(p, off + len);
    }
    len
}

/// Bytes in use: header, slots and live entries.
pub fn used(p: &[u8]) -> usize {
    PAGE - (upper(p) - (HDR + SLOT * count(p))) - garbage(p)
}

/// Bytes free for one more entry and its slot, once compacted.
#[cfg(test)]
pub fn room(p: &[u8]) -> usize {
    PAGE - used(p)
}

/// The key of entry `i` (a separator in a branch).
#[inline(always)]
pub fn key(p: &[u8], i: usize) -> &[u8] {
    let off = slot(p, i);
    let klen = get_u16(p, off);
    &p[off + 2..off + 2 + klen]
}

/// The raw bytes of entry `i`.
pub fn entry(p: &[u8], i: usize) -> &[u8] {
    let off = slot(p, i);
    &p[off..off + entry_len(p, off)]
}

/// Compares keys eight bytes at a time (wasm has no fast `memcmp`).
#[inline(always)]
pub fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().unwrap());
        let y = u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// Binary search of a leaf: `Ok(i)` when entry `i` has `k`, else where it
/// would go.
pub fn search(p: &[u8], k: &[u8]) -> Result<usize, usize> {
    let kh = head_of(k);
    let (mut lo, mut hi) = (0, count(p));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match compare_at(p, mid, k, kh) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(lo)
}

/// The child of a branch whose subtree holds `k`: the last child whose
/// separator is at most `k`.
pub fn child_index(p: &[u8], k: &[u8]) -> usize {
    let kh = head_of(k);
    let (mut lo, mut hi) = (1, count(p));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if compare_at(p, mid, k, kh) != std::cmp::Ordering::Greater {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo - 1
}

/// The child reference of branch entry `i`.
pub fn child(p: &[u8], i: usize) -> Ref {
    let off = slot(p, i);
    let off = off + 2 + get_u16(p, off);
    Ref {
        pgno: get_u32(p, off),
        checksum: get_u64(p, off + 4),
        txn: get_u64(p, off + 12),
    }
}

/// Replaces the child reference of branch entry `i` in place.
pub fn set_child(p: &mut [u8], i: usize, r: Ref) {
    let off = slot(p, i);
    let off = off + 2 + get_u16(p, off);
    put_u32(p, off, r.pgno);
    put_u64(p, off + 4, r.checksum);
    put_u64(p, off + 12, r.txn);
}

/// Encodes a branch entry.
pub fn branch_entry(r: Ref, sep: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(BRANCH_FIXED + sep.len());
    e.extend_from_slice(&(sep.len() as u16).to_le_bytes());
    e.extend_from_slice(sep);
    e.extend_from_slice(&r.pgno.to_le_bytes());
    e.extend_from_slice(&r.checksum.to_le_bytes());
    e.extend_from_slice(&r.txn.to_le_bytes());
    e
}

/// A leaf entry's value: in the leaf, or where its overflow pages are.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Inline(&'a [u8]),
    Overflow { len: u32, pgno: u32, checksum: u64, txn: u64 },
}

/// A decoded leaf entry.
#[derive(Clone, Copy, Debug)]
pub struct Leaf<'a> {
    pub key: &'a [u8],
    pub revision: u64,
    /// Milliseconds since the epoch; 0 for none.
    pub expires: u64,
    pub value: Value<'a>,
}

/// Decodes leaf entry `i`.
pub fn leaf(p: &[u8], i: usize) -> Leaf<'_> {
    let off = slot(p, i);
    let klen = get_u16(p, off);
    let key = &p[off + 2..off + 2 + klen];
    let at = off + 2 + klen;
    let flags = p[at];
    let revision = get_u64(p, at + 1);
    let mut at = at + 9;
    let mut expires = 0;
    if flags & F_EXPIRES != 0 {
        expires = get_u64(p, at);
        at += 8;
    }
    let value = if flags & F_OVERFLOW != 0 {
        Value::Overflow {
            len: get_u32(p, at),
            pgno: get_u32(p, at + 4),
            checksum: get_u64(p, at + 8),
            txn: get_u64(p, at + 16),
        }
    } else {
        let vlen = get_u16(p, at);
        Value::Inline(&p[at + 2..at + 2 + vlen])
    };
    Leaf { key, revision, expires, value }
}

/// Encodes a leaf entry into `out` (cleared first).
pub fn leaf_entry(out: &mut Vec<u8>, key: &[u8], revision: u64, expires: u64, value: Value) {
    out.clear();
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    let mut flags = 0;
    if expires != 0 {
        flags |= F_EXPIRES;
    }
    if let Value::Overflow { .. } = value {
        flags |= F_OVERFLOW;
    }
    out.push(flags);
    out.extend_from_slice(&revision.to_le_bytes());
    if expires != 0 {
        out.extend_from_slice(&expires.to_le_bytes());
    }
    match value {
        Value::Inline(v) => {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
            out.extend_from_slice(v);
        }
        Value::Overflow { len, pgno, checksum, txn } => {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&pgno.to_le_bytes());
            out.extend_from_slice(&checksum.to_le_bytes());
            out.extend_from_slice(&txn.to_le_bytes());
        }
    }
}

/// Inserts `e` as entry `i`. Returns false when the page cannot hold it.
pub fn insert(p: &mut [u8], i: usize, e: &[u8]) -> bool {
    let n = count(p);
    if used(p) + e.len() + SLOT > PAGE {
        return false;
    }
    if upper(p) - (HDR + SLOT * n) < e.len() + SLOT {
        compact(p);
    }
    let up = upper(p) - e.len();
    p[up..up + e.len()].copy_from_slice(e);
    set_upper(p, up);
    let at = HDR + SLOT * i;
    p.copy_within(at..HDR + SLOT * n, at + SLOT);
    put_u16(p, at, up);
    let klen = get_u16(e, 0);
    p[at + 2..at + 6].copy_from_slice(&head_of(&e[2..2 + klen]).to_be_bytes());
    set_count(p, n + 1);
    true
}

/// Removes entry `i`; its bytes become garbage.
pub fn remove(p: &mut [u8], i: usize) {
    let n = count(p);
    let off = slot(p, i);
    let len = entry_len(p, off);
    let at = HDR + SLOT * i;
    p.copy_within(at + SLOT..HDR + SLOT * n, at);
    set_count(p, n - 1);
    if off == upper(p) {
        set_upper(p, off + len);
    } else {
        set_garbage(p, garbage(p) + len);
    }
}

/// Rewrites the entries contiguously at the end of the page.
pub fn compact(p: &mut [u8]) {
    let n = count(p);
    let mut copy = [0u8; PAGE];
    copy.copy_from_slice(p);
    let mut up = PAGE;
    for i in 0..n {
        let off = slot(&copy, i);
        let len = entry_len(&copy, off);
        up -= len;
        p[up..up + len].copy_from_slice(&copy[off..off + len]);
        put_u16(p, HDR + SLOT * i, up);
    }
    set_upper(p, up);
    set_garbage(p, 0);
}

/// Rebuilds `p` as a node of `kind` holding `entries`, which must fit.
pub fn build(p: &mut [u8], kind: u8, entries: &[&[u8]]) {
    init(p, kind);
    for (i, e) in entries.iter().enumerate() {
        let ok = insert(p, i, e);
        debug_assert!(ok);
    }
}

/// Where to split `lens` (entry sizes in order) so both halves fit a page
/// and are as even as possible. An append at the end keeps the left node
/// full, so ordered loads fill pages.
pub fn split_point(lens: &[usize], appended: bool) -> usize {
    let n = lens.len();
    let cost = |range: &[usize]| HDR + range.iter().map(|l| l + SLOT).sum::<usize>();
    if appended && n >= 2 && cost(&lens[..n - 1]) <= PAGE {
        return n - 1;
    }
    let total: usize = lens.iter().map(|l| l + SLOT).sum();
    let mut best = 1;
    let mut best_max = usize::MAX;
    let mut left = 0;
    for i in 1..n {
        left += lens[i - 1] + SLOT;
        let worst = left.max(total - left);
        if worst < best_max {
            best_max = worst;
            best = i;
        }
    }
    best
}

/// The shortest separator `s` with `left < s <= right`: branch keys stay
/// short, so branches hold many children.
pub fn separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut i = 0;
    while i < left.len() && i < right.len() && left[i] == right[i] {
        i += 1;
    }
    right[..(i + 1).min(right.len())].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_searches_and_removes_in_order() {
        let mut p = [0u8; PAGE];
        init(&mut p, LEAF);
        let mut e = Vec::new();
        for k in [b"b", b"a", b"c"] {
            leaf_entry(&mut e, k, 7, 0, Value::Inline(b"v"));
            let at = search(&p, k).unwrap_err();
            assert!(insert(&mut p, at, &e));
        }
        assert_eq!(key(&p, 0), b"a");
        assert_eq!(key(&p, 2), b"c");
        assert_eq!(search(&p, b"b"), Ok(1));
        remove(&mut p, 1);
        assert_eq!(search(&p, b"b"), Err(1));
        assert!(sane(&p));
        let l = leaf(&p, 1);
        assert_eq!(l.key, b"c");
        assert_eq!(l.revision, 7);
    }

    #[test]
    fn fills_a_page_then_refuses() {
        let mut p = [0u8; PAGE];
        init(&mut p, LEAF);
        let mut e = Vec::new();
        let mut n = 0u32;
        loop {
            let k = n.to_be_bytes();
            leaf_entry(&mut e, &k, 1, 0, Value::Inline(&[0u8; 100]));
            if !insert(&mut p, n as usize, &e) {
                break;
            }
            n += 1;
        }
        assert_eq!(n, 33);
        for _ in 0..10 {
            remove(&mut p, 0);
        }
        leaf_entry(&mut e, b"zz", 1, 0, Value::Inline(&[0u8; 100]));
        let n = count(&p);
        assert!(insert(&mut p, n, &e));
        assert!(sane(&p));
    }

    fn leaf_with(keys: &[&[u8]]) -> [u8; PAGE] {
        let mut p = [0u8; PAGE];
        init(&mut p, LEAF);
        let mut e = Vec::new();
        for k in keys {
            leaf_entry(&mut e, k, 1, 0, Value::Inline(b"value"));
            let at = search(&p, k).unwrap_err();
            assert!(insert(&mut p, at, &e));
        }
        p
    }

    #[test]
    fn branches_route_a_key_to_the_last_child_not_above_it() {
        let mut p = [0u8; PAGE];
        let refs: Vec<Ref> = (0..3).map(|i| Ref { pgno: 10 + i, checksum: 100 + i as u64, txn: 5 }).collect();
        let entries = [branch_entry(refs[0], b""), branch_entry(refs[1], b"d"), branch_entry(refs[2], b"m")];
        let slices: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
        build(&mut p, BRANCH, &slices);
        assert!(sane(&p));
        for (k, want) in [(&b"a"[..], 0), (b"d", 1), (b"lzz", 1), (b"m", 2), (b"zz", 2), (b"", 0)] {
            assert_eq!(child_index(&p, k), want, "key {:?}", k);
        }
        assert_eq!(child(&p, 1), refs[1]);
        let moved = Ref { pgno: 99, checksum: 7, txn: 6 };
        set_child(&mut p, 1, moved);
        assert_eq!(child(&p, 1), moved);
        assert_eq!(key(&p, 2), b"m", "the separator is untouched");
    }

    #[test]
    fn expiring_and_overflow_entries_round_trip() {
        let mut p = [0u8; PAGE];
        init(&mut p, LEAF);
        let mut e = Vec::new();
        let big = Value::Overflow { len: 70_000, pgno: 42, checksum: 0xFEED, txn: 3 };
        leaf_entry(&mut e, b"big", 9, 1_700_000_000_000, big);
        assert!(insert(&mut p, 0, &e));
        assert_eq!(entry(&p, 0), &e[..]);
        leaf_entry(&mut e, b"small", 10, 0, Value::Inline(b"xyz"));
        assert!(insert(&mut p, 1, &e));
        let l = leaf(&p, 0);
        assert_eq!((l.key, l.revision, l.expires), (&b"big"[..], 9, 1_700_000_000_000));
        match l.value {
            Value::Overflow { len, pgno, checksum, txn } => assert_eq!((len, pgno, checksum, txn), (70_000, 42, 0xFEED, 3)),
            Value::Inline(_) => panic!("decoded as inline"),
        }
        let l = leaf(&p, 1);
        assert_eq!(l.expires, 0);
        assert!(matches!(l.value, Value::Inline(v) if v == b"xyz"));
        assert!(sane(&p));
    }

    #[test]
    fn compaction_reclaims_what_removals_left() {
        let keys: Vec<Vec<u8>> = (0..30u32).map(|i| format!("key{:03}", i).into_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let mut p = leaf_with(&refs);
        let before = room(&p);
        let len = entry(&p, 5).len();
        for _ in 0..10 {
            remove(&mut p, 5);
        }
        assert_eq!(room(&p), before + 10 * (len + SLOT));
        // Filling the room needs the garbage back: insert compacts.
        let mut e = Vec::new();
        leaf_entry(&mut e, b"zzz", 1, 0, Value::Inline(&vec![7u8; room(&p) - SLOT - 16]));
        let n = count(&p);
        assert!(insert(&mut p, n, &e));
        assert!(sane(&p));
        assert_eq!(key(&p, 4), b"key004");
        assert_eq!(key(&p, 5), b"key015");
        assert_eq!(key(&p, count(&p) - 1), b"zzz");
        for i in 1..count(&p) {
            assert_eq!(compare(key(&p, i - 1), key(&p, i)), std::cmp::Ordering::Less);
        }
    }

    #[test]
    fn a_damaged_layout_is_refused_without_reading_outside_the_page() {
        let good = leaf_with(&[b"alpha", b"beta", b"gamma"]);
        assert!(sane(&good));
        let damage = |f: &dyn Fn(&mut [u8; PAGE])| {
            let mut p = good;
            f(&mut p);
            sane(&p)
        };
        assert!(!damage(&|p| p[0] = 7), "unknown kind");
        assert!(!damage(&|p| put_u16(p, 2, 700)), "more slots than fit");
        assert!(!damage(&|p| put_u16(p, HDR, 4095)), "an entry at the last byte");
        assert!(!damage(&|p| put_u16(p, HDR, 20)), "an entry among the slots");
        assert!(!damage(&|p| p[HDR + 2] ^= 1), "a slot head that is not its key's");
        assert!(!damage(&|p| {
            let off = slot(p, 2);
            put_u16(p, off, 60_000)
        }), "a key longer than the page");
        assert!(!damage(&|p| {
            let off = slot(p, 2);
            put_u16(p, off + 2 + 5 + 9, 60_000)
        }), "a value longer than the page");
    }

    #[test]
    fn split_points_balance_halves_and_keep_appends_full() {
        assert_eq!(split_point(&[100; 10], false), 5);
        assert_eq!(split_point(&[100; 10], true), 9);
        let lens = [10, 10, 10, 10, 900, 900];
        let m = split_point(&lens, false);
        assert_eq!(m, 5, "the halves' sizes, not their counts, are balanced");
        // An append that does not fit the left half splits evenly instead.
        assert_eq!(split_point(&[1100; 5], true), 2);
    }

    #[test]
    fn separators_fall_between_their_neighbours() {
        let words: Vec<&[u8]> = vec![b"a", b"ab", b"abc", b"abd", b"b", b"ba", b"zz", b"zz\x00", b"zz\x01"];
        for i in 0..words.len() {
            for j in i + 1..words.len() {
                let s = separator(words[i], words[j]);
                assert!(words[i] < &s[..] && &s[..] <= words[j], "{:?} {:?} {:?}", words[i], s, words[j]);
            }
        }
    }

    #[test]
    fn separators_are_short() {
        assert_eq!(separator(b"apple", b"banana"), b"b");
        assert_eq!(separator(b"app", b"apple"), b"appl");
    }
}
