//! The `rule-engine` runner binary (`src/main.rs`): its exit statuses (0 the rule
//! succeeded, 1 it failed, 2 a usage, I/O or validation error), what it prints, and how
//! its limit flags apply.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rule_engine::{Limits, ModuleHash};
use serde_json::{Value, json};

use crate::common::{example_wasm, hostile_path, hostile_wasm, input_with_fields};

/// What one invocation of the binary did.
struct Invocation {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `rule-engine ARGS` with `stdin` as its standard input.
fn rule_engine(args: &[&str], stdin: &[u8]) -> Invocation {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rule-engine"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rule-engine");
    let mut pipe = child.stdin.take().unwrap();
    // A usage error exits without reading stdin: a broken pipe here is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let output = child.wait_with_output().expect("wait for rule-engine");
    Invocation {
        status: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// A directory of files for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rule-engine-cli-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `name` and returns its path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path_text(&path)
    }

    /// A path in this directory that does not exist.
    fn missing(&self, name: &str) -> String {
        path_text(&self.0.join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_owned()
}

fn json_document(invocation: &Invocation) -> Value {
    serde_json::from_str(&invocation.stdout)
        .unwrap_or_else(|error| panic!("--json printed no JSON ({error}): {invocation:?}"))
}

#[test]
fn validate_accepts_a_rule_and_prints_its_hash() {
    let scratch = Scratch::new("validate-ok");
    let wasm = example_wasm("tier-c");
    let module = scratch.file("tier-c.wasm", &wasm);
    let done = rule_engine(&["validate", &module], b"");
    assert_eq!(done.status, Some(0), "{done:?}");
    assert_eq!(
        done.stdout,
        format!(
            "{module}: valid rule module (ABI v1), sha256 {}\n",
            ModuleHash::of(&wasm)
        )
    );
    assert_eq!(done.stderr, "");
}

#[test]
fn validate_refuses_a_module_outside_the_abi_with_status_2() {
    let scratch = Scratch::new("validate-refused");
    let module = scratch.file("unknown_import.wasm", &hostile_wasm("unknown_import"));
    let done = rule_engine(&["validate", &module], b"");
    assert_eq!(done.status, Some(2), "{done:?}");
    assert_eq!(done.stdout, "");
    assert_eq!(
        done.stderr,
        format!("rule-engine: {module}: unknown import `env::x`\n")
    );
    // `run` validates first, the same way.
    let input = scratch.file("input.json", b"{}");
    let done = rule_engine(&["run", &module, "--input", &input], b"");
    assert_eq!(done.status, Some(2), "{done:?}");
    assert_eq!(
        done.stderr,
        format!("rule-engine: {module}: unknown import `env::x`\n")
    );
}

#[test]
fn run_prints_the_decision_and_exits_0() {
    let scratch = Scratch::new("run-ok");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let input = scratch.file(
        "input.json",
        &input_with_fields(json!({"annual_revenue": 50000})),
    );
    let done = rule_engine(&["run", &module, "--input", &input], b"");
    assert_eq!(done.status, Some(0), "{done:?}");
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert!(lines[0].starts_with("output:  {"), "{done:?}");
    assert!(lines[0].contains(r#""tier":"A""#), "{done:?}");
    assert_eq!(lines[1], "segment: unchanged");
    assert!(
        lines[2].starts_with("fuel:    ") && lines[2].contains(" of 11000000 ("),
        "{done:?}"
    );
    assert!(
        lines[3].starts_with("time:    ") && lines[3].contains("(deadline 100 ms)"),
        "{done:?}"
    );
    assert!(
        lines[4].starts_with("memory:  ") && lines[4].ends_with(" of 16.00 MiB"),
        "{done:?}"
    );
    assert_eq!(lines[5], "logs:");
    assert!(lines[6].starts_with("  | "), "{done:?}");
    assert_eq!(done.stderr, "");
}

#[test]
fn run_json_reads_stdin_and_reports_the_limits_asked_for() {
    let scratch = Scratch::new("run-json");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let done = rule_engine(
        &[
            "run",
            &module,
            "--input",
            "-",
            "--json",
            "--fuel",
            "2000000",
            "--memory-mib",
            "4",
            "--timeout-ms",
            "50",
        ],
        &input_with_fields(json!({"annual_revenue": "150000"})),
    );
    assert_eq!(done.status, Some(0), "{done:?}");
    let document = json_document(&done);
    assert_eq!(document["ok"], true, "{done:?}");
    assert_eq!(document["output"]["clusters"]["tier"], "AA");
    assert_eq!(document["error"], Value::Null);
    assert_eq!(document["fuel_limit"], 2_000_000);
    assert_eq!(document["memory_limit_bytes"], 4 << 20);
    let fuel_used = document["fuel_used"].as_u64().unwrap();
    assert!(fuel_used > 0 && fuel_used <= 2_000_000, "{done:?}");
    assert!(
        document["logs"].as_str().unwrap().contains("AA"),
        "{done:?}"
    );
    for key in ["duration_us", "memory_bytes", "precompile_us", "load_us"] {
        assert!(document[key].is_u64(), "{key}: {done:?}");
    }
}

#[test]
fn limits_above_the_defaults_raise_the_maxima_for_that_run() {
    let scratch = Scratch::new("run-raised");
    let module = scratch.file("infinite_loop.wasm", &hostile_wasm("infinite_loop"));
    let input = scratch.file("input.json", &input_with_fields(json!({})));
    let fuel = Limits::DEFAULT_FUEL * 2;
    let done = rule_engine(
        &[
            "run",
            &module,
            "--input",
            &input,
            "--fuel",
            &fuel.to_string(),
            "--timeout-ms",
            "10000",
            "--json",
        ],
        b"",
    );
    assert_eq!(done.status, Some(1), "{done:?}");
    let document = json_document(&done);
    assert_eq!(document["ok"], false);
    assert_eq!(document["output"], Value::Null);
    // Clamped to the default maxima it would stop at the default fuel.
    assert_eq!(document["fuel_used"], fuel, "{done:?}");
    assert_eq!(
        document["error"],
        json!({"code": "out_of_fuel", "message": format!("rule ran out of fuel (limit {fuel})")})
    );
}

#[test]
fn a_rule_that_fails_exits_1_with_the_reason() {
    let scratch = Scratch::new("run-fails");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let input = scratch.file(
        "input.json",
        &input_with_fields(json!({"annual_revenue": "lots"})),
    );
    let done = rule_engine(&["run", &module, "--input", &input], b"");
    assert_eq!(done.status, Some(1), "{done:?}");
    assert!(
        done.stdout
            .starts_with("error:   rule exited with status 1 [exit]\n"),
        "{done:?}"
    );
    assert!(done.stdout.contains("annual_revenue"), "{done:?}");
    assert_eq!(done.stderr, "");
}

#[test]
fn a_repeated_flag_takes_its_last_value() {
    let scratch = Scratch::new("run-repeated");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let input = scratch.file("input.json", &input_with_fields(json!({})));
    let missing = scratch.missing("missing.json");
    let done = rule_engine(
        &[
            "run", &module, "--input", &missing, "--input", &input, "--fuel", "1000", "--fuel",
            "5000000", "--json", "--json",
        ],
        b"",
    );
    assert_eq!(done.status, Some(0), "{done:?}");
    assert_eq!(json_document(&done)["fuel_limit"], 5_000_000);
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new("usage");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let input = scratch.file("input.json", &input_with_fields(json!({})));
    let too_many_mib = (usize::MAX / (1 << 20) + 1).to_string();
    let run = |extra: &[&'static str]| {
        let mut args = vec!["run", module.as_str(), "--input", input.as_str()];
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["evaluate", &module],
        vec!["run"],
        vec!["run", &module],
        vec!["run", "--input", &input],
        vec!["run", &module, "--input"],
        vec!["run", &module, &module, "--input", &input],
        run(&["--fuel", "lots"]),
        run(&["--fuel", "-1"]),
        run(&["--fuel"]),
        run(&["--timeout-ms", "1.5"]),
        run(&["--memory-mib", "four"]),
        {
            let mut args = run(&["--memory-mib"]);
            args.push(&too_many_mib);
            args
        },
        run(&["--verbose"]),
        vec!["validate"],
        vec!["validate", &module, &module],
        vec!["validate", &module, "--json"],
    ];
    for args in &cases {
        let done = rule_engine(args, b"");
        assert_eq!(done.status, Some(2), "{args:?}: {done:?}");
        assert_eq!(done.stdout, "", "{args:?}");
        assert!(!done.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn help_exits_0() {
    for flag in ["--help", "-h", "help"] {
        let done = rule_engine(&[flag], b"");
        assert_eq!(done.status, Some(0), "{flag}: {done:?}");
        assert!(
            done.stdout.contains("run") && done.stdout.contains("validate"),
            "{flag}: {done:?}"
        );
        assert_eq!(done.stderr, "", "{flag}");
    }
}

#[test]
fn unreadable_files_exit_2() {
    let scratch = Scratch::new("unreadable");
    let module = scratch.file("tier-c.wasm", &example_wasm("tier-c"));
    let input = scratch.file("input.json", &input_with_fields(json!({})));
    let missing = scratch.missing("missing");
    for args in [
        vec!["validate", &missing],
        vec!["run", &missing, "--input", &input],
        vec!["run", &module, "--input", &missing],
    ] {
        let done = rule_engine(&args, b"");
        assert_eq!(done.status, Some(2), "{args:?}: {done:?}");
        assert_eq!(done.stdout, "", "{args:?}");
        assert!(
            done.stderr
                .starts_with(&format!("rule-engine: cannot read {missing}: ")),
            "{args:?}: {done:?}"
        );
    }
}

#[test]
fn wat_modules_need_the_wat_feature() {
    let module = path_text(&hostile_path("exit_0_after_output"));
    let done = rule_engine(&["validate", &module], b"");
    if cfg!(feature = "wat") {
        assert_eq!(done.status, Some(0), "{done:?}");
    } else {
        assert_eq!(done.status, Some(2), "{done:?}");
        assert_eq!(
            done.stderr,
            format!("rule-engine: {module}: .wat support is off; rebuild with `--features wat`\n")
        );
    }
}
