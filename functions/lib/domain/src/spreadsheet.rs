//! The spreadsheet path: customers as CSV rows, read for `POST /customers/import` and
//! written for `GET /customers/export`.
//!
//! The dialect: UTF-8 with or without a byte order mark; `,` or `;` between values,
//! whichever the header line uses more; values quoted as RFC 4180 says (`"a ""b"""`,
//! line breaks inside quotes). The header names core columns ([`CORE_COLUMNS`]) and
//! custom fields by their API name, in any order and any letter case. Export writes `,`,
//! CRLF line ends and quotes only where needed, so what it writes reads back the same.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

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

/// One data row of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The 1-based line of the file where the row starts (the header is line 1).
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
    /// No header row, or a header that is not text.
    #[error("{0}")]
    Unreadable(String),
    /// Unknown, repeated or unnamed columns, each at `/header/<0-based column>`.
    #[error(transparent)]
    Header(Violations),
    #[error("the file has more than {limit} rows; split it into files of at most {limit} rows")]
    TooManyRows { limit: usize },
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

/// Reads an import file: checks the header against the core columns and `fields`, and
/// turns each data row into a customer merge patch. Rows whose cells are all empty (as
/// spreadsheets leave at the end of a sheet) are skipped. More than `max_rows` data rows
/// refuse the whole file.
pub fn read_csv(
    data: &[u8],
    fields: &[FieldDef],
    max_rows: usize,
) -> Result<ImportFile, ImportError> {
    let mut reader = RecordReader::new(data);
    let mut record = csv::ByteRecord::new();
    let no_header =
        || ImportError::Unreadable("the file needs a header row naming its columns".into());
    if !reader.read_header(&mut record).map_err(unreadable)? {
        return Err(no_header());
    }
    let header: Vec<String> = record
        .iter()
        .map(|cell| std::str::from_utf8(cell).map(|s| s.trim().to_lowercase()))
        .collect::<Result<_, _>>()
        .map_err(|_| ImportError::Unreadable("the header row is not UTF-8 text".into()))?;
    if header.iter().all(String::is_empty) {
        return Err(no_header());
    }
    let targets = read_header(&header, fields)?;
    let mut keys = DuplicateKeys::new(&record);

    let mut rows = Vec::new();
    while let Some(line) = reader.read_record(&mut record).map_err(unreadable)? {
        if rows.len() == max_rows {
            return Err(ImportError::TooManyRows { limit: max_rows });
        }
        let (id, email) = keys.keys(&record);
        let duplicates = keys.check(line, id.as_deref(), email.as_deref());
        let mut row = read_row(line, (id, email), &record, &header, &targets);
        if !duplicates.is_empty() {
            row.patch = match row.patch {
                Ok(_) => Err(duplicates),
                Err(mut errors) => {
                    errors.extend(duplicates);
                    Err(errors)
                }
            };
        }
        rows.push(row);
    }
    Ok(ImportFile {
        columns: header,
        rows,
    })
}

fn unreadable(err: csv::Error) -> ImportError {
    ImportError::Unreadable(format!("the file is not readable as CSV: {err}"))
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
    line: u64,
    (id, email): (Option<String>, Option<String>),
    record: &csv::ByteRecord,
    header: &[String],
    targets: &[Target],
) -> ImportRow {
    let mut row = ImportRow {
        line,
        id,
        email,
        patch: Ok(Value::Null),
    };
    if record.len() != header.len() {
        row.patch = Err(vec![CellError::new(
            None,
            format!(
                "has {} values but the header has {} columns",
                record.len(),
                header.len()
            ),
        )]);
        return row;
    }
    let mut errors = Vec::new();
    let mut patch = Map::new();
    let mut values = Map::new();
    for ((raw, target), name) in record.iter().zip(targets).zip(header) {
        let Ok(cell) = std::str::from_utf8(raw) else {
            errors.push(CellError::new(
                Some(name),
                "is not UTF-8 text; save the file as CSV UTF-8",
            ));
            continue;
        };
        let trimmed = cell.trim();
        match *target {
            Target::Core(column) => {
                let value = if trimmed.is_empty() {
                    Value::Null
                } else {
                    Value::String(trimmed.to_owned())
                };
                // The id picks the customer; it is never removed.
                if column != "id" || !value.is_null() {
                    patch.insert(column.to_owned(), value);
                }
            }
            Target::Field(def) => {
                let value = if trimmed.is_empty() {
                    Value::Null
                } else {
                    cell_value(def.field_type, cell)
                };
                values.insert(def.name.clone(), value);
            }
        }
    }
    if targets.iter().any(|t| matches!(t, Target::Field(_))) {
        patch.insert("fields".into(), Value::Object(values));
    }
    row.patch = if errors.is_empty() {
        Ok(Value::Object(patch))
    } else {
        Err(errors)
    };
    row
}

