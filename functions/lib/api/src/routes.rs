//! The one route table. The Lambda functions, the local server, the OpenAPI document
//! and the template check all read it, so they cannot disagree about what is served.

use crate::problem::ApiError;

/// The Lambda function that serves a route on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Segments,
    Fields,
    Customers,
    /// Rule modules; the only function that embeds wasmtime.
    Rules,
    /// Reports that read many customers' totals at once (more memory, longer timeout).
    Reports,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Self::Segments,
        Self::Fields,
        Self::Customers,
        Self::Rules,
        Self::Reports,
    ];

    /// The binary (and crate) name of the function.
    pub fn name(self) -> &'static str {
        match self {
            Self::Segments => "segments",
            Self::Fields => "fields",
            Self::Customers => "customers",
            Self::Rules => "rules-api",
            Self::Reports => "reports",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListSegments,
    CreateSegment,
    GetSegment,
    UpdateSegment,
    DeleteSegment,
    ListFields,
    CreateField,
    GetField,
    UpdateField,
    DeleteField,
    ListCustomers,
    CreateCustomer,
    GetCustomer,
    ReplaceCustomer,
    UpdateCustomer,
    DeleteCustomer,
    GetCustomerClusters,
    ImportCustomers,
    ExportCustomers,
    RecordSale,
    ListSales,
    AnnualSalesReport,
    ListClusters,
    ListClusterMembers,
    ListRules,
    GetRule,
    PutRule,
    UpdateRule,
    DeleteRule,
    UploadModule,
    ListRuleVersions,
    GetRuleVersion,
    TestRule,
    StartBackfill,
    ListBackfills,
    GetBackfill,
    ResumeBackfill,
    OpenApi,
}

impl Op {
    /// Whether a request without `If-Match` that loses a version race is applied again
    /// to the newer state: every write but the import, which retries each row itself
    /// (re-running the file would apply rows twice). Reads never race.
    pub fn retries_on_conflict(self) -> bool {
        !matches!(
            self,
            Op::ImportCustomers
                | Op::ListSegments
                | Op::GetSegment
                | Op::ListFields
                | Op::GetField
                | Op::ListCustomers
                | Op::GetCustomer
                | Op::GetCustomerClusters
                | Op::ExportCustomers
                | Op::ListSales
                | Op::AnnualSalesReport
                | Op::ListClusters
                | Op::ListClusterMembers
                | Op::ListRules
                | Op::GetRule
                | Op::ListRuleVersions
                | Op::GetRuleVersion
                | Op::TestRule
                | Op::ListBackfills
                | Op::GetBackfill
                | Op::OpenApi
        )
    }
}

pub struct Route {
    pub method: &'static str,
    /// API Gateway route syntax: `{name}` matches one path segment.
    pub path: &'static str,
    pub function: Function,
    pub op: Op,
    pub summary: &'static str,
    /// Whether the JWT authorizer guards the route (all but the API description).
    pub authorized: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    function: Function,
    op: Op,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        function,
        op,
        summary,
        authorized: true,
    }
}

use Function::{Customers, Fields, Reports, Rules, Segments};

