//! `/fields`: what only field definitions do: their defaults and types, validation of
//! definitions, compatible and incompatible changes, deletion rules, member counts and
//! the cluster field limit. What every resource does (create, read, list, merge-patch,
//! conditional requests, error statuses) is `contract.rs`, run against fields too.

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Stack, unique_tenant};

async fn field(client: &Client, name: &str) -> tests::Reply {
    client.get(&format!("/fields/{name}")).await
}

#[tokio::test]
async fn create_applies_the_field_defaults() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-create"));

    let reply = client
        .post("/fields", &json!({ "name": "vat", "type": "string" }))
        .await;
    assert_entity(&reply, 201, 1);
    let body = &reply.json;
    assert_eq!(body["name"], "vat");
    assert_eq!(body["label"], "vat");
    assert_eq!(body["type"], "string");
    assert_eq!(body["required"], false);
    assert_eq!(body["cluster"], false);
    assert_eq!(body["member_count"], 0);
    for absent in ["values", "default", "max_length"] {
        assert!(body.get(absent).is_none(), "{absent}: {}", reply.text);
    }
}

#[tokio::test]
async fn every_type_is_accepted_with_a_normalized_default() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-types"));

    let cases = [
        (
            json!({ "name": "code", "label": "Code", "type": "string", "max_length": 20, "default": "X1" }),
            json!("X1"),
        ),
        (
            json!({ "name": "notes", "type": "text", "max_length": 10000, "default": "n" }),
            json!("n"),
        ),
        (
            json!({ "name": "employees", "type": "integer", "default": 3, "cluster": true }),
            json!(3),
        ),
        (
            json!({ "name": "credit", "type": "decimal", "default": "0012.50" }),
            json!("12.5"),
        ),
        (
            json!({ "name": "distributor", "type": "boolean", "cluster": true, "default": false }),
            json!(false),
        ),
        (
            json!({ "name": "since", "type": "date", "default": "2026-01-31" }),
            json!("2026-01-31"),
        ),
        (
            json!({ "name": "seen_at", "type": "datetime", "default": "2026-01-01T01:00:00+01:00" }),
            json!("2026-01-01T00:00:00Z"),
        ),
        (
            json!({ "name": "billing", "type": "email", "default": "billing@example.com" }),
            json!("billing@example.com"),
        ),
        (
            json!({ "name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true, "required": true, "default": "B" }),
            json!("B"),
        ),
    ];
    for (body, default) in &cases {
        let reply = client.post("/fields", body).await;
        assert_entity(&reply, 201, 1);
        assert_eq!(reply.json["default"], *default, "{}", reply.text);
        assert_eq!(reply.json["type"], body["type"]);
        assert_eq!(
            reply.json["cluster"],
            body.get("cluster").cloned().unwrap_or(json!(false))
        );
    }
    let tier = field(&client, "tier").await.expect(200).json;
    assert_eq!(tier["values"], json!(["AA", "A", "B"]));
    assert_eq!(tier["required"], true);
    let code = field(&client, "code").await.expect(200).json;
    assert_eq!(code["label"], "Code");
    assert_eq!(code["max_length"], 20);

    // The list is sorted by name and never paged.
    let (items, next) = page(&client, "/fields").await;
    let names: Vec<&str> = items.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "billing",
            "code",
            "credit",
            "distributor",
            "employees",
            "notes",
            "seen_at",
            "since",
            "tier"
        ]
    );
    assert_eq!(next, None);
    assert_eq!(items[8], tier);
}

