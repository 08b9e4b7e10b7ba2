//! `/rules`: tenant rule modules. Configuration is JSON; code is uploaded as raw
//! `application/wasm`, validated, compiled once, and stored as an immutable version.

use chrono::{Datelike, Utc};
use domain::field::is_valid_field_name;
use domain::rule::{Rule, RuleDraft, RuleVersion, check_output, rule_input};
use domain::{BackfillChain, BackfillJob, Customer, Violations, merge_patch};
use lambda_http::http::StatusCode;
use rule_engine::{DEFAULT_MAX_MODULE_BYTES, ModuleHash, RunError};
use serde_json::{Value, json};

use api::customers::{CustomerInput, validate as validate_customer};
use api::doc::{Body, Doc, json, page};
use api::handler;
use api::http::{Call, Reply, reject_identity_change};
use api::problem::ApiError;
use api::route::{Function::Rules, Route};

use crate::App;

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Rules,
        "GET",
        "/rules",
        Doc::new("ListRules", "List rules in evaluation order")
            .answers(200, page::<Rule>("RulePage")),
        handler!(list),
    ),
    Route::new(
        Rules,
        "GET",
        "/rules/{name}",
        Doc::new("GetRule", "Get a rule").answers(200, json::<Rule>()),
        handler!(get),
    ),
    Route::new(
        Rules,
        "PUT",
        "/rules/{name}",
        Doc::new("PutRule", "Create or replace a rule's configuration")
            .takes(json::<RuleInput>())
            .answers(200, json::<Rule>())
            .conditional()
            .or_created()
            .links(&[(
                &[
                    "GetRule",
                    "UpdateRule",
                    "DeleteRule",
                    "UploadModule",
                    "ListRuleVersions",
                    "TestRule",
                    "StartBackfill",
                    "ListBackfills",
                ],
                &[("name", "$response.body#/name")],
            )]),
        handler!(put),
    ),
    Route::new(
        Rules,
        "PATCH",
        "/rules/{name}",
        Doc::new(
            "UpdateRule",
            "Change a rule: enable, disable, pin a version (JSON merge patch)",
        )
        .takes(json::<RuleInput>())
        .answers(200, json::<Rule>())
        .conditional(),
        handler!(update),
    ),
    Route::new(
        Rules,
        "DELETE",
        "/rules/{name}",
        Doc::new("DeleteRule", "Delete a rule and its versions")
            .answers(204, Body::None)
            .conditional(),
        handler!(delete),
    ),
    Route::new(
        Rules,
        "PUT",
        "/rules/{name}/module",
        Doc::new(
            "UploadModule",
            "Upload a WebAssembly module as the rule's next version",
        )
        .takes(Body::Wasm)
        .answers(201, json::<RuleVersion>())
        .conditional()
        .links(&[
            (
                &["GetRuleVersion"],
                &[
                    ("name", "$request.path.name"),
                    ("number", "$response.body#/number"),
                ],
            ),
            (
                &["ListRuleVersions", "TestRule", "StartBackfill"],
                &[("name", "$request.path.name")],
            ),
        ]),
        handler!(upload),
    ),
    Route::new(
        Rules,
        "GET",
        "/rules/{name}/versions",
        Doc::new("ListRuleVersions", "List a rule's module versions")
            .answers(200, page::<RuleVersion>("RuleVersionPage"))
            // Module uploads are raw WebAssembly, which fuzzers do not write: the
            // versions listed are how they reach one.
            .links(&[(
                &["GetRuleVersion"],
                &[
                    ("name", "$request.path.name"),
                    ("number", "$response.body#/items/0/number"),
                ],
            )]),
        handler!(versions),
    ),
    Route::new(
        Rules,
        "GET",
        "/rules/{name}/versions/{number}",
        Doc::new("GetRuleVersion", "Get one module version").answers(200, json::<RuleVersion>()),
        handler!(version),
    ),
    Route::new(
        Rules,
        "POST",
        "/rules/{name}/test",
        Doc::new(
            "TestRule",
            "Run a rule on a customer without writing anything",
        )
        .takes(json::<RuleTestInput>())
        .answers(200, json::<RuleTestReport>())
        // Writes nothing, so there is no race to lose.
        .no_retry(),
        handler!(test),
    ),
];

