//! Reading an import file, whatever its format: the header rules, each row into a
//! customer merge patch ([`read_rows`]), and the repeated ids and emails
//! ([`DuplicateKeys`]). [`read_csv`] and [`read_workbook`] feed it their rows.
//!
//! The header names core columns ([`CORE_COLUMNS`]) and custom fields by their API name,
//! in any order and any letter case.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use super::csv_records::{RecordReader, record_cells};
use super::{CORE_COLUMNS, Cell, CellError, SheetRow, WorkbookError, WorkbookFormat, Workbooks};
use crate::field::{FieldDef, FieldType};
use crate::validation::Violations;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldDraft;
    use crate::spreadsheet::detect_separator;
    use crate::spreadsheet::test_fixtures::{defs, patch};
    use chrono::{NaiveDateTime, Utc};
    use serde_json::json;

    fn read(text: &str) -> ImportFile {
        read_csv(text.as_bytes(), &defs(), 100).unwrap()
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
}
