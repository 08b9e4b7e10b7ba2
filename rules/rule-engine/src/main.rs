//! `rule-engine`: run a rule module locally with the production engine and limits.
//!
//! ```text
//! rule-engine run MODULE --input FILE [--fuel N] [--memory-mib N] [--timeout-ms N] [--json]
//! rule-engine validate MODULE
//! ```
//!
//! MODULE is a `.wasm` file (or `.wat` when built with `--features wat`); FILE is the
//! ABI v1 input document (`-` for stdin). The module goes through the production path:
//! validate, precompile, load the artifact, run. Limits default to the production
//! defaults; larger values raise the maxima for that run only. Exit status: 0 success,
//! 1 the rule failed, 2 usage, I/O or validation error (clap exits with 2 on usage
//! errors itself).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, EngineConfig, EngineError, Limits, ModuleHash, RuleEngine, RunReport,
    SegmentChoice, ValidationError,
};
use serde_json::json;

/// The command line. Without clap's `usage` feature the usage lines are written here.
#[derive(Debug, Parser)]
#[command(
    name = "rule-engine",
    override_usage = "\
rule-engine run MODULE --input FILE [--fuel N] [--memory-mib N] [--timeout-ms N] [--json]
       rule-engine validate MODULE",
    about = "Runs a rule module locally with the production engine and limits.",
    after_help = "\
MODULE is a .wasm file (or .wat when built with `--features wat`).
Exit status: 0 success, 1 the rule failed, 2 usage, I/O or validation error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, precompile and load MODULE, then run it on one input
    #[command(
        override_usage = "rule-engine run MODULE --input FILE [--fuel N] [--memory-mib N] \
                          [--timeout-ms N] [--json]",
        after_help = "Limits default to the production defaults; larger values raise the \
                      maxima for this run only.",
        // A repeated flag takes its last value.
        args_override_self = true
    )]
    Run(RunArgs),
    /// Check MODULE as an upload does and print its SHA-256
    #[command(override_usage = "rule-engine validate MODULE")]
    Validate {
        /// the rule module
        #[arg(value_name = "MODULE")]
        module: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// the rule module
    #[arg(value_name = "MODULE")]
    module: PathBuf,
    /// the ABI v1 input document (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// fuel (about one unit per wasm instruction)
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_FUEL)]
    fuel: u64,
    /// largest linear memory, in MiB
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MEMORY_BYTES >> 20,
          value_parser = mebibytes)]
    memory_mib: usize,
    /// wall-clock deadline, in milliseconds
    #[arg(long, value_name = "N",
          default_value_t = Limits::DEFAULT_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
    /// print one JSON document instead of text
    #[arg(long)]
    json: bool,
}

impl RunArgs {
    /// The production defaults with the flags given.
    fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel,
            // Cannot overflow: `mebibytes` checked it.
            memory_bytes: self.memory_mib << 20,
            timeout: Duration::from_millis(self.timeout_ms),
            ..Limits::default()
        }
    }
}

/// A number of MiB whose size in bytes fits a `usize`.
fn mebibytes(text: &str) -> Result<usize, String> {
    let mib: usize = text
        .parse()
        .map_err(|error| format!("expects a number: {error}"))?;
    mib.checked_mul(1 << 20)
        .map(|_| mib)
        .ok_or_else(|| "is too large".to_owned())
}

/// Why a command could not do its job (exit status 2). A rule that fails is not an
/// error here: `run` reports it and exits with 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read stdin: {0}")]
    Stdin(#[source] std::io::Error),
    /// A `.wat` module that does not parse.
    #[cfg(feature = "wat")]
    #[error("{}: {source}", path.display())]
    Wat { path: PathBuf, source: wat::Error },
    /// A `.wat` module, in a build without the `wat` feature.
    #[cfg(not(feature = "wat"))]
    #[error("{}: .wat support is off; rebuild with `--features wat`", path.display())]
    WatOff { path: PathBuf },
    /// The module fails the upload checks.
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: ValidationError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with 2; `--help` exits with 0.
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Validate { module } => validate(module),
    };
    result.unwrap_or_else(|error| {
        eprintln!("rule-engine: {error}");
        ExitCode::from(2)
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_module(path: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = read_file(path)?;
    if path.as_os_str().as_encoded_bytes().ends_with(b".wat") {
        return wat_to_wasm(&bytes, path);
    }
    Ok(bytes)
}

#[cfg(feature = "wat")]
fn wat_to_wasm(text: &[u8], path: &Path) -> Result<Vec<u8>, CliError> {
    wat::parse_bytes(text)
        .map(|wasm| wasm.into_owned())
        .map_err(|source| CliError::Wat {
            path: path.to_owned(),
            source,
        })
}

#[cfg(not(feature = "wat"))]
fn wat_to_wasm(_: &[u8], path: &Path) -> Result<Vec<u8>, CliError> {
    Err(CliError::WatOff {
        path: path.to_owned(),
    })
}

fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(CliError::Stdin)?;
        return Ok(input);
    }
    read_file(path)
}

/// The upload checks, with the production module size limit.
fn check(engine: &RuleEngine, wasm: &[u8], path: &Path) -> Result<(), CliError> {
    engine
        .validate(wasm, DEFAULT_MAX_MODULE_BYTES)
        .map_err(|source| CliError::Invalid {
            path: path.to_owned(),
            source,
        })
}

fn validate(path: &Path) -> Result<ExitCode, CliError> {
    let wasm = read_module(path)?;
    let engine = RuleEngine::new(EngineConfig::default())?;
    check(&engine, &wasm, path)?;
    println!(
        "{}: valid rule module (ABI v1), sha256 {}",
        path.display(),
        ModuleHash::of(&wasm)
    );
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<ExitCode, CliError> {
    let wasm = read_module(&args.module)?;
    let input = read_input(&args.input)?;
    let limits = args.limits();
    let defaults = Limits::default();
    let maxima = Limits {
        fuel: limits.fuel.max(defaults.fuel),
        timeout: limits.timeout.max(defaults.timeout),
        memory_bytes: limits.memory_bytes.max(defaults.memory_bytes),
        ..defaults
    };
    let engine = RuleEngine::new(EngineConfig {
        maxima,
        max_concurrent_runs: 1,
        cache_capacity: 1,
        ..EngineConfig::default()
    })?;

    check(&engine, &wasm, &args.module)?;
    let compile_started = Instant::now();
    let artifact = engine.precompile(&wasm)?;
    let compile_time = compile_started.elapsed();
    let load_started = Instant::now();
    // SAFETY: the artifact was produced by `precompile` just above.
    let loaded = unsafe { engine.load_artifact(ModuleHash::of(&wasm), &artifact) }?;
    let load_time = load_started.elapsed();

    let report = engine.run(&loaded, &input, &limits);
    if args.json {
        print_json(&report, &limits, compile_time, load_time);
    } else {
        print_human(&report, &limits, compile_time, load_time);
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
