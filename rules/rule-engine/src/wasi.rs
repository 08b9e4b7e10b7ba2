//! The `wasi_snapshot_preview1` host that rules run against: all 46 preview1
//! functions with their exact signatures, implemented for this sandbox only.
//!
//! Why not `wasmtime-wasi`: its preview1 is an adapter over WASI preview2, so it
//! needs wasmtime's component model (the `component-model` runtime inside
//! `wasmtime`, wit-parser, wit-component, the component macros), wiggle and
//! witx, tokio, cap-std and about ninety crates in all, compiled on every fresh
//! CI machine for the handful of calls a rule makes. And it carries a real
//! filesystem and network implementation that this sandbox switches off by
//! configuration. Here there is no filesystem or network code at all: the
//! only file descriptors are the three stdio ones, stdin is a byte buffer,
//! stdout and stderr are [`CapturePipe`]s, the clocks are frozen and the
//! "random" bytes fixed (see `sandbox()` in `run.rs`).
//!
//! The observable behaviour is that of wasmtime-wasi 48's preview1 with that
//! sandbox (no preopens, no environment, `argv = ["rule"]`), down to errno
//! values, the order of checks and trap messages (wasmtime-wasi's
//! `src/p1.rs` and the `wiggle` glue it generates):
//!
//! - every call first needs the instance's `memory` export, else it traps;
//! - arguments that are not valid for their type (an enum or flags value out
//!   of range) trap, like wiggle's conversions;
//! - guest pointers are bounds-checked (and alignment-checked for integers and
//!   records) on every access; an out-of-bounds, misaligned or overflowing
//!   pointer traps (`Pointer out of bounds: Region { .. }`), as the witx
//!   pointer rules require and wasmtime-wasi does. `EFAULT` is never returned;
//! - one call may copy at most 128 MiB of iovec arrays, buffers and strings
//!   (wasmtime's default host-call fuel), else `ENOMEM`;
//! - `fd_read`/`fd_write` use only the first non-empty iovec, as wasmtime-wasi
//!   does (the guest's libc loops on short counts);
//! - every filesystem and socket function returns the errno wasmtime-wasi
//!   returns when there is no preopened directory: `EBADF` for most,
//!   `ESPIPE`, `ENOTDIR`, `ENOTSOCK`, `EINVAL` or `ENOTSUP` where it did.
//!
//! One deliberate difference: `poll_oneoff` returns `ENOTSUP` (`EINVAL` for no
//! subscriptions) instead of sleeping in the host, where the epoch deadline
//! cannot interrupt it. Uploads refuse modules importing it anyway
//! (`validate.rs`).

use std::fmt;
use std::num::TryFromIntError;
use std::ops::Range;
use std::time::Duration;

use wasmtime::{Caller, Extern, Linker};

use crate::pipe::CapturePipe;
use crate::run::HostState;
use crate::validate::WASI_MODULE;

/// How many bytes of iovec arrays, buffers and strings one call may copy:
/// wasmtime's default host-call fuel, which wiggle-based hosts use.
const HOSTCALL_FUEL: usize = 128 << 20;

/// Size of an `iovec`/`ciovec` record in guest memory (pointer, length).
const IOVEC_SIZE: u32 = 8;

/// `rights::fd_read` and `rights::fd_write`, the rights of the stdio fds.
const RIGHTS_FD_READ: u64 = 1 << 1;
const RIGHTS_FD_WRITE: u64 = 1 << 6;

/// `proc_exit` with a status in `0..126`: unwinds the guest like a trap, and
/// the runner treats status 0 as a normal end.
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Exited with i32 exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The world one run sees. Built by `sandbox()` in `run.rs`.
pub(crate) struct WasiCtx {
    stdin: Vec<u8>,
    /// How much of `stdin` the guest has read.
    stdin_read: usize,
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
    /// `argv`; each argument is passed NUL-terminated.
    args: &'static [&'static str],
    /// Which stdio stream each of fds 0, 1 and 2 is, if still open: the guest
    /// can close and renumber them, and there is no way to open others.
    fds: [Option<Stdio>; 3],
    clocks: Clocks,
    random: FixedRandom,
}

/// The values the clocks report; nothing reads the host clock during a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    /// `clock_time_get(realtime)`, since the Unix epoch.
    pub(crate) wall_now: Duration,
    /// `clock_res_get(realtime)`.
    pub(crate) wall_resolution: Duration,
    /// `clock_time_get(monotonic)`, in nanoseconds.
    pub(crate) monotonic_now: u64,
    /// `clock_res_get(monotonic)`, in nanoseconds.
    pub(crate) monotonic_resolution: u64,
}

