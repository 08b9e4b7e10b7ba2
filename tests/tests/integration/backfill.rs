//! Backfill jobs over HTTP: a change to an enabled rule re-evaluates every customer of
//! the tenant in stream-driven steps, a dry run counts what a rule version would change
//! and writes nothing, and a job survives its server being killed.
//!
//! The rule is the Rust example (`rules/examples/tier-rust`): `tier` from
//! `annual_revenue` (AA from 100000, A from 10000, else B; 0 when missing), and
//! `distributor` = `customer_type == "distributor"`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Stack, unique_tenant};

/// How long the counters of a backfill over thousands of customers may take to catch up.
const SETTLE_MANY: Duration = Duration::from_secs(120);

/// Held by the two tests that backfill hundreds of customers: the one moto serves every
/// request one at a time, so together they would take as long, and each would need
/// twice its time limit.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Counts by value, as a job's `changes.<field>` holds them.
type Counts = BTreeMap<String, u64>;

/// What the example rule should make of a set of customers.
#[derive(Debug, Default)]
struct Expected {
    /// customer id -> (tier, distributor).
    by_id: BTreeMap<String, (&'static str, bool)>,
    tiers: Counts,
    distributors: Counts,
}

/// The tier the example rule gives a revenue.
fn expected_tier(revenue: f64) -> &'static str {
    if revenue >= 100_000.0 {
        "AA"
    } else if revenue >= 10_000.0 {
        "A"
    } else {
        "B"
    }
}

/// The revenue of customer `i` (`None`: the field is not set): spread over the three
/// tiers, with the thresholds and their neighbours among the first ones.
fn revenue(i: u64) -> Option<String> {
    const EDGES: [&str; 6] = ["100000", "99999.99", "10000", "9999.5", "0", "250000"];
    match i {
        i if (i as usize) < EDGES.len() => Some(EDGES[i as usize].to_owned()),
        i if i % 97 == 0 => None,
        i => Some(((i * 7_919) % 250_000).to_string()),
    }
}

/// Customers `c00000..`: their bodies, and what the rule should make of them.
fn customers(count: u64) -> (Vec<Value>, Expected) {
    let mut expected = Expected::default();
    let mut bodies = Vec::new();
    for i in 0..count {
        let id = format!("c{i:05}");
        let distributor = i % 3 == 0;
        let revenue = revenue(i);
        let tier = expected_tier(revenue.as_deref().map_or(0.0, |r| r.parse().unwrap()));
        *expected.tiers.entry(tier.to_owned()).or_default() += 1;
        *expected
            .distributors
            .entry(distributor.to_string())
            .or_default() += 1;
        expected.by_id.insert(id.clone(), (tier, distributor));
        let mut fields = json!({
            "customer_type": if distributor { "distributor" } else { "retail" },
        });
        if let Some(revenue) = revenue {
            fields["annual_revenue"] = json!(revenue);
        }
        bodies.push(json!({"id": id, "email": format!("{id}@example.com"), "fields": fields}));
    }
    (bodies, expected)
}

