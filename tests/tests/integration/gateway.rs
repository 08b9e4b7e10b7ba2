//! The local API Gateway emulation and the harness itself: the JWT authorizer's
//! refusals, the payload limit, raw requests, and a private instance that restarts.

use serde_json::json;
use tests::{Method, Stack, claims, sign, sign_with, unique_tenant};

fn assert_refused(reply: &tests::Reply) {
    assert_eq!(reply.status, 401, "{reply:#?}");
    assert_eq!(reply.json, json!({ "message": "Unauthorized" }));
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{reply:#?}");
}

#[tokio::test]
async fn the_authorizer_refuses_bad_tokens() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("authz");
    let client = stack.anonymous();

    let mut expired = claims(&tenant);
    expired.insert("exp".into(), json!(1_000_000_000));
    let mut wrong_audience = claims(&tenant);
    wrong_audience.insert("aud".into(), json!("another-api"));
    let mut wrong_issuer = claims(&tenant);
    wrong_issuer.insert("iss".into(), json!("https://elsewhere.test"));
    let forged = sign_with(b"not-the-secret", &claims(&tenant));

    for token in [
        sign(&expired),
        sign(&wrong_audience),
        sign(&wrong_issuer),
        forged,
        "not-a-jwt".to_string(),
    ] {
        let reply = client
            .request(Method::GET, "/segments")
            .bearer(&token)
            .send()
            .await;
        assert_refused(&reply);
        assert!(
            reply
                .header("www-authenticate")
                .unwrap_or_default()
                .contains("invalid_token"),
            "{reply:#?}"
        );
    }

    // Another scheme, or an empty header, is a missing token.
    for value in ["Basic dXNlcjpwYXNz", ""] {
        let reply = client
            .request(Method::GET, "/segments")
            .header("authorization", value)
            .send()
            .await;
        assert_refused(&reply);
    }
}

#[tokio::test]
async fn bodies_over_10_mib_are_refused() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("big"));
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    let reply = client
        .request(Method::POST, "/segments")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect(413);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json["status"], 413);
}

#[tokio::test]
async fn malformed_json_reaches_the_handler() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("badjson"));
    let reply = client
        .request(Method::POST, "/segments")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect(400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn a_private_instance_serves_the_same_data_across_restarts() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("restart");
    let mut instance = stack.spawn_api(&[]);
    let created = instance
        .client(&tenant)
        .post("/segments", &json!({ "name": "Survivors" }))
        .await
        .expect(201);
    let id = created.json["id"].as_str().expect("an id").to_string();

    instance.restart();
    assert!(instance.is_running());
    let read = instance
        .client(&tenant)
        .get(&format!("/segments/{id}"))
        .await
        .expect(200);
    assert_eq!(read.json["name"], "Survivors");

    // The shared instance sees it too: one table.
    stack
        .client(&tenant)
        .get(&format!("/segments/{id}"))
        .await
        .expect(200);

    instance.kill();
    assert!(!instance.is_running());
}
