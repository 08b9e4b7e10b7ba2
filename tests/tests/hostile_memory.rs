//! 1,000 hostile evaluations in-process (issue 7): every module of `tests/hostile/` that
//! an upload accepts is run, round robin, through `rule-engine` on the production path
//! (validate, precompile, load the artifact, `run`; on plain threads, as the engine's
//! own tests do), with small fuel budgets so the whole test stays cheap. Meanwhile another
//! "tenant"'s well-behaved rule (the Rust example) runs on its own thread and must keep
//! giving the right answer. The process's resident memory (VmRSS) may not grow by more
//! than 8 MiB between the end of the warm-up and the end of the 1,000 runs: a leak of
//! 8 KiB per run (one instance's store, far less than one 64 KiB wasm page) breaks it,
//! while about 0.2 MiB is seen.
//!
//! Its own test binary, with one test, so no other test's allocations move the RSS.

mod common;
mod hostile_corpus;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hostile_corpus::{Expect, corpus};
use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, Limits, LoadedModule, ModuleHash, RuleEngine, RunReport,
};
use serde_json::{Value, json};

const RUNS: usize = 1_000;
const MAX_GROWTH: u64 = 8 << 20;

/// Resident set size of this process, from `/proc/self/status` (bytes).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

fn load(engine: &RuleEngine, name: &str, wasm: &[u8]) -> LoadedModule {
    engine
        .validate(wasm, DEFAULT_MAX_MODULE_BYTES)
        .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
    let artifact = engine
        .precompile(wasm)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    // SAFETY: the artifact is `precompile`'s output just above.
    unsafe { engine.load_artifact(ModuleHash::of(wasm), &artifact) }
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn input(fields: Value) -> Vec<u8> {
    json!({
        "abi": 1,
        "customer": {"id": "c-1", "email": "c@example.com", "first_name": null,
                     "last_name": null, "document": null, "phone": null,
                     "segment": {"id": "seg-1", "name": "Retail"}, "fields": fields},
        "sales": {"this_year": {"year": 2026, "orders": 0, "totals": {}},
                  "last_year": {"year": 2025, "orders": 0, "totals": {}}},
        "segments": [{"id": "seg-1", "name": "Retail"}],
        "rule": {"name": "r", "version": 1}
    })
    .to_string()
    .into_bytes()
}

/// Small budgets: 1,000,000 fuel (about 1 ms of guest work), 50 ms, and the default
/// 16 MiB of memory so the memory attacks still reach their limit.
fn cheap() -> Limits {
    Limits {
        fuel: 1_000_000,
        timeout: Duration::from_millis(50),
        ..Limits::default()
    }
}

fn code(report: &RunReport) -> &'static str {
    match &report.outcome {
        Ok(_) => "ok",
        Err(error) => error.code(),
    }
}

struct Module {
    name: String,
    rule: LoadedModule,
    expect: Expect,
    /// The module raises its own limits in the API (e.g. fuel for the deadline case):
    /// under the small budget it may run out of fuel first.
    own_limits: bool,
}

