//! One stream batch of 100 customer records through decoding, evaluation (the example
//! Rust rule, precompiled and cached as in a warm container) and write planning.
//! DynamoDB I/O is excluded: the module is already loaded, and the planned writes are
//! not sent. `cpu` is the process's CPU time per batch (issue 16's budget: at most
//! 3 ms), `wall` its elapsed time, `engine runs only` the same 100 runs without the
//! host around them (the guest's share).
//!
//! Needs the example modules: `bash rules/build-examples.sh` first.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use domain::rule::{RuleDraft, RuleVersion, rule_input};
use domain::{CustomerDraft, CustomerSchema, FieldDraft, SalesSummary};
use evaluation::stream::api_write;
use evaluation::{Runner, TenantRules};
use rule_engine::ModuleHash;
use serde_json::json;
use store::{Store, StoreConfig, keys};

const TENANT: &str = "bench";
const RECORDS: usize = 100;

fn setup(runtime: &tokio::runtime::Runtime) -> (Runner, TenantRules, Event) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    // `ASSIGN_BENCH_MODULE` pins another build of the module, to compare host changes
    // while the example (or its SDK) changes.
    let path = std::env::var_os("ASSIGN_BENCH_MODULE")
        .map_or_else(|| root.join("target/rules-wasm/tier-rust.wasm"), Into::into);
    let wasm = std::fs::read(path).expect("run `bash rules/build-examples.sh` first");
    // Never contacted: the rule is loaded into the engine's cache below.
    let store = runtime.block_on(Store::connect(&StoreConfig {
        table_name: "bench".into(),
        endpoint_url: Some("http://127.0.0.1:9".into()),
    }));
    let runner = Runner::new(store).unwrap();
    let hash = ModuleHash::of(&wasm);
    let artifact = runner.engine().precompile(&wasm).unwrap();
    // SAFETY: `artifact` comes from `precompile` just above.
    unsafe { runner.engine().load_artifact(hash, &artifact) }.unwrap();

    let now = Utc::now();
    let fields: Vec<_> = [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
        json!({"name": "annual_revenue", "type": "decimal"}),
        json!({"name": "customer_type", "type": "string"}),
    ]
    .iter()
    .map(|body| FieldDraft::parse(body).unwrap().into_field(now))
    .collect();
    let rule = RuleDraft::parse(&json!({"outputs": ["tier", "distributor"]}), &fields)
        .unwrap()
        .into_rule("tiering".into(), now);
    let version = RuleVersion {
        rule: rule.name.clone(),
        number: 1,
        sha256: hash.to_string(),
        size: wasm.len() as u64,
        created_at: now,
    };
    let rules = TenantRules {
        tenant: TENANT.into(),
        rules: vec![(rule, version)],
        fields: fields.clone(),
        segments: Vec::new(),
    };

    let schema = CustomerSchema {
        fields: &fields,
        segment: None,
        current_segment_id: None,
    };
    let records = (0..RECORDS)
        .map(|i| {
            let body = json!({
                "email": format!("c{i}@example.com"),
                "first_name": "Ada",
                "fields": {
                    "annual_revenue": format!("{}", i * 1_500),
                    "customer_type": if i % 7 == 0 { "distributor" } else { "retail" },
                }
            });
            let customer = CustomerDraft::parse(&body, &schema)
                .unwrap()
                .into_customer(format!("c{i}"), now);
            let mut record = EventRecord::default();
            record.event_name = "MODIFY".into();
            // The store's own key layout, so `api_write` sees a customer record.
            record.change.keys = serde_dynamo::to_item(json!({
                "pk": keys::customer_home(TENANT, &customer.id),
                "sk": format!("{}{}", keys::CUSTOMER, customer.id),
            }))
            .unwrap();
            record.change.new_image = serde_dynamo::to_item(&customer).unwrap();
            record.change.sequence_number = Some(format!("{i:021}"));
            record
        })
        .collect();
    let mut event = Event::default();
    event.records = records;
    (runner, rules, event)
}

/// The CPU time of the whole process so far: every thread's (the caller's, the runtime
/// workers', the blocking pool's, the engine's epoch ticker's). The budget is CPU
/// per batch, and wall time would miss work handed to other threads.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live `timespec`.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// What the handler does per record, minus the I/O: decode, evaluate, plan. Driven by
/// `block_on`, as `lambda_runtime::run` drives the handler, on an event it owns (as the
/// handler owns the one the runtime decoded), dropped within the batch.
fn run_batch(
    runtime: &tokio::runtime::Runtime,
    runner: &Runner,
    rules: &TenantRules,
    mut event: Event,
) {
    runtime.block_on(async {
        let mut writes = 0;
        for record in &mut event.records {
            let (_, customer) = api_write(record).unwrap().expect("an API write");
            let plan = rules
                .plan(runner, &customer, &SalesSummary::default(), Utc::now())
                .await
                .unwrap();
            assert_eq!(plan.failed_rules, 0);
            writes += usize::from(plan.write.is_some());
        }
        assert_eq!(writes, RECORDS);
    })
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (runner, rules, event) = setup(&runtime);
    let mut group = c.benchmark_group("assign: batch of 100 records, evaluate + plan");
    group.bench_function("cpu", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                // The copy stands for the runtime's decoding of the event: not counted.
                let event = event.clone();
                let start = process_cpu();
                run_batch(&runtime, &runner, &rules, event);
                spent += process_cpu() - start;
            }
            spent
        })
    });
    group.bench_function("wall", |b| {
        b.iter_batched(
            || event.clone(),
            |event| run_batch(&runtime, &runner, &rules, event),
            BatchSize::LargeInput,
        )
    });
    // The guest's share: the same 100 inputs through the engine alone, inline. The rest
    // of `cpu` is the host's (decoding, input, planning, scheduling).
    let (rule, version) = &rules.rules[0];
    let loaded = runner
        .engine()
        .cached(&version.sha256.parse().unwrap())
        .unwrap();
    let limits = evaluation::limits(rule);
    let inputs: Vec<Vec<u8>> = event
        .clone()
        .records
        .iter_mut()
        .map(|record| {
            let (_, customer) = api_write(record).unwrap().unwrap();
            let seen = customer.visible(&rules.fields);
            let sales = SalesSummary::default();
            rule_input(&seen, &sales, &[], rule, version.number)
                .to_bytes()
                .unwrap()
        })
        .collect();
    group.bench_function("engine runs only", |b| {
        b.iter(|| {
            for input in &inputs {
                assert!(runner.engine().run(&loaded, input, &limits).outcome.is_ok());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = batch
}
criterion_main!(benches);
