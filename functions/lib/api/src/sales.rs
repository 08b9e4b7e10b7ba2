//! `/customers/{id}/sales` and `/reports/annual-sales`: sales recorded once per
//! reference, and the Annual Sales Summary per Customer read from the yearly totals.

use chrono::Utc;
use domain::report;
use domain::{SaleDraft, Violations};
use lambda_http::http::StatusCode;
use lambda_http::http::header::{ACCEPT, LOCATION};
use serde_json::json;
use store::{CustomerFilter, PageKey, SaleRecorded};

use crate::customers::load;
use crate::doc::{Body, CURSOR, Doc, LIMIT, json, of, page};
use crate::http::{CSV_UTF8, Call, Reply};
use crate::listing::{CLUSTER_PREFIX, MATCH, SEGMENT, target};
use crate::problem::ApiError;
use crate::route::Function::{Customers, Reports};
use crate::route::Route;
use crate::{App, handler};

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Customers,
        "POST",
        "/customers/{id}/sales",
        Doc::new(
            "RecordSale",
            "Record a sale once per reference; updates the customer's monthly totals",
        )
        .takes(json::<schema::SaleDraft>())
        .answers(201, json::<domain::Sale>())
        .links(&[(&["ListSales"], &[("id", "$request.path.id")])]),
        handler!(record),
    ),
    Route::new(
        Customers,
        "GET",
        "/customers/{id}/sales",
        Doc::new(
            "ListSales",
            "A customer's sales in date order, optionally of one year",
        )
        .query(&[("year", "Only sales of this year"), LIMIT, CURSOR])
        .answers(200, page::<domain::Sale>("SalePage")),
        handler!(list),
    ),
    Route::new(
        Reports,
        "GET",
        "/reports/annual-sales",
        Doc::new(
            "AnnualSalesReport",
            "Annual Sales Summary per Customer: monthly and year totals, by total (JSON or CSV)",
        )
        .query(&[
            ("year", "The year, e.g. 2026 (required)"),
            (
                "currency",
                "ISO 4217 code; optional when the year's sales are in one currency",
            ),
            SEGMENT,
            MATCH,
            (
                "format",
                "`json` (default) or `csv` (also chosen by Accept: text/csv)",
            ),
            (
                "limit",
                "Rows per page: 1 to 100 for JSON (default 50), up to 10,000 for CSV",
            ),
            CURSOR,
        ])
        .answers(200, Body::JsonOrCsv(of::<schema::AnnualSalesReport>())),
        handler!(annual_report),
    ),
];

/// The bodies as the OpenAPI document describes them.
mod schema {
    #![allow(dead_code)]

    /// Body of `POST /customers/{id}/sales`.
    #[derive(utoipa::ToSchema)]
    pub struct SaleDraft {
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

    /// `GET /reports/annual-sales` as JSON.
    #[derive(utoipa::ToSchema)]
    pub struct AnnualSalesReport {
        year: String,
        /// `null` when the tenant recorded no sales that year.
        currency: Option<String>,
        items: Vec<domain::report::AnnualSalesRow>,
        next_cursor: Option<String>,
    }
}

/// Rows of one CSV answer: a spreadsheet-sized year fits in one response (well under
/// the 6 MB Lambda payload limit); more continue through the `Link` header.
const MAX_CSV_ROWS: usize = 10_000;

/// `POST /customers/{id}/sales`: 201 for a new reference, 200 with the stored sale when
/// the same sale is posted again (a safe retry), 409 when the reference was used for a
/// different sale.
async fn record(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&[], &[])?;
    let body = call.json_body()?;
    let customer = load(app, &call).await?;
    let draft = SaleDraft::parse(&body)?;
    let sale = draft.clone().into_sale(customer.id.clone(), Utc::now());
    match app.store.record_sale(&call.tenant, &sale).await? {
        SaleRecorded::Created => Ok(Reply::json(StatusCode::CREATED, &sale)?.header(
            LOCATION,
            format!("/customers/{}/sales?year={}", customer.id, sale.year()),
        )),
        SaleRecorded::AlreadyRecorded(stored) if stored.same_as(&draft) => {
            Reply::json(StatusCode::OK, &stored)
        }
        SaleRecorded::AlreadyRecorded(stored) => Err(ApiError::Conflict {
            detail: format!(
                "reference `{}` is already recorded for another sale",
                stored.reference
            ),
            extra: Some(("sale", json!(stored))),
        }),
    }
}

/// `GET /customers/{id}/sales[?year=]`, in date order.
async fn list(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&["year", "limit", "cursor"], &[])?;
    let customer = load(app, &call).await?;
    let year = call.query("year").map(parse_year).transpose()?;
    let scope = format!("sales/{}?year={year:?}", customer.id);
    let page = app
        .store
        .list_sales(
            &call.tenant,
            &customer.id,
            year,
            call.limit()?,
            call.page_start(app, &scope)?,
        )
        .await?;
    Reply::page(app, &call, &scope, page)
}