#[tokio::test]
async fn invalid_definitions_list_every_failing_property() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-invalid"));

    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({ "name": "Bad Name", "type": "text", "cluster": true, "values": ["x"], "max_length": 20000, "colour": 1 }),
            &["/name", "/values", "/max_length", "/cluster", "/colour"],
        ),
        (json!({ "type": "string" }), &["/name"]),
        (json!({ "name": "1abc", "type": "string" }), &["/name"]),
        (json!({ "name": "has-dash", "type": "string" }), &["/name"]),
        (
            json!({ "name": "a".repeat(65), "type": "string" }),
            &["/name"],
        ),
        (json!({ "name": "x" }), &["/type"]),
        (json!({ "name": "x", "type": "money" }), &["/type"]),
        (json!({ "name": "x", "type": "enum" }), &["/values"]),
        (
            json!({ "name": "x", "type": "enum", "values": [] }),
            &["/values"],
        ),
        (
            json!({ "name": "x", "type": "enum", "values": ["A", "A"] }),
            &["/values"],
        ),
        (
            json!({ "name": "x", "type": "enum", "values": "A" }),
            &["/values"],
        ),
        (
            json!({ "name": "x", "type": "string", "values": ["A"] }),
            &["/values"],
        ),
        (
            json!({ "name": "x", "type": "integer", "max_length": 5 }),
            &["/max_length"],
        ),
        (
            json!({ "name": "x", "type": "string", "max_length": 256 }),
            &["/max_length"],
        ),
        (
            json!({ "name": "x", "type": "string", "max_length": 0 }),
            &["/max_length"],
        ),
        (
            json!({ "name": "x", "type": "text", "max_length": 10001 }),
            &["/max_length"],
        ),
        (
            json!({ "name": "x", "type": "string", "required": "yes" }),
            &["/required"],
        ),
        (
            json!({ "name": "x", "type": "string", "cluster": "yes" }),
            &["/cluster"],
        ),
        (
            json!({ "name": "x", "type": "integer", "default": "x" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "enum", "values": ["A"], "default": "Z" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "boolean", "default": "yes" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "date", "default": "2026-02-30" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "email", "default": "nope" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "string", "max_length": 2, "default": "abc" }),
            &["/default"],
        ),
        (
            json!({ "name": "x", "type": "string", "colour": "red" }),
            &["/colour"],
        ),
    ];
    for kind in ["text", "decimal", "date", "datetime", "email"] {
        let reply = client
            .post(
                "/fields",
                &json!({ "name": "x", "type": kind, "cluster": true }),
            )
            .await;
        assert_eq!(pointers(&reply), set(&["/cluster"]), "{kind}");
    }
    for (body, expected) in &cases {
        let reply = client.post("/fields", body).await;
        assert_eq!(pointers(&reply), set(expected), "{body}");
        assert_eq!(reply.json["instance"], "/fields");
    }

    // Nothing was created; the limits themselves are accepted.
    let (items, _) = page(&client, "/fields").await;
    assert!(items.is_empty(), "{items:?}");
    for body in [
        json!({ "name": format!("a{}", "b".repeat(63)), "type": "string" }),
        json!({ "name": "s255", "type": "string", "max_length": 255 }),
        json!({ "name": "t10000", "type": "text", "max_length": 10000 }),
        json!({ "name": "a_1", "type": "string", "cluster": true }),
    ] {
        let reply = client.post("/fields", &body).await;
        assert_entity(&reply, 201, 1);
    }
}

/// PATCHes `name` and expects 200 at `version`.
async fn patch_ok(client: &Client, name: &str, patch: Value, version: u64) -> Value {
    let reply = client.patch(&format!("/fields/{name}"), &patch).await;
    assert_entity(&reply, 200, version);
    assert_eq!(reply.json["name"], name);
    reply.json
}

/// PATCHes `name`, expects 409, and checks nothing changed.
async fn patch_conflict(client: &Client, name: &str, patch: Value) {
    let before = field(client, name).await.expect(200);
    let reply = client.patch(&format!("/fields/{name}"), &patch).await;
    assert_problem(&reply, 409, "conflict");
    let after = field(client, name).await.expect(200);
    assert_eq!(after.json, before.json, "{patch} changed {name}");
    assert_eq!(etag(&after), etag(&before));
}

