//! Helpers shared by the HTTP test files (each test file includes this module).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::{Client, Method, Reply, repo_root};

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Asserts that `reply` is an RFC 9457 problem with `status` and `code`, and returns it.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "unexpected reply: {reply:#?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{reply:#?}"
    );
    let body = &reply.json;
    assert_eq!(body["status"], status, "{}", reply.text);
    assert_eq!(body["code"], code, "{}", reply.text);
    assert_eq!(body["type"], "about:blank", "{}", reply.text);
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{}",
        reply.text
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{}",
        reply.text
    );
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|t| t.starts_with('/')),
        "{}",
        reply.text
    );
}

/// The JSON Pointers of a 422 problem's `errors`, sorted.
#[track_caller]
pub fn pointers(reply: &Reply) -> BTreeSet<String> {
    assert_problem(reply, 422, "validation_failed");
    let errors = reply.json["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors: {}", reply.text));
    for error in errors {
        assert!(error["pointer"].is_string(), "{}", reply.text);
        assert!(
            error["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            reply.text
        );
    }
    errors
        .iter()
        .map(|e| e["pointer"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The detail of the 422 error at `pointer`.
#[track_caller]
pub fn error_detail(reply: &Reply, pointer: &str) -> String {
    reply.json["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["pointer"] == pointer))
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_else(|| panic!("no error at {pointer}: {}", reply.text))
        .to_string()
}

/// A set of pointers, for comparing with [`pointers`].
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[track_caller]
pub fn etag(reply: &Reply) -> String {
    reply
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag: {reply:#?}"))
        .to_string()
}

/// Asserts a JSON success response carrying a single resource at `version`.
#[track_caller]
pub fn assert_entity(reply: &Reply, status: u16, version: u64) {
    assert_eq!(reply.status, status, "unexpected reply: {reply:#?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{reply:#?}"
    );
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{version}\"").as_str())
    );
    assert_eq!(reply.json["version"], version, "{}", reply.text);
}

/// `path` with one more query parameter.
pub fn with_param(path: &str, name: &str, value: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{name}={}", enc(value))
}

/// Every item of a listing, following `next_cursor` with pages of `limit`. Panics if a
/// page is larger than `limit` or the walk does not end.
pub async fn list_all(client: &Client, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = with_param(path, "limit", &limit.to_string());
        if let Some(cursor) = &cursor {
            url = with_param(&url, "cursor", cursor);
        }
        let reply = client.get(&url).await.expect(200);
        let page = reply.json["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {}", reply.text));
        assert!(
            page.len() <= limit,
            "page over limit {limit}: {}",
            reply.text
        );
        items.extend(page.iter().cloned());
        match &reply.json["next_cursor"] {
            Value::Null => return items,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor must be a string or null, got {other}"),
        }
    }
    panic!("listing {path} did not end");
}

/// One page of a listing (its items and next cursor).
pub async fn page(client: &Client, path: &str) -> (Vec<Value>, Option<String>) {
    let reply = client.get(path).await.expect(200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{reply:#?}"
    );
    let items = reply.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", reply.text))
        .clone();
    let next = match &reply.json["next_cursor"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("next_cursor must be a string or null, got {other}"),
    };
    (items, next)
}

/// The `id`s of listed items, in order.
/// `ids` in the order every customer listing returns them: shard after shard (see
/// `store::keys::shard_of`), by id within a shard.
pub fn in_listing_order<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| id.as_ref().to_owned()).collect();
    ids.sort_by_key(|id| (store::keys::shard_of(id), id.clone()));
    ids
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("item id").to_string())
        .collect()
}

/// The `id` of a created or read resource.
pub fn id(reply: &Reply) -> String {
    reply.json["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {}", reply.text))
        .to_string()
}

pub async fn create_segment(client: &Client, body: &Value) -> Value {
    client.post("/segments", body).await.expect(201).json
}

pub async fn create_field(client: &Client, body: &Value) -> Value {
    client.post("/fields", body).await.expect(201).json
}

pub async fn create_customer(client: &Client, body: &Value) -> Value {
    client.post("/customers", body).await.expect(201).json
}

