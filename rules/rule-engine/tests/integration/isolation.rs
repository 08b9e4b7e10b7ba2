//! Every evaluation starts from a fresh instance, whatever the pool slot it reuses
//! held before (`EngineConfig::memory_reset`): a rule must not see the previous
//! customer, and the same input gives the same output.

use rule_engine::{EngineConfig, MemoryReset, RuleEngine, RunError};

use crate::common::{hostile_wasm, input_with_fields, maxima};

/// Every reset this machine can run: `PAGEMAP_SCAN` where the kernel has it, and the
/// fallback with nothing, some, and more than the module's memory kept resident.
fn resets() -> Vec<MemoryReset> {
    let mut resets: Vec<_> = [0, 1 << 20, 8 << 20]
        .into_iter()
        .map(|keep_resident| MemoryReset::LowBytes { keep_resident })
        .collect();
    if let detected @ MemoryReset::DirtyPages { .. } = MemoryReset::detect() {
        resets.push(detected);
    }
    resets
}

#[test]
fn no_trace_of_a_run_reaches_the_next_in_the_same_slot() {
    let wasm = hostile_wasm("remembers_previous_run");
    let input = input_with_fields(serde_json::json!({}));
    for memory_reset in resets() {
        // One slot, so every run reuses the memory and table of the one before.
        let engine = RuleEngine::new(EngineConfig {
            maxima: maxima(),
            max_concurrent_runs: 1,
            memory_reset,
            ..EngineConfig::default()
        })
        .expect("engine");
        let artifact = engine.precompile(&wasm).expect("precompile");
        // SAFETY: the artifact comes from `precompile` just above.
        let module = unsafe { engine.load_artifact(rule_engine::ModuleHash::of(&wasm), &artifact) }
            .expect("load");
        for run in 1..=5 {
            let report = engine.run(&module, &input, &maxima());
            match report.outcome {
                Ok(output) => assert!(output.clusters.is_empty()),
                Err(RunError::Exit(status)) => {
                    panic!(
                        "{memory_reset}: run {run} saw the trace of a run before (status {status})"
                    )
                }
                Err(error) => panic!("{memory_reset}: run {run}: {error}\n{}", report.logs),
            }
        }
    }
}
