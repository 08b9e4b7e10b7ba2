//! Faults: the DynamoDB-API server going away mid-request, a stored rule artifact that
//! no longer loads, and DynamoDB's transaction conflicts. A private `local-stack` reaches
//! the shared local DynamoDB server through a TCP relay the test can cut, so the other
//! tests never see the fault; the conflicts are provoked on a private table.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use base64::Engine;
use serde_json::{Value, json};
use tests::{Stack, unique_tenant};
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
fn assert_unavailable(reply: &tests::Reply, started: Instant) {
    assert_problem(reply, 503, "unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
    // The store gives up after its 12 s operation timeout: an answer, never a hang.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

// Several threads: starting the private local-stack blocks this thread while the relay
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
    // A Scan of the shared table, every page (a page stops at 1 MB, whatever matches).
    let mut found = Vec::new();
    let mut start = Value::Null;
    loop {
        let mut request = json!({
            "TableName": stack.table,
            "FilterExpression": "begins_with(pk, :blobs)",
            "ExpressionAttributeValues": {":blobs": {"S": format!("T#{tenant}#BLOB#")}},
        });
        if !start.is_null() {
            request["ExclusiveStartKey"] = start;
        }
        let page = aws_call(&stack.moto_url, "DynamoDB_20120810.Scan", request).await;
        found.extend(
            page["Items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| item["pk"]["S"].as_str().unwrap().contains('@'))
                .cloned(),
        );
        start = page["LastEvaluatedKey"].clone();
        if start.is_null() {
            return found;
        }
    }
}

// ---------------------------------------------------------------------------------
// Transaction conflicts (infra/moto_server.py emulates DynamoDB's)

/// How long the private table's transactions stay in flight: long enough for a few
/// requests to be sent while one is, however loaded the machine.
const IN_FLIGHT_MS: u64 = 1500;
const CONFLICT_MESSAGE: &str = "Transaction is ongoing for the item";

/// While a TransactWriteItems is in flight, a transaction touching one of its items is
/// cancelled with `TransactionConflict` for that action, and a single write on one of
/// its items fails with `TransactionConflictException`: the SDK reads both back with
/// DynamoDB's codes, so the store's handling of them can be tested locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_the_items_of_a_transaction_in_flight_are_refused_as_on_dynamodb() {
    let stack = Stack::get().await;
    let dynamo = dynamo_client(stack).await;
    let table = format!("{}-{}", stack.table, unique_tenant("conflicts"));
    create_table(&dynamo, &table).await;
    set_latency(stack, json!({"table": table, "transact": IN_FLIGHT_MS})).await;

    // A = [Put x, Put y], in flight for IN_FLIGHT_MS.
    let a = tokio::spawn({
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move {
            let started = Instant::now();
            let result = dynamo
                .transact_write_items()
                .transact_items(put(&table, "x", "A"))
                .transact_items(put(&table, "y", "A"))
                .send()
                .await;
            (result, started.elapsed())
        }
    });

    // A holds its items once a single write on x is refused. The probe's condition
    // never holds, so before A claims x it fails that way and writes nothing.
    let started = Instant::now();
    loop {
        let probe = dynamo
            .put_item()
            .table_name(&table)
            .set_item(Some(item("x", "probe")))
            .condition_expression("attribute_exists(#never)")
            .expression_attribute_names("#never", "never")
            .send()
            .await
            .expect_err("the probe's condition never holds");
        let probe = probe.into_service_error();
        if probe.is_transaction_conflict_exception() {
            break;
        }
        assert!(probe.is_conditional_check_failed_exception(), "{probe:?}");
        assert!(
            !a.is_finished(),
            "A finished before a write saw it in flight"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "A never got in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A single write on an item of A: TransactionConflictException, HTTP 400.
    let err = dynamo
        .put_item()
        .table_name(&table)
        .set_item(Some(item("x", "single")))
        .send()
        .await
        .expect_err("x is A's");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert!(err.is_transaction_conflict_exception(), "{err:?}");
    assert_eq!(err.code(), Some("TransactionConflictException"));
    assert_eq!(err.message(), Some(CONFLICT_MESSAGE));
    let err = dynamo
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("y".into()))
        .key("sk", AttributeValue::S("item".into()))
        .update_expression("SET written_by = :by")
        .expression_attribute_values(":by", AttributeValue::S("update".into()))
        .send()
        .await
        .expect_err("y is A's")
        .into_service_error();
    assert!(err.is_transaction_conflict_exception(), "{err:?}");
    assert_eq!(err.code(), Some("TransactionConflictException"));

    // B = [Put z, Put y]: cancelled, the reasons in B's order.
    let err = dynamo
        .transact_write_items()
        .transact_items(put(&table, "z", "B"))
        .transact_items(put(&table, "y", "B"))
        .send()
        .await
        .expect_err("y is A's");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("TransactionCanceledException"));
    assert_eq!(
        err.message(),
        Some(
            "Transaction cancelled, please refer cancellation reasons for specific reasons \
             [None, TransactionConflict]"
        )
    );
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = &err else {
        panic!("not a TransactionCanceledException: {err:?}");
    };
    let reasons: Vec<_> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| (r.code(), r.message()))
        .collect();
    assert_eq!(
        reasons,
        [
            (Some("None"), None),
            (Some("TransactionConflict"), Some(CONFLICT_MESSAGE))
        ]
    );

    // A was unaffected, and what was refused wrote nothing.
    let (result, took) = a.await.expect("the task of A");
    result.expect("A commits");
    assert!(
        took >= Duration::from_millis(IN_FLIGHT_MS),
        "A took {took:?}"
    );
    assert_eq!(written_by(&dynamo, &table, "x").await.as_deref(), Some("A"));
    assert_eq!(written_by(&dynamo, &table, "y").await.as_deref(), Some("A"));
    assert_eq!(written_by(&dynamo, &table, "z").await, None);

    // Claims end with A: the items take writes again.
    dynamo
        .put_item()
        .table_name(&table)
        .set_item(Some(item("x", "after")))
        .send()
        .await
        .expect("x is free again");
    clear_latency(stack, &table).await;
    dynamo
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("delete the private table");
}

/// An SDK client of the local DynamoDB server, configured as the store's, without
/// retries so that every error is the server's first answer.
async fn dynamo_client(stack: &Stack) -> aws_sdk_dynamodb::Client {
    let config = store::StoreConfig {
        table_name: stack.table.clone(),
        endpoint_url: Some(stack.moto_url.clone()),
    }
    .sdk_config()
    .await;
    let config = aws_sdk_dynamodb::config::Builder::from(&config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create the private table");
}

/// The item `id` (key `pk = id, sk = item`), marked as written by `by`.
fn item(id: &str, by: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(id.to_owned())),
        ("sk".to_owned(), AttributeValue::S("item".to_owned())),
        ("written_by".to_owned(), AttributeValue::S(by.to_owned())),
    ])
}

fn put(table: &str, id: &str, by: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item(id, by)))
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

/// Who wrote the item `id`, if it exists.
async fn written_by(dynamo: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> Option<String> {
    let output = dynamo
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(id.to_owned()))
        .key("sk", AttributeValue::S("item".to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    let item = output.item?;
    Some(item["written_by"].as_s().expect("a string").clone())
}

/// Gives `table` the server's global latency again.
async fn clear_latency(stack: &Stack, table: &str) {
    emulation(stack, reqwest::Method::DELETE, &[("table", table)], None).await;
}
