//! The local DynamoDB Streams event source mapping: what Lambda's poller does for a
//! function subscribed to the table's stream, in process.
//!
//! [`run`] follows the table's latest stream (ListStreams, DescribeStream), reads every
//! shard in order (a child shard only after its parent is read to its end) with
//! GetShardIterator and GetRecords, turns each record into the JSON Lambda delivers
//! ([`lambda_record`]), drops the records no filter pattern matches ([`pattern_matches`],
//! Lambda event filtering), and invokes the handler with batches of up to
//! [`EventSourceMapping::batch_size`] records, in order per shard.
//!
//! Failures are handled like an event source mapping with `ReportBatchItemFailures`,
//! `MaximumRetryAttempts` and, optionally, `BisectBatchOnFunctionError`:
//!
//! - `batchItemFailures` (partial failure): the records before the failed one with the
//!   lowest sequence number are done; the batch is retried from that record (with
//!   bisection: only the rest of the batch);
//! - a handler that panics, returns `Err`, or reports an unknown, empty or missing
//!   `itemIdentifier` fails the whole batch: it is retried as is, or with bisection split
//!   in half (a split does not count as a retry) until it is one record;
//! - a record that keeps failing is retried `maximum_retry_attempts` times; then it (for
//!   a whole-batch failure without bisection: the whole batch) goes to the on-failure
//!   destination: a `warn` log with its keys and one JSON line appended to
//!   `on-failure.jsonl` next to the checkpoint, shaped like Lambda's on-failure
//!   record (`DDBStreamBatchInfo` ...) plus the records' keys. The poller moves on.
//!
//! Progress is checkpointed per shard (the last sequence number done: handled, filtered
//! out or discarded) in a JSON file, written atomically (temp file, fsync, rename) after
//! every handled batch: a restarted poller resumes after the last handled batch, and a
//! batch handled but not checkpointed is delivered again (at least once, like Lambda).
//! The checkpoint belongs to one stream ARN: when the table is re-created (a new stream),
//! the poller starts over at `TRIM_HORIZON`.
//!
//! Not emulated: `MaximumBatchingWindowInSeconds` (a batch is what one GetRecords read
//! holds), `MaximumRecordAgeInSeconds`, parallelization factor, tumbling windows, and
//! the function timeout. Shards are polled one after the other, not concurrently.
//!
//! moto (5.2) as the stream: one shard per table that never closes, with the same shard
//! id for every table and sequence numbers restarting at `1100000000017454423009` (22
//! digits: never parse them as `u64`), so a re-created table is only told apart by its
//! stream ARN (label = creation time); `eventVersion` `1.0` (DynamoDB says `1.1`, as
//! delivered here); `ApproximateCreationDateTime` in milliseconds (delivered here in
//! whole seconds, like Lambda); `SizeBytes` overestimated; a write that changes nothing
//! still yields a `MODIFY`. moto keeps every shard iterator it hands out (one per
//! GetRecords), so a short `poll_interval` slowly grows its memory.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How often the stream's shards (and which stream is the table's latest) are looked up
/// again; a shard that reaches its end triggers a look-up at once.
const TOPOLOGY_REFRESH: Duration = Duration::from_secs(5);
/// GetRecords' maximum.
const READ_LIMIT: i32 = 1000;

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
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("the batch size must be at least 1".into());
        }
        for (i, pattern) in self.filters.iter().enumerate() {
            validate_pattern(pattern).map_err(|err| format!("filter pattern {i}: {err}"))?;
        }
        Ok(())
    }
}

/// What a handler returns: the function's response, or its error.
pub trait InvocationResult {
    fn into_response(self) -> Result<DynamoDbEventResponse, String>;
}

impl InvocationResult for DynamoDbEventResponse {
    fn into_response(self) -> Result<DynamoDbEventResponse, String> {
        Ok(self)
    }
}

impl<E: Display> InvocationResult for Result<DynamoDbEventResponse, E> {
    fn into_response(self) -> Result<DynamoDbEventResponse, String> {
        self.map_err(|err| err.to_string())
    }
}

/// A DynamoDB Streams client configured like the store's DynamoDB client (same HTTP
/// client, timeouts, `DYNAMODB_ENDPOINT`, local region and credentials).
pub async fn client(config: &store::StoreConfig) -> Client {
    Client::new(&config.sdk_config().await)
}

