//! The example rules, compiled by `rules/build-examples.sh` with Debian's
//! toolchains, run through the production path. Rust and C must agree.

use std::sync::OnceLock;

use crate::common::{engine, example_wasm, input_with_fields, load, run};
use rule_engine::{Limits, LoadedModule, ModuleHash, RunError, SegmentChoice};
use serde_json::{Value, json};

const EXAMPLES: [&str; 2] = ["tier-rust", "tier-c"];

fn rules() -> &'static [(&'static str, LoadedModule)] {
    static RULES: OnceLock<Vec<(&'static str, LoadedModule)>> = OnceLock::new();
    RULES.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| (*name, load(&example_wasm(name))))
            .collect()
    })
}

/// Runs every example on `fields` and checks the clusters they assign.
fn assert_clusters(fields: Value, tier: &str, distributor: bool) {
    let input = input_with_fields(fields.clone());
    for (name, rule) in rules() {
        let report = run(rule, &input);
        let output = report
            .outcome
            .unwrap_or_else(|error| panic!("{name} on {fields}: {error}\n{}", report.logs));
        assert_eq!(
            Value::Object(output.clusters),
            json!({"tier": tier, "distributor": distributor}),
            "{name} on {fields}"
        );
        assert_eq!(output.segment, SegmentChoice::Unchanged, "{name}");
        assert!(report.fuel_used > 0 && report.memory_bytes > 0, "{name}");
        assert!(report.logs.contains(tier), "{name} logs: {}", report.logs);
    }
}

#[test]
fn aa_from_large_revenue_as_number_or_decimal_string() {
    assert_clusters(
        json!({"annual_revenue": 150000, "customer_type": "distributor"}),
        "AA",
        true,
    );
    assert_clusters(json!({"annual_revenue": "100000.00"}), "AA", false);
}

#[test]
fn a_from_mid_revenue() {
    assert_clusters(
        json!({"annual_revenue": "12500.50", "wholesale": true}),
        "A",
        true,
    );
    assert_clusters(json!({"annual_revenue": 10000}), "A", false);
    assert_clusters(json!({"annual_revenue": 99999.99}), "A", false);
}

#[test]
fn b_from_small_or_missing_revenue() {
    assert_clusters(
        json!({"annual_revenue": "9999.99", "customer_type": "retail"}),
        "B",
        false,
    );
    assert_clusters(
        json!({"annual_revenue": null, "wholesale": false}),
        "B",
        false,
    );
    assert_clusters(json!({}), "B", false);
}

#[test]
fn unknown_input_keys_are_ignored() {
    let mut input: Value = serde_json::from_slice(&input_with_fields(json!({
        "annual_revenue": 200000
    })))
    .unwrap();
    input["sales"] = json!({"total": 12, "last_order_at": "2026-01-01"});
    input["customer"]["loyalty"] = json!({"points": 10});
    let input = input.to_string().into_bytes();
    for (name, rule) in rules() {
        let output = run(rule, &input).outcome.expect(name);
        assert_eq!(output.clusters["tier"], "AA", "{name}");
    }
}

#[test]
fn bad_field_values_fail_with_the_reason_in_the_logs() {
    for revenue in [json!("lots"), json!("1e9"), json!(true)] {
        let input = input_with_fields(json!({ "annual_revenue": revenue }));
        for (name, rule) in rules() {
            let report = run(rule, &input);
            assert!(
                matches!(report.outcome, Err(RunError::Exit(1))),
                "{name} on {revenue}: {:?}",
                report.outcome
            );
            assert!(
                report.logs.contains("annual_revenue"),
                "{name} logs: {}",
                report.logs
            );
        }
    }
}

#[test]
fn input_that_is_not_json_exits_with_status_2() {
    for (name, rule) in rules() {
        let report = run(rule, b"customer=1");
        assert!(
            matches!(report.outcome, Err(RunError::Exit(2))),
            "{name}: {:?}",
            report.outcome
        );
    }
}

#[test]
fn oversized_input_is_refused_before_running() {
    let input = vec![b' '; Limits::DEFAULT_INPUT_BYTES + 1];
    let (_, rule) = &rules()[0];
    let report = run(rule, &input);
    let error = report.outcome.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "input is {} bytes; the limit is {}",
            Limits::DEFAULT_INPUT_BYTES + 1,
            Limits::DEFAULT_INPUT_BYTES
        )
    );
    assert_eq!(report.fuel_used, 0);
}

#[test]
fn tight_fuel_stops_a_real_rule() {
    let input = input_with_fields(json!({"annual_revenue": 1}));
    let limits = Limits {
        fuel: 1_000,
        ..Limits::default()
    };
    for (name, rule) in rules() {
        let report = engine().run(rule, &input, &limits);
        assert!(
            matches!(report.outcome, Err(RunError::OutOfFuel { limit: 1_000 })),
            "{name}: {:?}",
            report.outcome
        );
    }
}

#[test]
fn examples_run_concurrently_from_many_threads() {
    let input = input_with_fields(json!({"annual_revenue": 50000}));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..20 {
                    for (name, rule) in rules() {
                        let output = run(rule, &input).outcome.expect(name);
                        assert_eq!(output.clusters["tier"], "A");
                    }
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_from_spawn_blocking() {
    let (_, rule) = &rules()[1];
    let rule = rule.clone();
    let report = tokio::task::spawn_blocking(move || {
        run(&rule, &input_with_fields(json!({"annual_revenue": 1})))
    })
    .await
    .unwrap();
    assert_eq!(report.outcome.unwrap().clusters["tier"], "B");
}

#[test]
fn artifacts_load_from_files_and_stay_cached() {
    let engine = engine();
    let wasm = example_wasm("tier-c");
    let hash = ModuleHash::of(&wasm);
    let artifact = engine.precompile(&wasm).unwrap();
    let dir = std::env::temp_dir().join(format!("rule-engine-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{hash}.cwasm"));
    std::fs::write(&path, &artifact).unwrap();

    // A distinct hash so the file path is exercised, not the cache.
    let file_hash = ModuleHash::of(b"tier-c from a file");
    // SAFETY: the file holds the output of `precompile` above.
    let rule = unsafe { engine.load_artifact_file(file_hash, &path) }.unwrap();
    assert_eq!(rule.hash(), file_hash);
    assert!(engine.cached(&file_hash).is_some());
    let output = run(&rule, &input_with_fields(json!({"annual_revenue": 20000})))
        .outcome
        .unwrap();
    assert_eq!(output.clusters["tier"], "A");
    std::fs::remove_dir_all(&dir).unwrap();
}
