//! The rule's default allocator: an arena that is never given back.
//!
//! A rule runs once per instance, and the host throws the instance's memory away
//! afterwards, so freeing is wasted work. wasi-libc's `malloc` costs about 300 wasm
//! instructions per allocation; taking the next bytes of a chunk costs about ten. Small
//! blocks come from 16 KiB chunks that wasi-libc's `malloc` hands out (small enough
//! that a typical run's first chunk fits in the module's initial memory, so the run
//! never grows it); large blocks go to `malloc` directly, so that big buffers can still
//! be freed and grown. The newest small block is freed and grown in place, which is
//! what a `Vec` or `String` being built needs.
//!
//! The price: a rule that allocates and drops many small blocks in a loop keeps them
//! all until the run ends, and may reach its memory limit sooner. Such a rule can turn
//! the arena off: `default-features = false` on this crate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Blocks larger than this go to the system allocator.
const LARGE: usize = 4 * 1024;
/// What the arena asks the system allocator for at a time.
const CHUNK: usize = 16 * 1024;
/// Alignments above this go to the system allocator.
const MAX_ALIGN: usize = 16;

/// The arena allocator (see the module docs). Installed as the global allocator by
/// the default `arena` feature on wasm32.
pub struct Arena {
    state: UnsafeCell<State>,
}

struct State {
    /// The first free byte of the current chunk, and its end.
    next: usize,
    end: usize,
    /// The start of the newest small block, which can be freed or grown in place
    /// (0: none).
    last: usize,
}

// SAFETY: wasm32-wasi modules have one thread (the ABI grants no threads), so the
// state is never touched concurrently. The arena is installed only on wasm32.
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

fn is_small(layout: &Layout) -> bool {
    layout.size() <= LARGE && layout.align() <= MAX_ALIGN
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_small(&layout) {
            return System.alloc(layout);
        }
        let state = &mut *self.state.get();
        let align = layout.align() - 1;
        let mut start = (state.next + align) & !align;
        if start + layout.size() > state.end {
            let chunk = System.alloc(Layout::from_size_align_unchecked(CHUNK, MAX_ALIGN));
            if chunk.is_null() {
                return ptr::null_mut();
            }
            state.next = chunk as usize;
            state.end = state.next + CHUNK;
            start = (state.next + align) & !align;
        }
        state.last = start;
        state.next = start + layout.size();
        start as *mut u8
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_small(&layout) {
            return System.alloc_zeroed(layout);
        }
        let block = self.alloc(layout);
        if !block.is_null() {
            ptr::write_bytes(block, 0, layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if !is_small(&layout) {
            return System.dealloc(block, layout);
        }
        let state = &mut *self.state.get();
        if block as usize == state.last {
            state.next = state.last;
            state.last = 0;
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_small(&layout), is_small(&new_layout)) {
            (false, false) => return System.realloc(block, layout, new_size),
            (true, true) => {
                let state = &mut *self.state.get();
                if block as usize == state.last && state.last + new_size <= state.end {
                    state.next = state.last + new_size;
                    return block;
                }
                if new_size <= layout.size() {
                    return block;
                }
            }
            _ => {}
        }
        let moved = self.alloc(new_layout);
        if !moved.is_null() {
            ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
            self.dealloc(block, layout);
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
            // Freeing the newest block gives its bytes back.
            let newest = Layout::from_size_align(48, 8).unwrap();
            arena.dealloc(moved, newest);
            assert_eq!(arena.alloc(newest), moved);
            // Over-aligned and large blocks come from the system allocator.
            let wide = Layout::from_size_align(64, 64).unwrap();
            let w = arena.alloc(wide);
            assert_eq!(w as usize % 64, 0);
            arena.dealloc(w, wide);
            let large = Layout::from_size_align(LARGE + 1, 8).unwrap();
            let l = arena.alloc_zeroed(large);
            assert!(std::slice::from_raw_parts(l, LARGE + 1)
                .iter()
                .all(|&x| x == 0));
            let l = arena.realloc(l, large, 8);
            arena.dealloc(l, Layout::from_size_align(8, 8).unwrap());
        }
    }

    #[test]
    fn a_full_chunk_starts_another() {
        let arena = Arena::new();
        let block = Layout::from_size_align(LARGE, 8).unwrap();
        let blocks: Vec<usize> = (0..10)
            .map(|_| unsafe { arena.alloc(block) } as usize)
            .collect();
        for pair in blocks.windows(2) {
            assert!(pair[0].abs_diff(pair[1]) >= LARGE);
        }
    }
}
