//! The rule's default allocator: an arena over linear memory that is never given back.
//!
//! A rule runs once per instance, and the host throws the instance's memory away
//! afterwards, so freeing is wasted work. Allocation takes the next bytes after the
//! previous block (about ten wasm instructions); the newest block is freed and grown
//! in place, which is what a `Vec` or `String` being built needs.
//!
//! On wasm32 the arena starts at `__heap_base` (the end of the stack and data that the
//! linker laid out), uses the rest of the module's initial memory first (a typical run
//! never grows it) and then grows linear memory with `memory.grow`, a page (64 KiB) or
//! more at a time. There is no other allocator in the module (no wasi-libc `malloc`).
//! Natively, where it is only tested, it takes 16 KiB chunks from the system allocator.
//!
//! The price: a rule that allocates and drops many blocks in a loop keeps them all
//! until the run ends, and may reach its memory limit sooner. Such a rule can turn the
//! arena off (`default-features = false` on this crate) and install its own
//! `#[global_allocator]`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// The arena allocator (see the module docs). Installed as the global allocator by
/// the default `arena` feature on WASI.
pub struct Arena {
    state: UnsafeCell<State>,
}

struct State {
    /// The first free byte of the current region, and its end.
    next: usize,
    end: usize,
    /// The start of the newest block, which can be freed or grown in place (0: none).
    last: usize,
}

