//! The answer a DynamoDB Streams reader gives its event source mapping.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

/// `batchItemFailures` naming the records at `failed` (positions in `records`, in any
/// order, repeats allowed), lowest first: the mapping retries from the lowest one.
pub fn batch_item_failures(
    records: &[EventRecord],
    mut failed: Vec<usize>,
) -> DynamoDbEventResponse {
    failed.sort_unstable();
    failed.dedup();
    let mut response = DynamoDbEventResponse::default();
    for position in failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = records[position].change.sequence_number.clone();
        response.batch_item_failures.push(failure);
    }
    response
}