/// Creates `count` customers with `POST /customers`, eight requests at a time.
async fn create_customers(client: &Client, count: u64) -> Expected {
    let (bodies, expected) = customers(count);
    for chunk in bodies.chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|body| {
                let client = client.clone();
                tokio::spawn(async move { client.post("/customers", &body).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("the request task").expect(201);
        }
    }
    expected
}

/// Creates `count` customers straight in the table, writing exactly what
/// `POST /customers` writes (`api::customers::create`: the body validated against the
/// tenant's fields, then `save_customer`), stream records included.
///
/// Thousands of customers through HTTP take minutes here, for a reason of the local
/// stand-in only: moto answers a Query by reading the whole partition, and every
/// `POST /customers` lists the fields of the tenant's partition, which holds its
/// customers. At 2000 customers a create takes ~150 ms; this takes ~10.
async fn seed_customers(table: &str, moto_url: &str, tenant: &str, count: u64) -> Expected {
    let store = store::Store::connect(&store::StoreConfig {
        table_name: table.to_owned(),
        endpoint_url: Some(moto_url.to_owned()),
    })
    .await;
    let fields = store
        .list_fields(tenant)
        .await
        .expect("the tenant's fields");
    let now = chrono::Utc::now();
    let (bodies, expected) = customers(count);
    for chunk in bodies.chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|body| {
                let schema = domain::CustomerSchema {
                    fields: &fields,
                    segment: None,
                    current_segment_id: None,
                };
                let draft = domain::CustomerDraft::parse(body, &schema)
                    .unwrap_or_else(|e| panic!("{body}: {e:?}"));
                let id = draft.id.clone().expect("an id");
                let customer = draft.into_customer(id, now);
                let (store, fields, tenant) = (store.clone(), fields.clone(), tenant.to_owned());
                tokio::spawn(async move {
                    store
                        .save_customer(&tenant, None, &customer, &fields)
                        .await
                        .unwrap_or_else(|e| panic!("save {}: {e}", customer.id));
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("the save task");
        }
    }
    expected
}

fn is_done(job: &Value) -> bool {
    job["state"] == "done"
}

/// The rule's jobs, newest first.
async fn jobs(client: &Client, rule: &str) -> Vec<Value> {
    let reply = client
        .get(&format!("/rules/{rule}/backfill"))
        .await
        .expect(200);
    assert_eq!(reply.json["next_cursor"], Value::Null, "{}", reply.text);
    reply.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", reply.text))
        .clone()
}

/// The URL of the job `id` of `tiering`.
fn job_path(job: &Value) -> String {
    let id = job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a job without id: {job}"));
    format!("/rules/tiering/backfill/{id}")
}

/// The shape every job has, and its identity.
#[track_caller]
fn assert_job(job: &Value, version: u64, dry_run: bool) {
    assert!(job["id"].as_str().is_some_and(|id| !id.is_empty()), "{job}");
    assert_eq!(job["rule"], "tiering", "{job}");
    assert_eq!(job["version"], version, "{job}");
    assert_eq!(job["dry_run"], dry_run, "{job}");
    assert!(job["state"] == "running" || job["state"] == "done", "{job}");
    for count in ["evaluated", "changed", "failed"] {
        assert!(job[count].is_u64(), "{count}: {job}");
    }
    assert!(job["changes"].is_object(), "{job}");
    // One chain per shard, whose progress adds up to the job's.
    let chains = job["chains"].as_array().expect("chains");
    let shards: Vec<u64> = chains.iter().filter_map(|c| c["shard"].as_u64()).collect();
    assert_eq!(
        shards,
        (0..u64::from(store::keys::SHARDS)).collect::<Vec<_>>(),
        "{job}"
    );
    for count in ["evaluated", "changed", "failed"] {
        let sum: u64 = chains
            .iter()
            .filter_map(|c| c["progress"][count].as_u64())
            .sum();
        assert_eq!(job[count].as_u64(), Some(sum), "{count}: {job}");
    }
    let running = chains.iter().any(|c| c["state"] == "running");
    assert_eq!(job["state"] == "running", running, "{job}");
    assert!(is_timestamp(&job["created_at"]), "{job}");
    assert!(is_timestamp(&job["updated_at"]), "{job}");
}

/// Each chain's steps, by shard.
fn steps(job: &Value) -> Vec<u64> {
    let chains = job["chains"].as_array().expect("chains");
    chains.iter().filter_map(|c| c["step"].as_u64()).collect()
}

/// A finished job's chains each evaluated exactly the customers of their shard.
#[track_caller]
fn assert_each_chain_walked_its_shard(job: &Value, expected: &Expected) {
    let mut per_shard = vec![0u64; usize::from(store::keys::SHARDS)];
    for id in expected.by_id.keys() {
        per_shard[usize::from(store::keys::shard_of(id))] += 1;
    }
    let chains = job["chains"].as_array().expect("chains");
    let walked: Vec<u64> = chains
        .iter()
        .filter_map(|c| c["progress"]["evaluated"].as_u64())
        .collect();
    assert_eq!(walked, per_shard, "{job}");
    assert_all_chains_done(job);
}

#[track_caller]
fn assert_all_chains_done(job: &Value) {
    let chains = job["chains"].as_array().expect("chains");
    assert!(
        chains
            .iter()
            .all(|c| c["state"] == "done" && c["cursor"].is_null()),
        "{job}"
    );
}

/// A job's `changes.<field>` as counts.
#[track_caller]
fn changes(job: &Value, field: &str) -> Counts {
    serde_json::from_value(job["changes"][field].clone())
        .unwrap_or_else(|e| panic!("changes.{field} ({e}): {job}"))
}

#[tokio::test]
async fn a_backfill_over_thousands_of_customers_completes_with_exact_counts() {
    const CUSTOMERS: u64 = 2_000;
    let _heavy = HEAVY.lock().await;
    let stack = Stack::get().await;
    let tenant = unique_tenant("bf-many");
    let client = stack.client(&tenant);
    tiering_rule(&client, false).await;
    let expected = seed_customers(&stack.table, &stack.moto_url, &tenant, CUSTOMERS).await;
    // Seeded like the API creates.
    let first = client.get("/customers/c00000").await.expect(200).json;
    assert_eq!(
        (
            &first["version"],
            &first["written_by"],
            &first["fields"]["annual_revenue"]
        ),
        (&json!(1), &json!("api"), &json!("100000")),
        "{first}"
    );
    assert_eq!(expected.tiers.len(), 3, "{:?}", expected.tiers);
    drain_stream(&stack.client(&unique_tenant("bf-many-sentinel"))).await;
    assert_eq!(jobs(&client, "tiering").await, Vec::<Value>::new());

    // Enabling the rule starts the job.
    client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await
        .expect(200);
    let started = jobs(&client, "tiering").await;
    assert_eq!(started.len(), 1, "one job for one change: {started:?}");
    assert_job(&started[0], 1, false);
    let path = job_path(&started[0]);
    let job = eventually(&client, &path, Duration::from_secs(120), is_done).await;
    assert_job(&job, 1, false);
    assert_eq!(job["id"], started[0]["id"]);
    assert_eq!(job["evaluated"], CUSTOMERS, "{job}");
    assert_eq!(job["changed"], CUSTOMERS, "{job}");
    assert_eq!(job["failed"], 0, "{job}");
    assert_each_chain_walked_its_shard(&job, &expected);
    assert_eq!(changes(&job, "tier"), expected.tiers, "{job}");
    assert_eq!(changes(&job, "distributor"), expected.distributors, "{job}");
    assert_eq!(
        job["changes"].as_object().map(|c| c.len()),
        Some(2),
        "{job}"
    );

    // The customers agree with the counts, each written once by the rules.
    for i in [0, 1, 2, 3, 4, 97, 98, 1_000, 1_455, CUSTOMERS - 1] {
        let id = format!("c{i:05}");
        let customer = client
            .get(&format!("/customers/{id}"))
            .await
            .expect(200)
            .json;
        let (tier, distributor) = expected.by_id[&id];
        assert_eq!(customer["fields"]["tier"], tier, "{customer}");
        assert_eq!(customer["fields"]["distributor"], distributor, "{customer}");
        assert_eq!(customer["version"], 2, "written once: {customer}");
        assert_eq!(customer["written_by"], "rules", "{customer}");
    }

    // So do the indexes and counters. The counters are kept from the stream: they reach
    // the total, and stay there once the stream is drained (nothing counted twice).
    for field in ["tier", "distributor"] {
        let path = format!("/fields/{field}");
        wait_for_count_within(
            &client,
            &path,
            "/member_count",
            CUSTOMERS as i64,
            SETTLE_MANY,
        )
        .await;
    }
    drain_stream(&stack.client(&unique_tenant("bf-many-sentinel-2"))).await;
    for field in ["tier", "distributor"] {
        assert_eq!(member_count(&client, field).await, CUSTOMERS, "{field}");
    }
    let mut seen = BTreeSet::new();
    for (tier, count) in &expected.tiers {
        let listed = list_all(&client, &format!("/customers?cluster.tier={tier}"), 100).await;
        assert_eq!(listed.len() as u64, *count, "tier {tier}");
        for customer in &listed {
            assert_eq!(customer["fields"]["tier"], tier.as_str(), "{customer}");
            let id = customer["id"].as_str().unwrap().to_owned();
            assert_eq!(expected.by_id[&id].0, tier, "{customer}");
            assert!(seen.insert(id), "listed twice: {customer}");
        }
    }
    assert_eq!(seen.len() as u64, CUSTOMERS);

    // Only the running version can be backfilled for real.
    let reply = client
        .post("/rules/tiering/backfill", &json!({"version": 99}))
        .await;
    assert_eq!(pointers(&reply), set(&["/version"]));
    assert_eq!(jobs(&client, "tiering").await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_reports_what_would_change_and_writes_nothing() {
    const CUSTOMERS: u64 = 36;
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("bf-dry"));
    tiering_rule(&client, false).await;
    let mut expected = create_customers(&client, CUSTOMERS).await;
    // A revenue the rule cannot read makes it fail on this customer.
    create_customer(
        &client,
        &json!({"id": "bad", "email": "bad@example.com",
                "fields": {"annual_revenue": "lots", "customer_type": "distributor"}}),
    )
    .await;

    // A disabled rule takes only dry runs; bodies and versions are checked.
    assert_problem(
        &client.post("/rules/tiering/backfill", &json!({})).await,
        409,
        "conflict",
    );
    assert_problem(
        &client
            .request(tests::Method::POST, "/rules/tiering/backfill")
            .send()
            .await,
        409,
        "conflict",
    );
    let reply = client
        .post(
            "/rules/tiering/backfill",
            &json!({"dry_run": true, "version": 99}),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/version"]));
    let reply = client
        .post(
            "/rules/tiering/backfill",
            &json!({"dry_run": "yes", "version": "1"}),
        )
        .await;
    assert_eq!(pointers(&reply), set(&["/dry_run", "/version"]));
    assert_problem(
        &client
            .post("/rules/ghost/backfill", &json!({"dry_run": true}))
            .await,
        404,
        "not_found",
    );
    assert_problem(&client.get("/rules/ghost/backfill").await, 404, "not_found");
    create_field(
        &client,
        &json!({"name": "region", "type": "string", "cluster": true}),
    )
    .await;
    client
        .put("/rules/empty", &json!({"outputs": ["region"]}))
        .await
        .expect(201);
    assert_problem(
        &client
            .post("/rules/empty/backfill", &json!({"dry_run": true}))
            .await,
        409,
        "conflict",
    );
    assert_eq!(jobs(&client, "tiering").await, Vec::<Value>::new());

    let reply = client
        .post("/rules/tiering/backfill", &json!({"dry_run": true}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_job(&reply.json, 1, true);
    let path = reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {reply:#?}"))
        .to_owned();
    assert_eq!(path, job_path(&reply.json));
    let job = eventually(&client, &path, Duration::from_secs(60), is_done).await;
    assert_job(&job, 1, true);
    assert_eq!(job["id"], reply.json["id"]);
    assert_eq!(job["evaluated"], CUSTOMERS + 1, "{job}");
    assert_eq!(
        job["changed"], CUSTOMERS,
        "the failed one changes nothing: {job}"
    );
    assert_eq!(job["failed"], 1, "{job}");
    assert_all_chains_done(&job);
    assert_eq!(changes(&job, "tier"), expected.tiers, "{job}");
    assert_eq!(changes(&job, "distributor"), expected.distributors, "{job}");

    // Nothing was written: not the clusters, not the failure.
    let customers = list_all(&client, "/customers", 100).await;
    assert_eq!(customers.len() as u64, CUSTOMERS + 1);
    for customer in &customers {
        assert_eq!(customer["version"], 1, "a dry run wrote: {customer}");
        assert!(customer["fields"].get("tier").is_none(), "{customer}");
        assert!(
            customer["fields"].get("distributor").is_none(),
            "{customer}"
        );
    }
    let clusters = client.get("/customers/bad/clusters").await.expect(200).json;
    assert_eq!(clusters["rule_errors"], json!([]), "{clusters}");
    assert_eq!(clusters["clusters"], json!({}), "{clusters}");
    // The counters are kept from the stream: once it is drained, they show every write.
    drain_stream(&stack.client(&unique_tenant("bf-dry-sentinel"))).await;
    for field in ["tier", "distributor"] {
        let reply = client.get(&format!("/fields/{field}")).await.expect(200);
        assert_eq!(reply.json["member_count"], 0, "{}", reply.text);
    }

    // Another dry run, at an explicit version, after a change: newest first.
    client
        .patch(
            "/customers/c00004",
            &json!({"fields": {"annual_revenue": "500000"}}),
        )
        .await
        .expect(200);
    *expected.tiers.get_mut("B").unwrap() -= 1;
    *expected.tiers.get_mut("AA").unwrap() += 1;
    let again = client
        .post(
            "/rules/tiering/backfill",
            &json!({"dry_run": true, "version": 1}),
        )
        .await
        .expect(202);
    let second = eventually(
        &client,
        &job_path(&again.json),
        Duration::from_secs(60),
        is_done,
    )
    .await;
    assert_eq!(second["evaluated"], CUSTOMERS + 1, "{second}");
    assert_eq!(changes(&second, "tier"), expected.tiers, "{second}");
    let listed = jobs(&client, "tiering").await;
    assert_eq!(
        listed.iter().map(|j| j["id"].clone()).collect::<Vec<_>>(),
        [second["id"].clone(), job["id"].clone()]
    );
    assert_eq!(listed[1], job, "a finished job stays as it finished");

    // Unknown jobs, other rules' and other tenants' are not found.
    assert_problem(
        &client.get("/rules/tiering/backfill/nope").await,
        404,
        "not_found",
    );
    assert_problem(
        &client
            .get(&format!(
                "/rules/ghost/backfill/{}",
                job["id"].as_str().unwrap()
            ))
            .await,
        404,
        "not_found",
    );
    let stranger = stack.client(&unique_tenant("bf-stranger"));
    tiering_rule(&stranger, false).await;
    assert_problem(&stranger.get(&path).await, 404, "not_found");
    assert_eq!(jobs(&stranger, "tiering").await, Vec::<Value>::new());

    // A tenant without customers: done, having evaluated nobody.
    let reply = stranger
        .post("/rules/tiering/backfill", &json!({"dry_run": true}))
        .await
        .expect(202);
    let empty = eventually(
        &stranger,
        &job_path(&reply.json),
        Duration::from_secs(30),
        is_done,
    )
    .await;
    assert_eq!(
        (&empty["evaluated"], &empty["changed"], &empty["changes"]),
        (&json!(0), &json!(0), &json!({})),
        "{empty}"
    );
}

#[tokio::test]
async fn jobs_start_when_an_enabled_rule_changes_what_it_answers() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("bf-auto"));
    tiering_rule(&client, false).await;
    client
        .post(
            "/fields",
            &json!({"name": "region", "type": "string", "cluster": true}),
        )
        .await
        .expect(201);
    create_customers(&client, 3).await;
    drain_stream(&stack.client(&unique_tenant("bf-auto-sentinel"))).await;
    // The newest job, once done, when the rule has `count` jobs.
    let finished = |count: usize| {
        let client = client.clone();
        async move {
            let listed = jobs(&client, "tiering").await;
            assert_eq!(listed.len(), count, "{listed:?}");
            eventually(
                &client,
                &job_path(&listed[0]),
                Duration::from_secs(60),
                is_done,
            )
            .await
        }
    };

    // Enabling.
    client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await
        .expect(200);
    let job = finished(1).await;
    assert_job(&job, 1, false);
    assert_eq!(
        (job["evaluated"].as_u64(), job["changed"].as_u64()),
        (Some(3), Some(3)),
        "{job}"
    );

    // A new version of an enabled rule.
    let reply = upload(&client, "tiering", &example("tier-c")).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let job = finished(2).await;
    assert_job(&job, 2, false);
    assert_eq!(
        (job["evaluated"].as_u64(), job["changed"].as_u64()),
        (Some(3), Some(0)),
        "the same answers: {job}"
    );

    // Other outputs.
    client
        .patch(
            "/rules/tiering",
            &json!({"outputs": ["tier", "distributor", "region"]}),
        )
        .await
        .expect(200);
    let job = finished(3).await;
    assert_job(&job, 2, false);
    assert_eq!(
        (job["evaluated"].as_u64(), job["changed"].as_u64()),
        (Some(3), Some(0)),
        "{job}"
    );

    // Running another version by pinning it.
    client
        .patch("/rules/tiering", &json!({"pinned_version": 1}))
        .await
        .expect(200);
    let job = finished(4).await;
    assert_job(&job, 1, false);

    // Changes that cannot change an answer start nothing.
    client
        .patch(
            "/rules/tiering",
            &json!({"description": "tiers by revenue"}),
        )
        .await
        .expect(200);
    client
        .patch("/rules/tiering", &json!({"enabled": false}))
        .await
        .expect(200);
    assert_eq!(jobs(&client, "tiering").await.len(), 4);
}

/// A directory of its own for the stream checkpoint, removed when the test passes (kept
/// for a look, with its `on-failure.jsonl`, when it fails).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("stream checkpoint kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn killing_the_server_mid_backfill_finishes_without_double_counting() {
    const CUSTOMERS: u64 = 600;
    let _heavy = HEAVY.lock().await;
    let stack = Stack::get().await;
    // A table, stream and stream poller of its own.
    let table = format!("backfill-kill-{}", unique_tenant("t"));
    let dir = TempDir(std::env::temp_dir().join(&table));
    let checkpoint = dir.0.join("checkpoint.json").display().to_string();
    // Small steps, so that every chain is still mid-way when the server dies.
    let mut api = stack.spawn_api(&[
        ("TABLE_NAME", &table),
        ("LOCAL_STREAMS", "on"),
        ("LOCAL_STREAM_CHECKPOINT", &checkpoint),
        ("BACKFILL_STEP_CUSTOMERS", "8"),
    ]);
    let tenant = unique_tenant("bf-kill");
    let client = api.client(&tenant);
    tiering_rule(&client, false).await;
    let expected = seed_customers(&table, &stack.moto_url, &tenant, CUSTOMERS).await;
    drain_stream(&api.client(&unique_tenant("bf-kill-sentinel"))).await;

    client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await
        .expect(200);
    let started = jobs(&client, "tiering").await;
    assert_eq!(started.len(), 1, "{started:?}");
    let path = job_path(&started[0]);
    let running = eventually(&client, &path, Duration::from_secs(60), |j| {
        j["evaluated"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(
        running["state"], "running",
        "finished before the kill: {running}"
    );

    api.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.restart();

    let job = eventually(&client, &path, Duration::from_secs(120), is_done).await;
    assert_job(&job, 1, false);
    assert_eq!(job["evaluated"], CUSTOMERS, "{job}");
    assert_eq!(job["changed"], CUSTOMERS, "{job}");
    assert_eq!(job["failed"], 0, "{job}");
    assert_each_chain_walked_its_shard(&job, &expected);
    assert_eq!(changes(&job, "tier"), expected.tiers, "{job}");
    assert_eq!(changes(&job, "distributor"), expected.distributors, "{job}");
    assert_eq!(jobs(&client, "tiering").await.len(), 1, "one job");

    // Every customer was written once, with the rule's answer.
    let customers = list_all(&client, "/customers", 100).await;
    assert_eq!(customers.len() as u64, CUSTOMERS);
    for customer in &customers {
        let (tier, distributor) = expected.by_id[customer["id"].as_str().unwrap()];
        assert_eq!(customer["version"], 2, "written once: {customer}");
        assert_eq!(customer["fields"]["tier"], tier, "{customer}");
        assert_eq!(customer["fields"]["distributor"], distributor, "{customer}");
    }
    // Counted once each, however often the stream delivered them: the counter reaches
    // the total, and stays there once the stream is drained.
    wait_for_count_within(
        &client,
        "/fields/tier",
        "/member_count",
        CUSTOMERS as i64,
        SETTLE_MANY,
    )
    .await;
    drain_stream(&api.client(&unique_tenant("bf-kill-sentinel-2"))).await;
    assert_eq!(member_count(&client, "tier").await, CUSTOMERS);
    assert!(
        !dir.0.join("on-failure.jsonl").exists(),
        "records were given up on: {}",
        api.log()
    );
}

/// A stream checkpoint past every record the table's stream holds now, as if the
/// poller had consumed them all (and given up on some).
async fn checkpoint_at_the_end(moto_url: &str, table: &str) -> Value {
    let described = aws_call(
        moto_url,
        "DynamoDB_20120810.DescribeTable",
        json!({"TableName": table}),
    )
    .await;
    let stream = described["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let shards = aws_call(
        moto_url,
        "DynamoDBStreams_20120810.DescribeStream",
        json!({"StreamArn": stream}),
    )
    .await["StreamDescription"]["Shards"]
        .clone();
    let mut positions = serde_json::Map::new();
    for shard in shards.as_array().unwrap() {
        let id = shard["ShardId"].as_str().unwrap();
        let mut iterator = aws_call(
            moto_url,
            "DynamoDBStreams_20120810.GetShardIterator",
            json!({"StreamArn": stream, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await["ShardIterator"]
            .clone();
        let mut last = None;
        while let Some(current) = iterator.as_str().map(str::to_owned) {
            let page = aws_call(
                moto_url,
                "DynamoDBStreams_20120810.GetRecords",
                json!({"ShardIterator": current, "Limit": 1000}),
            )
            .await;
            let records = page["Records"].as_array().cloned().unwrap_or_default();
            if records.is_empty() {
                break;
            }
            last = records
                .last()
                .map(|r| r["dynamodb"]["SequenceNumber"].clone());
            iterator = page["NextShardIterator"].clone();
        }
        if let Some(last) = last {
            positions.insert(id.to_owned(), json!({ "sequenceNumber": last }));
        }
    }
    json!({ "streamArn": stream, "shards": positions })
}

#[tokio::test]
async fn a_stalled_job_is_resumed_from_where_it_stopped() {
    const CUSTOMERS: u64 = 250;
    let _heavy = HEAVY.lock().await;
    let stack = Stack::get().await;
    let table = format!("backfill-stall-{}", unique_tenant("t"));
    let dir = TempDir(std::env::temp_dir().join(&table));
    std::fs::create_dir_all(&dir.0).unwrap();
    let checkpoint = dir.0.join("checkpoint.json");
    // No poller: the job's first record is written but never handled.
    let mut quiet = stack.spawn_api(&[("TABLE_NAME", &table), ("LOCAL_STREAMS", "off")]);
    let tenant = unique_tenant("bf-stall");
    let client = quiet.client(&tenant);
    tiering_rule(&client, false).await;
    let expected = seed_customers(&table, &stack.moto_url, &tenant, CUSTOMERS).await;
    client
        .patch("/rules/tiering", &json!({"enabled": true}))
        .await
        .expect(200);
    let path = job_path(&jobs(&client, "tiering").await[0]);
    quiet.kill();

    // A poller that starts past that record: the record was given up on (in AWS, after
    // its retries it went to the on-failure queue), so nothing drives the job.
    std::fs::write(
        &checkpoint,
        checkpoint_at_the_end(&stack.moto_url, &table)
            .await
            .to_string(),
    )
    .unwrap();
    let api = stack.spawn_api(&[
        ("TABLE_NAME", &table),
        ("LOCAL_STREAMS", "on"),
        ("LOCAL_STREAM_CHECKPOINT", &checkpoint.display().to_string()),
    ]);
    let client = api.client(&tenant);
    drain_stream(&api.client(&unique_tenant("bf-stall-sentinel"))).await;
    let stalled = client.get(&path).await.expect(200).json;
    assert_eq!(
        (stalled["state"].as_str(), stalled["evaluated"].as_u64()),
        (Some("running"), Some(0)),
        "{stalled}"
    );

    let resumed = client
        .post(&format!("{path}/resume"), &json!({}))
        .await
        .expect(202)
        .json;
    assert_eq!(steps(&resumed), steps(&stalled), "resumed where it stopped");
    let job = eventually(&client, &path, Duration::from_secs(90), is_done).await;
    assert_eq!(job["evaluated"], CUSTOMERS, "{job}");
    assert_eq!(job["changed"], CUSTOMERS, "{job}");
    assert_eq!(changes(&job, "tier"), expected.tiers, "{job}");
    assert_problem(
        &client.post(&format!("{path}/resume"), &json!({})).await,
        409,
        "conflict",
    );
    assert_eq!(jobs(&client, "tiering").await.len(), 1, "one job");
}
