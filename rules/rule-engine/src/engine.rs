//! The long-lived engine: configuration, compilation, artifact loading, cache.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hasher;
use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, ValType,
};

use crate::limits::Limits;
use crate::run::{self, EPOCH_TICK, Exports, HostState, RunReport};
use crate::validate::{self, HostFunctions, Signature, ValidationError};
use crate::wasi;

/// Size of the wasm call stack; deep recursion traps with `StackOverflow`.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Size of the fiber stack a run executes on (`run::drive`): the wasm stack plus 1.5 MiB
/// for the host frames below and above it (instantiation, host calls, trap handling).
/// wasmtime's default. Address space only: a pool slot's pages become resident as runs
/// touch them and then stay (no zeroing, see [`RuleEngine::new`]).
const FIBER_STACK_SIZE: usize = 2 << 20;

/// How the engine is set up. Changing anything here except `cache_capacity`
/// may change [`RuleEngine::compatibility_key`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tenant-wide maxima; per-rule limits are clamped to them, and the pooling
    /// allocator's memory slots are sized by `maxima.memory_bytes`.
    pub maxima: Limits,
    /// How many rules may run at the same time (pooling allocator slots).
    pub max_concurrent_runs: u32,
    /// How many loaded modules to keep ready to instantiate.
    pub cache_capacity: usize,
    /// How a memory slot is made fresh for the next run; [`MemoryReset::detect`] by
    /// default.
    pub memory_reset: MemoryReset,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            maxima: Limits::default(),
            max_concurrent_runs: 64,
            cache_capacity: 128,
            memory_reset: MemoryReset::detect(),
        }
    }
}

/// How the pooling allocator returns a run's linear memory to its initial state, so
/// that the next run in the slot sees a fresh instance.
///
/// Most of an evaluation's cost was page faults: by default wasmtime gives every page
/// back with `madvise` after a run, so the next run faults each page in again. Keeping
/// pages resident and resetting them in place avoids that; how well depends on the
/// kernel (`rules/README.md`, "Memory reset").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// Linux 6.7+ (`PAGEMAP_SCAN`): only the pages the run wrote are reset, in place,
    /// up to `keep_resident` bytes; pages beyond that are given back.
    DirtyPages { keep_resident: usize },
    /// Older kernels: the lowest `keep_resident` bytes of the memory are reset with
    /// `memset` whether the run wrote them or not, the rest given back with `madvise`.
    LowBytes { keep_resident: usize },
}

impl MemoryReset {
    /// Bytes kept resident per memory slot with `PAGEMAP_SCAN`: the example rules
    /// write well under this, so a run faults no page in.
    pub const DIRTY_PAGES_KEEP_RESIDENT: usize = 4 << 20;
    /// Bytes reset with `memset` without `PAGEMAP_SCAN`: the fastest size measured for
    /// the example rules (`rules/README.md` "Memory reset").
    pub const LOW_BYTES_KEEP_RESIDENT: usize = 1 << 20;

    /// The best reset this kernel supports: `DirtyPages` when the `PAGEMAP_SCAN`
    /// ioctl works, else `LowBytes`.
    pub fn detect() -> Self {
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            MemoryReset::DirtyPages {
                keep_resident: Self::DIRTY_PAGES_KEEP_RESIDENT,
            }
        } else {
            MemoryReset::LowBytes {
                keep_resident: Self::LOW_BYTES_KEEP_RESIDENT,
            }
        }
    }

    fn configure(self, pool: &mut PoolingAllocationConfig) {
        let (pagemap_scan, keep_resident) = match self {
            MemoryReset::DirtyPages { keep_resident } => (Enabled::Yes, keep_resident),
            MemoryReset::LowBytes { keep_resident } => (Enabled::No, keep_resident),
        };
        pool.pagemap_scan(pagemap_scan)
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident);
    }
}

