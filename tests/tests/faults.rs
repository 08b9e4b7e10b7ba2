//! Faults: the DynamoDB-API server going away mid-request, and a stored rule artifact
//! that no longer loads. A private `local-api` reaches the shared local DynamoDB server
//! through a TCP relay the test can cut, so the other tests never see the fault.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use api_tests::{Stack, unique_tenant};
use base64::Engine;
use common::*;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the relay does with the connections it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Relays every byte both ways.
    Up = 0,
    /// Closes every connection, open ones included (the server went away).
    Down = 1,
    /// Passes requests on but never answers (the server hangs).
    Hang = 2,
}

/// A TCP relay from a local port to the DynamoDB-API server.
struct Relay {
    url: String,
    mode: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(Mode::Up as u8));
        let (cut, _) = watch::channel(0u64);
        let relay = Relay {
            url,
            mode: mode.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mode = mode.clone();
                let target = target.clone();
                let mut cut = cut.subscribe();
                tokio::spawn(async move {
                    match mode.load(Ordering::SeqCst) {
                        m if m == Mode::Down as u8 => return,
                        m if m == Mode::Hang as u8 => {
                            // Read the request, answer nothing until cut.
                            let _ = cut.changed().await;
                            return;
                        }
                        _ => {}
                    }
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        relay
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        // Every open connection ends: requests in flight lose their server.
        self.cut.send_modify(|n| *n += 1);
    }
}

#[track_caller]
fn assert_unavailable(reply: &api_tests::Reply, started: Instant) {
    assert_problem(reply, 503, "unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
    // The store gives up after its 12 s operation timeout: an answer, never a hang.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

// Several threads: starting the private local-api blocks this thread while the relay
// must already carry its first requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_gives_503_and_the_service_recovers() {
    let stack = Stack::get().await;
    let relay = Relay::start(&stack.moto_url).await;
    let api = stack.spawn_api(&[("DYNAMODB_ENDPOINT", &relay.url)]);
    let tenant = unique_tenant("faults");
    let client = api.client(&tenant);
    create_customer(&client, &json!({"id": "c1", "email": "c1@example.com"})).await;

    // Gone: connections refused and cut.
    relay.set(Mode::Down);
    let started = Instant::now();
    assert_unavailable(&client.get("/customers/c1").await, started);
    let started = Instant::now();
    let create = client
        .post(
            "/customers",
            &json!({"id": "c2", "email": "c2@example.com"}),
        )
        .await;
    assert_unavailable(&create, started);

    // Hanging: the request reaches the server and no answer comes back.
    relay.set(Mode::Hang);
    let started = Instant::now();
    let patch = client
        .patch("/customers/c1", &json!({"first_name": "Lost"}))
        .await;
    assert_unavailable(&patch, started);

    // Back: the same process serves again, and the failed writes wrote nothing.
    relay.set(Mode::Up);
    let c1 = client.get("/customers/c1").await.expect(200).json;
    assert_eq!(c1["first_name"], Value::Null, "{c1}");
    assert_eq!(c1["version"], 1);
    assert_problem(&client.get("/customers/c2").await, 404, "not_found");
    create_customer(&client, &json!({"id": "c2", "email": "c2@example.com"})).await;
    assert_eq!(list_all(&client, "/customers", 10).await.len(), 2);
}

#[tokio::test]
async fn a_stored_artifact_that_does_not_load_is_recompiled_from_the_module() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("faults-artifact");
    let client = stack.client(&tenant);
    create_field(
        &client,
        &json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
    )
    .await;
    create_field(
        &client,
        &json!({"name": "distributor", "type": "boolean", "cluster": true}),
    )
    .await;
    create_field(
        &client,
        &json!({"name": "annual_revenue", "type": "decimal"}),
    )
    .await;
    client
        .put(
            "/rules/tiering",
            &json!({"outputs": ["tier", "distributor"]}),
        )
        .await
        .expect(201);
    assert_eq!(
        upload(&client, "tiering", &example("tier-rust"))
            .await
            .status,
        201
    );

    // Overwrite every chunk of the compiled artifact with bytes of the same length.
    let engine = base64::engine::general_purpose::STANDARD;
    let stored = artifact_chunks(stack, &tenant).await;
    let mut corrupted = 0;
    for item in &stored {
        let length = engine
            .decode(item["data"]["B"].as_str().unwrap())
            .unwrap()
            .len();
        let mut garbage = item.clone();
        garbage["data"] = json!({"B": engine.encode(vec![0x5a; length])});
        aws_call(
            &stack.moto_url,
            "DynamoDB_20120810.PutItem",
            json!({"TableName": stack.table, "Item": garbage}),
        )
        .await;
        corrupted += 1;
    }
    assert!(corrupted > 0, "no artifact chunks found");

    // A fresh process (no module cached) evaluates correctly all the same.
    let api = stack.spawn_api(&[]);
    let reply = api
        .client(&tenant)
        .post(
            "/rules/tiering/test",
            &json!({"customer": {"email": "t@example.com", "fields": {"annual_revenue": "150000"}}}),
        )
        .await
        .expect(200);
    assert_eq!(reply.json["ok"], true, "{}", reply.text);
    assert_eq!(
        reply.json["output"]["clusters"]["tier"], "AA",
        "{}",
        reply.text
    );
    assert!(
        api.log().contains("stored artifact unusable; recompiling"),
        "the fallback was not taken:\n{}",
        api.log()
    );
    // The recompiled artifact replaced the garbage, so the next cold start loads it.
    let repaired = artifact_chunks(stack, &tenant).await;
    assert_eq!(repaired.len(), stored.len());
    for item in &repaired {
        let data = engine.decode(item["data"]["B"].as_str().unwrap()).unwrap();
        assert!(
            data.iter().any(|b| *b != 0x5a),
            "chunk still garbage: {}",
            item["sk"]
        );
    }
}

/// The items of a tenant's compiled artifacts (`BLOB#<sha256>@<engine key>`), not the
/// modules themselves.
async fn artifact_chunks(stack: &Stack, tenant: &str) -> Vec<Value> {
    let blobs = aws_call(
        &stack.moto_url,
        "DynamoDB_20120810.Scan",
        json!({
            "TableName": stack.table,
            "FilterExpression": "begins_with(pk, :blobs)",
            "ExpressionAttributeValues": {":blobs": {"S": format!("T#{tenant}#BLOB#")}},
        }),
    )
    .await;
    blobs["Items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["pk"]["S"].as_str().unwrap().contains('@'))
        .cloned()
        .collect()
}
