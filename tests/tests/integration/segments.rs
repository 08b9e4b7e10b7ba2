//! `/segments`: what only segments do: their defaults, the name's rules (length,
//! uniqueness without regard to case, renames), the status filter, deleting a segment in
//! use, and customer counts. What every resource does (create, read, list and page,
//! merge-patch, conditional requests, error statuses) is `contract.rs`, run against
//! segments too.

use crate::common::*;
use serde_json::{Value, json};
use tests::{Method, Stack, unique_tenant};

#[tokio::test]
async fn create_applies_the_segment_defaults() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-create"));

    let reply = client
        .post(
            "/segments",
            &json!({ "name": "VIP", "description": "Top spenders" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let body = &reply.json;
    assert_eq!(body["name"], "VIP");
    assert_eq!(body["status"], "active");
    assert_eq!(body["description"], "Top spenders");
    assert_eq!(body["customer_count"], 0);

    // status defaults to active, an explicit one is kept, description is optional.
    let inactive = client
        .post(
            "/segments",
            &json!({ "name": "Dormant", "status": "inactive" }),
        )
        .await;
    assert_entity(&inactive, 201, 1);
    assert_eq!(inactive.json["status"], "inactive");
    assert!(
        inactive.json.get("description").is_none(),
        "{}",
        inactive.text
    );
}

#[tokio::test]
async fn create_validation_lists_every_failing_property() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-invalid"));

    let reply = client
        .post(
            "/segments",
            &json!({ "status": "gone", "colour": "red", "description": 5 }),
        )
        .await;
    assert_eq!(
        pointers(&reply),
        set(&["/name", "/status", "/colour", "/description"])
    );
    assert_eq!(error_detail(&reply, "/name"), "is required");

    // Names are at most 64 characters.
    let reply = client
        .post("/segments", &json!({ "name": "n".repeat(65) }))
        .await;
    assert_eq!(pointers(&reply), set(&["/name"]));
    let reply = client
        .post("/segments", &json!({ "name": "n".repeat(64) }))
        .await;
    assert_entity(&reply, 201, 1);

    // Nothing but the 64-character segment was created.
    let (items, _) = page(&client, "/segments").await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["name"], "n".repeat(64));
}

#[tokio::test]
async fn status_filter_lists_only_that_status_and_binds_the_cursor() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-status"));

    let mut active = Vec::new();
    let mut inactive = Vec::new();
    for i in 0..6 {
        let status = if i % 3 == 1 { "inactive" } else { "active" };
        let segment = create_segment(
            &client,
            &json!({ "name": format!("S{i}"), "status": status }),
        )
        .await;
        let id = segment["id"].as_str().unwrap().to_string();
        if status == "active" {
            active.push(id);
        } else {
            inactive.push(id);
        }
    }

    let (items, _) = page(&client, "/segments?status=active").await;
    assert_eq!(ids(&items), active);
    assert!(items.iter().all(|s| s["status"] == "active"));
    let (items, _) = page(&client, "/segments?status=inactive").await;
    assert_eq!(ids(&items), inactive);
    assert!(items.iter().all(|s| s["status"] == "inactive"));

    for limit in [1, 2, 3] {
        let all = list_all(&client, "/segments?status=active", limit).await;
        assert_eq!(ids(&all), active, "limit {limit}");
        let all = list_all(&client, "/segments?status=inactive", limit).await;
        assert_eq!(ids(&all), inactive, "limit {limit}");
    }

    // A cursor of the active listing is refused by the others.
    let (_, cursor) = page(&client, "/segments?status=active&limit=1").await;
    let cursor = enc(&cursor.expect("a cursor"));
    page(
        &client,
        &format!("/segments?status=active&limit=1&cursor={cursor}"),
    )
    .await;
    for other in [
        format!("/segments?status=inactive&cursor={cursor}"),
        format!("/segments?cursor={cursor}"),
    ] {
        let reply = client.get(&other).await;
        assert_problem(&reply, 400, "bad_request");
    }
    // And the unfiltered listing's cursor by the filtered one.
    let (_, cursor) = page(&client, "/segments?limit=1").await;
    let cursor = enc(&cursor.expect("a cursor"));
    let reply = client
        .get(&format!("/segments?status=active&cursor={cursor}"))
        .await;
    assert_problem(&reply, 400, "bad_request");
}

