//! Per-run resource limits.

use std::time::Duration;

/// What one rule evaluation may consume.
///
/// Each rule may have its own limits, but they are always clamped to the
/// tenant-wide maxima the engine was created with (see [`Limits::clamp_to`]),
/// so a rule can ask for less than the maxima, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wasm fuel (roughly one unit per instruction). Deterministic, unlike time.
    pub fuel: u64,
    /// Wall-clock deadline, enforced by epoch interruption. Catches what fuel
    /// cannot price well (e.g. slow host calls); precision is one epoch tick.
    pub timeout: Duration,
    /// Largest linear memory the rule may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest accepted input document; bigger inputs are refused before running.
    pub input_bytes: usize,
    /// Largest output document; a rule writing more fails with `OutputTooLarge`.
    pub output_bytes: usize,
    /// How much stderr is kept as the rule's log; the rest is dropped.
    pub log_bytes: usize,
}

impl Limits {
    /// Default fuel: enough for the example rules ~100 times over.
    pub const DEFAULT_FUEL: u64 = 11_000_000;
    /// Default deadline.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
    /// Default linear-memory ceiling (16 MiB).
    pub const DEFAULT_MEMORY_BYTES: usize = 16 << 20;
    /// Default input ceiling (128 KiB).
    pub const DEFAULT_INPUT_BYTES: usize = 128 << 10;
    /// Default output ceiling (64 KiB).
    pub const DEFAULT_OUTPUT_BYTES: usize = 64 << 10;
    /// Default log capacity (16 KiB).
    pub const DEFAULT_LOG_BYTES: usize = 16 << 10;

    /// The same limits, each lowered to `maxima` where it asks for more.
    pub fn clamp_to(&self, maxima: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(maxima.fuel),
            timeout: self.timeout.min(maxima.timeout),
            memory_bytes: self.memory_bytes.min(maxima.memory_bytes),
            input_bytes: self.input_bytes.min(maxima.input_bytes),
            output_bytes: self.output_bytes.min(maxima.output_bytes),
            log_bytes: self.log_bytes.min(maxima.log_bytes),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Self::DEFAULT_FUEL,
            timeout: Self::DEFAULT_TIMEOUT,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            input_bytes: Self::DEFAULT_INPUT_BYTES,
            output_bytes: Self::DEFAULT_OUTPUT_BYTES,
            log_bytes: Self::DEFAULT_LOG_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_lowers_only_what_exceeds_the_maxima() {
        let maxima = Limits::default();
        let asked = Limits {
            fuel: 1,
            timeout: Duration::from_secs(60),
            memory_bytes: usize::MAX,
            ..Limits::default()
        };
        let clamped = asked.clamp_to(&maxima);
        assert_eq!(clamped.fuel, 1);
        assert_eq!(clamped.timeout, Limits::DEFAULT_TIMEOUT);
        assert_eq!(clamped.memory_bytes, Limits::DEFAULT_MEMORY_BYTES);
        assert_eq!(clamped.output_bytes, Limits::DEFAULT_OUTPUT_BYTES);
    }
}
