//! The OpenAPI 3.1 description, built from the route table (paths, methods, summaries)
//! and the domain types' schemas (utoipa derives), so it cannot drift from what is served.

use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::ComponentsBuilder;

use crate::routes::{Op, ROUTES};

/// Body of `POST /segments` (and the result of merging a PATCH).
#[allow(dead_code)]
#[derive(ToSchema)]
struct SegmentInput {
    /// Unique per tenant, case-insensitive; at most 64 characters.
    name: String,
    /// Defaults to `active`.
    status: Option<domain::SegmentStatus>,
    description: Option<String>,
}

/// Body of `POST /fields`.
#[allow(dead_code)]
#[derive(ToSchema)]
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
    default: Option<Value>,
    /// Fixed at creation. Only string, integer, boolean and enum fields can be clusters.
    cluster: Option<bool>,
    max_length: Option<u32>,
}

/// Body of `POST /customers` and `PUT /customers/{id}`.
#[allow(dead_code)]
#[derive(ToSchema)]
struct CustomerInput {
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

/// Body of `PUT /rules/{name}` (and the result of merging a PATCH).
#[allow(dead_code)]
#[derive(ToSchema)]
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
#[derive(ToSchema)]
struct RuleTestInput {
    customer: Option<CustomerInput>,
    customer_id: Option<String>,
    /// Defaults to the version that runs.
    version: Option<u32>,
}

/// What the test run did: output, checks, logs and resources used.
#[allow(dead_code)]
#[derive(ToSchema)]
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

/// What each operation takes and returns, for the document.
struct Shape {
    request: Option<&'static str>,
    success: u16,
    response: Option<&'static str>,
    query: &'static [(&'static str, &'static str)],
    conditional: bool,
}

/// Marks the raw `application/wasm` upload body.
const WASM_BODY: &str = "wasm";
/// Marks a `text/csv` body (import) or response (export).
const CSV_BODY: &str = "csv";

const PAGE_QUERY: [(&str, &str); 2] = [
    ("limit", "Page size, 1 to 100 (default 50)"),
    (
        "cursor",
        "Opaque cursor from the previous page's next_cursor",
    ),
];

fn shape(op: Op) -> Shape {
    let shape = |request, success, response| Shape {
        request,
        success,
        response,
        query: &[],
        conditional: false,
    };
    match op {
        Op::ListSegments => Shape {
            query: &[
                (
                    "status",
                    "Only segments with this status: active or inactive",
                ),
                PAGE_QUERY[0],
                PAGE_QUERY[1],
            ],
            ..shape(None, 200, Some("SegmentPage"))
        },
        Op::CreateSegment => shape(Some("SegmentInput"), 201, Some("Segment")),
        Op::GetSegment => shape(None, 200, Some("Segment")),
        Op::UpdateSegment => Shape {
            conditional: true,
            ..shape(Some("SegmentInput"), 200, Some("Segment"))
        },
        Op::DeleteSegment => Shape {
            conditional: true,
            ..shape(None, 204, None)
        },
        Op::ListFields => shape(None, 200, Some("FieldPage")),
        Op::CreateField => shape(Some("FieldInput"), 201, Some("FieldDef")),
        Op::GetField => shape(None, 200, Some("FieldDef")),
        Op::UpdateField => Shape {
            conditional: true,
            ..shape(Some("FieldInput"), 200, Some("FieldDef"))
        },
        Op::DeleteField => Shape {
            conditional: true,
            ..shape(None, 204, None)
        },
        Op::ListCustomers => Shape {
            query: &[
                ("segment", "Only customers of this segment id"),
                ("email", "The customer with this email (case-insensitive)"),
                PAGE_QUERY[0],
                PAGE_QUERY[1],
            ],
            ..shape(None, 200, Some("CustomerPage"))
        },
        Op::CreateCustomer => shape(Some("CustomerInput"), 201, Some("Customer")),
        Op::GetCustomer => shape(None, 200, Some("Customer")),
        Op::ReplaceCustomer => Shape {
            conditional: true,
            ..shape(Some("CustomerInput"), 200, Some("Customer"))
        },
        Op::UpdateCustomer => Shape {
            conditional: true,
            ..shape(Some("CustomerInput"), 200, Some("Customer"))
        },
        Op::DeleteCustomer => Shape {
            conditional: true,
            ..shape(None, 204, None)
        },
        Op::GetCustomerClusters => shape(None, 200, Some("CustomerClusters")),
        Op::ImportCustomers => Shape {
            query: &[(
                "dry_run",
                "`true`: validate and count created/updated/unchanged rows, write nothing",
            )],
            ..shape(Some(CSV_BODY), 200, Some("ImportReport"))
        },
        Op::ExportCustomers => Shape {
            query: &[
                ("segment", "Only customers of this segment id"),
                ("email", "The customer with this email (case-insensitive)"),
                (
                    "limit",
                    "Rows per response, 1 to 10,000 (default 10,000); fewer when rows are large",
                ),
                (
                    "cursor",
                    "Set by the previous response's `Link: <...>; rel=\"next\"` header",
                ),
            ],
            ..shape(None, 200, Some(CSV_BODY))
        },
        Op::RecordSale => shape(Some("SaleDraft"), 201, Some("Sale")),
        Op::ListSales => Shape {
            query: &[
                ("year", "Only sales of this year"),
                PAGE_QUERY[0],
                PAGE_QUERY[1],
            ],
            ..shape(None, 200, Some("SalePage"))
        },
        Op::AnnualSalesReport => Shape {
            query: &[
                ("year", "The year, e.g. 2026 (required)"),
                (
                    "currency",
                    "ISO 4217 code; optional when the year's sales are in one currency",
                ),
                ("segment", "Only customers of this segment id"),
                (
                    "format",
                    "`json` (default) or `csv` (also chosen by Accept: text/csv)",
                ),
                (
                    "limit",
                    "Rows per page: 1 to 100 for JSON (default 50), up to 10,000 for CSV",
                ),
                PAGE_QUERY[1],
            ],
            ..shape(None, 200, Some("AnnualSalesReport"))
        },
        Op::ListClusters => shape(None, 200, Some("ClusterList")),
        Op::ListClusterMembers => Shape {
            query: &[
                (
                    "value",
                    "The cluster value, as in ?cluster.<field>= (required)",
                ),
                PAGE_QUERY[0],
                PAGE_QUERY[1],
            ],
            ..shape(None, 200, Some("CustomerPage"))
        },
        Op::ListRules => shape(None, 200, Some("RulePage")),
        Op::GetRule => shape(None, 200, Some("Rule")),
        Op::PutRule => Shape {
            conditional: true,
            ..shape(Some("RuleInput"), 200, Some("Rule"))
        },
        Op::UpdateRule => Shape {
            conditional: true,
            ..shape(Some("RuleInput"), 200, Some("Rule"))
        },
        Op::DeleteRule => Shape {
            conditional: true,
            ..shape(None, 204, None)
        },
        Op::UploadModule => Shape {
            conditional: true,
            ..shape(Some(WASM_BODY), 201, Some("RuleVersion"))
        },
        Op::ListRuleVersions => shape(None, 200, Some("RuleVersionPage")),
        Op::GetRuleVersion => shape(None, 200, Some("RuleVersion")),
        Op::TestRule => shape(Some("RuleTestInput"), 200, Some("RuleTestReport")),
        Op::StartBackfill => shape(Some("BackfillInput"), 202, Some("BackfillJob")),
        Op::ListBackfills => shape(None, 200, Some("BackfillPage")),
        Op::GetBackfill => shape(None, 200, Some("BackfillJob")),
        Op::ResumeBackfill => shape(None, 202, Some("BackfillJob")),
        Op::OpenApi => shape(None, 200, None),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": schema_ref(item) },
            "next_cursor": { "type": ["string", "null"] }
        }
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string" },
            "code": { "type": "string" },
            "customer_count": { "type": "integer" },
            "errors": { "type": "array", "items": schema_ref("Violation") }
        }
    })
}

