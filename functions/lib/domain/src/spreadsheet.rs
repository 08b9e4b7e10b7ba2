//! The spreadsheet path: customers as rows of cells, read for `POST /customers/import`
//! and written for `GET /customers/export`, whatever the file's format.
//!
//! Every format comes down to one table of typed cells ([`SheetRow`] of [`Cell`]s): CSV
//! cells are all text, workbook cells (read by the `workbook` crate, behind
//! [`Workbooks`]) keep their types. [`read_rows`] applies the header rules, turns each
//! row into a customer merge patch and finds repeated ids and emails, once for every
//! format. Exports go the other way: [`Export`] turns customers into typed rows
//! ([`ExportCell`]) that a [`RowWriter`] spells, [`CsvWriter`] here and the xlsx writer
//! in the `workbook` crate.
//!
//! The CSV dialect: UTF-8 with or without a byte order mark; `,` or `;` between values,
//! whichever the header line uses more; values quoted as RFC 4180 says (`"a ""b"""`,
//! line breaks inside quotes). The header names core columns ([`CORE_COLUMNS`]) and
//! custom fields by their API name, in any order and any letter case. Export writes `,`,
//! CRLF line ends and quotes only where needed, so what it writes reads back the same.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::customer::Customer;
use crate::field::{FieldDef, FieldType};
use crate::validation::Violations;

/// The customer's own columns, in export order. `id` and `email` also pick the customer
/// a row updates.
pub const CORE_COLUMNS: [&str; 7] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "document",
    "phone",
    "segment_id",
];

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a CSV cell that is not UTF-8 reads as.
const NOT_UTF8: &str = "is not UTF-8 text; save the file as CSV UTF-8";

/// One problem of a row, addressed by its column when it has one. `Deserialize` too:
/// clients of the API (the `import-customers` CLI) read it back from import reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CellError {
    /// The header name of the column (a core column or a field's API name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub detail: String,
}

impl CellError {
    fn new(column: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            column: column.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

/// Turns the violations of a customer body into row errors: `/email` is the `email`
/// column, `/fields/tier` the `tier` column.
pub fn cell_errors(violations: &Violations) -> Vec<CellError> {
    violations
        .0
        .iter()
        .map(|v| {
            let path = v.pointer.strip_prefix("/fields").unwrap_or(&v.pointer);
            let column = path.strip_prefix('/').filter(|c| !c.is_empty());
            CellError::new(column, v.detail.clone())
        })
        .collect()
}

/// A cell as the file holds it. CSV cells are all [`Cell::Text`]; a workbook's keep
/// the type the spreadsheet gave them, so that a number is read as the number it shows
/// and a date as a date, not as whatever text a locale would print.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A date, or a date and time of day; spreadsheets keep no time zone.
    DateTime(NaiveDateTime),
    /// A cell that cannot be read, and why (text that is not UTF-8, a formula's error).
    Invalid(String),
}

impl Cell {
    /// Empty, or text of white space only: a cell that clears its value.
    pub fn is_blank(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// Blank as a row of the file is skipped for: white space in the ASCII sense, as the
    /// CSV record reader (and so the `import-customers` CLI) skips rows.
    fn is_skippable(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(text) => text.trim_ascii().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, as a spreadsheet shows it: numbers with at most 15 significant
    /// digits ([`format_number`]), booleans `true`/`false`, dates as ISO 8601 dates,
    /// times of day as `T10:30:00` after the date.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Empty | Self::Invalid(_) => Cow::Borrowed(""),
            Self::Text(text) => Cow::Borrowed(text),
            Self::Number(number) => Cow::Owned(format_number(*number)),
            Self::Bool(true) => Cow::Borrowed("true"),
            Self::Bool(false) => Cow::Borrowed("false"),
            Self::DateTime(at) if at.time() == NaiveTime::MIN => {
                Cow::Owned(at.format("%Y-%m-%d").to_string())
            }
            Self::DateTime(at) => Cow::Owned(at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        }
    }
}

/// A number as Excel and LibreOffice show it: rounded to 15 significant digits (all a
/// double holds reliably), then in the shortest spelling, without exponent or a
/// trailing `.0`: `1234.5`, `0.3` for `0.1 + 0.2`, `12` for `12.0`.
pub fn format_number(number: f64) -> String {
    if number == 0.0 {
        return "0".into();
    }
    if !number.is_finite() {
        return number.to_string();
    }
    let rounded: f64 = format!("{number:.14e}").parse().unwrap_or(number);
    rounded.to_string()
}

/// One row of a file: where it is and its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetRow {
    /// The 1-based line of the file where the row starts (the sheet's row number for a
    /// workbook).
    pub line: u64,
    pub cells: Vec<Cell>,
    /// Why the row as a whole cannot be read, when its format tells (a workbook value
    /// outside the header's columns); the row is then reported with it.
    pub problem: Option<String>,
}

impl SheetRow {
    pub fn new(line: u64, cells: Vec<Cell>) -> Self {
        Self {
            line,
            cells,
            problem: None,
        }
    }

    /// A row the import skips: no problem, and every cell empty or ASCII white space
    /// (as the CSV record reader, and so the `import-customers` CLI, skips rows).
    pub fn is_blank(&self) -> bool {
        self.problem.is_none() && self.cells.iter().all(Cell::is_skippable)
    }
}

/// One data row of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The 1-based line of the file where the row starts (the header is line 1); a
    /// workbook's row number.
    pub line: u64,
    /// The `id` cell, trimmed, when not empty.
    pub id: Option<String>,
    /// The `email` cell, trimmed, when not empty.
    pub email: Option<String>,
    /// The row as a JSON merge patch of a customer (RFC 7396): an empty cell is `null`,
    /// so it removes the value; columns the file lacks are not in it, so they keep
    /// theirs. Field values have the JSON type their field expects. `Err` lists why the
    /// row cannot be read (wrong number of values, text that is not UTF-8, an id or
    /// email that an earlier row already names).
    pub patch: Result<Value, Vec<CellError>>,
}

/// An import file whose header fits the tenant's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportFile {
    /// The header's column names, lower-cased.
    pub columns: Vec<String>,
    pub rows: Vec<ImportRow>,
}

