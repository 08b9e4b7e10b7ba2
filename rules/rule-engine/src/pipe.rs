//! In-memory stdout/stderr for a run, with a hard capacity.
//!
//! wasmtime-wasi's `MemoryOutputPipe` cannot tell "exactly full" from "the
//! guest tried to write more", and it fails the guest when full. Here stdout
//! records the overflow (so the host reports `OutputTooLarge`, never a
//! silently truncated document) and stderr keeps the first bytes and drops
//! the rest without bothering the guest: logging must never break a rule.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// What happens to writes beyond capacity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Overflow {
    /// Keep what fits, report the stream as closed to the guest (stdout).
    Close,
    /// Keep what fits, pretend the rest was written (stderr).
    Drop,
}

/// A capped, shareable capture buffer; clones write to the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct CapturePipe {
    shared: Arc<Mutex<Captured>>,
    capacity: usize,
    overflow: Overflow,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    overflowed: bool,
}

/// The most a single `check_write` grants; keeps host-side copies small.
const MAX_PERMIT: usize = 64 << 10;

impl CapturePipe {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        CapturePipe {
            shared: Arc::default(),
            capacity,
            overflow,
        }
    }

    /// The captured bytes and whether the guest tried to write more.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut captured = self.lock();
        (std::mem::take(&mut captured.bytes), captured.overflowed)
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A panic while holding the lock cannot leave the buffer inconsistent.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends what fits; returns how many bytes were kept.
    fn append(&self, bytes: &[u8]) -> usize {
        let mut captured = self.lock();
        let room = self.capacity.saturating_sub(captured.bytes.len());
        let kept = bytes.len().min(room);
        captured.bytes.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            captured.overflowed = true;
        }
        kept
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let kept = self.append(&bytes);
        match self.overflow {
            Overflow::Close if kept < bytes.len() => Err(StreamError::Closed),
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let captured = self.lock();
        match self.overflow {
            Overflow::Close if captured.overflowed => Err(StreamError::Closed),
            // Grant more than the room left so an overflow is observed as such
            // rather than as a guest stuck waiting for space.
            _ => Ok(MAX_PERMIT),
        }
    }
}

impl AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let kept = self.append(buf);
        match self.overflow {
            Overflow::Close if kept < buf.len() => {
                Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
            }
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_mode_records_overflow_and_closes() {
        let mut pipe = CapturePipe::new(4, Overflow::Close);
        assert!(pipe.write(Bytes::from_static(b"abc")).is_ok());
        assert!(matches!(
            pipe.write(Bytes::from_static(b"de")),
            Err(StreamError::Closed)
        ));
        assert!(matches!(pipe.check_write(), Err(StreamError::Closed)));
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }

    #[test]
    fn drop_mode_keeps_the_prefix_and_accepts_everything() {
        let mut pipe = CapturePipe::new(4, Overflow::Drop);
        assert!(pipe.write(Bytes::from_static(b"abcdef")).is_ok());
        assert!(pipe.check_write().is_ok());
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }
}