// SAFETY: wasm32-wasi modules have one thread (the ABI grants no threads), so the
// state is never touched concurrently. The arena is installed only there; natively it
// is only used as an ordinary value by the tests.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Self {
        Arena {
            state: UnsafeCell::new(State {
                next: 0,
                end: 0,
                last: 0,
            }),
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

/// `at` rounded up to `align` (a power of two); `None` on overflow.
fn align_up(at: usize, align: usize) -> Option<usize> {
    Some(at.checked_add(align - 1)? & !(align - 1))
}

impl State {
    /// The start of a block of `layout` in the current region, if it fits.
    fn fit(&self, layout: &Layout) -> Option<usize> {
        let start = align_up(self.next, layout.align())?;
        if start.checked_add(layout.size())? <= self.end {
            Some(start)
        } else {
            None
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod region {
    use super::State;
    use core::arch::wasm32;

    const PAGE: usize = 64 * 1024;

    extern "C" {
        /// Defined by the linker: where the stack and static data end.
        static __heap_base: u8;
    }

    /// On the first allocation: the region is what the initial memory has after the
    /// stack and static data.
    fn init(state: &mut State) {
        if state.end == 0 {
            // SAFETY: only the symbol's address is taken.
            state.next = unsafe { &__heap_base as *const u8 as usize };
            state.end = wasm32::memory_size(0) * PAGE;
        }
    }

    /// Makes the current region end at `end` or later, growing memory; false when the
    /// region is not at the end of memory or memory cannot grow.
    fn extend(state: &mut State, end: usize) -> bool {
        if end <= state.end {
            return true;
        }
        if state.end != wasm32::memory_size(0) * PAGE {
            return false;
        }
        let pages = (end - state.end + PAGE - 1) / PAGE;
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return false;
        }
        state.end += pages * PAGE;
        true
    }

    /// Makes room for `size` bytes at `align` after `state.next`.
    pub(super) fn refill(state: &mut State, size: usize, align: usize) -> bool {
        init(state);
        let end = |next| super::align_up(next, align).and_then(|start| start.checked_add(size));
        match end(state.next) {
            Some(end) if extend(state, end) => return true,
            None => return false,
            Some(_) => {}
        }
        // Something else grew memory past the region: start again at the end.
        let top = wasm32::memory_size(0) * PAGE;
        if state.end == top {
            return false;
        }
        state.next = top;
        state.end = top;
        match end(top) {
            Some(end) => extend(state, end),
            None => false,
        }
    }

    /// Grows the newest block in place to end at `end`, if memory allows.
    pub(super) fn grow_in_place(state: &mut State, end: usize) -> bool {
        extend(state, end)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod region {
    use super::State;
    use std::alloc::{GlobalAlloc, Layout, System};

    const CHUNK: usize = 16 * 1024;

    /// Starts a new region (a chunk that is never freed) with room for `size` bytes.
    pub(super) fn refill(state: &mut State, size: usize, align: usize) -> bool {
        let length = match size.checked_add(align) {
            Some(length) => length.max(CHUNK),
            None => return false,
        };
        let layout = match Layout::from_size_align(length, 16) {
            Ok(layout) => layout,
            Err(_) => return false,
        };
        // SAFETY: the layout has a non-zero size.
        let chunk = unsafe { System.alloc(layout) };
        if chunk.is_null() {
            return false;
        }
        state.next = chunk as usize;
        state.end = state.next + length;
        true
    }

    pub(super) fn grow_in_place(_state: &mut State, _end: usize) -> bool {
        false
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let state = &mut *self.state.get();
        let start = match state.fit(&layout) {
            Some(start) => start,
            None => {
                if !region::refill(state, layout.size(), layout.align()) {
                    return ptr::null_mut();
                }
                match state.fit(&layout) {
                    Some(start) => start,
                    None => return ptr::null_mut(),
                }
            }
        };
        state.last = start;
        state.next = start + layout.size();
        start as *mut u8
    }

    unsafe fn dealloc(&self, block: *mut u8, _layout: Layout) {
        let state = &mut *self.state.get();
        if block as usize == state.last {
            state.next = state.last;
            state.last = 0;
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let state = &mut *self.state.get();
        if block as usize == state.last {
            if let Some(end) = state.last.checked_add(new_size) {
                if end <= state.end || region::grow_in_place(state, end) {
                    state.next = end;
                    return block;
                }
            }
        } else if new_size <= layout.size() {
            return block;
        }
        let moved = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !moved.is_null() {
            ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exercises the arena as an ordinary value (the tests run natively, where it is not
    /// the global allocator).
    #[test]
    fn blocks_are_aligned_distinct_and_grow_in_place_when_newest() {
        let arena = Arena::new();
        unsafe {
            let small = Layout::from_size_align(24, 8).unwrap();
            let a = arena.alloc(small);
            let b = arena.alloc(small);
            assert_eq!(a as usize % 8, 0);
            assert!(b as usize >= a as usize + 24);
            a.write_bytes(1, 24);
            b.write_bytes(2, 24);
            // The newest block grows in place; an older one moves, keeping its bytes.
            assert_eq!(arena.realloc(b, small, 100), b);
            let moved = arena.realloc(a, small, 48);
            assert_ne!(moved, a);
            assert_eq!(std::slice::from_raw_parts(moved, 24), &[1; 24]);
            // An older block shrinks in place.
            assert_eq!(
                arena.realloc(b, Layout::from_size_align(100, 8).unwrap(), 10),
                b
            );
            // Freeing the newest block gives its bytes back.
            let newest = Layout::from_size_align(48, 8).unwrap();
            arena.dealloc(moved, newest);
            assert_eq!(arena.alloc(newest), moved);
            // Over-aligned blocks are aligned.
            let wide = Layout::from_size_align(64, 64).unwrap();
            let w = arena.alloc(wide);
            assert_eq!(w as usize % 64, 0);
            arena.dealloc(w, wide);
            // Zeroed blocks are zero, even where a freed block was.
            let reused = Layout::from_size_align(40, 8).unwrap();
            let r = arena.alloc(reused);
            r.write_bytes(7, 40);
            arena.dealloc(r, reused);
            let z = arena.alloc_zeroed(reused);
            assert_eq!(z, r);
            assert!(std::slice::from_raw_parts(z, 40).iter().all(|&x| x == 0));
            // A block larger than a chunk gets a region of its own.
            let large = Layout::from_size_align(64 * 1024, 8).unwrap();
            let l = arena.alloc_zeroed(large);
            assert!(!l.is_null());
            assert!(std::slice::from_raw_parts(l, 64 * 1024)
                .iter()
                .all(|&x| x == 0));
            let l = arena.realloc(l, large, 8);
            arena.dealloc(l, Layout::from_size_align(8, 8).unwrap());
        }
    }

    #[test]
    fn a_full_region_starts_another() {
        let arena = Arena::new();
        let block = Layout::from_size_align(4 * 1024, 8).unwrap();
        let blocks: Vec<usize> = (0..10)
            .map(|_| unsafe { arena.alloc(block) } as usize)
            .collect();
        for pair in blocks.windows(2) {
            assert!(pair[0].abs_diff(pair[1]) >= 4 * 1024);
        }
    }

    #[test]
    fn impossible_sizes_fail_instead_of_wrapping() {
        let arena = Arena::new();
        unsafe {
            let small = Layout::from_size_align(8, 8).unwrap();
            let a = arena.alloc(small);
            assert!(!a.is_null());
            let huge = Layout::from_size_align(isize::MAX as usize - 8, 8).unwrap();
            assert!(arena.alloc(huge).is_null());
            assert!(arena.realloc(a, small, isize::MAX as usize - 8).is_null());
        }
    }
}
