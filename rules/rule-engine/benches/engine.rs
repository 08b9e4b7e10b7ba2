//! Cost of the rule engine's steps, and of the same tier logic in native Rust.
//!
//! Needs the example modules: run `rules/build-examples.sh` first.
//! `cargo bench -p rule-engine --bench engine -- --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rule_engine::{EngineConfig, Limits, LoadedModule, MemoryReset, ModuleHash, RuleEngine};
use serde_json::{Map, Value, json};

const EXAMPLES: [&str; 3] = ["tier-rust", "tier-c", "tier-assemblyscript"];

fn example_wasm(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("RULES_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/rules-wasm")
        });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run rules/build-examples.sh",
            path.display()
        )
    })
}

/// A small input, like a customer with a couple of custom fields (~180 bytes).
fn input() -> Vec<u8> {
    json!({
        "abi": 1,
        "customer": {"id": "c-1", "email": "a@b.co", "segment": null,
                     "fields": {"annual_revenue": "12500.50", "customer_type": "distributor"}},
        "segments": [],
        "rule": {"name": "tier", "version": 1}
    })
    .to_string()
    .into_bytes()
}

/// An empty `_start`: measures the fixed cost of a run (store, WASI context,
/// pooled instantiation, call) without any guest work.
const EMPTY_RULE: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// Ten 16-byte writes to stderr: with `EMPTY_RULE`, prices one host call.
const TEN_WRITES_RULE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (loop $more
      (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 10))))))"#;

fn engine(cache_capacity: usize) -> RuleEngine {
    RuleEngine::new(EngineConfig {
        cache_capacity,
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// Precompiles and loads `wasm`, as upload then a cache miss do.
fn load(engine: &RuleEngine, wasm: &[u8]) -> LoadedModule {
    let artifact = engine.precompile(wasm).expect("precompile");
    // SAFETY: the artifact comes from `precompile` just above.
    unsafe { engine.load_artifact(ModuleHash::of(wasm), &artifact) }.expect("load")
}

fn evaluate(c: &mut Criterion) {
    let engine = engine(16);
    let input = input();
    let limits = Limits::default();
    let mut group = c.benchmark_group("evaluate");
    let modules = EXAMPLES
        .iter()
        .map(|name| (*name, example_wasm(name)))
        .chain([
            ("empty-rule", wat::parse_str(EMPTY_RULE).expect("wat")),
            (
                "ten-log-writes",
                wat::parse_str(TEN_WRITES_RULE).expect("wat"),
            ),
        ]);
    println!("memory reset: {}", engine.memory_reset());
    for (name, wasm) in modules {
        let loaded = load(&engine, &wasm);
        let report = engine.run(&loaded, &input, &limits);
        if EXAMPLES.contains(&name) {
            report
                .outcome
                .as_ref()
                .expect("example rule should succeed");
        }
        group.bench_function(name, |b| {
            b.iter(|| engine.run(black_box(&loaded), black_box(&input), &limits))
        });
    }
    group.finish();
}

/// The same runs on a thread that has a tokio runtime handle, as inside
/// `block_in_place` in the Lambda handlers. The host functions never touch
/// it (they are plain synchronous code); kept to show runs cost the same there.
fn evaluate_in_runtime(c: &mut Criterion) {
    let engine = engine(16);
    let input = input();
    let limits = Limits::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("evaluate_in_runtime");
    let modules = EXAMPLES
        .iter()
        .map(|name| (*name, example_wasm(name)))
        .chain([(
            "ten-log-writes",
            wat::parse_str(TEN_WRITES_RULE).expect("wat"),
        )]);
    for (name, wasm) in modules {
        let loaded = load(&engine, &wasm);
        group.bench_function(name, |b| {
            b.iter(|| engine.run(black_box(&loaded), black_box(&input), &limits))
        });
    }
    group.finish();
}

/// The examples under each way of resetting memory between runs: the default
/// `madvise` of every page (`low-bytes-0`), `memset` of the lowest bytes (the fallback
/// without `PAGEMAP_SCAN`), and `PAGEMAP_SCAN` (where the kernel has it).
fn memory_reset(c: &mut Criterion) {
    let input = input();
    let limits = Limits::default();
    let mut resets: Vec<(String, MemoryReset)> = [0, 256 << 10, 1 << 20, 4 << 20]
        .into_iter()
        .map(|keep_resident| {
            (
                format!("low-bytes-{}k", keep_resident >> 10),
                MemoryReset::LowBytes { keep_resident },
            )
        })
        .collect();
    if let reset @ MemoryReset::DirtyPages { keep_resident } = MemoryReset::detect() {
        resets.push((format!("dirty-pages-{}k", keep_resident >> 10), reset));
    }
    let mut group = c.benchmark_group("memory_reset");
    for (reset_name, memory_reset) in resets {
        let engine = RuleEngine::new(EngineConfig {
            memory_reset,
            ..EngineConfig::default()
        })
        .expect("engine");
        for name in EXAMPLES {
            let loaded = load(&engine, &example_wasm(name));
            group.bench_function(format!("{reset_name}/{name}"), |b| {
                b.iter(|| engine.run(black_box(&loaded), black_box(&input), &limits))
            });
        }
    }
    group.finish();
}

fn load_artifact(c: &mut Criterion) {
    // Capacity 1 and a fresh hash per load: every iteration deserialises.
    let engine = engine(1);
    let mut group = c.benchmark_group("load_artifact");
    for name in EXAMPLES {
        let artifact = engine.precompile(&example_wasm(name)).expect("precompile");
        let mut counter = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                counter += 1;
                let hash = ModuleHash::of(&counter.to_le_bytes());
                // SAFETY: the artifact comes from `precompile` above.
                unsafe { engine.load_artifact(hash, black_box(&artifact)) }.expect("load")
            })
        });
    }
    group.finish();
}

fn precompile(c: &mut Criterion) {
    let engine = engine(1);
    let mut group = c.benchmark_group("precompile");
    group.sample_size(10);
    for name in EXAMPLES {
        let wasm = example_wasm(name);
        group.bench_function(name, |b| b.iter(|| engine.precompile(black_box(&wasm))));
    }
    group.finish();
}

/// The example's logic in native Rust, with the same JSON in and out.
fn native_tier(input: &[u8]) -> String {
    let input: Value = serde_json::from_slice(input).expect("input");
    let fields = &input["customer"]["fields"];
    let revenue = match &fields["annual_revenue"] {
        Value::Number(number) => number.as_f64().unwrap_or(0.0),
        Value::String(text) => text.parse().unwrap_or(0.0),
        _ => 0.0,
    };
    let tier = if revenue >= 100_000.0 {
        "AA"
    } else if revenue >= 10_000.0 {
        "A"
    } else {
        "B"
    };
    let distributor =
        fields["customer_type"] == "distributor" || fields["wholesale"] == Value::Bool(true);
    let mut clusters = Map::new();
    clusters.insert("tier".into(), tier.into());
    clusters.insert("distributor".into(), distributor.into());
    json!({ "clusters": clusters }).to_string()
}

fn native(c: &mut Criterion) {
    let input = input();
    c.bench_function("native/tier-with-json", |b| {
        b.iter(|| native_tier(black_box(&input)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = evaluate, evaluate_in_runtime, memory_reset, load_artifact, precompile, native
}
criterion_main!(benches);
