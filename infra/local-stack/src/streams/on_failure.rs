//! The on-failure destination: records that exhausted their retries are logged
//! (`warn`, with their keys) and appended, one JSON line per discarded run of records,
//! to `on-failure.jsonl` next to the checkpoint, shaped like Lambda's on-failure record
//! (`DDBStreamBatchInfo` ...) plus the records' keys, which Lambda leaves out.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::{Value, json};

use super::checkpoint::create_parent;
use super::error::{Error, InvocationError};

/// The file discarded records are appended to.
#[derive(Debug)]
pub(super) struct OnFailure {
    path: PathBuf,
}

impl OnFailure {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Records discarded records like Lambda's on-failure destination would receive them
    /// (plus their keys): `request` numbers the invocation (`requestId`), `invocations`
    /// is how many times they were delivered, `error` the function's error if it failed
    /// as a whole (`None`: the records were reported in `batchItemFailures`).
    pub(super) fn send(
        &self,
        request: u64,
        stream_arn: &str,
        shard_id: &str,
        records: &[&EventRecord],
        invocations: u32,
        error: Option<&InvocationError>,
    ) -> Result<(), Error> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let arrival = |r: &EventRecord| {
            r.change
                .approximate_creation_date_time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let keys: Vec<Value> = records
            .iter()
            .map(|r| serde_json::to_value(&r.change.keys).unwrap_or(Value::Null))
            .collect();
        let mut response_context = json!({ "statusCode": 200, "executedVersion": "$LATEST" });
        if error.is_some() {
            response_context["functionError"] = json!("Unhandled");
        }
        let line = json!({
            "requestContext": {
                "requestId": format!("local-{request}"),
                "functionArn": "local",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.change.sequence_number,
                "endSequenceNumber": last.change.sequence_number,
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": records.len(),
                "streamArn": stream_arn,
            },
            "Keys": keys,
        });
        for (record, keys) in records.iter().zip(&keys) {
            tracing::warn!(
                shard = %shard_id,
                sequence_number = record.change.sequence_number.as_deref().unwrap_or(""),
                keys = %keys,
                invocations,
                error = %error.map_or_else(|| "reported in batchItemFailures".into(), ToString::to_string),
                destination = %self.path.display(),
                "stream record failed after its retries; sent to the on-failure destination"
            );
        }
        append_line(&self.path, &line)
    }
}

/// Appends `line` and a newline to the file at `path`, creating both if missing.
fn append_line(path: &Path, line: &Value) -> Result<(), Error> {
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    let appended = (|| {
        create_parent(path)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(&bytes)
    })();
    appended.map_err(Error::write(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{ARN, event, temp_dir};

    #[test]
    fn discarded_records_are_appended_as_lambda_on_failure_records() {
        let dir = temp_dir("on-failure");
        let destination = OnFailure::new(dir.join("nested/on-failure.jsonl"));
        let records: Vec<EventRecord> = [
            event("INSERT", "CUSTOMER#1", None, "001"),
            event("MODIFY", "CUSTOMER#2", None, "002"),
        ]
        .into_iter()
        .map(|json| serde_json::from_value(json).unwrap())
        .collect();
        let all: Vec<&EventRecord> = records.iter().collect();
        destination
            .send(
                7,
                ARN,
                "shard-1",
                &all,
                3,
                Some(&InvocationError::Function("boom".into())),
            )
            .unwrap();
        destination
            .send(8, ARN, "shard-1", &all[1..], 1, None)
            .unwrap();
        // No records, no line.
        destination.send(9, ARN, "shard-1", &[], 1, None).unwrap();

        let lines: Vec<Value> = std::fs::read_to_string(&destination.path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let whole = &lines[0];
        assert_eq!(whole["requestContext"]["requestId"], "local-7");
        assert_eq!(
            whole["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(whole["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(whole["responseContext"]["statusCode"], 200);
        assert_eq!(whole["responseContext"]["functionError"], "Unhandled");
        let info = &whole["DDBStreamBatchInfo"];
        assert_eq!(info["shardId"], "shard-1");
        assert_eq!(info["startSequenceNumber"], "001");
        assert_eq!(info["endSequenceNumber"], "002");
        assert_eq!(
            info["approximateArrivalOfFirstRecord"],
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(info["batchSize"], 2);
        assert_eq!(info["streamArn"], ARN);
        assert_eq!(whole["Keys"][1]["sk"], json!({ "S": "CUSTOMER#2" }));

        let partial = &lines[1];
        assert!(partial["responseContext"].get("functionError").is_none());
        assert_eq!(partial["DDBStreamBatchInfo"]["startSequenceNumber"], "002");
        assert_eq!(partial["DDBStreamBatchInfo"]["batchSize"], 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