/// Polls the latest stream of `table_name` and invokes `handler` with its records until
/// `shutdown` completes. Waits for the table and its stream to exist; AWS errors are
/// logged and retried. Fails on an invalid mapping or when the checkpoint cannot be
/// read or written.
///
/// The handler is called with one batch at a time; a batch may be dropped in flight when
/// `shutdown` completes (it is delivered again on the next start).
pub async fn run<H, F>(
    client: Client,
    table_name: String,
    mapping: EventSourceMapping,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    mapping.validate()?;
    let region = client
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let mut poller = Poller {
        client: &client,
        table_name: &table_name,
        on_failure: mapping.on_failure_path(),
        mapping: &mapping,
        handler: &handler,
        region,
        invocations: 0,
        followed: None,
    };
    tokio::select! {
        result = poller.run() => result,
        () = shutdown => {
            tracing::info!(table = %table_name, "stream poller stopped");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------
// Records in Lambda's format

/// A stream record as Lambda delivers it in `Records[]` (its `dynamodb` field with
/// DynamoDB-JSON images). `ApproximateCreationDateTime` is in whole seconds, as Lambda
/// delivers it; `eventVersion` is DynamoDB Streams' current `1.1`.
pub fn lambda_record(record: &Record, stream_arn: &str, region: &str) -> Result<Value, String> {
    let change = record
        .dynamodb
        .as_ref()
        .ok_or("a stream record without its `dynamodb` part")?;
    let mut dynamodb = Map::new();
    if let Some(time) = change.approximate_creation_date_time {
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(time.secs()));
    }
    for (name, image) in [
        ("Keys", &change.keys),
        ("NewImage", &change.new_image),
        ("OldImage", &change.old_image),
    ] {
        if let Some(image) = image {
            dynamodb.insert(name.into(), dynamodb_json(image)?);
        }
    }
    if let Some(sequence_number) = &change.sequence_number {
        dynamodb.insert("SequenceNumber".into(), json!(sequence_number));
    }
    if let Some(size) = change.size_bytes {
        dynamodb.insert("SizeBytes".into(), json!(size));
    }
    if let Some(view) = &change.stream_view_type {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let mut out = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.as_deref().unwrap_or(region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = &record.user_identity {
        out["userIdentity"] = json!({
            "type": identity.r#type,
            "principalId": identity.principal_id,
        });
    }
    Ok(out)
}

fn dynamodb_json(
    image: &std::collections::HashMap<String, AttributeValue>,
) -> Result<Value, String> {
    let item = serde_dynamo::Item::from(image.clone());
    serde_json::to_value(&item).map_err(|err| format!("cannot convert an image: {err}"))
}

// ---------------------------------------------------------------------------------
// Event filtering

/// Checks a filter pattern the way Lambda does when the mapping is created: an object
/// whose leaves are non-empty arrays of values or operators (`prefix`, `suffix`,
/// `equals-ignore-case`, `anything-but`, `exists`, `numeric`).
pub fn validate_pattern(pattern: &Value) -> Result<(), String> {
    match pattern {
        Value::Object(fields) => validate_fields(fields, ""),
        _ => Err("a pattern is a JSON object".into()),
    }
}

fn validate_fields(fields: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (name, value) in fields {
        let path = format!("{path}/{name}");
        match value {
            Value::Object(nested) => validate_fields(nested, &path)?,
            Value::Array(matchers) if !matchers.is_empty() => {
                for matcher in matchers {
                    validate_matcher(matcher).map_err(|err| format!("{path}: {err}"))?;
                }
            }
            Value::Array(_) => return Err(format!("{path}: an empty list matches nothing")),
            _ => return Err(format!("{path}: a leaf must be a list of values")),
        }
    }
    Ok(())
}

fn validate_matcher(matcher: &Value) -> Result<(), String> {
    let Value::Object(operator) = matcher else {
        return Ok(());
    };
    let mut entries = operator.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(format!("an operator has exactly one key: {matcher}"));
    };
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => operand.is_string(),
        "exists" => operand.is_boolean(),
        "anything-but" => match operand {
            Value::Array(values) => !values.is_empty() && values.iter().all(is_scalar),
            Value::Object(inner) => {
                inner.len() == 1
                    && ["prefix", "suffix", "equals-ignore-case"]
                        .iter()
                        .any(|op| inner.get(*op).is_some_and(Value::is_string))
            }
            value => is_scalar(value),
        },
        "numeric" => numeric_conditions(operand).is_some(),
        other => return Err(format!("unsupported operator `{other}`")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid operand for `{name}`: {operand}"))
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// `["<", 10, ">=", 5]` as (operator, bound) pairs.
fn numeric_conditions(operand: &Value) -> Option<Vec<(&str, f64)>> {
    let items = operand.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str()?;
            let bound = pair[1].as_f64()?;
            ["<", "<=", "=", ">", ">="]
                .contains(&op)
                .then_some((op, bound))
        })
        .collect()
}

/// Whether `event` (a record in Lambda's format) matches a filter pattern, with Lambda's
/// (EventBridge's) rules: every field of the pattern must match; a nested object matches
/// the nested field; a list matches when any of its values or operators matches the
/// field (or, for a list field, any element of it). A missing field matches only
/// `{"exists": false}`.
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields_match(fields, Some(event)),
        _ => false,
    }
}

/// Whether any pattern matches; no patterns match everything.
pub fn filters_match(filters: &[Value], event: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| pattern_matches(p, event))
}

fn fields_match(fields: &Map<String, Value>, event: Option<&Value>) -> bool {
    fields.iter().all(|(name, pattern)| {
        let field = event.and_then(Value::as_object).and_then(|o| o.get(name));
        match pattern {
            Value::Object(nested) => fields_match(nested, field),
            Value::Array(matchers) => matchers.iter().any(|m| leaf_matches(m, field)),
            _ => false,
        }
    })
}

fn leaf_matches(matcher: &Value, field: Option<&Value>) -> bool {
    if let Some(exists) = matcher.get("exists").and_then(Value::as_bool) {
        return exists == field.is_some();
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|item| value_matches(matcher, item)),
        Some(value) => value_matches(matcher, value),
    }
}

fn value_matches(matcher: &Value, value: &Value) -> bool {
    let Value::Object(operator) = matcher else {
        return scalar_eq(matcher, value);
    };
    let Some((name, operand)) = operator.iter().next() else {
        return false;
    };
    match name.as_str() {
        "anything-but" => match operand {
            Value::Array(values) => !values.iter().any(|v| scalar_eq(v, value)),
            Value::Object(_) => !value_matches(operand, value),
            single => !scalar_eq(single, value),
        },
        "numeric" => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse::<f64>().ok(),
                _ => None,
            };
            match (number, numeric_conditions(operand)) {
                (Some(n), Some(conditions)) => conditions.iter().all(|(op, bound)| match *op {
                    "<" => n < *bound,
                    "<=" => n <= *bound,
                    "=" => n == *bound,
                    ">" => n > *bound,
                    _ => n >= *bound,
                }),
                _ => false,
            }
        }
        _ => {
            let (Some(text), Some(operand)) = (value.as_str(), operand.as_str()) else {
                return false;
            };
            match name.as_str() {
                "prefix" => text.starts_with(operand),
                "suffix" => text.ends_with(operand),
                "equals-ignore-case" => text.to_lowercase() == operand.to_lowercase(),
                _ => false,
            }
        }
    }
}