/// Body of `PUT /rules/{name}` (and the result of merging a PATCH).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct RuleInput {
    description: Option<String>,
    /// Cluster fields the rule may set; no two rules share one.
    outputs: Option<Vec<String>>,
    segment_output: Option<bool>,
    enabled: Option<bool>,
    /// Ascending evaluation order (default 100).
    priority: Option<i32>,
    limits: Option<domain::rule::RuleLimits>,
    pinned_version: Option<u32>,
}

/// Body of `POST /rules/{name}/test`: exactly one of `customer` and `customer_id`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct RuleTestInput {
    customer: Option<CustomerInput>,
    customer_id: Option<String>,
    /// Defaults to the version that runs.
    version: Option<u32>,
}

/// What the test run did: output, checks, logs and resources used.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct RuleTestReport {
    rule: String,
    version: u32,
    /// Ran, produced valid output, and passed every check.
    ok: bool,
    #[schema(value_type = Option<Object>)]
    output: Option<Value>,
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    #[schema(value_type = Object)]
    verdict: Value,
    logs: String,
    fuel_used: u64,
    duration_us: u64,
    memory_bytes: u64,
}

fn conflict(detail: String) -> ApiError {
    ApiError::Conflict {
        detail,
        extra: None,
    }
}

async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let mut rules = app.store.list_rules(&call.tenant).await?;
    rules.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    Reply::json(
        StatusCode::OK,
        &json!({ "items": rules, "next_cursor": null }),
    )
}

async fn find(app: &App, call: &Call) -> Result<Option<Rule>, ApiError> {
    Ok(app.store.get_rule(&call.tenant, call.param(0)).await?)
}

pub(crate) async fn load(app: &App, call: &Call) -> Result<Rule, ApiError> {
    find(app, call)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rule `{}` not found", call.param(0))))
}

async fn get(app: &App, call: Call) -> Result<Reply, ApiError> {
    let rule = load(app, &call).await?;
    Reply::entity(StatusCode::OK, &rule, rule.version)
}

/// Checks a configuration against the tenant's fields and the other rules' outputs,
/// and a pinned version against the versions that exist.
async fn checked_draft(
    app: &App,
    call: &Call,
    body: &Value,
    latest_version: u32,
) -> Result<RuleDraft, ApiError> {
    let fields = app.store.list_fields(&call.tenant).await?;
    let draft = RuleDraft::parse(body, &fields)?;
    if let Some(pinned) = draft.pinned_version
        && pinned > latest_version
    {
        return Err(Violations::one(
            "/pinned_version",
            format!("the rule has {latest_version} version(s)"),
        )
        .into());
    }
    let others = app.store.list_rules(&call.tenant).await?;
    let candidate = draft
        .clone()
        .into_rule(call.param(0).to_owned(), Utc::now());
    if let Some((other, field)) = candidate.output_clash(&others) {
        return Err(conflict(format!(
            "rule `{other}` already sets `{field}`; every output has one owner"
        )));
    }
    Ok(draft)
}

/// PUT creates the rule (201) or replaces its configuration (200); versions stay.
async fn put(app: &App, call: Call) -> Result<Reply, ApiError> {
    let name = call.param(0).to_owned();
    if !is_valid_field_name(&name) {
        return Err(Violations::one("/name", "must match ^[a-z][a-z0-9_]{0,63}$").into());
    }
    let body = call.json_body()?;
    reject_identity_change(&body, "name", &name)?;
    let current = find(app, &call).await?;
    match &current {
        Some(current) => call.check_if_match(current.version)?,
        None if call.headers.contains_key("if-match") => return Err(ApiError::PreconditionFailed),
        None => {}
    }
    let latest = current.as_ref().map_or(0, |r| r.latest_version);
    let draft = checked_draft(app, &call, &body, latest).await?;
    match current {
        Some(current) => save_update(app, &call, &current, draft).await,
        None => {
            let rule = draft.into_rule(name, Utc::now());
            app.store.save_rule(&call.tenant, None, &rule).await?;
            Reply::created(format!("/rules/{}", rule.name), &rule, rule.version)
        }
    }
}

async fn update(app: &App, call: Call) -> Result<Reply, ApiError> {
    let patch = call.json_body()?;
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    reject_identity_change(&patch, "name", &current.name)?;
    let mut document =
        serde_json::to_value(&current).map_err(|err| ApiError::Internal(err.to_string()))?;
    merge_patch(&mut document, &patch);
    let draft = checked_draft(app, &call, &document, current.latest_version).await?;
    save_update(app, &call, &current, draft).await
}

