//! The stream mapping's errors: why it stops ([`Error`], what [`run`](super::run)
//! returns), why a filter pattern is refused ([`PatternError`]), why a record cannot be
//! put in Lambda's format ([`RecordError`]), why an invocation failed as a whole
//! ([`InvocationError`]), and which AWS call failed ([`AwsError`], logged and retried).

use std::path::PathBuf;

use serde_json::Value;

/// Why the mapping could not start or stopped: an invalid mapping (refused at start,
/// as Lambda refuses it when it is created), or a checkpoint or on-failure file that
/// cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the batch size must be at least 1")]
    BatchSize,
    #[error("filter pattern {index}: {source}")]
    FilterPattern { index: usize, source: PatternError },
    #[error(
        "the stream checkpoint {} is not valid ({source}); delete it to start over",
        path.display()
    )]
    InvalidCheckpoint {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// A `map_err` for writing the file at `path`.
    pub(super) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why Lambda would refuse a filter pattern; `path` is where in the pattern
/// (`/dynamodb/Keys/sk/S`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern is a JSON object")]
    NotAnObject,
    #[error("{path}: an empty list matches nothing")]
    EmptyList { path: String },
    #[error("{path}: a leaf must be a list of values")]
    NotAList { path: String },
    #[error("{path}: an operator has exactly one key: {matcher}")]
    OperatorKeys { path: String, matcher: Value },
    #[error("{path}: unsupported operator `{operator}`")]
    UnsupportedOperator { path: String, operator: String },
    #[error("{path}: invalid operand for `{operator}`: {operand}")]
    InvalidOperand {
        path: String,
        operator: String,
        operand: Value,
    },
}

/// Why a DynamoDB Streams record cannot be turned into the JSON Lambda delivers.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("a stream record without its `dynamodb` part")]
    NoChange,
    #[error("cannot convert an image: {0}")]
    Image(serde_json::Error),
    #[error("cannot read the record in Lambda's format: {0}")]
    Lambda(serde_json::Error),
}

/// Why an invocation failed as a whole (Lambda's function error): the batch is retried,
/// bisected or sent to the on-failure destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    /// The handler returned an error: its message.
    #[error("{0}")]
    Function(String),
    /// The handler panicked, when called or while its future ran: the panic's message.
    #[error("the handler panicked: {0}")]
    Panicked(String),
    /// The response names in `batchItemFailures` a record that is not in the batch (or
    /// none): Lambda fails the whole batch.
    #[error("batchItemFailures names `{0}`, which is not a sequence number of the batch")]
    UnknownItem(String),
}

/// A DynamoDB Streams call that failed: logged, then the stream is looked up again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsError {
    /// `ListStreams`, `DescribeStream`, `GetShardIterator`, `GetRecords`.
    pub operation: &'static str,
    /// The SDK's error with its context, or what the answer lacked.
    pub detail: String,
}