#[tokio::test]
async fn widening_type_changes_are_allowed() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-widen"));

    for (name, kind) in [
        ("s", "string"),
        ("i", "integer"),
        ("e1", "email"),
        ("e2", "email"),
    ] {
        create_field(&client, &json!({ "name": name, "type": kind })).await;
    }
    for name in ["en1", "en2", "en3"] {
        create_field(
            &client,
            &json!({ "name": name, "type": "enum", "values": ["A", "B"] }),
        )
        .await;
    }
    create_field(
        &client,
        &json!({ "name": "cl", "type": "enum", "values": ["A", "B"], "cluster": true }),
    )
    .await;

    let before = field(&client, "s").await.expect(200).json;
    let s = patch_ok(&client, "s", json!({ "type": "text" }), 2).await;
    assert_eq!(s["type"], "text");
    assert_eq!(s["created_at"], before["created_at"]);
    assert!(instant(&s["updated_at"]) > instant(&before["updated_at"]));
    let i = patch_ok(&client, "i", json!({ "type": "decimal" }), 2).await;
    assert_eq!(i["type"], "decimal");
    let e1 = patch_ok(&client, "e1", json!({ "type": "string" }), 2).await;
    assert_eq!(e1["type"], "string");
    let e2 = patch_ok(&client, "e2", json!({ "type": "text" }), 2).await;
    assert_eq!(e2["type"], "text");
    // An enum becomes free text: its value list goes with the merge patch's null.
    let en1 = patch_ok(
        &client,
        "en1",
        json!({ "type": "string", "values": null }),
        2,
    )
    .await;
    assert_eq!(en1["type"], "string");
    assert!(en1.get("values").is_none(), "{en1}");
    let en2 = patch_ok(&client, "en2", json!({ "type": "text", "values": null }), 2).await;
    assert_eq!(en2["type"], "text");
    // A cluster enum can widen to string and stays a cluster; its value list goes
    // without the client having to null it.
    let cl = patch_ok(&client, "cl", json!({ "type": "string" }), 2).await;
    assert_eq!(cl["type"], "string");
    assert_eq!(cl["cluster"], true);
    assert!(cl.get("values").is_none(), "{cl}");

    // Adding enum values, changing the label, the default and max_length upwards.
    let en3 = patch_ok(&client, "en3", json!({ "values": ["B", "A", "C"] }), 2).await;
    assert_eq!(en3["values"], json!(["B", "A", "C"]));
    let en3 = patch_ok(
        &client,
        "en3",
        json!({ "label": "Level", "default": "C", "name": "en3" }),
        3,
    )
    .await;
    assert_eq!(en3["label"], "Level");
    assert_eq!(en3["default"], "C");
    assert_eq!(
        en3["created_at"],
        field(&client, "en3").await.json["created_at"]
    );
    create_field(
        &client,
        &json!({ "name": "ml", "type": "string", "max_length": 50 }),
    )
    .await;
    let ml = patch_ok(&client, "ml", json!({ "max_length": 60 }), 2).await;
    assert_eq!(ml["max_length"], 60);
    let ml = patch_ok(&client, "ml", json!({ "max_length": null }), 3).await;
    assert!(ml.get("max_length").is_none(), "{ml}");
}

#[tokio::test]
async fn incompatible_changes_conflict_and_change_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-narrow"));

    for (name, kind) in [
        ("i", "integer"),
        ("t", "text"),
        ("d", "decimal"),
        ("s", "string"),
        ("b", "boolean"),
        ("day", "date"),
    ] {
        create_field(&client, &json!({ "name": name, "type": kind })).await;
    }
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A", "B"] }),
    )
    .await;
    create_field(
        &client,
        &json!({ "name": "flag", "type": "boolean", "cluster": true }),
    )
    .await;
    create_field(
        &client,
        &json!({ "name": "ml", "type": "string", "max_length": 50 }),
    )
    .await;

    patch_conflict(&client, "i", json!({ "type": "boolean" })).await;
    patch_conflict(&client, "t", json!({ "type": "string" })).await;
    patch_conflict(&client, "d", json!({ "type": "integer" })).await;
    patch_conflict(&client, "s", json!({ "type": "integer" })).await;
    patch_conflict(&client, "b", json!({ "type": "string" })).await;
    patch_conflict(&client, "day", json!({ "type": "datetime" })).await;
    // cluster is fixed at creation, both ways.
    patch_conflict(&client, "s", json!({ "cluster": true })).await;
    patch_conflict(&client, "flag", json!({ "cluster": false })).await;
    // Removing an enum value.
    patch_conflict(&client, "tier", json!({ "values": ["AA", "A"] })).await;
    patch_conflict(&client, "tier", json!({ "values": ["AA", "A", "C"] })).await;
    // Lowering max_length, also from the type's implicit maximum.
    patch_conflict(&client, "ml", json!({ "max_length": 40 })).await;
    patch_conflict(&client, "s", json!({ "max_length": 100 })).await;
    patch_conflict(&client, "t", json!({ "max_length": 5000 })).await;

    // An invalid result is 422 and changes nothing.
    let reply = client.patch("/fields/i", &json!({ "default": "x" })).await;
    assert_eq!(pointers(&reply), set(&["/default"]));
    assert_entity(&field(&client, "i").await, 200, 1);
}

