//! `/rules`: configuration, module uploads (the example rules compiled from source by
//! `rules/build-examples.sh`, and hostile modules written as WAT), versions, pinning,
//! test runs that report everything and write nothing, and tenant isolation.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::{Client, Method, Reply, Stack, unique_tenant};

/// The largest module an upload accepts (`rule_engine::DEFAULT_MAX_MODULE_BYTES`).
const MAX_MODULE_BYTES: usize = 4 * 1024 * 1024;
/// The engine's default fuel per run (`rule_engine::Limits::DEFAULT_FUEL`).
const DEFAULT_FUEL: u64 = 11_000_000;
/// The engine's default memory per run.
const DEFAULT_MEMORY_BYTES: u64 = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------
// Modules

const INFINITE_LOOP: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#;

/// Grows memory by 1 MiB at a time until growth fails, then traps.
const MEMORY_BOMB: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))"#;

/// Logs a reason, then `proc_exit(3)`.
const EXIT_3: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "giving up\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 10))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3))))"#;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------
// Requests

fn rule_path(name: &str) -> String {
    format!("/rules/{name}")
}

async fn put_rule(client: &Client, name: &str, body: &Value) -> Reply {
    client.put(&rule_path(name), body).await
}

/// Uploads a module that must be accepted as version `number`; returns the version.
async fn upload_ok(client: &Client, name: &str, wasm: &[u8], number: u64) -> Value {
    let reply = upload(client, name, wasm).await;
    assert_eq!(reply.status, 201, "upload refused: {reply:#?}");
    assert_eq!(reply.json["number"], number, "{}", reply.text);
    reply.json
}

async fn test_rule(client: &Client, name: &str, body: &Value) -> Reply {
    client.post(&format!("/rules/{name}/test"), body).await
}

/// A test run that answered 200 with the documented body.
#[track_caller]
fn assert_run(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "unexpected reply: {reply:#?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{reply:#?}"
    );
    let keys: BTreeSet<&str> = reply
        .json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {}", reply.text))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "rule",
            "version",
            "ok",
            "output",
            "error",
            "verdict",
            "logs",
            "fuel_used",
            "duration_us",
            "memory_bytes",
        ]),
        "{}",
        reply.text
    );
    let body = &reply.json;
    assert!(body["ok"].is_boolean(), "{}", reply.text);
    assert!(body["logs"].is_string(), "{}", reply.text);
    assert!(body["fuel_used"].is_u64(), "{}", reply.text);
    assert!(body["duration_us"].is_u64(), "{}", reply.text);
    assert!(body["memory_bytes"].is_u64(), "{}", reply.text);
    assert!(body["verdict"]["valid"].is_boolean(), "{}", reply.text);
    body
}

/// A successful run whose output passed every check: returns the assigned clusters.
#[track_caller]
fn assert_ok_run(reply: &Reply, rule: &str, version: u64) -> Value {
    let body = assert_run(reply);
    assert_eq!(body["rule"], rule, "{}", reply.text);
    assert_eq!(body["version"], version, "{}", reply.text);
    assert_eq!(body["ok"], true, "{}", reply.text);
    assert_eq!(body["error"], Value::Null, "{}", reply.text);
    assert_eq!(body["verdict"]["valid"], true, "{}", reply.text);
    assert!(body["fuel_used"].as_u64().unwrap() > 0, "{}", reply.text);
    assert!(body["memory_bytes"].as_u64().unwrap() > 0, "{}", reply.text);
    body["verdict"]["assignment"]["clusters"].clone()
}

/// A run in which the rule itself failed: returns the error `{code, message}`.
#[track_caller]
fn assert_failed_run(reply: &Reply) -> Value {
    let body = assert_run(reply);
    assert_eq!(body["ok"], false, "{}", reply.text);
    assert_eq!(body["output"], Value::Null, "{}", reply.text);
    assert_eq!(
        body["verdict"],
        json!({"valid": false, "errors": []}),
        "{}",
        reply.text
    );
    let error = body["error"].clone();
    assert!(error["code"].is_string(), "{}", reply.text);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    error
}