impl fmt::Display for MemoryReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryReset::DirtyPages { keep_resident } => write!(
                f,
                "PAGEMAP_SCAN: reset the pages a run wrote, up to {} KiB kept resident per slot",
                keep_resident >> 10
            ),
            MemoryReset::LowBytes { keep_resident } => write!(
                f,
                "without PAGEMAP_SCAN: memset the lowest {} KiB, madvise the rest",
                keep_resident >> 10
            ),
        }
    }
}

/// Errors of the engine itself: setup, compilation, artifact loading.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("could not compile the module: {0}")]
    Compile(String),
    /// Also returned for artifacts made by an incompatible engine: recompile
    /// from the stored module.
    #[error("could not load the compiled artifact: {0}")]
    Artifact(String),
    #[error("module does not link against the rule ABI: {0}")]
    Link(String),
}

/// SHA-256 of a rule's `.wasm` bytes: names the module, its artifacts and its
/// cache entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    /// Hashes a module's bytes.
    pub fn of(wasm: &[u8]) -> Self {
        ModuleHash(Sha256::digest(wasm).into())
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({self})")
    }
}

/// A module hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 in hex")]
pub struct InvalidHash(pub String);

impl FromStr for ModuleHash {
    type Err = InvalidHash;

    /// Parses 64 hex digits.
    fn from_str(hex: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidHash(hex.to_owned());
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(ModuleHash(bytes))
    }
}

/// A rule module loaded into the engine (deserialised and linked against WASI,
/// pre-instantiated), ready to run. Not a tenant's rule configuration: one loaded
/// module serves every rule version with the same module bytes. Cheap to clone.
#[derive(Clone)]
pub struct LoadedModule {
    hash: ModuleHash,
    pre: InstancePre<HostState>,
    exports: Exports,
}

impl LoadedModule {
    /// The module's SHA-256.
    pub fn hash(&self) -> ModuleHash {
        self.hash
    }
}

impl fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModule")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Runs tenant rules. Create one per process and share it (`Send + Sync`).
///
/// Runs are synchronous CPU work (up to the deadline): from async code call
/// [`RuleEngine::run`] inside `tokio::task::block_in_place` on a multi-thread
/// runtime (no thread hop; `evaluation::Runner` says why that is safe) or
/// `spawn_blocking` on a current-thread one, never directly on a runtime worker.
pub struct RuleEngine {
    engine: Engine,
    linker: Linker<HostState>,
    host_functions: HostFunctions,
    maxima: Limits,
    memory_reset: MemoryReset,
    compatibility_key: String,
    cache: Mutex<ModuleCache>,
    _ticker: EpochTicker,
}

