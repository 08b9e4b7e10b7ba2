//! The deployed path: real API Gateway HTTP API (payload format 2.0) events, parsed by
//! `lambda_http` exactly as the Lambda runtime does, handed in-process to one
//! function's handler (`rules_api::App::handle`, which serves one function's routes), against the stack's table; and the
//! DynamoDB Streams events the local event source mapping delivers ([`stream_mapping`]).

use api::{Config, Function};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Response};
use rules_api::App;
use serde_json::{Map, Value, json};
use tests::{JWT_AUDIENCE, JWT_ISSUER, Stack, unique_tenant};

async fn app(stack: &Stack) -> App {
    let api = api::App::new(Config {
        tenant_claim: "tenant_id".into(),
        cursor_secret: "lambda-events-cursor-secret-0123".into(),
        store: store::StoreConfig {
            table_name: stack.table.clone(),
            endpoint_url: Some(stack.moto_url.clone()),
        },
    })
    .await
    .expect("the app starts");
    App::new(api).expect("the engine starts")
}

/// The JWT claims API Gateway's JWT authorizer passes on: every value as a string.
fn gateway_claims(tenant: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(format!("user@{tenant}")));
    claims.insert("tenant_id".into(), json!(tenant));
    claims.insert("iss".into(), json!(JWT_ISSUER));
    claims.insert("aud".into(), json!(JWT_AUDIENCE));
    claims.insert("iat".into(), json!("1767225600"));
    claims.insert("exp".into(), json!("4102444800"));
    claims.insert("scope".into(), json!("segments:write"));
    claims
}

/// One request as API Gateway describes it to the function.
struct Event<'a> {
    method: &'a str,
    /// The route's key pattern, e.g. `/segments/{id}`.
    route: &'a str,
    path: String,
    query: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<String>,
    base64: bool,
    /// `None`: a request without an authorizer section.
    claims: Option<Map<String, Value>>,
}

impl<'a> Event<'a> {
    fn new(method: &'a str, route: &'a str, path: impl Into<String>) -> Self {
        Event {
            method,
            route,
            path: path.into(),
            query: "",
            headers: Vec::new(),
            body: None,
            base64: false,
            claims: None,
        }
    }

    fn tenant(mut self, tenant: &str) -> Self {
        self.claims = Some(gateway_claims(tenant));
        self
    }

    fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = Some(claims);
        self
    }

    fn query(mut self, query: &'a str) -> Self {
        self.query = query;
        self
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn json(mut self, body: &Value) -> Self {
        self.headers
            .push(("content-type", "application/json".into()));
        self.body = Some(body.to_string());
        self
    }

    fn base64_json(mut self, body: &Value) -> Self {
        self.headers
            .push(("content-type", "application/json".into()));
        self.body = Some(STANDARD.encode(body.to_string()));
        self.base64 = true;
        self
    }

    /// A binary body as an HTTP API sends it: base64, flagged `isBase64Encoded`. (HTTP
    /// APIs have no binary media type setting; they encode any body that is not text.)
    fn base64_bytes(mut self, content_type: &str, body: &[u8]) -> Self {
        self.headers.push(("content-type", content_type.into()));
        self.body = Some(STANDARD.encode(body));
        self.base64 = true;
        self
    }

    /// The event JSON, shaped like the API Gateway documentation's example.
    fn to_json(&self) -> String {
        let domain = "abc123defg.execute-api.us-east-1.amazonaws.com";
        let mut headers = Map::new();
        headers.insert("accept".into(), json!("application/json"));
        headers.insert("accept-encoding".into(), json!("gzip, deflate"));
        headers.insert("host".into(), json!(domain));
        headers.insert("user-agent".into(), json!("api-tests/1.0"));
        headers.insert(
            "x-amzn-trace-id".into(),
            json!("Root=1-67890abc-0123456789abcdef01234567"),
        );
        headers.insert("x-forwarded-for".into(), json!("203.0.113.7"));
        headers.insert("x-forwarded-port".into(), json!("443"));
        headers.insert("x-forwarded-proto".into(), json!("https"));
        headers.insert(
            "authorization".into(),
            json!("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"),
        );
        if let Some(body) = &self.body {
            headers.insert("content-length".into(), json!(body.len().to_string()));
        }
        for (name, value) in &self.headers {
            headers.insert(name.to_string(), json!(value));
        }
        let route_key = format!("{} {}", self.method, self.route);
        let path_parameters: Map<String, Value> = self
            .route
            .split('/')
            .zip(self.path.split('/'))
            .filter_map(|(pattern, value)| {
                let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_string(), json!(value)))
            })
            .collect();
        let query_parameters: Map<String, Value> = self
            .query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_string(), json!(v))
            })
            .collect();
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": domain,
            "domainPrefix": "abc123defg",
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "api-tests/1.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:12:00:00 +0000",
            "timeEpoch": 1_767_268_800_000_i64
        });
        if let Some(claims) = &self.claims {
            context["authorizer"] = json!({
                "jwt": {
                    "claims": claims,
                    "scopes": ["segments:write"]
                }
            });
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": self.base64
        });
        if !query_parameters.is_empty() {
            event["queryStringParameters"] = Value::Object(query_parameters);
        }
        if !path_parameters.is_empty() {
            event["pathParameters"] = Value::Object(path_parameters);
        }
        if let Some(body) = &self.body {
            event["body"] = json!(body);
        }
        event.to_string()
    }

    async fn send(&self, app: &App, function: Function) -> Answer {
        let request = lambda_http::request::from_str(&self.to_json())
            .unwrap_or_else(|e| panic!("lambda_http refused the event: {e}\n{}", self.to_json()));
        Answer::from(app.handle(function, request).await)
    }
}