/// Why a whole file is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// No header row, a header that is not text, a file that is not CSV or not a
    /// workbook of its format, a sheet that is not there.
    #[error("{0}")]
    Unreadable(String),
    /// Unknown, repeated or unnamed columns, each at `/header/<0-based column>`.
    #[error(transparent)]
    Header(Violations),
    #[error("the file has more than {limit} rows; split it into files of at most {limit} rows")]
    TooManyRows { limit: usize },
}

impl From<WorkbookError> for ImportError {
    fn from(err: WorkbookError) -> Self {
        Self::Unreadable(err.to_string())
    }
}

/// The workbook formats the import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkbookFormat {
    /// Office Open XML, Excel 2007 and later.
    Xlsx,
    /// The binary Excel 97-2003 format (BIFF8).
    Xls,
    /// OpenDocument, LibreOffice's own.
    Ods,
}

impl WorkbookFormat {
    pub const ALL: [WorkbookFormat; 3] = [Self::Xlsx, Self::Xls, Self::Ods];

    /// The media type a request names it by.
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Xls => "application/vnd.ms-excel",
            Self::Ods => "application/vnd.oasis.opendocument.spreadsheet",
        }
    }

    /// The file name extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Xls => "xls",
            Self::Ods => "ods",
        }
    }

    /// `media` lower-cased, without parameters.
    pub fn from_media_type(media: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.media_type() == media)
    }

    /// By a file name's extension, in any letter case.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        Self::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(extension))
    }
}

/// Why a workbook cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkbookError {
    #[error("the file is not a readable {format} workbook: {detail}")]
    Unreadable {
        format: &'static str,
        detail: String,
    },
    #[error(
        "the workbook has no sheet `{name}`; its sheets are {}",
        quoted(sheets)
    )]
    NoSuchSheet { name: String, sheets: Vec<String> },
    #[error("the workbook has no sheets")]
    NoSheets,
    /// The header is wider than any header the import takes.
    #[error("the header row spans {columns} columns; at most {limit} are read")]
    TooWide { columns: usize, limit: usize },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reading and writing workbooks. Declared here, implemented by the `workbook` crate,
/// so that only the programs that read or write workbooks (the `customers` function,
/// the local stack, `import-customers`) link its readers and writer; the HTTP layer
/// holds one when it is given one.
pub trait Workbooks: Send + Sync {
    /// The rows of the first sheet, or of the one named `sheet`, numbered by the sheet's
    /// row numbers, rows without a value left out. The header is the first row with a
    /// value and spans from its first to its last value; every row has a cell for each
    /// of its columns, and a value beside them makes its row's
    /// [`problem`](SheetRow::problem). Reading stops after `max_rows` rows (the header
    /// included), so that a file past the import's limits costs no more.
    fn read(
        &self,
        format: WorkbookFormat,
        data: &[u8],
        sheet: Option<&str>,
        max_rows: usize,
    ) -> Result<Vec<SheetRow>, WorkbookError>;

    /// A writer of one xlsx sheet, for [`Export::new`].
    fn xlsx_writer(&self) -> Box<dyn RowWriter>;
}

/// The separator of a file: `;` when its first line holds more `;` than `,` outside
/// quotes (what spreadsheets write where `,` is the decimal mark), else `,`.
pub fn detect_separator(data: &[u8]) -> u8 {
    let data = data.strip_prefix(BOM).unwrap_or(data);
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &byte in data {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// Where each column of the header goes.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Core(&'static str),
    Field(&'a FieldDef),
}

/// Reads a CSV import file ([`read_rows`] over its records). Rows whose cells are all
/// empty (as spreadsheets leave at the end of a sheet) are skipped. More than
/// `max_rows` data rows refuse the whole file.
pub fn read_csv(
    data: &[u8],
    fields: &[FieldDef],
    max_rows: usize,
) -> Result<ImportFile, ImportError> {
    let mut reader = RecordReader::new(data);
    let mut record = csv::ByteRecord::new();
    let mut header = true;
    let rows = std::iter::from_fn(move || {
        let line = if std::mem::take(&mut header) {
            reader
                .read_header(&mut record)
                .map(|found| found.then_some(1))
        } else {
            reader.read_record(&mut record)
        };
        match line {
            Ok(Some(line)) => Some(Ok(SheetRow::new(line, record_cells(&record)))),
            Ok(None) => None,
            Err(err) => Some(Err(ImportError::Unreadable(format!(
                "the file is not readable as CSV: {err}"
            )))),
        }
    });
    read_rows(rows, fields, max_rows)
}

/// Reads the first (or the named) sheet of a workbook as [`read_rows`] reads rows.
pub fn read_workbook(
    workbooks: &dyn Workbooks,
    format: WorkbookFormat,
    data: &[u8],
    sheet: Option<&str>,
    fields: &[FieldDef],
    max_rows: usize,
) -> Result<ImportFile, ImportError> {
    // The header, `max_rows` rows and one more, which refuses the file.
    let rows = workbooks.read(format, data, sheet, max_rows.saturating_add(2))?;
    read_rows(rows.into_iter().map(Ok), fields, max_rows)
}

/// A CSV record as cells: text, or why a value is not.
pub fn record_cells(record: &csv::ByteRecord) -> Vec<Cell> {
    record
        .iter()
        .map(|raw| match std::str::from_utf8(raw) {
            Ok(text) => Cell::Text(text.to_owned()),
            Err(_) => Cell::Invalid(NOT_UTF8.into()),
        })
        .collect()
}

/// Reads an import file of any format: the first row is the header, checked against
/// the core columns and `fields`; each later row becomes a customer merge patch. Rows
/// whose cells are all blank are skipped; more than `max_rows` others refuse the file.
pub fn read_rows(
    mut rows: impl Iterator<Item = Result<SheetRow, ImportError>>,
    fields: &[FieldDef],
    max_rows: usize,
) -> Result<ImportFile, ImportError> {
    let no_header =
        || ImportError::Unreadable("the file needs a header row naming its columns".into());
    let first = rows.next().transpose()?.ok_or_else(no_header)?;
    let header = header_names(&first.cells)?;
    if header.iter().all(String::is_empty) {
        return Err(no_header());
    }
    let targets = read_header(&header, fields)?;
    let mut keys = DuplicateKeys::new(&first.cells);

    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if row.is_blank() {
            continue;
        }
        if out.len() == max_rows {
            return Err(ImportError::TooManyRows { limit: max_rows });
        }
        let (id, email) = keys.keys(&row.cells);
        let duplicates = keys.check(row.line, id.as_deref(), email.as_deref());
        let mut read = read_row(&row, (id, email), &header, &targets);
        if !duplicates.is_empty() {
            read.patch = match read.patch {
                Ok(_) => Err(duplicates),
                Err(mut errors) => {
                    errors.extend(duplicates);
                    Err(errors)
                }
            };
        }
        out.push(read);
    }
    Ok(ImportFile {
        columns: header,
        rows: out,
    })
}

/// The header's names, trimmed and lower-cased. Public, as [`row_problems`].
pub fn header_names(cells: &[Cell]) -> Result<Vec<String>, ImportError> {
    cells
        .iter()
        .map(|cell| match cell {
            Cell::Invalid(detail) => {
                Err(ImportError::Unreadable(format!("the header row {detail}")))
            }
            cell => Ok(cell.text().trim().to_lowercase()),
        })
        .collect()
}

fn read_header<'a>(
    header: &[String],
    fields: &'a [FieldDef],
) -> Result<Vec<Target<'a>>, ImportError> {
    let mut violations = Violations::new();
    let mut targets = Vec::with_capacity(header.len());
    for (index, name) in header.iter().enumerate() {
        let pointer = format!("/header/{index}");
        let position = index + 1;
        if name.is_empty() {
            violations.push(pointer, format!("column {position} has no name"));
            continue;
        }
        if let Some(first) = header[..index].iter().position(|other| other == name) {
            violations.push(
                pointer,
                format!("`{name}` (column {position}) repeats column {}", first + 1),
            );
            continue;
        }
        if let Some(core) = CORE_COLUMNS.iter().find(|c| **c == name) {
            targets.push(Target::Core(core));
        } else if let Some(def) = fields.iter().find(|f| &f.name == name) {
            targets.push(Target::Field(def));
        } else {
            violations.push(
                pointer,
                format!(
                    "`{name}` (column {position}) is neither a core column ({}) nor a defined field",
                    CORE_COLUMNS.join(", ")
                ),
            );
        }
    }
    if !header.iter().any(|c| c == "id" || c == "email") {
        violations.push(
            "/header",
            "needs an `id` or an `email` column to match rows with customers",
        );
    }
    violations.finish(targets).map_err(ImportError::Header)
}