/// A run whose output parsed but failed the domain checks: returns `(pointer, detail)`s.
#[track_caller]
fn assert_refused_output(reply: &Reply, output: &Value) -> Vec<(String, String)> {
    let body = assert_run(reply);
    assert_eq!(body["ok"], false, "{}", reply.text);
    assert_eq!(body["error"], Value::Null, "{}", reply.text);
    assert_eq!(&body["output"], output, "{}", reply.text);
    assert_eq!(body["verdict"]["valid"], false, "{}", reply.text);
    assert!(
        body["verdict"].get("assignment").is_none(),
        "{}",
        reply.text
    );
    body["verdict"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no verdict errors: {}", reply.text))
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap_or_default().to_string(),
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// What a rule looks like from outside: its ETag, body and versions.
async fn rule_state(client: &Client, name: &str) -> (String, Value, Value) {
    let rule = client.get(&rule_path(name)).await;
    assert_entity(&rule, 200, rule.json["version"].as_u64().unwrap_or(0));
    let versions = client
        .get(&format!("/rules/{name}/versions"))
        .await
        .expect(200);
    assert_eq!(
        versions.json["next_cursor"],
        Value::Null,
        "{}",
        versions.text
    );
    (etag(&rule), rule.json, versions.json["items"].clone())
}

/// A customer as read, with its ETag.
async fn customer_state(client: &Client, id: &str) -> (String, Value) {
    let reply = client.get(&format!("/customers/{id}")).await.expect(200);
    (etag(&reply), reply.json)
}

// ---------------------------------------------------------------------------------
// Tenant setup

struct Schema {
    retail: String,
}

/// The fields the example rules read and write, an active segment `Retail` and an
/// inactive one `Old`. `revenue_type` is the type of `annual_revenue`.
async fn schema(client: &Client, revenue_type: &str) -> Schema {
    for body in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
        json!({"name": "annual_revenue", "type": revenue_type}),
        json!({"name": "customer_type", "type": "string"}),
        json!({"name": "wholesale", "type": "boolean"}),
    ] {
        create_field(client, &body).await;
    }
    let retail = id(&client
        .post("/segments", &json!({"name": "Retail"}))
        .await
        .expect(201));
    client
        .post("/segments", &json!({"name": "Old", "status": "inactive"}))
        .await
        .expect(201);
    Schema { retail }
}

/// `PUT /rules/tiering` declaring both clusters of the example rules. The rule stays
/// disabled (the default): test runs do not need it enabled, and a disabled rule is
/// never run by the assign function on customer writes, so whatever this file reads
/// back from a customer was written by the test alone.
async fn tiering_rule(client: &Client) -> Reply {
    let reply = put_rule(
        client,
        "tiering",
        &json!({"description": "Tier by revenue", "outputs": ["tier", "distributor"]}),
    )
    .await;
    assert_entity(&reply, 201, 1);
    reply
}

// ---------------------------------------------------------------------------------
// 1. The Rust example, end to end

#[tokio::test]
async fn rust_example_is_uploaded_listed_and_tested_without_writing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-rust"));
    schema(&client, "decimal").await;

    // Configuration.
    let created = tiering_rule(&client).await;
    assert_eq!(created.header("location"), Some("/rules/tiering"));
    let rule = &created.json;
    assert_eq!(rule["name"], "tiering");
    assert_eq!(rule["description"], "Tier by revenue");
    assert_eq!(rule["outputs"], json!(["tier", "distributor"]));
    assert_eq!(rule["enabled"], false);
    assert_eq!(rule["segment_output"], false);
    assert_eq!(rule["priority"], 100);
    assert_eq!(rule["latest_version"], 0);
    assert_eq!(rule["limits"], json!({}));
    assert!(rule.get("pinned_version").is_none(), "{}", created.text);
    assert!(is_timestamp(&rule["created_at"]), "{}", created.text);
    let read = client.get("/rules/tiering").await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, created.json);
    let listed = client.get("/rules").await.expect(200);
    assert_eq!(listed.json["items"], json!([created.json]));

    // No module yet: nothing to test, no versions.
    let reply = test_rule(
        &client,
        "tiering",
        &json!({"customer": {"email": "a@b.co"}}),
    )
    .await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(
        client.get("/rules/tiering/versions").await.expect(200).json["items"],
        json!([])
    );

    // Upload the module built from rules/examples/tier-rust.
    let wasm = example("tier-rust");
    let reply = upload(&client, "tiering", &wasm).await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    assert_eq!(reply.header("location"), Some("/rules/tiering/versions/1"));
    assert_eq!(
        reply.header("etag"),
        Some("\"2\""),
        "the rule's next version"
    );
    let version = reply.json.clone();
    assert_eq!(version["rule"], "tiering");
    assert_eq!(version["number"], 1);
    assert_eq!(version["sha256"], sha256_hex(&wasm));
    assert_eq!(version["size"], wasm.len() as u64);
    assert!(is_timestamp(&version["created_at"]), "{}", reply.text);

    let read = client.get("/rules/tiering").await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json["latest_version"], 1);
    assert!(read.json.get("pinned_version").is_none(), "{}", read.text);
    let versions = client.get("/rules/tiering/versions").await.expect(200);
    assert_eq!(
        versions.json,
        json!({"items": [version], "next_cursor": null})
    );
    let one = client.get("/rules/tiering/versions/1").await.expect(200);
    assert_eq!(one.json, version);
    for missing in ["2", "0", "abc"] {
        let reply = client
            .get(&format!("/rules/tiering/versions/{missing}"))
            .await;
        assert_problem(&reply, 404, "not_found");
    }

    // A stored customer whose stored clusters differ from what the rule computes.
    create_customer(
        &client,
        &json!({"id": "ana", "email": "ana@example.com", "first_name": "Ana",
                "fields": {"annual_revenue": "12500.50", "customer_type": "distributor",
                           "tier": "B", "distributor": false}}),
    )
    .await;
    let customer_before = customer_state(&client, "ana").await;
    let rule_before = rule_state(&client, "tiering").await;

    let reply = test_rule(&client, "tiering", &json!({"customer_id": "ana"})).await;
    let clusters = assert_ok_run(&reply, "tiering", 1);
    assert_eq!(clusters, json!({"tier": "A", "distributor": true}));
    assert_eq!(
        reply.json["output"],
        json!({"clusters": {"tier": "A", "distributor": true}}),
        "the rule's own output, as it wrote it"
    );
    assert_eq!(
        reply.json["verdict"],
        json!({"valid": true, "assignment": {"clusters": {"tier": "A", "distributor": true}}}),
        "no segment decision: the example leaves the segment unchanged"
    );
    let logs = reply.json["logs"].as_str().unwrap();
    assert!(
        logs.contains("tiering v1: customer ana revenue 12500.5 -> tier A"),
        "{logs}"
    );

    // The same version, asked for explicitly.
    let reply = test_rule(
        &client,
        "tiering",
        &json!({"customer_id": "ana", "version": 1}),
    )
    .await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 1),
        json!({"tier": "A", "distributor": true})
    );

    // Inline customers: every tier and both ways of being a distributor.
    let cases = [
        (
            json!({"id": "inline-1", "email": "ana@example.com",
                   "fields": {"annual_revenue": "250000", "wholesale": true}}),
            json!({"tier": "AA", "distributor": true}),
        ),
        (
            json!({"email": "x@example.com",
                   "fields": {"annual_revenue": 100000, "customer_type": "retail"}}),
            json!({"tier": "AA", "distributor": false}),
        ),
        (
            json!({"email": "x@example.com",
                   "fields": {"annual_revenue": 10000, "customer_type": "distributor"}}),
            json!({"tier": "A", "distributor": true}),
        ),
        (
            json!({"email": "x@example.com",
                   "fields": {"annual_revenue": "9999.99", "wholesale": false}}),
            json!({"tier": "B", "distributor": false}),
        ),
        (
            json!({"email": "x@example.com"}),
            json!({"tier": "B", "distributor": false}),
        ),
    ];
    for (customer, expected) in &cases {
        let reply = test_rule(&client, "tiering", &json!({"customer": customer})).await;
        assert_eq!(
            &assert_ok_run(&reply, "tiering", 1),
            expected,
            "{customer}: {}",
            reply.text
        );
    }
    let reply = test_rule(&client, "tiering", &json!({"customer": cases[0].0})).await;
    assert!(
        reply.json["logs"]
            .as_str()
            .unwrap()
            .contains("customer inline-1 revenue 250000 -> tier AA"),
        "{}",
        reply.text
    );

    // Bad requests are refused before anything runs.
    let reply = test_rule(
        &client,
        "tiering",
        &json!({"customer": {"email": "nope", "fields": {"annual_revenue": "lots", "ghost": 1}}}),
    )
    .await;
    assert_eq!(
        pointers(&reply),
        set(&[
            "/customer/email",
            "/customer/fields/annual_revenue",
            "/customer/fields/ghost"
        ])
    );
    for body in [
        json!({}),
        json!({"customer_id": "ana", "customer": {"email": "a@b.co"}}),
    ] {
        let reply = test_rule(&client, "tiering", &body).await;
        assert_eq!(pointers(&reply), set(&["/"]), "{body}");
    }
    for body in [json!({"customer_id": "nobody"}), json!({"customer_id": 5})] {
        let reply = test_rule(&client, "tiering", &body).await;
        assert_eq!(pointers(&reply), set(&["/customer_id"]), "{body}");
    }
    for version in [json!(2), json!(0), json!("1"), json!(-1)] {
        let reply = test_rule(
            &client,
            "tiering",
            &json!({"customer_id": "ana", "version": version}),
        )
        .await;
        assert_eq!(pointers(&reply), set(&["/version"]), "version {version}");
    }
    let reply = send_raw(
        &client,
        Method::POST,
        "/rules/tiering/test",
        Some("application/json"),
        "{not json",
    )
    .await;
    assert_problem(&reply, 400, "bad_request");
    let reply = send_raw(
        &client,
        Method::POST,
        "/rules/tiering/test",
        Some("text/plain"),
        json!({"customer_id": "ana"}).to_string(),
    )
    .await;
    assert_problem(&reply, 415, "unsupported_media_type");
    assert_problem(
        &test_rule(&client, "nosuchrule", &json!({"customer_id": "ana"})).await,
        404,
        "not_found",
    );

    // Test runs wrote nothing: not the customer, not the rule, not its versions.
    assert_eq!(customer_state(&client, "ana").await, customer_before);
    assert_eq!(customer_before.1["fields"]["tier"], "B");
    assert_eq!(customer_before.1["fields"]["distributor"], false);
    assert_eq!(rule_state(&client, "tiering").await, rule_before);
    let customers = client.get("/customers").await.expect(200);
    assert_eq!(
        ids(customers.json["items"].as_array().unwrap()),
        ["ana"],
        "inline test customers are never stored"
    );
}