/// A function's response, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    json: Value,
}

impl From<Response<Body>> for Answer {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let text = match body {
            Body::Empty => String::new(),
            Body::Text(text) => text,
            Body::Binary(bytes) => String::from_utf8(bytes).expect("a UTF-8 body"),
            _ => panic!("an unknown body kind"),
        };
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn expect(self, status: u16) -> Answer {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        self
    }

    #[track_caller]
    fn problem(self, status: u16, code: &str) -> Answer {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:#?}"
        );
        assert_eq!(self.json["status"], status, "{self:#?}");
        assert_eq!(self.json["code"], code, "{self:#?}");
        for member in ["type", "title", "detail", "instance"] {
            assert!(self.json[member].is_string(), "{member}: {self:#?}");
        }
        self
    }
}

#[tokio::test]
async fn a_segment_created_by_one_event_is_read_back_by_another() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-seg");

    let created = Event::new("POST", "/segments", "/segments")
        .tenant(&tenant)
        .json(&json!({ "name": "VIP", "description": "From an event" }))
        .send(&app, Function::Segments)
        .await
        .expect(201);
    let id = created.json["id"].as_str().expect("an id").to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/segments/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.json["name"], "VIP");
    assert_eq!(created.json["status"], "active");
    assert_eq!(created.json["customer_count"], 0);
    assert_eq!(created.json["version"], 1);

    let read = Event::new("GET", "/segments/{id}", format!("/segments/{id}"))
        .tenant(&tenant)
        .send(&app, Function::Segments)
        .await
        .expect(200);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.json, created.json);

    let listed = Event::new("GET", "/segments", "/segments")
        .tenant(&tenant)
        .query("status=active&limit=10")
        .send(&app, Function::Segments)
        .await
        .expect(200);
    assert_eq!(listed.json["items"], json!([created.json]));
    assert_eq!(listed.json["next_cursor"], Value::Null);

    // A conditional PATCH through an event, with the header as API Gateway passes it.
    let stale = Event::new("PATCH", "/segments/{id}", format!("/segments/{id}"))
        .tenant(&tenant)
        .header("if-match", "\"7\"")
        .json(&json!({ "name": "Stale" }))
        .send(&app, Function::Segments)
        .await;
    stale.problem(412, "precondition_failed");
    let patched = Event::new("PATCH", "/segments/{id}", format!("/segments/{id}"))
        .tenant(&tenant)
        .header("if-match", "\"1\"")
        .json(&json!({ "description": null }))
        .header("content-type", "application/merge-patch+json")
        .send(&app, Function::Segments)
        .await
        .expect(200);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert!(patched.json.get("description").is_none());

    // The same data through the local stack: one table, one tenant.
    let over_http = stack
        .client(&tenant)
        .get(&format!("/segments/{id}"))
        .await
        .expect(200);
    assert_eq!(over_http.json, patched.json);
    // Another tenant's event does not see it.
    Event::new("GET", "/segments/{id}", format!("/segments/{id}"))
        .tenant(&unique_tenant("evt-other"))
        .send(&app, Function::Segments)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-b64");

    let created = Event::new("POST", "/segments", "/segments")
        .tenant(&tenant)
        .base64_json(&json!({ "name": "Encoded", "status": "inactive" }))
        .send(&app, Function::Segments)
        .await
        .expect(201);
    assert_eq!(created.json["name"], "Encoded");
    assert_eq!(created.json["status"], "inactive");

    let created = Event::new("POST", "/customers", "/customers")
        .tenant(&tenant)
        .base64_json(&json!({ "id": "b64", "email": "b64@example.com", "first_name": "Zoë" }))
        .send(&app, Function::Customers)
        .await
        .expect(201);
    assert_eq!(created.json["first_name"], "Zoë");

    // A malformed document stays malformed once decoded.
    let mut broken = Event::new("POST", "/segments", "/segments")
        .tenant(&tenant)
        .header("content-type", "application/json");
    broken.body = Some(STANDARD.encode("{\"name\": "));
    broken.base64 = true;
    broken
        .send(&app, Function::Segments)
        .await
        .problem(400, "bad_request");
}