/// `keys`: the row's id and email ([`DuplicateKeys::keys`]), which name the row in the
/// report even when the rest cannot be read.
fn read_row(
    row: &SheetRow,
    (id, email): (Option<String>, Option<String>),
    header: &[String],
    targets: &[Target],
) -> ImportRow {
    let mut read = ImportRow {
        line: row.line,
        id,
        email,
        patch: Ok(Value::Null),
    };
    let problems = row_problems(row, header);
    if !problems.is_empty() {
        read.patch = Err(problems);
        return read;
    }
    let mut patch = Map::new();
    let mut values = Map::new();
    for (cell, target) in row.cells.iter().zip(targets) {
        let blank = cell.is_blank();
        match *target {
            Target::Core(column) => {
                let value = if blank {
                    Value::Null
                } else {
                    Value::String(cell.text().trim().to_owned())
                };
                // The id picks the customer; it is never removed.
                if column != "id" || !value.is_null() {
                    patch.insert(column.to_owned(), value);
                }
            }
            Target::Field(def) => {
                let value = if blank {
                    Value::Null
                } else {
                    typed_value(def.field_type, cell)
                };
                values.insert(def.name.clone(), value);
            }
        }
    }
    if targets.iter().any(|t| matches!(t, Target::Field(_))) {
        patch.insert("fields".into(), Value::Object(values));
    }
    read.patch = Ok(Value::Object(patch));
    read
}

/// Why a row cannot be read whatever the tenant's fields: its [`problem`](SheetRow::problem),
/// a number of cells other than the header's (`header`: [`header_names`]), or cells that
/// cannot be read, by column. Public so that a client that writes rows again (the
/// `import-customers` CLI, which cannot write an unreadable cell) fails such rows with
/// the server's words.
pub fn row_problems(row: &SheetRow, header: &[String]) -> Vec<CellError> {
    if let Some(problem) = &row.problem {
        return vec![CellError::new(None, problem.clone())];
    }
    if row.cells.len() != header.len() {
        return vec![CellError::new(
            None,
            format!(
                "has {} values but the header has {} columns",
                row.cells.len(),
                header.len()
            ),
        )];
    }
    row.cells
        .iter()
        .zip(header)
        .filter_map(|(cell, name)| match cell {
            Cell::Invalid(detail) => Some(CellError::new(Some(name), detail.clone())),
            _ => None,
        })
        .collect()
}

/// A non-empty cell as the JSON value a customer body would carry for a field of this
/// type; the field's own validation then decides whether it fits. A typed cell counts
/// as the text a spreadsheet shows for it ([`Cell::text`]), so `12` in a number cell
/// and `12` typed as text import alike; only dates are read by what the field expects:
/// a date or date-time cell in a `datetime` field is that instant in UTC (spreadsheets
/// keep no zone).
pub fn typed_value(field_type: FieldType, cell: &Cell) -> Value {
    match cell {
        Cell::DateTime(at) if field_type == FieldType::Datetime => {
            Value::String(at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Cell::Text(text) => cell_value(field_type, text),
        other => cell_value(field_type, &other.text()),
    }
}

/// A non-empty text cell as the JSON value a customer body would carry for a field of
/// this type; the field's own validation then decides whether it fits. Integers and
/// booleans are read from their spreadsheet spellings (`true`/`false`, `yes`/`no`,
/// `1`/`0`); everything else stays the text it is (decimals travel as strings anyway).
pub fn cell_value(field_type: FieldType, cell: &str) -> Value {
    let trimmed = cell.trim();
    match field_type {
        FieldType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(cell.to_owned())),
        FieldType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => Value::String(cell.to_owned()),
        },
        FieldType::Decimal | FieldType::Date | FieldType::Datetime | FieldType::Email => {
            Value::String(trimmed.to_owned())
        }
        FieldType::String | FieldType::Text | FieldType::Enum => Value::String(cell.to_owned()),
    }
}

