//! `/customers`: what only customers do: client ids, field values, the segment rule,
//! unique emails, PUT (create or replace), the filtered listings and their paging, index
//! and count maintenance, all-or-nothing writes and concurrent retrying writers. What
//! every resource does (create, read, list and page, merge-patch, conditional requests,
//! error statuses, two writers with one If-Match) is `contract.rs`, run against
//! customers too.

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Method, Reply, Stack, unique_tenant};

async fn customer(client: &Client, id: &str) -> Reply {
    client.get(&format!("/customers/{id}")).await
}

async fn segment_count(client: &Client, segment_id: &str) -> Value {
    client
        .get(&format!("/segments/{segment_id}"))
        .await
        .expect(200)
        .json["customer_count"]
        .clone()
}

/// The ids of a listing, walked whole in pages of 50.
async fn listed(client: &Client, path: &str) -> Vec<String> {
    ids(&list_all(client, path, 50).await)
}

async fn new_segment(client: &Client, name: &str, status: &str) -> String {
    create_segment(client, &json!({ "name": name, "status": status })).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn tier_field(client: &Client) {
    create_field(
        client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true }),
    )
    .await;
}

#[tokio::test]
async fn create_with_only_an_email_generates_the_id() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-min"));

    let reply = client
        .post("/customers", &json!({ "email": "ann@example.com" }))
        .await;
    assert_entity(&reply, 201, 1);
    assert!(is_generated_id(&id(&reply)), "{}", reply.text);
    let body = &reply.json;
    assert_eq!(body["email"], "ann@example.com");
    assert_eq!(body["fields"], json!({}));
    for absent in ["first_name", "last_name", "document", "phone", "segment_id"] {
        assert!(body.get(absent).is_none(), "{absent}: {}", reply.text);
    }
}

