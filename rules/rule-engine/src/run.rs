//! One evaluation: a fresh sandbox, the rule's `_start`, and a classified result.

use std::fmt::Write as _;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use rule_abi::RuleOutput;
use wasmtime::error::Context as _;
use wasmtime::{
    Extern, InstancePre, Memory, Module, ModuleExport, ResourceLimiter, Store, Trap, WasmBacktrace,
};

use crate::error::RunError;
use crate::limits::Limits;
use crate::pipe::{CapturePipe, Overflow};
use crate::wasi::{Clocks, Exit, WasiCtx};

/// How often the epoch ticker advances: the precision of the epoch backstop.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Fuel a rule burns between two checks of its deadline.
///
/// Every this many units wasm calls wasmtime's `out_of_gas`, which saves the fuel count
/// to the store and suspends the run's fiber; [`drive`] then compares the clock with the
/// deadline. That is what makes `fuel_used` exact on a timeout: the epoch trap's path does
/// not save the count that compiled code keeps in a register.
///
/// 100,000 units: the example rules burn fewer per evaluation (docs/rule-performance.md, "Where a
/// run's work goes"), so an ordinary evaluation never yields; a long run yields at most
/// 1,000 times under the 100,000,000 maximum. The yield's own cost and the time an
/// interval takes were estimated, not measured (a libcall and two fiber switches against
/// some tens of microseconds of guest code); the engine bench's A/B of the change is in
/// docs/rule-performance.md.
pub(crate) const FUEL_YIELD_INTERVAL: u64 = 100_000;

/// How long after the deadline the epoch trap fires: the backstop, should a run ever go
/// that long without a fuel yield.
///
/// No guest code is known to: every instruction costs fuel, bulk memory and table
/// operations a unit per byte or element (wasmtime's default costs;
/// `bulk_memory_costs_fuel_per_byte` pins it), and the WASI calls are bounded. The trap
/// costs a run one `set_epoch_deadline`, so it stays, for a thread descheduled across
/// the margin or a future change in what wasmtime charges. A run it stops reports a
/// lower bound for `fuel_used`: the count saved at the last yield, call or return.
const EPOCH_BACKSTOP_MARGIN: Duration = Duration::from_millis(10);

/// `argv` of every rule: `argv[0]` only.
const ARGS: &[&str] = &["rule"];

/// Largest single `random_get`; rules have no use for more.
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// Table growth ceiling; Rust and C modules use a few hundred entries at most.
const MAX_TABLE_ELEMENTS: usize = 10_000;

/// What happened during one evaluation, successful or not.
#[derive(Debug)]
pub struct RunReport {
    /// The parsed output, or why there is none.
    pub outcome: Result<RuleOutput, RunError>,
    /// The rule's stderr (lossy UTF-8), cut at the log limit with a marker, plus
    /// a wasm backtrace when the rule trapped.
    pub logs: String,
    /// Fuel consumed, including instantiation. Exact, also for a timeout (the run is
    /// stopped at a fuel yield); a lower bound when the epoch backstop stopped it
    /// (rules/README.md, "Limits").
    pub fuel_used: u64,
    /// Wall time of instantiation plus `_start`.
    pub duration: Duration,
    /// Peak linear-memory size in bytes.
    pub memory_bytes: usize,
}

/// The exports a run uses, looked up by name once per loaded module: a run then
/// finds them by index instead of hashing the name again.
#[derive(Clone, Copy)]
pub(crate) struct Exports {
    /// `_start`; absent only in modules that never passed validation.
    start: Option<ModuleExport>,
    /// `memory`, whatever its kind: the host calls check that it is a memory.
    memory: Option<ModuleExport>,
}

impl Exports {
    pub(crate) fn of(module: &Module) -> Self {
        Exports {
            start: module.get_export_index("_start"),
            memory: module.get_export_index("memory"),
        }
    }
}

/// Per-store state: the WASI context and the memory accounting.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    /// The instance's `memory` export, found by the run's first host call so that
    /// the later ones skip the lookup (`wasi::host`).
    pub(crate) memory: Option<Memory>,
    /// Where that first host call finds it.
    pub(crate) memory_export: Option<ModuleExport>,
    limiter: RunLimiter,
}

impl HostState {
    /// A state with empty stdio; only used to inspect the linker.
    pub(crate) fn inert() -> Self {
        HostState {
            wasi: sandbox(
                &[],
                CapturePipe::new(0, Overflow::Close),
                CapturePipe::new(0, Overflow::Drop),
            ),
            memory: None,
            memory_export: None,
            limiter: RunLimiter::new(0),
        }
    }
}

