//! `/segments`: create, read, list with paging and status filter, merge-patch, delete,
//! conditional requests and every error status.

use crate::common::*;
use serde_json::{Value, json};
use tests::{Method, Stack, unique_tenant};

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_segment() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-create"));

    let reply = client
        .post(
            "/segments",
            &json!({ "name": "VIP", "description": "Top spenders" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let id = id(&reply);
    assert!(is_generated_id(&id), "{id}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/segments/{id}").as_str())
    );
    let body = &reply.json;
    assert_eq!(body["name"], "VIP");
    assert_eq!(body["status"], "active");
    assert_eq!(body["description"], "Top spenders");
    assert_eq!(body["customer_count"], 0);
    assert!(is_timestamp(&body["created_at"]), "{}", reply.text);
    assert_eq!(body["created_at"], body["updated_at"]);

    let read = client.get(&format!("/segments/{id}")).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, reply.json);

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
    assert_eq!(reply.json["instance"], "/segments");
    assert_eq!(error_detail(&reply, "/colour"), "is not a known property");
    assert_eq!(error_detail(&reply, "/name"), "is required");

    // Only the unknown property.
    let reply = client
        .post("/segments", &json!({ "name": "Ok", "colour": "red" }))
        .await;
    assert_eq!(pointers(&reply), set(&["/colour"]));

    // Names are at most 64 characters.
    let reply = client
        .post("/segments", &json!({ "name": "n".repeat(65) }))
        .await;
    assert_eq!(pointers(&reply), set(&["/name"]));
    let reply = client
        .post("/segments", &json!({ "name": "n".repeat(64) }))
        .await;
    assert_entity(&reply, 201, 1);

    // A body that is JSON but not an object.
    let reply = client.post("/segments", &json!(["VIP"])).await;
    assert_problem(&reply, 422, "validation_failed");

    // Nothing but the 64-character segment was created.
    let (items, _) = page(&client, "/segments").await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["name"], "n".repeat(64));
}

#[tokio::test]
async fn duplicate_names_conflict_case_insensitively() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-dup"));

    let first = create_segment(&client, &json!({ "name": "AA" })).await;
    for name in ["AA", "aa", "Aa"] {
        let reply = client.post("/segments", &json!({ "name": name })).await;
        assert_problem(&reply, 409, "conflict");
    }
    let (items, next) = page(&client, "/segments").await;
    assert_eq!(items, vec![first]);
    assert_eq!(next, None);
}

#[tokio::test]
async fn malformed_empty_oversized_and_non_json_bodies_are_refused() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-bodies"));
    let segment = create_segment(&client, &json!({ "name": "Base" })).await;
    let path = format!("/segments/{}", segment["id"].as_str().unwrap());

    for (method, target) in [(Method::POST, "/segments"), (Method::PATCH, path.as_str())] {
        let reply = send_raw(
            &client,
            method.clone(),
            target,
            Some("application/json"),
            "{\"name\": ",
        )
        .await;
        assert_problem(&reply, 400, "bad_request");
        assert_eq!(reply.json["instance"], target);

        let reply = send_raw(
            &client,
            method.clone(),
            target,
            Some("application/json"),
            "",
        )
        .await;
        assert_problem(&reply, 400, "bad_request");

        let reply = send_raw(
            &client,
            method.clone(),
            target,
            Some("text/plain"),
            "{\"name\": \"Plain\"}",
        )
        .await;
        assert_problem(&reply, 415, "unsupported_media_type");

        let big = json!({ "name": "Big", "description": "x".repeat(300 * 1024) }).to_string();
        let reply = send_raw(
            &client,
            method.clone(),
            target,
            Some("application/json"),
            big,
        )
        .await;
        assert_problem(&reply, 413, "payload_too_large");
    }

    // Just under the limit the body is read, and judged on its content.
    let under = json!({ "name": "Big", "description": "x".repeat(200 * 1024) });
    let reply = client.post("/segments", &under).await;
    assert_eq!(pointers(&reply), set(&["/description"]));

    // Nothing changed.
    let (items, _) = page(&client, "/segments").await;
    assert_eq!(items, vec![segment.clone()]);
    let read = client.get(&path).await;
    assert_entity(&read, 200, 1);
}

