//! Guest SDK for customer-segmentation rules, rule ABI v1.
//!
//! A rule is a WASI preview1 command: the host writes one JSON document to stdin
//! and reads one JSON document from stdout. This crate does that plumbing so a
//! rule is a plain function from [`Input`] to [`Output`]:
//!
//! ```no_run
//! use segmentation_rule::{Input, Output};
//!
//! fn evaluate(input: &Input) -> Result<Output, String> {
//!     let vip = input.customer.number("annual_revenue")?.unwrap_or(0.0) >= 100_000.0;
//!     Ok(Output::new().cluster("vip", vip))
//! }
//!
//! fn main() {
//!     segmentation_rule::run(evaluate)
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasi`. Anything written to
//! stderr ([`log`], `eprintln!`) becomes the rule's log; never print to stdout
//! yourself.
//!
//! The crate has no dependencies: its JSON reader ([`json`]) borrows strings from the
//! input and its output is written as text, which keeps a run's work and the module
//! small (`rules/README.md` "Benchmarks").

use std::fmt::{Display, Write as _};

mod arena;
mod input;
mod io;
pub mod json;
mod output;

pub use arena::Arena;

pub use input::{parse_input, Customer, FieldError, Input, InputError, RuleInfo, SegmentRef};
pub use json::{Number, Object, Value};
pub use output::{ClusterValue, Output, SegmentChoice};

/// The default allocator of a rule built with this crate (feature `arena`, on by
/// default): see [`Arena`].
#[cfg(all(target_arch = "wasm32", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: Arena = Arena::new();

/// The ABI version this SDK speaks; the host sends it as `abi`.
pub const ABI_VERSION: u64 = 1;

/// Exit status when stdin is not a valid ABI v1 input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status when the rule function returns an error.
pub const EXIT_RULE_ERROR: i32 = 1;

/// Runs a rule as the program's `main`: reads stdin, calls `rule`, writes the
/// output to stdout. On failure prints the reason to stderr and exits with
/// [`EXIT_BAD_INPUT`] or [`EXIT_RULE_ERROR`].
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

/// Writes one line to the rule's log (stderr).
///
/// Prefer this to `eprintln!`: stderr is unbuffered, so `eprintln!` makes one
/// host call per formatted piece, while `log` formats first and writes once.
/// Logging never fails the rule; beyond the host's log limit lines are dropped.
pub fn log(message: impl Display) {
    let mut line = String::with_capacity(128);
    let _ = writeln!(line, "{}", message);
    let _ = io::write_all(2, line.as_bytes());
}

fn fail(status: i32, message: &str) -> ! {
    log(message);
    std::process::exit(status)
}