/// The records of a CSV file read as [`read_csv`] reads them: the byte order mark
/// stripped, the separator [`detect_separator`] picks, RFC 4180 quoting, rows of any
/// length. Public so that clients that split a big file into imports (the
/// `import-customers` CLI) read it, and number its lines, exactly as the server does.
pub struct RecordReader<'a> {
    reader: csv::Reader<&'a [u8]>,
    lines: LineCounter<'a>,
}

impl<'a> RecordReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let data = data.strip_prefix(BOM).unwrap_or(data);
        let reader = csv::ReaderBuilder::new()
            .delimiter(detect_separator(data))
            .has_headers(false)
            .flexible(true)
            .from_reader(data);
        Self {
            reader,
            lines: LineCounter::new(data),
        }
    }

    /// Reads the first record (blank lines before it are skipped, as by the `csv`
    /// crate) into `record`: the header. `false` when the file has none.
    pub fn read_header(&mut self, record: &mut csv::ByteRecord) -> Result<bool, csv::Error> {
        self.reader.read_byte_record(record)
    }

    /// Reads the next data record into `record` and returns the 1-based line of the
    /// file where it starts (the header's first line is 1); `None` at the end. Rows
    /// whose cells are all blank (as spreadsheets leave at the end of a sheet) are
    /// skipped. Call [`RecordReader::read_header`] first.
    pub fn read_record(&mut self, record: &mut csv::ByteRecord) -> Result<Option<u64>, csv::Error> {
        while self.reader.read_byte_record(record)? {
            if record.iter().all(|cell| cell.trim_ascii().is_empty()) {
                continue;
            }
            let start = record.position().map_or(0, |p| p.byte());
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            return Ok(Some(self.lines.line_of_record_at(start)));
        }
        Ok(None)
    }
}

/// Line ends in `bytes` as the import counts them: `\r\n`, `\n` and a lone `\r` each
/// end a line. Public so that clients writing a file again count its lines alike.
pub fn count_line_ends(bytes: &[u8]) -> u64 {
    let mut lines = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'\n' || (byte == b'\r' && bytes.get(index + 1) != Some(&b'\n')) {
            lines += 1;
        }
    }
    lines
}

/// Maps byte offsets of records to 1-based line numbers. The CSV reader's own line
/// count is off after blank lines, so lines are counted here: a record starts at the
/// first byte after its offset that is not a line break (blank lines before it are
/// skipped by the reader), and lines end as [`count_line_ends`] says.
struct LineCounter<'a> {
    data: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            offset: 0,
            line: 1,
        }
    }

    /// Offsets must not decrease from one call to the next.
    fn line_of_record_at(&mut self, start: usize) -> u64 {
        let mut start = start.min(self.data.len());
        while start < self.data.len() && matches!(self.data[start], b'\r' | b'\n') {
            start += 1;
        }
        // `start` is never between a `\r` and its `\n`, so counting the slice alone
        // counts as counting the whole file.
        let start = start.max(self.offset);
        self.line += count_line_ends(&self.data[self.offset..start]);
        self.offset = start;
        self.line
    }
}

/// Finds rows that name an id, or an email in any letter case, that an earlier row of
/// the file already names; the server fails such rows. Public so that a client that
/// splits a file into several imports (the `import-customers` CLI) fails them as the
/// server would if it saw the whole file, with the same words.
#[derive(Debug, Clone, Default)]
pub struct DuplicateKeys {
    id_column: Option<usize>,
    email_column: Option<usize>,
    /// Each id and email (lower-cased) so far, with the first line that names it.
    ids: HashMap<String, u64>,
    emails: HashMap<String, u64>,
}

impl DuplicateKeys {
    /// For a file with this header row: the `id` and `email` columns are the first whose
    /// names, trimmed and lower-cased, are `id` and `email`.
    pub fn new(header: &[Cell]) -> Self {
        let position = |name: &str| {
            header.iter().position(|cell| {
                !matches!(cell, Cell::Invalid(_)) && cell.text().trim().to_lowercase() == name
            })
        };
        Self {
            id_column: position("id"),
            email_column: position("email"),
            ..Self::default()
        }
    }

    /// The row's id and email cells, trimmed, when present, readable and not empty.
    pub fn keys(&self, cells: &[Cell]) -> (Option<String>, Option<String>) {
        let cell = |column: Option<usize>| match cells.get(column?)? {
            Cell::Invalid(_) => None,
            cell => {
                let text = cell.text();
                let text = text.trim();
                (!text.is_empty()).then(|| text.to_owned())
            }
        };
        (cell(self.id_column), cell(self.email_column))
    }

    /// Records the row at `line` naming `id` and `email` (as [`DuplicateKeys::keys`]
    /// reads them); an error for each that an earlier line already names (which stays
    /// the first).
    pub fn check(&mut self, line: u64, id: Option<&str>, email: Option<&str>) -> Vec<CellError> {
        let mut errors = Vec::new();
        if let Some(id) = id
            && let Some(first) = first_line(&mut self.ids, id.to_owned(), line)
        {
            errors.push(CellError::new(
                Some("id"),
                format!("line {first} already has id `{id}`"),
            ));
        }
        if let Some(email) = email
            && let Some(first) = first_line(&mut self.emails, email.to_lowercase(), line)
        {
            errors.push(CellError::new(
                Some("email"),
                format!("line {first} already has email `{email}`"),
            ));
        }
        errors
    }
}

/// Records `line` for `key` unless an earlier line has it; that line if one does.
fn first_line(seen: &mut HashMap<String, u64>, key: String, line: u64) -> Option<u64> {
    match seen.entry(key) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(line);
            None
        }
    }
}

/// The header of an export: the core columns, then every field in name order.
pub fn export_columns(fields: &[FieldDef]) -> Vec<String> {
    CORE_COLUMNS
        .iter()
        .copied()
        .chain(sorted(fields).into_iter().map(|f| f.name.as_str()))
        .map(str::to_owned)
        .collect()
}

