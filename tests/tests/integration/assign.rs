//! Automatic cluster assignment: the local server polls the table's stream like the
//! Lambda event source mapping and runs the assign handler, so every customer write
//! through the API is followed, within a bounded wait, by the rules' answer.
//!
//! The rule is the Rust example (`rules/examples/tier-rust`, built from source by
//! `rules/build-examples.sh`): `tier` from `annual_revenue`, `distributor` from
//! `customer_type`.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use tests::{Stack, unique_tenant};

/// How long the stream may take to deliver and the rules to answer.
const SETTLE: Duration = Duration::from_secs(30);

fn tier_is(expected: &'static str) -> impl Fn(&Value) -> bool {
    move |c| c["fields"]["tier"] == expected
}

#[tokio::test]
async fn clusters_follow_every_customer_change_with_provenance() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("asg-follow"));
    tiering_rule(&client, true).await;

    create_customer(
        &client,
        &json!({"id": "big", "email": "big@example.com",
                "fields": {"annual_revenue": "150000", "customer_type": "distributor"}}),
    )
    .await;
    let assigned = eventually(&client, "/customers/big", SETTLE, tier_is("AA")).await;
    assert_eq!(assigned["fields"]["distributor"], true);
    assert_eq!(assigned["written_by"], "rules");
    assert_eq!(assigned["version"], 2, "one write by the rules: {assigned}");

    let clusters = client.get("/customers/big/clusters").await.expect(200).json;
    assert_eq!(clusters["clusters"]["tier"]["value"], "AA");
    assert_eq!(clusters["clusters"]["tier"]["source"]["rule"], "tiering");
    assert_eq!(clusters["clusters"]["tier"]["source"]["version"], 1);
    assert!(is_timestamp(&clusters["clusters"]["tier"]["source"]["at"]));
    assert_eq!(clusters["rule_errors"], json!([]));

    // A change through the API is re-evaluated; the indexes follow.
    client
        .patch(
            "/customers/big",
            &json!({"fields": {"annual_revenue": "5000", "customer_type": "retail"}}),
        )
        .await
        .expect(200);
    let assigned = eventually(&client, "/customers/big", SETTLE, tier_is("B")).await;
    assert_eq!(assigned["fields"]["distributor"], false);
    let (listed, _) = page(&client, "/customers?cluster.tier=B").await;
    assert_eq!(ids(&listed), ["big"]);
    let (listed, _) = page(&client, "/customers?cluster.tier=AA").await;
    assert!(listed.is_empty(), "{listed:?}");
    // The counts are kept from the stream: once they show B, they are past the AA.
    wait_for_cluster_values(&client, &[("tier", json!([{"value": "B", "count": 1}]))]).await;
    wait_for_member_count(&client, "tier", 1).await;

    // Settled means settled: the rules' own write does not trigger another evaluation
    // (once the stream has handled everything written so far, nothing more was written).
    let version = assigned["version"].clone();
    drain_stream(&stack.client(&unique_tenant("asg-follow-sentinel"))).await;
    let again = client.get("/customers/big").await.expect(200).json;
    assert_eq!(again["version"], version, "the rules kept writing: {again}");
}

#[tokio::test]
async fn a_failing_rule_leaves_a_visible_error_and_other_customers_are_assigned() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("asg-fail"));
    tiering_rule(&client, true).await;

    create_customer(
        &client,
        &json!({"id": "bad", "email": "bad@example.com",
                "fields": {"annual_revenue": "lots"}}),
    )
    .await;
    create_customer(
        &client,
        &json!({"id": "good", "email": "good@example.com",
                "fields": {"annual_revenue": "20000"}}),
    )
    .await;

    eventually(&client, "/customers/good", SETTLE, tier_is("A")).await;
    let clusters = eventually(&client, "/customers/bad/clusters", SETTLE, |c| {
        c["rule_errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    let error = &clusters["rule_errors"][0];
    assert_eq!(error["rule"], "tiering");
    assert_eq!(error["version"], 1);
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{error}"
    );
    assert_eq!(
        clusters["clusters"],
        json!({}),
        "a failed rule sets nothing"
    );

    // Fixing the customer clears the error and assigns it.
    client
        .patch(
            "/customers/bad",
            &json!({"fields": {"annual_revenue": "100000"}}),
        )
        .await
        .expect(200);
    eventually(&client, "/customers/bad", SETTLE, tier_is("AA")).await;
    let clusters = eventually(&client, "/customers/bad/clusters", SETTLE, |c| {
        c["rule_errors"] == json!([])
    })
    .await;
    assert_eq!(clusters["clusters"]["tier"]["source"]["rule"], "tiering");
}

#[tokio::test]
async fn manual_edits_racing_the_rules_are_never_overwritten() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("asg-race"));
    tiering_rule(&client, true).await;
    create_customer(
        &client,
        &json!({"id": "c1", "email": "c1@example.com", "fields": {"annual_revenue": "1"}}),
    )
    .await;

    // A burst of edits, each landing while earlier ones are still being evaluated.
    for (i, revenue) in ["50000", "200000", "3000", "15000"].iter().enumerate() {
        client
            .patch(
                "/customers/c1",
                &json!({"first_name": format!("edit-{i}"), "fields": {"annual_revenue": revenue}}),
            )
            .await
            .expect(200);
    }
    // The last edit decides, and no rule write brought back an older value.
    let settled = eventually(&client, "/customers/c1", SETTLE, tier_is("A")).await;
    assert_eq!(settled["first_name"], "edit-3");
    assert_eq!(settled["fields"]["annual_revenue"], "15000");
    drain_stream(&stack.client(&unique_tenant("asg-race-sentinel"))).await;
    let after = client.get("/customers/c1").await.expect(200).json;
    assert_eq!(after, settled, "something changed after settling");
    wait_for_cluster_values(&client, &[("tier", json!([{"value": "A", "count": 1}]))]).await;
    wait_for_member_count(&client, "tier", 1).await;
}

#[tokio::test]
async fn a_disabled_rule_assigns_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("asg-off"));
    tiering_rule(&client, true).await;
    client
        .patch("/rules/tiering", &json!({"enabled": false}))
        .await
        .expect(200);
    create_customer(
        &client,
        &json!({"id": "c1", "email": "c1@example.com", "fields": {"annual_revenue": "150000"}}),
    )
    .await;
    // Once a customer created after it, under an enabled rule of another tenant, is
    // assigned, the stream has handled this one's record: it must still be untouched.
    drain_stream(&stack.client(&unique_tenant("asg-on"))).await;
    let untouched = client.get("/customers/c1").await.expect(200).json;
    assert_eq!(untouched["version"], 1, "{untouched}");
    assert!(untouched["fields"].get("tier").is_none(), "{untouched}");
}
