//! Reading stdin and writing stdout and stderr, with as little code between the rule
//! and the host as possible.
//!
//! On WASI these call the preview1 imports `fd_read`, `fd_write` and `proc_exit`
//! directly: no wasi-libc, no `std::io` (whose buffered, locked handles cost a small
//! rule more than all of its JSON work). Elsewhere (native tests of a rule) they use
//! `std::io`.

use alloc::vec::Vec;
use core::fmt;

/// Why reading stdin or writing stdout failed: a WASI errno (on WASI) or an I/O error.
#[derive(Debug)]
pub(crate) struct IoError(sys::Error);

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        sys::describe(&self.0, f)
    }
}

/// Reads stdin to its end.
pub(crate) fn read_stdin() -> Result<Vec<u8>, IoError> {
    // Room for a typical input up front: two reads (the data, then end of file).
    let mut bytes: Vec<u8> = Vec::with_capacity(4 * 1024);
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let spare = bytes.capacity() - bytes.len();
        // SAFETY: the spare capacity is valid for writes of `spare` bytes.
        let read =
            unsafe { sys::read(0, bytes.as_mut_ptr().add(bytes.len()), spare) }.map_err(IoError)?;
        if read == 0 {
            return Ok(bytes);
        }
        // SAFETY: `sys::read` initialised the first `read` (<= `spare`) bytes of the
        // spare capacity.
        unsafe { bytes.set_len(bytes.len() + read.min(spare)) };
    }
}

/// Writes all of `bytes` to `fd` (1: stdout, 2: stderr).
pub(crate) fn write_all(fd: u32, bytes: &[u8]) -> Result<(), IoError> {
    let mut at = 0;
    while at < bytes.len() {
        // SAFETY: `bytes[at..]` is valid for reads of its length.
        let written =
            unsafe { sys::write(fd, bytes.as_ptr().add(at), bytes.len() - at) }.map_err(IoError)?;
        if written == 0 {
            return Err(IoError(sys::write_zero()));
        }
        at += written;
    }
    Ok(())
}

/// Ends the program with `status`.
pub(crate) fn exit(status: i32) -> ! {
    sys::exit(status)
}

#[cfg(target_os = "wasi")]
mod sys {
    use core::fmt;

    /// A WASI errno.
    pub type Error = u16;
    /// `EIO`, for a write that wrote nothing.
    pub fn write_zero() -> Error {
        29
    }

    pub fn describe(errno: &Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WASI errno ")?;
        let mut digits = [0u8; 5];
        f.write_str(crate::decimal(u64::from(*errno), &mut digits))
    }

    /// A preview1 `iovec`/`ciovec`: a buffer's address and length.
    #[repr(C)]
    pub struct IoVec {
        buf: *const u8,
        len: usize,
    }

    mod wasi {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        extern "C" {
            pub fn fd_read(
                fd: u32,
                iovs: *const super::IoVec,
                count: usize,
                read: *mut usize,
            ) -> i32;
            pub fn fd_write(
                fd: u32,
                iovs: *const super::IoVec,
                count: usize,
                written: *mut usize,
            ) -> i32;
            pub fn proc_exit(status: u32) -> !;
        }
    }

    /// Reads up to `len` bytes into `into`.
    ///
    /// # Safety
    /// `into` must be valid for writes of `len` bytes.
    pub unsafe fn read(fd: u32, into: *mut u8, len: usize) -> Result<usize, Error> {
        let iov = IoVec { buf: into, len };
        let mut read = 0;
        match wasi::fd_read(fd, &iov, 1, &mut read) {
            0 => Ok(read),
            errno => Err(errno as Error),
        }
    }

    /// Writes up to `len` bytes from `bytes`.
    ///
    /// # Safety
    /// `bytes` must be valid for reads of `len` bytes.
    pub unsafe fn write(fd: u32, bytes: *const u8, len: usize) -> Result<usize, Error> {
        let iov = IoVec { buf: bytes, len };
        let mut written = 0;
        match wasi::fd_write(fd, &iov, 1, &mut written) {
            0 => Ok(written),
            errno => Err(errno as Error),
        }
    }

    pub fn exit(status: i32) -> ! {
        // SAFETY: `proc_exit` does not return; nothing runs after it.
        unsafe { wasi::proc_exit(status as u32) }
    }
}

#[cfg(not(target_os = "wasi"))]
mod sys {
    use std::fmt;
    use std::io::{ErrorKind, Read, Write};

    pub type Error = std::io::Error;
    pub fn write_zero() -> Error {
        ErrorKind::WriteZero.into()
    }

    pub fn describe(error: &Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(error, f)
    }

    pub unsafe fn read(fd: u32, into: *mut u8, len: usize) -> Result<usize, Error> {
        debug_assert_eq!(fd, 0);
        let mut buffer = vec![0; len];
        let read = std::io::stdin().read(&mut buffer)?;
        std::ptr::copy_nonoverlapping(buffer.as_ptr(), into, read);
        Ok(read)
    }

    pub unsafe fn write(fd: u32, bytes: *const u8, len: usize) -> Result<usize, Error> {
        let bytes = std::slice::from_raw_parts(bytes, len);
        if fd == 1 {
            std::io::stdout().write(bytes)
        } else {
            std::io::stderr().write(bytes)
        }
    }

    pub fn exit(status: i32) -> ! {
        std::process::exit(status)
    }
}