fn parse_year(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>()
        .ok()
        .filter(|y| (1970..=9999).contains(y))
        .ok_or_else(|| ApiError::BadRequest("year must be a year like 2026".into()))
}

/// `GET /reports/annual-sales?year=YYYY[&currency=]`, optionally for a target
/// (`&segment=`, `&cluster.<field>=`, `&match=`, as in the customer listing).
///
/// Reads one totals item per customer with sales in the year (the year's partition, or
/// the target's members), never the sales: the cost follows the customers in the result.
/// Sorted by total, highest first; JSON pages of up to 100 rows, or CSV
/// (`Accept: text/csv` or `?format=csv`) of up to 10,000 rows per response.
async fn annual_report(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(
        &[
            "year", "currency", "segment", "match", "format", "limit", "cursor",
        ],
        &[CLUSTER_PREFIX],
    )?;
    let year = parse_year(
        call.query("year")
            .ok_or_else(|| ApiError::BadRequest("year is required".into()))?,
    )?;
    let csv = wants_csv(&call)?;
    // The definitions (for the target) and the year's currency at once: neither needs
    // the other.
    let (fields, currency) = tokio::try_join!(
        async { Ok::<_, ApiError>(app.store.list_fields(&call.tenant).await?) },
        currency(app, &call, year),
    )?;
    let target = target(&call, &fields, None)?;
    // Bound to the query as asked (before the currency is resolved), so a cursor is
    // checked even when the answer turns out empty. A single filter keeps the scope it
    // always had.
    let filter = match CustomerFilter::single(&target) {
        Some(single) => format!("{single:?}"),
        None => target.canonical_query(),
    };
    let scope = format!(
        "report/annual-sales?year={year}&currency={:?}&filter={filter}",
        call.query("currency").map(str::to_ascii_uppercase)
    );
    let offset = match call.page_start(app, &scope)? {
        None => 0,
        Some(key) => key
            .0
            .get("offset")
            .and_then(|o| o.parse::<usize>().ok())
            .ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?,
    };
    let Some(currency) = currency else {
        return answer(&call, csv, "", Vec::new(), None);
    };
    let mut totals = if target.is_everyone() {
        app.store.year_totals(&call.tenant, year, &currency).await?
    } else {
        let ids = app
            .store
            .target_members(&call.tenant, &target, &fields)
            .await?;
        app.store
            .year_totals_of(&call.tenant, year, &currency, &ids)
            .await?
    };
    report::rank(&mut totals);

    let limit = if csv {
        call.limit_within(MAX_CSV_ROWS, MAX_CSV_ROWS)?
    } else {
        call.limit()?
    };
    let page: Vec<_> = totals.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + page.len() < totals.len()).then(|| {
        let key = PageKey([("offset".to_owned(), (offset + page.len()).to_string())].into());
        app.cursors.encode(&call.tenant, &scope, key)
    });
    let ids: Vec<String> = page.iter().map(|t| t.customer_id.clone()).collect();
    let customers = app.store.get_customers(&call.tenant, &ids).await?;
    let segments = app.store.all_segments(&call.tenant).await?;
    let rows = report::rows(&page, &customers, &segments);
    answer(&call, csv, &currency, rows, next)
}

fn answer(
    call: &Call,
    csv: bool,
    currency: &str,
    rows: Vec<report::AnnualSalesRow>,
    next: Option<String>,
) -> Result<Reply, ApiError> {
    if !csv {
        return Reply::json(
            StatusCode::OK,
            &json!({
                "year": call.query("year"),
                "currency": (!currency.is_empty()).then_some(currency),
                "items": rows,
                "next_cursor": next,
            }),
        );
    }
    Ok(
        Reply::text(StatusCode::OK, CSV_UTF8, report::to_csv(&rows)).next_link(
            "/reports/annual-sales",
            call,
            next,
        ),
    )
}

/// CSV when `?format=csv` or when the client accepts `text/csv` (and not JSON first).
fn wants_csv(call: &Call) -> Result<bool, ApiError> {
    match call.query("format") {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be `json` or `csv`, not `{other}`"
            )));
        }
        None => {}
    }
    let accept = call
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let first = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or_default().trim())
        .find(|media| *media == "text/csv" || *media == "application/json");
    Ok(first == Some("text/csv"))
}

/// The report's currency: the one asked for, or the only one the tenant sold in that
/// year; `None` when it sold nothing. Totals in different currencies are never added.
async fn currency(app: &App, call: &Call, year: i32) -> Result<Option<String>, ApiError> {
    if let Some(asked) = call.query("currency") {
        let asked = asked.to_ascii_uppercase();
        if asked.len() != 3 || !asked.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ApiError::BadRequest(
                "currency must be a three-letter ISO 4217 code".into(),
            ));
        }
        return Ok(Some(asked));
    }
    let sold_in = app.store.sales_currencies(&call.tenant, year).await?;
    match sold_in.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        several => Err(Violations::one(
            "/currency",
            format!(
                "sales of {year} are in {}; choose one with ?currency=",
                several.join(", ")
            ),
        )
        .into()),
    }
}
