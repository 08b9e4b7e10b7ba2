//! `rules`: run a rule module locally with the production engine and limits.
//!
//! ```text
//! rules run MODULE.wasm --input CUSTOMER.json [--fuel N] [--memory-mib N]
//!           [--timeout-ms N] [--json]
//! rules validate MODULE.wasm
//! ```
//!
//! The module goes through the production path: validate, precompile, load
//! the artifact, run. Exit status: 0 success, 1 the rule failed, 2 usage,
//! I/O or validation error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, EngineConfig, Limits, ModuleHash, RuleEngine, RunReport,
    SegmentChoice,
};
use serde_json::json;

const USAGE: &str = "usage:
  rules run MODULE --input FILE [--fuel N] [--memory-mib N] [--timeout-ms N] [--json]
  rules validate MODULE

MODULE is a .wasm file (or .wat when built with `--features wat`).
FILE is the ABI v1 input document (`-` for stdin).
Limits default to the production defaults; larger values raise the maxima
for this run only.";

struct RunArgs {
    module: String,
    input: String,
    limits: Limits,
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => parse_run_args(&args[1..]).and_then(|args| run(&args)),
        Some("validate") if args.len() == 2 => validate(&args[1]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.to_string()),
    };
    result.unwrap_or_else(|message| {
        eprintln!("rules: {message}");
        ExitCode::from(2)
    })
}

fn parse_run_args(args: &[String]) -> Result<RunArgs, String> {
    let mut module = None;
    let mut input = None;
    let mut limits = Limits::default();
    let mut json = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--input" => input = Some(value("--input")?),
            "--fuel" => limits.fuel = number(&value("--fuel")?, "--fuel")?,
            "--memory-mib" => {
                let mib: usize = number(&value("--memory-mib")?, "--memory-mib")?;
                limits.memory_bytes = mib
                    .checked_mul(1 << 20)
                    .ok_or("--memory-mib is too large")?;
            }
            "--timeout-ms" => {
                limits.timeout =
                    Duration::from_millis(number(&value("--timeout-ms")?, "--timeout-ms")?)
            }
            "--json" => json = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            path if module.is_none() => module = Some(path.to_string()),
            extra => return Err(format!("unexpected argument {extra}\n{USAGE}")),
        }
    }
    Ok(RunArgs {
        module: module.ok_or(USAGE)?,
        input: input.ok_or("--input is required")?,
        limits,
        json,
    })
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} expects a number, got `{text}`"))
}

fn read_module(path: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    if path.ends_with(".wat") {
        return wat_to_wasm(&bytes, path);
    }
    Ok(bytes)
}

#[cfg(feature = "wat")]
fn wat_to_wasm(text: &[u8], path: &str) -> Result<Vec<u8>, String> {
    wat::parse_bytes(text)
        .map(|wasm| wasm.into_owned())
        .map_err(|error| format!("{path}: {error}"))
}

#[cfg(not(feature = "wat"))]
fn wat_to_wasm(_: &[u8], path: &str) -> Result<Vec<u8>, String> {
    Err(format!(
        "{path}: .wat support is off; rebuild with `--features wat`"
    ))
}

fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)
            .map_err(|error| format!("cannot read stdin: {error}"))?;
        return Ok(input);
    }
    std::fs::read(path).map_err(|error| format!("cannot read {path}: {error}"))
}

fn validate(path: &str) -> Result<ExitCode, String> {
    let wasm = read_module(path)?;
    let engine = RuleEngine::new(EngineConfig::default()).map_err(|error| error.to_string())?;
    engine
        .validate(&wasm, DEFAULT_MAX_MODULE_BYTES)
        .map_err(|error| format!("{path}: {error}"))?;
    println!(
        "{path}: valid rule module (ABI v1), sha256 {}",
        ModuleHash::of(&wasm)
    );
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<ExitCode, String> {
    let wasm = read_module(&args.module)?;
    let input = read_input(&args.input)?;
    let defaults = Limits::default();
    let maxima = Limits {
        fuel: args.limits.fuel.max(defaults.fuel),
        timeout: args.limits.timeout.max(defaults.timeout),
        memory_bytes: args.limits.memory_bytes.max(defaults.memory_bytes),
        ..defaults
    };
    let engine = RuleEngine::new(EngineConfig {
        maxima,
        max_concurrent_runs: 1,
        cache_capacity: 1,
    })
    .map_err(|error| error.to_string())?;

    engine
        .validate(&wasm, DEFAULT_MAX_MODULE_BYTES)
        .map_err(|error| format!("{}: {error}", args.module))?;
    let compile_started = Instant::now();
    let artifact = engine
        .precompile(&wasm)
        .map_err(|error| error.to_string())?;
    let compile_time = compile_started.elapsed();
    let load_started = Instant::now();
    // SAFETY: the artifact was produced by `precompile` just above.
    let rule = unsafe { engine.load_artifact(ModuleHash::of(&wasm), &artifact) }
        .map_err(|error| error.to_string())?;
    let load_time = load_started.elapsed();

    let report = engine.run(&rule, &input, &args.limits);
    if args.json {
        print_json(&report, &args.limits, compile_time, load_time);
    } else {
        print_human(&report, &args.limits, compile_time, load_time);
    }
    Ok(if report.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_human(report: &RunReport, limits: &Limits, compile: Duration, load: Duration) {
    match &report.outcome {
        Ok(output) => {
            println!("output:  {}", output.to_json());
            let segment = match &output.segment {
                SegmentChoice::Unchanged => "unchanged".to_string(),
                SegmentChoice::Clear => "cleared".to_string(),
                SegmentChoice::Set(name) => format!("set to `{name}`"),
            };
            println!("segment: {segment}");
        }
        Err(error) => println!("error:   {error} [{}]", error.code()),
    }
    println!(
        "fuel:    {} of {} ({:.1}%)",
        report.fuel_used,
        limits.fuel,
        percent(report.fuel_used as f64, limits.fuel as f64)
    );
    println!(
        "time:    {:.3} ms (deadline {} ms); precompile {:.1} ms, load {:.3} ms",
        millis(report.duration),
        limits.timeout.as_millis(),
        millis(compile),
        millis(load)
    );
    println!(
        "memory:  {:.2} MiB of {:.2} MiB",
        mib(report.memory_bytes),
        mib(limits.memory_bytes)
    );
    if report.logs.is_empty() {
        println!("logs:    (none)");
    } else {
        println!("logs:");
        for line in report.logs.lines() {
            println!("  | {line}");
        }
    }
}

fn print_json(report: &RunReport, limits: &Limits, compile: Duration, load: Duration) {
    let (output, error) = match &report.outcome {
        Ok(output) => (output.to_json(), serde_json::Value::Null),
        Err(error) => (
            serde_json::Value::Null,
            json!({"code": error.code(), "message": error.to_string()}),
        ),
    };
    let document = json!({
        "ok": report.outcome.is_ok(),
        "output": output,
        "error": error,
        "logs": report.logs,
        "fuel_used": report.fuel_used,
        "fuel_limit": limits.fuel,
        "duration_us": report.duration.as_micros() as u64,
        "memory_bytes": report.memory_bytes,
        "memory_limit_bytes": limits.memory_bytes,
        "precompile_us": compile.as_micros() as u64,
        "load_us": load.as_micros() as u64,
    });
    println!("{document:#}");
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        0.0
    } else {
        100.0 * part / whole
    }
}
