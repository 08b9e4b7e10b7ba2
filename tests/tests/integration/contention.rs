//! Writes at DynamoDB's scale: customers' writes share no item, so concurrent creates
//! into one segment and cluster value never collide (the local server emulates
//! DynamoDB's transaction conflicts and latency); counts kept from the stream converge
//! exactly whatever the delivery does; and a write that lands after its segment or
//! field was deleted is taken out of it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use store::{CountedWrite, Store, StoreConfig};
use tests::{Client, Stack, unique_tenant};

/// How long the stream may take to catch up in these tests.
const CATCH_UP: Duration = Duration::from_secs(60);

/// A table of its own, so the latency set for it slows no other test.
fn private_table(name: &str) -> String {
    unique_tenant(name).replace('_', "-")
}

async fn tiered_tenant(client: &Client) -> String {
    tier_clusters(client).await;
    create_segment(client, &json!({ "name": "AA" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `GET /clusters` as `{field: (member_count, {value: count})}`.
fn cluster_counts(json: &Value) -> BTreeMap<String, (i64, BTreeMap<String, i64>)> {
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| {
            let values = field["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (v["value"].to_string(), v["count"].as_i64().unwrap()))
                .collect();
            (
                field["field"].as_str().unwrap().to_owned(),
                (field["member_count"].as_i64().unwrap(), values),
            )
        })
        .collect()
}

#[tokio::test]
async fn sixteen_writers_into_one_segment_and_cluster_value_never_collide() {
    const WRITERS: usize = 16;
    const EACH: usize = 8;
    let total = (WRITERS * EACH) as i64;
    let stack = Stack::get().await;
    let table = private_table("contention");
    // DynamoDB's typical latencies (ms), for this table only.
    set_latency(
        stack,
        json!({ "table": table, "read": 4, "write": 6, "transact": 15 }),
    )
    .await;
    let api = stack.spawn_api(&[("TABLE_NAME", &table), ("LOCAL_STREAMS", "on")]);
    let client = api.client(&unique_tenant("contention"));
    let segment = tiered_tenant(&client).await;

    let writers = (0..WRITERS).map(|w| {
        let client = client.clone();
        let segment = segment.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..EACH {
                let body = json!({
                    "email": format!("w{w}-{i}@example.com"),
                    "segment_id": segment,
                    "fields": { "tier": "AA", "distributor": true },
                });
                statuses.push(client.post("/customers", &body).await.status);
            }
            statuses
        })
    });
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for writer in writers {
        for status in writer.await.unwrap() {
            *statuses.entry(status).or_default() += 1;
        }
    }
    assert_eq!(statuses, BTreeMap::from([(201, WRITERS * EACH)]));
    // The store logs every transaction conflict it retries: there was none to retry.
    assert!(
        !api.log().contains("transaction conflict"),
        "creates collided:\n{}",
        api.log()
    );

    eventually(&client, &format!("/segments/{segment}"), CATCH_UP, |s| {
        s["customer_count"] == total
    })
    .await;
    let clusters = eventually(&client, "/clusters", CATCH_UP, |c| {
        cluster_counts(c)
            .values()
            .all(|(members, _)| *members == total)
    })
    .await;
    assert_eq!(
        cluster_counts(&clusters),
        BTreeMap::from([
            (
                "distributor".to_owned(),
                (total, BTreeMap::from([("true".to_owned(), total)]))
            ),
            (
                "tier".to_owned(),
                (total, BTreeMap::from([("\"AA\"".to_owned(), total)]))
            ),
        ])
    );
}

/// The customer item as stored, in DynamoDB's JSON (what a stream record's image holds).
async fn stored_image(
    stack: &Stack,
    table: &str,
    tenant: &str,
    id: &str,
) -> HashMap<String, serde_dynamo::AttributeValue> {
    let reply = aws_call(
        &stack.moto_url,
        "DynamoDB_20120810.GetItem",
        json!({
            "TableName": table,
            "Key": {
                "pk": { "S": store::keys::customer_home(tenant, id) },
                "sk": { "S": format!("CUSTOMER#{id}") },
            },
            "ConsistentRead": true,
        }),
    )
    .await;
    serde_json::from_value(reply["Item"].clone()).expect("a customer item")
}

/// A small deterministic shuffle (no randomness crate for one test).
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
    items
}

#[tokio::test]
async fn counts_converge_exactly_with_duplicated_retried_and_reordered_records() {
    let stack = Stack::get().await;
    // No stream poller on this table: the test is the stream, and delivers it badly.
    let table = private_table("counting");
    let api = stack.spawn_api(&[("TABLE_NAME", &table)]);
    let tenant = unique_tenant("counting");
    let client = api.client(&tenant);
    let s1 = tiered_tenant(&client).await;
    let s2 = id(&client
        .post("/segments", &json!({ "name": "B" }))
        .await
        .expect(201));

    // A history of writes: 24 customers in s1/AA, 8 moved to s2/A, 4 others only
    // renamed, then 4 of the moved ones deleted. Each write becomes a record with the next sequence number
    // (starting below 100, so numbers of different lengths compare too).
    let mut records: Vec<CountedWrite> = Vec::new();
    let mut sequence = 90u64;
    let mut record = |id: &str, image: Option<&HashMap<_, _>>| {
        sequence += 1;
        records.push(CountedWrite::from_image(id, &sequence.to_string(), image));
    };
    let mut ids = Vec::new();
    for i in 0..24 {
        let body = json!({
            "email": format!("c{i}@example.com"), "segment_id": s1,
            "fields": { "tier": "AA", "distributor": i % 2 == 0 },
        });
        let customer = id(&client.post("/customers", &body).await.expect(201));
        record(
            &customer,
            Some(&stored_image(stack, &table, &tenant, &customer).await),
        );
        ids.push(customer);
    }
    let moved = json!({ "segment_id": s2, "fields": { "tier": "A" } });
    let renamed = json!({ "first_name": "Renamed" });
    let patches = ids[..8].iter().map(|id| (id, &moved));
    for (customer, body) in patches.chain(ids[8..12].iter().map(|id| (id, &renamed))) {
        client
            .patch(&format!("/customers/{customer}"), body)
            .await
            .expect(200);
        record(
            customer,
            Some(&stored_image(stack, &table, &tenant, customer).await),
        );
    }
    for customer in &ids[..4] {
        client
            .delete(&format!("/customers/{customer}"))
            .await
            .expect(204);
        record(customer, None);
    }

    // The delivery: batches of 7 out of order, each delivered twice (a retried batch),
    // then every record again in reverse (old records arriving late), then once more
    // shuffled as one batch.
    let store = Store::connect(&StoreConfig {
        table_name: table.clone(),
        endpoint_url: Some(stack.moto_url.clone()),
    })
    .await;
    let batches: Vec<Vec<CountedWrite>> = records.chunks(7).map(<[_]>::to_vec).collect();
    for batch in shuffled(batches, 7) {
        for _ in 0..2 {
            let dangling = store.count_memberships(&tenant, &batch).await.unwrap();
            assert!(dangling.is_empty(), "{dangling:?}");
        }
    }
    let late: Vec<CountedWrite> = records.iter().rev().cloned().collect();
    store.count_memberships(&tenant, &late).await.unwrap();
    store
        .count_memberships(&tenant, &shuffled(records.clone(), 11))
        .await
        .unwrap();

    // What is stored: 20 customers; s1 holds 16 (AA), s2 holds 4 (A); 10 distributors
    // (even numbers among 4..24, i.e. 4,6,...,22) and 10 who are not.
    let count = |path: String| {
        let client = client.clone();
        async move { client.get(&path).await.expect(200).json["customer_count"].clone() }
    };
    assert_eq!(count(format!("/segments/{s1}")).await, 16);
    assert_eq!(count(format!("/segments/{s2}")).await, 4);
    let clusters = cluster_counts(&client.get("/clusters").await.expect(200).json);
    assert_eq!(
        clusters,
        BTreeMap::from([
            (
                "distributor".to_owned(),
                (
                    20,
                    BTreeMap::from([("false".to_owned(), 10), ("true".to_owned(), 10)])
                )
            ),
            (
                "tier".to_owned(),
                (
                    20,
                    BTreeMap::from([("\"A\"".to_owned(), 4), ("\"AA\"".to_owned(), 16)])
                )
            ),
        ])
    );
}

/// Rows left in a membership partition (the store's index of a segment or value).
async fn rows_in(stack: &Stack, partition: &str) -> i64 {
    let reply = aws_call(
        &stack.moto_url,
        "DynamoDB_20120810.Query",
        json!({
            "TableName": stack.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": { ":pk": { "S": partition } },
            "Select": "COUNT",
            "ConsistentRead": true,
        }),
    )
    .await;
    reply["Count"].as_i64().unwrap()
}

#[tokio::test]
async fn a_write_landing_after_its_segment_and_field_were_deleted_is_taken_out_of_them() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("straggler");
    let client = stack.client(&tenant);
    let segment = tiered_tenant(&client).await;
    let store = Store::connect(&StoreConfig {
        table_name: stack.table.clone(),
        endpoint_url: Some(stack.moto_url.clone()),
    })
    .await;

    // A create validated while the segment and the field existed...
    let fields = store.list_fields(&tenant).await.unwrap();
    let existing = store.get_segment(&tenant, &segment).await.unwrap();
    let body = json!({
        "id": "late", "email": "late@example.com", "segment_id": segment,
        "fields": { "tier": "AA", "distributor": true },
    });
    let schema = domain::CustomerSchema {
        fields: &fields,
        segment: existing.as_ref(),
        current_segment_id: None,
    };
    let draft = domain::CustomerDraft::parse(&body, &schema).unwrap();
    let customer = draft.into_customer("late".into(), chrono::Utc::now());

    // ...lands after both were deleted (nobody was in them yet, so both deletes pass).
    client
        .delete(&format!("/segments/{segment}"))
        .await
        .expect(204);
    client.delete("/fields/tier").await.expect(204);
    let remaining: Vec<_> = fields
        .iter()
        .filter(|f| f.name != "tier")
        .cloned()
        .collect();
    store
        .save_customer(&tenant, None, &customer, &fields)
        .await
        .unwrap();

    // The stream's counting finds the dangling memberships and repairs the customer.
    let repaired = eventually(&client, "/customers/late", CATCH_UP, |c| {
        c["written_by"] == "system"
    })
    .await;
    assert_eq!(repaired["segment_id"], Value::Null, "{repaired}");
    assert_eq!(repaired["fields"], json!({ "distributor": true }));
    let shard = store::keys::shard_of("late");
    assert_eq!(
        rows_in(
            stack,
            &store::keys::segment_members(&tenant, &segment, shard)
        )
        .await,
        0
    );
    assert_eq!(
        rows_in(
            stack,
            &store::keys::cluster_members(&tenant, "tier", "AA", shard)
        )
        .await,
        0
    );
    // The field that still exists keeps its member, counted once.
    let clusters = eventually(&client, "/clusters", CATCH_UP, |c| {
        cluster_counts(c).get("distributor").map(|d| d.0) == Some(1)
    })
    .await;
    assert_eq!(cluster_counts(&clusters).len(), remaining.len());
}