fn scalar_eq(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => is_scalar(a) && a == b,
    }
}

// ---------------------------------------------------------------------------------
// Batch outcomes and retries (pure)

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Success,
    /// `batchItemFailures`: indexes into the batch, not empty.
    Partial(Vec<usize>),
    /// A panic, an error, or a response Lambda treats as a complete failure.
    Failure(String),
}

impl Outcome {
    /// Classifies a response for a batch with these sequence numbers.
    fn of(result: Result<DynamoDbEventResponse, String>, sequence_numbers: &[String]) -> Self {
        let response = match result {
            Ok(response) => response,
            Err(err) => return Outcome::Failure(err),
        };
        let mut failed = Vec::new();
        for failure in &response.batch_item_failures {
            let id = failure.item_identifier.as_deref().unwrap_or("");
            match sequence_numbers.iter().position(|s| s == id) {
                Some(index) => failed.push(index),
                None => {
                    return Outcome::Failure(format!(
                        "batchItemFailures names `{id}`, which is not a sequence number of the batch"
                    ));
                }
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
struct RetryState {
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
struct Decision {
    /// The leading records of the batch that are handled.
    done: usize,
    /// The records after those that go to the on-failure destination.
    discarded: usize,
    /// The most records of the next invocation (`None`: the batch size); the records of
    /// the batch after `done + discarded` are delivered again.
    next_limit: Option<usize>,
    /// With `discarded`: how many times they were delivered (Lambda's
    /// `approximateInvokeCount`).
    invocations: u32,
}

fn decide(
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

// ---------------------------------------------------------------------------------
// Checkpoint

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_arn: Option<String>,
    #[serde(default)]
    shards: BTreeMap<String, ShardCheckpoint>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardCheckpoint {
    /// The last record done (handled, filtered out or discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    /// Read to its end (a closed shard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    finished: bool,
}

#[derive(Debug)]
struct Checkpoint {
    path: PathBuf,
    state: CheckpointFile,
}

impl Checkpoint {
    fn load(path: &Path) -> Result<Self, String> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                format!(
                    "the stream checkpoint {} is not valid ({err}); delete it to start over",
                    path.display()
                )
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => CheckpointFile::default(),
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        Ok(Self {
            path: path.to_path_buf(),
            state,
        })
    }

    /// Writes the whole file atomically: a temporary file, synced, renamed over it.
    fn save(&self) -> Result<(), String> {
        let fail = |err: std::io::Error| format!("cannot write {}: {err}", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let temp = self.path.with_file_name(name);
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| e.to_string())?;
        let mut file = std::fs::File::create(&temp).map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&temp, &self.path).map_err(fail)
    }

    fn position(&self, shard: &str) -> Option<&str> {
        self.state.shards.get(shard)?.sequence_number.as_deref()
    }

    fn finished(&self, shard: &str) -> bool {
        self.state.shards.get(shard).is_some_and(|s| s.finished)
    }

    fn advance(&mut self, shard: &str, sequence_number: &str) {
        self.state
            .shards
            .entry(shard.to_string())
            .or_default()
            .sequence_number = Some(sequence_number.to_string());
    }

    fn finish(&mut self, shard: &str) {
        self.state
            .shards
            .entry(shard.to_string())
            .or_default()
            .finished = true;
    }
}

fn append_line(path: &Path, line: &Value) -> Result<(), String> {
    let fail = |err: std::io::Error| format!("cannot write {}: {err}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    let mut bytes = serde_json::to_vec(line).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    file.write_all(&bytes).map_err(fail)
}

// ---------------------------------------------------------------------------------
// Invoking the handler

/// Polls a future, turning a panic into an error.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic_message(panic))),
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("the handler panicked: {text}")
}

async fn invoke<H, F>(handler: &H, event: Event) -> Result<DynamoDbEventResponse, String>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    let future =
        std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))).map_err(panic_message)?;
    CatchUnwind(Box::pin(future)).await?.into_response()
}

// ---------------------------------------------------------------------------------
// The poller

/// Why following a stream stopped.
enum Interrupt {
    /// An AWS error: logged, then the stream is looked up again.
    Aws(String),
    /// The checkpoint cannot be written: the poller stops.
    Fatal(String),
}

fn aws<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> Interrupt + '_ {
    move |err| Interrupt::Aws(format!("{what}: {}", DisplayErrorContext(err)))
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

struct Poller<'a, H> {
    client: &'a Client,
    table_name: &'a str,
    mapping: &'a EventSourceMapping,
    handler: &'a H,
    on_failure: PathBuf,
    region: String,
    invocations: u64,
    followed: Option<String>,
}

