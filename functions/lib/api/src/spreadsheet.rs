//! `POST /customers/import` and `GET /customers/export`: customers as spreadsheet rows,
//! CSV or workbooks. Reading rows and writing CSV is the domain's (`domain::spreadsheet`),
//! reading and writing workbooks the [`Workbooks`] the function was given (the
//! `workbook` crate; without one, workbooks are refused); this module matches rows with
//! stored customers, validates them like `PUT`/`PATCH`, and writes each customer with
//! its own transaction, a few rows at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::field::is_valid_email;
use domain::ids::{is_valid_entity_id, new_id};
use domain::spreadsheet::{
    self, CellError, CsvWriter, Export, ImportError, ImportRow, RowWriter, WorkbookFormat,
    Workbooks,
};
use domain::{Customer, CustomerDraft, CustomerSchema, FieldDef, Segment, merge_patch};
use futures_util::stream::{self, StreamExt};
use lambda_http::http::StatusCode;
use lambda_http::http::header::{ACCEPT, CONTENT_DISPOSITION};
use serde::Serialize;
use serde_json::{Value, json};
use store::StoreError;

use crate::doc::{Body, Doc, json};
use crate::http::{CSV_UTF8, Call, Reply};
use crate::listing::{CLUSTER_PREFIX, MATCH, SEGMENT, Selection, listing_scope, selection};
use crate::problem::ApiError;
use crate::route::{Function::Customers, Route};
use crate::{App, handler};

/// Import bodies above this are refused with 413: a synchronous Lambda invocation
/// carries at most 6 MB (6,291,456 bytes), and the API Gateway event around the body
/// needs some of it.
pub const MAX_IMPORT_BODY: usize = 6_000_000;
/// Workbook bodies above this are refused with 413: API Gateway hands a binary body to
/// the function base64-encoded, a third larger, in the same 6 MB (4,500,000 bytes are
/// 6,000,000 in base64).
pub const MAX_WORKBOOK_BODY: usize = 4_500_000;
/// Rows per import request; the same as an export response, so every exported file
/// imports back in one request.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// Rows per export response (`?limit=` asks for fewer); the rest follow the `Link`.
pub const MAX_EXPORT_ROWS: usize = 10_000;
/// An export response stops growing past this many bytes (a Lambda response carries
/// at most 6 MB), whatever the row count.
const EXPORT_BYTES: usize = 4_000_000;
/// The same for an xlsx export, counted as the rows would take as CSV: the workbook is
/// compressed, but it goes back base64-encoded, a third larger, and text that does not
/// compress (ids, emails) costs about as much as in CSV.
const XLSX_EXPORT_BYTES: usize = 3_000_000;
/// Customers per store page while exporting (a filtered page is one BatchGetItem).
const STORE_PAGE: usize = 100;
/// Rows read, decided and written together: a batch's reads go first, then its rows are
/// decided in file order, then its writes go [`ROWS_IN_FLIGHT`] at a time. A batch ends
/// early before a row naming an id or an email an earlier row of the batch names, so
/// such rows are read and written one after the other, in file order, never at once.
const CHUNK: usize = 64;
/// Reads (a row's customers, a segment) in flight at once.
const READS_IN_FLIGHT: usize = 16;
/// Row writes in flight at once. Each row writes only its own customer's items, and the
/// rows of a batch name different customers, so they do not contend.
const ROWS_IN_FLIGHT: usize = 16;
/// Attempts at a row whose customer changes between read and write.
const ROW_ATTEMPTS: usize = 4;
/// After this long an import writes no further row and reports where it stopped (the
/// function's timeout is 15 s). `IMPORT_TIME_BUDGET_MS` changes it (tests).
const TIME_BUDGET: Duration = Duration::from_secs(10);

pub const CSV_MEDIA_TYPE: &str = "text/csv";
pub const XLSX_MEDIA_TYPE: &str = WorkbookFormat::Xlsx.media_type();

