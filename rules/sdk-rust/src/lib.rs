//! Guest SDK for customer-segmentation rules, rule ABI v1.
//!
//! A rule is a WASI preview1 command: the host writes one JSON document to stdin
//! and reads one JSON document from stdout. This crate does that plumbing so a
//! rule is a plain function from [`Input`] to [`Output`]:
//!
//! ```ignore
//! #![cfg_attr(target_os = "wasi", no_std, no_main)]
//!
//! extern crate alloc;
//!
//! use alloc::string::String;
//! use segmentation_rule::{Input, Output};
//!
//! fn evaluate(input: &Input) -> Result<Output, String> {
//!     let vip = input.customer.number("annual_revenue")?.unwrap_or(0.0) >= 100_000.0;
//!     Ok(Output::new().cluster("vip", vip))
//! }
//!
//! segmentation_rule::main!(evaluate);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasi` (with `panic = "abort"`
//! and LTO for a small module: see `rules/examples/tier-rust/Cargo.toml`). Anything
//! written with [`log!`] becomes the rule's log; never write to stdout yourself.
//!
//! On WASI the crate is `#![no_std]` (`core` and `alloc` only) and provides what a
//! `no_std` program needs:
//!
//! - the entry point: [`main!`] defines `__main_void`, which the `_start` of
//!   wasi-libc's `crt1` calls (rustc links `crt1` into every wasm32-wasi program, so
//!   the rule is `#![no_main]` and does not define `_start` itself);
//! - stdin, stdout, stderr and the exit status through the WASI preview1 imports
//!   `fd_read`, `fd_write` and `proc_exit`, called directly;
//! - the global allocator, [`Arena`], which grows linear memory with `memory.grow`
//!   (no wasi-libc `malloc`);
//! - the panic and allocation-failure handlers, from std: rustc 1.63, the toolchain
//!   the examples are built with, cannot define an allocation-failure handler without
//!   nightly features (`#[alloc_error_handler]`; stable from 1.68), so the crate links
//!   std for those two handlers only. A panic prints its message to stderr and traps.
//!
//! Natively (e.g. `cargo test` of a rule) the crate uses std as usual and [`main!`]
//! defines `fn main`.
//!
//! The crate has no dependencies: its JSON reader ([`json`]) borrows strings from the
//! input and its output is written as text, which keeps a run's work and the module
//! small (`docs/rule-performance.md`).

#![cfg_attr(target_os = "wasi", no_std)]

extern crate alloc;
// Stable rustc before 1.68 cannot build a `no_std` program that uses `alloc`
// without nightly's `#[alloc_error_handler]`; std is linked only for that handler
// and its panic handler (print the message to stderr, then trap). Nothing else of
// std is used on WASI, so the linker drops the rest (no wasi-libc `malloc`, no
// `main` wrapper).
#[cfg(target_os = "wasi")]
extern crate std;

use alloc::format;
use alloc::string::ToString;
use core::fmt::Display;

mod arena;
mod float;
mod input;
mod io;
pub mod json;
mod logging;
mod output;

pub use arena::Arena;

pub use input::{parse_input, Customer, FieldError, Input, InputError, RuleInfo, SegmentRef};
pub use json::{Number, Object, Value};
#[doc(hidden)]
pub use logging::{alloc_string, write_log_line};
pub use logging::{log, LogPiece};
pub use output::{ClusterValue, Output, SegmentChoice};

/// The default allocator of a rule built with this crate (feature `arena`, on by
/// default): see [`Arena`].
#[cfg(all(target_os = "wasi", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: Arena = Arena::new();

/// std's panic handler (see `extern crate std` above) asks for `RUST_BACKTRACE` and the
/// current directory. A rule has neither (the host passes no environment and no
/// preopened directory), so with the feature `stub-env` these two answer "none" (null;
/// `getcwd` sets no errno, which std reads as an error other than `ERANGE`, so it does
/// not retry). Defined here, they keep wasi-libc's versions out of the module: those
/// copy the environment and the directory name into memory from `malloc`, which would
/// bring all of wasi-libc's `dlmalloc`. Off by default: it needs LTO (see Cargo.toml).
#[cfg(all(target_os = "wasi", feature = "stub-env"))]
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn getenv(_name: *const u8) -> *mut u8 {
    core::ptr::null_mut()
}

/// See [`getenv`].
#[cfg(all(target_os = "wasi", feature = "stub-env"))]
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn getcwd(_buf: *mut u8, _size: usize) -> *mut u8 {
    core::ptr::null_mut()
}

/// The ABI version this SDK speaks; the host sends it as `abi`.
pub const ABI_VERSION: u64 = 1;

/// Exit status when stdin is not a valid ABI v1 input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status when the rule function returns an error.
pub const EXIT_RULE_ERROR: i32 = 1;

/// Makes `rule` the program's entry point: [`run`] with it.
///
/// On WASI it defines `__main_void`, which the `_start` of wasi-libc's `crt1` (linked
/// into every wasm32-wasi program by rustc) calls; the rule crate is `#![no_std]` and
/// `#![no_main]` there. Elsewhere (a native build, for trying a rule out) it defines
/// `fn main`.
///
/// ```ignore
/// #![cfg_attr(target_os = "wasi", no_std, no_main)]
/// segmentation_rule::main!(evaluate);
/// ```
#[macro_export]
macro_rules! main {
    ($rule:expr) => {
        #[cfg(target_os = "wasi")]
        #[no_mangle]
        pub extern "C" fn __main_void() -> i32 {
            $crate::run($rule);
            0
        }

        #[cfg(not(target_os = "wasi"))]
        fn main() {
            $crate::run($rule)
        }
    };
}

/// Runs a rule: reads stdin, calls `rule`, writes the output to stdout. On failure
/// prints the reason to stderr and exits with [`EXIT_BAD_INPUT`] or
/// [`EXIT_RULE_ERROR`]. [`main!`] calls it from the program's entry point.
pub fn run<F, E>(rule: F)
where
    F: FnOnce(&Input<'_>) -> Result<Output, E>,
    E: Display,
{
    let raw = match io::read_stdin() {
        Ok(raw) => raw,
        Err(error) => fail(EXIT_BAD_INPUT, &format!("cannot read stdin: {}", error)),
    };
    let input = match parse_input(&raw) {
        Ok(input) => input,
        Err(error) => fail(EXIT_BAD_INPUT, &error.to_string()),
    };
    let output = match rule(&input) {
        Ok(output) => output,
        Err(error) => fail(EXIT_RULE_ERROR, &format!("rule failed: {}", error)),
    };
    if let Err(error) = io::write_all(1, output.to_json().as_bytes()) {
        fail(EXIT_RULE_ERROR, &format!("cannot write output: {}", error));
    }
}

fn fail(status: i32, message: &str) -> ! {
    log(message);
    io::exit(status)
}

/// Writes `value` in decimal into the end of `digits` and returns that text: integer
/// formatting without `core::fmt`. `digits` must hold the number (20 bytes hold any
/// `u64`).
#[cfg_attr(not(target_os = "wasi"), allow(dead_code))]
pub(crate) fn decimal(mut value: u64, digits: &mut [u8]) -> &str {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    core::str::from_utf8(&digits[at..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_integers() {
        let mut digits = [0; 20];
        assert_eq!(super::decimal(0, &mut digits), "0");
        assert_eq!(super::decimal(29, &mut digits), "29");
        assert_eq!(
            super::decimal(u64::MAX, &mut digits),
            "18446744073709551615"
        );
    }
}
