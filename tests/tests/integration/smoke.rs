//! The stack answers at all: the public spec, the authorizer, one authorized read.

use tests::{Stack, unique_tenant};

#[tokio::test]
async fn openapi_is_public_json() {
    let stack = Stack::get().await;
    let reply = stack.anonymous().get("/openapi.json").await.expect(200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{reply:#?}"
    );
    assert!(reply.json["openapi"].is_string(), "{}", reply.text);
    assert!(
        reply.json["paths"]["/segments"].is_object(),
        "{}",
        reply.text
    );
}

/// Every link of the served description (from a create to what takes its id) names a
/// real operation and fills its parameters from what the answer or the request holds.
#[tokio::test]
async fn openapi_links_lead_to_real_operations() {
    let stack = Stack::get().await;
    let document = stack
        .anonymous()
        .get("/openapi.json")
        .await
        .expect(200)
        .json;
    assert_eq!(api::openapi::link_errors(&document), Vec::<String>::new());
    let create = &document["paths"]["/segments"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        create["GetSegment"],
        serde_json::json!({ "operationId": "GetSegment", "parameters": { "id": "$response.body#/id" } }),
        "{create}"
    );
}

#[tokio::test]
async fn requests_without_a_token_are_unauthorized() {
    let stack = Stack::get().await;
    let reply = stack.anonymous().get("/segments").await.expect(401);
    assert_eq!(reply.json, serde_json::json!({ "message": "Unauthorized" }));
    assert!(reply.header("www-authenticate").is_some(), "{reply:#?}");
}

#[tokio::test]
async fn a_tenant_lists_its_segments() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("smoke"));
    let reply = client.get("/segments").await.expect(200);
    assert_eq!(reply.json["items"], serde_json::json!([]), "{}", reply.text);
}
