//! `local-stack token`, run as a user runs it. Being an integration test of this package
//! also makes `cargo test --workspace` build the `local-stack` binary itself (with the
//! workspace's features), which the HTTP tests in `tests/` start.

use std::process::{Command, Output};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

fn local_stack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(args)
        .env_remove("LOCAL_JWT_SECRET")
        .env_remove("LOCAL_JWT_ISSUER")
        .env_remove("LOCAL_JWT_AUDIENCE")
        .env_remove("TENANT_CLAIM")
        .output()
        .expect("local-stack runs")
}

/// The claims of a token signed with the local defaults (`local_stack::jwt`).
fn claims(token: &str) -> Map<String, Value> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["http://localhost/local-issuer"]);
    validation.set_audience(&["segmentation-api"]);
    let key = DecodingKey::from_secret(b"local-dev-secret-change-me");
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .expect("the token verifies with the local defaults")
        .claims
}

#[test]
fn prints_a_token_for_the_tenant_that_the_local_authorizer_accepts() {
    let out = local_stack(&["token", "acme", "--ttl-seconds", "90"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let plain = claims(token.trim());
    assert_eq!(plain["tenant_id"], "acme");
    let lifetime = plain["exp"].as_i64().unwrap() - plain["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 90);

    let out = local_stack(&["token", "acme", "--claim", "custom:tenant_id"]);
    let custom = claims(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(custom["custom:tenant_id"], "acme");
    assert!(!custom.contains_key("tenant_id"));
}

#[test]
fn refuses_an_empty_tenant_and_a_lifetime_of_zero() {
    let out = local_stack(&["token", " "]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "local-stack: the tenant must not be empty"
    );

    let out = local_stack(&["token", "acme", "--ttl-seconds", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ttl-seconds"));
}
