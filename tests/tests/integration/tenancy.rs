//! Tenant isolation: another tenant's ids are 404 (never 403), lists and counts are
//! per tenant, uniqueness is per tenant, cursors do not cross tenants, and the tenant
//! comes only from the verified token.

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Method, Reply, Stack, claims, sign, unique_tenant};

/// What tenant A owns: one segment, two fields (one a cluster) and one customer.
struct Owned {
    segment: String,
    customer: String,
}

async fn populate(a: &Client) -> Owned {
    let segment = create_segment(a, &json!({ "name": "VIP", "description": "A's" })).await;
    let segment = segment["id"].as_str().unwrap().to_string();
    create_field(
        a,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }),
    )
    .await;
    create_field(a, &json!({ "name": "vat", "type": "string" })).await;
    create_customer(
        a,
        &json!({ "id": "shared-id", "email": "Owner@Example.com", "first_name": "Ann",
                 "segment_id": segment, "fields": { "tier": "AA", "vat": "V1" } }),
    )
    .await;
    // The counts, kept from the stream, settle before any snapshot of A's resources.
    wait_for_segment_count(a, &segment, 1).await;
    wait_for_member_count(a, "tier", 1).await;
    Owned {
        segment,
        customer: "shared-id".into(),
    }
}

/// A's resources as A reads them, with their ETags.
async fn snapshot(a: &Client, owned: &Owned) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for path in [
        format!("/segments/{}", owned.segment),
        "/fields/tier".to_string(),
        "/fields/vat".to_string(),
        format!("/customers/{}", owned.customer),
    ] {
        let reply = a.get(&path).await.expect(200);
        out.push((path, etag(&reply), reply.json));
    }
    out
}

#[tokio::test]
async fn another_tenant_gets_404_for_every_id_and_changes_nothing() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("ten-a"));
    let b = stack.client(&unique_tenant("ten-b"));
    let owned = populate(&a).await;
    let before = snapshot(&a, &owned).await;

    let segment = format!("/segments/{}", owned.segment);
    let customer = format!("/customers/{}", owned.customer);
    let attempts: Vec<Reply> = vec![
        b.get(&segment).await,
        b.patch(&segment, &json!({ "name": "Hijacked" })).await,
        send_json(
            &b,
            Method::PATCH,
            &segment,
            &json!({ "status": "inactive" }),
            &[("if-match", "\"1\"")],
        )
        .await,
        b.delete(&segment).await,
        delete_with(&b, &segment, &[("if-match", "*")]).await,
        b.get("/fields/tier").await,
        b.patch("/fields/tier", &json!({ "values": ["AA"] })).await,
        b.delete("/fields/tier").await,
        b.get("/fields/vat").await,
        b.delete("/fields/vat").await,
        b.get(&customer).await,
        b.patch(&customer, &json!({ "first_name": "Mallory" }))
            .await,
        b.delete(&customer).await,
        delete_with(&b, &customer, &[("if-match", "\"1\"")]).await,
    ];
    for reply in &attempts {
        assert_problem(reply, 404, "not_found");
    }
    // A precondition on what B sees as absent fails; nothing is created or touched.
    let reply = send_json(
        &b,
        Method::PUT,
        &customer,
        &json!({ "email": "mallory@example.com" }),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");

    // B's listings hold nothing of A's.
    for path in [
        "/segments".to_string(),
        "/segments?status=active".to_string(),
        "/fields".to_string(),
        "/customers".to_string(),
        format!("/customers?segment={}", owned.segment),
        "/customers?email=owner%40example.com".to_string(),
    ] {
        let (items, next) = page(&b, &path).await;
        assert!(items.is_empty(), "{path}: {items:?}");
        assert_eq!(next, None, "{path}");
    }
    // B has no `tier` cluster field.
    let reply = b.get("/customers?cluster.tier=AA").await;
    assert_problem(&reply, 400, "bad_request");
    // B cannot put its customers into A's segment.
    let reply = b
        .post(
            "/customers",
            &json!({ "email": "b@example.com", "segment_id": owned.segment }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/segment_id"]));
    // Nor use A's fields.
    let reply = b
        .post(
            "/customers",
            &json!({ "email": "b@example.com", "fields": { "tier": "AA" } }),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/fields/tier"]));

    assert_eq!(snapshot(&a, &owned).await, before);
    let a_segment = a.get(&segment).await.expect(200);
    assert_eq!(a_segment.json["customer_count"], 1);
    let (a_customers, _) = page(&a, "/customers?cluster.tier=AA").await;
    assert_eq!(ids(&a_customers), ["shared-id"]);
}

#[tokio::test]
async fn uniqueness_is_per_tenant() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("ten-ua"));
    let b = stack.client(&unique_tenant("ten-ub"));
    let owned = populate(&a).await;
    let before = snapshot(&a, &owned).await;

    // Same segment name, field names (with other definitions), email and customer id.
    let b_segment = b.post("/segments", &json!({ "name": "vip" })).await;
    assert_entity(&b_segment, 201, 1);
    let b_segment = id(&b_segment);
    assert_ne!(b_segment, owned.segment);
    let reply = b
        .post(
            "/fields",
            &json!({ "name": "tier", "type": "integer", "cluster": true }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    let reply = b
        .post(
            "/customers",
            &json!({ "id": "shared-id", "email": "owner@example.com", "segment_id": b_segment,
                     "fields": { "tier": 5 } }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(reply.json["fields"], json!({ "tier": 5 }));

    // Each tenant sees its own.
    let (found, _) = page(&b, "/customers?email=OWNER%40example.com").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["email"], "owner@example.com");
    assert_eq!(found[0]["segment_id"], b_segment.as_str());
    let (found, _) = page(&a, "/customers?email=owner%40example.com").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["email"], "Owner@Example.com");
    let (b_tier, _) = page(&b, "/customers?cluster.tier=5").await;
    assert_eq!(ids(&b_tier), ["shared-id"]);
    let reply = a.get("/customers?cluster.tier=5").await;
    assert_problem(&reply, 400, "bad_request");

    // Counts are per tenant.
    wait_for_segment_count(&b, &b_segment, 1).await;
    wait_for_member_count(&b, "tier", 1).await;
    assert_eq!(snapshot(&a, &owned).await, before);

    // Deleting B's copies leaves A's alone.
    assert_eq!(b.delete("/customers/shared-id").await.status, 204);
    assert_eq!(
        b.delete(&format!("/segments/{b_segment}")).await.status,
        204
    );
    assert_eq!(b.delete("/fields/tier").await.status, 204);
    assert_eq!(snapshot(&a, &owned).await, before);
}

#[tokio::test]
async fn put_by_another_tenant_creates_its_own_customer() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("ten-pa"));
    let b = stack.client(&unique_tenant("ten-pb"));
    let owned = populate(&a).await;
    let before = snapshot(&a, &owned).await;
    let path = format!("/customers/{}", owned.customer);

    let reply = b
        .put(
            &path,
            &json!({ "email": "b-own@example.com", "first_name": "Bob" }),
        )
        .await;
    assert_entity(&reply, 201, 1);
    assert_eq!(reply.header("location"), Some(path.as_str()));
    let reply = b.put(&path, &json!({ "email": "b-own@example.com" })).await;
    assert_entity(&reply, 200, 2);
    let read = b.get(&path).await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json["email"], "b-own@example.com");
    assert!(read.json.get("segment_id").is_none());

    assert_eq!(snapshot(&a, &owned).await, before);
    let a_read = a.get(&path).await.expect(200);
    assert_eq!(a_read.json["email"], "Owner@Example.com");
    assert_eq!(a_read.json["first_name"], "Ann");
}

