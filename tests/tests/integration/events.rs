//! Membership-change events (docs/events.md): the stack's events mapping puts them on
//! the local bus (moto's EventBridge API), and a rule of the test's own sends its
//! tenant's events to an SQS queue, which the tests read. One event per real change (by
//! the API, an import, a rule's backfill and evaluation, a deletion), none for writes
//! that change nothing; and the handler, called in process with a stream record handed
//! to it twice, gives both deliveries the same key.

use std::time::{Duration, Instant};

use crate::common::*;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use events::{CLUSTER_CHANGED, EventBridge, Publisher, SEGMENT_CHANGED, SOURCE};
use serde_json::{Value, json};
use store::StoreConfig;
use tests::{Client, EVENT_BUS, Method, Stack, unique_tenant};

/// How long events may take to arrive: the stream is polled every 250 ms.
const ARRIVAL: Duration = Duration::from_secs(60);

/// An SQS queue that a rule on the tests' bus fills with one tenant's events.
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

fn moto_config(stack: &Stack) -> StoreConfig {
    StoreConfig {
        table_name: stack.table.clone(),
        endpoint_url: Some(stack.moto_url.clone()),
    }
}

impl Queue {
    /// A queue named after `tenant`, and a rule sending it every event of that tenant.
    async fn subscribe(stack: &Stack, tenant: &str) -> Queue {
        let config = moto_config(stack).sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let url = sqs
            .create_queue()
            .queue_name(tenant)
            .send()
            .await
            .expect("create the queue")
            .queue_url
            .expect("a queue URL");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's attributes");
        let arn = attributes
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("the queue's ARN");
        let bus = aws_sdk_eventbridge::Client::new(&config);
        let pattern = json!({"source": [SOURCE], "detail": {"tenant": [tenant]}});
        bus.put_rule()
            .name(tenant)
            .event_bus_name(EVENT_BUS)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put the rule");
        bus.put_targets()
            .rule(tenant)
            .event_bus_name(EVENT_BUS)
            .targets(Target::builder().id("queue").arn(arn).build().unwrap())
            .send()
            .await
            .expect("put the rule's target");
        Queue { sqs, url }
    }

