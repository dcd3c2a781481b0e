//! valkeyrie's embedded engine: a copy-on-write B+tree in the style of redb,
//! built for `wasm32-unknown-unknown` with the standard library only, and
//! driven by the TypeScript glue in `engine/engine.ts`.
//!
//! Layers, each calling only layers below it:
//!
//! - `storage`: the host's five I/O calls (`len`, `read`, `write`,
//!   `set_len`, `sync`);
//! - `pager`: the page cache, the running transaction's dirty pages, and
//!   the file header's codec (`pager::header`); the only user of storage;
//! - `alloc`: which pages are in use, and when freed pages are reusable;
//! - `store`: the page store the trees live in (pager and allocator, with
//!   the running transaction's copy-on-write and frees);
//! - `node`, `btree`, `cursor`: node pages, the B+tree over the store, and
//!   range scans;
//! - `db`: transactions and commit, snapshots, versions, open and
//!   recovery, the integrity check (one module each).
//!
//! `page` (page size, references, field codecs), `checksum` and `error`
//! are shared by all. This file is the boundary: plain exported functions
//! over numbers, with keys and values passed through an input buffer and
//! results through an output buffer in linear memory.

// Natively, outside tests, nothing calls the engine (the exports are for
// wasm32 only); the wasm and test builds are where dead code is reported.
#![cfg_attr(all(not(target_arch = "wasm32"), not(test)), allow(dead_code, unused_imports))]

mod alloc;
mod btree;
mod checksum;
mod cursor;
mod db;
mod error;
mod node;
mod page;
mod pager;
mod storage;
mod store;

#[cfg(target_arch = "wasm32")]
mod exports {
    use crate::db::Db;
    use crate::error::{Error, Result};
    use crate::storage::HostFile;

    struct Global {
        dbs: Vec<Option<Db>>,
        input: Vec<u8>,
        out: Vec<u8>,
        err: Vec<u8>,
    }

    static mut GLOBAL: Option<Global> = None;

    /// Where the output buffer is after each call (pointer, length), so the
    /// glue reads it from memory instead of calling for it.
    static mut RESULT: [u32; 2] = [0, 0];

    fn publish(out: &Vec<u8>) {
        unsafe {
            RESULT = [out.as_ptr() as u32, out.len() as u32];
        }
    }

    /// The address of the (pointer, length) pair of the output buffer.
    #[no_mangle]
    pub extern "C" fn vk_result() -> *const u32 {
        unsafe { RESULT.as_ptr() }
    }