impl RuleEngine {
    /// Builds the engine: Cranelift, fuel, epoch interruption, a pooling
    /// allocator sized from `config` (with one fiber stack per concurrent run), the
    /// WASI preview1 linker, and a background thread that drives the epoch backstop.
    ///
    /// Fiber stacks are reused without zeroing (`async_stack_zeroing(false)`, wasmtime's
    /// default): zeroing would `memset` the part kept resident and `madvise` the rest on
    /// every run, microseconds per evaluation plus page faults on the next. Leaving them
    /// keeps what runs without fibers always had: wasm runs on a stack that earlier runs'
    /// host and guest frames used (before, the calling thread's own stack), and cannot
    /// read it: the stack is outside linear memory, and compiled code writes every stack
    /// slot before reading it.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let setup = |error: wasmtime::Error| EngineError::Config(format!("{error:#}"));
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(config.max_concurrent_runs)
            .total_memories(config.max_concurrent_runs)
            .total_tables(config.max_concurrent_runs)
            .total_stacks(config.max_concurrent_runs)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(config.maxima.memory_bytes)
            .table_elements(10_000);
        config.memory_reset.configure(&mut pool);
        let mut wasm_config = Config::new();
        wasm_config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(FIBER_STACK_SIZE)
            .async_stack_zeroing(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm_config).map_err(setup)?;

        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(setup)?;
        let host_functions = host_functions(&engine, &linker);
        let compatibility_key = compatibility_key(&engine);
        let ticker = EpochTicker::start(engine.clone()).map_err(|error| {
            EngineError::Config(format!("cannot start the epoch thread: {error}"))
        })?;
        Ok(RuleEngine {
            engine,
            linker,
            host_functions,
            maxima: config.maxima,
            memory_reset: config.memory_reset,
            compatibility_key,
            cache: Mutex::new(ModuleCache::new(config.cache_capacity)),
            _ticker: ticker,
        })
    }

    /// The tenant-wide maxima every run is clamped to.
    pub fn maxima(&self) -> &Limits {
        &self.maxima
    }

    /// How memory slots are reset between runs (chosen at start; worth one log line).
    pub fn memory_reset(&self) -> MemoryReset {
        self.memory_reset
    }

    /// Upload-time check: size, well-formed wasm, imports only from
    /// `wasi_snapshot_preview1` with the right types (minus a few forbidden
    /// ones), initial memory within the maximum, and exports `_start` and
    /// `memory`. Does not compile.
    pub fn validate(&self, wasm: &[u8], max_size: usize) -> Result<(), ValidationError> {
        if wasm.len() > max_size {
            return Err(ValidationError::TooLarge {
                size: wasm.len(),
                limit: max_size,
            });
        }
        Module::validate(&self.engine, wasm)
            .map_err(|error| ValidationError::Invalid(format!("{error:#}")))?;
        validate::check_abi(wasm, &self.host_functions, self.maxima.memory_bytes)
    }

    /// Compiles a validated module with Cranelift into an artifact for
    /// [`RuleEngine::load_artifact`]. Slow (tens of ms): do it once, at upload.
    pub fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, EngineError> {
        let artifact = self
            .engine
            .precompile_module(wasm)
            .map_err(|error| EngineError::Compile(format!("{error:#}")))?;
        // A module can compile and still not fit the pooling allocator (a table over
        // its element limit, a second table or memory); wasmtime checks that only when
        // the artifact is loaded. Load it once here, so such a module is refused at
        // upload instead of failing every evaluation (a 500 on `POST /rules/{name}/test`).
        // SAFETY: `artifact` is the output of `precompile_module` just above.
        unsafe { Module::deserialize(&self.engine, &artifact) }
            .map_err(|error| EngineError::Compile(format!("{error:#}")))?;
        Ok(artifact)
    }

    /// Identifies what artifacts this engine can load (wasmtime version,
    /// configuration, CPU features). Store artifacts keyed by
    /// (module SHA-256, compatibility key) and recompile when it changes.
    pub fn compatibility_key(&self) -> &str {
        &self.compatibility_key
    }

    /// A module already loaded in this process, if any: lets callers skip
    /// fetching the artifact.
    pub fn cached(&self, hash: &ModuleHash) -> Option<LoadedModule> {
        self.cache().get(hash)
    }

    /// Loads an artifact made by [`RuleEngine::precompile`] (no compilation
    /// happens here) and caches the result under `hash`. Returns the cached
    /// module without reading `artifact` when `hash` is already loaded.
    ///
    /// # Safety
    ///
    /// Artifacts are native code: loading crafted bytes is undefined
    /// behaviour. `artifact` must be the unmodified output of `precompile`
    /// for the module with SHA-256 `hash`, stored where tenants cannot write
    /// (our own table or bucket). Never pass bytes received from a tenant.
    /// Wasmtime still checks the header and refuses artifacts from an
    /// incompatible engine with [`EngineError::Artifact`].
    pub unsafe fn load_artifact(
        &self,
        hash: ModuleHash,
        artifact: &[u8],
    ) -> Result<LoadedModule, EngineError> {
        if let Some(loaded) = self.cached(&hash) {
            return Ok(loaded);
        }
        // SAFETY: the caller guarantees `artifact` came from `precompile`.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }
            .map_err(|error| EngineError::Artifact(format!("{error:#}")))?;
        self.prepare(hash, &module)
    }

    /// Same as [`RuleEngine::load_artifact`], reading the artifact from a file
    /// (memory-mapped, so large artifacts are not copied).
    ///
    /// # Safety
    ///
    /// As for `load_artifact`; additionally the file must not change while
    /// the module is loaded.
    pub unsafe fn load_artifact_file(
        &self,
        hash: ModuleHash,
        path: &Path,
    ) -> Result<LoadedModule, EngineError> {
        if let Some(loaded) = self.cached(&hash) {
            return Ok(loaded);
        }
        // SAFETY: the caller guarantees the file holds a `precompile` output.
        let module = unsafe { Module::deserialize_file(&self.engine, path) }
            .map_err(|error| EngineError::Artifact(format!("{error:#}")))?;
        self.prepare(hash, &module)
    }

    /// Runs a loaded module on one input document. `limits` are clamped to the
    /// engine's maxima. Never panics on guest behaviour; every failure is in
    /// the report's `outcome`. The rule executes on a fiber stack from the pool,
    /// driven from the calling thread, which this call blocks until the run ends.
    pub fn run(&self, module: &LoadedModule, input: &[u8], limits: &Limits) -> RunReport {
        run::run(
            &module.pre,
            module.exports,
            input,
            &limits.clamp_to(&self.maxima),
        )
    }

    fn prepare(&self, hash: ModuleHash, module: &Module) -> Result<LoadedModule, EngineError> {
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|error| EngineError::Link(format!("{error:#}")))?;
        let loaded = LoadedModule {
            hash,
            pre,
            exports: Exports::of(module),
        };
        self.cache().insert(loaded.clone());
        Ok(loaded)
    }

    fn cache(&self) -> MutexGuard<'_, ModuleCache> {
        // The cache is consistent after any panic: entries are inserted whole.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every function the linker provides, with its signature.
