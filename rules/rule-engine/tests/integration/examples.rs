//! The example rules, compiled by `rules/build-examples.sh` with Debian's
//! toolchains, run through the production path. Rust and C must agree: their cases
//! are `rules/examples/cases.json`, which `rules/portability.py` also runs under
//! wasmtime from PyPI; the tests here about the engine itself (fuel, threads,
//! `spawn_blocking`, artifact files, oversized input) keep their inputs inline.

use std::sync::OnceLock;

use crate::common::{Expected, engine, example_wasm, fixture, input_with_fields, load, run};
use rule_engine::{Limits, LoadedModule, ModuleHash, RunError, RunReport};
use serde_json::json;

const EXAMPLES: [&str; 3] = ["tier-rust", "tier-c", "tier-assemblyscript"];

fn rules() -> &'static [(&'static str, LoadedModule)] {
    static RULES: OnceLock<Vec<(&'static str, LoadedModule)>> = OnceLock::new();
    RULES.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| (*name, load(&example_wasm(name))))
            .collect()
    })
}

/// What `report` got wrong against `expected`, if anything.
fn mismatch(expected: &Expected, report: &RunReport) -> Option<String> {
    let outcome = match (&expected.output, expected.exit, &report.outcome) {
        (Some(output), None, Ok(got)) if got.to_json() == *output => None,
        (None, Some(status), Err(RunError::Exit(got))) if *got == status => None,
        (Some(output), None, got) => Some(format!("expected output {output}, got {got:?}")),
        (None, Some(status), got) => Some(format!("expected exit status {status}, got {got:?}")),
        _ => Some("the case must expect either `output` or `exit`".to_owned()),
    };
    let log = match &expected.log {
        Some(text) if !report.logs.contains(text.as_str()) => {
            Some(format!("the log lacks {text:?}"))
        }
        _ => None,
    };
    let ran = (report.fuel_used == 0 || report.memory_bytes == 0).then(|| {
        format!(
            "fuel used {}, memory {} bytes: the rule did not run",
            report.fuel_used, report.memory_bytes
        )
    });
    let problems: Vec<String> = [outcome, log, ran].into_iter().flatten().collect();
    (!problems.is_empty()).then(|| format!("{}\n    log: {:?}", problems.join("; "), report.logs))
}

/// Runs every case of the fixture's suite `suite` on each module; fails naming each
/// module and case that went wrong, all of them at once.
fn assert_suite<M: AsRef<str>>(suite: &str, modules: &[(M, LoadedModule)]) {
    let fixture = fixture();
    let suite = fixture.suite(suite);
    let mut failures = Vec::new();
    for (module, rule) in modules {
        for case in &suite.cases {
            if let Some(why) = mismatch(&case.expect, &run(rule, &fixture.input(case))) {
                failures.push(format!("{} / {}: {why}", module.as_ref(), case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs differ from rules/examples/cases.json:\n{}",
        failures.len(),
        modules.len() * suite.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_fixture_names_every_example() {
    // rules/portability.py reads the modules from the fixture: it must check all of them.
    assert_eq!(
        fixture().suite("tier").modules,
        EXAMPLES,
        "the `tier` suite of rules/examples/cases.json must list EXAMPLES"
    );
}

/// AA/A/B from numbers and decimal strings, distributor by type or wholesale, unknown
/// input keys, bad revenue values (status 1) and non-JSON input (status 2).
#[test]
fn tier_cases_of_the_fixture() {
    assert_suite("tier", rules());
}

/// [`assert_suite`] on the modules the suite itself names, loaded for it.
fn assert_suite_on_its_modules(suite: &str) {
    let modules: Vec<(&str, LoadedModule)> = fixture()
        .suite(suite)
        .modules
        .iter()
        .map(|name| (name.as_str(), load(&example_wasm(name))))
        .collect();
    assert_suite(suite, &modules);
}

/// The segment from this year's EUR sales and `repeat_buyer`, bad totals, an input
/// without `sales` and non-JSON input.
#[test]
fn sales_tier_cases_of_the_fixture() {
    assert_suite_on_its_modules("sales-tier");
}

/// The Rust SDK on wasm32-wasi (`rules/sdk-rust/checks`): a first allocation larger
/// than the initial memory has left grows memory (the arena used to trap on it), and
/// the SDK links with its default features and without LTO.
#[test]
fn rust_sdk_checks_of_the_fixture() {
    assert_suite_on_its_modules("sdk-rust");
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

/// Deep nesting in an unknown key: each example either reads past it or refuses the
/// input (status 2), but never runs out of its shadow stack (tier-rust has 64 KiB,
/// `examples/tier-rust/.cargo/config.toml`).
#[test]
fn deeply_nested_input_never_overflows_a_rule_stack() {
    for depth in [120, 1_000] {
        let nested = (0..depth).fold(json!(1), |inner, _| json!([inner]));
        let input = input_with_fields(json!({"annual_revenue": 1, "history": nested}));
        for (name, rule) in rules() {
            let report = run(rule, &input);
            assert!(
                matches!(report.outcome, Ok(_) | Err(RunError::Exit(2))),
                "{name} at depth {depth}: {:?}\n{}",
                report.outcome,
                report.logs
            );
        }
    }
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
