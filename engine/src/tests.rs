//! Native unit tests of the engine against a sorted map, on a memory file
//! (`cargo test`). The same engine is tested again as wasm from TypeScript.

use std::collections::BTreeMap;

use crate::db::Db;
use crate::storage::MemFile;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn commit(db: &mut Db) {
    if db.commit(true).unwrap() {
        db.sync().unwrap();
        db.synced().unwrap();
    }
}

fn all(db: &mut Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut result = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut out = Vec::new();
        db.scan_prefix(0, b"", after.as_deref(), 0, 1 << 16, 0, &mut out).unwrap();
        let more = out[0] != 0;
        let n = u32::from_le_bytes([out[4], out[5], out[6], out[7]]);
        let mut at = 8;
        for _ in 0..n {
            let kl = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as usize;
            let vl = u32::from_le_bytes([out[at + 4], out[at + 5], out[at + 6], out[at + 7]]) as usize;
            at += 24;
            let k = out[at..at + kl].to_vec();
            at += kl;
            let v = out[at..at + vl].to_vec();
            at += vl;
            after = Some(k.clone());
            result.push((k, v));
        }
        if !more {
            return result;
        }
    }
}

#[test]
fn random_operations_match_a_sorted_map_across_reopens() {
    let file = MemFile::default();
    let mut db = Db::open(Box::new(file.clone()), 64).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..60 {
        db.begin().unwrap();
        for _ in 0..rng.below(300) + 1 {
            db.op().unwrap();
            let k = format!("k{:05}", rng.below(3000)).into_bytes();
            match rng.below(10) {
                0..=5 => {
                    let size = match rng.below(20) {
                        0 => 2000 + rng.below(20_000) as usize,
                        _ => rng.below(200) as usize,
                    };
                    let v: Vec<u8> = (0..size).map(|i| (i as u64 ^ rng.below(256)) as u8).collect();
                    db.put(&k, &v, 0, 0).unwrap();
                    model.insert(k, v);
                }
                6..=8 => {
                    let existed = db.delete(&k, 0).unwrap();
                    assert_eq!(existed, model.remove(&k).is_some());
                }
                _ => {
                    let dir = format!("k{:03}", rng.below(30)).into_bytes();
                    db.delete_tree(b"", &dir, 0, &mut Vec::new(), false).unwrap();
                    model.retain(|key, _| !key.starts_with(&dir));
                }
            }
        }
        commit(&mut db);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":true"), "round {}: {}", round, report);
        let got = all(&mut db);
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got.len(), want.len(), "round {}", round);
        assert!(got == want, "round {}", round);
        if round % 7 == 3 {
            db.close().unwrap();
            db = Db::open(Box::new(file.clone()), 64).unwrap();
        }
    }
    // Half the keys go: the file shrinks back on close.
    let len_before = file.bytes().len();
    db.begin().unwrap();
    db.op().unwrap();
    db.delete_tree(b"", b"", 0, &mut Vec::new(), false).unwrap();
    commit(&mut db);
    db.close().unwrap();
    assert!(file.bytes().len() < len_before / 4, "{} vs {}", file.bytes().len(), len_before);
}

#[test]
fn a_snapshot_keeps_its_view_while_commits_land() {
    let file = MemFile::default();
    let mut db = Db::open(Box::new(file), 16).unwrap();
    db.begin().unwrap();
    db.op().unwrap();
    for i in 0..2000u32 {
        db.put(format!("key{:06}", i).as_bytes(), b"old", 0, 0).unwrap();
    }
    commit(&mut db);
    let snap = db.snapshot();
    for round in 0..20 {
        db.begin().unwrap();
        db.op().unwrap();
        for i in 0..2000u32 {
            if i % 20 == round {
                db.put(format!("key{:06}", i).as_bytes(), b"new value", 0, 0).unwrap();
            }
        }
        commit(&mut db);
    }
    let mut out = Vec::new();
    assert!(db.get(snap, b"key000005", 0, &mut out).unwrap());
    assert_eq!(&out[16..], b"old");
    assert!(db.get(0, b"key000005", 0, &mut out).unwrap());
    assert_eq!(&out[16..], b"new value");
    db.release(snap);
    let report = db.verify().unwrap();
    assert!(report.starts_with("{\"ok\":true"), "{}", report);
}

#[test]
fn an_overwrite_workload_does_not_grow_the_file() {
    let file = MemFile::default();
    let mut db = Db::open(Box::new(file.clone()), 64).unwrap();
    let mut sizes = Vec::new();
    for round in 0..200u32 {
        db.begin().unwrap();
        db.op().unwrap();
        for i in 0..50u32 {
            let k = format!("key{}", (round * 7 + i) % 500);
            db.put(k.as_bytes(), &[round as u8; 150], 0, 0).unwrap();
        }
        commit(&mut db);
        sizes.push(file.bytes().len());
    }
    assert_eq!(sizes[100], sizes[199], "{:?}", &sizes[90..]);
}

#[test]
fn expired_entries_are_invisible_then_swept() {
    let mut db = Db::open(Box::new(MemFile::default()), 16).unwrap();
    db.begin().unwrap();
    db.op().unwrap();
    db.put(b"a", b"1", 1000, 0).unwrap();
    db.put(b"b", b"2", 0, 0).unwrap();
    db.put(b"c", b"3", 2000, 0).unwrap();
    commit(&mut db);
    let mut out = Vec::new();
    assert!(db.get(0, b"a", 999, &mut out).unwrap());
    assert!(!db.get(0, b"a", 1000, &mut out).unwrap());
    assert_eq!(db.next_expiry().unwrap(), 1000);
    db.begin().unwrap();
    assert_eq!(db.sweep(1500, 100, &mut out).unwrap(), 1);
    commit(&mut db);
    assert_eq!(db.next_expiry().unwrap(), 2000);
    let report = db.verify().unwrap();
    assert!(report.contains("\"keys\":2"), "{}", report);
    assert!(report.starts_with("{\"ok\":true"), "{}", report);
}

#[test]
fn a_transaction_larger_than_the_cache_spills_and_commits_whole() {
    let file = MemFile::default();
    let mut db = Db::open(Box::new(file.clone()), 32).unwrap();
    let mut rng = Rng(99);
    let mut model = BTreeMap::new();
    for round in 0..3 {
        db.begin().unwrap();
        db.op().unwrap();
        for _ in 0..15_000 {
            let k = format!("s{:06}", rng.below(50_000)).into_bytes();
            if rng.below(5) == 0 {
                db.delete(&k, 0).unwrap();
                model.remove(&k);
            } else {
                let v = vec![round as u8; 60 + rng.below(100) as usize];
                db.put(&k, &v, 0, 0).unwrap();
                model.insert(k, v);
            }
        }
        assert!(db.spilled_pages() > 0, "nothing was spilled");
        commit(&mut db);
        let report = db.verify().unwrap();
        assert!(report.starts_with("{\"ok\":true"), "{}", report);
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(all(&mut db) == want);
    }
    db.close().unwrap();
    let mut db = Db::open(Box::new(file), 32).unwrap();
    assert_eq!(all(&mut db).len(), model.len());
}