fn sorted(fields: &[FieldDef]) -> Vec<&FieldDef> {
    let mut sorted: Vec<&FieldDef> = fields.iter().collect();
    sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    sorted
}

/// A value of an export row, typed, so that each format spells it its own way: CSV as
/// the stored text ([`ExportCell::text`]), a workbook as a number, date or boolean
/// cell where that reads back to the same value.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportCell {
    Empty,
    Text(String),
    Integer(i64),
    /// A decimal's canonical text (`-1234.5`).
    Decimal(String),
    Bool(bool),
    /// A date, with its stored text.
    Date(NaiveDate, String),
    /// An instant in UTC, with its stored text (`2026-01-01T08:00:00.250Z`).
    Datetime(NaiveDateTime, String),
}

impl ExportCell {
    /// A stored value of a field of this type.
    pub fn of(field_type: FieldType, value: &Value) -> Self {
        match value {
            Value::Null => Self::Empty,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Self::Text(n.to_string()), Self::Integer),
            Value::String(s) => match field_type {
                FieldType::Decimal => Self::Decimal(s.clone()),
                FieldType::Date => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_or_else(|_| Self::Text(s.clone()), |d| Self::Date(d, s.clone())),
                FieldType::Datetime => DateTime::parse_from_rfc3339(s).map_or_else(
                    |_| Self::Text(s.clone()),
                    |at| Self::Datetime(at.naive_utc(), s.clone()),
                ),
                _ => Self::Text(s.clone()),
            },
            other => Self::Text(other.to_string()),
        }
    }

    /// The cell as CSV writes it: text as it is stored, numbers and booleans in their
    /// JSON spelling.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Empty => Cow::Borrowed(""),
            Self::Text(s) | Self::Decimal(s) | Self::Date(_, s) | Self::Datetime(_, s) => {
                Cow::Borrowed(s)
            }
            Self::Integer(n) => Cow::Owned(n.to_string()),
            Self::Bool(true) => Cow::Borrowed("true"),
            Self::Bool(false) => Cow::Borrowed("false"),
        }
    }
}

/// Why an export could not be written (a workbook writer's refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the export could not be written: {0}")]
pub struct ExportError(pub String);

/// Spells the rows of an export in one format.
pub trait RowWriter: Send {
    /// The header row, first.
    fn header(&mut self, columns: &[String]);
    fn row(&mut self, cells: &[ExportCell]);
    /// Bytes written so far; for a format that compresses, about what the same rows
    /// take as CSV, which bounds the file.
    fn bytes(&self) -> usize;
    fn finish(self: Box<Self>) -> Result<Vec<u8>, ExportError>;
}

/// Customers as rows of an export file, in the format its [`RowWriter`] writes; what
/// it writes imports back to the same customers.
pub struct Export {
    writer: Box<dyn RowWriter>,
    fields: Vec<(String, FieldType)>,
    rows: usize,
}

impl Export {
    /// Starts the file with its header ([`export_columns`]).
    pub fn new(fields: &[FieldDef], mut writer: Box<dyn RowWriter>) -> Self {
        writer.header(&export_columns(fields));
        Self {
            writer,
            fields: sorted(fields)
                .into_iter()
                .map(|f| (f.name.clone(), f.field_type))
                .collect(),
            rows: 0,
        }
    }

    /// A CSV export ([`CsvWriter`]).
    pub fn csv(fields: &[FieldDef]) -> Self {
        Self::new(fields, Box::new(CsvWriter::new()))
    }

    /// Appends one customer, as clients see it (call [`Customer::visible`] first).
    pub fn push(&mut self, customer: &Customer) {
        let text = |value: &Option<String>| {
            value
                .as_ref()
                .map_or(ExportCell::Empty, |s| ExportCell::Text(s.clone()))
        };
        let mut cells = vec![
            ExportCell::Text(customer.id.clone()),
            ExportCell::Text(customer.email.clone()),
            text(&customer.first_name),
            text(&customer.last_name),
            text(&customer.document),
            text(&customer.phone),
            text(&customer.segment_id),
        ];
        cells.extend(self.fields.iter().map(|(name, field_type)| {
            customer
                .fields
                .get(name)
                .map_or(ExportCell::Empty, |value| {
                    ExportCell::of(*field_type, value)
                })
        }));
        self.writer.row(&cells);
        self.rows += 1;
    }

    /// Customers written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes written so far ([`RowWriter::bytes`]).
    pub fn len(&self) -> usize {
        self.writer.bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(self) -> Result<Vec<u8>, ExportError> {
        self.writer.finish()
    }
}

/// Writes rows as CSV that [`read_csv`] reads back to the same values.
pub struct CsvWriter {
    writer: csv::Writer<Vec<u8>>,
}

impl CsvWriter {
    pub fn new() -> Self {
        Self {
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new()),
        }
    }

    fn write<'a>(&mut self, cells: impl IntoIterator<Item = Cow<'a, str>>) {
        // Writing into memory cannot fail; flushing keeps `len` exact.
        let cells: Vec<Cow<str>> = cells.into_iter().collect();
        let _ = self.writer.write_record(cells.iter().map(|c| c.as_bytes()));
        let _ = self.writer.flush();
    }
}

impl Default for CsvWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RowWriter for CsvWriter {
    fn header(&mut self, columns: &[String]) {
        self.write(columns.iter().map(|c| Cow::Borrowed(c.as_str())));
    }

    fn row(&mut self, cells: &[ExportCell]) {
        self.write(cells.iter().map(ExportCell::text));
    }

