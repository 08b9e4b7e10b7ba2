//! In-memory stdout/stderr for a run, with a hard capacity.
//!
//! A plain capped buffer cannot tell "exactly full" from "the guest tried to
//! write more". Here stdout records the overflow (so the host reports
//! `OutputTooLarge`, never a silently truncated document) and fails the
//! guest's write, and stderr keeps the first bytes and drops the rest without
//! bothering the guest: logging must never break a rule.

/// What happens to writes beyond capacity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Overflow {
    /// Keep what fits, report the stream as closed to the guest (stdout).
    Close,
    /// Keep what fits, pretend the rest was written (stderr).
    Drop,
}

/// The guest wrote to a full [`Overflow::Close`] pipe (`fd_write` then
/// returns `EIO`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

/// Room reserved by the first write (at most the capacity): an output document or
/// a rule's log usually fits, so a rule writing in small pieces does not make the
/// buffer grow again and again.
const FIRST_RESERVE: usize = 1 << 10;

/// A capped capture buffer, owned by the run's WASI context.
#[derive(Debug)]
pub(crate) struct CapturePipe {
    bytes: Vec<u8>,
    overflowed: bool,
    capacity: usize,
    overflow: Overflow,
}

impl CapturePipe {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        CapturePipe {
            bytes: Vec::new(),
            overflowed: false,
            capacity,
            overflow,
        }
    }

    /// The captured bytes and whether the guest tried to write more.
    pub(crate) fn take(&mut self) -> (Vec<u8>, bool) {
        (std::mem::take(&mut self.bytes), self.overflowed)
    }

    /// Writes one `fd_write` buffer: appends what fits. In `Close` mode a
    /// write that did not fit, and every later one, fails. An empty write
    /// always succeeds (the guest learns nothing from it).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        if bytes.is_empty() {
            return Ok(());
        }
        if matches!(self.overflow, Overflow::Close) && self.overflowed {
            return Err(Closed);
        }
        let room = self.capacity.saturating_sub(self.bytes.len());
        let kept = bytes.len().min(room);
        if self.bytes.capacity() == 0 {
            self.bytes
                .reserve(kept.max(FIRST_RESERVE.min(self.capacity)));
        }
        self.bytes.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            self.overflowed = true;
            if matches!(self.overflow, Overflow::Close) {
                return Err(Closed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_mode_records_overflow_and_closes() {
        let mut pipe = CapturePipe::new(4, Overflow::Close);
        assert!(pipe.write(b"abc").is_ok());
        assert_eq!(pipe.write(b"de"), Err(Closed));
        assert_eq!(pipe.write(b"f"), Err(Closed));
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }

    #[test]
    fn close_mode_exactly_full_is_not_an_overflow() {
        let mut pipe = CapturePipe::new(4, Overflow::Close);
        assert!(pipe.write(b"abcd").is_ok());
        assert!(pipe.write(b"").is_ok());
        assert_eq!(pipe.take(), (b"abcd".to_vec(), false));
    }

    #[test]
    fn small_writes_fill_the_first_reserve_without_growing_it() {
        let mut pipe = CapturePipe::new(64 << 10, Overflow::Drop);
        pipe.write(&[b'x'; 16]).unwrap();
        let (buffer, capacity) = (pipe.bytes.as_ptr(), pipe.bytes.capacity());
        assert!(capacity >= FIRST_RESERVE, "{capacity}");
        for _ in 1..FIRST_RESERVE / 16 {
            pipe.write(&[b'x'; 16]).unwrap();
        }
        assert_eq!(
            (pipe.bytes.as_ptr(), pipe.bytes.capacity()),
            (buffer, capacity)
        );
        assert_eq!(pipe.take(), (vec![b'x'; FIRST_RESERVE], false));
    }

    #[test]
    fn drop_mode_keeps_the_prefix_and_accepts_everything() {
        let mut pipe = CapturePipe::new(4, Overflow::Drop);
        assert!(pipe.write(b"abcdef").is_ok());
        assert!(pipe.write(b"gh").is_ok());
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }
}
