//! `/rules/{name}/backfill`: re-evaluating every customer after a rule changes, or
//! counting what a version would change (dry run). The work runs in steps driven by the
//! table's stream (see `evaluation::backfill`); these handlers start and show jobs.

use chrono::Utc;
use domain::{BackfillJob, BackfillRequest, JobState, Violations};
use lambda_http::http::StatusCode;
use lambda_http::http::header::LOCATION;
use serde_json::json;

use api::doc::{Doc, json, page};
use api::handler;
use api::http::{Call, Reply};
use api::problem::ApiError;
use api::route::{Function::Rules, Route};

use crate::App;
use crate::rules::{load, start_backfill};

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Rules,
        "POST",
        "/rules/{name}/backfill",
        Doc::new(
            "StartBackfill",
            "Re-evaluate every customer, or count what a version would change (dry run)",
        )
        .takes(json::<BackfillInput>())
        .answers(202, json::<BackfillJob>())
        .links(&[
            (
                &["GetBackfill", "ResumeBackfill"],
                &[
                    ("name", "$request.path.name"),
                    ("job", "$response.body#/id"),
                ],
            ),
            (&["ListBackfills"], &[("name", "$request.path.name")]),
        ]),
        handler!(create),
    ),
    Route::new(
        Rules,
        "GET",
        "/rules/{name}/backfill",
        Doc::new("ListBackfills", "A rule's backfill jobs, newest first")
            .answers(200, page::<BackfillJob>("BackfillPage")),
        handler!(list),
    ),
    Route::new(
        Rules,
        "GET",
        "/rules/{name}/backfill/{job}",
        Doc::new("GetBackfill", "A backfill job's progress and counts")
            .answers(200, json::<BackfillJob>()),
        handler!(get),
    ),
    Route::new(
        Rules,
        "POST",
        "/rules/{name}/backfill/{job}/resume",
        Doc::new(
            "ResumeBackfill",
            "Re-drive the running chains of a job whose steps were given up on",
        )
        .answers(202, json::<BackfillJob>())
        .links(&[(
            &["GetBackfill"],
            &[
                ("name", "$request.path.name"),
                ("job", "$response.body#/id"),
            ],
        )]),
        handler!(resume),
    ),
];

/// Body of `POST /rules/{name}/backfill` (optional).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct BackfillInput {
    /// Count what `version` would change, writing nothing.
    dry_run: Option<bool>,
    /// Defaults to the version that runs; a real run always uses that one.
    version: Option<u32>,
}

async fn create(app: &App, call: Call) -> Result<Reply, ApiError> {
    let body = if call.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(call.json_body()?)
    };
    let request = BackfillRequest::parse(body.as_ref())?;
    let rule = load(app, &call).await?;
    let Some(active) = rule.active_version() else {
        return Err(ApiError::Conflict {
            detail: format!("rule `{}` has no module yet; upload one first", rule.name),
            extra: None,
        });
    };
    let version = request.version.unwrap_or(active);
    if !request.dry_run && !rule.enabled {
        return Err(ApiError::Conflict {
            detail: format!(
                "rule `{}` is disabled: enable it, or ask for a dry run",
                rule.name
            ),
            extra: None,
        });
    }
    if !request.dry_run && version != active {
        return Err(Violations::one(
            "/version",
            format!("a backfill writes with the version that runs ({active}); pin it first"),
        )
        .into());
    }
    if app
        .store
        .get_rule_version(&call.tenant, &rule.name, version)
        .await?
        .is_none()
    {
        return Err(
            Violations::one("/version", format!("the rule has no version {version}")).into(),
        );
    }
    let job = start_backfill(app, &call.tenant, &rule, version, request.dry_run).await?;
    let location = format!("/rules/{}/backfill/{}", rule.name, job.id);
    Ok(Reply::json(StatusCode::ACCEPTED, &job)?.header(LOCATION, location))
}

async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let rule = load(app, &call).await?;
    let jobs = app.store.list_jobs(&call.tenant, &rule.name).await?;
    Reply::json(
        StatusCode::OK,
        &json!({ "items": jobs, "next_cursor": null }),
    )
}

async fn get(app: &App, call: Call) -> Result<Reply, ApiError> {
    Reply::json(StatusCode::OK, &load_job(app, &call).await?)
}

/// The job `{job}` of the rule `{name}`, or 404.
async fn load_job(app: &App, call: &Call) -> Result<BackfillJob, ApiError> {
    let rule = load(app, call).await?;
    let id = call.param(1);
    app.store
        .get_job(&call.tenant, &rule.name, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rule `{}` has no job `{id}`", rule.name)))
}

/// `POST /rules/{name}/backfill/{job}/resume`: re-drives the running chains of a job
/// whose step records were given up on (they failed their retries and went to the
/// on-failure queue, so nothing would trigger their steps again). Rewrites each running
/// chain unchanged but for `updated_at`, under the same step-and-phase condition the
/// steps use, so the new stream record runs the step it stopped at; a chain that moved
/// on meanwhile is left alone. Harmless on a job that was not stalled: the extra record
/// finds its step already taken.
async fn resume(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let job = load_job(app, &call).await?;
    if job.state != JobState::Running {
        return Err(ApiError::Conflict {
            detail: format!("job `{}` is already done", job.id),
            extra: None,
        });
    }
    let (now, tenant) = (Utc::now(), call.tenant.as_str());
    let nudges = job
        .chains
        .iter()
        .filter(|chain| chain.state == JobState::Running)
        .map(|chain| async move {
            let mut nudged = chain.clone();
            nudged.updated_at = now;
            match app.store.advance_chain(tenant, chain, &nudged).await {
                // A step committed in between: the chain is moving, no nudge needed.
                Ok(()) | Err(store::StoreError::VersionMismatch) => Ok(()),
                Err(err) => Err(ApiError::from(err)),
            }
        });
    futures_util::future::try_join_all(nudges).await?;
    Reply::json(StatusCode::ACCEPTED, &load_job(app, &call).await?)
}
