//! Why an evaluation produced no output.

use std::time::Duration;

use rule_abi::OutputError;

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
    /// The rule ran but its stdout is not an ABI v1 output (codes `no_output`,
    /// `output_not_utf8`, `output_not_json`, `output_shape`).
    #[error(transparent)]
    Output(#[from] OutputError),
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
            RunError::Output(error) => error.code(),
            RunError::Host(_) => "host",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_errors_keep_their_codes_and_messages() {
        let error = RunError::from(OutputError::Shape("missing `clusters`".into()));
        assert_eq!(error.code(), "output_shape");
        assert_eq!(
            error.to_string(),
            "output has the wrong shape: missing `clusters`"
        );
        let error = RunError::from(OutputError::NoOutput);
        assert_eq!(
            (error.code(), error.to_string().as_str()),
            ("no_output", "rule wrote nothing to stdout")
        );
    }
}