/// Raised (as a trap) when a rule asks for more memory than its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: {requested} > {limit} bytes")]
struct MemoryLimitExceeded {
    requested: usize,
    limit: usize,
}

/// Enforces the per-run memory limit (the pool's slot size is the tenant
/// maximum; a rule's own limit may be lower) and records the peak.
struct RunLimiter {
    memory_limit: usize,
    peak_memory: usize,
}

impl RunLimiter {
    fn new(memory_limit: usize) -> Self {
        RunLimiter {
            memory_limit,
            peak_memory: 0,
        }
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            // An error, not `Ok(false)`: the rule stops with a clear reason
            // instead of `memory.grow` returning -1 and the guest aborting.
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                requested: desired,
                limit: self.memory_limit,
            }));
        }
        if maximum.is_none_or(|maximum| desired <= maximum) {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }
}

/// The table `random_get` draws from (`wasi::WasiCtx` says how): fixed, so
/// evaluations are reproducible, and static, so a run does not build it. Rules
/// must not use randomness for anything secret.
static RANDOM_BYTES: [u8; 256] = fixed_random_bytes();

const fn fixed_random_bytes() -> [u8; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < table.len() {
        table[i] = (i as u8).wrapping_mul(167).wrapping_add(13);
        i += 1;
    }
    table
}

/// The rule's whole world: stdin, two capped pipes, `argv[0]`, frozen clocks,
/// fixed randomness. No environment, no preopened directories, no sockets
/// (`wasi.rs` has no code for them at all).
fn sandbox(input: &[u8], stdout: CapturePipe, stderr: CapturePipe) -> WasiCtx {
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let clocks = Clocks {
        // The instant the run started, frozen, so one evaluation is internally
        // consistent and rules cannot time anything.
        wall_now: started,
        wall_resolution: Duration::from_secs(1),
        // Always zero.
        monotonic_now: 0,
        monotonic_resolution: 1_000_000_000,
    };
    WasiCtx::new(
        input.to_vec(),
        stdout,
        stderr,
        ARGS,
        clocks,
        &RANDOM_BYTES,
        MAX_RANDOM_BYTES,
    )
}

/// Runs `_start` once under `limits` (already clamped to the maxima).
pub(crate) fn run(
    pre: &InstancePre<HostState>,
    exports: Exports,
    input: &[u8],
    limits: &Limits,
) -> RunReport {
    let started = Instant::now();
    if input.len() > limits.input_bytes {
        return RunReport {
            outcome: Err(RunError::InputTooLarge {
                size: input.len(),
                limit: limits.input_bytes,
            }),
            logs: String::new(),
            fuel_used: 0,
            duration: started.elapsed(),
            memory_bytes: 0,
        };
    }

    let stdout = CapturePipe::new(limits.output_bytes, Overflow::Close);
    let stderr = CapturePipe::new(limits.log_bytes, Overflow::Drop);
    let state = HostState {
        wasi: sandbox(input, stdout, stderr),
        memory: None,
        memory_export: exports.memory,
        limiter: RunLimiter::new(limits.memory_bytes),
    };
    let mut store = Store::new(pre.module().engine(), state);
    store.limiter(|state| &mut state.limiter);
    // The deadline proper, checked at fuel yields; `None` when too far to represent.
    let deadline = started.checked_add(limits.timeout);
    // The backstop, a little later (`EPOCH_BACKSTOP_MARGIN`).
    store.epoch_deadline_trap();
    store.set_epoch_deadline(deadline_ticks(
        limits.timeout.saturating_add(EPOCH_BACKSTOP_MARGIN),
    ));
    let fuel = store
        .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
        .and_then(|()| store.set_fuel(limits.fuel));
    let outcome = match fuel {
        Ok(()) => execute(&mut store, pre, exports, deadline),
        Err(error) => Err(Failure::Host(error)),
    };
    let duration = started.elapsed();
    // Exact after a yield or a return; after the epoch trap, the count saved last.
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let mut state = store.into_data();
    let memory_bytes = state.limiter.peak_memory;
    let (stdout, stdout_overflowed) = state.wasi.stdout.take();
    let (stderr, stderr_overflowed) = state.wasi.stderr.take();
    // Logs are usually valid UTF-8: then the buffer becomes the string without a copy.
    let mut logs = String::from_utf8(stderr)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    if stderr_overflowed {
        start_line(&mut logs);
        let _ = write!(logs, "[log truncated at {} bytes]", limits.log_bytes);
    }

    let outcome = if stdout_overflowed {
        // Checked first: a guest that hits the limit usually fails next.
        Err(RunError::OutputTooLarge {
            limit: limits.output_bytes,
        })
    } else {
        match outcome {
            Ok(()) => RuleOutput::parse(&stdout).map_err(RunError::from),
            Err(failure) => Err(classify(failure, limits, &mut logs)),
        }
    };
    RunReport {
        outcome,
        logs,
        fuel_used,
        duration,
        memory_bytes,
    }
}