#[tokio::test]
async fn unknown_ids_are_404_and_wrong_methods_are_405() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-404"));

    let path = "/segments/0190000000007000800000000000dead";
    let reply = client.get(path).await;
    assert_problem(&reply, 404, "not_found");
    assert_eq!(reply.json["instance"], path);
    let reply = client.patch(path, &json!({ "name": "X" })).await;
    assert_problem(&reply, 404, "not_found");
    let reply = client.delete(path).await;
    assert_problem(&reply, 404, "not_found");

    for unknown in ["/nope", "/segments/a/b", "/segment"] {
        let reply = client.get(unknown).await;
        assert_problem(&reply, 404, "not_found");
    }

    let reply = client.put(path, &json!({ "name": "X" })).await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(allowed(&reply), set(&["GET", "PATCH", "DELETE"]));
    let reply = client.post(path, &json!({ "name": "X" })).await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(allowed(&reply), set(&["GET", "PATCH", "DELETE"]));

    let reply = client.delete("/segments").await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(allowed(&reply), set(&["GET", "POST"]));
    let reply = client.put("/segments", &json!({ "name": "X" })).await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(allowed(&reply), set(&["GET", "POST"]));

    // Nothing was created by any of these.
    let (items, _) = page(&client, "/segments").await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn list_is_ordered_by_id_and_pages_walk_every_segment_once() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-list"));

    let mut created = Vec::new();
    for i in 0..5 {
        let segment = create_segment(&client, &json!({ "name": format!("S{i}") })).await;
        created.push(segment["id"].as_str().unwrap().to_string());
    }
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(sorted, created, "ids are time-ordered");

    let (items, next) = page(&client, "/segments").await;
    assert_eq!(ids(&items), created);
    assert_eq!(next, None);
    assert_eq!(items[2]["name"], "S2");

    // Pages of 2: 2 + 2 + 1.
    let (first, cursor) = page(&client, "/segments?limit=2").await;
    assert_eq!(ids(&first), created[..2]);
    let cursor = cursor.expect("a cursor after a full page");
    let (second, cursor) = page(
        &client,
        &format!("/segments?limit=2&cursor={}", enc(&cursor)),
    )
    .await;
    assert_eq!(ids(&second), created[2..4]);
    let cursor = cursor.expect("a cursor after a full page");
    let (third, cursor) = page(
        &client,
        &format!("/segments?limit=2&cursor={}", enc(&cursor)),
    )
    .await;
    assert_eq!(ids(&third), created[4..]);
    assert_eq!(cursor, None);

    for limit in [1, 3, 5, 100] {
        let all = list_all(&client, "/segments", limit).await;
        assert_eq!(ids(&all), created, "limit {limit}");
    }
}

#[tokio::test]
async fn bad_list_queries_are_400() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-query"));
    create_segment(&client, &json!({ "name": "One" })).await;
    create_segment(&client, &json!({ "name": "Two" })).await;

    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=",
        "status=deleted",
        "status=ACTIVE",
        "colour=red",
        "cursor=garbage",
        "cursor=eyJ0IjoieCJ9.AAAA",
    ] {
        let path = format!("/segments?{query}");
        let reply = client.get(&path).await;
        assert_problem(&reply, 400, "bad_request");
    }
    let (items, _) = page(&client, "/segments?limit=100").await;
    assert_eq!(items.len(), 2);
    let (items, _) = page(&client, "/segments?limit=1").await;
    assert_eq!(items.len(), 1);
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

    // A change of case only keeps the name's slot.
    let reply = client.patch(&path, &json!({ "name": "NEW" })).await;
    assert_entity(&reply, 200, 3);
    assert_eq!(reply.json["name"], "NEW");
    let reply = client.post("/segments", &json!({ "name": "new" })).await;
    assert_problem(&reply, 409, "conflict");
}