/// `random_get`'s source: cycles through a fixed table.
///
/// Each byte handed out consumes four bytes of the table and is the fourth:
/// that is what wasmtime-wasi's `Deterministic` generator produced (rand draws
/// a big-endian `u32` per byte and keeps its low byte), kept so rules see the
/// same bytes as before.
struct FixedRandom {
    table: &'static [u8],
    position: usize,
    /// The largest single `random_get`; a larger one traps.
    max_len: u64,
}

impl FixedRandom {
    fn next_byte(&mut self) -> u8 {
        let len = self.table.len();
        let byte = self.table[(self.position + 3) % len];
        self.position = (self.position + 4) % len;
        byte
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdio {
    In,
    Out,
    Err,
}

impl WasiCtx {
    /// A context with stdin `stdin`, `argv` `args`, the given output pipes,
    /// clocks, and `random_get` cycling through `random` (not empty), at most
    /// `max_random_len` bytes per call.
    pub(crate) fn new(
        stdin: Vec<u8>,
        stdout: CapturePipe,
        stderr: CapturePipe,
        args: &'static [&'static str],
        clocks: Clocks,
        random: &'static [u8],
        max_random_len: u64,
    ) -> Self {
        assert!(!random.is_empty(), "random_get needs at least one byte");
        WasiCtx {
            stdin,
            stdin_read: 0,
            stdout,
            stderr,
            args,
            fds: [Some(Stdio::In), Some(Stdio::Out), Some(Stdio::Err)],
            clocks,
            random: FixedRandom {
                table: random,
                position: 0,
                max_len: max_random_len,
            },
        }
    }

    fn stdio(&self, fd: u32) -> Option<Stdio> {
        self.fds.get(fd as usize).copied().flatten()
    }

    /// `EBADF` unless `fd` is open; used where any open fd gets another errno.
    fn open(&self, fd: u32) -> Result<Stdio, Error> {
        self.stdio(fd).ok_or(Error::Errno(Errno::Badf))
    }

    fn args_get(&self, mem: &mut Mem<'_>, argv: u32, argv_buf: u32) -> Result<(), Error> {
        let (mut argv, mut argv_buf) = (argv, argv_buf);
        for arg in self.args {
            mem.write_u32(argv, argv_buf)?;
            argv = add(argv, 4)?;
            argv_buf = mem.write_bytes(argv_buf, arg.as_bytes())?;
            argv_buf = mem.write_bytes(argv_buf, &[0])?;
        }
        Ok(())
    }

    fn args_sizes(&self) -> Result<(u32, u32), Error> {
        let count = u32::try_from(self.args.len()).map_err(|_| Errno::Overflow)?;
        let size = self.args.iter().map(|arg| arg.len() + 1).sum::<usize>();
        let size = u32::try_from(size).map_err(|_| Errno::Overflow)?;
        Ok((count, size))
    }

    fn clock_res_get(&self, id: u32) -> Result<u64, Error> {
        match id {
            CLOCK_REALTIME => nanos(self.clocks.wall_resolution),
            CLOCK_MONOTONIC => Ok(self.clocks.monotonic_resolution),
            _ => Err(Errno::Badf.into()), // the CPU-time clocks
        }
    }

    fn clock_time_get(&self, id: u32) -> Result<u64, Error> {
        match id {
            CLOCK_REALTIME => nanos(self.clocks.wall_now),
            CLOCK_MONOTONIC => Ok(self.clocks.monotonic_now),
            _ => Err(Errno::Badf.into()),
        }
    }

    fn fd_close(&mut self, fd: u32) -> Result<(), Error> {
        self.open(fd)?;
        self.fds[fd as usize] = None;
        Ok(())
    }

    fn fd_fdstat_get(&self, fd: u32) -> Result<u64, Error> {
        // Filetype `unknown` (not a terminal), no flags; the rights are returned.
        match self.open(fd)? {
            Stdio::In => Ok(RIGHTS_FD_READ),
            Stdio::Out | Stdio::Err => Ok(RIGHTS_FD_WRITE),
        }
    }

    fn fd_read(&mut self, mem: &mut Mem<'_>, fd: u32, iovs: u32, count: u32) -> Result<u32, Error> {
        let (buf, buf_len) = first_non_empty_iovec(mem, iovs, count)?;
        if self.stdio(fd) != Some(Stdio::In) {
            return Err(Errno::Badf.into());
        }
        let rest = &self.stdin[self.stdin_read..];
        if rest.is_empty() {
            return Ok(0); // end of input
        }
        if buf_len == 0 {
            // A zero-byte read while input remains: wasmtime-wasi's stream read
            // returns nothing, which it reports as EINTR.
            return Err(Errno::Intr.into());
        }
        let n = rest.len().min(buf_len as usize);
        let bytes = &rest[..n];
        self.stdin_read += n;
        // `n <= buf_len`, so this fits in u32.
        mem.slice_mut(buf, n as u32)?.copy_from_slice(bytes);
        Ok(n as u32)
    }

    fn fd_write(
        &mut self,
        mem: &mut Mem<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
    ) -> Result<u32, Error> {
        let (buf, buf_len) = first_non_empty_iovec(mem, iovs, count)?;
        let pipe = match self.stdio(fd) {
            Some(Stdio::Out) => &mut self.stdout,
            Some(Stdio::Err) => &mut self.stderr,
            Some(Stdio::In) | None => return Err(Errno::Badf.into()),
        };
        let bytes = mem.slice(buf, buf_len)?;
        // The stdout pipe closes when full (the run then fails with
        // `OutputTooLarge`); the guest sees EIO.
        pipe.write(bytes).map_err(|_| Errno::Io)?;
        Ok(buf_len)
    }

    fn fd_renumber(&mut self, from: u32, to: u32) -> Result<(), Error> {
        let (Some(stream), Some(_)) = (self.stdio(from), self.stdio(to)) else {
            return Err(Errno::Badf.into());
        };
        if from != to {
            self.fds[to as usize] = Some(stream);
            self.fds[from as usize] = None;
        }
        Ok(())
    }

    fn random_get(&mut self, mem: &mut Mem<'_>, buf: u32, len: u32) -> Result<(), Error> {
        if u64::from(len) > self.random.max_len {
            let error = wasmtime::Error::msg(format!(
                "requested len {len} exceeds limit {}",
                self.random.max_len
            ));
            return Err(Error::Trap(
                error.context("failed to call `get-random-bytes`"),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let random = &mut self.random;
        mem.slice_mut(buf, len)?
            .iter_mut()
            .for_each(|byte| *byte = random.next_byte());
        add(buf, len)?;
        Ok(())
    }
}

const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

/// A duration as a preview1 timestamp.
fn nanos(duration: Duration) -> Result<u64, Error> {
    duration
        .as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(u64::from(duration.subsec_nanos())))
        .ok_or(Error::Errno(Errno::Overflow))
}

/// The first iovec with a non-zero length, or an empty buffer at 0. Charges
/// the array and that buffer against the call's fuel (`ENOMEM` beyond it).
fn first_non_empty_iovec(mem: &Mem<'_>, iovs: u32, count: u32) -> Result<(u32, u32), Error> {
    let mut fuel = HOSTCALL_FUEL;
    let array_bytes = (count as usize)
        .checked_mul(IOVEC_SIZE as usize)
        .ok_or(Errno::Overflow)?;
    consume_fuel(&mut fuel, array_bytes)?;
    for index in 0..count {
        let iov = index
            .checked_mul(IOVEC_SIZE)
            .and_then(|offset| iovs.checked_add(offset))
            .ok_or(GuestError::PtrOverflow)?;
        let buf = mem.read_u32(iov)?;
        let buf_len = mem.read_u32(add(iov, 4)?)?;
        if buf_len == 0 {
            continue;
        }
        consume_fuel(&mut fuel, buf_len as usize)?;
        return Ok((buf, buf_len));
    }
    Ok((0, 0))
}

fn consume_fuel(fuel: &mut usize, bytes: usize) -> Result<(), Error> {
    *fuel = fuel.checked_sub(bytes).ok_or(Errno::Nomem)?;
    Ok(())
}

/// Reads a path argument as wasmtime-wasi does before it looks at the fd:
/// fuel (`ENOMEM`), bounds (trap), UTF-8 (`EILSEQ`). The text is not needed.
fn check_path(mem: &Mem<'_>, path: u32, len: u32) -> Result<(), Error> {
    let mut fuel = HOSTCALL_FUEL;
    consume_fuel(&mut fuel, len as usize)?;
    std::str::from_utf8(mem.slice(path, len)?).map_err(GuestError::from)?;
    Ok(())
}

/// `fst_flags` that ask for both a given time and "now" are invalid.
fn check_times(fst_flags: u16) -> Result<(), Error> {
    const ATIM: u16 = 1 << 0;
    const ATIM_NOW: u16 = 1 << 1;
    const MTIM: u16 = 1 << 2;
    const MTIM_NOW: u16 = 1 << 3;
    let both = |set, now| fst_flags & set != 0 && fst_flags & now != 0;
    if both(ATIM, ATIM_NOW) || both(MTIM, MTIM_NOW) {
        return Err(Errno::Inval.into());
    }
    Ok(())
}

/// The preview1 errno values this host returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Errno {
    Badf = 8,
    Ilseq = 25,
    Intr = 27,
    Inval = 28,
    Io = 29,
    Nomem = 48,
    Notdir = 54,
    Notsock = 57,
    Notsup = 58,
    Overflow = 61,
    Spipe = 70,
}

/// How a host function fails: an errno for the guest, or a trap.
enum Error {
    Errno(Errno),
    Trap(wasmtime::Error),
}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Self {
        Error::Errno(errno)
    }
}

impl From<GuestError> for Error {
    /// As wasmtime-wasi maps wiggle's errors: bad pointers trap (the witx
    /// rules say so), bad text is `EILSEQ`.
    fn from(error: GuestError) -> Self {
        match error {
            GuestError::InvalidFlagValue(_) | GuestError::InvalidEnumValue(_) => {
                Errno::Inval.into()
            }
            GuestError::PtrOverflow
            | GuestError::PtrOutOfBounds(_)
            | GuestError::PtrNotAligned(..) => Error::Trap(wasmtime::Error::new(error)),
            GuestError::InvalidUtf8(_) => Errno::Ilseq.into(),
            GuestError::TryFromIntError(_) => Errno::Overflow.into(),
            GuestError::InFunc { err, .. } => Error::from(*err),
        }
    }
}

/// A bad guest pointer or argument. The same variants and messages as
/// wiggle's `GuestError`, so traps read as they did.
#[derive(Debug, thiserror::Error)]
enum GuestError {
    #[error("Invalid flag value {0}")]
    InvalidFlagValue(&'static str),
    #[error("Invalid enum value {0}")]
    InvalidEnumValue(&'static str),
    #[error("Pointer overflow")]
    PtrOverflow,
    #[error("Pointer out of bounds: {0:?}")]
    PtrOutOfBounds(Region),
    #[error("Pointer not aligned to {1}: {0:?}")]
    PtrNotAligned(Region, u32),
    #[error("In func {modulename}::{funcname} at {location}: {err}")]
    InFunc {
        modulename: &'static str,
        funcname: &'static str,
        location: &'static str,
        #[source]
        err: Box<GuestError>,
    },
    #[error("Invalid UTF-8 encountered: {0:?}")]
    InvalidUtf8(#[from] std::str::Utf8Error),
    #[error("Int conversion error: {0:?}")]
    TryFromIntError(#[from] TryFromIntError),
}

/// A span of guest memory, as reported in pointer errors.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "read through `Debug`, in trap messages")]
struct Region {
    start: u32,
    len: u32,
}

/// A trap for a bad argument or result pointer of `funcname`.
fn in_func(funcname: &'static str, location: &'static str, err: GuestError) -> wasmtime::Error {
    wasmtime::Error::new(GuestError::InFunc {
        modulename: WASI_MODULE,
        funcname,
        location,
        err: Box::new(err),
    })
}

fn add(pointer: u32, bytes: u32) -> Result<u32, GuestError> {
    pointer.checked_add(bytes).ok_or(GuestError::PtrOverflow)
}

/// The guest's linear memory, with every access checked.
struct Mem<'a> {
    data: &'a mut [u8],
}

impl Mem<'_> {
    /// `len` bytes at `start`, or `PtrOutOfBounds`.
    fn range(&self, start: u32, len: u32) -> Result<Range<usize>, GuestError> {
        let range = start as usize..start as usize + len as usize;
        match self.data.get(range.clone()) {
            Some(_) => Ok(range),
            None => Err(GuestError::PtrOutOfBounds(Region { start, len })),
        }
    }

    /// The `N` bytes of an integer at `at`: in bounds, then aligned to `N`.
    fn integer<const N: usize>(&self, at: u32) -> Result<Range<usize>, GuestError> {
        let range = self.range(at, N as u32)?;
        // The host address, as wiggle checks it (wasm memories are page-aligned).
        let address = self.data.as_ptr() as usize + range.start;
        if !address.is_multiple_of(N) {
            let region = Region {
                start: at,
                len: N as u32,
            };
            return Err(GuestError::PtrNotAligned(region, N as u32));
        }
        Ok(range)
    }

    fn read_u32(&self, at: u32) -> Result<u32, GuestError> {
        let range = self.integer::<4>(at)?;
        let bytes = self.data[range].try_into().expect("4 bytes");
        Ok(u32::from_le_bytes(bytes))
    }

    fn write<const N: usize>(&mut self, at: u32, bytes: [u8; N]) -> Result<(), GuestError> {
        let range = self.integer::<N>(at)?;
        self.data[range].copy_from_slice(&bytes);
        Ok(())
    }

    fn write_u8(&mut self, at: u32, value: u8) -> Result<(), GuestError> {
        self.write(at, [value])
    }

    fn write_u16(&mut self, at: u32, value: u16) -> Result<(), GuestError> {
        self.write(at, value.to_le_bytes())
    }

    fn write_u32(&mut self, at: u32, value: u32) -> Result<(), GuestError> {
        self.write(at, value.to_le_bytes())
    }

    fn write_u64(&mut self, at: u32, value: u64) -> Result<(), GuestError> {
        self.write(at, value.to_le_bytes())
    }

    fn slice(&self, start: u32, len: u32) -> Result<&[u8], GuestError> {
        let range = self.range(start, len)?;
        Ok(&self.data[range])
    }

    fn slice_mut(&mut self, start: u32, len: u32) -> Result<&mut [u8], GuestError> {
        let range = self.range(start, len)?;
        Ok(&mut self.data[range])
    }

    /// Copies `bytes` to `at` (nothing to check when empty) and returns the
    /// address just past them.
    fn write_bytes(&mut self, at: u32, bytes: &[u8]) -> Result<u32, GuestError> {
        let len = u32::try_from(bytes.len())?;
        if len > 0 {
            self.slice_mut(at, len)?.copy_from_slice(bytes);
        }
        add(at, len)
    }
}

/// Gives `body` the caller's memory and WASI context, as wiggle does: a
/// module without a `memory` export cannot call any preview1 function.
fn host<R>(
    caller: &mut Caller<'_, HostState>,
    body: impl FnOnce(&mut Mem<'_>, &mut WasiCtx) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let memory = match caller.data().memory {
        Some(memory) => memory,
        None => {
            let export = caller.data().memory_export;
            let found = export.and_then(|export| caller.get_module_export(&export));
            let Some(Extern::Memory(memory)) = found else {
                wasmtime::bail!("missing required memory export");
            };
            caller.data_mut().memory = Some(memory);
            memory
        }
    };
    let (data, state) = memory.data_and_store_mut(caller);
    body(&mut Mem { data }, &mut state.wasi)
}

/// The errno for `result`, after storing its value with `store` (a bad
/// result pointer traps); traps pass through.
fn finish<T>(
    funcname: &'static str,
    location: &'static str,
    result: Result<T, Error>,
    store: impl FnOnce(T) -> Result<(), GuestError>,
) -> wasmtime::Result<i32> {
    match result {
        Ok(value) => {
            store(value).map_err(|err| in_func(funcname, location, err))?;
            Ok(0)
        }
        Err(Error::Errno(errno)) => Ok(errno as i32),
        Err(Error::Trap(trap)) => Err(trap),
    }
}

/// [`finish`] for functions without results.
fn errno(result: Result<(), Error>) -> wasmtime::Result<i32> {
    finish("", "", result, |()| Ok(()))
}

/// Argument conversions: a value outside its type traps, naming the function.
struct Args(&'static str);

impl Args {
    fn convert<T>(&self, ty: &'static str, value: Result<T, GuestError>) -> wasmtime::Result<T> {
        value.map_err(|err| in_func(self.0, ty, err))
    }

    /// An enum with `cases` values whose tag is an integer `R`.
    fn enumeration<R, V>(
        &self,
        ty: &'static str,
        name: &'static str,
        value: V,
        cases: u64,
    ) -> wasmtime::Result<R>
    where
        V: TryInto<R, Error = TryFromIntError>,
        R: Into<u64> + Copy,
    {
        self.checked(ty, value, |tag| {
            (tag < cases)
                .then_some(())
                .ok_or(GuestError::InvalidEnumValue(name))
        })
    }

    /// A flags type of `R` with the bits `valid`.
    fn flags<R, V>(
        &self,
        ty: &'static str,
        name: &'static str,
        value: V,
        valid: u64,
    ) -> wasmtime::Result<R>
    where
        V: TryInto<R, Error = TryFromIntError>,
        R: Into<u64> + Copy,
    {
        self.checked(ty, value, |bits| {
            (bits & !valid == 0)
                .then_some(())
                .ok_or(GuestError::InvalidFlagValue(name))
        })
    }

    /// `value` as an `R` that passes `check`, or a trap.
    fn checked<R, V>(
        &self,
        ty: &'static str,
        value: V,
        check: impl FnOnce(u64) -> Result<(), GuestError>,
    ) -> wasmtime::Result<R>
    where
        V: TryInto<R, Error = TryFromIntError>,
        R: Into<u64> + Copy,
    {
        let value = value
            .try_into()
            .map_err(GuestError::from)
            .and_then(|raw: R| {
                check(raw.into())?;
                Ok(raw)
            });
        self.convert(ty, value)
    }

    fn clockid(&self, value: i32) -> wasmtime::Result<u32> {
        self.enumeration("convert Clockid", "Clockid", value, 4)
    }

    fn whence(&self, value: i32) -> wasmtime::Result<u8> {
        self.enumeration("convert Whence", "Whence", value, 3)
    }

    fn advice(&self, value: i32) -> wasmtime::Result<u8> {
        self.enumeration("convert Advice", "Advice", value, 6)
    }

    fn signal(&self, value: i32) -> wasmtime::Result<u8> {
        self.enumeration("convert Signal", "Signal", value, 31)
    }

    fn fdflags(&self, value: i32) -> wasmtime::Result<u16> {
        self.flags("convert Fdflags", "Fdflags", value, 0x1f)
    }

    fn rights(&self, value: i64) -> wasmtime::Result<u64> {
        self.flags("convert Rights", "Rights", value, (1 << 30) - 1)
    }

    fn fstflags(&self, value: i32) -> wasmtime::Result<u16> {
        self.flags("convert Fstflags", "Fstflags", value, 0xf)
    }

    fn lookupflags(&self, value: i32) -> wasmtime::Result<u32> {
        self.flags("convert Lookupflags", "Lookupflags", value, 0x1)
    }

    fn oflags(&self, value: i32) -> wasmtime::Result<u16> {
        self.flags("convert Oflags", "Oflags", value, 0xf)
    }

    fn riflags(&self, value: i32) -> wasmtime::Result<u16> {
        self.flags("convert Riflags", "Riflags", value, 0x3)
    }

    /// `siflags` is a plain `u16`.
    fn siflags(&self, value: i32) -> wasmtime::Result<u16> {
        self.convert(
            "convert u16",
            u16::try_from(value).map_err(GuestError::from),
        )
    }

    fn sdflags(&self, value: i32) -> wasmtime::Result<u8> {
        self.flags("convert Sdflags", "Sdflags", value, 0x3)
    }
}

/// Defines `$name` as a preview1 function returning an errno, with `$mem` and
/// `$ctx` bound for `$body` and the wasm parameters as declared.
macro_rules! define {
    ($linker:ident, $name:literal, |$mem:tt, $ctx:tt $(, $arg:ident: $ty:ty)*| $body:expr) => {
        $linker.func_wrap(
            WASI_MODULE,
            $name,
            |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                host(&mut caller, |$mem, $ctx| $body)
            },
        )?;
    };
}

/// Adds every `wasi_snapshot_preview1` function to `linker`.
#[allow(clippy::too_many_lines, reason = "one short definition per function")]
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Fds are `u32` handles and sizes `u32`: the wasm `i32`s are reinterpreted
    // (`as u32`), as wiggle does.
    define!(linker, "args_get", |mem, ctx, argv: i32, argv_buf: i32| {
        errno(ctx.args_get(mem, argv as u32, argv_buf as u32))
    });
    define!(
        linker,
        "args_sizes_get",
        |mem, ctx, count: i32, size: i32| {
            finish(
                "args_sizes_get",
                "write size",
                ctx.args_sizes(),
                |(n, len)| {
                    mem.write_u32(count as u32, n)?;
                    mem.write_u32(size as u32, len)
                },
            )
        }
    );
    // No environment: nothing to write, and the pointers are not looked at.
    define!(
        linker,
        "environ_get",
        |_, _, _environ: i32, _environ_buf: i32| Ok(0)
    );
    define!(
        linker,
        "environ_sizes_get",
        |mem, _, count: i32, size: i32| {
            finish("environ_sizes_get", "write size", Ok(()), |()| {
                mem.write_u32(count as u32, 0)?;
                mem.write_u32(size as u32, 0)
            })
        }
    );
    define!(linker, "clock_res_get", |mem, ctx, id: i32, out: i32| {
        let id = Args("clock_res_get").clockid(id)?;
        finish(
            "clock_res_get",
            "write timestamp",
            ctx.clock_res_get(id),
            |res| mem.write_u64(out as u32, res),
        )
    });
    define!(
        linker,
        "clock_time_get",
        |mem, ctx, id: i32, _precision: i64, out: i32| {
            let id = Args("clock_time_get").clockid(id)?;
            finish(
                "clock_time_get",
                "write timestamp",
                ctx.clock_time_get(id),
                |now| mem.write_u64(out as u32, now),
            )
        }
    );

    // File descriptors: only stdio exists, and none of it is a file.
    define!(
        linker,
        "fd_advise",
        |_, _, _fd: i32, _offset: i64, _len: i64, advice: i32| {
            Args("fd_advise").advice(advice)?;
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "fd_allocate",
        |_, _, _fd: i32, _offset: i64, _len: i64| { Ok(Errno::Badf as i32) }
    );
    define!(linker, "fd_close", |_, ctx, fd: i32| errno(
        ctx.fd_close(fd as u32)
    ));
    define!(linker, "fd_datasync", |_, _, _fd: i32| Ok(
        Errno::Badf as i32
    ));
    define!(linker, "fd_fdstat_get", |mem, ctx, fd: i32, out: i32| {
        finish(
            "fd_fdstat_get",
            "write fdstat",
            ctx.fd_fdstat_get(fd as u32),
            |rights| {
                let out = out as u32;
                mem.write_u8(out, 0)?; // fs_filetype: unknown
                mem.write_u16(add(out, 2)?, 0)?; // fs_flags
                mem.write_u64(add(out, 8)?, rights)?; // fs_rights_base
                mem.write_u64(add(out, 16)?, rights) // fs_rights_inheriting
            },
        )
    });
    define!(
        linker,
        "fd_fdstat_set_flags",
        |_, _, _fd: i32, flags: i32| {
            Args("fd_fdstat_set_flags").fdflags(flags)?;
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "fd_fdstat_set_rights",
        |_, _, _fd: i32, base: i64, inheriting: i64| {
            let args = Args("fd_fdstat_set_rights");
            args.rights(base)?;
            args.rights(inheriting)?;
            Ok(Errno::Badf as i32)
        }
    );
    define!(linker, "fd_filestat_get", |mem, ctx, fd: i32, out: i32| {
        finish(
            "fd_filestat_get",
            "write filestat",
            ctx.open(fd as u32),
            |_| {
                // All zero, filetype unknown: dev, ino, filetype, nlink, size,
                // atim, mtim, ctim.
                let out = out as u32;
                mem.write_u64(out, 0)?;
                mem.write_u64(add(out, 8)?, 0)?;
                mem.write_u8(add(out, 16)?, 0)?;
                for offset in [24, 32, 40, 48, 56] {
                    mem.write_u64(add(out, offset)?, 0)?;
                }
                Ok(())
            },
        )
    });
    define!(
        linker,
        "fd_filestat_set_size",
        |_, _, _fd: i32, _size: i64| { Ok(Errno::Badf as i32) }
    );
    define!(
        linker,
        "fd_filestat_set_times",
        |_, _, _fd: i32, _atim: i64, _mtim: i64, fst_flags: i32| {
            let fst_flags = Args("fd_filestat_set_times").fstflags(fst_flags)?;
            errno(check_times(fst_flags).and(Err(Errno::Badf.into())))
        }
    );
    define!(
        linker,
        "fd_pread",
        |mem, ctx, fd: i32, iovs: i32, count: i32, _offset: i64, _out: i32| {
            errno(
                first_non_empty_iovec(mem, iovs as u32, count as u32).and_then(|_| {
                    match ctx.open(fd as u32)? {
                        Stdio::In => Err(Errno::Spipe.into()),
                        Stdio::Out | Stdio::Err => Err(Errno::Badf.into()),
                    }
                }),
            )
        }
    );
    // No preopened directories: this is how guests learn there are none.
    define!(linker, "fd_prestat_get", |_, _, _fd: i32, _out: i32| Ok(
        Errno::Badf as i32
    ));
    define!(
        linker,
        "fd_prestat_dir_name",
        |_, ctx, fd: i32, _path: i32, _len: i32| {
            errno(ctx.open(fd as u32).and(Err(Errno::Notdir.into())))
        }
    );
    define!(
        linker,
        "fd_pwrite",
        |mem, ctx, fd: i32, iovs: i32, count: i32, _offset: i64, _out: i32| {
            errno(
                first_non_empty_iovec(mem, iovs as u32, count as u32).and_then(|_| {
                    match ctx.open(fd as u32)? {
                        Stdio::Out | Stdio::Err => Err(Errno::Spipe.into()),
                        Stdio::In => Err(Errno::Badf.into()),
                    }
                }),
            )
        }
    );
    define!(
        linker,
        "fd_read",
        |mem, ctx, fd: i32, iovs: i32, count: i32, out: i32| {
            let result = ctx.fd_read(mem, fd as u32, iovs as u32, count as u32);
            finish("fd_read", "write size", result, |n| {
                mem.write_u32(out as u32, n)
            })
        }
    );
    define!(
        linker,
        "fd_readdir",
        |_, _, _fd: i32, _buf: i32, _len: i32, _cookie: i64, _out: i32| { Ok(Errno::Badf as i32) }
    );
    define!(linker, "fd_renumber", |_, ctx, from: i32, to: i32| {
        errno(ctx.fd_renumber(from as u32, to as u32))
    });
    define!(
        linker,
        "fd_seek",
        |_, ctx, fd: i32, _offset: i64, whence: i32, _out: i32| {
            Args("fd_seek").whence(whence)?;
            errno(ctx.open(fd as u32).and(Err(Errno::Spipe.into())))
        }
    );
    define!(linker, "fd_sync", |_, _, _fd: i32| Ok(Errno::Badf as i32));
    define!(linker, "fd_tell", |_, ctx, fd: i32, _out: i32| {
        errno(ctx.open(fd as u32).and(Err(Errno::Spipe.into())))
    });
    define!(
        linker,
        "fd_write",
        |mem, ctx, fd: i32, iovs: i32, count: i32, out: i32| {
            let result = ctx.fd_write(mem, fd as u32, iovs as u32, count as u32);
            finish("fd_write", "write size", result, |n| {
                mem.write_u32(out as u32, n)
            })
        }
    );

    // Paths: there is no directory fd to resolve them against.
    define!(
        linker,
        "path_create_directory",
        |_, _, _fd: i32, _path: i32, _len: i32| { Ok(Errno::Badf as i32) }
    );
    define!(
        linker,
        "path_filestat_get",
        |_, _, _fd: i32, flags: i32, _path: i32, _len: i32, _out: i32| {
            Args("path_filestat_get").lookupflags(flags)?;
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "path_filestat_set_times",
        |_,
         _,
         _fd: i32,
         flags: i32,
         _path: i32,
         _len: i32,
         _atim: i64,
         _mtim: i64,
         fst_flags: i32| {
            let args = Args("path_filestat_set_times");
            args.lookupflags(flags)?;
            let fst_flags = args.fstflags(fst_flags)?;
            errno(check_times(fst_flags).and(Err(Errno::Badf.into())))
        }
    );
    define!(
        linker,
        "path_link",
        |_,
         _,
         _old_fd: i32,
         old_flags: i32,
         _old_path: i32,
         _old_len: i32,
         _new_fd: i32,
         _new_path: i32,
         _new_len: i32| {
            Args("path_link").lookupflags(old_flags)?;
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "path_open",
        |mem,
         _,
         _fd: i32,
         dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         base: i64,
         inheriting: i64,
         fdflags: i32,
         _out: i32| {
            let args = Args("path_open");
            args.lookupflags(dirflags)?;
            args.oflags(oflags)?;
            args.rights(base)?;
            args.rights(inheriting)?;
            args.fdflags(fdflags)?;
            // The path is read before the fd is looked at; any fd is then EBADF.
            errno(check_path(mem, path as u32, len as u32).and(Err(Errno::Badf.into())))
        }
    );
    define!(
        linker,
        "path_readlink",
        |_, _, _fd: i32, _path: i32, _len: i32, _buf: i32, _buf_len: i32, _out: i32| {
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "path_remove_directory",
        |_, _, _fd: i32, _path: i32, _len: i32| { Ok(Errno::Badf as i32) }
    );
    define!(
        linker,
        "path_rename",
        |_,
         _,
         _fd: i32,
         _old_path: i32,
         _old_len: i32,
         _new_fd: i32,
         _new_path: i32,
         _new_len: i32| { Ok(Errno::Badf as i32) }
    );
    define!(
        linker,
        "path_symlink",
        |_, _, _old_path: i32, _old_len: i32, _fd: i32, _new_path: i32, _new_len: i32| {
            Ok(Errno::Badf as i32)
        }
    );
    define!(
        linker,
        "path_unlink_file",
        |_, _, _fd: i32, _path: i32, _len: i32| { Ok(Errno::Badf as i32) }
    );

    // Never sleeps in the host (see the module documentation).
    define!(
        linker,
        "poll_oneoff",
        |_, _, _subscriptions: i32, _events: i32, count: i32, _out: i32| {
            let errno = if count == 0 {
                Errno::Inval
            } else {
                Errno::Notsup
            };
            Ok(errno as i32)
        }
    );
    linker.func_wrap(
        WASI_MODULE,
        "proc_exit",
        |mut caller: Caller<'_, HostState>, status: i32| -> wasmtime::Result<()> {
            host(&mut caller, |_, _| {
                // Statuses are `u32`; WASI allows `0..126`.
                Err(match u32::try_from(status) {
                    Ok(status @ 0..126) => wasmtime::Error::new(Exit(status as i32)),
                    _ => wasmtime::Error::msg("exit with invalid exit status outside of [0..126)"),
                })
            })
        },
    )?;
    define!(linker, "proc_raise", |_, _, signal: i32| {
        Args("proc_raise").signal(signal)?;
        Ok(Errno::Notsup as i32)
    });
    define!(linker, "sched_yield", |_, _| Ok(0));
    define!(linker, "random_get", |mem, ctx, buf: i32, len: i32| {
        errno(ctx.random_get(mem, buf as u32, len as u32))
    });

    // Sockets: no fd is one.
    define!(
        linker,
        "sock_accept",
        |_, ctx, fd: i32, flags: i32, _out: i32| {
            Args("sock_accept").fdflags(flags)?;
            errno(ctx.open(fd as u32).and(Err(Errno::Notsock.into())))
        }
    );
    define!(
        linker,
        "sock_recv",
        |_, ctx, fd: i32, _data: i32, _count: i32, flags: i32, _size: i32, _oflags: i32| {
            Args("sock_recv").riflags(flags)?;
            errno(ctx.open(fd as u32).and(Err(Errno::Notsock.into())))
        }
    );
    define!(
        linker,
        "sock_send",
        |_, ctx, fd: i32, _data: i32, _count: i32, flags: i32, _out: i32| {
            Args("sock_send").siflags(flags)?;
            errno(ctx.open(fd as u32).and(Err(Errno::Notsock.into())))
        }
    );
    define!(linker, "sock_shutdown", |_, ctx, fd: i32, how: i32| {
        Args("sock_shutdown").sdflags(how)?;
        errno(ctx.open(fd as u32).and(Err(Errno::Notsock.into())))
    });
    Ok(())
}
