//! `/segments`: the tenant's master list of segments.

use chrono::Utc;
use domain::{Segment, SegmentDraft, SegmentStatus, merge_patch};
use lambda_http::http::StatusCode;

use crate::doc::{Body, CURSOR, Doc, LIMIT, json, page};
use crate::http::{Call, Reply, reject_identity_change};
use crate::problem::ApiError;
use crate::route::{Function::Segments, Route};
use crate::{App, handler};

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Segments,
        "GET",
        "/segments",
        Doc::new("ListSegments", "List segments")
            .query(&[
                (
                    "status",
                    "Only segments with this status: active or inactive",
                ),
                LIMIT,
                CURSOR,
            ])
            .answers(200, page::<Segment>("SegmentPage")),
        handler!(list),
    ),
    Route::new(
        Segments,
        "POST",
        "/segments",
        Doc::new("CreateSegment", "Create a segment")
            .takes(json::<SegmentInput>())
            .answers(201, json::<Segment>())
            .links(&[
                (
                    &["GetSegment", "UpdateSegment", "DeleteSegment"],
                    &[("id", "$response.body#/id")],
                ),
                (&["ListCustomers"], &[("segment", "$response.body#/id")]),
            ]),
        handler!(create),
    ),
    Route::new(
        Segments,
        "GET",
        "/segments/{id}",
        Doc::new("GetSegment", "Get a segment").answers(200, json::<Segment>()),
        handler!(get),
    ),
    Route::new(
        Segments,
        "PATCH",
        "/segments/{id}",
        Doc::new("UpdateSegment", "Change a segment (JSON merge patch)")
            .takes(json::<SegmentInput>())
            .answers(200, json::<Segment>())
            .conditional(),
        handler!(update),
    ),
    Route::new(
        Segments,
        "DELETE",
        "/segments/{id}",
        Doc::new("DeleteSegment", "Delete an unused segment")
            .answers(204, Body::None)
            .conditional(),
        handler!(delete),
    ),
];

/// Body of `POST /segments` (and the result of merging a PATCH).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct SegmentInput {
    /// Unique per tenant, case-insensitive; at most 64 characters.
    name: String,
    /// Defaults to `active`.
    status: Option<SegmentStatus>,
    description: Option<String>,
}

async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&["status", "limit", "cursor"], &[])?;
    let status =
        match call.query("status") {
            None => None,
            Some(raw) => Some(SegmentStatus::parse(raw).ok_or_else(|| {
                ApiError::BadRequest("status must be `active` or `inactive`".into())
            })?),
        };
    let scope = format!(
        "segments?status={}",
        status.map(SegmentStatus::as_str).unwrap_or("")
    );
    let page = app
        .store
        .list_segments(
            &call.tenant,
            status,
            call.limit()?,
            call.page_start(app, &scope)?,
        )
        .await?;
    Reply::page(app, &call, &scope, page)
}

async fn create(app: &App, call: Call) -> Result<Reply, ApiError> {
    let draft = SegmentDraft::parse(&call.json_body()?)?;
    let segment = draft.into_segment(domain::ids::new_id(), Utc::now());
    app.store.create_segment(&call.tenant, &segment).await?;
    Reply::created(
        format!("/segments/{}", segment.id),
        &segment,
        segment.version,
    )
}

async fn load(app: &App, call: &Call) -> Result<Segment, ApiError> {
    let id = call.param(0);
    app.store
        .get_segment(&call.tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("segment `{id}` not found")))
}

async fn get(app: &App, call: Call) -> Result<Reply, ApiError> {
    let segment = load(app, &call).await?;
    Reply::entity(StatusCode::OK, &segment, segment.version)
}

async fn update(app: &App, call: Call) -> Result<Reply, ApiError> {
    let patch = call.json_body()?;
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    reject_identity_change(&patch, "id", &current.id)?;
    let mut document =
        serde_json::to_value(&current).map_err(|err| ApiError::Internal(err.to_string()))?;
    merge_patch(&mut document, &patch);
    let updated = current.updated(SegmentDraft::parse(&document)?, Utc::now());
    app.store
        .update_segment(&call.tenant, &current, &updated)
        .await?;
    Reply::entity(StatusCode::OK, &updated, updated.version)
}

async fn delete(app: &App, call: Call) -> Result<Reply, ApiError> {
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    app.store.delete_segment(&call.tenant, &current).await?;
    Ok(Reply::no_content())
}
