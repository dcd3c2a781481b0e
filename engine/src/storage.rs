//! The host's storage: the five calls of redb's `StorageBackend` (`len`,
//! `read`, `write`, `set_len`, `sync`). In wasm they are imports implemented
//! by the TypeScript host over `node:fs` or memory; in native unit tests an
//! in-memory vector stands in.

use crate::error::{Error, Result};

/// A file the engine reads and writes by offset.
pub trait Storage {
    /// The file's length in bytes.
    fn len(&mut self) -> Result<u64>;
    /// Fills `buf` from `offset`; reading past the end is an error.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `buf` at `offset`, growing the file if needed.
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Truncates or extends the file.
    fn set_len(&mut self, len: u64) -> Result<()>;
    /// Makes every write so far durable.
    fn sync(&mut self) -> Result<()>;
}

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "host")]
    extern "C" {
        pub fn host_len(file: u32) -> f64;
        pub fn host_read(file: u32, offset: f64, ptr: *mut u8, len: u32) -> i32;
        pub fn host_write(file: u32, offset: f64, ptr: *const u8, len: u32) -> i32;
        pub fn host_set_len(file: u32, len: f64) -> i32;
        pub fn host_sync(file: u32) -> i32;
    }
}

/// A file of the TypeScript host, named by the number the host gave it.
/// Offsets cross the boundary as f64, exact up to 2^53 bytes.
#[cfg(target_arch = "wasm32")]
pub struct HostFile(pub u32);

#[cfg(target_arch = "wasm32")]
fn host_error(call: &str) -> Error {
    Error::Io(format!("the host's {} call failed", call))
}

#[cfg(target_arch = "wasm32")]
impl Storage for HostFile {
    fn len(&mut self) -> Result<u64> {
        let len = unsafe { imports::host_len(self.0) };
        if len < 0.0 {
            return Err(host_error("len"));
        }
        Ok(len as u64)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let rc = unsafe {
            imports::host_read(self.0, offset as f64, buf.as_mut_ptr(), buf.len() as u32)
        };
        if rc != 0 {
            return Err(host_error("read"));
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let rc =
            unsafe { imports::host_write(self.0, offset as f64, buf.as_ptr(), buf.len() as u32) };
        if rc != 0 {
            return Err(host_error("write"));
        }
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        if unsafe { imports::host_set_len(self.0, len as f64) } != 0 {
            return Err(host_error("set_len"));
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        if unsafe { imports::host_sync(self.0) } != 0 {
            return Err(host_error("sync"));
        }
        Ok(())
    }
}

/// A file in memory, for native unit tests. Clones share the bytes, so a
/// test can reopen the file, damage it, or count the calls that reached it.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct MemFile(pub std::rc::Rc<std::cell::RefCell<MemData>>);

#[cfg(test)]
#[derive(Default)]
pub struct MemData {
    pub bytes: Vec<u8>,
    /// Calls that reached the file.
    pub reads: u64,
    pub writes: u64,
    pub syncs: u64,
    /// Makes writes (and set_len) or syncs fail, as a full or dying disk.
    pub fail_writes: bool,
    pub fail_syncs: bool,
}

#[cfg(test)]
impl MemFile {
    /// A file holding `bytes`.
    pub fn with(bytes: Vec<u8>) -> MemFile {
        let f = MemFile::default();
        f.0.borrow_mut().bytes = bytes;
        f
    }
    /// A copy of the file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().bytes.clone()
    }
    pub fn reads(&self) -> u64 {
        self.0.borrow().reads
    }
    /// Flips bit `bit` of byte `at`.
    pub fn flip(&self, at: usize, bit: u32) {
        self.0.borrow_mut().bytes[at] ^= 1 << bit;
    }
}

#[cfg(test)]
impl Storage for MemFile {
    fn len(&mut self) -> Result<u64> {
        Ok(self.0.borrow().bytes.len() as u64)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut d = self.0.borrow_mut();
        d.reads += 1;
        let start = offset as usize;
        let end = start + buf.len();
        if end > d.bytes.len() {
            return Err(Error::Io("read past the end of the file".into()));
        }
        buf.copy_from_slice(&d.bytes[start..end]);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut d = self.0.borrow_mut();
        if d.fail_writes {
            return Err(Error::Io("injected write error".into()));
        }
        d.writes += 1;
        let start = offset as usize;
        let end = start + buf.len();
        if end > d.bytes.len() {
            d.bytes.resize(end, 0);
        }
        d.bytes[start..end].copy_from_slice(buf);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        let mut d = self.0.borrow_mut();
        if d.fail_writes {
            return Err(Error::Io("injected set_len error".into()));
        }
        d.bytes.resize(len as usize, 0);
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        let mut d = self.0.borrow_mut();
        if d.fail_syncs {
            return Err(Error::Io("injected sync error".into()));
        }
        d.syncs += 1;
        Ok(())
    }
}
