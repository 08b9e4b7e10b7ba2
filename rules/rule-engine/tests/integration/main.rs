//! The rule engine's integration tests, one module per area, in one binary so that
//! wasmtime is linked once. They share one engine (`common::engine`), as the
//! evaluations of one Lambda process do; nothing here needs a process of its own.

mod cli;
mod common;
mod examples;
mod hostile;
mod isolation;
mod pool_limits;
mod wasi;
