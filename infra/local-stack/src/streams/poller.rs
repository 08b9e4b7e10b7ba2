//! The poller: follows the table's latest stream (ListStreams, DescribeStream), reads
//! every shard in order (a child shard only after its parent is read to its end) with
//! GetShardIterator and GetRecords, and delivers what it read in batches, in order per
//! shard, checkpointing after every batch.
//!
//! moto (5.2) as the stream: one shard per table that never closes, with the same shard
//! id for every table and sequence numbers restarting at `1100000000017454423009` (22
//! digits: never parse them as `u64`), so a re-created table is only told apart by its
//! stream ARN (label = creation time). moto keeps every shard iterator it hands out (one
//! per GetRecords), so a short `poll_interval` slowly grows its memory.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;

use super::EventSourceMapping;
use super::checkpoint::Checkpoint;
use super::error::{AwsError, Error, RecordError};
use super::filter::filters_match;
use super::invoke::{InvocationResult, invoke};
use super::on_failure::OnFailure;
use super::records::lambda_record;
use super::retry::{Outcome, RetryState, decide};

/// How often the stream's shards (and which stream is the table's latest) are looked up
/// again; a shard that reaches its end triggers a look-up at once.
const TOPOLOGY_REFRESH: Duration = Duration::from_secs(5);
/// GetRecords' maximum.
const READ_LIMIT: i32 = 1000;

/// Why following a stream stopped.
enum Interrupt {
    /// An AWS error: logged, then the stream is looked up again.
    Aws(AwsError),
    /// The checkpoint or the on-failure destination cannot be written: the poller stops.
    Fatal(Error),
}

impl From<AwsError> for Interrupt {
    fn from(err: AwsError) -> Self {
        Interrupt::Aws(err)
    }
}

impl From<Error> for Interrupt {
    fn from(err: Error) -> Self {
        Interrupt::Fatal(err)
    }
}

/// A `map_err` for an SDK error of `operation`.
fn aws<E: std::error::Error>(operation: &'static str) -> impl FnOnce(E) -> AwsError {
    move |err| AwsError {
        operation,
        detail: DisplayErrorContext(err).to_string(),
    }
}

/// One record read from a shard.
struct Entry {
    sequence_number: String,
    /// The record, if a filter matched it.
    record: Option<EventRecord>,
}

/// A shard being read.
struct ShardReader {
    id: String,
    parent: Option<String>,
    /// Where to read next; `None`: ask for an iterator after `read_position`.
    iterator: Option<String>,
    /// The last record read (buffered or done).
    read_position: Option<String>,
    /// No more records: GetRecords returned no next iterator.
    closed: bool,
    /// Records read and not done, in order.
    buffer: VecDeque<Entry>,
    retry: RetryState,
    next_limit: Option<usize>,
}

impl ShardReader {
    /// A shard to read from after `read_position` (`None`: from its beginning).
    fn new(id: String, parent: Option<String>, read_position: Option<String>) -> Self {
        Self {
            id,
            parent,
            iterator: None,
            read_position,
            closed: false,
            buffer: VecDeque::new(),
            retry: RetryState::default(),
            next_limit: None,
        }
    }
}

/// The mapping of one table's stream to one handler, running.
pub(super) struct Poller<'a, H> {
    client: &'a Client,
    table_name: &'a str,
    mapping: &'a EventSourceMapping,
    handler: &'a H,
    on_failure: OnFailure,
    region: String,
    invocations: u64,
    followed: Option<String>,
}