fn operation(route: &crate::Route) -> Value {
    let shape = shape(route.op);
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(shape.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    if shape.conditional {
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The ETag last read; 412 when the resource changed since",
            "schema": {"type": "string"}
        }));
    }
    let problem = json!({"application/problem+json": {"schema": schema_ref("Problem")}});
    let mut responses = Map::new();
    let success = match (shape.response, route.op) {
        (Some(name), Op::AnnualSalesReport) => json!({
            "description": "Success",
            "content": {
                "application/json": {"schema": schema_ref(name)},
                "text/csv": {"schema": {"type": "string"}}
            }
        }),
        (Some(CSV_BODY), _) => json!({
            "description": "Core columns, then every field by name; imports back unchanged",
            "headers": {"Link": {
                "description": "`<...>; rel=\"next\"` when more customers follow",
                "schema": {"type": "string"}
            }},
            "content": {"text/csv": {"schema": {"type": "string"}}}
        }),
        (Some(name), _) => json!({
            "description": "Success",
            "content": {"application/json": {"schema": schema_ref(name)}}
        }),
        (None, Op::OpenApi) => json!({
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }),
        (None, _) => json!({"description": "Done"}),
    };
    if matches!(route.op, Op::PutRule | Op::ReplaceCustomer) {
        // Create-or-replace: 201 when the resource did not exist.
        responses.insert("201".into(), success.clone());
    }
    responses.insert(shape.success.to_string(), success);
    if route.op != Op::OpenApi {
        for (status, description) in [
            ("400", "Malformed request"),
            ("401", "No valid tenant token"),
            ("404", "Not found"),
            ("409", "Conflicts with the current state"),
            ("412", "If-Match does not match the current ETag"),
            ("413", "Body too large"),
            ("415", "Body is not JSON"),
            ("422", "Validation failed; every failing property is listed"),
            ("503", "Database unavailable; retry"),
        ] {
            responses.insert(
                status.into(),
                json!({"description": description, "content": problem}),
            );
        }
    }
    let mut operation = json!({
        "operationId": format!("{:?}", route.op),
        "summary": route.summary,
        "tags": [route.function.name()],
        "parameters": parameters,
        "responses": responses,
    });
    if shape.request == Some(WASM_BODY) {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/wasm": {"schema": {"type": "string", "contentMediaType": "application/wasm"}}}
        });
    } else if shape.request == Some(CSV_BODY) {
        operation["requestBody"] = json!({
            "required": true,
            "description": "UTF-8 (BOM optional), `,` or `;` separated, RFC 4180 quoting; \
                a header row of core columns and field names; at most 6,000,000 bytes and \
                10,000 rows",
            "content": {"text/csv": {"schema": {"type": "string"}}}
        });
    } else if let Some(request) = shape.request {
        let media = if matches!(route.method, "PATCH") {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        operation["requestBody"] = json!({
            "required": true,
            "content": {
                media: {"schema": schema_ref(request)},
            }
        });
    }
    if route.authorized {
        operation["security"] = json!([{"tenantJwt": []}]);
    } else {
        operation["security"] = json!([]);
    }
    operation
}

