//! The mapping's settings: what `template.yaml` configures for Lambda's event source
//! mapping, plus what only the local poller needs (poll interval, checkpoint file).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::error::Error;
use super::filter::validate_pattern;

/// An event source mapping of the table's stream to a function.
#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    /// `FilterCriteria.Filters[].Pattern`, parsed: a record is delivered when any pattern
    /// matches it. None: every record is.
    pub filters: Vec<Value>,
    /// `BatchSize`: the most records per invocation (at least 1).
    pub batch_size: usize,
    /// `MaximumRetryAttempts`: how many times a failing record is retried before it goes
    /// to the on-failure destination.
    pub maximum_retry_attempts: u32,
    /// `BisectBatchOnFunctionError`.
    pub bisect_batch_on_function_error: bool,
    /// How long to wait between polls of an idle stream, and before a retry.
    pub poll_interval: Duration,
    /// The checkpoint file (created with its directory if missing); `on-failure.jsonl`
    /// is written next to it.
    pub checkpoint: PathBuf,
}

impl EventSourceMapping {
    /// Where records that exhausted their retries are recorded.
    pub fn on_failure_path(&self) -> PathBuf {
        self.checkpoint.with_file_name("on-failure.jsonl")
    }

    /// Checks what Lambda checks when the mapping is created.
    pub fn validate(&self) -> Result<(), Error> {
        if self.batch_size == 0 {
            return Err(Error::BatchSize);
        }
        for (index, pattern) in self.filters.iter().enumerate() {
            validate_pattern(pattern).map_err(|source| Error::FilterPattern { index, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Error;
    use crate::streams::test_support::mapping;
    use serde_json::json;

    #[test]
    fn a_mapping_with_an_invalid_pattern_or_no_batch_size_is_refused() {
        let mapping = mapping(
            &std::env::temp_dir().join("unused"),
            vec![json!({ "a": 1 })],
        );
        let err = mapping.validate().unwrap_err();
        assert!(
            matches!(err, Error::FilterPattern { index: 0, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "filter pattern 0: /a: a leaf must be a list of values"
        );
        let mut zero = mapping.clone();
        zero.filters.clear();
        zero.batch_size = 0;
        assert!(matches!(zero.validate(), Err(Error::BatchSize)));
    }

    #[test]
    fn records_that_exhausted_their_retries_go_next_to_the_checkpoint() {
        let dir = std::env::temp_dir().join("unused");
        assert_eq!(
            mapping(&dir, vec![]).on_failure_path(),
            dir.join("on-failure.jsonl")
        );
    }
}