pub const ROUTES: &[Route] = &[
    route(
        "GET",
        "/segments",
        Segments,
        Op::ListSegments,
        "List segments",
    ),
    route(
        "POST",
        "/segments",
        Segments,
        Op::CreateSegment,
        "Create a segment",
    ),
    route(
        "GET",
        "/segments/{id}",
        Segments,
        Op::GetSegment,
        "Get a segment",
    ),
    route(
        "PATCH",
        "/segments/{id}",
        Segments,
        Op::UpdateSegment,
        "Change a segment (JSON merge patch)",
    ),
    route(
        "DELETE",
        "/segments/{id}",
        Segments,
        Op::DeleteSegment,
        "Delete an unused segment",
    ),
    route(
        "GET",
        "/fields",
        Fields,
        Op::ListFields,
        "List custom field definitions",
    ),
    route(
        "POST",
        "/fields",
        Fields,
        Op::CreateField,
        "Define a custom field",
    ),
    route(
        "GET",
        "/fields/{name}",
        Fields,
        Op::GetField,
        "Get a field definition",
    ),
    route(
        "PATCH",
        "/fields/{name}",
        Fields,
        Op::UpdateField,
        "Change a field definition compatibly (JSON merge patch)",
    ),
    route(
        "DELETE",
        "/fields/{name}",
        Fields,
        Op::DeleteField,
        "Delete a field definition",
    ),
    route(
        "GET",
        "/customers",
        Customers,
        Op::ListCustomers,
        "List customers, optionally by segment, email or cluster value",
    ),
    route(
        "POST",
        "/customers",
        Customers,
        Op::CreateCustomer,
        "Create a customer",
    ),
    // Literal paths before `/customers/{id}`, so they win as they do on API Gateway.
    route(
        "POST",
        "/customers/import",
        Customers,
        Op::ImportCustomers,
        "Create or update customers from a CSV file; reports every row that failed",
    ),
    route(
        "GET",
        "/customers/export",
        Customers,
        Op::ExportCustomers,
        "The customers a listing filter selects, as CSV that imports back unchanged",
    ),
    route(
        "GET",
        "/customers/{id}",
        Customers,
        Op::GetCustomer,
        "Get a customer",
    ),
    route(
        "PUT",
        "/customers/{id}",
        Customers,
        Op::ReplaceCustomer,
        "Create or replace a customer",
    ),
    route(
        "PATCH",
        "/customers/{id}",
        Customers,
        Op::UpdateCustomer,
        "Change a customer (JSON merge patch)",
    ),
    route(
        "DELETE",
        "/customers/{id}",
        Customers,
        Op::DeleteCustomer,
        "Delete a customer",
    ),
    route(
        "GET",
        "/customers/{id}/clusters",
        Customers,
        Op::GetCustomerClusters,
        "A customer's cluster values, which rule set each, and the last rule errors",
    ),
    route(
        "POST",
        "/customers/{id}/sales",
        Customers,
        Op::RecordSale,
        "Record a sale once per reference; updates the customer's monthly totals",
    ),
    route(
        "GET",
        "/customers/{id}/sales",
        Customers,
        Op::ListSales,
        "A customer's sales in date order, optionally of one year",
    ),
    route(
        "GET",
        "/reports/annual-sales",
        Reports,
        Op::AnnualSalesReport,
        "Annual Sales Summary per Customer: monthly and year totals, by total (JSON or CSV)",
    ),
    route(
        "GET",
        "/clusters",
        Fields,
        Op::ListClusters,
        "Every cluster field with its number of customers per value",
    ),
    route(
        "GET",
        "/clusters/{field}/members",
        Fields,
        Op::ListClusterMembers,
        "The customers in one cluster (`?value=`)",
    ),
    route(
        "GET",
        "/rules",
        Rules,
        Op::ListRules,
        "List rules in evaluation order",
    ),
    route("GET", "/rules/{name}", Rules, Op::GetRule, "Get a rule"),
    route(
        "PUT",
        "/rules/{name}",
        Rules,
        Op::PutRule,
        "Create or replace a rule's configuration",
    ),
    route(
        "PATCH",
        "/rules/{name}",
        Rules,
        Op::UpdateRule,
        "Change a rule: enable, disable, pin a version (JSON merge patch)",
    ),
    route(
        "DELETE",
        "/rules/{name}",
        Rules,
        Op::DeleteRule,
        "Delete a rule and its versions",
    ),
    route(
        "PUT",
        "/rules/{name}/module",
        Rules,
        Op::UploadModule,
        "Upload a WebAssembly module as the rule's next version",
    ),
    route(
        "GET",
        "/rules/{name}/versions",
        Rules,
        Op::ListRuleVersions,
        "List a rule's module versions",
    ),
    route(
        "GET",
        "/rules/{name}/versions/{number}",
        Rules,
        Op::GetRuleVersion,
        "Get one module version",
    ),
    route(
        "POST",
        "/rules/{name}/test",
        Rules,
        Op::TestRule,
        "Run a rule on a customer without writing anything",
    ),
    route(
        "POST",
        "/rules/{name}/backfill",
        Rules,
        Op::StartBackfill,
        "Re-evaluate every customer, or count what a version would change (dry run)",
    ),
    route(
        "GET",
        "/rules/{name}/backfill",
        Rules,
        Op::ListBackfills,
        "A rule's backfill jobs, newest first",
    ),
    route(
        "GET",
        "/rules/{name}/backfill/{job}",
        Rules,
        Op::GetBackfill,
        "A backfill job's progress and counts",
    ),
    route(
        "POST",
        "/rules/{name}/backfill/{job}/resume",
        Rules,
        Op::ResumeBackfill,
        "Re-drive the running chains of a job whose steps were given up on",
    ),
    Route {
        method: "GET",
        path: "/openapi.json",
        function: Customers,
        op: Op::OpenApi,
        summary: "This API's OpenAPI 3.1 description",
        authorized: false,
    },
];

/// Finds the route for a request, with its path parameters. `only` restricts the
/// search to one function's routes (what that Lambda is wired to on AWS).
pub fn find(
    method: &str,
    path: &str,
    only: Option<Function>,
) -> Result<(&'static Route, Vec<String>), ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut allowed = Vec::new();
    for route in ROUTES
        .iter()
        .filter(|r| only.is_none_or(|f| r.function == f))
    {
        let Some(params) = match_path(route.path, &segments) else {
            continue;
        };
        if route.method == method {
            return Ok((route, params));
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound(format!("no route for {path}")))
    } else {
        Err(ApiError::MethodNotAllowed { allowed })
    }
}

fn match_path(pattern: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.split('/').skip(1).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push((*segment).to_owned());
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_api_gateway() {
        let (route, params) = find("GET", "/customers/c-1", None).unwrap();
        assert_eq!(route.op, Op::GetCustomer);
        assert_eq!(params, ["c-1"]);
        assert!(matches!(
            find("POST", "/customers/c-1", None),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            find("GET", "/nope", None),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            find("GET", "/customers", Some(Function::Segments)),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(find("GET", "/segments//", None), Ok((r, _)) if r.op == Op::ListSegments));
    }

    #[test]
    fn literal_customer_paths_win_over_the_id_parameter() {
        let (route, params) = find("POST", "/customers/import", None).unwrap();
        assert_eq!((route.op, params.len()), (Op::ImportCustomers, 0));
        let (route, _) = find("GET", "/customers/export", Some(Function::Customers)).unwrap();
        assert_eq!(route.op, Op::ExportCustomers);
        assert!(!Op::ImportCustomers.retries_on_conflict());
        assert!(!Op::ExportCustomers.retries_on_conflict());
        assert!(Op::ReplaceCustomer.retries_on_conflict());
    }
}