/// A request with a JSON body and extra headers.
pub async fn send_json(
    client: &Client,
    method: Method,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = client.request(method, path).json(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await
}

/// A request with raw bytes and a content type (or none).
pub async fn send_raw(
    client: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Reply {
    let mut request = client.request(method, path).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await
}

/// `DELETE` with headers.
pub async fn delete_with(client: &Client, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = client.request(Method::DELETE, path);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await
}

/// The methods of an `Allow` header.
#[track_caller]
pub fn allowed(reply: &Reply) -> BTreeSet<String> {
    reply
        .header("allow")
        .unwrap_or_else(|| panic!("no Allow header: {reply:#?}"))
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Whether `s` is an RFC 3339 date-time.
pub fn is_timestamp(value: &Value) -> bool {
    value.as_str().is_some_and(chrono_like_rfc3339)
}

/// A light RFC 3339 check (the tests do not depend on chrono): `YYYY-MM-DDTHH:MM:SS`
/// followed by optional fraction and a zone.
fn chrono_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

/// A UTC RFC 3339 timestamp (`...Z`, any number of fraction digits) as a value that
/// orders like the instant: (`YYYY-MM-DDTHH:MM:SS`, nanoseconds).
#[track_caller]
pub fn instant(value: &Value) -> (String, u32) {
    let s = value
        .as_str()
        .filter(|s| is_timestamp(value) && s.ends_with('Z'))
        .unwrap_or_else(|| panic!("not a UTC timestamp: {value}"));
    let (seconds, fraction) = s[..s.len() - 1].split_at(19);
    let digits = fraction.trim_start_matches('.');
    let nanos = format!("{digits:0<9}").parse().expect("fraction digits");
    (seconds.to_string(), nanos)
}

/// Whether `id` looks like a generated id: 32 lowercase hex digits (uuid v7, simple).
pub fn is_generated_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.as_bytes()[12] == b'7'
}

/// Where the example rules are built: `$RULES_WASM_DIR` or `<repo>/target/rules-wasm`,
/// like `rules/build-examples.sh`.
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("RULES_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/rules-wasm"))
}

/// A compiled example rule (`tier-rust` or `tier-c`). Fails, never skips, when missing.
pub fn example(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}\nBuild the example rules first: rules/build-examples.sh \
             (./infra/test.sh does)",
            path.display()
        )
    })
}

/// `PUT /rules/{name}/module` with `application/wasm`.
pub async fn upload(client: &Client, name: &str, wasm: &[u8]) -> Reply {
    send_raw(
        client,
        Method::PUT,
        &format!("/rules/{name}/module"),
        Some("application/wasm"),
        wasm.to_vec(),
    )
    .await
}

/// Polls `GET path` every 250 ms until `done` holds for its JSON; panics with the last
/// reply after `limit`.
pub async fn eventually(
    client: &Client,
    path: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually_reply(client, path, limit, done).await.json
}

