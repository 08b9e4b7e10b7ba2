//! Reading stdin and writing stdout and stderr, with as little code between the rule
//! and the host as possible.
//!
//! On WASI these call wasi-libc's `read` and `write` (which std links anyway) instead
//! of `std::io`: std's `Stdin` and `Stdout` are buffered, locked and initialised on
//! first use, which costs a small rule more than all of its JSON work (about 4,600
//! wasm instructions to read stdin, against 300 here). Elsewhere (native tests of a
//! rule) they use `std::io`.

/// Reads stdin to its end.
pub(crate) fn read_stdin() -> Result<Vec<u8>, std::io::Error> {
    // Room for a typical input up front: two reads (the data, then end of file).
    let mut bytes = Vec::with_capacity(4 * 1024);
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let read = sys::read(0, bytes.spare_capacity_mut())?;
        if read == 0 {
            return Ok(bytes);
        }
        // SAFETY: `sys::read` initialised the first `read` bytes of the spare capacity.
        unsafe { bytes.set_len(bytes.len() + read) };
    }
}

/// Writes all of `bytes` to `fd` (1: stdout, 2: stderr).
pub(crate) fn write_all(fd: i32, mut bytes: &[u8]) -> Result<(), std::io::Error> {
    while !bytes.is_empty() {
        let written = sys::write(fd, bytes)?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

#[cfg(target_os = "wasi")]
mod sys {
    use std::io::Error;
    use std::mem::MaybeUninit;

    mod libc {
        extern "C" {
            pub fn read(fd: i32, buf: *mut u8, count: usize) -> isize;
            pub fn write(fd: i32, buf: *const u8, count: usize) -> isize;
        }
    }

    pub fn read(fd: i32, into: &mut [MaybeUninit<u8>]) -> Result<usize, Error> {
        // SAFETY: `into` is valid for writes of its length.
        let read = unsafe { libc::read(fd, into.as_mut_ptr().cast(), into.len()) };
        usize::try_from(read).map_err(|_| Error::last_os_error())
    }

    pub fn write(fd: i32, bytes: &[u8]) -> Result<usize, Error> {
        // SAFETY: `bytes` is valid for reads of its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr(), bytes.len()) };
        usize::try_from(written).map_err(|_| Error::last_os_error())
    }
}

#[cfg(not(target_os = "wasi"))]
mod sys {
    use std::io::{Error, Read, Write};
    use std::mem::MaybeUninit;

    pub fn read(fd: i32, into: &mut [MaybeUninit<u8>]) -> Result<usize, Error> {
        debug_assert_eq!(fd, 0);
        let mut buffer = vec![0; into.len()];
        let read = std::io::stdin().read(&mut buffer)?;
        for (slot, byte) in into.iter_mut().zip(&buffer[..read]) {
            *slot = MaybeUninit::new(*byte);
        }
        Ok(read)
    }

    pub fn write(fd: i32, bytes: &[u8]) -> Result<usize, Error> {
        if fd == 1 {
            std::io::stdout().write(bytes)
        } else {
            std::io::stderr().write(bytes)
        }
    }
}
