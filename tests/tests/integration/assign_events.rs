//! The assign function's handler, in process, with DynamoDB Streams events shaped as
//! Lambda delivers them (`aws_lambda_events`): duplicates, reordering and poison records.
//!
//! Setup goes through a private `local-stack` on its own table with its stream poller
//! off, so nothing but these tests hands records to the handler.

use crate::common::*;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use domain::Customer;
use evaluation::Runner;
use evaluation::stream::Assigner;
use serde_json::{Value, json};
use store::{Store, StoreConfig};
use tests::{ApiInstance, Client, Stack, unique_tenant};

struct Setup {
    _api: ApiInstance,
    client: Client,
    store: Store,
    tenant: String,
    assigner: Assigner,
}

async fn setup(stack: &Stack, prefix: &str) -> Setup {
    let table = format!("assign-events-{}", unique_tenant(prefix));
    let api = stack.spawn_api(&[("TABLE_NAME", &table), ("LOCAL_STREAMS", "off")]);
    let tenant = unique_tenant(prefix);
    let client = api.client(&tenant);
    for field in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
        json!({"name": "annual_revenue", "type": "string"}),
    ] {
        create_field(&client, &field).await;
    }
    client
        .put(
            "/rules/tiering",
            &json!({"outputs": ["tier", "distributor"], "enabled": true}),
        )
        .await
        .expect(201);
    let reply = upload(&client, "tiering", &example("tier-rust")).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let store = Store::connect(&StoreConfig {
        table_name: table,
        endpoint_url: Some(stack.moto_url.clone()),
    })
    .await;
    let assigner = Assigner::new(Runner::new(store.clone()).expect("an engine"));
    Setup {
        _api: api,
        client,
        store,
        tenant,
        assigner,
    }
}

impl Setup {
    async fn customer(&self, id: &str) -> Customer {
        self.store
            .get_customer(&self.tenant, id)
            .await
            .unwrap()
            .expect("the customer exists")
    }

    /// The stream record of the customer's current item, as Lambda would deliver it.
    async fn record(&self, id: &str, sequence: u64) -> EventRecord {
        let customer = self.customer(id).await;
        let mut image: Value = serde_json::to_value(&customer).unwrap();
        let home = store::keys::customer_home(&self.tenant, id);
        image["pk"] = json!(home);
        image["sk"] = json!(format!("CUSTOMER#{id}"));
        let mut record = EventRecord::default();
        record.event_name = if customer.version == 1 {
            "INSERT".into()
        } else {
            "MODIFY".into()
        };
        record.event_source = Some("aws:dynamodb".into());
        record.change.keys = serde_dynamo::to_item(json!({
            "pk": home,
            "sk": format!("CUSTOMER#{id}"),
        }))
        .unwrap();
        record.change.new_image = serde_dynamo::to_item(image).unwrap();
        record.change.sequence_number = Some(format!("{sequence:021}"));
        record
    }

    async fn handle(&self, records: Vec<EventRecord>) -> Vec<String> {
        let mut event = Event::default();
        event.records = records;
        failed_sequences(self.assigner.handle(event).await)
    }
}

fn revenue(value: &str) -> Value {
    json!({"annual_revenue": value})
}

#[tokio::test]
async fn duplicates_and_replays_give_the_same_final_state() {
    let stack = Stack::get().await;
    let s = setup(stack, "ev-dup").await;
    create_customer(
        &s.client,
        &json!({"id": "c1", "email": "c1@example.com", "fields": revenue("150000")}),
    )
    .await;
    let first = s.record("c1", 1).await;

    assert!(s.handle(vec![first.clone()]).await.is_empty());
    let assigned = s.customer("c1").await;
    assert_eq!(assigned.version, 2);
    assert_eq!(assigned.fields["tier"], "AA");

    // The same record again, and twice in one batch: stale, nothing written.
    assert!(s.handle(vec![first.clone(), first]).await.is_empty());
    assert_eq!(s.customer("c1").await, assigned);
    // The rules' own write delivered anyway (the filter should drop it): ignored.
    let own = s.record("c1", 2).await;
    assert!(s.handle(vec![own]).await.is_empty());
    assert_eq!(s.customer("c1").await, assigned);
}

#[tokio::test]
async fn reordered_records_converge_on_the_newest_write() {
    let stack = Stack::get().await;
    let s = setup(stack, "ev-order").await;
    create_customer(
        &s.client,
        &json!({"id": "c1", "email": "c1@example.com", "fields": revenue("150000")}),
    )
    .await;
    let old = s.record("c1", 1).await;
    s.client
        .patch("/customers/c1", &json!({"fields": revenue("50")}))
        .await
        .expect(200);
    let new = s.record("c1", 2).await;

    // Newest first, then the stale one: the stale image never overwrites.
    assert!(s.handle(vec![new, old.clone()]).await.is_empty());
    let settled = s.customer("c1").await;
    assert_eq!(settled.fields["tier"], "B");
    assert_eq!(settled.fields["annual_revenue"], "50");
    assert_eq!(settled.version, 3);
    assert!(s.handle(vec![old]).await.is_empty());
    assert_eq!(s.customer("c1").await, settled);
}

#[tokio::test]
async fn a_poison_record_fails_alone_and_the_rest_of_the_batch_applies() {
    let stack = Stack::get().await;
    let s = setup(stack, "ev-poison").await;
    for (id, value) in [("good1", "20000"), ("bad", "lots"), ("good2", "500")] {
        create_customer(
            &s.client,
            &json!({"id": id, "email": format!("{id}@example.com"), "fields": revenue(value)}),
        )
        .await;
    }
    let poison = s.record("bad", 2).await;
    let batch = vec![
        s.record("good1", 1).await,
        poison.clone(),
        s.record("good2", 3).await,
    ];
    let failures = s.handle(batch).await;
    assert_eq!(failures, [format!("{:021}", 2)]);
    assert_eq!(s.customer("good1").await.fields["tier"], "A");
    assert_eq!(s.customer("good2").await.fields["tier"], "B");
    let bad = s.customer("bad").await;
    assert_eq!(bad.rule_errors.len(), 1, "{bad:?}");
    assert_eq!(bad.rule_errors[0].rule, "tiering");
    assert!(!bad.fields.contains_key("tier"));

    // Lambda retries the failed record: the failure is already recorded on a newer
    // version, so the retry is stale and the shard moves on.
    assert!(s.handle(vec![poison]).await.is_empty());
    assert_eq!(s.customer("bad").await, bad);
    let clusters = s.client.get("/customers/bad/clusters").await.expect(200);
    assert_eq!(clusters.json["rule_errors"][0]["rule"], "tiering");
}
