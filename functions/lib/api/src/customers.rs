//! `/customers`: contact data, one segment, and custom field values (clusters).

use chrono::Utc;
use domain::{Customer, CustomerDraft, CustomerSchema, FieldDef, merge_patch};
use lambda_http::http::StatusCode;
use serde_json::Value;
use store::Page;

use crate::doc::{Body, CURSOR, Doc, LIMIT, Links, json, page};
use crate::http::{Call, Reply, reject_identity_change};
use crate::listing::{CLUSTER_PREFIX, MATCH, SEGMENT, Selection, filtered_page, selection};
use crate::problem::ApiError;
use crate::route::{Function::Customers, Route};
use crate::{App, handler};

/// The operations on one customer, reached from an answer that holds it.
const BY_ID: Links = (
    &[
        "GetCustomer",
        "UpdateCustomer",
        "DeleteCustomer",
        "GetCustomerClusters",
        "RecordSale",
        "ListSales",
    ],
    ID_OF_ANSWER,
);
const ID_OF_ANSWER: &[(&str, &str)] = &[("id", "$response.body#/id")];

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Customers,
        "GET",
        "/customers",
        Doc::new(
            "ListCustomers",
            "List customers, optionally by email, or by segment and cluster values combined",
        )
        .query(&[
            SEGMENT,
            (
                "email",
                "The customer with this email (case-insensitive); alone",
            ),
            MATCH,
            LIMIT,
            CURSOR,
        ])
        .answers(200, page::<Customer>("CustomerPage")),
        handler!(list),
    ),
    Route::new(
        Customers,
        "POST",
        "/customers",
        Doc::new("CreateCustomer", "Create a customer")
            .takes(json::<CustomerInput>())
            .answers(201, json::<Customer>())
            .links(&[BY_ID, (&["ReplaceCustomer"], ID_OF_ANSWER)]),
        handler!(create),
    ),
    Route::new(
        Customers,
        "GET",
        "/customers/{id}",
        Doc::new("GetCustomer", "Get a customer").answers(200, json::<Customer>()),
        handler!(get),
    ),
    Route::new(
        Customers,
        "PUT",
        "/customers/{id}",
        Doc::new("ReplaceCustomer", "Create or replace a customer")
            .takes(json::<CustomerInput>())
            .answers(200, json::<Customer>())
            .conditional()
            .or_created()
            .links(&[BY_ID]),
        handler!(replace),
    ),
    Route::new(
        Customers,
        "PATCH",
        "/customers/{id}",
        Doc::new("UpdateCustomer", "Change a customer (JSON merge patch)")
            .takes(json::<CustomerInput>())
            .answers(200, json::<Customer>())
            .conditional(),
        handler!(update),
    ),
    Route::new(
        Customers,
        "DELETE",
        "/customers/{id}",
        Doc::new("DeleteCustomer", "Delete a customer")
            .answers(204, Body::None)
            .conditional(),
        handler!(delete),
    ),
    Route::new(
        Customers,
        "GET",
        "/customers/{id}/clusters",
        Doc::new(
            "GetCustomerClusters",
            "A customer's cluster values, which rule set each, and the last rule errors",
        )
        .answers(200, json::<CustomerClusters>()),
        handler!(clusters),
    ),
];

/// Body of `POST /customers` and `PUT /customers/{id}`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct CustomerInput {
    /// Generated when absent.
    id: Option<String>,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    document: Option<String>,
    phone: Option<String>,
    /// Must name an active segment.
    segment_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    fields: Option<Value>,
}

/// One cluster value of `GET /customers/{id}/clusters`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct ClusterValue {
    /// A string, integer or boolean, as the field's type.
    value: Value,
    /// The rule that set the value; `null` when a client did.
    source: Option<domain::ClusterSource>,
}