fn host_functions(engine: &Engine, linker: &Linker<HostState>) -> HostFunctions {
    let mut store = Store::new(engine, HostState::inert());
    let items: Vec<_> = linker
        .iter(&mut store)
        .map(|(module, name, item)| (module.to_string(), name.to_string(), item))
        .collect();
    items
        .into_iter()
        .filter(|(module, _, _)| module == validate::WASI_MODULE)
        .filter_map(|(_, name, item)| match item {
            Extern::Func(func) => {
                let ty = func.ty(&store);
                let signature = Signature::new(
                    ty.params().map(|ty| value_type_name(&ty)),
                    ty.results().map(|ty| value_type_name(&ty)),
                );
                Some((name, signature))
            }
            _ => None,
        })
        .collect()
}

fn value_type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(_) => "ref",
    }
}

/// A stable string for the engine's precompile compatibility hash: the
/// `Hash` is fed into SHA-256 rather than a process-seeded hasher.
fn compatibility_key(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0 // unused: the digest is read directly
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let digest: [u8; 32] = hasher.0.finalize().into();
    format!("wasmtime-{}", ModuleHash(digest))
}

/// A small least-recently-used map of loaded modules.
struct ModuleCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<ModuleHash, (LoadedModule, u64)>,
}

impl ModuleCache {
    fn new(capacity: usize) -> Self {
        ModuleCache {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, hash: &ModuleHash) -> Option<LoadedModule> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(hash).map(|(loaded, used)| {
            *used = clock;
            loaded.clone()
        })
    }

    fn insert(&mut self, loaded: LoadedModule) {
        self.clock += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&loaded.hash) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(loaded.hash, (loaded, self.clock));
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so deadlines fire.
/// Stops when dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rule-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take()); // disconnects the channel: the loop ends
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_hash_round_trips_through_hex() {
        let hash = ModuleHash::of(b"rule");
        let parsed: ModuleHash = hash.to_string().parse().unwrap();
        assert_eq!(parsed, hash);
        assert!("zz".parse::<ModuleHash>().is_err());
        assert!("é".repeat(32).parse::<ModuleHash>().is_err());
    }