/// Body of `POST /rules/{name}/backfill` (optional).
#[allow(dead_code)]
#[derive(ToSchema)]
struct BackfillInput {
    /// Count what `version` would change, writing nothing.
    dry_run: Option<bool>,
    /// Defaults to the version that runs; a real run always uses that one.
    version: Option<u32>,
}

/// One cluster value of `GET /customers/{id}/clusters`.
#[allow(dead_code)]
#[derive(ToSchema)]
struct ClusterValue {
    /// A string, integer or boolean, as the field's type.
    value: Value,
    /// The rule that set the value; `null` when a client did.
    source: Option<domain::ClusterSource>,
}

/// A customer's cluster values with their provenance, and the last rule failures.
#[allow(dead_code)]
#[derive(ToSchema)]
struct CustomerClusters {
    customer_id: String,
    segment_id: Option<String>,
    written_by: domain::WrittenBy,
    clusters: std::collections::BTreeMap<String, ClusterValue>,
    rule_errors: Vec<domain::RuleFailure>,
}

/// `GET /reports/annual-sales` as JSON.
#[allow(dead_code)]
#[derive(ToSchema)]
struct AnnualSalesReport {
    year: String,
    /// `null` when the tenant recorded no sales that year.
    currency: Option<String>,
    items: Vec<domain::report::AnnualSalesRow>,
    next_cursor: Option<String>,
}

/// One value of a cluster field and how many customers hold it.
#[allow(dead_code)]
#[derive(ToSchema)]
struct ClusterCount {
    /// A string, integer or boolean, as the field's type.
    value: Value,
    count: i64,
}

/// A cluster field in `GET /clusters`.
#[allow(dead_code)]
#[derive(ToSchema)]
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
#[derive(ToSchema)]
struct ClusterList {
    items: Vec<ClusterField>,
}