/// A non-empty cell as the JSON value a customer body would carry for a field of this
/// type; the field's own validation then decides whether it fits. Integers and booleans
/// are read from their spreadsheet spellings (`true`/`false`, `yes`/`no`, `1`/`0`);
/// everything else stays the text it is (decimals travel as strings anyway).
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

/// A stored value as a cell: text as it is, numbers and booleans in their JSON spelling.
pub fn value_cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
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
    /// For a file with this header: the `id` and `email` columns are the first whose
    /// names, trimmed and lower-cased, are `id` and `email`.
    pub fn new(header: &csv::ByteRecord) -> Self {
        let position = |name: &str| {
            header.iter().position(|cell| {
                std::str::from_utf8(cell).is_ok_and(|c| c.trim().to_lowercase() == name)
            })
        };
        Self {
            id_column: position("id"),
            email_column: position("email"),
            ..Self::default()
        }
    }

    /// The record's id and email cells, trimmed, when present, UTF-8 and not empty.
    pub fn keys(&self, record: &csv::ByteRecord) -> (Option<String>, Option<String>) {
        let cell = |column: Option<usize>| {
            let text = std::str::from_utf8(record.get(column?)?).ok()?.trim();
            (!text.is_empty()).then(|| text.to_owned())
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
    let mut names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    CORE_COLUMNS
        .iter()
        .copied()
        .chain(names)
        .map(str::to_owned)
        .collect()
}

/// Writes customers as CSV that [`read_csv`] reads back to the same values.
pub struct CsvExport {
    writer: csv::Writer<Vec<u8>>,
    fields: Vec<String>,
    rows: usize,
}

impl CsvExport {
    /// Starts the file with its header ([`export_columns`]).
    pub fn new(fields: &[FieldDef]) -> Self {
        let columns = export_columns(fields);
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        write(&mut writer, &columns);
        Self {
            writer,
            fields: columns[CORE_COLUMNS.len()..].to_vec(),
            rows: 0,
        }
    }

    /// Appends one customer, as clients see it (call [`Customer::visible`] first).
    pub fn push(&mut self, customer: &Customer) {
        let optional = |value: &Option<String>| value.clone().unwrap_or_default();
        let mut cells = vec![
            customer.id.clone(),
            customer.email.clone(),
            optional(&customer.first_name),
            optional(&customer.last_name),
            optional(&customer.document),
            optional(&customer.phone),
            optional(&customer.segment_id),
        ];
        cells.extend(self.fields.iter().map(|name| {
            customer
                .fields
                .get(name)
                .map(value_cell)
                .unwrap_or_default()
        }));
        write(&mut self.writer, &cells);
        self.rows += 1;
    }

    /// Customers written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.writer.get_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(self) -> Vec<u8> {
        self.writer
            .into_inner()
            .unwrap_or_else(|err| err.into_inner().get_ref().clone())
    }
}

fn write(writer: &mut csv::Writer<Vec<u8>>, cells: &[String]) {
    // Writing into memory cannot fail; flushing keeps `len` exact.
    let _ = writer.write_record(cells);
    let _ = writer.flush();
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

    #[test]
    fn duplicate_keys_name_the_first_line() {
        let header = csv::ByteRecord::from(vec![" Email ", "x", "ID", "id"]);
        let mut keys = DuplicateKeys::new(&header);
        let row = csv::ByteRecord::from(vec![" ann@x.io ", "", "c-1", "other"]);
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
        let blank = csv::ByteRecord::from(vec![&b"  "[..], b"", b"\xFF"]);
        assert_eq!(DuplicateKeys::new(&header).keys(&blank), (None, None));
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
        let mut export = CsvExport::new(&fields);
        export.push(&customer);
        assert_eq!(export.rows(), 1);
        let bytes = export.finish();
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
}
