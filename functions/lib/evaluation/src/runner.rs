//! Running a stored rule version: the loaded module comes from the process cache, else
//! from its stored artifact (deserialized, never compiled), else — when the artifact is
//! missing or was made by another engine build — it is recompiled once from the stored
//! module and the new artifact is saved for the next container.

use std::sync::Arc;
use std::time::Duration;

use domain::rule::{MAX_FUEL, MAX_MEMORY_MIB, MAX_TIMEOUT_MS, Rule, RuleInput, RuleVersion};
use rule_engine::{EngineConfig, Limits, LoadedModule, ModuleHash, RuleEngine, RunReport};
use store::{Store, StoreError};

/// Why a rule could not be run at all (as opposed to the rule failing, which a
/// [`RunReport`] describes).
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// The engine with the product's tenant-wide maxima, and where modules are stored.
#[derive(Clone)]
pub struct Runner {
    engine: Arc<RuleEngine>,
    store: Store,
    /// Held while a module missing from the cache is loaded, so that the concurrent
    /// evaluations of a stream batch load (or recompile) each module once, not once each.
    loading: Arc<tokio::sync::Mutex<()>>,
}

/// The engine configuration of every function that runs rules: the tenant-wide maxima
/// a rule's own limits are clamped to. Public so tests run modules under exactly these.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        maxima: Limits {
            fuel: MAX_FUEL,
            memory_bytes: (MAX_MEMORY_MIB as usize) << 20,
            timeout: Duration::from_millis(u64::from(MAX_TIMEOUT_MS)),
            ..Limits::default()
        },
        ..EngineConfig::default()
    }
}

impl Runner {
    pub fn new(store: Store) -> Result<Self, rule_engine::EngineError> {
        let engine = RuleEngine::new(engine_config())?;
        // Once per process: which kernel path the pooling allocator took decides much of
        // an evaluation's cost (rules/README.md "Memory reset").
        tracing::info!(memory_reset = %engine.memory_reset(), "rule engine ready");
        Ok(Self {
            engine: Arc::new(engine),
            store,
            loading: Arc::default(),
        })
    }

    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where the compiled form of a module lives: one artifact per engine build.
    pub fn artifact_name(&self, hash: &ModuleHash) -> String {
        format!("{hash}@{}", self.engine.compatibility_key())
    }

    async fn loaded(
        &self,
        tenant: &str,
        version: &RuleVersion,
    ) -> Result<LoadedModule, EvaluationError> {
        let hash: ModuleHash = version
            .sha256
            .parse()
            .map_err(|err: rule_engine::InvalidHash| EvaluationError::Internal(err.to_string()))?;
        if let Some(loaded) = self.engine.cached(&hash) {
            return Ok(loaded);
        }
        // Only a cold container gets here; whoever waited finds the module cached.
        let _loading = self.loading.lock().await;
        if let Some(loaded) = self.engine.cached(&hash) {
            return Ok(loaded);
        }
        let name = self.artifact_name(&hash);
        if let Some(artifact) = self.store.get_blob(tenant, &name).await? {
            let engine = self.engine.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                // SAFETY: artifacts are written only by the rules API's upload and by the
                // fallback below, from our own `precompile`, into the table tenants cannot
                // write to directly.
                unsafe { engine.load_artifact(hash, &artifact) }
            })
            .await
            .map_err(|err| EvaluationError::Internal(format!("load task: {err}")))?;
            match loaded {
                Ok(loaded) => return Ok(loaded),
                Err(err) => tracing::warn!(error = %err, "stored artifact unusable; recompiling"),
            }
        }
        let module = self
            .store
            .get_blob(tenant, &version.sha256)
            .await?
            .ok_or_else(|| {
                EvaluationError::Internal(format!("module {} is missing", version.sha256))
            })?;
        let engine = self.engine.clone();
        let (loaded, artifact) = tokio::task::spawn_blocking(move || {
            let artifact = engine.precompile(&module)?;
            // SAFETY: `artifact` was produced by `precompile` just now.
            let loaded = unsafe { engine.load_artifact(hash, &artifact) }?;
            Ok::<_, rule_engine::EngineError>((loaded, artifact))
        })
        .await
        .map_err(|err| EvaluationError::Internal(format!("compile task: {err}")))?
        .map_err(|err| EvaluationError::Internal(err.to_string()))?;
        self.store.put_blob(tenant, &name, &artifact).await?;
        Ok(loaded)
    }

    /// Runs one version of a rule on an input document, without stalling the runtime
    /// (see [`run_blocking`]).
    pub async fn evaluate(
        &self,
        tenant: &str,
        rule: &Rule,
        version: &RuleVersion,
        input: &RuleInput<'_>,
    ) -> Result<RunReport, EvaluationError> {
        let loaded = self.loaded(tenant, version).await?;
        let input = input
            .to_bytes()
            .map_err(|err| EvaluationError::Internal(err.to_string()))?;
        let limits = limits(rule);
        let engine = self.engine.clone();
        run_blocking(move || engine.run(&loaded, &input, &limits)).await
    }
}