#[tokio::test]
async fn patch_renames_and_frees_the_old_name() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-rename"));

    let old = create_segment(&client, &json!({ "name": "Old", "description": "d" })).await;
    let other = create_segment(&client, &json!({ "name": "Other" })).await;
    let path = format!("/segments/{}", old["id"].as_str().unwrap());

    let reply = client.patch(&path, &json!({ "name": "New" })).await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["id"], old["id"]);
    assert_eq!(reply.json["name"], "New");
    assert_eq!(reply.json["description"], "d");
    assert_eq!(reply.json["status"], "active");
    assert_eq!(reply.json["created_at"], old["created_at"]);
    assert!(
        instant(&reply.json["updated_at"]) > instant(&old["updated_at"]),
        "{}",
        reply.text
    );
    let renamed = reply.json;

    // The old name is free, the new one taken (case-insensitively).
    let reply = client.post("/segments", &json!({ "name": "NEW" })).await;
    assert_problem(&reply, 409, "conflict");
    let reused = client.post("/segments", &json!({ "name": "old" })).await;
    assert_entity(&reused, 201, 1);

    // Renaming onto a taken name conflicts and changes nothing.
    let reply = client.patch(&path, &json!({ "name": "OTHER" })).await;
    assert_problem(&reply, 409, "conflict");
    let read = client.get(&path).await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json, renamed);
    let other_path = format!("/segments/{}", other["id"].as_str().unwrap());
    assert_entity(&client.get(&other_path).await, 200, 1);

    // A rename refused by a stale If-Match reserves nothing.
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "name": "Spare" }),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    assert_entity(
        &client.post("/segments", &json!({ "name": "Spare" })).await,
        201,
        1,
    );

    // A change of case only keeps the name's slot.
    let reply = client.patch(&path, &json!({ "name": "NEW" })).await;
    assert_entity(&reply, 200, 3);
    assert_eq!(reply.json["name"], "NEW");
    let reply = client.post("/segments", &json!({ "name": "new" })).await;
    assert_problem(&reply, 409, "conflict");
}

#[tokio::test]
async fn a_segment_in_use_cannot_be_deleted_until_its_customers_leave() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-inuse"));

    let segment = create_segment(&client, &json!({ "name": "Gold" })).await;
    let segment_id = segment["id"].as_str().unwrap().to_string();
    let path = format!("/segments/{segment_id}");
    let c1 = create_customer(
        &client,
        &json!({ "email": "one@example.com", "segment_id": segment_id }),
    )
    .await;
    let c2 = create_customer(
        &client,
        &json!({ "email": "two@example.com", "segment_id": segment_id }),
    )
    .await;
    create_customer(&client, &json!({ "email": "none@example.com" })).await;

    // In use is known at once, from the membership rows; the count reported is the
    // stream's, at least 1 while it catches up.
    let reply = client.delete(&path).await;
    assert_problem(&reply, 409, "conflict");
    let reported = reply.json["customer_count"].as_i64();
    assert!(matches!(reported, Some(1 | 2)), "{}", reply.text);

    let read = wait_for_segment_count(&client, &segment_id, 2).await;
    assert_entity(&read, 200, 1);

    let reply = client.delete(&path).await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(reply.json["customer_count"], 2, "{}", reply.text);
    assert_eq!(client.get(&path).await.expect(200).json, read.json);

    // One leaves the segment, the other is deleted.
    let reply = client
        .patch(
            &format!("/customers/{}", c1["id"].as_str().unwrap()),
            &json!({ "segment_id": null }),
        )
        .await;
    assert_entity(&reply, 200, 2);
    assert!(reply.json.get("segment_id").is_none(), "{}", reply.text);
    wait_for_segment_count(&client, &segment_id, 1).await;
    let reply = client.delete(&path).await;
    assert_problem(&reply, 409, "conflict");
    assert_eq!(reply.json["customer_count"], 1, "{}", reply.text);

    let reply = client
        .delete(&format!("/customers/{}", c2["id"].as_str().unwrap()))
        .await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    let read = wait_for_segment_count(&client, &segment_id, 0).await;
    assert_entity(&read, 200, 1);

    let reply = client.delete(&path).await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert_problem(&client.get(&path).await, 404, "not_found");
    let (items, _) = page(&client, "/segments").await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn renaming_or_deactivating_keeps_the_customer_count() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-count"));

    let segment = create_segment(&client, &json!({ "name": "Silver" })).await;
    let segment_id = segment["id"].as_str().unwrap().to_string();
    let path = format!("/segments/{segment_id}");
    for i in 0..3 {
        create_customer(
            &client,
            &json!({ "email": format!("c{i}@example.com"), "segment_id": segment_id }),
        )
        .await;
    }
    wait_for_segment_count(&client, &segment_id, 3).await;
    let reply = client
        .patch(&path, &json!({ "name": "Platinum", "status": "inactive" }))
        .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["customer_count"], 3);
    let read = client.get(&path).await.expect(200);
    assert_eq!(read.json["customer_count"], 3);
    let (items, _) = page(&client, "/segments?status=inactive").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["customer_count"], 3);

    // Customers cannot join an inactive segment.
    let reply = client
        .post(
            "/customers",
            &json!({ "email": "late@example.com", "segment_id": segment_id }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    assert_eq!(
        client.get(&path).await.expect(200).json["customer_count"],
        3
    );
    let members: Vec<Value> =
        list_all(&client, &format!("/customers?segment={segment_id}"), 50).await;
    assert_eq!(members.len(), 3);
}
