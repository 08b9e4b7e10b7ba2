//! Running a stored rule version: the loaded module comes from the process cache, else
//! from its stored artifact (deserialized, never compiled), else — when the artifact is
//! missing or was made by another engine build — it is recompiled once from the stored
//! module and the new artifact is saved for the next container.

use std::time::Duration;

use domain::rule::{RawRuleOutput, Rule, RuleVersion, SegmentChoice};
use rule_engine::{Limits, ModuleHash, RuleOutput, RunReport};
use serde_json::Value;

use crate::App;
use crate::problem::ApiError;

/// Where the compiled form of a module lives: one artifact per engine build.
pub fn artifact_name(app: &App, hash: &ModuleHash) -> String {
    format!("{hash}@{}", app.engine.compatibility_key())
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

async fn loaded(
    app: &App,
    tenant: &str,
    version: &RuleVersion,
) -> Result<rule_engine::Rule, ApiError> {
    let hash: ModuleHash = version
        .sha256
        .parse()
        .map_err(|err: String| ApiError::Internal(err))?;
    if let Some(rule) = app.engine.cached(&hash) {
        return Ok(rule);
    }
    let name = artifact_name(app, &hash);
    if let Some(artifact) = app.store.get_blob(tenant, &name).await? {
        let engine = app.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            // SAFETY: artifacts are written only by `rules::upload` and by the fallback
            // below, from our own `precompile`, into the table tenants cannot write to.
            unsafe { engine.load_artifact(hash, &artifact) }
        })
        .await
        .map_err(|err| ApiError::Internal(format!("load task: {err}")))?;
        match loaded {
            Ok(rule) => return Ok(rule),
            Err(err) => tracing::warn!(error = %err, "stored artifact unusable; recompiling"),
        }
    }
    let module = app
        .store
        .get_blob(tenant, &version.sha256)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("module {} is missing", version.sha256)))?;
    let engine = app.engine.clone();
    let (rule, artifact) = tokio::task::spawn_blocking(move || {
        let artifact = engine.precompile(&module)?;
        // SAFETY: `artifact` was produced by `precompile` just now.
        let rule = unsafe { engine.load_artifact(hash, &artifact) }?;
        Ok::<_, rule_engine::EngineError>((rule, artifact))
    })
    .await
    .map_err(|err| ApiError::Internal(format!("compile task: {err}")))?
    .map_err(|err| ApiError::Internal(err.to_string()))?;
    app.store.put_blob(tenant, &name, &artifact).await?;
    Ok(rule)
}

/// Runs one version of a rule on an input document, off the async workers.
pub async fn evaluate(
    app: &App,
    tenant: &str,
    rule: &Rule,
    version: &RuleVersion,
    input: &Value,
) -> Result<RunReport, ApiError> {
    let loaded = loaded(app, tenant, version).await?;
    let input = serde_json::to_vec(input).map_err(|err| ApiError::Internal(err.to_string()))?;
    let limits = limits(rule);
    let engine = app.engine.clone();
    tokio::task::spawn_blocking(move || engine.run(&loaded, &input, &limits))
        .await
        .map_err(|err| ApiError::Internal(format!("run task: {err}")))
}

/// The engine's parsed output in domain terms, for the semantic checks.
pub fn raw_output(output: RuleOutput) -> RawRuleOutput {
    RawRuleOutput {
        clusters: output.clusters,
        segment: match output.segment {
            rule_engine::SegmentChoice::Unchanged => SegmentChoice::Unchanged,
            rule_engine::SegmentChoice::Clear => SegmentChoice::Clear,
            rule_engine::SegmentChoice::Set(s) => SegmentChoice::Set(s),
        },
    }
}