#[test]
fn a_thousand_hostile_runs_keep_memory_bounded_and_others_working() {
    let engine = Arc::new(
        // The functions' engine: the product's tenant maxima.
        RuleEngine::new(evaluation::engine_config()).expect("engine"),
    );
    let modules: Vec<Module> = corpus()
        .into_iter()
        .filter(|m| !matches!(m.expect, Expect::Upload(_)))
        .map(|m| Module {
            rule: load(
                &engine,
                &m.name,
                &m.wasm("0123456789abcdef0123456789abcdef"),
            ),
            own_limits: m.limits.is_some(),
            expect: m.expect.clone(),
            name: m.name,
        })
        .collect();
    assert!(modules.len() >= 20, "{} run-time modules", modules.len());
    let good = load(&engine, "tier-rust", &common::example("tier-rust"));
    let good_input = input(json!({"annual_revenue": "150000", "customer_type": "distributor"}));
    let good_answer = json!({"clusters": {"tier": "AA", "distributor": true}});

    let hostile_run = |module: &Module| -> RunReport {
        let report = engine.run(&module.rule, &input(json!({})), &cheap());
        let name = &module.name;
        let got = code(&report);
        match &module.expect {
            Expect::Run { code: expected, .. } => assert!(
                got == expected || (module.own_limits && got == "out_of_fuel"),
                "{name}: {got} ({:?}), expected {expected}",
                report.outcome
            ),
            // Verdicts are the domain's; the engine hands the output over.
            Expect::Verdict { .. } | Expect::Ok(_) => assert_eq!(got, "ok", "{name}"),
            Expect::Upload(_) => unreachable!(),
        }
        assert!(
            report.logs.len() <= Limits::DEFAULT_LOG_BYTES + 4096,
            "{name}"
        );
        report
    };

    // Warm-up: every module once, so pool slots, caches and lazily built host state
    // exist before the baseline.
    for module in &modules {
        hostile_run(module);
    }
    for _ in 0..5 {
        let report = engine.run(&good, &good_input, &Limits::default());
        assert_eq!(report.outcome.expect("good rule").to_json(), good_answer);
    }
    let baseline = rss();

    // The other tenant, on its own thread for as long as the hostile runs last.
    let done = Arc::new(AtomicBool::new(false));
    let good_runs = Arc::new(AtomicU64::new(0));
    let other = {
        let (engine, good, done, good_runs) = (
            engine.clone(),
            good.clone(),
            done.clone(),
            good_runs.clone(),
        );
        let (input, answer) = (good_input.clone(), good_answer.clone());
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while !done.load(Ordering::Relaxed) {
                let report = engine.run(&good, &input, &Limits::default());
                slowest = slowest.max(report.duration);
                match report.outcome {
                    Ok(output) => assert_eq!(output.to_json(), answer),
                    Err(error) => panic!("the good rule failed: {error} ({})", report.logs),
                }
                good_runs.fetch_add(1, Ordering::Relaxed);
            }
            slowest
        })
    };

    let started = Instant::now();
    let mut peak = baseline;
    let mut codes = std::collections::BTreeMap::<&'static str, usize>::new();
    let mut fuel = 0u64;
    for i in 0..RUNS {
        let report = hostile_run(&modules[i % modules.len()]);
        *codes.entry(code(&report)).or_default() += 1;
        fuel += report.fuel_used;
        if i % 25 == 0 {
            peak = peak.max(rss());
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let slowest_good = other.join().expect("the good rule's thread");
    let end = rss();
    peak = peak.max(end);
    let good_runs = good_runs.load(Ordering::Relaxed);

    println!(
        "hostile runs: {RUNS} over {} modules in {elapsed:.2?} ({fuel} fuel); outcomes {codes:?}",
        modules.len()
    );
    println!(
        "VmRSS: {:.1} MiB after warm-up, {:.1} MiB at the end, peak sampled {:.1} MiB \
         (growth {:+.1} MiB, limit {} MiB)",
        mib(baseline),
        mib(end),
        mib(peak),
        (end as f64 - baseline as f64) / (1 << 20) as f64,
        MAX_GROWTH >> 20
    );
    println!("good rule meanwhile: {good_runs} correct runs, slowest {slowest_good:.2?}");
    assert!(
        end.saturating_sub(baseline) < MAX_GROWTH && peak.saturating_sub(baseline) < MAX_GROWTH,
        "RSS grew from {} to {} (peak {})",
        baseline,
        end,
        peak
    );
    assert!(good_runs >= 10, "the good rule ran only {good_runs} times");
    // The pool is still usable: the good rule answers once more on this thread.
    let report = engine.run(&good, &good_input, &Limits::default());
    assert_eq!(report.outcome.expect("good rule").to_json(), good_answer);
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
