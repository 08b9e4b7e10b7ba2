//! A check of the SDK on wasm32-wasi, run with the example rules' cases (suite
//! `sdk-rust` in `rules/examples/cases.json`): the module's first allocation is larger
//! than what its initial memory has left after the stack, so the arena must start at
//! `__heap_base` and grow memory for it. It answers `filled: true` when the block holds
//! what was written into it.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec;

use segmentation_rule::{Input, Output};

/// More than the two 64 KiB pages the module starts with.
const FIRST_BLOCK: usize = 150_000;

/// The entry point, as `segmentation_rule::main!` defines it, with one allocation first.
#[no_mangle]
pub extern "C" fn __main_void() -> i32 {
    let block = vec![1u8; FIRST_BLOCK];
    segmentation_rule::run(|_: &Input| {
        Ok::<_, String>(Output::new().cluster("filled", block.iter().all(|&byte| byte == 1)))
    });
    0
}
