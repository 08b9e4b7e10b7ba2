//! Modules that misbehave on purpose (`tests/hostile/*.wat`). Each must end in
//! one specific, clearly worded error, and never take the host down.

use std::time::{Duration, Instant};

use crate::common::{engine, hostile_wasm, input_with_fields, load, run};
use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, Limits, OutputError, RunError, RunReport, SegmentChoice,
    ValidationError,
};
use serde_json::json;

fn input() -> Vec<u8> {
    input_with_fields(json!({}))
}

fn run_hostile(name: &str) -> RunReport {
    run(&load(&hostile_wasm(name)), &input())
}

fn error_of(report: RunReport) -> RunError {
    match report.outcome {
        Ok(output) => panic!("expected an error, got {output:?}"),
        Err(error) => error,
    }
}

fn validation_error(wasm: &[u8]) -> ValidationError {
    engine()
        .validate(wasm, DEFAULT_MAX_MODULE_BYTES)
        .expect_err("module should be refused")
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let report = run_hostile("infinite_loop");
    assert_eq!(report.fuel_used, Limits::DEFAULT_FUEL);
    let error = error_of(report);
    assert!(matches!(
        error,
        RunError::OutOfFuel {
            limit: Limits::DEFAULT_FUEL
        }
    ));
    assert_eq!(error.to_string(), "rule ran out of fuel (limit 11000000)");
}

/// Fuel no rule burns in 50 ms, so the deadline is what stops it.
fn fuel_for_hours_50_ms_deadline() -> Limits {
    Limits {
        fuel: 1 << 40,
        timeout: Duration::from_millis(50),
        ..Limits::default()
    }
}

