//! Fixtures shared by the unit tests of the stream mapping's modules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::{Value, json};

use super::EventSourceMapping;

/// A stream ARN, labelled with its creation time as DynamoDB labels them.
pub(super) const ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000";

/// The assign function's pattern in `template.yaml`.
pub(super) fn customer_pattern() -> Value {
    json!({
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {
            "Keys": { "sk": { "S": [{ "prefix": "CUSTOMER#" }] } },
            "NewImage": { "written_by": { "S": ["api"] } }
        }
    })
}

/// A record in Lambda's format.
pub(super) fn event(name: &str, sk: &str, written_by: Option<&str>, seq: &str) -> Value {
    let mut image = json!({ "pk": { "S": "T#acme" }, "sk": { "S": sk } });
    if let Some(by) = written_by {
        image["written_by"] = json!({ "S": by });
    }
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1_700_000_000,
        "Keys": { "pk": { "S": "T#acme" }, "sk": { "S": sk } },
        "SequenceNumber": seq,
        "SizeBytes": 10,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    match name {
        "REMOVE" => dynamodb["OldImage"] = image,
        "MODIFY" => {
            dynamodb["OldImage"] = image.clone();
            dynamodb["NewImage"] = image;
        }
        _ => dynamodb["NewImage"] = image,
    }
    json!({
        "eventID": format!("id-{seq}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
    })
}

/// A mapping with small limits, checkpointing in `dir`.
pub(super) fn mapping(dir: &Path, filters: Vec<Value>) -> EventSourceMapping {
    EventSourceMapping {
        filters,
        batch_size: 4,
        maximum_retry_attempts: 2,
        bisect_batch_on_function_error: false,
        poll_interval: Duration::from_millis(1),
        checkpoint: dir.join("checkpoint.json"),
    }
}

/// A response that reports these sequence numbers in `batchItemFailures`.
pub(super) fn response(failed: &[&str]) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for id in failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(id.to_string());
        response.batch_item_failures.push(failure);
    }
    response
}

/// A directory of its own for one test (removed if it exists).
pub(super) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "local-stack-streams-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