#[tokio::test]
async fn member_count_counts_customers_holding_a_cluster_value() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-members"));
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true }),
    )
    .await;
    create_field(
        &client,
        &json!({ "name": "distributor", "type": "boolean", "cluster": true, "default": false }),
    )
    .await;
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;

    // Counts are kept from the stream: wait for each to reach its value.
    let count = |name: &'static str, expected: i64| {
        let client = client.clone();
        async move { wait_for_member_count(&client, name, expected).await }
    };

    let c1 = create_customer(
        &client,
        &json!({ "email": "c1@example.com", "fields": { "tier": "A", "note": "n" } }),
    )
    .await;
    let c2 = create_customer(
        &client,
        &json!({ "email": "c2@example.com", "fields": { "tier": "AA", "distributor": true } }),
    )
    .await;
    let c3 = create_customer(&client, &json!({ "email": "c3@example.com" })).await;
    assert_eq!(c3["fields"], json!({ "distributor": false }));
    count("tier", 2).await;
    count("distributor", 3).await;
    assert_eq!(member_count(&client, "note").await, 0);

    let path = |c: &Value| format!("/customers/{}", c["id"].as_str().unwrap());
    client
        .patch(&path(&c3), &json!({ "fields": { "tier": "B" } }))
        .await
        .expect(200);
    count("tier", 3).await;
    client
        .patch(&path(&c1), &json!({ "fields": { "tier": null } }))
        .await
        .expect(200);
    count("tier", 2).await;
    client
        .patch(&path(&c2), &json!({ "fields": { "tier": "A" } }))
        .await
        .expect(200);
    // A move between values leaves the field's count as it is.
    assert_eq!(member_count(&client, "tier").await, 2);
    assert_eq!(client.delete(&path(&c2)).await.status, 204);
    count("tier", 1).await;
    count("distributor", 2).await;

    // The counter survives changes of the definition.
    let reply = client
        .patch("/fields/tier", &json!({ "values": ["AA", "A", "B", "C"] }))
        .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["member_count"], 1);
    assert_eq!(member_count(&client, "tier").await, 1);
}

#[tokio::test]
async fn a_cluster_field_in_use_cannot_be_deleted_until_no_customer_holds_a_value() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-inuse"));
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }),
    )
    .await;
    let c1 = create_customer(
        &client,
        &json!({ "email": "c1@example.com", "fields": { "tier": "A" } }),
    )
    .await;
    let c2 = create_customer(
        &client,
        &json!({ "email": "c2@example.com", "fields": { "tier": "AA" } }),
    )
    .await;
    create_customer(&client, &json!({ "email": "c3@example.com" })).await;

    // In use is known at once, from the membership rows; the count reported is the
    // stream's, at least 1 while it catches up.
    let reply = client.delete("/fields/tier").await;
    assert_problem(&reply, 409, "conflict");
    let reported = reply.json["customer_count"].as_i64();
    assert!(matches!(reported, Some(1 | 2)), "{}", reply.text);

    let read = wait_for_member_count(&client, "tier", 2).await;
    assert_entity(&read, 200, 1);
    let reply = client.delete("/fields/tier").await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(reply.json["customer_count"], 2, "{}", reply.text);

    client
        .patch(
            &format!("/customers/{}", c1["id"].as_str().unwrap()),
            &json!({ "fields": { "tier": null } }),
        )
        .await
        .expect(200);
    wait_for_member_count(&client, "tier", 1).await;
    let reply = client.delete("/fields/tier").await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(reply.json["customer_count"], 1, "{}", reply.text);

    assert_eq!(
        client
            .delete(&format!("/customers/{}", c2["id"].as_str().unwrap()))
            .await
            .status,
        204
    );
    let reply = client.delete("/fields/tier").await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert_problem(&field(&client, "tier").await, 404, "not_found");
    let reply = client.get("/customers?cluster.tier=A").await;
    assert_problem(&reply, 400, "bad_request");
}

#[tokio::test]
async fn a_deleted_fields_values_disappear_from_reads_and_are_dropped_on_write() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-del"));
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }),
    )
    .await;
    let customer = create_customer(
        &client,
        &json!({ "id": "c1", "email": "c1@example.com", "fields": { "note": "x", "tier": "A" } }),
    )
    .await;
    assert_eq!(customer["fields"], json!({ "note": "x", "tier": "A" }));

    // Non-cluster fields can be deleted while customers hold values.
    let reply = client.delete("/fields/note").await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    let (items, _) = page(&client, "/fields").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "tier");

    let read = client.get("/customers/c1").await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json["fields"], json!({ "tier": "A" }));
    let (listed, _) = page(&client, "/customers").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["fields"], json!({ "tier": "A" }));
    let (listed, _) = page(&client, "/customers?cluster.tier=A").await;
    assert_eq!(listed[0]["fields"], json!({ "tier": "A" }));
    let (listed, _) = page(&client, "/customers?email=c1%40example.com").await;
    assert_eq!(listed[0]["fields"], json!({ "tier": "A" }));

    // Writing the customer neither fails on nor keeps the stale value.
    let reply = client
        .patch("/customers/c1", &json!({ "first_name": "Ann" }))
        .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["fields"], json!({ "tier": "A" }));
    // A write naming the deleted field is refused like any unknown field.
    let reply = client
        .patch("/customers/c1", &json!({ "fields": { "note": "y" } }))
        .await;
    assert_eq!(pointers(&reply), set(&["/fields/note"]));

    // After the write the value is gone for good: a new field of that name starts empty.
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    let read = client.get("/customers/c1").await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json["fields"], json!({ "tier": "A" }));
}