/// Where an error came from: the host setting up, or the guest running.
enum Failure {
    Host(wasmtime::Error),
    Guest(wasmtime::Error),
    /// Past the deadline at a fuel yield: the run was dropped there.
    Deadline,
}

/// Runs [`evaluate`] on this thread until it ends or the deadline stops it.
fn execute(
    store: &mut Store<HostState>,
    pre: &InstancePre<HostState>,
    exports: Exports,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    drive(evaluate(store, pre, exports), deadline).unwrap_or(Err(Failure::Deadline))
}

/// Instantiates the rule and calls `_start`, with wasmtime's async API: the rule runs on
/// a fiber, as fuel yields need.
async fn evaluate(
    store: &mut Store<HostState>,
    pre: &InstancePre<HostState>,
    exports: Exports,
) -> Result<(), Failure> {
    let instance = pre.instantiate_async(&mut *store).await.map_err(|error| {
        // Traps and limits hit while running start functions or sizing memory
        // are the rule's doing; anything else (e.g. a full pool) is ours.
        if error.downcast_ref::<Trap>().is_some()
            || error.downcast_ref::<MemoryLimitExceeded>().is_some()
        {
            Failure::Guest(error)
        } else {
            Failure::Host(error)
        }
    })?;
    // What `get_typed_func(store, "_start")` does, without the lookup by name.
    let start = exports
        .start
        .and_then(|start| instance.get_module_export(&mut *store, &start))
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmtime::format_err!("failed to find function export `_start`"))
        .and_then(|start| {
            start
                .typed::<(), ()>(&*store)
                .context("failed to convert function `_start` to given type")
        })
        .map_err(Failure::Host)?;
    match start.call_async(&mut *store, ()).await {
        Ok(()) => Ok(()),
        // `proc_exit(0)` unwinds like an error but is a normal exit.
        Err(error) if error.downcast_ref::<Exit>().is_some_and(|exit| exit.0 == 0) => Ok(()),
        Err(error) => Err(Failure::Guest(error)),
    }
}

/// Polls `evaluation` on the calling thread until it completes, or returns `None` once
/// `deadline` has passed at one of its fuel yields (every [`FUEL_YIELD_INTERVAL`]).
///
/// Nothing wakes the future: it is pending only at a fuel yield, ready to go on at once,
/// so a plain loop with a no-op waker is the whole executor. Returning drops the future,
/// and wasmtime then resumes the suspended fiber with an error that unwinds the rule
/// without running any more of its code; the fuel saved at the yield stays in the store.
fn drive<F: Future>(evaluation: F, deadline: Option<Instant>) -> Option<F::Output> {
    let mut evaluation = pin!(evaluation);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = evaluation.as_mut().poll(&mut context) {
            return Some(output);
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
    }
}

fn classify(failure: Failure, limits: &Limits, logs: &mut String) -> RunError {
    let error = match failure {
        Failure::Host(error) => return RunError::Host(format!("{error:#}")),
        Failure::Deadline => {
            return RunError::Timeout {
                limit: limits.timeout,
            };
        }
        Failure::Guest(error) => error,
    };
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return RunError::Exit(exit.0);
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return RunError::MemoryLimit {
            requested: exceeded.requested,
            limit: exceeded.limit,
        };
    }
    if let Some(backtrace) = error.downcast_ref::<WasmBacktrace>()
        && !backtrace.frames().is_empty()
    {
        start_line(logs);
        let _ = write!(logs, "[wasm backtrace]\n{backtrace}");
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunError::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) => RunError::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => RunError::StackOverflow,
        Some(trap) => {
            let message = trap.to_string();
            let message = message.strip_prefix("wasm trap: ").unwrap_or(&message);
            RunError::Trap(message.to_string())
        }
        // Host functions failing fatally, e.g. `proc_exit(200)`.
        None => RunError::Trap(error.root_cause().to_string()),
    }
}

/// Makes the next write to `logs` start on a new line.
fn start_line(logs: &mut String) {
    if !logs.is_empty() && !logs.ends_with('\n') {
        logs.push('\n');
    }
}

/// Epoch ticks until `timeout` from now: rounded up, plus one because the current
/// tick is already partly over, so the trap fires no earlier than `timeout`.
fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) + 1;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}