/// Runs a rule (synchronous CPU work that ends by its deadline) from async code without
/// stalling the runtime, and without a thread hop where the runtime allows that.
///
/// On a multi-thread runtime this is [`tokio::task::block_in_place`]: the run stays on
/// the calling thread. In `Runtime::block_on`, where `lambda_runtime::run` drives the
/// handlers, that is all it does; on a worker, the worker first hands its other tasks to
/// another thread. A `spawn_blocking` per run cost ~34 µs of handing over and waking
/// threads, more than the run itself.
///
/// What it gives up: the other futures of the *same* task (a stream batch's groups under
/// `buffer_unordered`, the counting joined beside them) are not polled while a run
/// lasts, so a batch's runs take turns instead of spreading over the blocking pool. That
/// is safe: a run ends by its deadline (the rule's timeout, at most
/// `domain::rule::MAX_TIMEOUT_MS`) or its fuel, so a waiting sibling is late by at most
/// one run; requests already sent progress meanwhile on the HTTP client's connection
/// tasks; and a run gets its whole deadline of CPU rather than sharing the Lambda's one
/// or two vCPUs with the batch's other runs.
///
/// On a current-thread runtime (`#[tokio::test]`), where `block_in_place` panics, it
/// falls back to `spawn_blocking`.
async fn run_blocking<R, F>(run: F) -> Result<R, EvaluationError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    if let Ok(RuntimeFlavor::CurrentThread) = Handle::try_current().map(|h| h.runtime_flavor()) {
        return tokio::task::spawn_blocking(run)
            .await
            .map_err(|err| EvaluationError::Internal(format!("run task: {err}")));
    }
    Ok(tokio::task::block_in_place(run))
}

/// The engine limits of a rule (unset ones take the defaults; the engine clamps to the
/// tenant maxima).
pub fn limits(rule: &Rule) -> Limits {
    let defaults = Limits::default();
    Limits {
        fuel: rule.limits.fuel.unwrap_or(defaults.fuel),
        memory_bytes: rule
            .limits
            .memory_mib
            .map_or(defaults.memory_bytes, |mib| (mib as usize) << 20),
        timeout: rule
            .limits
            .timeout_ms
            .map_or(defaults.timeout, |ms| Duration::from_millis(u64::from(ms))),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use std::thread::{self, ThreadId};

    use super::*;

    /// The thread a run happened on, and the thread that awaited it.
    async fn where_it_ran() -> (ThreadId, ThreadId) {
        let ran_on = run_blocking(|| thread::current().id()).await.unwrap();
        (ran_on, thread::current().id())
    }

    #[test]
    fn runs_stay_on_the_calling_thread_of_a_multi_thread_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        // As `lambda_runtime::run` drives a handler: in `block_on`.
        let (ran_on, caller) = runtime.block_on(where_it_ran());
        assert_eq!(ran_on, caller);
        // As a spawned task (the rules API's requests): on a worker, which first hands
        // its other tasks to another thread.
        let (ran_on, caller) = runtime.block_on(runtime.spawn(where_it_ran())).unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test]
    async fn runs_move_to_the_blocking_pool_of_a_current_thread_runtime() {
        let (ran_on, caller) = where_it_ran().await;
        assert_ne!(ran_on, caller, "block_in_place would have panicked here");
    }
}