#[tokio::test]
async fn writers_of_one_customer_that_keep_colliding_get_409_never_503() {
    let stack = Stack::get().await;
    let table = private_table("same-customer");
    // A long transaction window, so that the 16 writers really do collide.
    set_latency(stack, json!({ "table": table, "transact": 200 })).await;
    let api = stack.spawn_api(&[("TABLE_NAME", &table)]);
    let client = api.client(&unique_tenant("same-customer"));
    let body = |name: &str| json!({ "email": "one@example.com", "first_name": name });
    client
        .put("/customers/one", &body("first"))
        .await
        .expect(201);

    let writers = (0..16).map(|i| {
        let client = client.clone();
        let name = format!("w{i}");
        tokio::spawn(async move {
            (
                name.clone(),
                client.put("/customers/one", &body(&name)).await,
            )
        })
    });
    let mut landed = Vec::new();
    for writer in writers {
        let (name, reply) = writer.await.unwrap();
        match reply.status {
            200 => landed.push(name),
            // Losing every retry to the other writers is a conflict, not an outage.
            _ => assert_problem(&reply, 409, "conflict"),
        }
    }
    assert!(!landed.is_empty(), "no writer landed");
    let stored = client.get("/customers/one").await.expect(200);
    assert!(
        landed
            .iter()
            .any(|name| stored.json["first_name"] == name.as_str()),
        "{} is none of {landed:?}",
        stored.json["first_name"]
    );
}
