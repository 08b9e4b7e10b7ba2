//! `/fields`: custom field definitions of the customer record; cluster fields group customers.

use chrono::Utc;
use domain::field::{CLUSTER_FIELDS_MAX, FIELDS_MAX};
use domain::{FieldDef, FieldDraft, merge_patch};
use lambda_http::http::StatusCode;

use crate::doc::{Body, Doc, json, page};
use crate::http::{Call, Reply, reject_identity_change};
use crate::problem::ApiError;
use crate::route::{Function::Fields, Route};
use crate::{App, handler};

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Fields,
        "GET",
        "/fields",
        Doc::new("ListFields", "List custom field definitions")
            .answers(200, page::<FieldDef>("FieldPage")),
        handler!(list),
    ),
    Route::new(
        Fields,
        "POST",
        "/fields",
        Doc::new("CreateField", "Define a custom field")
            .takes(json::<FieldInput>())
            .answers(201, json::<FieldDef>())
            .links(&[
                (
                    &["GetField", "UpdateField", "DeleteField"],
                    &[("name", "$response.body#/name")],
                ),
                (
                    &["ListClusterMembers"],
                    &[("field", "$response.body#/name")],
                ),
            ]),
        handler!(create),
    ),
    Route::new(
        Fields,
        "GET",
        "/fields/{name}",
        Doc::new("GetField", "Get a field definition").answers(200, json::<FieldDef>()),
        handler!(get),
    ),
    Route::new(
        Fields,
        "PATCH",
        "/fields/{name}",
        Doc::new(
            "UpdateField",
            "Change a field definition compatibly (JSON merge patch)",
        )
        .takes(json::<FieldInput>())
        .answers(200, json::<FieldDef>())
        .conditional(),
        handler!(update),
    ),
    Route::new(
        Fields,
        "DELETE",
        "/fields/{name}",
        Doc::new("DeleteField", "Delete a field definition")
            .answers(204, Body::None)
            .conditional(),
        handler!(delete),
    ),
];

/// Body of `POST /fields`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct FieldInput {
    /// `^[a-z][a-z0-9_]{0,63}$`
    name: String,
    label: Option<String>,
    #[schema(rename = "type")]
    r#type: domain::FieldType,
    /// Allowed values; required for `enum`.
    values: Option<Vec<String>>,
    required: Option<bool>,
    /// A value of the field's type (any JSON value in this schema).
    default: Option<serde_json::Value>,
    /// Fixed at creation. Only string, integer, boolean and enum fields can be clusters.
    cluster: Option<bool>,
    max_length: Option<u32>,
}

async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let fields = app.store.list_fields(&call.tenant).await?;
    Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "items": fields, "next_cursor": null }),
    )
}

async fn create(app: &App, call: Call) -> Result<Reply, ApiError> {
    let draft = FieldDraft::parse(&call.json_body()?)?;
    let existing = app.store.list_fields(&call.tenant).await?;
    if existing.len() >= FIELDS_MAX {
        return Err(limit_reached(format!(
            "a tenant may define at most {FIELDS_MAX} fields"
        )));
    }
    if draft.cluster && existing.iter().filter(|f| f.cluster).count() >= CLUSTER_FIELDS_MAX {
        return Err(limit_reached(format!(
            "a tenant may define at most {CLUSTER_FIELDS_MAX} cluster fields"
        )));
    }
    let field = draft.into_field(Utc::now());
    app.store.create_field(&call.tenant, &field).await?;
    Reply::created(format!("/fields/{}", field.name), &field, field.version)
}

fn limit_reached(detail: String) -> ApiError {
    ApiError::Conflict {
        detail,
        extra: None,
    }
}

async fn load(app: &App, call: &Call) -> Result<FieldDef, ApiError> {
    let name = call.param(0);
    app.store
        .get_field(&call.tenant, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("field `{name}` not found")))
}

async fn get(app: &App, call: Call) -> Result<Reply, ApiError> {
    let field = load(app, &call).await?;
    Reply::entity(StatusCode::OK, &field, field.version)
}

/// Only changes that keep every stored value valid are accepted; others answer 409.
async fn update(app: &App, call: Call) -> Result<Reply, ApiError> {
    let patch = call.json_body()?;
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    reject_identity_change(&patch, "name", &current.name)?;
    let mut document =
        serde_json::to_value(&current).map_err(|err| ApiError::Internal(err.to_string()))?;
    merge_patch(&mut document, &patch);
    // An enum turned into another type drops its value list even when the patch does
    // not say `"values": null`: the list means nothing for the new type.
    if document["type"] != "enum"
        && patch.get("values").is_none()
        && let Some(object) = document.as_object_mut()
    {
        object.remove("values");
    }
    let draft = FieldDraft::parse(&document)?;
    if let Some(detail) = current.incompatible_change(&draft) {
        return Err(ApiError::Conflict {
            detail,
            extra: None,
        });
    }
    let updated = current.updated(draft, Utc::now());
    app.store
        .update_field(&call.tenant, &current, &updated)
        .await?;
    Reply::entity(StatusCode::OK, &updated, updated.version)
}

async fn delete(app: &App, call: Call) -> Result<Reply, ApiError> {
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    let rules = app.store.list_rules(&call.tenant).await?;
    if let Some(rule) = rules.iter().find(|r| r.outputs.contains(&current.name)) {
        return Err(ApiError::Conflict {
            detail: format!(
                "rule `{}` sets field `{}`; remove it from the rule's outputs first",
                rule.name, current.name
            ),
            extra: None,
        });
    }
    app.store.delete_field(&call.tenant, &current).await?;
    Ok(Reply::no_content())
}