/// A customer's cluster values with their provenance, and the last rule failures.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct CustomerClusters {
    customer_id: String,
    segment_id: Option<String>,
    written_by: domain::WrittenBy,
    clusters: std::collections::BTreeMap<String, ClusterValue>,
    rule_errors: Vec<domain::RuleFailure>,
}

/// `?email=` alone, or a target: `?segment=`, any `?cluster.<field>=`, each with one or
/// several values, and `?match=all|any` (see `domain::target`).
async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(
        &["segment", "email", "match", "limit", "cursor"],
        &[CLUSTER_PREFIX],
    )?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let target = match selection(&call, &fields)? {
        Selection::Filter(target) => target,
        Selection::Email(email) => {
            let email = email.as_str();
            // An email names at most one customer: the page never continues, so any
            // cursor is foreign to this scope and rejected like any other bad cursor.
            call.limit()?;
            call.page_start(app, "customers?email")?;
            let found = app
                .store
                .find_customer_by_email(&call.tenant, email)
                .await?;
            let page = Page {
                items: found.into_iter().map(|c| c.visible(&fields)).collect(),
                next: None,
            };
            return Reply::page(app, &call, "customers?email", page);
        }
    };
    filtered_page(app, &call, &fields, &target).await
}

/// The segment a customer body names, as stored (`None` when it names none or an
/// unknown one). Independent of the field definitions, so read beside them.
async fn named_segment(
    app: &App,
    tenant: &str,
    body: &Value,
) -> Result<Option<domain::Segment>, ApiError> {
    Ok(match body.get("segment_id").and_then(Value::as_str) {
        Some(id) if domain::ids::is_valid_entity_id(id) => {
            app.store.get_segment(tenant, id).await?
        }
        _ => None,
    })
}

/// Validates a full customer body against the tenant's fields and the segment it names;
/// `current` is the stored customer the body replaces, if any.
fn parse_draft(
    body: &Value,
    fields: &[FieldDef],
    segment: Option<&domain::Segment>,
    current: Option<&Customer>,
) -> Result<CustomerDraft, ApiError> {
    let schema = CustomerSchema {
        fields,
        segment,
        current_segment_id: current.and_then(|c| c.segment_id.as_deref()),
    };
    Ok(CustomerDraft::parse(body, &schema)?)
}

/// [`parse_draft`] after reading the segment the body names.
pub async fn validate(
    app: &App,
    tenant: &str,
    body: &Value,
    fields: &[FieldDef],
    current: Option<&Customer>,
) -> Result<CustomerDraft, ApiError> {
    let segment = named_segment(app, tenant, body).await?;
    parse_draft(body, fields, segment.as_ref(), current)
}

async fn create(app: &App, call: Call) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    // Two rounds before the write: the definitions and the segment at once.
    let (fields, segment) = tokio::try_join!(
        async { Ok::<_, ApiError>(app.store.list_fields(&call.tenant).await?) },
        named_segment(app, &call.tenant, &body),
    )?;
    let draft = parse_draft(&body, &fields, segment.as_ref(), None)?;
    let id = draft.id.clone().unwrap_or_else(domain::ids::new_id);
    let customer = draft.into_customer(id, Utc::now());
    app.store
        .save_customer(&call.tenant, None, &customer, &fields)
        .await?;
    created(customer, &fields)
}

fn created(customer: Customer, fields: &[FieldDef]) -> Result<Reply, ApiError> {
    Reply::created(
        format!("/customers/{}", customer.id),
        &customer.to_visible(fields),
        customer.version,
    )
}

async fn find(app: &App, call: &Call) -> Result<Option<Customer>, ApiError> {
    Ok(app.store.get_customer(&call.tenant, call.param(0)).await?)
}

pub async fn load(app: &App, call: &Call) -> Result<Customer, ApiError> {
    find(app, call)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer `{}` not found", call.param(0))))
}

async fn get(app: &App, call: Call) -> Result<Reply, ApiError> {
    let customer = load(app, &call).await?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let version = customer.version;
    Reply::entity(StatusCode::OK, &customer.visible(&fields), version)
}

