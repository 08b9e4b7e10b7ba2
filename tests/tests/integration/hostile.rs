//! The hostile module corpus (`tests/hostile/*.wat`, issue 7) over HTTP: each module is
//! uploaded as a new version of one rule and, when accepted, run on a stored customer
//! with `POST /rules/{name}/test`. Every one ends exactly as its `;; expect:` comment
//! says: 422 at upload with its reason, a run error with its code and message, an
//! output refused with its pointer and reason, or a contained success. No answer is a
//! 5xx, nothing reaches the customer, refused uploads create no version, and another
//! tenant's rule keeps answering correctly in between.

use std::collections::BTreeMap;

use crate::common::*;
use crate::hostile_corpus::{Expect, corpus};
use serde_json::{Value, json};
use tests::{Client, Reply, Stack, unique_tenant};

/// A well-behaved rule: `{"clusters": {"<field>": "<value>"}}`.
fn control_module(field: &str, value: &str) -> Vec<u8> {
    writes(&format!(r#"{{"clusters": {{"{field}": "{value}"}}}}"#))
}

#[track_caller]
fn no_5xx(what: &str, reply: &Reply) {
    assert!(reply.status < 500, "{what}: server error {reply:#?}");
}

async fn rule_config(client: &Client, limits: Option<&Value>) {
    let mut body = json!({"outputs": ["tier"], "segment_output": true});
    if let Some(limits) = limits {
        body["limits"] = limits.clone();
    }
    let reply = client.put("/rules/hostile", &body).await;
    assert!(matches!(reply.status, 200 | 201), "{reply:#?}");
}

/// The rival tenant's own rule answers `rival_tier = gold`, as it should.
async fn rival_still_works(rival: &Client) {
    let reply = rival
        .post("/rules/rival/test", &json!({"customer_id": "rival-1"}))
        .await;
    no_5xx("rival test run", &reply);
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(reply.json["ok"], true, "{}", reply.text);
    assert_eq!(
        reply.json["verdict"]["assignment"]["clusters"],
        json!({"rival_tier": "gold"}),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn every_hostile_module_is_refused_or_contained_with_its_own_reason() {
    let corpus = corpus();
    assert!(corpus.len() >= 20, "only {} hostile modules", corpus.len());
    let stack = Stack::get().await;

    // The other tenant: a cluster field and a segment of its own, and a working rule.
    let rival = stack.client(&unique_tenant("hostile-rival"));
    create_field(
        &rival,
        &json!({"name": "rival_tier", "type": "enum", "values": ["gold"], "cluster": true}),
    )
    .await;
    let rival_segment = id(&rival
        .post("/segments", &json!({"name": "RivalGold"}))
        .await
        .expect(201));
    create_customer(&rival, &json!({"id": "rival-1", "email": "r@example.com"})).await;
    rival
        .put("/rules/rival", &json!({"outputs": ["rival_tier"]}))
        .await
        .expect(201);
    assert_eq!(
        upload(&rival, "rival", &control_module("rival_tier", "gold"))
            .await
            .status,
        201
    );

    // The tenant under test.
    let client = stack.client(&unique_tenant("hostile"));
    for body in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
        json!({"name": "annual_revenue", "type": "decimal"}),
    ] {
        create_field(&client, &body).await;
    }
    let retail = id(&client
        .post("/segments", &json!({"name": "Retail"}))
        .await
        .expect(201));
    create_customer(
        &client,
        &json!({"id": "cat", "email": "cat@example.com", "segment_id": retail,
                "fields": {"tier": "A", "annual_revenue": "5"}}),
    )
    .await;
    let customer_before = client.get("/customers/cat").await.expect(200);
    rule_config(&client, None).await;

    let mut versions = 0u64;
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    for module in &corpus {
        let name = module.name.as_str();
        let expect = module.expect_for(&rival_segment);
        rule_config(&client, module.limits.as_ref()).await;
        let wasm = module.wasm(&rival_segment);
        let (reply, ()) =
            tokio::join!(upload(&client, "hostile", &wasm), rival_still_works(&rival));
        no_5xx(name, &reply);
        if let Expect::Upload(text) = &expect {
            assert_eq!(
                pointers(&reply),
                set(&["/module"]),
                "{name} ({}): {}",
                module.attack,
                reply.text
            );
            let detail = error_detail(&reply, "/module");
            assert!(detail.contains(text.as_str()), "{name}: {detail}");
            let rule = client.get("/rules/hostile").await.expect(200);
            assert_eq!(rule.json["latest_version"], versions, "{name}");
            *outcomes.entry("refused at upload").or_default() += 1;
            reasons.insert(name.to_string(), detail);
            continue;
        }
        assert_eq!(
            reply.status, 201,
            "{name} ({}) was refused: {reply:#?}",
            module.attack
        );
        versions += 1;
        assert_eq!(reply.json["number"], versions, "{name}");

        let on_cat = json!({"customer_id": "cat"});
        let (run, ()) = tokio::join!(
            client.post("/rules/hostile/test", &on_cat),
            rival_still_works(&rival)
        );
        no_5xx(name, &run);
        assert_eq!(run.status, 200, "{name}: {run:#?}");
        let body = &run.json;
        assert_eq!(body["version"], versions, "{name}");
        match &expect {
            Expect::Upload(_) => unreachable!(),
            Expect::Run { code, text } => {
                assert_eq!(body["ok"], false, "{name}: {}", run.text);
                assert_eq!(body["output"], Value::Null, "{name}: {}", run.text);
                assert_eq!(body["error"]["code"], code.as_str(), "{name}: {}", run.text);
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(text.as_str()), "{name}: {message}");
                assert_eq!(
                    body["verdict"],
                    json!({"valid": false, "errors": []}),
                    "{name}"
                );
                *outcomes.entry("failed at run time").or_default() += 1;
                reasons.insert(name.to_string(), format!("{code}: {message}"));
            }
            Expect::Verdict { pointer, text } => {
                assert_eq!(body["ok"], false, "{name}: {}", run.text);
                assert_eq!(body["error"], Value::Null, "{name}: {}", run.text);
                assert_eq!(body["verdict"]["valid"], false, "{name}: {}", run.text);
                let errors = body["verdict"]["errors"].as_array().expect("errors");
                let found = errors.iter().find(|e| e["pointer"] == pointer.as_str());
                let detail = found
                    .and_then(|e| e["detail"].as_str())
                    .unwrap_or_else(|| panic!("{name}: no error at {pointer}: {}", run.text));
                assert!(detail.contains(text.as_str()), "{name}: {detail}");
                *outcomes.entry("output refused").or_default() += 1;
                reasons.insert(name.to_string(), format!("{pointer}: {detail}"));
            }
            Expect::Ok(text) => {
                assert_eq!(body["ok"], true, "{name}: {}", run.text);
                let logs = body["logs"].as_str().unwrap_or_default();
                assert!(logs.contains(text.as_str()), "{name}: log {logs}");
                assert!(logs.len() <= 16384 + 64, "{name}: log of {}", logs.len());
                *outcomes.entry("contained, succeeded").or_default() += 1;
                reasons.insert(name.to_string(), "ok".into());
            }
        }
        assert!(
            body["memory_bytes"].as_u64().unwrap_or(u64::MAX) <= 64 << 20,
            "{name}: {}",
            run.text
        );
    }

    // Each failure reads differently: the tenant can tell what went wrong.
    let distinct: std::collections::BTreeSet<&String> = reasons.values().collect();
    assert!(
        distinct.len() >= corpus.len() - 4,
        "too many identical reasons: {reasons:#?}"
    );
    // Nothing reached the customer; the rule still works with a good module.
    let customer_after = client.get("/customers/cat").await.expect(200);
    assert_eq!(customer_after.text, customer_before.text);
    assert_eq!(etag(&customer_after), etag(&customer_before));
    rule_config(&client, None).await;
    upload(&client, "hostile", &control_module("tier", "AA"))
        .await
        .expect(201);
    let run = client
        .post("/rules/hostile/test", &json!({"customer_id": "cat"}))
        .await
        .expect(200);
    assert_eq!(run.json["ok"], true, "{}", run.text);
    assert_eq!(
        run.json["verdict"]["assignment"]["clusters"],
        json!({"tier": "AA"})
    );
    rival_still_works(&rival).await;
    println!(
        "hostile corpus: {} modules: {outcomes:?}; {} module versions stored",
        corpus.len(),
        versions + 1
    );
    for (name, reason) in &reasons {
        println!("  {name}: {reason}");
    }
}