#[tokio::test]
async fn a_wasm_module_arrives_base64_encoded_and_is_stored_byte_for_byte() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-wasm");
    Event::new("POST", "/fields", "/fields")
        .tenant(&tenant)
        .json(&json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}))
        .send(&app, Function::Fields)
        .await
        .expect(201);
    Event::new("PUT", "/rules/{name}", "/rules/tiering")
        .tenant(&tenant)
        .json(&json!({"outputs": ["tier"]}))
        .send(&app, Function::Rules)
        .await
        .expect(201);

    let wasm = crate::common::example("tier-c");
    let uploaded = Event::new("PUT", "/rules/{name}/module", "/rules/tiering/module")
        .tenant(&tenant)
        .base64_bytes("application/wasm", &wasm)
        .send(&app, Function::Rules)
        .await
        .expect(201);
    assert_eq!(uploaded.json["number"], 1, "{}", uploaded.json);
    assert_eq!(uploaded.json["size"], wasm.len(), "{}", uploaded.json);
    assert_eq!(
        uploaded.json["sha256"],
        rule_engine::ModuleHash::of(&wasm).to_string(),
        "{}",
        uploaded.json
    );

    // The same bytes, not base64-decoded, would not be a module.
    let mut undecoded = Event::new("PUT", "/rules/{name}/module", "/rules/tiering/module")
        .tenant(&tenant)
        .header("content-type", "application/wasm");
    undecoded.body = Some(STANDARD.encode(&wasm));
    undecoded
        .send(&app, Function::Rules)
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn an_authorizer_without_the_tenant_claim_is_401() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-401");

    let mut without = gateway_claims(&tenant);
    without.remove("tenant_id");
    Event::new("GET", "/segments", "/segments")
        .claims(without.clone())
        .send(&app, Function::Segments)
        .await
        .problem(401, "unauthorized");
    Event::new("POST", "/segments", "/segments")
        .claims(without)
        .json(&json!({ "name": "Nobody" }))
        .send(&app, Function::Segments)
        .await
        .problem(401, "unauthorized");

    // No authorizer section at all.
    Event::new("GET", "/customers", "/customers")
        .send(&app, Function::Customers)
        .await
        .problem(401, "unauthorized");

    // A tenant claim that cannot be a key.
    let mut bad = gateway_claims(&tenant);
    bad.insert("tenant_id".into(), json!("T#other"));
    Event::new("GET", "/fields", "/fields")
        .claims(bad)
        .send(&app, Function::Fields)
        .await
        .problem(401, "unauthorized");

    // A tenant named only in a header is no tenant.
    Event::new("GET", "/segments", "/segments")
        .header("x-tenant-id", tenant.clone())
        .send(&app, Function::Segments)
        .await
        .problem(401, "unauthorized");

    // Nothing was written for anyone.
    let (items, _) = crate::common::page(&stack.client(&tenant), "/segments").await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn each_function_serves_only_its_own_routes() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-route");

    let answer = Event::new("GET", "/customers", "/customers")
        .tenant(&tenant)
        .send(&app, Function::Segments)
        .await
        .problem(404, "not_found");
    assert_eq!(answer.json["instance"], "/customers");
    Event::new("POST", "/fields", "/fields")
        .tenant(&tenant)
        .json(&json!({ "name": "tier", "type": "string" }))
        .send(&app, Function::Customers)
        .await
        .problem(404, "not_found");
    Event::new("GET", "/segments/{id}", "/segments/x")
        .tenant(&tenant)
        .send(&app, Function::Fields)
        .await
        .problem(404, "not_found");

    // A wrong method on one of the function's own paths is 405 with Allow.
    let answer = Event::new("PUT", "/segments/{id}", "/segments/x")
        .tenant(&tenant)
        .json(&json!({ "name": "x" }))
        .send(&app, Function::Segments)
        .await
        .problem(405, "method_not_allowed");
    let mut allow: Vec<&str> = answer
        .header("allow")
        .expect("an Allow header")
        .split(',')
        .map(str::trim)
        .collect();
    allow.sort_unstable();
    assert_eq!(allow, ["DELETE", "GET", "PATCH"]);

    // Nothing was created by the misrouted field definition.
    let (items, _) = crate::common::page(&stack.client(&tenant), "/fields").await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn fields_and_customers_through_their_functions() {
    let stack = Stack::get().await;
    let app = app(stack).await;
    let tenant = unique_tenant("evt-cust");

    let field = Event::new("POST", "/fields", "/fields")
        .tenant(&tenant)
        .json(&json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }))
        .send(&app, Function::Fields)
        .await
        .expect(201);
    assert_eq!(field.header("location"), Some("/fields/tier"));
    let segment = Event::new("POST", "/segments", "/segments")
        .tenant(&tenant)
        .json(&json!({ "name": "Gold" }))
        .send(&app, Function::Segments)
        .await
        .expect(201);
    let segment_id = segment.json["id"].as_str().unwrap().to_string();

    let created = Event::new("PUT", "/customers/{id}", "/customers/ev-1")
        .tenant(&tenant)
        .json(&json!({ "email": "Ev@Example.com", "segment_id": segment_id, "fields": { "tier": "AA" } }))
        .send(&app, Function::Customers)
        .await
        .expect(201);
    assert_eq!(created.header("location"), Some("/customers/ev-1"));
    assert_eq!(created.header("etag"), Some("\"1\""));

    let listed = Event::new("GET", "/customers", "/customers")
        .tenant(&tenant)
        .query("cluster.tier=AA")
        .send(&app, Function::Customers)
        .await
        .expect(200);
    assert_eq!(listed.json["items"], json!([created.json]));
    let listed = Event::new("GET", "/customers", "/customers")
        .tenant(&tenant)
        .query("email=ev%40example.com")
        .send(&app, Function::Customers)
        .await
        .expect(200);
    assert_eq!(listed.json["items"][0]["id"], "ev-1");
    Event::new("GET", "/customers", "/customers")
        .tenant(&tenant)
        .query("cluster.tier=AA&cluster.tier=A")
        .send(&app, Function::Customers)
        .await
        .problem(400, "bad_request");

    let invalid = Event::new("POST", "/customers", "/customers")
        .tenant(&tenant)
        .json(&json!({ "email": "nope", "fields": { "tier": "Z" } }))
        .send(&app, Function::Customers)
        .await
        .problem(422, "validation_failed");
    let pointers: Vec<&str> = invalid.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/email", "/fields/tier"]);

    // The counts are kept from the stream (the stack polls this table's): wait for them
    // over HTTP, then read them through the events.
    let http = stack.client(&tenant);
    crate::common::wait_for_segment_count(&http, &segment_id, 1).await;
    crate::common::wait_for_member_count(&http, "tier", 1).await;
    let segment_read = Event::new("GET", "/segments/{id}", format!("/segments/{segment_id}"))
        .tenant(&tenant)
        .send(&app, Function::Segments)
        .await
        .expect(200);
    assert_eq!(segment_read.json["customer_count"], 1);

    let text = Event::new("PATCH", "/customers/{id}", "/customers/ev-1")
        .tenant(&tenant)
        .json(&json!({ "first_name": "x" }))
        // Replaces the content type `json()` set: later headers win in the event map.
        .header("content-type", "text/plain");
    text.send(&app, Function::Customers)
        .await
        .problem(415, "unsupported_media_type");

    let deleted = Event::new("DELETE", "/customers/{id}", "/customers/ev-1")
        .tenant(&tenant)
        .header("if-match", "\"1\"")
        .send(&app, Function::Customers)
        .await
        .expect(204);
    assert!(deleted.json.is_null());
    Event::new("GET", "/customers/{id}", "/customers/ev-1")
        .tenant(&tenant)
        .send(&app, Function::Customers)
        .await
        .problem(404, "not_found");
    crate::common::wait_for_member_count(&http, "tier", 0).await;
    let field = Event::new("GET", "/fields/{name}", "/fields/tier")
        .tenant(&tenant)
        .send(&app, Function::Fields)
        .await
        .expect(200);
    assert_eq!(field.json["member_count"], 0);
}