/// The customer's cluster values, each with the rule and module version that set it
/// (`null` when a client did), and the failures of the last rule evaluation.
async fn clusters(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let customer = load(app, &call).await?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let sources = customer.cluster_sources.clone();
    let errors = customer.rule_errors.clone();
    let version = customer.version;
    let visible = customer.visible(&fields);
    let clusters: serde_json::Map<String, Value> = fields
        .iter()
        .filter(|f| f.cluster)
        .filter_map(|f| {
            let value = visible.fields.get(&f.name)?;
            let source = sources.get(&f.name);
            Some((
                f.name.clone(),
                serde_json::json!({ "value": value, "source": source }),
            ))
        })
        .collect();
    Reply::entity(
        StatusCode::OK,
        &serde_json::json!({
            "customer_id": visible.id,
            "segment_id": visible.segment_id,
            "written_by": visible.written_by,
            "clusters": clusters,
            "rule_errors": errors,
        }),
        version,
    )
}

/// PUT creates the customer under the path's id (201) or replaces it (200).
async fn replace(app: &App, call: Call) -> Result<Reply, ApiError> {
    let mut body = call.json_body()?;
    let id = call.param(0).to_owned();
    reject_identity_change(&body, "id", &id)?;
    if let Value::Object(object) = &mut body {
        object.insert("id".into(), Value::String(id));
    }
    // The customer, the definitions and the segment, all at once.
    let (current, fields, segment) = tokio::try_join!(
        find(app, &call),
        async { Ok::<_, ApiError>(app.store.list_fields(&call.tenant).await?) },
        named_segment(app, &call.tenant, &body),
    )?;
    match &current {
        Some(current) => call.check_if_match(current.version)?,
        // A precondition on a resource that does not exist cannot hold (RFC 9110).
        None if call.headers.contains_key("if-match") => return Err(ApiError::PreconditionFailed),
        None => {}
    }
    let draft = parse_draft(&body, &fields, segment.as_ref(), current.as_ref())?;
    match current {
        Some(current) => save_replacement(app, &call, &current, draft, &fields).await,
        None => {
            let customer = draft.into_customer(call.param(0).to_owned(), Utc::now());
            app.store
                .save_customer(&call.tenant, None, &customer, &fields)
                .await?;
            created(customer, &fields)
        }
    }
}

/// PATCH merges the body into the customer as clients see it, then validates the result
/// like a PUT.
async fn update(app: &App, call: Call) -> Result<Reply, ApiError> {
    let patch = call.json_body()?;
    let (current, fields) = tokio::try_join!(load(app, &call), async {
        Ok::<_, ApiError>(app.store.list_fields(&call.tenant).await?)
    })?;
    call.check_if_match(current.version)?;
    reject_identity_change(&patch, "id", &current.id)?;
    let mut document = serde_json::to_value(current.to_visible(&fields))
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    merge_patch(&mut document, &patch);
    let draft = validate(app, &call.tenant, &document, &fields, Some(&current)).await?;
    save_replacement(app, &call, &current, draft, &fields).await
}

async fn save_replacement(
    app: &App,
    call: &Call,
    current: &Customer,
    draft: CustomerDraft,
    fields: &[FieldDef],
) -> Result<Reply, ApiError> {
    let updated = current.replaced(draft, Utc::now());
    app.store
        .save_customer(&call.tenant, Some(current), &updated, fields)
        .await?;
    let version = updated.version;
    Reply::entity(StatusCode::OK, &updated.visible(fields), version)
}

async fn delete(app: &App, call: Call) -> Result<Reply, ApiError> {
    let current = load(app, &call).await?;
    call.check_if_match(current.version)?;
    let fields = app.store.list_fields(&call.tenant).await?;
    app.store
        .delete_customer(&call.tenant, &current, &fields)
        .await?;
    Ok(Reply::no_content())
}