#[tokio::test]
async fn create_with_every_property_and_a_client_id() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-full"));
    tier_field(&client).await;
    let segment = new_segment(&client, "Gold", "active").await;

    let body = json!({
        "id": "cust-001.A_b",
        "email": "Ann.Smith@Example.com",
        "first_name": "Ann",
        "last_name": "Smith",
        "document": "12.345.678-9",
        "phone": "+1 (555) 010-2030.1",
        "segment_id": segment,
        "fields": { "tier": "AA" }
    });
    let reply = client.post("/customers", &body).await;
    assert_entity(&reply, 201, 1);
    assert_eq!(reply.header("location"), Some("/customers/cust-001.A_b"));
    for key in [
        "id",
        "email",
        "first_name",
        "last_name",
        "document",
        "phone",
        "segment_id",
        "fields",
    ] {
        assert_eq!(reply.json[key], body[key], "{key}: {}", reply.text);
    }
    let read = customer(&client, "cust-001.A_b").await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, reply.json);
    wait_for_segment_count(&client, &segment, 1).await;
    wait_for_member_count(&client, "tier", 1).await;

    // The longest id is 64 characters.
    let long = format!("A{}", "9".repeat(63));
    let reply = client
        .post(
            "/customers",
            &json!({ "id": long, "email": "long@example.com" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(
        reply.header("location"),
        Some(format!("/customers/{long}").as_str())
    );
}

#[tokio::test]
async fn field_values_are_normalized_and_defaults_applied() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-norm"));
    for body in [
        json!({ "name": "credit", "type": "decimal" }),
        json!({ "name": "credit_n", "type": "decimal" }),
        json!({ "name": "ratio", "type": "decimal" }),
        json!({ "name": "seen_at", "type": "datetime" }),
        json!({ "name": "since", "type": "date" }),
        json!({ "name": "employees", "type": "integer", "default": 3 }),
        json!({ "name": "distributor", "type": "boolean", "cluster": true, "default": false }),
        json!({ "name": "notes", "type": "text" }),
        json!({ "name": "contact", "type": "email" }),
        json!({ "name": "code", "type": "string", "max_length": 5 }),
        json!({ "name": "unset", "type": "string" }),
    ] {
        create_field(&client, &body).await;
    }

    let reply = client
        .post(
            "/customers",
            &json!({
                "email": "n@example.com",
                "fields": {
                    "credit": "0012.50",
                    "credit_n": 12,
                    "ratio": 0.25,
                    "seen_at": "2026-01-01T01:00:00+01:00",
                    "since": "2026-01-31",
                    "notes": "hello",
                    "contact": "x@y.io",
                    "code": "abcde",
                    "unset": null
                }
            }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let expected = json!({
        "credit": "12.5",
        "credit_n": "12",
        "ratio": "0.25",
        "seen_at": "2026-01-01T00:00:00Z",
        "since": "2026-01-31",
        "employees": 3,
        "distributor": false,
        "notes": "hello",
        "contact": "x@y.io",
        "code": "abcde"
    });
    assert_eq!(reply.json["fields"], expected, "{}", reply.text);
    let read = customer(&client, &id(&reply)).await.expect(200);
    assert_eq!(read.json["fields"], expected);

    // Given values win over defaults.
    let reply = client
        .post(
            "/customers",
            &json!({ "email": "m@example.com", "fields": { "employees": 7, "distributor": true } }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(
        reply.json["fields"],
        json!({ "employees": 7, "distributor": true })
    );
}

#[tokio::test]
async fn invalid_customers_list_every_failing_property_and_create_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-invalid"));
    tier_field(&client).await;
    for body in [
        json!({ "name": "score", "type": "integer" }),
        json!({ "name": "code", "type": "string", "max_length": 3 }),
        json!({ "name": "vat", "type": "string", "required": true }),
    ] {
        create_field(&client, &body).await;
    }

    let reply = client
        .post(
            "/customers",
            &json!({
                "id": "-bad",
                "email": "nope",
                "phone": "call me",
                "segment_id": "missing",
                "colour": 1,
                "first_name": "f".repeat(101),
                "fields": { "x": 1, "tier": "Z", "score": "high", "code": "toolong" }
            }),
        )
        .await;
    assert_eq!(
        pointers(&reply),
        set(&[
            "/id",
            "/email",
            "/phone",
            "/segment_id",
            "/colour",
            "/first_name",
            "/fields/x",
            "/fields/tier",
            "/fields/score",
            "/fields/code",
            "/fields/vat",
        ])
    );

    let reply = client.post("/customers", &json!({})).await;
    assert_eq!(pointers(&reply), set(&["/email", "/fields/vat"]));
    assert_eq!(error_detail(&reply, "/email"), "is required");
    assert_eq!(error_detail(&reply, "/fields/vat"), "is required");

    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({ "email": "a@b", "fields": { "vat": "1" } }),
            &["/email"],
        ),
        (
            json!({ "email": "a b@example.com", "fields": { "vat": "1" } }),
            &["/email"],
        ),
        (
            json!({ "id": "a".repeat(65), "email": "a@example.com", "fields": { "vat": "1" } }),
            &["/id"],
        ),
        (
            json!({ "id": "a/b", "email": "a@example.com", "fields": { "vat": "1" } }),
            &["/id"],
        ),
        (
            json!({ "id": "a#b", "email": "a@example.com", "fields": { "vat": "1" } }),
            &["/id"],
        ),
        (
            json!({ "email": "a@example.com", "fields": { "vat": "1", "score": 1.5 } }),
            &["/fields/score"],
        ),
        (
            json!({ "email": "a@example.com", "fields": { "vat": 1 } }),
            &["/fields/vat"],
        ),
        (
            json!({ "email": "a@example.com", "fields": { "vat": null } }),
            &["/fields/vat"],
        ),
        (
            json!({ "email": "a@example.com", "phone": "555-CALL", "fields": { "vat": "1" } }),
            &["/phone"],
        ),
    ];
    for (body, expected) in &cases {
        let reply = client.post("/customers", body).await;
        assert_eq!(pointers(&reply), set(expected), "{body}");
    }
    let reply = client
        .post(
            "/customers",
            &json!({ "email": "a@example.com", "fields": [1] }),
        )
        .await;
    assert!(pointers(&reply).contains("/fields"), "{}", reply.text);

    let (items, _) = page(&client, "/customers").await;
    assert!(items.is_empty(), "{items:?}");
    assert_eq!(member_count(&client, "tier").await, 0);
    assert_problem(&customer(&client, "-bad").await, 404, "not_found");
}

#[tokio::test]
async fn the_segment_must_exist_and_be_active() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-seg"));
    let inactive = new_segment(&client, "Dormant", "inactive").await;
    let active = new_segment(&client, "Live", "active").await;

    let reply = client
        .post(
            "/customers",
            &json!({ "email": "a@example.com", "segment_id": inactive }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    let reply = client
        .post(
            "/customers",
            &json!({ "email": "a@example.com", "segment_id": "0190000000007000800000000000dead" }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    let reply = client
        .put(
            "/customers/c1",
            &json!({ "email": "a@example.com", "segment_id": inactive }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    assert_eq!(segment_count(&client, &inactive).await, 0);
    assert!(listed(&client, "/customers").await.is_empty());

    // Joining, then moving to an inactive segment, is refused too.
    let reply = client
        .put(
            "/customers/c1",
            &json!({ "email": "a@example.com", "segment_id": active }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let reply = client
        .patch("/customers/c1", &json!({ "segment_id": inactive }))
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    wait_for_segment_count(&client, &active, 1).await;
    assert_eq!(segment_count(&client, &inactive).await, 0);
    let read = customer(&client, "c1").await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json["segment_id"], active.as_str());

    // Deactivating a segment stops new members, but its customers stay and stay editable.
    let reply = client
        .patch(
            &format!("/segments/{active}"),
            &json!({ "status": "inactive" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = client
        .patch("/customers/c1", &json!({ "first_name": "Ada" }))
        .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["segment_id"], active.as_str());
    assert_eq!(segment_count(&client, &active).await, 1);
    let reply = client
        .put(
            "/customers/c2",
            &json!({ "email": "b@example.com", "segment_id": active }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
}

#[tokio::test]
async fn duplicate_ids_and_emails_conflict() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-dup"));

    let first = create_customer(
        &client,
        &json!({ "id": "dup", "email": "Same@Example.com", "first_name": "First" }),
    )
    .await;
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "dup", "email": "other@example.com" }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    for email in ["Same@Example.com", "same@example.com", "SAME@EXAMPLE.COM"] {
        let reply = client.post("/customers", &json!({ "email": email })).await;
        assert_problem(&reply, 409, "conflict");
        let reply = client
            .put("/customers/other", &json!({ "email": email }))
            .await;
        assert_problem(&reply, 409, "conflict");
    }
    assert_problem(&customer(&client, "other").await, 404, "not_found");
    let read = customer(&client, "dup").await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, first);
    assert_eq!(listed(&client, "/customers").await, ["dup"]);

    // The email of the refused duplicate id was not reserved.
    let reply = client
        .post("/customers", &json!({ "email": "other@example.com" }))
        .await;
    assert_entity(&reply, 201, 1);

    // Changing another customer's email onto a taken one conflicts, and changes nothing.
    let second = id(&reply);
    let reply = client
        .patch(
            &format!("/customers/{second}"),
            &json!({ "email": "same@EXAMPLE.com" }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    let read = customer(&client, &second).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json["email"], "other@example.com");
}

#[tokio::test]
async fn failed_creates_leave_nothing_behind() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-atomic"));
    tier_field(&client).await;
    let segment = new_segment(&client, "Gold", "active").await;
    let inactive = new_segment(&client, "Dormant", "inactive").await;
    create_customer(
        &client,
        &json!({ "id": "base", "email": "taken@example.com", "segment_id": segment, "fields": { "tier": "A" } }),
    )
    .await;
    // The counts, kept from the stream, catch up with the base customer first.
    wait_for_segment_count(&client, &segment, 1).await;
    wait_for_member_count(&client, "tier", 1).await;

    let unchanged = |client: &Client| {
        let client = client.clone();
        let segment = segment.clone();
        async move {
            assert_eq!(segment_count(&client, &segment).await, 1);
            assert_eq!(member_count(&client, "tier").await, 1);
            assert_eq!(
                listed(&client, &format!("/customers?segment={segment}")).await,
                ["base"]
            );
            assert_eq!(listed(&client, "/customers?cluster.tier=A").await, ["base"]);
            assert!(
                listed(&client, "/customers?cluster.tier=AA")
                    .await
                    .is_empty()
            );
        }
    };

    // Duplicate email (in another case) with a segment and a cluster value.
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "f1", "email": "TAKEN@example.com", "segment_id": segment, "fields": { "tier": "AA" } }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    assert_problem(&customer(&client, "f1").await, 404, "not_found");
    unchanged(&client).await;

    // Duplicate id with a fresh email: the email stays free.
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "base", "email": "fresh@example.com", "segment_id": segment, "fields": { "tier": "AA" } }),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    unchanged(&client).await;
    let base = customer(&client, "base").await;
    assert_entity(&base, 200, 1);
    assert_eq!(base.json["email"], "taken@example.com");
    let (found, _) = page(&client, "/customers?email=fresh%40example.com").await;
    assert!(found.is_empty(), "{found:?}");
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "fresh", "email": "fresh@example.com" }),
        )
        .await;
    assert_entity(&reply, 201, 1);

    // Inactive segment and invalid field value: nothing is reserved either.
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "f3", "email": "new3@example.com", "segment_id": inactive, "fields": { "tier": "A" } }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "f4", "email": "new4@example.com", "fields": { "tier": "Z" } }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/fields/tier"]));
    assert_eq!(segment_count(&client, &inactive).await, 0);
    unchanged(&client).await;
    for (id, email) in [("n3", "new3@example.com"), ("n4", "new4@example.com")] {
        let reply = client
            .post("/customers", &json!({ "id": id, "email": email }))
            .await;
        assert_entity(&reply, 201, 1);
    }
    assert_eq!(
        listed(&client, "/customers").await,
        in_listing_order(&["base", "fresh", "n3", "n4"])
    );
}

#[tokio::test]
async fn put_creates_then_replaces_whole() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-put"));
    tier_field(&client).await;

    let reply = client
        .put(
            "/customers/p1",
            &json!({ "email": "p1@example.com", "first_name": "Ann", "fields": { "tier": "A" } }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(reply.header("location"), Some("/customers/p1"));
    assert_eq!(reply.json["id"], "p1");
    let created = reply.json;
    assert_eq!(listed(&client, "/customers?cluster.tier=A").await, ["p1"]);
    wait_for_member_count(&client, "tier", 1).await;

    // A full replacement: what is not sent is gone.
    let reply = client
        .put(
            "/customers/p1",
            &json!({ "email": "p1@example.com", "last_name": "Smith" }),
        )
        .await;
    assert_entity(&reply, 200, 2);
    assert!(reply.header("location").is_none(), "{reply:#?}");
    assert!(reply.json.get("first_name").is_none(), "{}", reply.text);
    assert_eq!(reply.json["last_name"], "Smith");
    assert_eq!(reply.json["fields"], json!({}));
    assert_eq!(reply.json["created_at"], created["created_at"]);
    assert!(
        listed(&client, "/customers?cluster.tier=A")
            .await
            .is_empty()
    );
    wait_for_member_count(&client, "tier", 0).await;

    // Conditional replacement.
    let reply = send_json(
        &client,
        Method::PUT,
        "/customers/p1",
        &json!({ "email": "p1@example.com", "first_name": "Stale" }),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    let read = customer(&client, "p1").await;
    assert_entity(&read, 200, 2);
    assert!(read.json.get("first_name").is_none());
    let reply = send_json(
        &client,
        Method::PUT,
        "/customers/p1",
        &json!({ "email": "p1@example.com", "first_name": "Fresh" }),
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_entity(&reply, 200, 3);
    let reply = send_json(
        &client,
        Method::PUT,
        "/customers/p1",
        &json!({ "id": "p1", "email": "p1-new@example.com" }),
        &[("if-match", "*")],
    )
    .await;
    assert_entity(&reply, 200, 4);
    assert_eq!(reply.json["email"], "p1-new@example.com");

    // The old email is free again; the new one is taken.
    let reply = client
        .post("/customers", &json!({ "email": "P1@example.com" }))
        .await;
    assert_entity(&reply, 201, 1);
    let reply = client
        .post("/customers", &json!({ "email": "p1-NEW@example.com" }))
        .await;
    assert_problem(&reply, 409, "conflict");

    // A precondition on an absent customer fails, and creates nothing.
    for tag in ["\"1\"", "*"] {
        let reply = send_json(
            &client,
            Method::PUT,
            "/customers/absent",
            &json!({ "email": "absent@example.com" }),
            &[("if-match", tag)],
        )
        .await;
        assert_problem(&reply, 412, "precondition_failed");
        assert_problem(&customer(&client, "absent").await, 404, "not_found");
    }

    // The body's id must be the path's.
    let reply = client
        .put(
            "/customers/p1",
            &json!({ "id": "p2", "email": "p1-new@example.com" }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/id"]));
    let reply = client
        .put(
            "/customers/p2",
            &json!({ "id": "p1", "email": "x@example.com" }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/id"]));
    assert_problem(&customer(&client, "p2").await, 404, "not_found");

    // An invalid replacement changes nothing; an invalid create creates nothing.
    let reply = client
        .put("/customers/p1", &json!({ "email": "bad" }))
        .await;
    assert_eq!(pointers(&reply), set(&["/email"]));
    assert_entity(&customer(&client, "p1").await, 200, 4);
    let reply = client
        .put("/customers/p3", &json!({ "first_name": "No email" }))
        .await;
    assert_eq!(pointers(&reply), set(&["/email"]));
    assert_problem(&customer(&client, "p3").await, 404, "not_found");
}

#[tokio::test]
async fn patch_merges_into_the_current_customer() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-patch"));
    tier_field(&client).await;
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    let segment = new_segment(&client, "Gold", "active").await;
    let created = create_customer(
        &client,
        &json!({
            "id": "m1", "email": "m1@example.com", "first_name": "Ann", "last_name": "Smith",
            "phone": "123", "segment_id": segment, "fields": { "tier": "A", "note": "n" }
        }),
    )
    .await;
    wait_for_segment_count(&client, &segment, 1).await;
    wait_for_member_count(&client, "tier", 1).await;

    let reply = client
        .patch("/customers/m1", &json!({ "first_name": "Anna" }))
        .await;
    assert_entity(&reply, 200, 2);
    let mut expected = created.clone();
    expected["first_name"] = json!("Anna");
    for key in [
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "segment_id",
        "fields",
        "created_at",
    ] {
        assert_eq!(reply.json[key], expected[key], "{key}");
    }
    assert_eq!(customer(&client, "m1").await.expect(200).json, reply.json);

    // null removes, as merge-patch+json.
    let reply = send_json(
        &client,
        Method::PATCH,
        "/customers/m1",
        &json!({ "last_name": null, "fields": { "tier": null } }),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_entity(&reply, 200, 3);
    assert!(reply.json.get("last_name").is_none(), "{}", reply.text);
    assert_eq!(reply.json["fields"], json!({ "note": "n" }));
    assert_eq!(reply.json["first_name"], "Anna");
    wait_for_member_count(&client, "tier", 0).await;

    let reply = client
        .patch("/customers/m1", &json!({ "fields": { "tier": "AA" } }))
        .await;
    assert_entity(&reply, 200, 4);
    assert_eq!(reply.json["fields"], json!({ "note": "n", "tier": "AA" }));

    let reply = client
        .patch("/customers/m1", &json!({ "segment_id": null }))
        .await;
    assert_entity(&reply, 200, 5);
    assert!(reply.json.get("segment_id").is_none(), "{}", reply.text);
    wait_for_segment_count(&client, &segment, 0).await;

    // Invalid results are 422 and change nothing.
    let before = customer(&client, "m1").await.expect(200).json;
    let reply = client
        .patch(
            "/customers/m1",
            &json!({ "email": "bad", "fields": { "tier": "Z", "x": 1 } }),
        )
        .await;
    assert_eq!(
        pointers(&reply),
        set(&["/email", "/fields/tier", "/fields/x"])
    );
    let read = customer(&client, "m1").await;
    assert_entity(&read, 200, 5);
    assert_eq!(read.json, before);
}

#[tokio::test]
async fn delete_removes_the_customer_from_every_listing_and_count() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-delete"));
    tier_field(&client).await;
    let segment = new_segment(&client, "Gold", "active").await;
    for (id, email) in [("d1", "d1@example.com"), ("d2", "d2@example.com")] {
        create_customer(
            &client,
            &json!({ "id": id, "email": email, "segment_id": segment, "fields": { "tier": "A" } }),
        )
        .await;
    }
    wait_for_segment_count(&client, &segment, 2).await;
    wait_for_member_count(&client, "tier", 2).await;

    let reply = client.delete("/customers/d1").await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert_problem(&customer(&client, "d1").await, 404, "not_found");

    assert_eq!(listed(&client, "/customers").await, ["d2"]);
    assert_eq!(
        listed(&client, &format!("/customers?segment={segment}")).await,
        ["d2"]
    );
    assert_eq!(listed(&client, "/customers?cluster.tier=A").await, ["d2"]);
    let (found, _) = page(&client, "/customers?email=d1%40example.com").await;
    assert!(found.is_empty(), "{found:?}");
    wait_for_segment_count(&client, &segment, 1).await;
    wait_for_member_count(&client, "tier", 1).await;

    // The email is free for a new customer, and the id for a new create.
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "d3", "email": "D1@example.com" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let reply = client
        .post(
            "/customers",
            &json!({ "id": "d1", "email": "again@example.com" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let (found, _) = page(&client, "/customers?email=d1%40EXAMPLE.com").await;
    assert_eq!(ids(&found), ["d3"]);
}

#[tokio::test]
async fn listings_filter_by_segment_email_and_cluster_value() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-filter"));
    tier_field(&client).await;
    create_field(
        &client,
        &json!({ "name": "distributor", "type": "boolean", "cluster": true }),
    )
    .await;
    create_field(
        &client,
        &json!({ "name": "employees", "type": "integer", "cluster": true }),
    )
    .await;
    create_field(
        &client,
        &json!({ "name": "region", "type": "string", "cluster": true }),
    )
    .await;
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    let s1 = new_segment(&client, "One", "active").await;
    let s2 = new_segment(&client, "Two", "active").await;
    let empty = new_segment(&client, "Empty", "active").await;

    let a = create_customer(
        &client,
        &json!({ "id": "a", "email": "A.One@Example.com", "segment_id": s1,
                 "fields": { "tier": "AA", "distributor": true, "employees": 10, "region": "north west" } }),
    )
    .await;
    create_customer(
        &client,
        &json!({ "id": "b", "email": "b@example.com", "segment_id": s1,
                 "fields": { "tier": "A", "distributor": false, "employees": 10, "note": "x" } }),
    )
    .await;
    create_customer(
        &client,
        &json!({ "id": "c", "email": "c@example.com", "segment_id": s2,
                 "fields": { "tier": "AA", "distributor": true, "employees": -3 } }),
    )
    .await;
    create_customer(&client, &json!({ "id": "d", "email": "d@example.com" })).await;

    assert_eq!(
        listed(&client, "/customers").await,
        in_listing_order(&["a", "b", "c", "d"])
    );
    assert_eq!(
        listed(&client, &format!("/customers?segment={s1}")).await,
        in_listing_order(&["a", "b"])
    );
    assert_eq!(
        listed(&client, &format!("/customers?segment={s2}")).await,
        ["c"]
    );
    assert!(
        listed(&client, &format!("/customers?segment={empty}"))
            .await
            .is_empty()
    );
    assert_eq!(
        listed(&client, "/customers?cluster.tier=AA").await,
        in_listing_order(&["a", "c"])
    );
    assert_eq!(listed(&client, "/customers?cluster.tier=A").await, ["b"]);
    assert!(
        listed(&client, "/customers?cluster.tier=B")
            .await
            .is_empty()
    );
    assert_eq!(
        listed(&client, "/customers?cluster.distributor=true").await,
        in_listing_order(&["a", "c"])
    );
    assert_eq!(
        listed(&client, "/customers?cluster.distributor=false").await,
        ["b"]
    );
    assert_eq!(
        listed(&client, "/customers?cluster.employees=10").await,
        in_listing_order(&["a", "b"])
    );
    assert_eq!(
        listed(&client, "/customers?cluster.employees=-3").await,
        ["c"]
    );
    assert_eq!(
        listed(&client, "/customers?cluster.region=north%20west").await,
        ["a"]
    );
    assert!(
        listed(&client, "/customers?cluster.region=north")
            .await
            .is_empty()
    );

    // Email: case-insensitive, zero or one item, the full customer.
    for email in [
        "A.One@Example.com",
        "a.one@example.com",
        "A.ONE@EXAMPLE.COM",
    ] {
        let (items, next) = page(&client, &format!("/customers?email={}", enc(email))).await;
        assert_eq!(items, vec![a.clone()], "{email}");
        assert_eq!(next, None);
    }
    let (items, next) = page(&client, "/customers?email=nobody%40example.com").await;
    assert!(items.is_empty());
    assert_eq!(next, None);

    // Listed customers are what GET returns.
    let (items, _) = page(&client, "/customers?cluster.tier=A").await;
    assert_eq!(items[0], customer(&client, "b").await.expect(200).json);

    for query in [
        "cluster.distributor=yes",
        "cluster.distributor=TRUE",
        "cluster.employees=ten",
        "cluster.employees=1.5",
        "cluster.tier=Z",
        "cluster.note=x",
        "cluster.nope=1",
        "cluster.=1",
        "segment=x&email=a%40example.com",
        "segment=x&segment=y",
        "cluster.tier=AA&cluster.tier=A",
        "segment=x&match=some",
        "email=a%40example.com&cluster.tier=AA",
        "colour=red",
        "tier=AA",
    ] {
        let reply = client.get(&format!("/customers?{query}")).await;
        assert_problem(&reply, 400, "bad_request");
    }
}

#[tokio::test]
async fn paging_walks_every_listing_exactly_once_and_binds_cursors_to_it() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-paging"));
    tier_field(&client).await;
    create_field(
        &client,
        &json!({ "name": "distributor", "type": "boolean", "cluster": true }),
    )
    .await;
    let segment = new_segment(&client, "Gold", "active").await;
    let other = new_segment(&client, "Silver", "active").await;
    let all: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    for (i, id) in all.iter().enumerate() {
        let mut body = json!({
            "id": id,
            "email": format!("{id}@example.com"),
            "fields": { "tier": "A", "distributor": i % 2 == 0 }
        });
        if i < 5 {
            body["segment_id"] = json!(segment);
        }
        create_customer(&client, &body).await;
    }
    let in_segment = all[..5].to_vec();
    let distributors: Vec<String> = all.iter().step_by(2).cloned().collect();

    let segment_path = format!("/customers?segment={segment}");
    for limit in [1, 3, 7] {
        assert_eq!(
            ids(&list_all(&client, "/customers", limit).await),
            in_listing_order(&all),
            "limit {limit}"
        );
        assert_eq!(
            ids(&list_all(&client, &segment_path, limit).await),
            in_listing_order(&in_segment),
            "limit {limit}"
        );
        assert_eq!(
            ids(&list_all(&client, "/customers?cluster.tier=A", limit).await),
            in_listing_order(&all),
            "limit {limit}"
        );
        assert_eq!(
            ids(&list_all(&client, "/customers?cluster.distributor=true", limit).await),
            in_listing_order(&distributors),
            "limit {limit}"
        );
    }
    let (items, next) = page(&client, "/customers?limit=3").await;
    assert_eq!(ids(&items), in_listing_order(&all)[..3]);
    assert!(next.is_some());

    // A cursor works only on the listing that produced it.
    let cursor_of = |path: String| {
        let client = client.clone();
        async move {
            let (_, next) = page(&client, &with_param(&path, "limit", "2")).await;
            enc(&next.expect("a cursor after a full page"))
        }
    };
    let unfiltered = cursor_of("/customers".into()).await;
    let by_segment = cursor_of(segment_path.clone()).await;
    let by_tier = cursor_of("/customers?cluster.tier=A".into()).await;
    let by_distributor = cursor_of("/customers?cluster.distributor=true".into()).await;
    let refused = [
        format!("/customers?segment={segment}&cursor={unfiltered}"),
        format!("/customers?cursor={by_segment}"),
        format!("/customers?segment={other}&cursor={by_segment}"),
        format!("/customers?cluster.tier=A&cursor={by_segment}"),
        format!("/customers?cursor={by_tier}"),
        format!("/customers?cluster.tier=AA&cursor={by_tier}"),
        format!("/customers?cluster.distributor=true&cursor={by_tier}"),
        format!("/customers?cluster.distributor=false&cursor={by_distributor}"),
        format!("/segments?cursor={unfiltered}"),
        "/customers?cursor=garbage".to_string(),
        format!("/customers?segment={segment}&cursor=garbage"),
        "/customers?cluster.tier=A&cursor=garbage".to_string(),
    ];
    for path in &refused {
        let reply = client.get(path).await;
        assert_problem(&reply, 400, "bad_request");
    }
    // The right listing accepts them.
    for path in [
        format!("/customers?cursor={unfiltered}"),
        format!("/customers?segment={segment}&cursor={by_segment}"),
        format!("/customers?cluster.tier=A&cursor={by_tier}"),
    ] {
        page(&client, &path).await;
    }

    // limit is checked on every listing.
    for base in [
        "/customers?".to_string(),
        format!("/customers?segment={segment}&"),
        "/customers?cluster.tier=A&".to_string(),
        "/customers?email=c1%40example.com&".to_string(),
    ] {
        for limit in ["0", "101", "x"] {
            let reply = client.get(&format!("{base}limit={limit}")).await;
            assert_problem(&reply, 400, "bad_request");
        }
    }
}

#[tokio::test]
async fn the_email_listing_refuses_an_invalid_cursor() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-emailcur"));
    create_customer(&client, &json!({ "email": "e@example.com" })).await;
    let reply = client
        .get("/customers?email=e%40example.com&cursor=garbage")
        .await;
    assert_problem(&reply, 400, "bad_request");
}

#[tokio::test]
async fn indexes_and_counts_follow_every_write() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-index"));
    tier_field(&client).await;
    let s1 = new_segment(&client, "One", "active").await;
    let s2 = new_segment(&client, "Two", "active").await;
    create_customer(
        &client,
        &json!({ "id": "x", "email": "x@example.com", "segment_id": s1, "fields": { "tier": "A" } }),
    )
    .await;
    create_customer(
        &client,
        &json!({ "id": "y", "email": "y@example.com", "segment_id": s1, "fields": { "tier": "A" } }),
    )
    .await;
    wait_for_segment_count(&client, &s1, 2).await;
    wait_for_member_count(&client, "tier", 2).await;

    // tier A -> AA.
    client
        .patch("/customers/x", &json!({ "fields": { "tier": "AA" } }))
        .await
        .expect(200);
    assert_eq!(listed(&client, "/customers?cluster.tier=A").await, ["y"]);
    assert_eq!(listed(&client, "/customers?cluster.tier=AA").await, ["x"]);
    assert_eq!(member_count(&client, "tier").await, 2);

    // Segment move s1 -> s2.
    let reply = client
        .patch("/customers/x", &json!({ "segment_id": s2 }))
        .await;
    assert_entity(&reply, 200, 3);
    wait_for_segment_count(&client, &s1, 1).await;
    wait_for_segment_count(&client, &s2, 1).await;
    assert_eq!(
        listed(&client, &format!("/customers?segment={s1}")).await,
        ["y"]
    );
    assert_eq!(
        listed(&client, &format!("/customers?segment={s2}")).await,
        ["x"]
    );

    // Email change moves the email lookup.
    client
        .patch("/customers/x", &json!({ "email": "x2@example.com" }))
        .await
        .expect(200);
    let (found, _) = page(&client, "/customers?email=x%40example.com").await;
    assert!(found.is_empty());
    let (found, _) = page(&client, "/customers?email=X2%40example.com").await;
    assert_eq!(ids(&found), ["x"]);

    // A PUT that drops segment and tier.
    let reply = client
        .put("/customers/y", &json!({ "email": "y@example.com" }))
        .await;
    assert_entity(&reply, 200, 2);
    wait_for_segment_count(&client, &s1, 0).await;
    assert!(
        listed(&client, "/customers?cluster.tier=A")
            .await
            .is_empty()
    );
    wait_for_member_count(&client, "tier", 1).await;
    // A PUT that puts them back, elsewhere.
    let reply = client
        .put(
            "/customers/y",
            &json!({ "email": "y@example.com", "segment_id": s2, "fields": { "tier": "B" } }),
        )
        .await;
    assert_entity(&reply, 200, 3);
    wait_for_segment_count(&client, &s2, 2).await;
    assert_eq!(listed(&client, "/customers?cluster.tier=B").await, ["y"]);
    wait_for_member_count(&client, "tier", 2).await;

    // DELETE clears everything.
    for id in ["x", "y"] {
        assert_eq!(client.delete(&format!("/customers/{id}")).await.status, 204);
    }
    wait_for_segment_count(&client, &s2, 0).await;
    wait_for_member_count(&client, "tier", 0).await;
    for path in [
        "/customers".to_string(),
        format!("/customers?segment={s2}"),
        "/customers?cluster.tier=AA".to_string(),
        "/customers?cluster.tier=B".to_string(),
        "/customers?email=y%40example.com".to_string(),
    ] {
        assert!(listed(&client, &path).await.is_empty(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retrying_writers_all_land() {
    const WRITERS: usize = 8;
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("cus-retry"));
    for i in 0..WRITERS {
        create_field(
            &client,
            &json!({ "name": format!("k{i}"), "type": "string" }),
        )
        .await;
    }
    create_customer(&client, &json!({ "id": "r", "email": "r@example.com" })).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let client = client.clone();
        tasks.spawn(async move {
            for attempt in 1..=200 {
                let read = client.get("/customers/r").await.expect(200);
                let tag = etag(&read);
                let reply = send_json(
                    &client,
                    Method::PATCH,
                    "/customers/r",
                    &json!({ "fields": { format!("k{i}"): format!("v{i}") } }),
                    &[("if-match", &tag)],
                )
                .await;
                match reply.status {
                    200 => return attempt,
                    412 => continue,
                    _ => panic!("writer {i}: unexpected reply {reply:#?}"),
                }
            }
            panic!("writer {i} never got its update in");
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("writer task");
    }
    let read = customer(&client, "r").await;
    assert_entity(&read, 200, 1 + WRITERS as u64);
    let expected: serde_json::Map<String, Value> = (0..WRITERS)
        .map(|i| (format!("k{i}"), json!(format!("v{i}"))))
        .collect();
    assert_eq!(read.json["fields"], Value::Object(expected));
}
