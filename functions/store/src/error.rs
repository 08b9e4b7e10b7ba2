use aws_sdk_dynamodb::error::SdkError;
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
    /// DynamoDB could not be reached or kept refusing; safe to retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Connection problems and timeouts are retryable; everything else is a bug or a
/// misconfiguration and must be loud.
pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(display_chain(&err))
        }
        SdkError::ServiceError(service) if is_throttling(service.err()) => {
            StoreError::Unavailable(display_chain(&err))
        }
        _ => StoreError::Internal(display_chain(&err)),
    }
}

fn is_throttling(err: &(dyn std::error::Error + 'static)) -> bool {
    let text = err.to_string();
    text.contains("Throughput") || text.contains("Throttl") || text.contains("RequestLimit")
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