impl<'a, H, F> Poller<'a, H>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    /// A poller for the stream of `table_name`; records carry the client's region unless
    /// they name their own.
    pub(super) fn new(
        client: &'a Client,
        table_name: &'a str,
        mapping: &'a EventSourceMapping,
        handler: &'a H,
    ) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        Self {
            client,
            table_name,
            mapping,
            handler,
            on_failure: OnFailure::new(mapping.on_failure_path()),
            region,
            invocations: 0,
            followed: None,
        }
    }

    /// Follows the table's stream until the checkpoint cannot be read or written; AWS
    /// errors are logged and retried.
    pub(super) async fn run(&mut self) -> Result<(), Error> {
        let mut checkpoint = Checkpoint::load(&self.mapping.checkpoint)?;
        let mut last_error: Option<AwsError> = None;
        loop {
            match self.follow(&mut checkpoint).await {
                Ok(()) => last_error = None,
                Err(Interrupt::Fatal(err)) => return Err(err),
                Err(Interrupt::Aws(err)) => {
                    // Log a persisting error once, not on every retry.
                    if last_error.as_ref() != Some(&err) {
                        tracing::warn!(table = %self.table_name, error = %err, "stream poll failed; retrying");
                    }
                    last_error = Some(err);
                }
            }
            tokio::time::sleep(self.mapping.poll_interval).await;
        }
    }

    /// The table's latest stream, if it has one.
    async fn latest_stream(&self) -> Result<Option<String>, Interrupt> {
        let mut latest: Option<(String, String)> = None;
        let mut start = None;
        loop {
            let output = self
                .client
                .list_streams()
                .table_name(self.table_name)
                .set_exclusive_start_stream_arn(start.take())
                .send()
                .await
                .map_err(aws("ListStreams"))?;
            for stream in output.streams.unwrap_or_default() {
                let (Some(arn), label) = (stream.stream_arn, stream.stream_label) else {
                    continue;
                };
                let label = label.unwrap_or_default();
                if latest.as_ref().is_none_or(|(_, l)| label > *l) {
                    latest = Some((arn, label));
                }
            }
            match output.last_evaluated_stream_arn {
                Some(next) => start = Some(next),
                None => return Ok(latest.map(|(arn, _)| arn)),
            }
        }
    }

    /// Every shard of the stream: (id, parent).
    async fn shards(&self, stream_arn: &str) -> Result<Vec<(String, Option<String>)>, Interrupt> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(aws("DescribeStream"))?;
            let Some(description) = output.stream_description else {
                return Err(AwsError {
                    operation: "DescribeStream",
                    detail: "the answer has no stream description".into(),
                }
                .into());
            };
            for shard in description.shards.unwrap_or_default() {
                if let Some(id) = shard.shard_id {
                    shards.push((id, shard.parent_shard_id));
                }
            }
            match description.last_evaluated_shard_id {
                Some(next) => start = Some(next),
                None => return Ok(shards),
            }
        }
    }

    /// Follows the table's latest stream until it changes (`Ok`) or an error.
    async fn follow(&mut self, checkpoint: &mut Checkpoint) -> Result<(), Interrupt> {
        let Some(stream_arn) = self.latest_stream().await? else {
            if self.followed.take().is_some() {
                tracing::info!(table = %self.table_name, "the table's stream is gone; waiting for one");
            }
            return Ok(());
        };
        if checkpoint.stream_arn() != Some(stream_arn.as_str()) {
            if let Some(old) = checkpoint.stream_arn() {
                tracing::info!(old = %old, new = %stream_arn, "the table has a new stream; starting at TRIM_HORIZON");
            }
            checkpoint.start_over(&stream_arn);
            checkpoint.save()?;
        }
        if self.followed.as_deref() != Some(stream_arn.as_str()) {
            tracing::info!(stream = %stream_arn, "following the table's stream");
            self.followed = Some(stream_arn.clone());
        }

        let mut readers: Vec<ShardReader> = Vec::new();
        let mut refreshed: Option<Instant> = None;
        loop {
            if refreshed.is_none_or(|at| at.elapsed() >= TOPOLOGY_REFRESH) {
                if refreshed.is_some()
                    && self.latest_stream().await?.as_deref() != Some(stream_arn.as_str())
                {
                    return Ok(());
                }
                let listed = self.shards(&stream_arn).await?;
                let ids: HashSet<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
                readers.retain(|r| ids.contains(r.id.as_str()));
                if checkpoint.retain_shards(&ids) {
                    checkpoint.save()?;
                }
                for (id, parent) in listed {
                    if !readers.iter().any(|r| r.id == id) {
                        let read_position = checkpoint.position(&id).map(str::to_string);
                        readers.push(ShardReader::new(id, parent, read_position));
                    }
                }
                refreshed = Some(Instant::now());
            }

            let mut busy = false;
            for i in 0..readers.len() {
                let reader = &readers[i];
                if checkpoint.finished(&reader.id) {
                    continue;
                }
                // A child shard waits until its parent is read to its end.
                let parent_pending = reader.parent.as_ref().is_some_and(|parent| {
                    readers.iter().any(|r| &r.id == parent) && !checkpoint.finished(parent)
                });
                if parent_pending {
                    continue;
                }
                busy |= self
                    .poll_shard(&stream_arn, &mut readers[i], checkpoint)
                    .await?;
                if checkpoint.finished(&readers[i].id) {
                    refreshed = None;
                }
            }
            if !busy {
                tokio::time::sleep(self.mapping.poll_interval).await;
            }
        }
    }

    /// Reads a shard once and handles what it holds; whether records came.
    async fn poll_shard(
        &mut self,
        stream_arn: &str,
        shard: &mut ShardReader,
        checkpoint: &mut Checkpoint,
    ) -> Result<bool, Interrupt> {
        if shard.iterator.is_none() && !shard.closed {
            shard.iterator = Some(self.shard_iterator(stream_arn, shard).await?);
        }
        let mut got = false;
        if let Some(iterator) = shard.iterator.take() {
            let result = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(READ_LIMIT)
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(err) => {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_expired_iterator_exception()) {
                        return Ok(true);
                    }
                    if service.is_some_and(|e| e.is_trimmed_data_access_exception()) {
                        tracing::warn!(shard = %shard.id, "records were trimmed before they were read; continuing at TRIM_HORIZON");
                        shard.read_position = None;
                        return Ok(true);
                    }
                    return Err(aws("GetRecords")(err).into());
                }
            };
            shard.closed = output.next_shard_iterator.is_none();
            let records = output.records.unwrap_or_default();
            // Every poll starts from a fresh iterator at the read position instead of the
            // returned one: moto restores a deep copy of the table when a transaction
            // fails, and iterators it handed out before keep reading the discarded copy.
            // (Only the local emulation polls this way; Lambda's mapping is AWS's.)
            shard.iterator = None;
            for record in records {
                got = true;
                let Some(sequence_number) = record
                    .dynamodb
                    .as_ref()
                    .and_then(|d| d.sequence_number.clone())
                else {
                    tracing::error!(shard = %shard.id, "skipping a stream record without a sequence number");
                    continue;
                };
                shard.read_position = Some(sequence_number.clone());
                let record = match lambda_record(&record, stream_arn, &self.region).and_then(
                    |json| {
                        if filters_match(&self.mapping.filters, &json) {
                            serde_json::from_value::<EventRecord>(json)
                                .map(Some)
                                .map_err(RecordError::Lambda)
                        } else {
                            Ok(None)
                        }
                    },
                ) {
                    Ok(record) => record,
                    Err(err) => {
                        tracing::error!(shard = %shard.id, sequence_number = %sequence_number, error = %err, "skipping a stream record that cannot be converted");
                        None
                    }
                };
                shard.buffer.push_back(Entry {
                    sequence_number,
                    record,
                });
            }
        }
        self.drain(stream_arn, shard, checkpoint).await?;
        if shard.closed && shard.buffer.is_empty() && !checkpoint.finished(&shard.id) {
            tracing::info!(shard = %shard.id, "shard read to its end");
            checkpoint.finish(&shard.id);
            checkpoint.save()?;
        }
        Ok(got)
    }

    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard: &ShardReader,
    ) -> Result<String, Interrupt> {
        let request = |after: Option<&str>| {
            let request = self
                .client
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(&shard.id);
            match after {
                Some(sequence_number) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(sequence_number),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            }
        };
        let output = match request(shard.read_position.as_deref()).send().await {
            Err(err)
                if shard.read_position.is_some()
                    && err
                        .as_service_error()
                        .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
            {
                tracing::warn!(shard = %shard.id, "the checkpoint is past the stream's retention; continuing at TRIM_HORIZON");
                request(None).send().await
            }
            other => other,
        }
        .map_err(aws("GetShardIterator"))?;
        output.shard_iterator.ok_or_else(|| {
            AwsError {
                operation: "GetShardIterator",
                detail: "the answer has no shard iterator".into(),
            }
            .into()
        })
    }

    /// Invokes the handler with the buffered records until none is left, checkpointing
    /// after every batch and retrying failed ones.
    async fn drain(
        &mut self,
        stream_arn: &str,
        shard: &mut ShardReader,
        checkpoint: &mut Checkpoint,
    ) -> Result<(), Interrupt> {
        loop {
            // Records the filters dropped are done once the records before them are.
            let mut skipped = None;
            while shard.buffer.front().is_some_and(|e| e.record.is_none()) {
                skipped = shard.buffer.pop_front().map(|e| e.sequence_number);
            }
            if let Some(sequence_number) = skipped {
                checkpoint.advance(&shard.id, &sequence_number);
                checkpoint.save()?;
            }
            if shard.buffer.is_empty() {
                return Ok(());
            }

            let limit = shard.next_limit.take().unwrap_or(self.mapping.batch_size);
            let mut positions = Vec::new();
            for (index, entry) in shard.buffer.iter().enumerate() {
                if entry.record.is_some() {
                    if positions.len() == limit {
                        break;
                    }
                    positions.push(index);
                }
            }
            let sequence_numbers: Vec<String> = positions
                .iter()
                .map(|&i| shard.buffer[i].sequence_number.clone())
                .collect();
            let mut event = Event::default();
            event.records = positions
                .iter()
                .filter_map(|&i| shard.buffer[i].record.clone())
                .collect();

            self.invocations += 1;
            let started = Instant::now();
            let result = invoke(self.handler, event).await;
            let outcome = Outcome::of(result, &sequence_numbers);
            let decision = decide(self.mapping, &mut shard.retry, &sequence_numbers, &outcome);
            match &outcome {
                Outcome::Success => tracing::debug!(
                    shard = %shard.id,
                    records = sequence_numbers.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "stream batch handled"
                ),
                Outcome::Partial(failed) => tracing::warn!(
                    shard = %shard.id,
                    records = sequence_numbers.len(),
                    failed = failed.len(),
                    "stream batch partly failed; retrying from the first failed record"
                ),
                Outcome::Failure(err) => tracing::warn!(
                    shard = %shard.id,
                    records = sequence_numbers.len(),
                    error = %err,
                    "stream batch failed"
                ),
            }

            if decision.discarded > 0 {
                let discarded = &positions[decision.done..decision.done + decision.discarded];
                let records: Vec<&EventRecord> = discarded
                    .iter()
                    .filter_map(|&i| shard.buffer[i].record.as_ref())
                    .collect();
                let error = match &outcome {
                    Outcome::Failure(err) => Some(err),
                    _ => None,
                };
                self.on_failure.send(
                    self.invocations,
                    stream_arn,
                    &shard.id,
                    &records,
                    decision.invocations,
                    error,
                )?;
            }

            let consumed = decision.done + decision.discarded;
            let popped = if consumed == positions.len() {
                positions.last().map_or(0, |&last| last + 1)
            } else {
                positions[consumed]
            };
            let mut last = None;
            for _ in 0..popped {
                last = shard.buffer.pop_front().map(|e| e.sequence_number);
            }
            if let Some(sequence_number) = last {
                checkpoint.advance(&shard.id, &sequence_number);
                checkpoint.save()?;
            }
            if consumed < positions.len() {
                shard.next_limit = decision.next_limit;
                if decision.discarded == 0 {
                    tokio::time::sleep(self.mapping.poll_interval).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{ARN, customer_pattern, event, mapping, response, temp_dir};
    use aws_lambda_events::event::streams::DynamoDbEventResponse;
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};

    /// A client that is never called: the tests below drive `drain` directly.
    fn offline_client() -> Client {
        use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Region};
        Client::from_conf(
            aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .build(),
        )
    }

    /// Feeds records in Lambda's format through the filters and `drain`, like one read.
    async fn drain_all<H, F>(
        mapping: &EventSourceMapping,
        handler: &H,
        records: &[Value],
    ) -> Result<Checkpoint, Error>
    where
        H: Fn(Event) -> F,
        F: Future,
        F::Output: InvocationResult,
    {
        let client = offline_client();
        let mut poller = Poller::new(&client, "t", mapping, handler);
        let mut shard = ShardReader::new("shard-1".into(), None, None);
        for json in records {
            shard.buffer.push_back(Entry {
                sequence_number: json["dynamodb"]["SequenceNumber"].as_str().unwrap().into(),
                record: filters_match(&mapping.filters, json)
                    .then(|| serde_json::from_value(json.clone()).unwrap()),
            });
        }
        let mut checkpoint = Checkpoint::load(&mapping.checkpoint)?;
        match poller.drain(ARN, &mut shard, &mut checkpoint).await {
            Ok(()) => {}
            Err(Interrupt::Fatal(err)) => return Err(err),
            Err(Interrupt::Aws(err)) => panic!("drain makes no AWS call: {err}"),
        }
        assert!(shard.buffer.is_empty());
        Ok(checkpoint)
    }

    fn sk(record: &EventRecord) -> String {
        match record.change.keys.get("sk") {
            Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
            other => panic!("no sort key: {other:?}"),
        }
    }

    type Calls = Arc<Mutex<Vec<Vec<String>>>>;

    /// Records every batch's sort keys; fails the records whose sort key is in `poison`
    /// (reported in batchItemFailures) and panics on `PANIC#`.
    fn scripted(
        calls: Calls,
        poison: &'static [&'static str],
    ) -> impl Fn(Event) -> std::future::Ready<DynamoDbEventResponse> {
        move |event: Event| {
            calls
                .lock()
                .unwrap()
                .push(event.records.iter().map(sk).collect());
            if event.records.iter().any(|r| sk(r).starts_with("PANIC#")) {
                panic!("poisoned batch");
            }
            let failed: Vec<&str> = event
                .records
                .iter()
                .filter(|r| poison.contains(&sk(r).as_str()))
                .map(|r| r.change.sequence_number.as_deref().unwrap())
                .collect();
            std::future::ready(response(&failed))
        }
    }

    #[tokio::test]
    async fn batches_filter_checkpoint_and_send_poison_records_to_on_failure() {
        let dir = temp_dir("drain");
        let mapping = EventSourceMapping {
            batch_size: 2,
            ..mapping(&dir, vec![customer_pattern()])
        };
        let records = [
            event("INSERT", "CUSTOMER#1", Some("api"), "001"),
            event("INSERT", "SEGMENT#1", Some("api"), "002"),
            event("MODIFY", "CUSTOMER#2", Some("api"), "003"),
            event("MODIFY", "CUSTOMER#3", Some("api"), "004"),
            event("MODIFY", "CUSTOMER#4", Some("assign"), "005"),
            event("INSERT", "CUSTOMER#5", Some("api"), "006"),
            event("REMOVE", "CUSTOMER#6", Some("api"), "007"),
        ];
        let calls = Calls::default();
        let handler = scripted(calls.clone(), &["CUSTOMER#3"]);
        let checkpoint = drain_all(&mapping, &handler, &records).await.unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [
                vec!["CUSTOMER#1", "CUSTOMER#2"],
                vec!["CUSTOMER#3", "CUSTOMER#5"],
                vec!["CUSTOMER#3", "CUSTOMER#5"],
                vec!["CUSTOMER#3", "CUSTOMER#5"],
                vec!["CUSTOMER#5"],
            ]
        );
        // Everything is done, including the filtered-out records at the end.
        assert_eq!(checkpoint.position("shard-1"), Some("007"));
        let saved = Checkpoint::load(&mapping.checkpoint).unwrap();
        assert_eq!(saved.position("shard-1"), Some("007"));

        let lines = std::fs::read_to_string(mapping.on_failure_path()).unwrap();
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        let info = &lines[0]["DDBStreamBatchInfo"];
        assert_eq!(info["startSequenceNumber"], "004");
        assert_eq!(info["endSequenceNumber"], "004");
        assert_eq!(info["batchSize"], 1);
        assert_eq!(info["shardId"], "shard-1");
        assert_eq!(info["streamArn"], ARN);
        assert_eq!(
            lines[0]["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(lines[0]["requestContext"]["approximateInvokeCount"], 3);
        assert!(lines[0]["responseContext"].get("functionError").is_none());
        assert_eq!(lines[0]["Keys"][0]["sk"], json!({ "S": "CUSTOMER#3" }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_the_batch_and_bisection_isolates_the_record() {
        let dir = temp_dir("panic");
        let mapping = EventSourceMapping {
            bisect_batch_on_function_error: true,
            maximum_retry_attempts: 1,
            ..mapping(&dir, vec![])
        };
        let records = [
            event("INSERT", "CUSTOMER#1", None, "001"),
            event("INSERT", "CUSTOMER#2", None, "002"),
            event("INSERT", "PANIC#3", None, "003"),
            event("INSERT", "CUSTOMER#4", None, "004"),
            event("INSERT", "CUSTOMER#5", None, "005"),
        ];
        let calls = Calls::default();
        let handler = scripted(calls.clone(), &[]);
        let checkpoint = drain_all(&mapping, &handler, &records).await.unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [
                vec!["CUSTOMER#1", "CUSTOMER#2", "PANIC#3", "CUSTOMER#4"],
                vec!["CUSTOMER#1", "CUSTOMER#2"],
                vec!["PANIC#3", "CUSTOMER#4", "CUSTOMER#5"],
                vec!["PANIC#3", "CUSTOMER#4"],
                vec!["PANIC#3"],
                vec!["PANIC#3"],
                vec!["CUSTOMER#4", "CUSTOMER#5"],
            ]
        );
        assert_eq!(checkpoint.position("shard-1"), Some("005"));
        let line: Value = serde_json::from_str(
            std::fs::read_to_string(mapping.on_failure_path())
                .unwrap()
                .trim(),
        )
        .unwrap();
        assert_eq!(line["DDBStreamBatchInfo"]["startSequenceNumber"], "003");
        assert_eq!(line["responseContext"]["functionError"], "Unhandled");
        assert_eq!(line["requestContext"]["approximateInvokeCount"], 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn handler_errors_fail_the_whole_batch_without_bisection() {
        let dir = temp_dir("error");
        let mapping = EventSourceMapping {
            maximum_retry_attempts: 1,
            ..mapping(&dir, vec![])
        };
        let records = [
            event("INSERT", "CUSTOMER#1", None, "001"),
            event("INSERT", "CUSTOMER#2", None, "002"),
        ];
        let count = Arc::new(Mutex::new(0));
        let seen = count.clone();
        let handler = move |_event: Event| {
            *seen.lock().unwrap() += 1;
            async { Err::<DynamoDbEventResponse, _>("database unavailable") }
        };
        let checkpoint = drain_all(&mapping, &handler, &records).await.unwrap();
        assert_eq!(*count.lock().unwrap(), 2);
        assert_eq!(checkpoint.position("shard-1"), Some("002"));
        let line: Value = serde_json::from_str(
            std::fs::read_to_string(mapping.on_failure_path())
                .unwrap()
                .trim(),
        )
        .unwrap();
        assert_eq!(line["DDBStreamBatchInfo"]["batchSize"], 2);
        assert_eq!(line["Keys"].as_array().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