// ---------------------------------------------------------------------------------
// 2. The C example gives the same answers

#[tokio::test]
async fn c_example_answers_exactly_like_the_rust_example() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-c"));
    // A string `annual_revenue` lets the inputs carry values the rules must refuse.
    schema(&client, "string").await;
    tiering_rule(&client).await;
    let rust = example("tier-rust");
    let c = example("tier-c");
    let v1 = upload_ok(&client, "tiering", &rust, 1).await;
    let v2 = upload_ok(&client, "tiering", &c, 2).await;
    assert_eq!(v2["sha256"], sha256_hex(&c));
    assert_eq!(v2["size"], c.len() as u64);
    assert_ne!(v1["sha256"], v2["sha256"]);
    let versions = client.get("/rules/tiering/versions").await.expect(200);
    assert_eq!(versions.json["items"], json!([v1, v2]));

    create_customer(
        &client,
        &json!({"id": "bob", "email": "bob@example.com",
                "fields": {"annual_revenue": "100000", "customer_type": "retail"}}),
    )
    .await;
    let before = customer_state(&client, "bob").await;

    // No version: the latest, which is the C module.
    let reply = test_rule(&client, "tiering", &json!({"customer_id": "bob"})).await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 2),
        json!({"tier": "AA", "distributor": false})
    );
    assert!(
        reply.json["logs"]
            .as_str()
            .unwrap()
            .contains("tier-c: revenue 100000 -> tier AA"),
        "{}",
        reply.text
    );

    let cases: [(Value, Value); 9] = [
        (
            json!({"annual_revenue": "250000", "customer_type": "distributor"}),
            json!({"tier": "AA", "distributor": true}),
        ),
        (
            json!({"annual_revenue": "100000.00"}),
            json!({"tier": "AA", "distributor": false}),
        ),
        (
            json!({"annual_revenue": "99999.99", "wholesale": true}),
            json!({"tier": "A", "distributor": true}),
        ),
        (
            json!({"annual_revenue": "12500.50", "wholesale": false}),
            json!({"tier": "A", "distributor": false}),
        ),
        (
            json!({"annual_revenue": "10000"}),
            json!({"tier": "A", "distributor": false}),
        ),
        (
            json!({"annual_revenue": "9999.99", "customer_type": "Distributor"}),
            json!({"tier": "B", "distributor": false}),
        ),
        (
            json!({"annual_revenue": "-5", "customer_type": "retail"}),
            json!({"tier": "B", "distributor": false}),
        ),
        (json!({}), json!({"tier": "B", "distributor": false})),
        (
            json!({"customer_type": "distributor", "wholesale": true}),
            json!({"tier": "B", "distributor": true}),
        ),
    ];
    for (fields, expected) in &cases {
        let customer = json!({"email": "c@example.com", "fields": fields});
        let mut outputs = Vec::new();
        for version in [1, 2] {
            let reply = test_rule(
                &client,
                "tiering",
                &json!({"customer": customer, "version": version}),
            )
            .await;
            assert_eq!(
                &assert_ok_run(&reply, "tiering", version),
                expected,
                "version {version}, fields {fields}: {}",
                reply.text
            );
            outputs.push((reply.json["output"].clone(), reply.json["verdict"].clone()));
        }
        assert_eq!(outputs[0], outputs[1], "fields {fields}");
    }

    // Values that are not numbers fail both rules the same way, with the reason logged.
    for revenue in ["lots", "1e9"] {
        let customer = json!({"email": "c@example.com", "fields": {"annual_revenue": revenue}});
        let mut errors = Vec::new();
        for version in [1, 2] {
            let reply = test_rule(
                &client,
                "tiering",
                &json!({"customer": customer, "version": version}),
            )
            .await;
            let error = assert_failed_run(&reply);
            let logs = reply.json["logs"].as_str().unwrap();
            assert!(
                logs.contains("annual_revenue") && logs.contains("not a number"),
                "version {version}: {logs}"
            );
            errors.push(error);
        }
        assert_eq!(
            errors[0],
            json!({"code": "exit", "message": "rule exited with status 1"})
        );
        assert_eq!(errors[0], errors[1], "{revenue}");
    }

    assert_eq!(customer_state(&client, "bob").await, before);
}

