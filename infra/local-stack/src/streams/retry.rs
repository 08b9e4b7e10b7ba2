//! What happens to a batch after an invocation, decided like an event source mapping
//! with `ReportBatchItemFailures`, `MaximumRetryAttempts` and, optionally,
//! `BisectBatchOnFunctionError` (pure: the poller carries the decision out):
//!
//! - `batchItemFailures` (partial failure): the records before the failed one with the
//!   lowest sequence number are done; the batch is retried from that record (with
//!   bisection: only the rest of the batch);
//! - a handler that panics, returns `Err`, or reports an unknown, empty or missing
//!   `itemIdentifier` fails the whole batch: it is retried as is, or with bisection split
//!   in half (a split does not count as a retry) until it is one record;
//! - a record that keeps failing is retried `maximum_retry_attempts` times; then it (for
//!   a whole-batch failure without bisection: the whole batch) goes to the on-failure
//!   destination, and the poller moves on.

use aws_lambda_events::event::streams::DynamoDbEventResponse;

use super::EventSourceMapping;
use super::error::InvocationError;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    /// `batchItemFailures`: indexes into the batch, not empty.
    Partial(Vec<usize>),
    /// A panic, an error, or a response Lambda treats as a complete failure.
    Failure(InvocationError),
}

impl Outcome {
    /// Classifies a response for a batch with these sequence numbers.
    pub(super) fn of(
        result: Result<DynamoDbEventResponse, InvocationError>,
        sequence_numbers: &[String],
    ) -> Self {
        let response = match result {
            Ok(response) => response,
            Err(err) => return Outcome::Failure(err),
        };
        let mut failed = Vec::new();
        for failure in &response.batch_item_failures {
            let id = failure.item_identifier.as_deref().unwrap_or("");
            match sequence_numbers.iter().position(|s| s == id) {
                Some(index) => failed.push(index),
                None => return Outcome::Failure(InvocationError::UnknownItem(id.to_string())),
            }
        }
        if failed.is_empty() {
            Outcome::Success
        } else {
            Outcome::Partial(failed)
        }
    }
}

/// How many times the record a batch is being retried from has failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct RetryState {
    sequence_number: Option<String>,
    failures: u32,
}