/// [`eventually`], returning the whole 200 reply (for its headers).
pub async fn eventually_reply(
    client: &Client,
    path: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Reply {
    let start = Instant::now();
    loop {
        let reply = client.get(path).await;
        if reply.status == 200 && done(&reply.json) {
            return reply;
        }
        assert!(
            start.elapsed() < limit,
            "{path} not there within {limit:?}; last reply: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Calls the DynamoDB (Streams) JSON API of the local server directly.
pub async fn aws_call(moto_url: &str, target: &str, body: Value) -> Value {
    let reply = reqwest::Client::new()
        .post(moto_url)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("the local DynamoDB server");
    let status = reply.status();
    let json: Value = reply.json().await.expect("a JSON answer");
    assert!(status.is_success(), "{target}: {status} {json}");
    json
}

/// A cluster field's `member_count`: how many customers have a value in it, as read now.
/// The count is kept from the table's stream, so it lags writes: wait for a value with
/// [`wait_for_member_count`] first, read it with this to check that it stays.
pub async fn member_count(client: &Client, field: &str) -> Value {
    client
        .get(&format!("/fields/{field}"))
        .await
        .expect(200)
        .json["member_count"]
        .clone()
}

/// How long a membership count (a segment's `customer_count`, a cluster field's
/// `member_count`, the per-value counts of `/clusters`) may take to catch up with the
/// writes: they are kept from the table's stream, usually well under a second behind.
pub const COUNT_SETTLE: Duration = Duration::from_secs(30);

/// Polls `GET path` until the number at the JSON Pointer `pointer` of its body is
/// `expected`, within [`COUNT_SETTLE`]; returns that reply.
pub async fn wait_for_count(client: &Client, path: &str, pointer: &str, expected: i64) -> Reply {
    wait_for_count_within(client, path, pointer, expected, COUNT_SETTLE).await
}

/// [`wait_for_count`] with another limit, for counts of thousands of writes.
pub async fn wait_for_count_within(
    client: &Client,
    path: &str,
    pointer: &str,
    expected: i64,
    limit: Duration,
) -> Reply {
    eventually_reply(client, path, limit, |body| {
        body.pointer(pointer).and_then(Value::as_i64) == Some(expected)
    })
    .await
}

/// Waits until segment `segment_id`'s `customer_count` is `expected`; returns the
/// `GET /segments/{id}` reply.
pub async fn wait_for_segment_count(client: &Client, segment_id: &str, expected: i64) -> Reply {
    wait_for_count(
        client,
        &format!("/segments/{segment_id}"),
        "/customer_count",
        expected,
    )
    .await
}

/// Waits until cluster field `field`'s `member_count` is `expected`; returns the
/// `GET /fields/{name}` reply.
pub async fn wait_for_member_count(client: &Client, field: &str, expected: i64) -> Reply {
    wait_for_count(
        client,
        &format!("/fields/{field}"),
        "/member_count",
        expected,
    )
    .await
}

/// The `values` (`[{"value", "count"}]`, largest first) of cluster field `field` in a
/// `GET /clusters` body; `Null` when the field is not listed.
pub fn cluster_values(clusters: &Value, field: &str) -> Value {
    clusters["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["field"] == field))
        .map(|item| item["values"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until `GET /clusters` lists exactly `expected` as the `values` of each of the
/// given cluster fields; returns the body.
pub async fn wait_for_cluster_values(client: &Client, expected: &[(&str, Value)]) -> Value {
    eventually(client, "/clusters", COUNT_SETTLE, |body| {
        expected
            .iter()
            .all(|(field, values)| cluster_values(body, field) == *values)
    })
    .await
}

/// A module from WAT text; panics with the text when it does not parse.
#[track_caller]
pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|error| panic!("bad WAT: {error}\n{text}"))
}

/// A rule that writes `stdout` to fd 1 with one `fd_write` and returns.
pub fn writes(stdout: &str) -> Vec<u8> {
    let mut data = String::new();
    for byte in stdout.bytes() {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'\\' || byte == b' ' {
            data.push(byte as char);
        } else {
            data.push_str(&format!("\\{byte:02x}"));
        }
    }
    wat(&format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = stdout.len()
    ))
}

/// Calls the local DynamoDB server's emulation control (`/_emulation/latency`, see
/// `infra/moto_server.py`); panics unless it answers 2xx.
pub async fn emulation(
    stack: &tests::Stack,
    method: reqwest::Method,
    query: &[(&str, &str)],
    body: Option<&Value>,
) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/_emulation/latency", stack.moto_url))
        .query(query);
    if let Some(body) = body {
        request = request.json(body);
    }
    let reply = request.send().await.expect("the local DynamoDB server");
    assert!(
        reply.status().is_success(),
        "{}",
        reply.text().await.unwrap_or_default()
    );
}

/// Gives one table of the local DynamoDB server a latency per operation class (ms).
pub async fn set_latency(stack: &tests::Stack, setting: Value) {
    emulation(stack, reqwest::Method::POST, &[], Some(&setting)).await;
}

/// The sequence numbers a stream reader's answer names as failed, in its order.
pub fn failed_sequences(
    response: aws_lambda_events::event::streams::DynamoDbEventResponse,
) -> Vec<String> {
    response
        .batch_item_failures
        .into_iter()
        .filter_map(|failure| failure.item_identifier)
        .collect()
}

/// The two cluster fields the example rule writes: `tier` (AA/A/B) and `distributor`.
pub async fn tier_clusters(client: &Client) {
    for field in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
    ] {
        create_field(client, &field).await;
    }
}

/// Fields the example rule reads and writes, and the `tiering` rule with the Rust
/// example uploaded as version 1. Disabled, uploading starts no job.
pub async fn tiering_rule(client: &Client, enabled: bool) {
    tier_clusters(client).await;
    for field in [
        json!({"name": "annual_revenue", "type": "string"}),
        json!({"name": "customer_type", "type": "string"}),
    ] {
        create_field(client, &field).await;
    }
    client
        .put(
            "/rules/tiering",
            &json!({"outputs": ["tier", "distributor"], "enabled": enabled}),
        )
        .await
        .expect(201);
    let reply = upload(client, "tiering", &example("tier-rust")).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// Waits until the stream has delivered every record written so far: creates a customer
/// of a fresh tenant with an enabled rule and waits for the rule's answer. The stream has
/// one shard, read in order, so everything written before that customer was handled
/// (customers of a disabled rule then never get assigned behind a backfill's back).
pub async fn drain_stream(sentinel: &Client) {
    tiering_rule(sentinel, true).await;
    create_customer(
        sentinel,
        &json!({"id": "probe", "email": "probe@example.com",
                "fields": {"annual_revenue": "150000"}}),
    )
    .await;
    eventually(sentinel, "/customers/probe", Duration::from_secs(60), |c| {
        c["fields"]["tier"] == "AA"
    })
    .await;
}