pub(crate) const ROUTES: &[Route<App>] = &[
    Route::new(
        Customers,
        "POST",
        "/customers/import",
        Doc::new(
            "ImportCustomers",
            "Create or update customers from a CSV file or a workbook (xlsx, xls, ods); \
             reports every row that failed",
        )
        .query(&[
            (
                "dry_run",
                "`true`: validate and count created/updated/unchanged rows, write nothing",
            ),
            (
                "sheet",
                "The sheet of a workbook to read (default: the first); not for CSV",
            ),
        ])
        .takes(Body::Csv)
        .answers(200, json::<ImportReport>())
        // Re-running the file after a lost race would apply rows twice; each row
        // retries itself.
        .no_retry(),
        handler!(import),
    ),
    Route::new(
        Customers,
        "GET",
        "/customers/export",
        Doc::new(
            "ExportCustomers",
            "The customers a listing filter selects, as CSV or an xlsx workbook that \
             imports back unchanged",
        )
        .query(&[
            SEGMENT,
            ("email", "The customer with this email (case-insensitive)"),
            MATCH,
            (
                "limit",
                "Rows per response, 1 to 10,000 (default 10,000); fewer when rows are large",
            ),
            (
                "cursor",
                "Set by the previous response's `Link: <...>; rel=\"next\"` header",
            ),
            (
                "format",
                "`csv` (the default) or `xlsx`; without it, an `Accept` that prefers the xlsx \
                 media type gets xlsx",
            ),
        ])
        .answers(200, Body::Csv),
        handler!(export),
    ),
];

/// What `POST /customers/import` did, or in a dry run would do.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
struct ImportReport {
    created: usize,
    updated: usize,
    unchanged: usize,
    /// Every row that was not imported, in file order.
    failed: Vec<FailedRow>,
    dry_run: bool,
    /// Set when the request's time ran out: rows from this line on were not imported
    /// (nor counted); post them again.
    stopped_at_line: Option<u64>,
}

/// A row that was not imported and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ImportFailure)]
struct FailedRow {
    /// 1-based line of the file where the row starts (the header is line 1).
    line: u64,
    /// The customer the row names or matched, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    errors: Vec<CellError>,
}

/// The stored customers a row may touch.
#[derive(Default)]
struct Lookup {
    /// The customer the row updates: the one with its id, else the one with its email.
    current: Option<Customer>,
    /// When the row names an id and an email: the customer holding that email, if it is
    /// not the row's own.
    email_holder: Option<Customer>,
}

/// What one row comes to.
enum Decision {
    Failed {
        id: Option<String>,
        errors: Vec<CellError>,
    },
    Unchanged(String),
    Create(Box<Customer>),
    Update {
        current: Box<Customer>,
        next: Box<Customer>,
    },
}

impl Decision {
    /// The customer the row writes (or leaves as it is).
    fn target(&self) -> Option<&str> {
        match self {
            Self::Failed { .. } => None,
            Self::Unchanged(id) => Some(id),
            Self::Create(customer) | Self::Update { next: customer, .. } => Some(&customer.id),
        }
    }
}

struct Import<'a> {
    app: &'a App,
    tenant: &'a str,
    fields: &'a [FieldDef],
    /// Segments read so far (each once, give or take a race between two rows).
    segments: Mutex<HashMap<String, Option<Segment>>>,
}