    /// Reads (and deletes) messages, every 250 ms, until `done` holds for all read so
    /// far; panics with them after [`ARRIVAL`]. No long polling: moto applies requests one
    /// at a time, so a waiting receive would hold up every other test's requests.
    async fn until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        let mut read = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive from the queue");
            let messages = received.messages.unwrap_or_default();
            for message in &messages {
                let body = message.body.as_deref().unwrap_or_default();
                read.push(serde_json::from_str::<Value>(body).expect("an event as JSON"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete the message");
            }
            if done(&read) {
                return read;
            }
            assert!(
                start.elapsed() < ARRIVAL,
                "the expected events did not arrive within {ARRIVAL:?}; read: {read:#?}"
            );
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// One event as the tests compare it: (customer, field, old, new, by).
fn change(event: &Value) -> (String, String, Value, Value, Value) {
    let detail = &event["detail"];
    let text = |name: &str| detail[name].as_str().unwrap_or_default().to_owned();
    (
        text("customer_id"),
        text("field"),
        detail["old"].clone(),
        detail["new"].clone(),
        detail["by"].clone(),
    )
}

/// The events read, without redeliveries (same key), as a consumer keeps them.
fn deduplicated(read: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    read.iter()
        .filter(|e| seen.insert(e["detail"]["idempotency_key"].to_string()))
        .cloned()
        .collect()
}

fn of(events: &[Value], customer: &str) -> Vec<(String, String, Value, Value, Value)> {
    events
        .iter()
        .map(change)
        .filter(|c| c.0 == customer)
        .collect()
}

fn client_by() -> Value {
    json!({"kind": "client"})
}

fn rule_by() -> Value {
    json!({"kind": "rule", "rule": "tiering", "version": 1})
}

async fn import(client: &Client, csv: &str) -> Value {
    send_raw(
        client,
        Method::POST,
        "/customers/import",
        Some("text/csv"),
        csv,
    )
    .await
    .expect(200)
    .json
}

#[tokio::test]
async fn every_real_change_is_one_event_and_writes_that_change_nothing_publish_none() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("ev-e2e");
    let client = stack.client(&tenant);
    let queue = Queue::subscribe(stack, &tenant).await;
    // tier, distributor (clusters), annual_revenue, customer_type; `tiering` disabled.
    tiering_rule(&client, false).await;
    let gold = create_segment(&client, &json!({"name": "Gold"})).await["id"].clone();
    let silver = create_segment(&client, &json!({"name": "Silver"})).await["id"].clone();
    let body = json!({"id": "c1", "email": "c1@example.com", "segment_id": gold,
                      "fields": {"tier": "B"}});

    // Created in a segment with a value; then the same body again and a name change,
    // which change no membership; then the segment changed and cleared.
    create_customer(&client, &body).await;
    client.put("/customers/c1", &body).await.expect(200);
    client
        .patch("/customers/c1", &json!({"first_name": "Ann"}))
        .await
        .expect(200);
    let patch = |segment: &Value| json!({ "segment_id": segment });
    client
        .patch("/customers/c1", &patch(&silver))
        .await
        .expect(200);
    client
        .patch("/customers/c1", &patch(&Value::Null))
        .await
        .expect(200);
    // An import changes c1's value and creates c2; its unchanged row writes nothing.
    let report = import(
        &client,
        "id,email,tier\nc1,c1@example.com,A\nc2,c2@example.com,A\n",
    )
    .await;
    assert_eq!(
        (&report["created"], &report["updated"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    let report = import(&client, "id,tier\nc2,A\n").await;
    assert_eq!(report["unchanged"], 1, "{report}");

    // Every write so far has been through the assign function (the rule was disabled
    // then), so enabling the rule now leaves its backfill alone to re-evaluate them.
    drain_stream(&stack.client(&unique_tenant("ev-e2e-sentinel"))).await;
    client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await
        .expect(200);
    for id in ["c1", "c2"] {
        eventually(&client, &format!("/customers/{id}"), ARRIVAL, |c| {
            c["fields"]["tier"] == "B" && c["fields"]["distributor"] == false
        })
        .await;
    }
    // A client's write the rule answers with a new tier: the write itself changes no
    // membership, the rule's write-back does.
    client
        .patch(
            "/customers/c1",
            &json!({"fields": {"annual_revenue": "150000"}}),
        )
        .await
        .expect(200);
    eventually(&client, "/customers/c1", ARRIVAL, |c| {
        c["fields"]["tier"] == "AA"
    })
    .await;
    client.delete("/customers/c1").await.expect(204);

    let read = queue
        .until(|read| {
            let events = deduplicated(read);
            of(&events, "c1").len() >= 10 && of(&events, "c2").len() >= 3
        })
        .await;
    let events = deduplicated(&read);
    let expect = |customer: &str, field: &str, old: Value, new: Value, by: Value| {
        (customer.to_owned(), field.to_owned(), old, new, by)
    };
    let null = Value::Null;
    assert_eq!(
        of(&events, "c1"),
        [
            expect("c1", "segment_id", null.clone(), gold.clone(), client_by()),
            expect("c1", "tier", null.clone(), json!("B"), client_by()),
            // Nothing for the PUT of the same body nor for the name change.
            expect(
                "c1",
                "segment_id",
                gold.clone(),
                silver.clone(),
                client_by()
            ),
            expect("c1", "segment_id", silver, null.clone(), client_by()),
            expect("c1", "tier", json!("B"), json!("A"), client_by()),
            expect("c1", "distributor", null.clone(), json!(false), rule_by()),
            expect("c1", "tier", json!("A"), json!("B"), rule_by()),
            // Nothing for the revenue write; then the rule's answer to it.
            expect("c1", "tier", json!("B"), json!("AA"), rule_by()),
            expect("c1", "distributor", json!(false), null.clone(), client_by()),
            expect("c1", "tier", json!("AA"), null.clone(), client_by()),
        ]
    );
    assert_eq!(
        of(&events, "c2"),
        [
            expect("c2", "tier", null.clone(), json!("A"), client_by()),
            expect("c2", "distributor", null, json!(false), rule_by()),
            expect("c2", "tier", json!("A"), json!("B"), rule_by()),
        ]
    );
    // Every detail has exactly the members docs/events.schema.json requires.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(tests::repo_root().join("docs/events.schema.json")).unwrap(),
    )
    .expect("the schema is JSON");
    let required: std::collections::BTreeSet<&str> = schema["$defs"]["detail"]["required"]
        .as_array()
        .expect("the detail's required members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for event in &events {
        let members: std::collections::BTreeSet<&str> = event["detail"]
            .as_object()
            .expect("a detail object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(members, required, "{event}");
        assert_eq!(event["source"], SOURCE);
        let detail_type = if event["detail"]["field"] == "segment_id" {
            SEGMENT_CHANGED
        } else {
            CLUSTER_CHANGED
        };
        assert_eq!(event["detail-type"], detail_type, "{event}");
        assert_eq!(event["detail"]["tenant"], tenant.as_str());
        assert!(is_timestamp(&event["detail"]["at"]), "{event}");
    }
    // A customer's events in write order: sequence numbers and versions grow.
    let c1: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail"]["customer_id"] == "c1")
        .collect();
    let sequence = |e: &Value| {
        let text = e["detail"]["sequence"].as_str().unwrap().to_owned();
        (text.len(), text)
    };
    assert!(c1.windows(2).all(|w| sequence(w[0]) <= sequence(w[1])));
    let versions: Vec<u64> = c1
        .iter()
        .map(|e| e["detail"]["customer_version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
}

/// The raw item of customer `id` (with its `memberships`), as the stream's images hold
/// it, from the local DynamoDB server.
async fn raw_item(stack: &Stack, table: &str, tenant: &str, id: &str) -> Value {
    let key = json!({
        "pk": {"S": store::keys::customer_home(tenant, id)},
        "sk": {"S": format!("CUSTOMER#{id}")},
    });
    let reply = aws_call(
        &stack.moto_url,
        "DynamoDB_20120810.GetItem",
        json!({"TableName": table, "Key": key, "ConsistentRead": true}),
    )
    .await;
    reply["Item"].clone()
}

/// A stream record as Lambda delivers it (`Records[]` of the event).
fn stream_record(
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    sequence: u64,
) -> EventRecord {
    let image = old.or(new).expect("an image");
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1_767_225_600,
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
        "SequenceNumber": format!("{sequence:021}"),
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(old) = old {
        dynamodb["OldImage"] = old.clone();
    }
    if let Some(new) = new {
        dynamodb["NewImage"] = new.clone();
    }
    serde_json::from_value(json!({
        "eventID": format!("e{sequence}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-12-01T00:00:00.000",
    }))
    .expect("a stream record")
}

async fn handle(publisher: &Publisher<EventBridge>, records: Vec<EventRecord>) -> Vec<String> {
    let mut event = Event::default();
    event.records = records;
    failed_sequences(publisher.handle(event).await)
}

#[tokio::test]
async fn a_record_handed_over_twice_gives_the_same_key_and_a_failed_put_fails_its_record() {
    let stack = Stack::get().await;
    // A table of its own, with no stream poller: only this test hands records over.
    let table = format!("events-{}", unique_tenant("ev-replay"));
    let api = stack.spawn_api(&[("TABLE_NAME", &table), ("LOCAL_STREAMS", "off")]);
    let tenant = unique_tenant("ev-replay");
    let client = api.client(&tenant);
    let queue = Queue::subscribe(stack, &tenant).await;
    create_field(
        &client,
        &json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
    )
    .await;
    let segment = create_segment(&client, &json!({"name": "Gold"})).await["id"].clone();
    let body = json!({"id": "c1", "email": "c1@example.com", "segment_id": segment,
                      "fields": {"tier": "A"}});
    create_customer(&client, &body).await;
    let v1 = raw_item(stack, &table, &tenant, "c1").await;
    client
        .patch("/customers/c1", &json!({"fields": {"tier": "AA"}}))
        .await
        .expect(200);
    let v2 = raw_item(stack, &table, &tenant, "c1").await;
    client
        .patch("/customers/c1", &json!({"first_name": "Ann"}))
        .await
        .expect(200);
    let v3 = raw_item(stack, &table, &tenant, "c1").await;
    let changed = stream_record("MODIFY", Some(&v1), Some(&v2), 10);
    let renamed = stream_record("MODIFY", Some(&v2), Some(&v3), 11);
    let deleted = stream_record("REMOVE", Some(&v3), None, 12);

    // A bus that does not exist: the call fails, so the record that had an event fails;
    // the no-op, which has none, does not.
    let config = StoreConfig {
        table_name: table.clone(),
        endpoint_url: Some(stack.moto_url.clone()),
    };
    let missing = Publisher::new(EventBridge::connect(&config, "no-such-bus").await);
    let failed = handle(&missing, vec![changed.clone(), renamed.clone()]).await;
    assert_eq!(failed, [format!("{:021}", 10)]);

    let publisher = Publisher::new(EventBridge::connect(&config, EVENT_BUS).await);
    assert_eq!(
        handle(&publisher, vec![changed.clone()]).await,
        Vec::<String>::new()
    );
    // Lambda delivers the record again (a retry, or a batch cut short elsewhere).
    assert_eq!(
        handle(&publisher, vec![changed]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        handle(&publisher, vec![renamed, deleted]).await,
        Vec::<String>::new()
    );

    let read = queue.until(|read| read.len() >= 4).await;
    let changes: Vec<_> = read.iter().map(change).collect();
    let tier = |old: &str, new: Value| {
        (
            "c1".to_owned(),
            "tier".to_owned(),
            json!(old),
            new,
            client_by(),
        )
    };
    assert_eq!(
        changes,
        [
            tier("A", json!("AA")),
            tier("A", json!("AA")),
            // Nothing for the name change; the deletion leaves the segment and the value.
            (
                "c1".into(),
                "segment_id".into(),
                segment,
                Value::Null,
                client_by()
            ),
            tier("AA", Value::Null),
        ]
    );
    let key = |i: usize| {
        read[i]["detail"]["idempotency_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(key(0), key(1), "a redelivery has the same key");
    assert_eq!(read[0]["detail"], read[1]["detail"], "and the same detail");
    assert_eq!(key(0).len(), 64);
    assert!(key(2) != key(0) && key(3) != key(0) && key(2) != key(3));
    assert_eq!(
        read[3]["detail"]["customer_version"], 3,
        "the deleted version"
    );
}