    fn bytes(&self) -> usize {
        self.writer.get_ref().len()
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, ExportError> {
        Ok(self
            .writer
            .into_inner()
            .unwrap_or_else(|err| err.into_inner().get_ref().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{CustomerDraft, CustomerSchema};
    use crate::field::FieldDraft;
    use crate::validation::merge_patch;
    use chrono::Utc;
    use serde_json::json;

    fn defs() -> Vec<FieldDef> {
        [
            json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
            json!({"name": "distributor", "type": "boolean", "cluster": true, "default": false}),
            json!({"name": "visits", "type": "integer"}),
            json!({"name": "credit", "type": "decimal"}),
            json!({"name": "since", "type": "date"}),
            json!({"name": "note", "type": "text"}),
        ]
        .iter()
        .map(|b| FieldDraft::parse(b).unwrap().into_field(Utc::now()))
        .collect()
    }

    fn read(text: &str) -> ImportFile {
        read_csv(text.as_bytes(), &defs(), 100).unwrap()
    }

    fn patch(row: &ImportRow) -> &Value {
        row.patch.as_ref().unwrap()
    }

    #[test]
    fn reads_typed_patches_with_empty_cells_as_null() {
        let file = read(
            "id,Email,first_name,tier,distributor,visits,credit,since,note\r\n\
             c1,ann@example.com,Ann,AA,yes,12,0012.50,2026-01-31, two  spaces \r\n\
             ,bob@example.com,,,No,x,,,\r\n",
        );
        assert_eq!(file.columns[1], "email");
        assert_eq!(file.rows.len(), 2);
        let first = &file.rows[0];
        assert_eq!((first.line, first.id.as_deref()), (2, Some("c1")));
        assert_eq!(
            patch(first),
            &json!({
                "id": "c1", "email": "ann@example.com", "first_name": "Ann",
                "fields": {
                    "tier": "AA", "distributor": true, "visits": 12, "credit": "0012.50",
                    "since": "2026-01-31", "note": " two  spaces "
                }
            })
        );
        let second = &file.rows[1];
        assert_eq!((second.line, second.id.as_deref()), (3, None));
        assert_eq!(second.email.as_deref(), Some("bob@example.com"));
        assert_eq!(
            patch(second),
            &json!({
                "email": "bob@example.com", "first_name": null,
                "fields": {
                    "tier": null, "distributor": false, "visits": "x", "credit": null,
                    "since": null, "note": null
                }
            })
        );
    }

    #[test]
    fn semicolons_bom_quotes_and_exact_line_numbers() {
        let text = "\u{FEFF}email;note;credit\n\
                    \n\
                    \"a@b.co\";\"line one\nline two; \"\"quoted\"\"\";\"1,5\"\n\
                    ;;\n\
                    c@d.co;plain;2\r\n\
                    \r\n\
                    e@f.co;last;3";
        assert_eq!(detect_separator(text.as_bytes()), b';');
        let file = read(text);
        let lines: Vec<u64> = file.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 6, 8], "blank and all-empty rows are skipped");
        assert_eq!(
            patch(&file.rows[0])["fields"]["note"],
            "line one\nline two; \"quoted\""
        );
        assert_eq!(patch(&file.rows[0])["fields"]["credit"], "1,5");
        assert_eq!(patch(&file.rows[2])["email"], "e@f.co");
    }

    #[test]
    fn separator_follows_the_header_line() {
        assert_eq!(detect_separator(b"id,email\n1;2;3;4"), b',');
        assert_eq!(detect_separator(b"\"a;b\",c\nx"), b',');
        assert_eq!(detect_separator(b"a;b;c,d"), b';');
        assert_eq!(detect_separator(b"email"), b',');
    }

    #[test]
    fn header_problems_are_listed_together() {
        let err = read_csv("id,email,colour,EMAIL,,tier".as_bytes(), &defs(), 100).unwrap_err();
        let ImportError::Header(violations) = err else {
            panic!("{err:?}")
        };
        let listed: Vec<(&str, &str)> = violations
            .0
            .iter()
            .map(|v| (v.pointer.as_str(), v.detail.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "/header/2",
                    "`colour` (column 3) is neither a core column (id, email, first_name, \
                     last_name, document, phone, segment_id) nor a defined field"
                ),
                ("/header/3", "`email` (column 4) repeats column 2"),
                ("/header/4", "column 5 has no name"),
            ]
        );
        let err = read_csv(b"first_name,tier\nAnn,A", &defs(), 100).unwrap_err();
        assert!(
            matches!(&err, ImportError::Header(v) if v.0[0].pointer == "/header"),
            "{err:?}"
        );
        assert!(matches!(
            read_csv(b"", &defs(), 100),
            Err(ImportError::Unreadable(_))
        ));
        assert!(matches!(
            read_csv(b"\xEF\xBB\xBF\n\n", &defs(), 100),
            Err(ImportError::Unreadable(_))
        ));
    }

    #[test]
    fn row_problems_stay_on_their_row() {
        let file = read_csv(
            b"id,email,note\n\
              c1,a@b.co,x\n\
              c2,b@b.co\n\
              c1,c@b.co,y\n\
              c3,A@B.CO,\xFF\n",
            &defs(),
            100,
        )
        .unwrap();
        assert!(file.rows[0].patch.is_ok());
        assert_eq!(
            file.rows[1].patch,
            Err(vec![CellError::new(
                None,
                "has 2 values but the header has 3 columns"
            )])
        );
        assert_eq!(
            file.rows[2].patch,
            Err(vec![CellError::new(
                Some("id"),
                "line 2 already has id `c1`"
            )])
        );
        assert_eq!(
            file.rows[3].patch,
            Err(vec![
                CellError::new(
                    Some("note"),
                    "is not UTF-8 text; save the file as CSV UTF-8"
                ),
                CellError::new(Some("email"), "line 2 already has email `A@B.CO`"),
            ])
        );
    }

    #[test]
    fn the_csv_readers_own_line_count_is_not_used() {
        // Why `LineCounter` exists: after a blank line, `Position::line()` names the
        // blank line, not the record's.
        let data = b"email\n\na@x.io\n";
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&data[..]);
        let mut record = csv::ByteRecord::new();
        reader.read_byte_record(&mut record).unwrap();
        reader.read_byte_record(&mut record).unwrap();
        let position = record.position().unwrap().clone();
        let mut lines = LineCounter::new(data);
        assert_eq!(lines.line_of_record_at(position.byte() as usize), 3);
        assert_eq!(
            position.line(),
            2,
            "the csv crate counts lines like the server now"
        );
    }