/// `POST /customers/import[?dry_run=true][&sheet=NAME]` with a CSV or workbook body:
/// upserts every valid row and reports the rest by line (a workbook's row number).
async fn import(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(&["dry_run", "sheet"], &[])?;
    let dry_run = match call.query("dry_run") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("dry_run must be true or false".into())),
    };
    let upload = import_media_type(app, &call)?;
    let limit = match upload {
        Upload::Csv => MAX_IMPORT_BODY,
        Upload::Workbook(..) => MAX_WORKBOOK_BODY,
    };
    if call.body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let sheet = call.query("sheet");
    if matches!(upload, Upload::Csv) && sheet.is_some() {
        return Err(ApiError::BadRequest(
            "sheet picks a sheet of a workbook; a CSV file has only one".into(),
        ));
    }
    let deadline = Instant::now() + time_budget();
    let fields = app.store.list_fields(&call.tenant).await?;
    let file = match upload {
        Upload::Csv => spreadsheet::read_csv(&call.body, &fields, MAX_IMPORT_ROWS),
        Upload::Workbook(workbooks, format) => spreadsheet::read_workbook(
            workbooks,
            format,
            &call.body,
            sheet,
            &fields,
            MAX_IMPORT_ROWS,
        ),
    }
    .map_err(|err| match err {
        ImportError::Unreadable(detail) => ApiError::BadRequest(detail),
        ImportError::Header(violations) => ApiError::Validation(violations),
        too_many @ ImportError::TooManyRows { .. } => {
            ApiError::TooMuchContent(too_many.to_string())
        }
    })?;
    let import = Import {
        app,
        tenant: &call.tenant,
        fields: &fields,
        segments: Mutex::new(HashMap::new()),
    };
    let mut report = ImportReport {
        dry_run,
        ..ImportReport::default()
    };
    // Customers an earlier row of the file already imports, with that row's line.
    let mut claimed: HashMap<String, u64> = HashMap::new();
    // Every request writes at least one row before the budget can stop it, so an
    // import re-posted from `stopped_at_line` always makes progress.
    let mut wrote_any = false;
    let mut rest = &file.rows[..];
    'rows: while !rest.is_empty() {
        let (chunk, after) = rest.split_at(batch_len(rest));
        rest = after;
        if wrote_any && Instant::now() >= deadline {
            report.stopped_at_line = Some(chunk[0].line);
            break;
        }
        let reads: Vec<_> = chunk
            .iter()
            .map(|row| lookup(app, &call.tenant, row))
            .collect();
        let lookups: Vec<Result<Lookup, ApiError>> = stream::iter(reads)
            .buffered(READS_IN_FLIGHT)
            .collect()
            .await;
        let lookups = lookups.into_iter().collect::<Result<Vec<_>, _>>()?;
        import.load_segments(chunk, &lookups).await?;
        let mut decisions = Vec::with_capacity(chunk.len());
        for (row, found) in chunk.iter().zip(lookups) {
            let mut decision = import.decide(row, found).await?;
            if let Some(target) = decision.target()
                && let Some(first) = claimed.get(target)
            {
                decision = Decision::Failed {
                    id: Some(target.to_owned()),
                    errors: vec![CellError {
                        column: None,
                        detail: format!("line {first} already imports customer `{target}`"),
                    }],
                };
            }
            if let Some(target) = decision.target() {
                claimed.insert(target.to_owned(), row.line);
            }
            decisions.push(decision);
        }
        // The writes, in file order as far as the budget goes. A row is set off only when
        // a place among the `ROWS_IN_FLIGHT` frees up (the stream is lazy), and then
        // looks at the clock; once a row finds the budget spent, neither it nor any row
        // after it is written (`None`).
        let import = &import;
        let mut stopped = false;
        let outcomes: Vec<Result<Option<Decision>, ApiError>> =
            stream::iter(decisions.into_iter().enumerate())
                .map(|(index, decision)| {
                    let writes = !dry_run
                        && matches!(decision, Decision::Create(_) | Decision::Update { .. });
                    stopped |= writes && wrote_any && Instant::now() >= deadline;
                    let go = writes && !stopped;
                    wrote_any |= go;
                    let skip = stopped;
                    async move {
                        if skip {
                            Ok(None)
                        } else if go {
                            import.write(&chunk[index], decision).await.map(Some)
                        } else {
                            Ok(Some(decision))
                        }
                    }
                })
                .buffered(ROWS_IN_FLIGHT)
                .collect()
                .await;
        for (row, outcome) in chunk.iter().zip(outcomes) {
            let Some(decision) = outcome? else {
                report.stopped_at_line = Some(row.line);
                break 'rows;
            };
            match decision {
                Decision::Failed { id, errors } => report.failed.push(FailedRow {
                    line: row.line,
                    id,
                    errors,
                }),
                Decision::Unchanged(_) => report.unchanged += 1,
                Decision::Create(_) => report.created += 1,
                Decision::Update { .. } => report.updated += 1,
            }
        }
    }
    Reply::json(StatusCode::OK, &report)
}

