//! Why an evaluation produced no output: shared by the run and the output checks.

use std::time::Duration;

/// Why an evaluation produced no output. Messages are shown to tenants.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("input is {size} bytes; the limit is {limit}")]
    InputTooLarge { size: usize, limit: usize },
    #[error("rule ran out of fuel (limit {limit})")]
    OutOfFuel { limit: u64 },
    #[error("rule exceeded its deadline of {} ms", limit.as_millis())]
    Timeout { limit: Duration },
    #[error("rule tried to grow its memory to {requested} bytes; the limit is {limit}")]
    MemoryLimit { requested: usize, limit: usize },
    #[error("rule exhausted the wasm call stack")]
    StackOverflow,
    #[error("rule trapped: {0}")]
    Trap(String),
    #[error("rule exited with status {0}")]
    Exit(i32),
    #[error("output exceeded {limit} bytes")]
    OutputTooLarge { limit: usize },
    #[error("rule wrote nothing to stdout")]
    NoOutput,
    #[error("output is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    OutputNotUtf8 { valid_up_to: usize },
    #[error("output is not valid JSON: {0}")]
    OutputNotJson(#[source] serde_json::Error),
    #[error("output has the wrong shape: {0}")]
    OutputShape(String),
    /// Not the rule's fault: e.g. every pool slot is busy.
    #[error("the host could not run the rule: {0}")]
    Host(String),
}

impl RunError {
    /// A stable machine-readable name, e.g. for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::InputTooLarge { .. } => "input_too_large",
            RunError::OutOfFuel { .. } => "out_of_fuel",
            RunError::Timeout { .. } => "timeout",
            RunError::MemoryLimit { .. } => "memory_limit",
            RunError::StackOverflow => "stack_overflow",
            RunError::Trap(_) => "trap",
            RunError::Exit(_) => "exit",
            RunError::OutputTooLarge { .. } => "output_too_large",
            RunError::NoOutput => "no_output",
            RunError::OutputNotUtf8 { .. } => "output_not_utf8",
            RunError::OutputNotJson(_) => "output_not_json",
            RunError::OutputShape(_) => "output_shape",
            RunError::Host(_) => "host",
        }
    }
}
