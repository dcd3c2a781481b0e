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

/// A file in memory, for native unit tests.
#[derive(Default)]
pub struct MemFile {
    pub data: Vec<u8>,
}

impl Storage for MemFile {
    fn len(&mut self) -> Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = offset as usize;
        let end = start + buf.len();
        if end > self.data.len() {
            return Err(Error::Io("read past the end of the file".into()));
        }
        buf.copy_from_slice(&self.data[start..end]);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let start = offset as usize;
        let end = start + buf.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(buf);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        self.data.resize(len as usize, 0);
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}