    #[test]
    fn the_record_reader_skips_blank_rows_and_numbers_lines() {
        let data = b"\xEF\xBB\xBF\r\nid,email\r\n\r\n1,\"a\r\nb\"\r\n,\r\n2,x\r3,y";
        let mut reader = RecordReader::new(data);
        let mut record = csv::ByteRecord::new();
        assert!(reader.read_header(&mut record).unwrap());
        assert_eq!(&record, vec!["id", "email"]);
        let mut lines = Vec::new();
        while let Some(line) = reader.read_record(&mut record).unwrap() {
            lines.push((line, record.get(0).unwrap().to_vec()));
        }
        assert_eq!(
            lines,
            [(4, b"1".to_vec()), (7, b"2".to_vec()), (8, b"3".to_vec())]
        );
        assert!(
            !RecordReader::new(b"\xEF\xBB\xBF\n\n")
                .read_header(&mut record)
                .unwrap()
        );
        assert_eq!(count_line_ends(b"a\r\nb\rc\n\n"), 4);
    }

    fn cells(record: Vec<&[u8]>) -> Vec<Cell> {
        record_cells(&csv::ByteRecord::from(record))
    }

    #[test]
    fn duplicate_keys_name_the_first_line() {
        let header = cells(vec![b" Email ", b"x", b"ID", b"id"]);
        let mut keys = DuplicateKeys::new(&header);
        let row = cells(vec![b" ann@x.io ", b"", b"c-1", b"other"]);
        assert_eq!(
            keys.keys(&row),
            (Some("c-1".to_owned()), Some("ann@x.io".to_owned()))
        );
        assert_eq!(keys.check(2, Some("c-1"), Some("ann@x.io")), []);
        assert_eq!(keys.check(3, Some("C-1"), None), []);
        assert_eq!(
            keys.check(4, Some("c-1"), Some("ANN@x.io")),
            [
                CellError::new(Some("id"), "line 2 already has id `c-1`"),
                CellError::new(Some("email"), "line 2 already has email `ANN@x.io`"),
            ]
        );
        assert_eq!(
            keys.check(5, Some("C-1"), None),
            [CellError::new(Some("id"), "line 3 already has id `C-1`")]
        );
        let blank = cells(vec![b"  ", b"", b"\xFF"]);
        assert_eq!(DuplicateKeys::new(&header).keys(&blank), (None, None));
        let numbers = [Cell::Number(12.0), Cell::Empty, Cell::Number(7.0)];
        assert_eq!(
            DuplicateKeys::new(&header).keys(&numbers),
            (Some("7".to_owned()), Some("12".to_owned()))
        );
    }

    #[test]
    fn too_many_rows_refuse_the_file() {
        let text = "email\na@b.co\nb@b.co\n,\nc@b.co\n";
        assert_eq!(
            read_csv(text.as_bytes(), &[], 2),
            Err(ImportError::TooManyRows { limit: 2 })
        );
        assert_eq!(read_csv(text.as_bytes(), &[], 3).unwrap().rows.len(), 3);
    }

    #[test]
    fn cells_take_the_type_their_field_validates() {
        assert_eq!(cell_value(FieldType::Integer, " 42 "), json!(42));
        assert_eq!(cell_value(FieldType::Integer, "4.2"), json!("4.2"));
        assert_eq!(cell_value(FieldType::Boolean, "YES"), json!(true));
        assert_eq!(cell_value(FieldType::Boolean, "0"), json!(false));
        assert_eq!(cell_value(FieldType::Boolean, "maybe"), json!("maybe"));
        assert_eq!(cell_value(FieldType::Decimal, " 1.50 "), json!("1.50"));
        assert_eq!(cell_value(FieldType::String, " a "), json!(" a "));
    }

    #[test]
    fn violations_map_to_columns() {
        let mut violations = Violations::new();
        violations.push("/email", "is required");
        violations.push("/fields/tier", "must be one of AA, A, B");
        violations.push("/", "must be a JSON object");
        assert_eq!(
            cell_errors(&violations),
            [
                CellError::new(Some("email"), "is required"),
                CellError::new(Some("tier"), "must be one of AA, A, B"),
                CellError::new(None, "must be a JSON object"),
            ]
        );
    }

    #[test]
    fn exports_read_back_to_the_same_customer() {
        let fields = defs();
        let schema = CustomerSchema {
            fields: &fields,
            segment: None,
            current_segment_id: None,
        };
        let body = json!({
            "email": "ann@example.com", "first_name": "Ann, \"the\" first", "phone": "+1 555",
            "fields": {
                "tier": "AA", "visits": -3, "credit": "12.5", "since": "2026-01-31",
                "note": " multi\r\nline; text "
            }
        });
        let customer = CustomerDraft::parse(&body, &schema)
            .unwrap()
            .into_customer("c-1".into(), Utc::now());
        let mut export = Export::csv(&fields);
        export.push(&customer);
        assert_eq!(export.rows(), 1);
        let bytes = export.finish().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(
                "id,email,first_name,last_name,document,phone,segment_id,\
                 credit,distributor,note,since,tier,visits\r\n"
            ),
            "{text}"
        );