    #[test]
    fn host_functions_are_the_preview1_set() {
        let engine = RuleEngine::new(EngineConfig {
            max_concurrent_runs: 2,
            ..EngineConfig::default()
        })
        .unwrap();
        let functions = &engine.host_functions;
        assert_eq!(functions.len(), 46, "{:?}", functions.keys());
        assert_eq!(
            functions["fd_write"].to_string(),
            "(i32, i32, i32, i32) -> i32"
        );
        assert_eq!(functions["proc_exit"].to_string(), "(i32) -> ()");
        // Every function with its preview1 signature (`wasi_snapshot_preview1.witx`):
        // the linker is ours now, so the set is pinned here.
        let (p, i, l) = ("wasi_snapshot_preview1", "i32", "i64");
        let preview1: [(&str, &[&str]); 46] = [
            ("args_get", &[i, i]),
            ("args_sizes_get", &[i, i]),
            ("environ_get", &[i, i]),
            ("environ_sizes_get", &[i, i]),
            ("clock_res_get", &[i, i]),
            ("clock_time_get", &[i, l, i]),
            ("fd_advise", &[i, l, l, i]),
            ("fd_allocate", &[i, l, l]),
            ("fd_close", &[i]),
            ("fd_datasync", &[i]),
            ("fd_fdstat_get", &[i, i]),
            ("fd_fdstat_set_flags", &[i, i]),
            ("fd_fdstat_set_rights", &[i, l, l]),
            ("fd_filestat_get", &[i, i]),
            ("fd_filestat_set_size", &[i, l]),
            ("fd_filestat_set_times", &[i, l, l, i]),
            ("fd_pread", &[i, i, i, l, i]),
            ("fd_prestat_get", &[i, i]),
            ("fd_prestat_dir_name", &[i, i, i]),
            ("fd_pwrite", &[i, i, i, l, i]),
            ("fd_read", &[i, i, i, i]),
            ("fd_readdir", &[i, i, i, l, i]),
            ("fd_renumber", &[i, i]),
            ("fd_seek", &[i, l, i, i]),
            ("fd_sync", &[i]),
            ("fd_tell", &[i, i]),
            ("fd_write", &[i, i, i, i]),
            ("path_create_directory", &[i, i, i]),
            ("path_filestat_get", &[i, i, i, i, i]),
            ("path_filestat_set_times", &[i, i, i, i, l, l, i]),
            ("path_link", &[i, i, i, i, i, i, i]),
            ("path_open", &[i, i, i, i, i, l, l, i, i]),
            ("path_readlink", &[i, i, i, i, i, i]),
            ("path_remove_directory", &[i, i, i]),
            ("path_rename", &[i, i, i, i, i, i]),
            ("path_symlink", &[i, i, i, i, i]),
            ("path_unlink_file", &[i, i, i]),
            ("poll_oneoff", &[i, i, i, i]),
            ("proc_exit", &[i]),
            ("proc_raise", &[i]),
            ("sched_yield", &[]),
            ("random_get", &[i, i]),
            ("sock_accept", &[i, i, i]),
            ("sock_recv", &[i, i, i, i, i, i]),
            ("sock_send", &[i, i, i, i, i]),
            ("sock_shutdown", &[i, i]),
        ];
        for (name, params) in preview1 {
            let results: &[&str] = if name == "proc_exit" { &[] } else { &[i] };
            assert_eq!(
                functions.get(name),
                Some(&Signature::new(
                    params.iter().copied(),
                    results.iter().copied()
                )),
                "{p}::{name}"
            );
        }
        for name in validate::forbidden_imports() {
            assert!(
                functions.contains_key(name),
                "{name} is not a preview1 function"
            );
        }
    }

    #[test]
    fn engine_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RuleEngine>();
        assert_send_sync::<LoadedModule>();
    }

    #[test]
    fn compatibility_key_is_stable_within_a_configuration() {
        let config = EngineConfig {
            max_concurrent_runs: 2,
            ..EngineConfig::default()
        };
        let a = RuleEngine::new(config.clone()).unwrap();
        let b = RuleEngine::new(config).unwrap();
        assert_eq!(a.compatibility_key(), b.compatibility_key());
        assert!(a.compatibility_key().starts_with("wasmtime-"));
    }
}
