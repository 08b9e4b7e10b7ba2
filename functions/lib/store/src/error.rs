use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use domain::Violations;

/// Why a store call failed, in terms the API can answer with a status code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A uniqueness guard (segment name, customer email) is held by another item.
    #[error("{0}")]
    Duplicate(String),
    /// The item changed since it was read (optimistic concurrency).
    #[error("the item was changed by another request")]
    VersionMismatch,
    /// A segment or cluster field still has customers.
    #[error("{what} is used by {count} customer(s)")]
    InUse { what: String, count: i64 },
    /// A condition that validation had checked no longer holds (e.g. the segment was
    /// deactivated between the read and the write).
    #[error("{0}")]
    Invalid(Violations),
    #[error("the cursor does not belong to this listing")]
    InvalidCursor,
    /// Another request was writing the same item at the same moment and kept winning
    /// through every retry (DynamoDB's `TransactionConflict`). Not an outage: the
    /// client may retry at once.
    #[error("{0}")]
    Conflict(String),
    /// DynamoDB could not be reached or kept refusing; safe to retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The error codes DynamoDB answers when a table or an account is over its throughput:
/// the SDK already retried them, so what reaches us is an outage for the caller.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// The code of a single-item write refused because a transaction holds the item.
pub(crate) const TRANSACTION_CONFLICT: &str = "TransactionConflictException";

/// Connection problems, timeouts and throttling are retryable outages; a write that
/// collided with a transaction on the same item is a conflict; everything else is a
/// bug or a misconfiguration and must be loud.
pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(display_chain(&err))
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) if THROTTLING_CODES.contains(&code) => {
                StoreError::Unavailable(display_chain(&err))
            }
            Some(TRANSACTION_CONFLICT) => StoreError::Conflict(CONFLICT_DETAIL.into()),
            _ => StoreError::Internal(display_chain(&err)),
        },
        _ => StoreError::Internal(display_chain(&err)),
    }
}

/// What a client is told when its write kept colliding with another write of the same item.
pub(crate) const CONFLICT_DETAIL: &str =
    "another request was changing the same customer or entity at the same moment; retry";

/// A full-jitter exponential backoff before retry `attempt` (1, 2, ...): a random wait
/// in `[0, base * 2^attempt)`, so clients that collided do not retry in lockstep.
pub(crate) fn backoff(attempt: u32, base_ms: u64) -> std::time::Duration {
    let ceiling = base_ms.saturating_mul(1 << attempt.min(6));
    std::time::Duration::from_millis(fastrand::u64(0..ceiling.max(1)))
}

pub(crate) fn display_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(err: serde_dynamo::Error) -> Self {
        StoreError::Internal(format!("item (de)serialization: {err}"))
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(err: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::Internal(format!("request build: {err}"))
    }
}