async fn save_update(
    app: &App,
    call: &Call,
    current: &Rule,
    draft: RuleDraft,
) -> Result<Reply, ApiError> {
    let updated = current.updated(draft, Utc::now());
    app.store
        .save_rule(&call.tenant, Some(current), &updated)
        .await?;
    start_backfill_after_change(app, &call.tenant, current, &updated).await?;
    Reply::entity(StatusCode::OK, &updated, updated.version)
}

async fn delete(app: &App, call: Call) -> Result<Reply, ApiError> {
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    app.store.delete_rule(&call.tenant, &current).await?;
    Ok(Reply::no_content())
}

/// Validates the module, compiles it once, stores module and artifact, and only then
/// records the version, so a failed or partial upload is never visible.
async fn upload(app: &App, call: Call) -> Result<Reply, ApiError> {
    let media = call.media_type().unwrap_or_default();
    if !matches!(
        media.as_str(),
        "application/wasm" | "application/octet-stream"
    ) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected application/wasm, got `{media}`"
        )));
    }
    if call.body.len() > DEFAULT_MAX_MODULE_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: DEFAULT_MAX_MODULE_BYTES,
        });
    }
    let rule = load(app, &call).await?;
    call.check_if_match(rule.version)?;
    let wasm = call.body;
    let engine = app.runner.engine().clone();
    let checked = tokio::task::spawn_blocking(move || {
        engine
            .validate(&wasm, DEFAULT_MAX_MODULE_BYTES)
            .map_err(|err| err.to_string())?;
        let artifact = engine.precompile(&wasm).map_err(|err| err.to_string())?;
        Ok::<_, String>((wasm, artifact))
    })
    .await
    .map_err(|err| ApiError::Internal(format!("compile task: {err}")))?;
    let (wasm, artifact) =
        checked.map_err(|reason| ApiError::Validation(Violations::one("/module", reason)))?;
    let hash = ModuleHash::of(&wasm);
    app.store
        .put_blob(&call.tenant, &hash.to_string(), &wasm)
        .await?;
    app.store
        .put_blob(&call.tenant, &app.runner.artifact_name(&hash), &artifact)
        .await?;
    let version = RuleVersion {
        rule: rule.name.clone(),
        number: rule.latest_version + 1,
        sha256: hash.to_string(),
        size: wasm.len() as u64,
        created_at: Utc::now(),
    };
    let updated = Rule {
        latest_version: version.number,
        version: rule.version + 1,
        updated_at: version.created_at,
        ..rule.clone()
    };
    app.store
        .add_rule_version(&call.tenant, &rule, &updated, &version)
        .await?;
    start_backfill_after_change(app, &call.tenant, &rule, &updated).await?;
    Reply::created(
        format!("/rules/{}/versions/{}", rule.name, version.number),
        &version,
        updated.version,
    )
}

async fn versions(app: &App, call: Call) -> Result<Reply, ApiError> {
    let rule = load(app, &call).await?;
    let versions = app
        .store
        .list_rule_versions(&call.tenant, &rule.name)
        .await?;
    Reply::json(
        StatusCode::OK,
        &json!({ "items": versions, "next_cursor": null }),
    )
}

async fn version(app: &App, call: Call) -> Result<Reply, ApiError> {
    let rule = load(app, &call).await?;
    let not_found = || {
        ApiError::NotFound(format!(
            "rule `{}` has no version `{}`",
            rule.name,
            call.param(1)
        ))
    };
    let number: u32 = call.param(1).parse().map_err(|_| not_found())?;
    let version = app
        .store
        .get_rule_version(&call.tenant, &rule.name, number)
        .await?
        .ok_or_else(not_found)?;
    Reply::json(StatusCode::OK, &version)
}