    // The module is single-threaded: one Global, reached only from exports.
    fn global() -> &'static mut Global {
        unsafe {
            GLOBAL.get_or_insert_with(|| Global { dbs: Vec::new(), input: Vec::new(), out: Vec::new(), err: Vec::new() })
        }
    }

    fn fail(e: Error) -> i32 {
        global().err = e.to_string().into_bytes();
        -e.code()
    }

    fn run(db: u32, f: impl FnOnce(&mut Db, &[u8], &mut Vec<u8>) -> Result<i32>) -> i32 {
        let g = global();
        match g.dbs.get_mut(db as usize).and_then(|d| d.as_mut()) {
            None => fail(Error::Invalid(format!("database {} is not open", db))),
            Some(d) => {
                let result = f(d, &g.input, &mut g.out);
                publish(&g.out);
                match result {
                    Ok(v) => v,
                    Err(e) => fail(e),
                }
            }
        }
    }

    fn run_f64(db: u32, f: impl FnOnce(&mut Db) -> Result<u64>) -> f64 {
        let g = global();
        match g.dbs.get_mut(db as usize).and_then(|d| d.as_mut()) {
            None => fail(Error::Invalid(format!("database {} is not open", db))) as f64,
            Some(d) => match f(d) {
                Ok(v) => v as f64,
                Err(e) => fail(e) as f64,
            },
        }
    }

    /// A buffer of at least `len` bytes for the next call's input.
    #[no_mangle]
    pub extern "C" fn vk_input(len: u32) -> *mut u8 {
        let g = global();
        if g.input.len() < len as usize {
            g.input.resize(len as usize, 0);
        }
        g.input.as_mut_ptr()
    }

    #[no_mangle]
    pub extern "C" fn vk_error() -> *const u8 {
        global().err.as_ptr()
    }

    #[no_mangle]
    pub extern "C" fn vk_error_len() -> u32 {
        global().err.len() as u32
    }

    /// Opens the database in host file `file`; returns its handle.
    #[no_mangle]
    pub extern "C" fn vk_open(file: u32, cache_pages: u32) -> i32 {
        match Db::open(Box::new(HostFile(file)), cache_pages as usize) {
            Err(e) => fail(e),
            Ok(db) => {
                let g = global();
                match g.dbs.iter().position(|d| d.is_none()) {
                    Some(i) => {
                        g.dbs[i] = Some(db);
                        i as i32
                    }
                    None => {
                        g.dbs.push(Some(db));
                        (g.dbs.len() - 1) as i32
                    }
                }
            }
        }
    }

    /// Closes cleanly (a final durable commit), then forgets the handle.
    #[no_mangle]
    pub extern "C" fn vk_close(db: u32) -> i32 {
        let rc = run(db, |d, _, _| d.close().map(|_| 0));
        vk_drop(db);
        rc
    }

    /// Forgets the handle without writing anything (as a crash would).
    #[no_mangle]
    pub extern "C" fn vk_drop(db: u32) -> i32 {
        if let Some(d) = global().dbs.get_mut(db as usize) {
            *d = None;
        }
        0
    }

    #[no_mangle]
    pub extern "C" fn vk_get(db: u32, snapshot: u32, klen: u32, now: f64) -> i32 {
        run(db, |d, input, out| d.get(snapshot, &input[..klen as usize], now as u64, out).map(|f| f as i32))
    }

    /// Input: prefix, then the key to start after (`alen` 0: from the start).
    #[no_mangle]
    pub extern "C" fn vk_scan(db: u32, snapshot: u32, plen: u32, alen: u32, now: f64, max_bytes: u32, max_count: u32) -> i32 {
        run(db, |d, input, out| {
            let prefix = &input[..plen as usize];
            let after = if alen == 0 { None } else { Some(&input[plen as usize..(plen + alen) as usize]) };
            d.scan_prefix(snapshot, prefix, after, now as u64, max_bytes as usize, max_count, out).map(|n| n as i32)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_snapshot(db: u32) -> i32 {
        run(db, |d, _, _| Ok(d.snapshot() as i32))
    }

    #[no_mangle]
    pub extern "C" fn vk_release(db: u32, id: u32) -> i32 {
        run(db, |d, _, _| {
            d.release(id);
            Ok(0)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_begin(db: u32) -> i32 {
        run(db, |d, _, _| d.begin().map(|_| 0))
    }

    /// The live revision of a key in the transaction (0: absent).
    #[no_mangle]
    pub extern "C" fn vk_check(db: u32, klen: u32, now: f64) -> f64 {
        let g = global();
        let key = g.input[..klen as usize].to_vec();
        run_f64(db, |d| d.check(&key, now as u64).map(|r| r.unwrap_or(0)))
    }

    /// The revision of the transaction's last operation.
    #[no_mangle]
    pub extern "C" fn vk_revision(db: u32) -> f64 {
        run_f64(db, |d| d.revision())
    }

    /// Input: key, then value. The glue numbers operations: `revision`.
    #[no_mangle]
    pub extern "C" fn vk_put(db: u32, klen: u32, vlen: u32, revision: f64, expires: f64, now: f64) -> i32 {
        run(db, |d, input, _| {
            let (k, v) = input[..(klen + vlen) as usize].split_at(klen as usize);
            d.put_at(k, v, revision as u64, expires as u64, now as u64).map(|r| r as i32)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_delete(db: u32, klen: u32, now: f64) -> i32 {
        run(db, |d, input, _| d.delete(&input[..klen as usize], now as u64).map(|r| r as i32))
    }

    /// Input: key (may be empty), then dir.
    #[no_mangle]
    pub extern "C" fn vk_delete_tree(db: u32, klen: u32, dlen: u32, now: f64, collect: u32) -> i32 {
        run(db, |d, input, out| {
            out.clear();
            let (k, dir) = input[..(klen + dlen) as usize].split_at(klen as usize);
            d.delete_tree(k, dir, now as u64, out, collect != 0).map(|n| n as i32)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_sweep(db: u32, now: f64, max: u32) -> i32 {
        run(db, |d, _, out| {
            out.clear();
            d.sweep(now as u64, max, out).map(|n| n as i32)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_next_expiry(db: u32) -> f64 {
        run_f64(db, |d| d.next_expiry())
    }

    /// Commits with the last revision the glue gave an operation. Returns 1
    /// when the host must sync and then call `vk_synced`.
    #[no_mangle]
    pub extern "C" fn vk_commit(db: u32, durable: u32, revision: f64) -> i32 {
        run(db, |d, _, _| {
            d.raise_revision(revision as u64);
            d.commit(durable != 0).map(|s| s as i32)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_sync(db: u32) -> i32 {
        run(db, |d, _, _| d.sync().map(|_| 0))
    }

    #[no_mangle]
    pub extern "C" fn vk_synced(db: u32, ok: u32) -> i32 {
        run(db, |d, _, _| {
            if ok == 0 {
                d.sync_failed();
                return Ok(0);
            }
            d.synced().map(|_| 0)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_verify(db: u32) -> i32 {
        run(db, |d, _, out| {
            let report = d.verify()?;
            out.clear();
            out.extend_from_slice(report.as_bytes());
            Ok(0)
        })
    }

    #[no_mangle]
    pub extern "C" fn vk_stats(db: u32) -> i32 {
        run(db, |d, _, out| {
            let stats = d.stats();
            out.clear();
            out.extend_from_slice(stats.as_bytes());
            Ok(0)
        })
    }
}

#[cfg(test)]
mod tests;