/// What an import body is.
enum Upload<'a> {
    Csv,
    Workbook(&'a dyn Workbooks, WorkbookFormat),
}

/// `text/csv` (UTF-8) or no content type, or a workbook's media type when the function
/// reads workbooks; anything else is 415. Without workbook support, a workbook's format
/// is named in the answer: save it as CSV.
fn import_media_type<'a>(app: &'a App, call: &Call) -> Result<Upload<'a>, ApiError> {
    let Some(media) = call.media_type() else {
        return Ok(Upload::Csv);
    };
    if media == CSV_MEDIA_TYPE {
        return match call.charset().as_deref() {
            None | Some("utf-8") | Some("utf8") => Ok(Upload::Csv),
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "only UTF-8 CSV is read, got charset `{other}`"
            ))),
        };
    }
    match (WorkbookFormat::from_media_type(&media), app.workbooks()) {
        (Some(format), Some(workbooks)) => Ok(Upload::Workbook(workbooks, format)),
        (Some(format), None) => Err(ApiError::UnsupportedMediaType(format!(
            "{} workbooks are not read; save the sheet as CSV UTF-8 and send it as text/csv",
            format.extension()
        ))),
        (None, Some(_)) => Err(ApiError::UnsupportedMediaType(format!(
            "expected text/csv or a workbook ({}), got `{media}`",
            WorkbookFormat::ALL
                .map(|f| format!("{} {}", f.extension(), f.media_type()))
                .join(", ")
        ))),
        (None, None) => Err(ApiError::UnsupportedMediaType(format!(
            "expected text/csv, got `{media}`"
        ))),
    }
}

/// How many of `rows` (at least one) go in the next batch: at most [`CHUNK`], ending
/// before the first row that names an id or an email (in any case) an earlier row of
/// the batch names. (`read_csv` already fails such rows, and a failed row writes
/// nothing; this keeps rows that could write the same customer apart all the same.)
fn batch_len(rows: &[ImportRow]) -> usize {
    let mut keys = HashSet::new();
    let mut len = 0;
    for row in rows.iter().take(CHUNK) {
        if row.patch.is_err() {
            len += 1;
            continue;
        }
        let id = row.id.as_ref().map(|id| format!("id:{id}"));
        let email = row
            .email
            .as_ref()
            .map(|email| format!("email:{}", email.trim().to_lowercase()));
        let row_keys: Vec<String> = id.into_iter().chain(email).collect();
        if len > 0 && row_keys.iter().any(|key| keys.contains(key)) {
            break;
        }
        keys.extend(row_keys);
        len += 1;
    }
    len
}