impl RetryState {
    /// Counts a failure of the record; returns its failures so far.
    fn fail(&mut self, sequence_number: &str) -> u32 {
        if self.sequence_number.as_deref() == Some(sequence_number) {
            self.failures = self.failures.saturating_add(1);
        } else {
            self.sequence_number = Some(sequence_number.to_string());
            self.failures = 1;
        }
        self.failures
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// What to do with a batch after an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision {
    /// The leading records of the batch that are handled.
    pub(super) done: usize,
    /// The records after those that go to the on-failure destination.
    pub(super) discarded: usize,
    /// The most records of the next invocation (`None`: the batch size); the records of
    /// the batch after `done + discarded` are delivered again.
    pub(super) next_limit: Option<usize>,
    /// With `discarded`: how many times they were delivered (Lambda's
    /// `approximateInvokeCount`).
    pub(super) invocations: u32,
}

/// Decides what becomes of a batch with these sequence numbers after `outcome`, and
/// updates the failure count in `retry`.
pub(super) fn decide(
    mapping: &EventSourceMapping,
    retry: &mut RetryState,
    sequence_numbers: &[String],
    outcome: &Outcome,
) -> Decision {
    let len = sequence_numbers.len();
    let max = mapping.maximum_retry_attempts;
    let bisect = mapping.bisect_batch_on_function_error;
    match outcome {
        Outcome::Success => {
            retry.clear();
            Decision {
                done: len,
                discarded: 0,
                next_limit: None,
                invocations: 0,
            }
        }
        Outcome::Partial(failed) => {
            let first = failed.iter().copied().min().unwrap_or(0);
            let failures = retry.fail(&sequence_numbers[first]);
            if failures > max {
                retry.clear();
                Decision {
                    done: first,
                    discarded: 1,
                    next_limit: None,
                    invocations: failures,
                }
            } else {
                Decision {
                    done: first,
                    discarded: 0,
                    next_limit: bisect.then_some(len - first),
                    invocations: 0,
                }
            }
        }
        Outcome::Failure(_) if bisect && len > 1 => Decision {
            done: 0,
            discarded: 0,
            next_limit: Some(len.div_ceil(2)),
            invocations: 0,
        },
        Outcome::Failure(_) => {
            let failures = retry.fail(&sequence_numbers[0]);
            if failures > max {
                retry.clear();
                Decision {
                    done: 0,
                    discarded: len,
                    next_limit: None,
                    invocations: failures,
                }
            } else {
                Decision {
                    done: 0,
                    discarded: 0,
                    next_limit: Some(len),
                    invocations: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{mapping, response};
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
    use std::path::Path;

    fn seqs(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{i:03}")).collect()
    }

    #[test]
    fn responses_are_classified_like_lambda() {
        let batch = seqs(3);
        assert_eq!(Outcome::of(Ok(response(&[])), &batch), Outcome::Success);
        assert_eq!(
            Outcome::of(Ok(response(&["003", "002"])), &batch),
            Outcome::Partial(vec![2, 1])
        );
        assert_eq!(
            Outcome::of(Ok(response(&["999"])), &batch),
            Outcome::Failure(InvocationError::UnknownItem("999".into()))
        );
        assert_eq!(
            Outcome::of(Ok(response(&[""])), &batch),
            Outcome::Failure(InvocationError::UnknownItem(String::new()))
        );
        let mut missing = response(&[]);
        missing
            .batch_item_failures
            .push(DynamoDbBatchItemFailure::default());
        assert!(matches!(
            Outcome::of(Ok(missing), &batch),
            Outcome::Failure(_)
        ));
        let boom = InvocationError::Function("boom".into());
        assert_eq!(
            Outcome::of(Err(boom.clone()), &batch),
            Outcome::Failure(boom)
        );
    }

    #[test]
    fn partial_failures_retry_from_the_lowest_failed_record_then_discard_it() {
        let m = mapping(Path::new("/unused"), vec![]);
        let batch = seqs(4);
        let mut retry = RetryState::default();
        let partial = Outcome::Partial(vec![3, 1]);
        // Two retries of record 002, then it goes to the on-failure destination.
        for _ in 0..2 {
            let d = decide(&m, &mut retry, &batch, &partial);
            assert_eq!(
                d,
                Decision {
                    done: 1,
                    discarded: 0,
                    next_limit: None,
                    invocations: 0
                }
            );
        }
        // The retried batch starts at 002.
        let retried = &batch[1..];
        let d = decide(&m, &mut retry, retried, &Outcome::Partial(vec![0]));
        assert_eq!(
            d,
            Decision {
                done: 0,
                discarded: 1,
                next_limit: None,
                invocations: 3
            }
        );
        assert_eq!(retry, RetryState::default());
        // A success clears the count.
        let mut retry = RetryState::default();
        decide(&m, &mut retry, &batch, &partial);
        decide(&m, &mut retry, &batch, &Outcome::Success);
        let d = decide(&m, &mut retry, &batch, &partial);
        assert_eq!(d.discarded, 0);
        assert_eq!(retry.failures, 1);
        // A failure of another record starts a new count.
        decide(&m, &mut retry, &batch, &Outcome::Partial(vec![2]));
        assert_eq!(
            retry,
            RetryState {
                sequence_number: Some("003".into()),
                failures: 1
            }
        );
        // No retries: discarded at once.
        let none = EventSourceMapping {
            maximum_retry_attempts: 0,
            ..m.clone()
        };
        let d = decide(
            &none,
            &mut RetryState::default(),
            &batch,
            &Outcome::Partial(vec![0]),
        );
        assert_eq!(
            d,
            Decision {
                done: 0,
                discarded: 1,
                next_limit: None,
                invocations: 1
            }
        );
        // With bisection only the rest of the batch is retried.
        let bisect = EventSourceMapping {
            bisect_batch_on_function_error: true,
            ..m
        };
        let d = decide(&bisect, &mut RetryState::default(), &batch, &partial);
        assert_eq!(
            d,
            Decision {
                done: 1,
                discarded: 0,
                next_limit: Some(3),
                invocations: 0
            }
        );
    }

    #[test]
    fn whole_batch_failures_retry_the_batch_then_discard_it() {
        let m = mapping(Path::new("/unused"), vec![]);
        let batch = seqs(3);
        let mut retry = RetryState::default();
        let failure = Outcome::Failure(InvocationError::Panicked("panic".into()));
        for _ in 0..2 {
            let d = decide(&m, &mut retry, &batch, &failure);
            assert_eq!(
                d,
                Decision {
                    done: 0,
                    discarded: 0,
                    next_limit: Some(3),
                    invocations: 0
                }
            );
        }
        let d = decide(&m, &mut retry, &batch, &failure);
        assert_eq!(
            d,
            Decision {
                done: 0,
                discarded: 3,
                next_limit: None,
                invocations: 3
            }
        );
    }

    #[test]
    fn bisection_halves_a_failing_batch_before_counting_retries() {
        let m = EventSourceMapping {
            bisect_batch_on_function_error: true,
            maximum_retry_attempts: 1,
            ..mapping(Path::new("/unused"), vec![])
        };
        let failure = Outcome::Failure(InvocationError::Panicked("panic".into()));
        let mut retry = RetryState::default();
        let batch = seqs(5);
        let mut len = batch.len();
        let mut limits = Vec::new();
        while len > 1 {
            let d = decide(&m, &mut retry, &batch[..len], &failure);
            assert_eq!((d.done, d.discarded, d.invocations), (0, 0, 0));
            len = d.next_limit.unwrap();
            limits.push(len);
        }
        assert_eq!(limits, [3, 2, 1]);
        assert_eq!(retry, RetryState::default());
        let d = decide(&m, &mut retry, &batch[..1], &failure);
        assert_eq!(
            d,
            Decision {
                done: 0,
                discarded: 0,
                next_limit: Some(1),
                invocations: 0
            }
        );
        let d = decide(&m, &mut retry, &batch[..1], &failure);
        assert_eq!(
            d,
            Decision {
                done: 0,
                discarded: 1,
                next_limit: None,
                invocations: 2
            }
        );
    }
}