#[tokio::test]
async fn patch_is_a_merge_patch_and_validates_the_result() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-patch"));

    let segment = create_segment(&client, &json!({ "name": "VIP", "description": "Top" })).await;
    let id = segment["id"].as_str().unwrap().to_string();
    let path = format!("/segments/{id}");

    // application/merge-patch+json; null removes a member.
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "description": null, "status": "inactive" }),
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_entity(&reply, 200, 2);
    assert_eq!(reply.json["status"], "inactive");
    assert_eq!(reply.json["name"], "VIP");
    assert!(reply.json.get("description").is_none(), "{}", reply.text);

    // Echoing the read-only members is fine; the same id is fine.
    let mut echo = reply.json.clone();
    echo["status"] = json!("active");
    let reply = client.patch(&path, &echo).await;
    assert_entity(&reply, 200, 3);
    assert_eq!(reply.json["status"], "active");

    let before = client.get(&path).await.json;

    // A different id, an unknown member, a removed name, a bad status: 422, nothing changes.
    let reply = client.patch(&path, &json!({ "id": "another" })).await;
    assert_eq!(pointers(&reply), set(&["/id"]));
    let reply = client.patch(&path, &json!({ "colour": "red" })).await;
    assert_eq!(pointers(&reply), set(&["/colour"]));
    assert_eq!(error_detail(&reply, "/colour"), "is not a known property");
    let reply = client.patch(&path, &json!({ "name": null })).await;
    assert_eq!(pointers(&reply), set(&["/name"]));
    let reply = client
        .patch(&path, &json!({ "status": "gone", "name": "n".repeat(65) }))
        .await;
    assert_eq!(pointers(&reply), set(&["/status", "/name"]));

    let after = client.get(&path).await;
    assert_entity(&after, 200, 3);
    assert_eq!(after.json, before);
}

#[tokio::test]
async fn if_match_guards_patch_and_delete() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-ifmatch"));

    let created = client.post("/segments", &json!({ "name": "A" })).await;
    assert_entity(&created, 201, 1);
    let path = format!("/segments/{}", id(&created));
    assert_eq!(etag(&created), "\"1\"");

    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "name": "B" }),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_entity(&reply, 200, 2);

    // The same precondition again is stale: 412, nothing changes.
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "name": "C" }),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    let read = client.get(&path).await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json["name"], "B");
    // C was not reserved by the failed rename.
    let c = client.post("/segments", &json!({ "name": "C" })).await;
    assert_entity(&c, 201, 1);

    // `*` and a list containing the current tag match.
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "description": "d" }),
        &[("if-match", "*")],
    )
    .await;
    assert_entity(&reply, 200, 3);
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &json!({ "description": "e" }),
        &[("if-match", "\"1\", \"3\"")],
    )
    .await;
    assert_entity(&reply, 200, 4);

    // DELETE with a stale tag: 412 and the segment stays.
    let reply = delete_with(&client, &path, &[("if-match", "\"3\"")]).await;
    assert_problem(&reply, 412, "precondition_failed");
    assert_entity(&client.get(&path).await, 200, 4);

    let reply = delete_with(&client, &path, &[("if-match", "\"4\"")]).await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert!(reply.text.is_empty(), "{reply:#?}");
    let reply = client.get(&path).await;
    assert_problem(&reply, 404, "not_found");
    let reply = client.delete(&path).await;
    assert_problem(&reply, 404, "not_found");

    // Its name is free again.
    let reply = client.post("/segments", &json!({ "name": "b" })).await;
    assert_entity(&reply, 201, 1);
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

#[tokio::test]
async fn the_default_page_holds_50_segments() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("seg-default-page"));
    let mut created = Vec::new();
    for i in 0..51 {
        let segment = create_segment(&client, &json!({ "name": format!("S{i:02}") })).await;
        created.push(segment["id"].as_str().unwrap().to_string());
    }
    let (first, cursor) = page(&client, "/segments").await;
    assert_eq!(ids(&first), created[..50]);
    let cursor = cursor.expect("a cursor after 50 of 51");
    let (rest, cursor) = page(&client, &format!("/segments?cursor={}", enc(&cursor))).await;
    assert_eq!(ids(&rest), created[50..]);
    assert_eq!(cursor, None);
}