fn time_budget() -> Duration {
    std::env::var("IMPORT_TIME_BUDGET_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(TIME_BUDGET)
}

/// Reads the customers a row may touch: by id when it names one, else by email.
async fn lookup(app: &App, tenant: &str, row: &ImportRow) -> Result<Lookup, ApiError> {
    if row.patch.is_err() {
        return Ok(Lookup::default());
    }
    let email = row.email.as_deref().filter(|e| is_valid_email(e));
    let Some(id) = &row.id else {
        let current = match email {
            Some(email) => app.store.find_customer_by_email(tenant, email).await?,
            None => None,
        };
        return Ok(Lookup {
            current,
            email_holder: None,
        });
    };
    let current = if is_valid_entity_id(id) {
        app.store.get_customer(tenant, id).await?
    } else {
        None
    };
    let email_holder = match email {
        Some(email)
            if current
                .as_ref()
                .is_none_or(|c| c.email_key() != email.to_lowercase()) =>
        {
            app.store
                .find_customer_by_email(tenant, email)
                .await?
                .filter(|holder| &holder.id != id)
        }
        _ => None,
    };
    Ok(Lookup {
        current,
        email_holder,
    })
}

impl Import<'_> {
    /// Reads the segments the rows of a chunk name (once per import).
    async fn load_segments(&self, chunk: &[ImportRow], lookups: &[Lookup]) -> Result<(), ApiError> {
        let mut wanted = HashSet::new();
        for (row, found) in chunk.iter().zip(lookups) {
            let named = match &row.patch {
                Ok(patch) if patch.get("segment_id").is_some() => {
                    patch["segment_id"].as_str().map(str::to_owned)
                }
                Ok(_) => found.current.as_ref().and_then(|c| c.segment_id.clone()),
                Err(_) => None,
            };
            if let Some(id) = named
                && is_valid_entity_id(&id)
                && !self.cached_segments().contains_key(&id)
            {
                wanted.insert(id);
            }
        }
        let (app, tenant) = (self.app, self.tenant);
        let reads: Vec<_> = wanted
            .into_iter()
            .map(|id| async move {
                let segment = app.store.get_segment(tenant, &id).await?;
                Ok::<_, ApiError>((id, segment))
            })
            .collect();
        let loaded: Vec<Result<(String, Option<Segment>), ApiError>> = stream::iter(reads)
            .buffered(READS_IN_FLIGHT)
            .collect()
            .await;
        let loaded = loaded.into_iter().collect::<Result<Vec<_>, _>>()?;
        self.cached_segments().extend(loaded);
        Ok(())
    }

    /// The segment cache, held only between awaits.
    fn cached_segments(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Segment>>> {
        self.segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn segment(&self, id: &str) -> Result<Option<Segment>, ApiError> {
        if let Some(segment) = self.cached_segments().get(id) {
            return Ok(segment.clone());
        }
        let segment = self.app.store.get_segment(self.tenant, id).await?;
        self.cached_segments()
            .insert(id.to_owned(), segment.clone());
        Ok(segment)
    }

    /// Validates a row like a PATCH of the customer it matches (a POST when it matches
    /// none): the row's columns replace the customer's values, an empty cell removes one,
    /// columns the file lacks keep theirs; then the whole customer is validated.
    async fn decide(&self, row: &ImportRow, found: Lookup) -> Result<Decision, ApiError> {
        let patch = match &row.patch {
            Ok(patch) => patch,
            Err(errors) => {
                return Ok(Decision::Failed {
                    id: row.id.clone(),
                    errors: errors.clone(),
                });
            }
        };
        let Lookup {
            current,
            email_holder,
        } = found;
        let known_id = row
            .id
            .clone()
            .or_else(|| current.as_ref().map(|c| c.id.clone()));
        let mut document = match &current {
            Some(current) => serde_json::to_value(current.to_visible(self.fields))
                .map_err(|err| ApiError::Internal(err.to_string()))?,
            None => json!({}),
        };
        merge_patch(&mut document, patch);
        let segment = match document.get("segment_id").and_then(Value::as_str) {
            Some(id) if is_valid_entity_id(id) => self.segment(id).await?,
            _ => None,
        };
        let schema = CustomerSchema {
            fields: self.fields,
            segment: segment.as_ref(),
            current_segment_id: current.as_ref().and_then(|c| c.segment_id.as_deref()),
        };
        let mut draft = match CustomerDraft::parse(&document, &schema) {
            Ok(draft) => draft,
            Err(violations) => {
                return Ok(Decision::Failed {
                    id: known_id,
                    errors: spreadsheet::cell_errors(&violations),
                });
            }
        };
        if let Some(holder) = email_holder {
            return Ok(Decision::Failed {
                id: known_id,
                errors: vec![CellError {
                    column: Some("email".into()),
                    detail: format!(
                        "a customer with email `{}` already exists (id `{}`)",
                        draft.email, holder.id
                    ),
                }],
            });
        }
        let now = Utc::now();
        Ok(match current {
            Some(current) if current.unchanged_by(&draft, self.fields) => {
                Decision::Unchanged(current.id)
            }
            Some(current) => {
                let next = Box::new(current.replaced(draft, now));
                Decision::Update {
                    current: Box::new(current),
                    next,
                }
            }
            None => {
                let id = draft.id.take().unwrap_or_else(new_id);
                Decision::Create(Box::new(draft.into_customer(id, now)))
            }
        })
    }

    /// Writes a row's customer in its own transaction. When the customer changed since
    /// it was read, the row is read and decided again (a few times), never the file.
    async fn write(&self, row: &ImportRow, mut decision: Decision) -> Result<Decision, ApiError> {
        for attempt in 1..=ROW_ATTEMPTS {
            let result = match &decision {
                Decision::Create(customer) => {
                    self.app
                        .store
                        .save_customer(self.tenant, None, customer, self.fields)
                        .await
                }
                Decision::Update { current, next } => {
                    self.app
                        .store
                        .save_customer(self.tenant, Some(current), next, self.fields)
                        .await
                }
                Decision::Failed { .. } | Decision::Unchanged(_) => return Ok(decision),
            };
            let id = decision.target().map(str::to_owned);
            let failed = |errors| Decision::Failed { id, errors };
            match result {
                Ok(()) => return Ok(decision),
                Err(StoreError::VersionMismatch | StoreError::AlreadyExists(_))
                    if attempt < ROW_ATTEMPTS =>
                {
                    let found = lookup(self.app, self.tenant, row).await?;
                    decision = self.decide(row, found).await?;
                }
                Err(StoreError::VersionMismatch | StoreError::AlreadyExists(_)) => {
                    return Ok(failed(vec![CellError {
                        column: None,
                        detail:
                            "the customer kept changing during the import; import the row again"
                                .into(),
                    }]));
                }
                Err(StoreError::Duplicate(detail)) => {
                    return Ok(failed(vec![CellError {
                        column: Some("email".into()),
                        detail,
                    }]));
                }
                Err(StoreError::Invalid(violations)) => {
                    return Ok(failed(spreadsheet::cell_errors(&violations)));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(decision)
    }
}

/// `GET /customers/export`: the customers a listing filter selects (`?segment=`,
/// `?email=`, `?cluster.<field>=`), as CSV or an xlsx workbook ([`export_format`]) that
/// imports back unchanged. At most `?limit=` (default and maximum 10,000) rows and about
/// 4 MB per response (3 MB counted as CSV for xlsx); a `Link` header with `rel="next"`
/// continues.
async fn export(app: &App, call: Call) -> Result<Reply, ApiError> {
    call.allow_query(
        &["segment", "email", "match", "limit", "cursor", "format"],
        &[CLUSTER_PREFIX],
    )?;
    let format = export_format(app, &call)?;
    let limit = call.limit_within(MAX_EXPORT_ROWS, MAX_EXPORT_ROWS)?;
    let fields = app.store.list_fields(&call.tenant).await?;
    let (writer, max_bytes): (Box<dyn RowWriter>, usize) = match format {
        ExportFormat::Csv => (Box::new(CsvWriter::new()), EXPORT_BYTES),
        ExportFormat::Xlsx(workbooks) => (workbooks.xlsx_writer(), XLSX_EXPORT_BYTES),
    };
    let mut rows = Export::new(&fields, writer);
    let mut next_cursor = None;
    match selection(&call, &fields)? {
        Selection::Email(email) => {
            // One customer at most: no page follows, so any cursor is foreign.
            call.page_start(app, "export:customers?email")?;
            if let Some(customer) = app
                .store
                .find_customer_by_email(&call.tenant, &email)
                .await?
            {
                rows.push(&customer.visible(&fields));
            }
        }
        Selection::Filter(filter) => {
            let scope = format!("export:{}", listing_scope(&filter));
            let mut start = call.page_start(app, &scope)?;
            let mut widest_row = 1;
            loop {
                // Smaller pages near the byte limit, so a response never overshoots it by
                // more than a row or so.
                let room = max_bytes.saturating_sub(rows.len()) / widest_row;
                let size = (limit - rows.rows()).min(STORE_PAGE).min(room.max(1));
                let page = app
                    .store
                    .list_target(&call.tenant, &filter, &fields, size, start.take())
                    .await?;
                for customer in page.items {
                    let before = rows.len();
                    rows.push(&customer.visible(&fields));
                    widest_row = widest_row.max(rows.len() - before);
                }
                match page.next {
                    Some(key) if rows.rows() < limit && rows.len() < max_bytes => {
                        start = Some(key);
                    }
                    Some(key) => {
                        next_cursor = Some(app.cursors.encode(&call.tenant, &scope, key));
                        break;
                    }
                    None => break,
                }
            }
        }
    }
    let bytes = rows
        .finish()
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    let reply = match format {
        ExportFormat::Csv => {
            let text = String::from_utf8(bytes)
                .map_err(|err| ApiError::Internal(format!("export is not UTF-8: {err}")))?;
            Reply::text(StatusCode::OK, CSV_UTF8, text)
        }
        ExportFormat::Xlsx(_) => Reply::binary(StatusCode::OK, XLSX_MEDIA_TYPE, bytes),
    };
    Ok(reply
        .header(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"customers.{}\"", format.extension()),
        )
        .next_link("/customers/export", &call, next_cursor))
}

/// What an export is written as.
#[derive(Clone, Copy)]
enum ExportFormat<'a> {
    Csv,
    Xlsx(&'a dyn Workbooks),
}

impl ExportFormat<'_> {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx(_) => WorkbookFormat::Xlsx.extension(),
        }
    }
}

/// `?format=csv|xlsx` when given; else xlsx when `Accept` ranks the xlsx media type
/// above CSV (`text/csv`, `text/*`, `*/*`), else CSV, which is also what clients that
/// accept neither get. The `Link` of a page keeps `?format=`, not `Accept`: a client
/// that negotiates sends its `Accept` again.
fn export_format<'a>(app: &'a App, call: &Call) -> Result<ExportFormat<'a>, ApiError> {
    let xlsx = match call.query("format") {
        Some("csv") => false,
        Some("xlsx") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be csv or xlsx, got `{other}`"
            )));
        }
        None => {
            let accept = call
                .headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            quality(&accept, &[XLSX_MEDIA_TYPE])
                > quality(&accept, &[CSV_MEDIA_TYPE, "text/*", "*/*"])
        }
    };
    if !xlsx {
        return Ok(ExportFormat::Csv);
    }
    app.workbooks().map(ExportFormat::Xlsx).ok_or_else(|| {
        ApiError::BadRequest("this function does not write xlsx; ask for CSV".into())
    })
}

/// The highest quality (`q=`, default 1) `accept` gives any of `ranges`, 0 when none.
fn quality(accept: &str, ranges: &[&str]) -> f32 {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            if !ranges.contains(&range.as_str()) {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(q)
        })
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::quality;

    #[test]
    fn accept_qualities() {
        let xlsx = super::XLSX_MEDIA_TYPE;
        assert_eq!(quality(xlsx, &[xlsx]), 1.0);
        let accept = format!("text/csv;q=0.5, {xlsx};q=0.9");
        assert_eq!(quality(&accept, &[xlsx]), 0.9);
        assert_eq!(quality(&accept, &["text/csv", "*/*"]), 0.5);
        assert_eq!(quality("*/*", &[xlsx]), 0.0);
        assert_eq!(quality("Text/CSV ; q=0.2", &["text/csv"]), 0.2);
    }
}
