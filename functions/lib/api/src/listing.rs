//! What every customer listing shares (`/customers`, its export, the cluster member
//! lists and the filtered annual report): reading the target (the segment and cluster
//! conditions and how they combine, `domain::target`) from the query once, the cursor
//! scope that binds a cursor to it, and a page as clients see it. Also
//! `GET /targets/count`, which sizes a target before a campaign starts.

use domain::FieldDef;
use domain::target::{MATCH_PARAM, SEGMENT_PARAM, Target};
use lambda_http::http::StatusCode;
use serde_json::{Map, Value, json};
use store::Page;

use crate::doc::{Doc, Param, json};
use crate::http::{Call, Reply};
use crate::problem::ApiError;
use crate::route::{Function::Customers, Route};
use crate::{App, handler};

/// The query prefix of a cluster condition: `?cluster.<field>=<value>[,<value>...]`.
pub(crate) const CLUSTER_PREFIX: &str = domain::target::CLUSTER_PREFIX;
/// The target's named query parameters (cluster conditions go by [`CLUSTER_PREFIX`]).
pub(crate) const TARGET_PARAMS: [&str; 2] = [SEGMENT_PARAM, MATCH_PARAM];

/// The OpenAPI descriptions of the target's parameters, shared by every listing.
pub(crate) const SEGMENT: Param = (
    "segment",
    "Only customers of this segment id; several as `a,b` (any of them). Cluster \
     conditions: `cluster.<field>=<value>[,<value>...]` (a comma inside a value as `\\,`)",
);
pub(crate) const MATCH: Param = (
    "match",
    "`all` (default): customers meeting every condition (`segment`, each \
     `cluster.<field>`); `any`: meeting at least one",
);

pub(crate) const ROUTES: &[Route<App>] = &[Route::new(
    Customers,
    "GET",
    "/targets/count",
    Doc::new(
        "CountTarget",
        "How many customers a combination of conditions selects, exactly, as of now",
    )
    .query(&[SEGMENT, MATCH])
    .answers(200, json::<TargetCount>()),
    handler!(count),
)];

/// `GET /targets/count`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct TargetCount {
    count: usize,
    /// `all` or `any` (`all` for a single condition, where both mean the same).
    #[schema(rename = "match")]
    matching: String,
    /// The conditions as read, by query parameter (`segment`, `cluster.<field>`), each
    /// with its values in the query's spelling, sorted.
    #[schema(value_type = Object)]
    conditions: Value,
}

/// The cursor scope of a listing of `target`: its canonical spelling, so a cursor only
/// continues the same combination. A single filter keeps the scope it always had
/// (`customers?segment=<id>`, `customers?cluster.<field>=<value>`).
pub(crate) fn listing_scope(target: &Target) -> String {
    match target.canonical_query() {
        query if query.is_empty() => "customers".to_owned(),
        query => format!("customers?{query}"),
    }
}

/// Which customers a listing (or an export) selects.
pub(crate) enum Selection {
    /// Walked with the store: everyone, or a target's customers.
    Filter(Target),
    /// The one customer with this email, if any.
    Email(String),
}

/// Reads the listing's selection: `?email=` alone, or a target (`?segment=`, any
/// `?cluster.<field>=`, `?match=`).
pub(crate) fn selection(call: &Call, fields: &[FieldDef]) -> Result<Selection, ApiError> {
    let mut emails = call.query.iter().filter(|(k, _)| k == "email");
    let Some((_, email)) = emails.next() else {
        return Ok(Selection::Filter(target(call, fields, None)?));
    };
    if emails.next().is_some() || call.query.iter().any(|(k, _)| Target::is_param(k)) {
        return Err(ApiError::BadRequest(
            "`email` names one customer: use it once, without `segment`, \
             `cluster.<field>` or `match`"
                .into(),
        ));
    }
    Ok(Selection::Email(email.clone()))
}

/// The target the query names; `path_condition` is a condition the route's path
/// names (the member list's field, with its `?value=`), read as if it were in the query.
pub(crate) fn target(
    call: &Call,
    fields: &[FieldDef],
    path_condition: Option<(&str, &str)>,
) -> Result<Target, ApiError> {
    let query = call
        .query
        .iter()
        .filter(|(k, _)| Target::is_param(k))
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Target::parse(path_condition.into_iter().chain(query), fields)
        .map_err(|err| ApiError::BadRequest(err.to_string()))
}

/// One page of the customers a target selects, as clients see them. The cursor scope
/// names the target, so a cursor only continues the listing it came from (whichever
/// endpoint serves it: `/customers?cluster.x=v` and `/clusters/x/members?value=v`
/// share their pages).
pub(crate) async fn filtered_page(
    app: &App,
    call: &Call,
    fields: &[FieldDef],
    target: &Target,
) -> Result<Reply, ApiError> {
    let scope = listing_scope(target);
    let page = app
        .store
        .list_target(
            &call.tenant,
            target,
            fields,
            call.limit()?,
            call.page_start(app, &scope)?,
        )
        .await?;
    let page = Page {
        items: page.items.into_iter().map(|c| c.visible(fields)).collect(),
        next: page.next,
    };
    Reply::page(app, call, &scope, page)
}

/// `GET /targets/count?segment=&cluster.<field>=&match=`: the exact number of customers
/// in a target with at least one condition (every customer is not a campaign target,
/// and counting them would read the whole base). Reads as a listing of the target does,
/// all of it (see `Store::target_members`).
async fn count(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&TARGET_PARAMS, &[CLUSTER_PREFIX])?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let target = target(&call, &fields, None)?;
    if target.is_everyone() {
        return Err(ApiError::BadRequest(
            "name at least one condition: `segment` or `cluster.<field>`".into(),
        ));
    }
    let members = app
        .store
        .target_members(&call.tenant, &target, &fields)
        .await?;
    let conditions: Map<String, Value> = target
        .conditions()
        .iter()
        .map(|c| (c.subject.param(), json!(c.values)))
        .collect();
    Reply::json(
        StatusCode::OK,
        &json!({
            "count": members.len(),
            "match": target.matching().as_str(),
            "conditions": conditions,
        }),
    )
}