impl<H, F> Poller<'_, H>
where
    H: Fn(Event) -> F,
    F: Future,
    F::Output: InvocationResult,
{
    async fn run(&mut self) -> Result<(), String> {
        let mut checkpoint = Checkpoint::load(&self.mapping.checkpoint)?;
        let mut last_error: Option<String> = None;
        loop {
            match self.follow(&mut checkpoint).await {
                Ok(()) => last_error = None,
                Err(Interrupt::Fatal(err)) => return Err(err),
                Err(Interrupt::Aws(err)) => {
                    // Log a persisting error once, not on every retry.
                    if last_error.as_deref() != Some(err.as_str()) {
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
                return Err(Interrupt::Aws(
                    "DescribeStream returned no description".into(),
                ));
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
        if checkpoint.state.stream_arn.as_deref() != Some(stream_arn.as_str()) {
            if let Some(old) = &checkpoint.state.stream_arn {
                tracing::info!(old = %old, new = %stream_arn, "the table has a new stream; starting at TRIM_HORIZON");
            }
            checkpoint.state = CheckpointFile {
                stream_arn: Some(stream_arn.clone()),
                shards: BTreeMap::new(),
            };
            checkpoint.save().map_err(Interrupt::Fatal)?;
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
                let before = checkpoint.state.shards.len();
                checkpoint
                    .state
                    .shards
                    .retain(|id, _| ids.contains(id.as_str()));
                if checkpoint.state.shards.len() != before {
                    checkpoint.save().map_err(Interrupt::Fatal)?;
                }
                for (id, parent) in listed {
                    if !readers.iter().any(|r| r.id == id) {
                        readers.push(ShardReader {
                            read_position: checkpoint.position(&id).map(str::to_string),
                            id,
                            parent,
                            iterator: None,
                            closed: false,
                            buffer: VecDeque::new(),
                            retry: RetryState::default(),
                            next_limit: None,
                        });
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
                    return Err(aws("GetRecords")(err));
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
                                .map_err(|err| err.to_string())
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
            checkpoint.save().map_err(Interrupt::Fatal)?;
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
        output
            .shard_iterator
            .ok_or_else(|| Interrupt::Aws("GetShardIterator returned no iterator".into()))
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
                checkpoint.save().map_err(Interrupt::Fatal)?;
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
                    Outcome::Failure(err) => Some(err.as_str()),
                    _ => None,
                };
                self.send_to_on_failure(stream_arn, &shard.id, &records, &decision, error)
                    .map_err(Interrupt::Fatal)?;
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
                checkpoint.save().map_err(Interrupt::Fatal)?;
            }
            if consumed < positions.len() {
                shard.next_limit = decision.next_limit;
                if decision.discarded == 0 {
                    tokio::time::sleep(self.mapping.poll_interval).await;
                }
            }
        }
    }

    /// Records discarded records like Lambda's on-failure destination would receive them
    /// (plus their keys, which Lambda leaves out).
    fn send_to_on_failure(
        &self,
        stream_arn: &str,
        shard_id: &str,
        records: &[&EventRecord],
        decision: &Decision,
        error: Option<&str>,
    ) -> Result<(), String> {
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
                "requestId": format!("local-{}", self.invocations),
                "functionArn": "local",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": decision.invocations,
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
                invocations = decision.invocations,
                error = error.unwrap_or("reported in batchItemFailures"),
                destination = %self.on_failure.display(),
                "stream record failed after its retries; sent to the on-failure destination"
            );
        }
        append_line(&self.on_failure, &line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};
    use std::sync::{Arc, Mutex};

    /// The assign function's pattern in `template.yaml`.
    fn customer_pattern() -> Value {
        json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": {
                "Keys": { "sk": { "S": [{ "prefix": "CUSTOMER#" }] } },
                "NewImage": { "written_by": { "S": ["api"] } }
            }
        })
    }

    /// A record in Lambda's format.
    fn event(name: &str, sk: &str, written_by: Option<&str>, seq: &str) -> Value {
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

    #[test]
    fn the_customer_pattern_keeps_api_writes_of_customers() {
        let p = customer_pattern();
        assert!(validate_pattern(&p).is_ok());
        assert!(pattern_matches(
            &p,
            &event("INSERT", "CUSTOMER#1", Some("api"), "1")
        ));
        assert!(pattern_matches(
            &p,
            &event("MODIFY", "CUSTOMER#1", Some("api"), "2")
        ));
        // Written by another writer, another entity, removed, or without the attribute.
        assert!(!pattern_matches(
            &p,
            &event("MODIFY", "CUSTOMER#1", Some("assign"), "3")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "SEGMENT#1", Some("api"), "4")
        ));
        assert!(!pattern_matches(
            &p,
            &event("REMOVE", "CUSTOMER#1", Some("api"), "5")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "CUSTOMER#1", None, "6")
        ));
        // A prefix is case-sensitive and anchored.
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "customer#1", Some("api"), "7")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "X#CUSTOMER#1", Some("api"), "8")
        ));
    }

    #[test]
    fn filters_are_or_ed_and_none_keeps_everything() {
        let remove = event("REMOVE", "CUSTOMER#1", Some("api"), "1");
        let insert = event("INSERT", "SEGMENT#1", None, "2");
        assert!(filters_match(&[], &remove));
        let filters = [customer_pattern(), json!({ "eventName": ["REMOVE"] })];
        assert!(filters_match(&filters, &remove));
        assert!(!filters_match(&filters, &insert));
        assert!(filters_match(
            &filters,
            &event("INSERT", "CUSTOMER#9", Some("api"), "3")
        ));
    }

    #[test]
    fn exact_values_numbers_and_booleans() {
        let e = json!({ "a": "x", "n": 5, "f": 1.5, "b": true, "z": null, "list": ["p", "q"] });
        let yes = |p: Value| assert!(pattern_matches(&p, &e), "{p} should match");
        let no = |p: Value| assert!(!pattern_matches(&p, &e), "{p} should not match");
        yes(json!({ "a": ["y", "x"] }));
        no(json!({ "a": ["y"] }));
        yes(json!({ "n": [5] }));
        yes(json!({ "n": [5.0] }));
        no(json!({ "n": ["5"] }));
        yes(json!({ "f": [1.5] }));
        yes(json!({ "b": [true] }));
        no(json!({ "b": [false] }));
        no(json!({ "b": ["true"] }));
        yes(json!({ "z": [null] }));
        // A list field matches when any element does.
        yes(json!({ "list": ["q"] }));
        no(json!({ "list": ["r"] }));
        // Every field of the pattern must match.
        yes(json!({ "a": ["x"], "n": [5] }));
        no(json!({ "a": ["x"], "n": [6] }));
        // A missing field matches no value.
        no(json!({ "missing": ["x"] }));
        no(json!({ "missing": [null] }));
    }

    #[test]
    fn prefix_suffix_and_ignore_case() {
        let e = json!({ "s": "CUSTOMER#42", "n": 42 });
        assert!(pattern_matches(
            &json!({ "s": [{ "prefix": "CUSTOMER#" }] }),
            &e
        ));
        assert!(pattern_matches(&json!({ "s": [{ "prefix": "" }] }), &e));
        assert!(!pattern_matches(
            &json!({ "s": [{ "prefix": "SEGMENT#" }] }),
            &e
        ));
        assert!(!pattern_matches(&json!({ "n": [{ "prefix": "4" }] }), &e));
        assert!(pattern_matches(&json!({ "s": [{ "suffix": "#42" }] }), &e));
        assert!(pattern_matches(
            &json!({ "s": [{ "equals-ignore-case": "customer#42" }] }),
            &e
        ));
        // Values and operators in one list.
        assert!(pattern_matches(
            &json!({ "s": ["nope", { "prefix": "CUST" }] }),
            &e
        ));
    }

    #[test]
    fn anything_but() {
        let e = json!({ "by": "api", "n": 3 });
        let m = |p: Value| pattern_matches(&p, &e);
        assert!(!m(json!({ "by": [{ "anything-but": ["api", "x"] }] })));
        assert!(m(json!({ "by": [{ "anything-but": ["assign"] }] })));
        assert!(!m(json!({ "by": [{ "anything-but": "api" }] })));
        assert!(m(json!({ "by": [{ "anything-but": "assign" }] })));
        assert!(!m(json!({ "n": [{ "anything-but": 3 }] })));
        assert!(m(json!({ "n": [{ "anything-but": [4, 5] }] })));
        assert!(!m(
            json!({ "by": [{ "anything-but": { "prefix": "ap" } }] })
        ));
        assert!(m(json!({ "by": [{ "anything-but": { "prefix": "as" } }] })));
        // anything-but does not match a missing field.
        assert!(!m(json!({ "missing": [{ "anything-but": "api" }] })));
    }

    #[test]
    fn exists_including_nested_and_missing_parents() {
        let insert = event("INSERT", "CUSTOMER#1", Some("api"), "1");
        let remove = event("REMOVE", "CUSTOMER#1", Some("api"), "2");
        let new_image_exists = json!({ "dynamodb": { "NewImage": [{ "exists": true }] } });
        assert!(pattern_matches(&new_image_exists, &insert));
        assert!(!pattern_matches(&new_image_exists, &remove));
        // A field under a missing object does not exist.
        let no_writer =
            json!({ "dynamodb": { "NewImage": { "written_by": [{ "exists": false }] } } });
        assert!(!pattern_matches(&no_writer, &insert));
        assert!(pattern_matches(&no_writer, &remove));
        let has_writer =
            json!({ "dynamodb": { "NewImage": { "written_by": { "S": [{ "exists": true }] } } } });
        assert!(pattern_matches(&has_writer, &insert));
        assert!(!pattern_matches(&has_writer, &remove));
        // Nested patterns compose with the other fields.
        let old_only = json!({
            "eventName": ["REMOVE"],
            "dynamodb": { "OldImage": { "sk": { "S": [{ "prefix": "CUSTOMER#" }] } }, "NewImage": [{ "exists": false }] }
        });
        assert!(pattern_matches(&old_only, &remove));
        assert!(!pattern_matches(&old_only, &insert));
    }

    #[test]
    fn numeric_ranges() {
        let e = json!({ "n": 5, "s": { "N": "12.5" } });
        assert!(pattern_matches(
            &json!({ "n": [{ "numeric": [">", 0, "<=", 5] }] }),
            &e
        ));
        assert!(!pattern_matches(
            &json!({ "n": [{ "numeric": [">", 5] }] }),
            &e
        ));
        assert!(pattern_matches(
            &json!({ "s": { "N": [{ "numeric": ["=", 12.5] }] } }),
            &e
        ));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            json!(["eventName"]),
            json!({ "eventName": "INSERT" }),
            json!({ "eventName": [] }),
            json!({ "eventName": [{ "wildcard": "IN*" }] }),
            json!({ "eventName": [{ "prefix": 1 }] }),
            json!({ "eventName": [{ "prefix": "A", "suffix": "B" }] }),
            json!({ "eventName": [{ "exists": "yes" }] }),
            json!({ "n": [{ "numeric": [">"] }] }),
            json!({ "n": [{ "numeric": ["~", 1] }] }),
            json!({ "n": [{ "anything-but": [] }] }),
        ] {
            assert!(validate_pattern(&bad).is_err(), "{bad} should be refused");
        }
        let mapping = mapping(
            &std::env::temp_dir().join("unused"),
            vec![json!({ "a": 1 })],
        );
        assert!(mapping.validate().unwrap_err().contains("filter pattern 0"));
        let mut zero = mapping.clone();
        zero.filters.clear();
        zero.batch_size = 0;
        assert!(zero.validate().is_err());
    }

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    fn sdk_record(name: OperationType, with_new: bool, with_old: bool) -> Record {
        let mut change = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs_and_nanos(
                1_700_000_123,
                456_000_000,
            ))
            .keys("pk", s("T#acme"))
            .keys("sk", s("CUSTOMER#1"))
            .sequence_number("1100000000017454423009")
            .size_bytes(321)
            .stream_view_type(StreamViewType::NewAndOldImages);
        if with_new {
            change = change
                .new_image("pk", s("T#acme"))
                .new_image("sk", s("CUSTOMER#1"))
                .new_image("written_by", s("api"))
                .new_image("n", AttributeValue::N("1.5".into()))
                .new_image("ok", AttributeValue::Bool(true))
                .new_image("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
                .new_image(
                    "m",
                    AttributeValue::M([("x".to_string(), AttributeValue::Null(true))].into()),
                )
                .new_image("l", AttributeValue::L(vec![s("v")]))
                .new_image("b", AttributeValue::B(b"xy".to_vec().into()));
        }
        if with_old {
            change = change
                .old_image("pk", s("T#acme"))
                .old_image("sk", s("CUSTOMER#1"))
                .old_image("written_by", s("assign"));
        }
        Record::builder()
            .event_id("e-1")
            .event_name(name)
            .event_version("1.0")
            .event_source("aws:dynamodb")
            .aws_region("eu-west-1")
            .dynamodb(change.build())
            .build()
    }

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000";

    #[test]
    fn converts_sdk_records_to_what_lambda_delivers() {
        let json = lambda_record(
            &sdk_record(OperationType::Modify, true, true),
            ARN,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(json["eventID"], "e-1");
        assert_eq!(json["eventName"], "MODIFY");
        assert_eq!(json["eventVersion"], "1.1");
        assert_eq!(json["eventSource"], "aws:dynamodb");
        assert_eq!(json["awsRegion"], "eu-west-1");
        assert_eq!(json["eventSourceARN"], ARN);
        let d = &json["dynamodb"];
        assert_eq!(d["ApproximateCreationDateTime"], 1_700_000_123);
        assert_eq!(
            d["Keys"],
            json!({ "pk": { "S": "T#acme" }, "sk": { "S": "CUSTOMER#1" } })
        );
        assert_eq!(d["NewImage"]["written_by"], json!({ "S": "api" }));
        assert_eq!(d["NewImage"]["n"], json!({ "N": "1.5" }));
        assert_eq!(d["NewImage"]["ok"], json!({ "BOOL": true }));
        assert_eq!(d["NewImage"]["tags"], json!({ "SS": ["a", "b"] }));
        assert_eq!(
            d["NewImage"]["m"],
            json!({ "M": { "x": { "NULL": true } } })
        );
        assert_eq!(d["NewImage"]["l"], json!({ "L": [{ "S": "v" }] }));
        assert_eq!(d["NewImage"]["b"], json!({ "B": "eHk=" }));
        assert_eq!(d["OldImage"]["written_by"], json!({ "S": "assign" }));
        assert_eq!(d["SequenceNumber"], "1100000000017454423009");
        assert_eq!(d["SizeBytes"], 321);
        assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert!(json.get("userIdentity").is_none());

        // What the handler gets.
        let record: EventRecord = serde_json::from_value(json).unwrap();
        assert_eq!(record.event_name, "MODIFY");
        assert_eq!(record.event_source_arn.as_deref(), Some(ARN));
        assert_eq!(
            record.change.approximate_creation_date_time.timestamp(),
            1_700_000_123
        );
        assert_eq!(
            record.change.sequence_number.as_deref(),
            Some("1100000000017454423009")
        );
        assert_eq!(record.change.keys.len(), 2);
        assert_eq!(
            record.change.keys.get("sk"),
            Some(&serde_dynamo::AttributeValue::S("CUSTOMER#1".into()))
        );
        assert_eq!(
            record.change.new_image.get("written_by"),
            Some(&serde_dynamo::AttributeValue::S("api".into()))
        );
        assert_eq!(record.change.old_image.len(), 3);
        assert_eq!(record.change.size_bytes, 321);
        assert_eq!(
            record.change.stream_view_type,
            Some(aws_lambda_events::event::dynamodb::StreamViewType::NewAndOldImages)
        );
    }

    #[test]
    fn a_remove_has_only_the_old_image_and_ttl_deletes_keep_their_identity() {
        let mut record = sdk_record(OperationType::Remove, false, true);
        record.aws_region = None;
        record.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let json = lambda_record(&record, ARN, "us-east-1").unwrap();
        assert!(json["dynamodb"].get("NewImage").is_none());
        assert_eq!(json["awsRegion"], "us-east-1");
        assert_eq!(
            json["userIdentity"],
            json!({ "type": "Service", "principalId": "dynamodb.amazonaws.com" })
        );
        let record: EventRecord = serde_json::from_value(json).unwrap();
        assert_eq!(record.event_name, "REMOVE");
        assert!(record.change.new_image.is_empty());
        assert_eq!(record.change.old_image.len(), 3);
        assert_eq!(
            record.user_identity.unwrap().principal_id,
            "dynamodb.amazonaws.com"
        );

        let mut broken = sdk_record(OperationType::Insert, true, false);
        broken.dynamodb = None;
        assert!(lambda_record(&broken, ARN, "us-east-1").is_err());
    }

    fn mapping(dir: &Path, filters: Vec<Value>) -> EventSourceMapping {
        EventSourceMapping {
            filters,
            batch_size: 4,
            maximum_retry_attempts: 2,
            bisect_batch_on_function_error: false,
            poll_interval: Duration::from_millis(1),
            checkpoint: dir.join("checkpoint.json"),
        }
    }

    fn seqs(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{i:03}")).collect()
    }

    fn response(failed: &[&str]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for id in failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id.to_string());
            response.batch_item_failures.push(failure);
        }
        response
    }

    #[test]
    fn responses_are_classified_like_lambda() {
        let batch = seqs(3);
        assert_eq!(Outcome::of(Ok(response(&[])), &batch), Outcome::Success);
        assert_eq!(
            Outcome::of(Ok(response(&["003", "002"])), &batch),
            Outcome::Partial(vec![2, 1])
        );
        assert!(matches!(
            Outcome::of(Ok(response(&["999"])), &batch),
            Outcome::Failure(_)
        ));
        assert!(matches!(
            Outcome::of(Ok(response(&[""])), &batch),
            Outcome::Failure(_)
        ));
        let mut missing = response(&[]);
        missing
            .batch_item_failures
            .push(DynamoDbBatchItemFailure::default());
        assert!(matches!(
            Outcome::of(Ok(missing), &batch),
            Outcome::Failure(_)
        ));
        assert_eq!(
            Outcome::of(Err("boom".into()), &batch),
            Outcome::Failure("boom".into())
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
        let failure = Outcome::Failure("panic".into());
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
        let failure = Outcome::Failure("panic".into());
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

    fn temp_dir(name: &str) -> PathBuf {
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

    #[test]
    fn checkpoints_are_written_whole_and_read_back() {
        let dir = temp_dir("checkpoint");
        let path = dir.join("nested/checkpoint.json");
        let mut checkpoint = Checkpoint::load(&path).unwrap();
        assert_eq!(checkpoint.state, CheckpointFile::default());
        checkpoint.state.stream_arn = Some(ARN.into());
        checkpoint.advance("shard-1", "0042");
        checkpoint.finish("shard-0");
        checkpoint.save().unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["checkpoint.json"],
            "no temporary file is left behind"
        );
        let again = Checkpoint::load(&path).unwrap();
        assert_eq!(again.state, checkpoint.state);
        assert_eq!(again.position("shard-1"), Some("0042"));
        assert!(again.finished("shard-0") && !again.finished("shard-1"));
        assert_eq!(again.position("shard-2"), None);

        std::fs::write(&path, "{not json").unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().contains("delete it"));
        let _ = std::fs::remove_dir_all(&dir);
    }

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
    ) -> Result<Checkpoint, String>
    where
        H: Fn(Event) -> F,
        F: Future,
        F::Output: InvocationResult,
    {
        let client = offline_client();
        let mut poller = Poller {
            client: &client,
            table_name: "t",
            mapping,
            handler,
            on_failure: mapping.on_failure_path(),
            region: "us-east-1".into(),
            invocations: 0,
            followed: None,
        };
        let mut shard = ShardReader {
            id: "shard-1".into(),
            parent: None,
            iterator: None,
            read_position: None,
            closed: false,
            buffer: VecDeque::new(),
            retry: RetryState::default(),
            next_limit: None,
        };
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
            Err(Interrupt::Aws(err) | Interrupt::Fatal(err)) => return Err(err),
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

/// Against a real moto (the local stack's DynamoDB API): started from `.venv` like
/// `infra/moto.sh` does, on a free port, and killed when the test ends.
#[cfg(test)]
mod moto_tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};

    struct Moto {
        child: Child,
        port: u16,
    }

    impl Moto {
        fn start() -> Self {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let python = root.join(".venv/bin/python");
            assert!(
                python.exists(),
                "moto is not installed in {}: run ./infra/setup.sh",
                root.join(".venv").display()
            );
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = Command::new(python)
                .arg(root.join("infra/moto_server.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start moto");
            let moto = Self { child, port };
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "moto did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            moto
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn sort_key(record: &EventRecord) -> String {
        match record.change.keys.get("sk") {
            Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
            other => panic!("no sort key: {other:?}"),
        }
    }

    async fn put(ddb: &aws_sdk_dynamodb::Client, table: &str, sk: &str, by: &str, n: u32) {
        use aws_sdk_dynamodb::types::AttributeValue as Av;
        ddb.put_item()
            .table_name(table)
            .item("pk", Av::S("T#acme".into()))
            .item("sk", Av::S(sk.into()))
            .item("written_by", Av::S(by.into()))
            .item("n", Av::N(n.to_string()))
            .send()
            .await
            .unwrap();
    }

    async fn create_table(store: &store::Store) {
        let started = Instant::now();
        while let Err(err) = store.ensure_table().await {
            assert!(started.elapsed() < Duration::from_secs(15), "{err}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    type Seen = Arc<Mutex<Vec<Vec<EventRecord>>>>;

    /// Runs the poller until `done` holds (or 30 s pass).
    async fn run_until<H, F>(
        client: &Client,
        table: &str,
        mapping: &EventSourceMapping,
        handler: H,
        done: impl Fn() -> bool,
    ) where
        H: Fn(Event) -> F,
        F: Future,
        F::Output: InvocationResult,
    {
        let shutdown = async {
            let started = Instant::now();
            while !done() && started.elapsed() < Duration::from_secs(30) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        run(
            client.clone(),
            table.into(),
            mapping.clone(),
            handler,
            shutdown,
        )
        .await
        .unwrap();
    }

    fn batches(seen: &Seen) -> Vec<Vec<String>> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|batch| batch.iter().map(sort_key).collect())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follows_a_moto_stream_resumes_and_restarts_with_a_new_stream() {
        let moto = Moto::start();
        let table = "streams-test";
        let config = store::StoreConfig {
            table_name: table.into(),
            endpoint_url: Some(format!("http://127.0.0.1:{}", moto.port)),
        };
        let store = store::Store::connect(&config).await;
        create_table(&store).await;
        let ddb = aws_sdk_dynamodb::Client::new(&config.sdk_config().await);
        let streams = client(&config).await;

        put(&ddb, table, "CUSTOMER#1", "api", 1).await;
        put(&ddb, table, "SEGMENT#1", "api", 1).await;
        put(&ddb, table, "CUSTOMER#1", "api", 2).await;
        put(&ddb, table, "CUSTOMER#2", "api", 1).await;
        put(&ddb, table, "CUSTOMER#3", "assign", 1).await;
        ddb.delete_item()
            .table_name(table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("T#acme".into()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("CUSTOMER#1".into()),
            )
            .send()
            .await
            .unwrap();
        put(&ddb, table, "CUSTOMER#4", "api", 1).await;

        let dir = std::env::temp_dir().join(format!("local-stack-moto-{}", moto.port));
        let _ = std::fs::remove_dir_all(&dir);
        let mapping = EventSourceMapping {
            filters: vec![json!({
                "eventName": ["INSERT", "MODIFY"],
                "dynamodb": {
                    "Keys": { "sk": { "S": [{ "prefix": "CUSTOMER#" }] } },
                    "NewImage": { "written_by": { "S": ["api"] } }
                }
            })],
            batch_size: 2,
            maximum_retry_attempts: 1,
            bisect_batch_on_function_error: false,
            poll_interval: Duration::from_millis(20),
            checkpoint: dir.join("checkpoint.json"),
        };
        let seen = Seen::default();
        let handler = |event: Event| {
            let seen = seen.clone();
            async move {
                let mut response = DynamoDbEventResponse::default();
                for record in &event.records {
                    if sort_key(record) == "CUSTOMER#2" {
                        let mut failure =
                            aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
                        failure.item_identifier = record.change.sequence_number.clone();
                        response.batch_item_failures.push(failure);
                    }
                }
                seen.lock().unwrap().push(event.records);
                response
            }
        };

        // 1. Filters, batches, a poison record retried once then sent to on-failure.
        let on_failure = mapping.on_failure_path();
        run_until(&streams, table, &mapping, &handler, || {
            on_failure.exists() && batches(&seen).last() == Some(&vec!["CUSTOMER#4".to_string()])
        })
        .await;
        assert_eq!(
            batches(&seen),
            [
                vec!["CUSTOMER#1", "CUSTOMER#1"],
                vec!["CUSTOMER#2", "CUSTOMER#4"],
                vec!["CUSTOMER#2", "CUSTOMER#4"],
                vec!["CUSTOMER#4"],
            ]
        );
        let stream_arn = streams
            .list_streams()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .streams
            .unwrap()[0]
            .stream_arn
            .clone()
            .unwrap();
        let first = seen.lock().unwrap()[0].clone();
        let (insert, modify) = (&first[0], &first[1]);
        assert_eq!(insert.event_name, "INSERT");
        assert_eq!(modify.event_name, "MODIFY");
        assert_eq!(
            insert.event_source_arn.as_deref(),
            Some(stream_arn.as_str())
        );
        assert_eq!(insert.event_version.as_deref(), Some("1.1"));
        assert_eq!(insert.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(insert.aws_region, "us-east-1");
        assert!(insert.change.old_image.is_empty());
        assert_eq!(
            modify.change.old_image.get("n"),
            Some(&serde_dynamo::AttributeValue::N("1".into()))
        );
        assert_eq!(
            modify.change.new_image.get("n"),
            Some(&serde_dynamo::AttributeValue::N("2".into()))
        );
        assert!(insert.change.size_bytes > 0);
        let age = chrono::Utc::now() - insert.change.approximate_creation_date_time;
        assert!(age.num_seconds().abs() < 120, "{age}");
        let last_seq = seen.lock().unwrap().last().unwrap()[0]
            .change
            .sequence_number
            .clone()
            .unwrap();
        let checkpoint = Checkpoint::load(&mapping.checkpoint).unwrap();
        assert_eq!(
            checkpoint.state.stream_arn.as_deref(),
            Some(stream_arn.as_str())
        );
        assert_eq!(checkpoint.state.shards.len(), 1);
        assert_eq!(
            checkpoint
                .state
                .shards
                .values()
                .next()
                .unwrap()
                .sequence_number
                .as_deref(),
            Some(last_seq.as_str())
        );
        let failed: Value =
            serde_json::from_str(std::fs::read_to_string(&on_failure).unwrap().trim()).unwrap();
        assert_eq!(failed["Keys"][0]["sk"], json!({ "S": "CUSTOMER#2" }));
        assert_eq!(
            failed["DDBStreamBatchInfo"]["streamArn"],
            stream_arn.as_str()
        );

        // 2. A restart resumes after the checkpoint.
        seen.lock().unwrap().clear();
        put(&ddb, table, "CUSTOMER#5", "api", 1).await;
        run_until(&streams, table, &mapping, &handler, || {
            !batches(&seen).is_empty()
        })
        .await;
        assert_eq!(batches(&seen), [vec!["CUSTOMER#5"]]);

        // 3. A re-created table has a new stream (moto reuses the shard id and sequence
        //    numbers): the poller starts over at its beginning.
        seen.lock().unwrap().clear();
        ddb.delete_table().table_name(table).send().await.unwrap();
        create_table(&store).await;
        put(&ddb, table, "CUSTOMER#6", "api", 1).await;
        run_until(&streams, table, &mapping, &handler, || {
            !batches(&seen).is_empty()
        })
        .await;
        assert_eq!(batches(&seen), [vec!["CUSTOMER#6"]]);
        let checkpoint = Checkpoint::load(&mapping.checkpoint).unwrap();
        assert_ne!(
            checkpoint.state.stream_arn.as_deref(),
            Some(stream_arn.as_str())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