#[tokio::test]
async fn a_deleted_fields_values_do_not_come_back_with_a_new_field_of_that_name() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-resurrect"));
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    create_customer(
        &client,
        &json!({ "id": "c1", "email": "c1@example.com", "fields": { "note": "secret" } }),
    )
    .await;
    assert_eq!(client.delete("/fields/note").await.status, 204);
    assert_eq!(
        client.get("/customers/c1").await.expect(200).json["fields"],
        json!({})
    );

    // A new, unrelated field reuses the name; the customer was not written meanwhile.
    create_field(
        &client,
        &json!({ "name": "note", "type": "string", "cluster": true }),
    )
    .await;
    let read = client.get("/customers/c1").await.expect(200);
    assert_eq!(read.json["fields"], json!({}), "deleted value came back");
    let note = field(&client, "note").await.expect(200);
    assert_eq!(note.json["member_count"], 0);
    let (listed, _) = page(&client, "/customers?cluster.note=secret").await;
    assert!(listed.is_empty(), "{listed:?}");

    // The next write drops the old value without touching the new field's counts; a
    // value set under the new field counts as usual.
    let reply = client
        .patch("/customers/c1", &json!({ "first_name": "Cy" }))
        .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["fields"], json!({}));
    // Counts are kept from the stream, in order: once a later write is counted, the
    // stream is past the first one, which counted nothing.
    create_customer(
        &client,
        &json!({ "id": "c2", "email": "c2@example.com", "fields": { "note": "probe" } }),
    )
    .await;
    wait_for_cluster_values(
        &client,
        &[("note", json!([{"value": "probe", "count": 1}]))],
    )
    .await;
    wait_for_member_count(&client, "note", 1).await;
    let reply = client
        .patch("/customers/c1", &json!({ "fields": { "note": "open" } }))
        .await;
    assert_entity(&reply, 200, 3);
    assert!(reply.json.get("field_stamps").is_none(), "{}", reply.text);
    wait_for_member_count(&client, "note", 2).await;
    wait_for_cluster_values(
        &client,
        &[(
            "note",
            json!([{"value": "open", "count": 1}, {"value": "probe", "count": 1}]),
        )],
    )
    .await;
    let (listed, _) = page(&client, "/customers?cluster.note=open").await;
    assert_eq!(ids(&listed), ["c1"]);
}

#[tokio::test]
async fn at_most_16_cluster_fields_per_tenant() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fld-limit"));
    let kinds = ["string", "integer", "boolean"];
    for i in 0..16 {
        let kind = kinds[i % kinds.len()];
        let reply = client
            .post(
                "/fields",
                &json!({ "name": format!("c{i:02}"), "type": kind, "cluster": true }),
            )
            .await;
        assert_entity(&reply, 201, 1);
    }
    let reply = client
        .post(
            "/fields",
            &json!({ "name": "c16", "type": "enum", "values": ["A"], "cluster": true }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    assert_problem(&field(&client, "c16").await, 404, "not_found");

    // Other fields are still welcome.
    let reply = client
        .post("/fields", &json!({ "name": "plain", "type": "string" }))
        .await;
    assert_entity(&reply, 201, 1);

    // Deleting one frees a slot, for one.
    assert_eq!(client.delete("/fields/c00").await.status, 204);
    let reply = client
        .post(
            "/fields",
            &json!({ "name": "c16", "type": "enum", "values": ["A"], "cluster": true }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let reply = client
        .post(
            "/fields",
            &json!({ "name": "c17", "type": "boolean", "cluster": true }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");

    let (items, _) = page(&client, "/fields").await;
    assert_eq!(items.len(), 17);
    assert_eq!(items.iter().filter(|f| f["cluster"] == true).count(), 16);
}