// ---------------------------------------------------------------------------------
// 3. Hostile uploads

#[tokio::test]
async fn hostile_uploads_are_refused_and_create_no_version() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-hostile-up"));
    schema(&client, "decimal").await;
    tiering_rule(&client).await;
    let before = rule_state(&client, "tiering").await;

    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown import",
            wat(r#"(module
                 (import "env" "x" (func $x))
                 (memory (export "memory") 1)
                 (func (export "_start") (call $x)))"#),
            "unknown import `env::x`",
        ),
        (
            "forbidden import",
            wat(r#"(module
                 (import "wasi_snapshot_preview1" "poll_oneoff"
                   (func (param i32 i32 i32 i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")))"#),
            "import `wasi_snapshot_preview1::poll_oneoff` is not allowed",
        ),
        (
            "mistyped import",
            wat(r#"(module
                 (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")))"#),
            "ABI v1 expects (i32, i32, i32, i32) -> i32",
        ),
        (
            "invalid bytes",
            b"\0asm this is not a module".to_vec(),
            "not a valid WebAssembly module",
        ),
        (
            "text, not binary",
            INFINITE_LOOP.as_bytes().to_vec(),
            "not a valid WebAssembly module",
        ),
        (
            "missing _start",
            wat(r#"(module (memory (export "memory") 1) (func (export "main")))"#),
            "missing export `_start`",
        ),
        (
            "missing memory",
            wat(r#"(module (memory 1) (func (export "_start")))"#),
            "missing export `memory`",
        ),
        (
            "_start with a parameter",
            wat(r#"(module (memory (export "memory") 1) (func (export "_start") (param i32)))"#),
            "export `_start` must be a function with no parameters and no results",
        ),
        (
            "initial memory over the tenant maximum (64 MiB)",
            wat(r#"(module (memory (export "memory") 1025) (func (export "_start")))"#),
            "module needs 67174400 bytes of memory to start; the limit is 67108864",
        ),
        (
            "invalid bytes at exactly the size limit",
            vec![0u8; MAX_MODULE_BYTES],
            "not a valid WebAssembly module",
        ),
    ];
    let mut details = BTreeSet::new();
    for (case, wasm, reason) in &refused {
        let reply = upload(&client, "tiering", wasm).await;
        assert_eq!(pointers(&reply), set(&["/module"]), "{case}");
        let detail = error_detail(&reply, "/module");
        assert!(detail.contains(reason), "{case}: {detail}");
        details.insert(detail);
        assert_eq!(rule_state(&client, "tiering").await, before, "{case}");
    }
    assert!(details.len() >= refused.len() - 2, "{details:#?}");

    // Over the module limit: 413 before anything is parsed.
    let reply = upload(&client, "tiering", &vec![0u8; MAX_MODULE_BYTES + 1]).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains(&MAX_MODULE_BYTES.to_string()),
        "{}",
        reply.text
    );

    // Anything but a wasm media type: 415, even with a valid module.
    let good = writes(r#"{"clusters":{"tier":"AA"}}"#);
    for content_type in [
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = send_raw(
            &client,
            Method::PUT,
            "/rules/tiering/module",
            content_type,
            good.clone(),
        )
        .await;
        assert_problem(&reply, 415, "unsupported_media_type");
        assert!(
            reply.json["detail"]
                .as_str()
                .unwrap()
                .contains("application/wasm"),
            "{}",
            reply.text
        );
    }
    assert_eq!(rule_state(&client, "tiering").await, before);

    // A module for a rule that does not exist.
    let reply = upload(&client, "ghost", &good).await;
    assert_problem(&reply, 404, "not_found");
    assert_problem(&client.get("/rules/ghost").await, 404, "not_found");

    // Refusals consumed no version number: the first good module is version 1, and
    // `application/octet-stream` is accepted as well.
    upload_ok(&client, "tiering", &good, 1).await;
    let reply = send_raw(
        &client,
        Method::PUT,
        "/rules/tiering/module",
        Some("application/octet-stream"),
        writes(r#"{"clusters":{"tier":"B"}}"#),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    assert_eq!(reply.json["number"], 2);
    // Media types are case-insensitive and may carry parameters.
    let reply = send_raw(
        &client,
        Method::PUT,
        "/rules/tiering/module",
        Some("Application/WASM; charset=binary"),
        writes(r#"{"clusters":{"tier":"A"}}"#),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    assert_eq!(reply.json["number"], 3);
    let (_, rule, versions) = rule_state(&client, "tiering").await;
    assert_eq!(rule["latest_version"], 3);
    assert_eq!(versions.as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------
// 4. Runtime failures

#[tokio::test]
async fn runtime_failures_are_reported_with_distinct_reasons_and_write_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-hostile-run"));
    let schema = schema(&client, "decimal").await;
    let reply = put_rule(
        &client,
        "hostile",
        &json!({"outputs": ["tier"], "segment_output": true}),
    )
    .await;
    assert_entity(&reply, 201, 1);
    create_customer(
        &client,
        &json!({"id": "cat", "email": "cat@example.com", "segment_id": schema.retail,
                "fields": {"tier": "A", "annual_revenue": "5"}}),
    )
    .await;
    let customer_before = customer_state(&client, "cat").await;
    let mut number = 0;
    let mut reasons = BTreeSet::new();

    // Failures of the rule itself: no output, an error with a stable code.
    let failures: [(&str, Vec<u8>, &str, &str); 6] = [
        (
            "infinite loop",
            wat(INFINITE_LOOP),
            "out_of_fuel",
            "rule ran out of fuel (limit 11000000)",
        ),
        (
            "memory bomb",
            wat(MEMORY_BOMB),
            "memory_limit",
            "the limit is 16777216",
        ),
        (
            "non-zero exit",
            wat(EXIT_3),
            "exit",
            "rule exited with status 3",
        ),
        (
            "invalid JSON",
            writes("tier=AA"),
            "output_not_json",
            "output is not valid JSON",
        ),
        (
            "wrong shape",
            writes(r#"{"clusters": ["tier", "AA"]}"#),
            "output_shape",
            "`clusters` must be an object",
        ),
        (
            "unknown top-level key",
            writes(r#"{"clusters": {}, "tier": "AA"}"#),
            "output_shape",
            "unknown key `tier`",
        ),
    ];
    for (case, wasm, code, message) in &failures {
        number += 1;
        upload_ok(&client, "hostile", wasm, number).await;
        let reply = test_rule(&client, "hostile", &json!({"customer_id": "cat"})).await;
        assert_eq!(reply.json["version"], number, "{case}");
        let error = assert_failed_run(&reply);
        assert_eq!(error["code"], *code, "{case}: {}", reply.text);
        let text = error["message"].as_str().unwrap();
        assert!(text.contains(message), "{case}: {text}");
        reasons.insert(text.to_string());
        match *case {
            "infinite loop" => assert_eq!(reply.json["fuel_used"], DEFAULT_FUEL),
            "memory bomb" => {
                let peak = reply.json["memory_bytes"].as_u64().unwrap();
                assert!(
                    peak > 8 << 20 && peak <= DEFAULT_MEMORY_BYTES,
                    "{case}: {peak}"
                );
            }
            "non-zero exit" => assert!(
                reply.json["logs"].as_str().unwrap().contains("giving up"),
                "{case}: {}",
                reply.text
            ),
            _ => {}
        }
    }
    assert_eq!(reasons.len(), failures.len(), "{reasons:#?}");

    // Outputs that parse but must not be written: a verdict naming what is wrong.
    let refusals: [(&str, &str, &str, &str); 6] = [
        (
            "undeclared output field",
            r#"{"clusters": {"distributor": true}}"#,
            "/clusters/distributor",
            "is not one of the rule's declared outputs",
        ),
        (
            "unknown field",
            r#"{"clusters": {"ghost": 1}}"#,
            "/clusters/ghost",
            "is not one of the rule's declared outputs",
        ),
        (
            "value not in the enum",
            r#"{"clusters": {"tier": "Z"}}"#,
            "/clusters/tier",
            "must be one of AA, A, B",
        ),
        (
            "value of the wrong type",
            r#"{"clusters": {"tier": 7}}"#,
            "/clusters/tier",
            "must be a string",
        ),
        (
            "inactive segment",
            r#"{"clusters": {"tier": "AA"}, "segment": "Old"}"#,
            "/segment",
            "segment `Old` is inactive",
        ),
        (
            "unknown segment",
            r#"{"clusters": {}, "segment": "Platinum"}"#,
            "/segment",
            "no segment is named `Platinum`",
        ),
    ];
    let mut verdicts = BTreeSet::new();
    for (case, stdout, pointer, detail) in &refusals {
        number += 1;
        upload_ok(&client, "hostile", &writes(stdout), number).await;
        let reply = test_rule(&client, "hostile", &json!({"customer_id": "cat"})).await;
        let output: Value = serde_json::from_str(stdout).unwrap();
        let errors = assert_refused_output(&reply, &output);
        assert_eq!(
            errors,
            [(pointer.to_string(), detail.to_string())],
            "{case}: {}",
            reply.text
        );
        verdicts.insert(errors);
    }
    assert_eq!(verdicts.len(), refusals.len());

    // Every problem at once is reported at once.
    number += 1;
    let stdout = r#"{"clusters": {"tier": "Z", "distributor": true}, "segment": "Old"}"#;
    upload_ok(&client, "hostile", &writes(stdout), number).await;
    let reply = test_rule(&client, "hostile", &json!({"customer_id": "cat"})).await;
    let errors = assert_refused_output(&reply, &serde_json::from_str(stdout).unwrap());
    let pointers: BTreeSet<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        BTreeSet::from(["/clusters/tier", "/clusters/distributor", "/segment"])
    );

    // Positive controls on the same rule: an active segment by name (any case), a
    // null cluster, and clearing the segment.
    number += 1;
    upload_ok(
        &client,
        "hostile",
        &writes(r#"{"clusters": {"tier": "AA"}, "segment": "retail"}"#),
        number,
    )
    .await;
    let reply = test_rule(&client, "hostile", &json!({"customer_id": "cat"})).await;
    assert_ok_run(&reply, "hostile", number);
    assert_eq!(
        reply.json["verdict"]["assignment"],
        json!({"clusters": {"tier": "AA"}, "segment_id": schema.retail})
    );
    number += 1;
    upload_ok(
        &client,
        "hostile",
        &writes(r#"{"clusters": {"tier": null}, "segment": null}"#),
        number,
    )
    .await;
    let reply = test_rule(&client, "hostile", &json!({"customer_id": "cat"})).await;
    assert_ok_run(&reply, "hostile", number);
    assert_eq!(
        reply.json["verdict"]["assignment"],
        json!({"clusters": {"tier": null}, "segment_id": null})
    );

    // A rule without `segment_output` may not choose a segment.
    put_rule(&client, "quiet", &json!({"outputs": []}))
        .await
        .expect(201);
    upload_ok(
        &client,
        "quiet",
        &writes(r#"{"clusters": {}, "segment": "Retail"}"#),
        1,
    )
    .await;
    let reply = test_rule(&client, "quiet", &json!({"customer_id": "cat"})).await;
    let errors = assert_refused_output(&reply, &json!({"clusters": {}, "segment": "Retail"}));
    assert_eq!(
        errors,
        [(
            "/segment".to_string(),
            "the rule is not allowed to set segments".to_string()
        )]
    );

    // Nothing of all this reached the customer.
    assert_eq!(customer_state(&client, "cat").await, customer_before);
    assert_eq!(customer_before.1["segment_id"], schema.retail);
    assert_eq!(customer_before.1["fields"]["tier"], "A");
}

#[tokio::test]
async fn a_rules_limits_apply_to_its_test_runs() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-limits"));
    schema(&client, "decimal").await;
    let reply = put_rule(
        &client,
        "spin",
        &json!({"outputs": ["tier"], "limits": {"fuel": 5000}}),
    )
    .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(reply.json["limits"], json!({"fuel": 5000}));
    upload_ok(&client, "spin", &wat(INFINITE_LOOP), 1).await;
    upload_ok(&client, "spin", &wat(MEMORY_BOMB), 2).await;
    let inline = json!({"email": "d@example.com"});

    let reply = test_rule(&client, "spin", &json!({"customer": inline, "version": 1})).await;
    let error = assert_failed_run(&reply);
    assert_eq!(
        error,
        json!({"code": "out_of_fuel", "message": "rule ran out of fuel (limit 5000)"})
    );
    assert_eq!(reply.json["fuel_used"], 5000);

    // With fuel to spare, the deadline stops the loop.
    let reply = client
        .patch(
            "/rules/spin",
            &json!({"limits": {"fuel": 100_000_000, "timeout_ms": 10}}),
        )
        .await;
    assert_entity(&reply, 200, 4);
    let reply = test_rule(&client, "spin", &json!({"customer": inline, "version": 1})).await;
    let error = assert_failed_run(&reply);
    assert_eq!(
        error,
        json!({"code": "timeout", "message": "rule exceeded its deadline of 10 ms"})
    );

    // A lower memory limit (and back to the default fuel and deadline).
    let reply = client
        .patch(
            "/rules/spin",
            &json!({"limits": {"fuel": null, "timeout_ms": null, "memory_mib": 2}}),
        )
        .await;
    assert_entity(&reply, 200, 5);
    assert_eq!(reply.json["limits"], json!({"memory_mib": 2}));
    let reply = test_rule(&client, "spin", &json!({"customer": inline, "version": 2})).await;
    let error = assert_failed_run(&reply);
    assert_eq!(error["code"], "memory_limit", "{}", reply.text);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with("the limit is 2097152"),
        "{}",
        reply.text
    );
    assert!(reply.json["memory_bytes"].as_u64().unwrap() <= 2 << 20);

    // Limits above the tenant maxima are refused.
    let reply = client
        .patch(
            "/rules/spin",
            &json!({"limits": {"fuel": 100_000_001, "memory_mib": 65, "timeout_ms": 0}}),
        )
        .await;
    assert_eq!(
        pointers(&reply),
        set(&["/limits/fuel", "/limits/memory_mib", "/limits/timeout_ms"])
    );
    assert_eq!(
        client.get("/rules/spin").await.expect(200).json["limits"],
        json!({"memory_mib": 2})
    );
}

// ---------------------------------------------------------------------------------
// 5. Configuration

#[tokio::test]
async fn two_rules_cannot_own_the_same_output() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-clash"));
    schema(&client, "decimal").await;

    let a = put_rule(&client, "a", &json!({"outputs": ["tier"]})).await;
    assert_entity(&a, 201, 1);
    let reply = put_rule(&client, "b", &json!({"outputs": ["distributor", "tier"]})).await;
    assert_problem(&reply, 409, "conflict");
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("`a`") && detail.contains("`tier`"),
        "{detail}"
    );
    assert_problem(&client.get("/rules/b").await, 404, "not_found");
    assert_eq!(
        client.get("/rules").await.expect(200).json["items"],
        json!([a.json])
    );

    // Another output is fine; changing into a clash is not, and changes nothing.
    let b = put_rule(&client, "b", &json!({"outputs": ["distributor"]})).await;
    assert_entity(&b, 201, 1);
    let before = rule_state(&client, "b").await;
    let reply = client
        .patch("/rules/b", &json!({"outputs": ["distributor", "tier"]}))
        .await;
    assert_problem(&reply, 409, "conflict");
    let reply = put_rule(&client, "b", &json!({"outputs": ["tier"]})).await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(rule_state(&client, "b").await, before);

    // A rule does not clash with itself when its configuration is replaced.
    let reply = put_rule(
        &client,
        "a",
        &json!({"outputs": ["tier"], "description": "again", "segment_output": true}),
    )
    .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["created_at"], a.json["created_at"]);

    // The segment is an output too: one owner.
    let reply = client
        .patch("/rules/b", &json!({"segment_output": true}))
        .await;
    assert_problem(&reply, 409, "conflict");
    assert!(
        reply.json["detail"].as_str().unwrap().contains("`segment`"),
        "{}",
        reply.text
    );
    assert_eq!(rule_state(&client, "b").await, before);
}

/// Concurrent PUTs claiming the same output: the one-owner check reads the other
/// rules first, but only the output guard items written with each rule make it exact.
#[tokio::test]
async fn concurrent_rules_cannot_both_own_an_output() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-race"));
    schema(&client, "decimal").await;
    let puts: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                put_rule(&client, &format!("r{i}"), &json!({"outputs": ["tier"]}))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for put in puts {
        statuses.push(put.await.expect("PUT task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "statuses {statuses:?}"
    );
    let listed = client.get("/rules").await.expect(200);
    let owners: Vec<&Value> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outputs"] == json!(["tier"]))
        .collect();
    assert_eq!(owners.len(), 1, "{}", listed.text);
}

#[tokio::test]
async fn invalid_configurations_are_422_and_create_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-invalid"));
    schema(&client, "decimal").await;

    let reply = put_rule(
        &client,
        "tiering",
        &json!({"outputs": ["customer_type", "ghost", "tier", "tier", 5, "Bad-Name"]}),
    )
    .await;
    assert_eq!(
        pointers(&reply),
        set(&[
            "/outputs/0",
            "/outputs/1",
            "/outputs/3",
            "/outputs/4",
            "/outputs/5"
        ])
    );
    assert_eq!(
        error_detail(&reply, "/outputs/0"),
        "`customer_type` is not a cluster field"
    );
    assert_eq!(
        error_detail(&reply, "/outputs/1"),
        "no field is named `ghost`"
    );
    assert_eq!(error_detail(&reply, "/outputs/3"), "lists `tier` twice");

    let cases = [
        (json!({"outputs": "tier"}), "/outputs"),
        (
            json!({"outputs": ["tier"], "pinned_version": 1}),
            "/pinned_version",
        ),
        (
            json!({"outputs": ["tier"], "pinned_version": 0}),
            "/pinned_version",
        ),
        (
            json!({"outputs": ["tier"], "priority": "high"}),
            "/priority",
        ),
        (json!({"outputs": ["tier"], "enabled": "yes"}), "/enabled"),
        (
            json!({"outputs": ["tier"], "limits": {"fuel": 0}}),
            "/limits/fuel",
        ),
        (json!({"outputs": ["tier"], "limits": 5}), "/limits"),
        (json!({"outputs": ["tier"], "colour": "red"}), "/colour"),
        (json!({"outputs": ["tier"], "name": "other"}), "/name"),
    ];
    for (body, pointer) in &cases {
        let reply = put_rule(&client, "tiering", body).await;
        assert_eq!(pointers(&reply), set(&[pointer]), "{body}");
    }
    let reply = put_rule(&client, "Bad-Name", &json!({"outputs": []})).await;
    assert_eq!(pointers(&reply), set(&["/name"]));
    let reply = send_raw(
        &client,
        Method::PUT,
        "/rules/tiering",
        Some("text/plain"),
        json!({"outputs": ["tier"]}).to_string(),
    )
    .await;
    assert_problem(&reply, 415, "unsupported_media_type");

    assert_problem(&client.get("/rules/tiering").await, 404, "not_found");
    assert_eq!(
        client.get("/rules").await.expect(200).json,
        json!({"items": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn pinning_chooses_the_version_that_runs() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-pin"));
    schema(&client, "decimal").await;
    tiering_rule(&client).await;
    upload_ok(&client, "tiering", &example("tier-rust"), 1).await;
    upload_ok(
        &client,
        "tiering",
        &writes(r#"{"clusters": {"tier": "AA", "distributor": false}}"#),
        2,
    )
    .await;
    create_customer(
        &client,
        &json!({"id": "dan", "email": "dan@example.com",
                "fields": {"annual_revenue": "5", "customer_type": "distributor"}}),
    )
    .await;
    let by_id = json!({"customer_id": "dan"});

    // Unpinned: the latest version runs.
    let reply = test_rule(&client, "tiering", &by_id).await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 2),
        json!({"tier": "AA", "distributor": false})
    );

    // Pinning a version that does not exist: 422, nothing changes.
    let before = rule_state(&client, "tiering").await;
    assert_eq!(before.1["version"], 3);
    for pinned in [json!(3), json!(0), json!("1")] {
        let reply = client
            .patch("/rules/tiering", &json!({"pinned_version": pinned}))
            .await;
        assert_eq!(pointers(&reply), set(&["/pinned_version"]), "{pinned}");
    }
    let reply = client
        .patch("/rules/tiering", &json!({"pinned_version": 3}))
        .await;
    assert_eq!(
        error_detail(&reply, "/pinned_version"),
        "the rule has 2 version(s)"
    );
    assert_eq!(rule_state(&client, "tiering").await, before);

    // Pin version 1, conditionally on the current ETag.
    let reply = send_json(
        &client,
        Method::PATCH,
        "/rules/tiering",
        &json!({"pinned_version": 1}),
        &[("if-match", "\"3\"")],
    )
    .await;
    assert_entity(&reply, 200, 4);
    assert_eq!(reply.json["pinned_version"], 1);
    assert_eq!(reply.json["latest_version"], 2);
    assert_eq!(reply.json["outputs"], json!(["tier", "distributor"]));
    assert_eq!(
        reply.json["description"], "Tier by revenue",
        "a merge patch keeps the rest"
    );
    let reply = test_rule(&client, "tiering", &by_id).await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 1),
        json!({"tier": "B", "distributor": true})
    );
    // An explicit version still runs that version.
    let reply = test_rule(
        &client,
        "tiering",
        &json!({"customer_id": "dan", "version": 2}),
    )
    .await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 2),
        json!({"tier": "AA", "distributor": false})
    );

    // A new upload does not move the pin.
    upload_ok(
        &client,
        "tiering",
        &writes(r#"{"clusters": {"tier": "A", "distributor": true}}"#),
        3,
    )
    .await;
    let rule = client.get("/rules/tiering").await;
    assert_entity(&rule, 200, 5);
    assert_eq!(rule.json["pinned_version"], 1);
    assert_eq!(rule.json["latest_version"], 3);
    let reply = test_rule(&client, "tiering", &by_id).await;
    assert_eq!(reply.json["version"], 1, "{}", reply.text);

    // Unpinning (merge patch null) runs the latest again.
    let reply = client
        .patch("/rules/tiering", &json!({"pinned_version": null}))
        .await;
    assert_entity(&reply, 200, 6);
    assert!(reply.json.get("pinned_version").is_none(), "{}", reply.text);
    let reply = test_rule(&client, "tiering", &by_id).await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 3),
        json!({"tier": "A", "distributor": true})
    );
}

#[tokio::test]
async fn stale_if_match_is_412_and_changes_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-ifmatch"));
    schema(&client, "decimal").await;

    // If-Match on a rule that does not exist yet: not created.
    let reply = send_json(
        &client,
        Method::PUT,
        "/rules/tiering",
        &json!({"outputs": ["tier"]}),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    assert_problem(&client.get("/rules/tiering").await, 404, "not_found");

    tiering_rule(&client).await;
    let module = writes(r#"{"clusters": {"tier": "A"}}"#);
    upload_ok(&client, "tiering", &module, 1).await;
    let before = rule_state(&client, "tiering").await;
    assert_eq!(before.0, "\"2\"");

    let stale = [("if-match", "\"1\"")];
    let reply = send_json(
        &client,
        Method::PUT,
        "/rules/tiering",
        &json!({"outputs": ["tier"]}),
        &stale,
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    let reply = send_json(
        &client,
        Method::PATCH,
        "/rules/tiering",
        &json!({"description": "stale"}),
        &stale,
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    let reply = client
        .request(Method::PUT, "/rules/tiering/module")
        .header("content-type", "application/wasm")
        .header("if-match", "\"1\"")
        .body(module.clone())
        .send()
        .await;
    assert_problem(&reply, 412, "precondition_failed");
    let reply = delete_with(&client, "/rules/tiering", &stale).await;
    assert_problem(&reply, 412, "precondition_failed");
    assert_eq!(rule_state(&client, "tiering").await, before);

    // The current ETag (or `*`) goes through.
    let reply = send_json(
        &client,
        Method::PATCH,
        "/rules/tiering",
        &json!({"description": "fresh"}),
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_entity(&reply, 200, 3);
    assert_eq!(reply.json["description"], "fresh");
    let reply = client
        .request(Method::PUT, "/rules/tiering/module")
        .header("content-type", "application/wasm")
        .header("if-match", "\"3\"")
        .body(module)
        .send()
        .await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    assert_eq!(reply.header("etag"), Some("\"4\""));
    assert_eq!(reply.json["number"], 2);
    let reply = delete_with(&client, "/rules/tiering", &[("if-match", "*")]).await;
    assert_eq!(reply.status, 204, "{reply:#?}");
}

#[tokio::test]
async fn delete_removes_the_rule_and_its_versions() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-delete"));
    schema(&client, "decimal").await;
    tiering_rule(&client).await;
    let module = writes(r#"{"clusters": {"tier": "A"}}"#);
    upload_ok(&client, "tiering", &module, 1).await;
    upload_ok(&client, "tiering", &module, 2).await;

    let reply = delete_with(&client, "/rules/tiering", &[("if-match", "\"3\"")]).await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert!(reply.text.is_empty(), "{}", reply.text);

    for path in [
        "/rules/tiering",
        "/rules/tiering/versions",
        "/rules/tiering/versions/1",
    ] {
        assert_problem(&client.get(path).await, 404, "not_found");
    }
    let reply = test_rule(
        &client,
        "tiering",
        &json!({"customer": {"email": "e@x.co"}}),
    )
    .await;
    assert_problem(&reply, 404, "not_found");
    assert_problem(&upload(&client, "tiering", &module).await, 404, "not_found");
    let reply = client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await;
    assert_problem(&reply, 404, "not_found");
    assert_problem(&client.delete("/rules/tiering").await, 404, "not_found");
    assert_eq!(
        client.get("/rules").await.expect(200).json["items"],
        json!([])
    );

    // Its outputs are free again, and the name starts over without old versions.
    let other = put_rule(
        &client,
        "other",
        &json!({"outputs": ["tier", "distributor"]}),
    )
    .await;
    assert_entity(&other, 201, 1);
    client.delete("/rules/other").await.expect(204);
    let again = tiering_rule(&client).await;
    assert_eq!(again.json["latest_version"], 0);
    assert_eq!(
        client.get("/rules/tiering/versions").await.expect(200).json["items"],
        json!([])
    );
    upload_ok(&client, "tiering", &module, 1).await;
    assert_eq!(
        client.get("/rules/tiering/versions").await.expect(200).json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------
// 6. Tenancy

#[tokio::test]
async fn another_tenant_cannot_see_test_or_change_a_rule() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("rule-ten-a"));
    let b = stack.client(&unique_tenant("rule-ten-b"));
    schema(&a, "decimal").await;
    tiering_rule(&a).await;
    upload_ok(&a, "tiering", &writes(r#"{"clusters": {"tier": "AA"}}"#), 1).await;
    create_customer(&a, &json!({"id": "eve", "email": "eve@example.com"})).await;
    let before = rule_state(&a, "tiering").await;
    let customer_before = customer_state(&a, "eve").await;

    for path in [
        "/rules/tiering",
        "/rules/tiering/versions",
        "/rules/tiering/versions/1",
    ] {
        assert_problem(&b.get(path).await, 404, "not_found");
    }
    assert_eq!(
        b.get("/rules").await.expect(200).json,
        json!({"items": [], "next_cursor": null})
    );
    for body in [
        json!({"customer": {"email": "x@example.com"}}),
        json!({"customer_id": "eve"}),
    ] {
        assert_problem(&test_rule(&b, "tiering", &body).await, 404, "not_found");
    }
    let module = writes(r#"{"clusters": {"tier": "B"}}"#);
    assert_problem(&upload(&b, "tiering", &module).await, 404, "not_found");
    let reply = b.patch("/rules/tiering", &json!({"enabled": false})).await;
    assert_problem(&reply, 404, "not_found");
    assert_problem(&b.delete("/rules/tiering").await, 404, "not_found");
    let reply = delete_with(&b, "/rules/tiering", &[("if-match", "*")]).await;
    assert_problem(&reply, 404, "not_found");

    // B's own rule of the same name is B's: no clash with A's outputs, no A versions,
    // and A's customers are not B's to test on.
    schema(&b, "decimal").await;
    let reply = tiering_rule(&b).await;
    assert_eq!(reply.json["latest_version"], 0);
    upload_ok(&b, "tiering", &module, 1).await;
    let reply = test_rule(&b, "tiering", &json!({"customer_id": "eve"})).await;
    assert_eq!(pointers(&reply), set(&["/customer_id"]));
    let reply = test_rule(
        &b,
        "tiering",
        &json!({"customer": {"email": "x@example.com"}}),
    )
    .await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 1),
        json!({"tier": "B"}),
        "B runs B's module"
    );

    assert_eq!(rule_state(&a, "tiering").await, before);
    assert_eq!(customer_state(&a, "eve").await, customer_before);
    let reply = test_rule(&a, "tiering", &json!({"customer_id": "eve"})).await;
    assert_eq!(
        assert_ok_run(&reply, "tiering", 1),
        json!({"tier": "AA"}),
        "A still runs A's module"
    );
}

#[tokio::test]
async fn a_field_a_rule_sets_cannot_be_deleted_until_the_rule_lets_go() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("rule-field-owned"));
    schema(&client, "decimal").await;
    assert_eq!(
        put_rule(&client, "tiering", &json!({"outputs": ["tier"]}))
            .await
            .status,
        201
    );

    let reply = client.delete("/fields/tier").await;
    assert_problem(&reply, 409, "conflict");
    assert!(reply.text.contains("tiering"), "{}", reply.text);
    client.get("/fields/tier").await.expect(200);

    client
        .patch(&rule_path("tiering"), &json!({"outputs": ["distributor"]}))
        .await
        .expect(200);
    assert_eq!(client.delete("/fields/tier").await.status, 204);
    assert_problem(&client.delete("/fields/distributor").await, 409, "conflict");
    assert_eq!(client.delete(&rule_path("tiering")).await.status, 204);
    assert_eq!(client.delete("/fields/distributor").await.status, 204);
}