#[test]
fn infinite_loop_with_plenty_of_fuel_hits_the_deadline() {
    let rule = load(&hostile_wasm("infinite_loop"));
    let limits = fuel_for_hours_50_ms_deadline();
    let started = Instant::now();
    let report = engine().run(&rule, &input(), &limits);
    let elapsed = started.elapsed();
    assert!(
        report.duration >= Duration::from_millis(50),
        "{:?}",
        report.duration
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let error = error_of(report);
    assert!(matches!(error, RunError::Timeout { .. }), "{error:?}");
    assert_eq!(error.to_string(), "rule exceeded its deadline of 50 ms");
}

/// A timed-out rule reports the fuel it burnt, so a tenant can tell a slow rule
/// from a busy one. Wasm keeps the count in a register and saves it at calls and
/// returns, which the deadline's epoch trap never reads; runs stop at a fuel yield
/// instead, where the count is saved, so a loop that calls nothing (`infinite_loop`,
/// which reported 0 before) is counted as exactly as a loop of calls, and so is a loop
/// of bulk memory writes (rules/README.md "Limits").
#[test]
fn a_rule_that_hits_the_deadline_reports_the_fuel_it_used() {
    for name in ["infinite_loop", "busy_calls", "memory_fill_loop"] {
        let rule = load(&hostile_wasm(name));
        let limits = fuel_for_hours_50_ms_deadline();
        let report = engine().run(&rule, &input(), &limits);
        // Each round is a handful of instructions; 50 ms runs millions of them.
        assert!(
            report.fuel_used > 1_000_000 && report.fuel_used < limits.fuel,
            "{name}: fuel used: {}",
            report.fuel_used
        );
        // Stopped at a fuel yield: the epoch trap would have left a wasm backtrace.
        assert!(
            !report.logs.contains("[wasm backtrace]"),
            "{name}: {}",
            report.logs
        );
        let error = error_of(report);
        assert!(
            matches!(error, RunError::Timeout { .. }),
            "{name}: {error:?}"
        );
    }
}

/// Bulk memory operations cost a unit of fuel per byte (wasmtime's default operator
/// costs), so fuel paces even a loop of `memory.fill` over megabytes: with one byte
/// less than a single 8 MiB fill, the rule runs out of fuel at that fill. Were a fill one
/// unit whatever its size, the loop would run past the 100 ms deadline instead, and
/// only the epoch backstop would stop it (rules/README.md "Limits").
#[test]
fn bulk_memory_costs_fuel_per_byte() {
    let rule = load(&hostile_wasm("memory_fill_loop"));
    let one_fill = 8 << 20;
    let limits = Limits {
        fuel: one_fill - 1,
        ..Limits::default()
    };
    let report = engine().run(&rule, &input(), &limits);
    assert_eq!(report.fuel_used, limits.fuel);
    let error = error_of(report);
    assert!(matches!(error, RunError::OutOfFuel { .. }), "{error:?}");
}

#[test]
fn memory_grow_bomb_hits_the_memory_limit() {
    let report = run_hostile("memory_bomb");
    assert!(report.memory_bytes <= Limits::DEFAULT_MEMORY_BYTES);
    let error = error_of(report);
    assert!(
        matches!(
            error,
            RunError::MemoryLimit {
                limit: Limits::DEFAULT_MEMORY_BYTES,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "rule tried to grow its memory to 16842752 bytes; the limit is 16777216"
    );
}

#[test]
fn per_rule_memory_limit_is_lower_than_the_maximum() {
    let rule = load(&hostile_wasm("memory_bomb"));
    let limits = Limits {
        memory_bytes: 2 << 20,
        ..Limits::default()
    };
    let error = error_of(engine().run(&rule, &input(), &limits));
    assert!(
        matches!(
            error,
            RunError::MemoryLimit {
                limit: 2097152,
                requested: 2162688
            }
        ),
        "{error:?}"
    );
}

#[test]
fn initial_memory_over_the_maximum_is_refused_at_upload() {
    let error = validation_error(&hostile_wasm("initial_memory_over_maximum"));
    assert_eq!(
        error.to_string(),
        "module needs 33554432 bytes of memory to start; the limit is 16777216"
    );
}

#[test]
fn initial_memory_over_a_rule_limit_fails_at_instantiation() {
    let rule = load(&hostile_wasm("big_initial_memory"));
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let error = error_of(engine().run(&rule, &input(), &limits));
    assert!(
        matches!(
            error,
            RunError::MemoryLimit {
                requested: 2097152,
                limit: 1048576
            }
        ),
        "{error:?}"
    );
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let error = error_of(run_hostile("deep_recursion"));
    assert!(matches!(error, RunError::StackOverflow), "{error:?}");
    assert_eq!(error.to_string(), "rule exhausted the wasm call stack");
}

#[test]
fn output_flood_is_output_too_large() {
    let error = error_of(run_hostile("output_flood"));
    assert!(
        matches!(error, RunError::OutputTooLarge { limit: 65536 }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "output exceeded 65536 bytes");
}

#[test]
fn log_flood_is_truncated_and_the_rule_still_succeeds() {
    let report = run_hostile("log_flood");
    let marker = "\n[log truncated at 16384 bytes]";
    assert!(report.logs.ends_with(marker), "{}", &report.logs[16000..]);
    assert_eq!(report.logs.len(), Limits::DEFAULT_LOG_BYTES + marker.len());
    let output = report
        .outcome
        .expect("log flood should still produce its output");
    assert_eq!(output.clusters["flooded"], true);
}

#[test]
fn non_zero_exit_is_reported_with_its_status_and_logs() {
    let report = run_hostile("exit_3");
    assert_eq!(report.logs, "giving up\n");
    let error = error_of(report);
    assert!(matches!(error, RunError::Exit(3)), "{error:?}");
    assert_eq!(error.to_string(), "rule exited with status 3");
}

#[test]
fn exit_zero_after_writing_output_is_success() {
    let output = run_hostile("exit_0_after_output").outcome.unwrap();
    assert_eq!(output.segment, SegmentChoice::Clear);
    assert!(output.clusters.is_empty());
}

#[test]
fn unreachable_traps_with_a_backtrace_in_the_logs() {
    let report = run_hostile("unreachable");
    assert!(report.logs.contains("[wasm backtrace]"), "{}", report.logs);
    let error = error_of(report);
    assert!(matches!(&error, RunError::Trap(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "rule trapped: wasm `unreachable` instruction executed"
    );
}

#[test]
fn invalid_json_output() {
    let error = error_of(run_hostile("invalid_json"));
    assert!(
        matches!(error, RunError::Output(OutputError::NotJson(_))),
        "{error:?}"
    );
    assert_eq!(error.code(), "output_not_json");
    assert_eq!(
        error.to_string(),
        "output is not valid JSON: expected ident at line 1 column 2"
    );
}

#[test]
fn invalid_utf8_output() {
    let error = error_of(run_hostile("invalid_utf8"));
    assert!(
        matches!(
            error,
            RunError::Output(OutputError::NotUtf8 { valid_up_to: 13 })
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "output_not_utf8");
}

#[test]
fn wrong_output_shape() {
    let error = error_of(run_hostile("wrong_shape"));
    assert!(
        matches!(error, RunError::Output(OutputError::Shape(_))),
        "{error:?}"
    );
    assert_eq!(error.code(), "output_shape");
    assert_eq!(
        error.to_string(),
        "output has the wrong shape: `clusters` must be an object"
    );
}

#[test]
fn rule_with_no_output() {
    let error = error_of(run_hostile("missing_output"));
    assert!(
        matches!(error, RunError::Output(OutputError::NoOutput)),
        "{error:?}"
    );
    assert_eq!(error.code(), "no_output");
}

#[test]
fn stdin_receives_exactly_the_input() {
    let input = br#"{"clusters": {"echo": "\u00e9"}, "segment": "gold"}"#;
    let report = run(&load(&hostile_wasm("echo_input")), input);
    let output = report.outcome.unwrap();
    assert_eq!(output.clusters["echo"], "é");
    assert_eq!(output.segment, SegmentChoice::Set("gold".into()));
}

#[test]
fn unknown_import_is_refused_at_upload() {
    let error = validation_error(&hostile_wasm("unknown_import"));
    assert_eq!(error.to_string(), "unknown import `env::x`");
}

#[test]
fn forbidden_wasi_import_is_refused_at_upload() {
    let error = validation_error(&hostile_wasm("forbidden_import"));
    assert_eq!(
        error.to_string(),
        "import `wasi_snapshot_preview1::poll_oneoff` is not allowed: \
         rules cannot sleep or wait for events"
    );
}

#[test]
fn wrongly_typed_wasi_import_is_refused_at_upload() {
    let error = validation_error(&hostile_wasm("wrong_import_type"));
    assert_eq!(
        error.to_string(),
        "import `wasi_snapshot_preview1::fd_write` has type (i32) -> i32; \
         ABI v1 expects (i32, i32, i32, i32) -> i32"
    );
}

#[test]
fn missing_exports_are_refused_at_upload() {
    let error = validation_error(&hostile_wasm("missing_start"));
    assert_eq!(error.to_string(), "missing export `_start`");
    let error = validation_error(&hostile_wasm("missing_memory"));
    assert_eq!(error.to_string(), "missing export `memory`");
}

#[test]
fn invalid_bytes_are_refused_at_upload() {
    let error = validation_error(b"definitely not wasm");
    assert!(matches!(error, ValidationError::Invalid(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("not a valid WebAssembly module: ")
    );
    // A valid header followed by garbage.
    let error = validation_error(b"\0asm\x01\0\0\0\x01\xff\xff");
    assert!(matches!(error, ValidationError::Invalid(_)), "{error:?}");
}

#[test]
fn oversized_module_is_refused_before_parsing() {
    let error = validation_error(&vec![0u8; 5_000_000]);
    assert_eq!(
        error.to_string(),
        "module is 5000000 bytes; the limit is 4194304"
    );
}

#[test]
fn artifacts_that_are_not_artifacts_are_refused() {
    // SAFETY: wasmtime checks the header before using anything; these bytes
    // are rejected there. Production only loads our own artifacts.
    let error =
        unsafe { engine().load_artifact(rule_engine::ModuleHash::of(b"junk"), b"\x7fELF junk") }
            .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("could not load the compiled artifact"),
        "{error}"
    );
}

#[test]
fn the_host_survives_a_burst_of_hostile_runs() {
    let names = [
        "infinite_loop",
        "memory_bomb",
        "deep_recursion",
        "output_flood",
        "unreachable",
    ];
    let rules: Vec<_> = names.iter().map(|name| load(&hostile_wasm(name))).collect();
    std::thread::scope(|scope| {
        for rule in &rules {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert!(run(rule, &input()).outcome.is_err());
                }
            });
        }
    });
    // Pool slots were all returned: a well-behaved module still runs.
    let report = run_hostile("exit_0_after_output");
    assert!(report.outcome.is_ok());
}