        let file = read_csv(&bytes, &fields, 10).unwrap();
        assert_eq!(file.rows.len(), 1);
        let mut document = json!({});
        merge_patch(&mut document, patch(&file.rows[0]));
        let again = CustomerDraft::parse(&document, &schema).unwrap();
        assert_eq!(again.id.as_deref(), Some("c-1"));
        assert!(customer.unchanged_by(&again, &fields), "{document}");
    }

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        assert_eq!(format_number(1234.5), "1234.5");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(-7.25), "-7.25");
        assert_eq!(format_number(1e21), "1000000000000000000000");
        assert_eq!(
            format_number(123_456_789_012_345_678.0),
            "123456789012346000"
        );
        assert_eq!(format_number(0.000_012_5), "0.0000125");
        assert_eq!(format_number(2.0 / 3.0), "0.666666666666667");
    }

    fn at(date: &str, time: &str) -> Cell {
        Cell::DateTime(
            NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
                .unwrap(),
        )
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    #[test]
    fn typed_cells_keep_their_meaning() {
        let mut fields = defs();
        fields.push(
            FieldDraft::parse(&json!({"name": "seen", "type": "datetime"}))
                .unwrap()
                .into_field(Utc::now()),
        );
        let header = [
            "id",
            "email",
            "phone",
            "visits",
            "credit",
            "distributor",
            "since",
            "seen",
            "note",
        ];
        let rows = vec![
            SheetRow::new(3, header.iter().map(|h| text(h)).collect()),
            SheetRow::new(
                5,
                vec![
                    Cell::Number(17.0),
                    text(" ann@x.io "),
                    Cell::Number(5_550_100.0),
                    Cell::Number(12.0),
                    Cell::Number(1234.5),
                    Cell::Bool(true),
                    at("2026-01-31", "00:00:00"),
                    at("2026-01-31", "10:30:00.250"),
                    Cell::Number(0.1 + 0.2),
                ],
            ),
            SheetRow::new(6, vec![Cell::Empty; 9]),
            SheetRow::new(
                7,
                vec![
                    text("c-2"),
                    Cell::Empty,
                    Cell::Bool(false),
                    Cell::Number(1.5),
                    Cell::Empty,
                    Cell::Number(0.0),
                    at("2026-01-31", "10:30:00"),
                    at("2026-02-01", "00:00:00"),
                    at("2026-01-31", "10:30:00"),
                ],
            ),
            SheetRow {
                problem: Some("has a value in column K, outside the header".into()),
                ..SheetRow::new(9, vec![Cell::Empty; 9])
            },
            SheetRow::new(
                10,
                vec![
                    Cell::Number(17.0),
                    Cell::Invalid("holds the error #DIV/0!".into()),
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                ],
            ),
        ];
        let file = read_rows(rows.into_iter().map(Ok), &fields, 10).unwrap();
        let lines: Vec<u64> = file.rows.iter().map(|r| r.line).collect();
        assert_eq!(
            lines,
            [5, 7, 9, 10],
            "the sheet's row numbers; blank rows skipped"
        );
        assert_eq!(file.rows[0].id.as_deref(), Some("17"));
        assert_eq!(
            patch(&file.rows[0]),
            &json!({
                "id": "17", "email": "ann@x.io", "phone": "5550100",
                "fields": {
                    "visits": 12, "credit": "1234.5", "distributor": true,
                    "since": "2026-01-31", "seen": "2026-01-31T10:30:00.250Z", "note": "0.3"
                }
            })
        );
        assert_eq!(
            patch(&file.rows[1]),
            &json!({
                "id": "c-2", "email": null, "phone": "false",
                "fields": {
                    "visits": "1.5", "credit": null, "distributor": false,
                    "since": "2026-01-31T10:30:00", "seen": "2026-02-01T00:00:00Z",
                    "note": "2026-01-31T10:30:00"
                }
            })
        );
        assert_eq!(
            file.rows[2].patch,
            Err(vec![CellError::new(
                None,
                "has a value in column K, outside the header"
            )])
        );
        assert_eq!(
            file.rows[3].patch,
            Err(vec![
                CellError::new(Some("email"), "holds the error #DIV/0!"),
                CellError::new(Some("id"), "line 5 already has id `17`"),
            ])
        );
    }

    #[test]
    fn a_header_that_cannot_be_read_refuses_the_file() {
        assert_eq!(
            read_csv(b"email,\xFF\na@b.co,x\n", &defs(), 10),
            Err(ImportError::Unreadable(
                "the header row is not UTF-8 text; save the file as CSV UTF-8".into()
            ))
        );
        let rows = [SheetRow::new(1, vec![Cell::Empty, text(" ")])];
        assert!(matches!(
            read_rows(rows.into_iter().map(Ok), &defs(), 10),
            Err(ImportError::Unreadable(_))
        ));
        let numbered = [SheetRow::new(1, vec![text("email"), Cell::Number(2024.0)])];
        let Err(ImportError::Header(violations)) =
            read_rows(numbered.into_iter().map(Ok), &defs(), 10)
        else {
            panic!("a number names no column")
        };
        assert_eq!(violations.0[0].pointer, "/header/1");
    }

    #[test]
    fn export_cells_keep_the_stored_text_for_csv() {
        let cases = [
            (FieldType::Integer, json!(-3), ExportCell::Integer(-3), "-3"),
            (
                FieldType::Decimal,
                json!("1234.5"),
                ExportCell::Decimal("1234.5".into()),
                "1234.5",
            ),
            (
                FieldType::Boolean,
                json!(false),
                ExportCell::Bool(false),
                "false",
            ),
            (
                FieldType::Date,
                json!("2020-02-29"),
                ExportCell::Date(
                    NaiveDate::from_ymd_opt(2020, 2, 29).unwrap(),
                    "2020-02-29".into(),
                ),
                "2020-02-29",
            ),
            (
                FieldType::Date,
                json!("someday"),
                ExportCell::Text("someday".into()),
                "someday",
            ),
            (
                FieldType::String,
                json!(" padded "),
                ExportCell::Text(" padded ".into()),
                " padded ",
            ),
            (FieldType::Text, Value::Null, ExportCell::Empty, ""),
        ];
        for (field_type, value, cell, text) in cases {
            let got = ExportCell::of(field_type, &value);
            assert_eq!(got, cell, "{value}");
            assert_eq!(got.text(), text);
        }
        let ExportCell::Datetime(at, text) =
            ExportCell::of(FieldType::Datetime, &json!("2026-01-01T08:00:00.250Z"))
        else {
            panic!("a datetime")
        };
        assert_eq!(text, "2026-01-01T08:00:00.250Z");
        assert_eq!(at.format("%H:%M:%S%.3f").to_string(), "08:00:00.250");
    }

    #[test]
    fn workbook_formats_by_media_type_and_file_name() {
        for format in WorkbookFormat::ALL {
            assert_eq!(
                WorkbookFormat::from_media_type(format.media_type()),
                Some(format)
            );
            let name = format!("Customers.{}", format.extension().to_uppercase());
            assert_eq!(WorkbookFormat::from_file_name(&name), Some(format));
        }
        assert_eq!(WorkbookFormat::from_media_type("text/csv"), None);
        assert_eq!(WorkbookFormat::from_file_name("customers.csv"), None);
        assert_eq!(
            WorkbookError::NoSuchSheet {
                name: "Clients".into(),
                sheets: vec!["Sheet1".into(), "Notes".into()]
            }
            .to_string(),
            "the workbook has no sheet `Clients`; its sheets are `Sheet1`, `Notes`"
        );
    }
}