/// Runs a rule on a stored customer (`customer_id`) or an inline one (`customer`),
/// optionally at a given `version`, and reports everything without writing.
async fn test(app: &App, call: Call) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    let rule = load(app, &call).await?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let segments = app.store.all_segments(&call.tenant).await?;
    let number = match body.get("version") {
        None | Some(Value::Null) => rule.active_version().ok_or_else(|| {
            conflict(format!(
                "rule `{}` has no module yet; upload one first",
                rule.name
            ))
        })?,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Violations::one("/version", "must be a version number"))?,
    };
    let version = app
        .store
        .get_rule_version(&call.tenant, &rule.name, number)
        .await?
        .ok_or_else(|| Violations::one("/version", format!("the rule has no version {number}")))?;
    let customer = test_customer(app, &call, &body, &fields).await?;
    let sales = app
        .store
        .sales_summary(&call.tenant, &customer.id, Utc::now().year())
        .await?;
    let input = rule_input(&customer, &sales, &segments, &rule, number);
    let report = app
        .runner
        .evaluate(&call.tenant, &rule, &version, &input)
        .await
        .map_err(|err| match err {
            evaluation::EvaluationError::Store(err) => ApiError::from(err),
            evaluation::EvaluationError::Internal(detail) => ApiError::Internal(detail),
        })?;
    let (output, error, verdict) = match report.outcome {
        Ok(raw) => {
            let output = raw.to_json();
            let verdict = match check_output(&rule, raw, &fields, &segments) {
                Ok(assignment) => json!({"valid": true, "assignment": assignment}),
                Err(violations) => json!({"valid": false, "errors": violations.0}),
            };
            (output, Value::Null, verdict)
        }
        Err(err) => (
            Value::Null,
            run_error(&err),
            json!({"valid": false, "errors": []}),
        ),
    };
    Reply::json(
        StatusCode::OK,
        &json!({
            "rule": rule.name,
            "version": number,
            "ok": error.is_null() && verdict["valid"] == true,
            "output": output,
            "error": error,
            "verdict": verdict,
            "logs": report.logs,
            "fuel_used": report.fuel_used,
            "duration_us": report.duration.as_micros() as u64,
            "memory_bytes": report.memory_bytes,
        }),
    )
}

fn run_error(err: &RunError) -> Value {
    json!({"code": err.code(), "message": err.to_string()})
}

async fn test_customer(
    app: &App,
    call: &Call,
    body: &Value,
    fields: &[domain::FieldDef],
) -> Result<Customer, ApiError> {
    match (body.get("customer_id"), body.get("customer")) {
        (Some(id), None) => {
            let id = id.as_str().unwrap_or_default();
            let customer = app
                .store
                .get_customer(&call.tenant, id)
                .await?
                .ok_or_else(|| {
                    Violations::one("/customer_id", format!("no customer has id `{id}`"))
                })?;
            Ok(customer.visible(fields))
        }
        (None, Some(inline)) => {
            let draft = validate_customer(&app.api, &call.tenant, inline, fields, None)
                .await
                .map_err(|err| match err {
                    ApiError::Validation(violations) => ApiError::Validation(Violations(
                        violations
                            .0
                            .into_iter()
                            .map(|mut v| {
                                v.pointer = format!("/customer{}", v.pointer);
                                v
                            })
                            .collect(),
                    )),
                    other => other,
                })?;
            let id = draft.id.clone().unwrap_or_else(|| "test".into());
            Ok(draft.into_customer(id, Utc::now()))
        }
        _ => Err(Violations::one("/", "give exactly one of `customer` and `customer_id`").into()),
    }
}

/// Starts a job for `rule` at `version`, one chain per shard of the tenant's
/// customers; each chain's first stream record runs its first step.
pub(crate) async fn start_backfill(
    app: &App,
    tenant: &str,
    rule: &Rule,
    version: u32,
    dry_run: bool,
) -> Result<BackfillJob, ApiError> {
    let (id, now) = (domain::ids::new_id(), Utc::now());
    let chains = store::keys::shards()
        .map(|shard| BackfillChain::new(&id, &rule.name, version, dry_run, shard, now))
        .collect();
    let job = BackfillJob::from_chains(id, rule.name.clone(), version, dry_run, now, chains);
    app.store.create_job(tenant, &job).await?;
    Ok(job)
}

/// Re-evaluates everyone when a change to an enabled rule can change its answers:
/// it was just enabled, runs another version, or sets other outputs.
async fn start_backfill_after_change(
    app: &App,
    tenant: &str,
    before: &Rule,
    after: &Rule,
) -> Result<(), ApiError> {
    let Some(version) = after.active_version() else {
        return Ok(());
    };
    let changed = !before.enabled
        || before.active_version() != after.active_version()
        || before.outputs != after.outputs
        || before.segment_output != after.segment_output;
    if after.enabled && changed {
        start_backfill(app, tenant, after, version, false).await?;
    }
    Ok(())
}
