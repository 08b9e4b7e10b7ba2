//! `/clusters`: who is in which cluster, for promotions and campaigns. A cluster is a
//! cluster field's value; counts are kept from the table's stream (`store::counts`):
//! exact once the stream has caught up, a second or so behind the writes.

use std::collections::BTreeMap;

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::doc::{CURSOR, Doc, LIMIT, json, page};
use crate::http::{Call, Reply};
use crate::listing::{CLUSTER_PREFIX, MATCH, SEGMENT, filtered_page, target};
use crate::problem::ApiError;
use crate::route::{Function::Fields, Route};
use crate::{App, handler};

/// Served by the fields function: clusters are cluster fields' values.
pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Fields,
        "GET",
        "/clusters",
        Doc::new(
            "ListClusters",
            "Every cluster field with its number of customers per value",
        )
        .answers(200, json::<ClusterList>()),
        handler!(list),
    ),
    Route::new(
        Fields,
        "GET",
        "/clusters/{field}/members",
        Doc::new(
            "ListClusterMembers",
            "The customers in one cluster (`?value=`), optionally combined with other conditions",
        )
        .query(&[
            (
                "value",
                "The cluster value, as in ?cluster.<field>= (required); several as `v1,v2`",
            ),
            SEGMENT,
            MATCH,
            LIMIT,
            CURSOR,
        ])
        .answers(200, page::<domain::Customer>("CustomerPage")),
        handler!(members),
    ),
];

/// One value of a cluster field and how many customers hold it.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct ClusterCount {
    /// A string, integer or boolean, as the field's type.
    value: Value,
    count: i64,
}

/// A cluster field in `GET /clusters`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct ClusterField {
    field: String,
    label: String,
    #[schema(rename = "type")]
    r#type: domain::FieldType,
    /// Customers holding any value of the field.
    member_count: i64,
    values: Vec<ClusterCount>,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct ClusterList {
    items: Vec<ClusterField>,
}

/// `GET /clusters`: every cluster field with its number of customers per value, the
/// largest cluster first.
async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let mut counts: BTreeMap<String, Vec<(Value, i64)>> = BTreeMap::new();
    for count in app.store.cluster_value_counts(&call.tenant).await? {
        let Some(field) = fields.iter().find(|f| f.name == count.field && f.cluster) else {
            continue;
        };
        // Stored as the index key; shown as the typed value clients wrote.
        let value = field
            .parse_query_value(&count.value)
            .unwrap_or(Value::String(count.value));
        counts
            .entry(count.field)
            .or_default()
            .push((value, count.count));
    }
    let items: Vec<Value> = fields
        .iter()
        .filter(|f| f.cluster)
        .map(|field| {
            let mut values = counts.remove(&field.name).unwrap_or_default();
            values.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
            });
            json!({
                "field": field.name,
                "label": field.label,
                "type": field.field_type,
                "member_count": field.member_count,
                "values": values
                    .into_iter()
                    .map(|(value, count)| json!({"value": value, "count": count}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /clusters/{field}/members?value=`: the customers in one cluster, paginated
/// like (and with cursors shared with) `GET /customers?cluster.<field>=<value>`. The
/// path's condition combines with the query's (`segment`, other `cluster.<field>`,
/// `match`) as if the query named it.
async fn members(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(
        &["value", "segment", "match", "limit", "cursor"],
        &[CLUSTER_PREFIX],
    )?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let name = call.param(0);
    if !fields.iter().any(|f| f.name == name && f.cluster) {
        return Err(ApiError::NotFound(format!(
            "cluster field `{name}` not found"
        )));
    }
    let value = call
        .query("value")
        .ok_or_else(|| ApiError::BadRequest("value is required".into()))?;
    let param = format!("{CLUSTER_PREFIX}{name}");
    let target = target(&call, &fields, Some((&param, value)))?;
    filtered_page(app, &call, &fields, &target).await
}