/// The stream path: the local event source mapping (`local_stack::streams`) following a
/// table's stream on the stack's moto, with a scripted handler in place of a function.
mod stream_mapping {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use aws_lambda_events::event::dynamodb::{Event, EventRecord};
    use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    use local_stack::streams::{self, EventSourceMapping, InvocationResult};
    use serde_json::{Value, json};
    use tests::Stack;

    fn sort_key(record: &EventRecord) -> String {
        match record.change.keys.get("sk") {
            Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
            other => panic!("no sort key: {other:?}"),
        }
    }

    async fn put(ddb: &aws_sdk_dynamodb::Client, table: &str, sk: &str, by: &str, n: u32) {
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

    /// Runs the poller, with a client of its own like a new process, until `done` holds
    /// (or 30 s pass).
    async fn run_until<H, F>(
        config: &store::StoreConfig,
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
        streams::run(
            streams::client(config).await,
            config.table_name.clone(),
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

    /// The checkpoint file as the poller wrote it.
    fn checkpoint(mapping: &EventSourceMapping) -> Value {
        serde_json::from_slice(&std::fs::read(&mapping.checkpoint).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follows_a_moto_stream_resumes_and_restarts_with_a_new_stream() {
        let stack = Stack::get().await;
        // A table of its own: the test re-creates it, and the stack polls its own table.
        let table = format!("{}-streams", stack.table);
        let table = table.as_str();
        let config = store::StoreConfig {
            table_name: table.into(),
            endpoint_url: Some(stack.moto_url.clone()),
        };
        let store = store::Store::connect(&config).await;
        create_table(&store).await;
        let ddb = aws_sdk_dynamodb::Client::new(&config.sdk_config().await);
        let stream_client = streams::client(&config).await;

        put(&ddb, table, "CUSTOMER#1", "api", 1).await;
        put(&ddb, table, "SEGMENT#1", "api", 1).await;
        put(&ddb, table, "CUSTOMER#1", "api", 2).await;
        put(&ddb, table, "CUSTOMER#2", "api", 1).await;
        put(&ddb, table, "CUSTOMER#3", "assign", 1).await;
        ddb.delete_item()
            .table_name(table)
            .key("pk", Av::S("T#acme".into()))
            .key("sk", Av::S("CUSTOMER#1".into()))
            .send()
            .await
            .unwrap();
        put(&ddb, table, "CUSTOMER#4", "api", 1).await;

        let dir = std::env::temp_dir().join(table);
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
                        let mut failure = DynamoDbBatchItemFailure::default();
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
        run_until(&config, &mapping, &handler, || {
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
        let stream_arn = stream_client
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
        let saved = checkpoint(&mapping);
        assert_eq!(saved["streamArn"], stream_arn.as_str());
        let shards = saved["shards"].as_object().unwrap();
        assert_eq!(shards.len(), 1);
        assert_eq!(
            shards.values().next().unwrap()["sequenceNumber"],
            last_seq.as_str()
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
        run_until(&config, &mapping, &handler, || !batches(&seen).is_empty()).await;
        assert_eq!(batches(&seen), [vec!["CUSTOMER#5"]]);

        // 3. A re-created table has a new stream (moto reuses the shard id and sequence
        //    numbers): the poller starts over at its beginning.
        seen.lock().unwrap().clear();
        ddb.delete_table().table_name(table).send().await.unwrap();
        create_table(&store).await;
        put(&ddb, table, "CUSTOMER#6", "api", 1).await;
        run_until(&config, &mapping, &handler, || !batches(&seen).is_empty()).await;
        assert_eq!(batches(&seen), [vec!["CUSTOMER#6"]]);
        assert_ne!(checkpoint(&mapping)["streamArn"], stream_arn.as_str());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