#[tokio::test]
async fn cursors_do_not_cross_tenants() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("ten-ca"));
    let b = stack.client(&unique_tenant("ten-cb"));
    let segment = create_segment(&a, &json!({ "name": "S0" })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    create_segment(&a, &json!({ "name": "S1" })).await;
    create_segment(&b, &json!({ "name": "S0" })).await;
    create_segment(&b, &json!({ "name": "S1" })).await;
    for i in 0..3 {
        create_customer(
            &a,
            &json!({ "email": format!("c{i}@example.com"), "segment_id": segment }),
        )
        .await;
        create_customer(&b, &json!({ "email": format!("c{i}@example.com") })).await;
    }

    for path in [
        "/segments?limit=1".to_string(),
        "/segments?status=active&limit=1".to_string(),
        "/customers?limit=1".to_string(),
        format!("/customers?segment={segment}&limit=1"),
    ] {
        let (_, next) = page(&a, &path).await;
        let cursor = next.expect("a cursor after a full page");
        let with_cursor = with_param(&path, "cursor", &cursor);
        // A may use it.
        page(&a, &with_cursor).await;
        // B may not, on the same listing.
        let reply = b.get(&with_cursor).await;
        assert_problem(&reply, 400, "bad_request");
    }
}

#[tokio::test]
async fn the_tenant_comes_only_from_a_valid_tenant_claim() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("ten-claim");
    let owner = stack.client(&tenant);
    let segment = create_segment(&owner, &json!({ "name": "Mine" })).await;
    let segment_path = format!("/segments/{}", segment["id"].as_str().unwrap());
    let anonymous = stack.anonymous();

    // No claim, or one that cannot be a tenant id: 401 from the function.
    let mut no_claim = claims(&tenant);
    no_claim.remove("tenant_id");
    let mut bad_claim = claims(&tenant);
    bad_claim.insert("tenant_id".into(), json!("a#b"));
    let mut empty_claim = claims(&tenant);
    empty_claim.insert("tenant_id".into(), json!(""));
    for token in [sign(&no_claim), sign(&bad_claim), sign(&empty_claim)] {
        let reply = anonymous
            .request(Method::GET, "/segments")
            .bearer(&token)
            .send()
            .await;
        assert_problem(&reply, 401, "unauthorized");
        let reply = anonymous
            .request(Method::POST, "/segments")
            .bearer(&token)
            .json(&json!({ "name": "Nobody" }))
            .send()
            .await;
        assert_eq!(reply.status, 401, "{reply:#?}");
    }

    // No token at all: the authorizer answers, on every route.
    for (method, path) in [
        (Method::GET, "/segments"),
        (Method::GET, segment_path.as_str()),
        (Method::DELETE, segment_path.as_str()),
        (Method::GET, "/fields"),
        (Method::POST, "/fields"),
        (Method::GET, "/customers"),
        (Method::PUT, "/customers/x"),
    ] {
        let reply = anonymous
            .request(method, path)
            .json(&json!({ "name": "x" }))
            .send()
            .await;
        assert_eq!(reply.status, 401, "{reply:#?}");
        assert_eq!(reply.json, json!({ "message": "Unauthorized" }));
    }

    // Headers or bodies naming a tenant do not matter.
    let other = stack.client(&unique_tenant("ten-claim-other"));
    let reply = other
        .request(Method::GET, &segment_path)
        .header("x-tenant-id", &tenant)
        .header("tenant_id", &tenant)
        .send()
        .await;
    assert_problem(&reply, 404, "not_found");
    let reply = other
        .post("/segments", &json!({ "name": "Mine", "tenant_id": tenant }))
        .await;
    assert_eq!(pointers(&reply), set(&["/tenant_id"]));

    let read = owner.get(&segment_path).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, segment);
}
