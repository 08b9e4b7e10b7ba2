//! The local DynamoDB Streams event source mapping: what Lambda's poller does for a
//! function subscribed to the table's stream, in process.
//!
//! How the pieces fit: [`run`] starts the poller (`poller.rs`), which follows the
//! table's latest stream and reads its shards in order. Each record read is turned into
//! the JSON Lambda delivers ([`lambda_record`], `records.rs`) and kept if a filter
//! pattern matches it, or if there is none ([`filters_match`], `filter.rs`). The kept
//! records go to the handler in batches of up to [`EventSourceMapping::batch_size`]
//! (`config.rs`); `invoke.rs` turns the handler's response, error or panic into the
//! invocation's result, `retry.rs` decides from it what is done, retried, bisected or
//! discarded, `on_failure.rs` records what is discarded, and `checkpoint.rs` saves the
//! progress per shard, so that a restart resumes where the last one stopped. Their
//! errors are in `error.rs`.
//!
//! Not emulated: `MaximumBatchingWindowInSeconds` (a batch is what one GetRecords read
//! holds), `MaximumRecordAgeInSeconds`, parallelization factor, tumbling windows, and
//! the function timeout. Shards are polled one after the other, not concurrently.

mod checkpoint;
mod config;
mod error;
mod filter;
mod invoke;
mod on_failure;
mod poller;
mod records;
mod retry;
#[cfg(test)]
mod test_support;

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodbstreams::Client;

pub use config::EventSourceMapping;
pub use error::{Error, InvocationError, PatternError, RecordError};
pub use filter::{filters_match, pattern_matches, validate_pattern};
pub use invoke::InvocationResult;
pub use records::lambda_record;

use poller::Poller;

/// A DynamoDB Streams client configured like the store's DynamoDB client (same HTTP
/// client, timeouts, `DYNAMODB_ENDPOINT`, local region and credentials).
pub async fn client(config: &store::StoreConfig) -> Client {
    Client::new(&config.sdk_config().await)
}

/// Polls the latest stream of `table_name` and invokes `handler` with its records until
/// `shutdown` completes. Waits for the table and its stream to exist; AWS errors are
/// logged and retried. Fails on an invalid mapping or when the checkpoint cannot be
/// read or written, or the on-failure destination cannot be written.
///
/// The handler is called with one batch at a time; a batch may be dropped in flight when
/// `shutdown` completes (it is delivered again on the next start).
pub async fn run<H, F>(
    client: Client,
    table_name: String,
    mapping: EventSourceMapping,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    mapping.validate()?;
    let mut poller = Poller::new(&client, &table_name, &mapping, &handler);
    tokio::select! {
        result = poller.run() => result,
        () = shutdown => {
            tracing::info!(table = %table_name, "stream poller stopped");
            Ok(())
        }
    }
}