/// Body of `POST /customers/{id}/sales`.
#[allow(dead_code)]
#[derive(ToSchema)]
struct SaleDraft {
    /// `YYYY-MM-DD`
    date: String,
    /// A decimal with at most 4 decimals, as a string (`"1234.50"`) or a JSON number.
    amount: String,
    /// ISO 4217, e.g. `EUR`.
    currency: String,
    /// The order or invoice number; unique per customer (re-posting it records nothing).
    reference: String,
    description: Option<String>,
}

/// What `POST /customers/import` did, or in a dry run would do.
#[allow(dead_code)]
#[derive(ToSchema)]
struct ImportReport {
    created: usize,
    updated: usize,
    unchanged: usize,
    /// Every row that was not imported, in file order.
    failed: Vec<ImportFailure>,
    dry_run: bool,
    /// Set when the request's time ran out: rows from this line on were not imported.
    stopped_at_line: Option<u64>,
}

/// A row that was not imported and why.
#[allow(dead_code)]
#[derive(ToSchema)]
struct ImportFailure {
    /// 1-based line of the file where the row starts (the header is line 1).
    line: u64,
    /// The customer the row names or matched, when known.
    id: Option<String>,
    errors: Vec<domain::spreadsheet::CellError>,
}

/// The whole document, served at `GET /openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route);
    }
    let components = ComponentsBuilder::new()
        .schema_from::<domain::Segment>()
        .schema_from::<domain::SegmentStatus>()
        .schema_from::<domain::FieldDef>()
        .schema_from::<domain::FieldType>()
        .schema_from::<domain::Customer>()
        .schema_from::<domain::WrittenBy>()
        .schema_from::<domain::ClusterSource>()
        .schema_from::<domain::RuleFailure>()
        .schema_from::<ClusterValue>()
        .schema_from::<CustomerClusters>()
        .schema_from::<domain::Violation>()
        .schema_from::<SegmentInput>()
        .schema_from::<FieldInput>()
        .schema_from::<CustomerInput>()
        .schema_from::<domain::rule::Rule>()
        .schema_from::<domain::rule::RuleLimits>()
        .schema_from::<domain::rule::RuleVersion>()
        .schema_from::<RuleInput>()
        .schema_from::<RuleTestInput>()
        .schema_from::<RuleTestReport>()
        .schema_from::<BackfillInput>()
        .schema_from::<domain::BackfillJob>()
        .schema_from::<domain::BackfillChain>()
        .schema_from::<domain::Progress>()
        .schema_from::<domain::JobState>()
        .schema_from::<domain::StepPhase>()
        .schema_from::<ImportReport>()
        .schema_from::<ImportFailure>()
        .schema_from::<domain::spreadsheet::CellError>()
        .schema_from::<domain::Sale>()
        .schema_from::<SaleDraft>()
        .schema_from::<domain::report::AnnualSalesRow>()
        .schema_from::<domain::report::SegmentColumn>()
        .schema_from::<AnnualSalesReport>()
        .schema_from::<ClusterCount>()
        .schema_from::<ClusterField>()
        .schema_from::<ClusterList>()
        .build();
    let mut schemas = serde_json::to_value(&components.schemas).unwrap_or_default();
    schemas["SegmentPage"] = page_schema("Segment");
    schemas["FieldPage"] = page_schema("FieldDef");
    schemas["CustomerPage"] = page_schema("Customer");
    schemas["RulePage"] = page_schema("Rule");
    schemas["RuleVersionPage"] = page_schema("RuleVersion");
    schemas["BackfillPage"] = page_schema("BackfillJob");
    schemas["SalePage"] = page_schema("Sale");
    schemas["Problem"] = problem_schema();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Customer segmentation API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Segments, custom fields (clusters) and customers, per tenant. \
                The tenant comes from the JWT authorizer's claims."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_every_reference_is_described() {
        let doc = document();
        for route in ROUTES {
            assert!(
                doc["paths"][route.path][route.method.to_ascii_lowercase()].is_object(),
                "{} {} missing",
                route.method,
                route.path
            );
        }
        let text = doc.to_string();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name: String = reference.chars().take_while(|c| *c != '"').collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "{name} undefined"
            );
        }
    }
}
