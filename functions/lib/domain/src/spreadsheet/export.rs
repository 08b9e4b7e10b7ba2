//! The export: customers as typed rows ([`Export`], [`ExportCell`]) under the header
//! [`export_columns`] names, spelled by a [`RowWriter`]: [`CsvWriter`] here, the xlsx
//! writer in the `workbook` crate.
//!
//! Export writes `,`, CRLF line ends and quotes only where needed, so what it writes
//! reads back the same.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::CORE_COLUMNS;
use crate::customer::Customer;
use crate::field::{FieldDef, FieldType};

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

/// Writes rows as CSV that [`read_csv`](super::read_csv) reads back to the same values.
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
    use crate::spreadsheet::read_csv;
    use crate::spreadsheet::test_fixtures::{defs, patch};
    use crate::validation::merge_patch;
    use chrono::Utc;
    use serde_json::json;

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
}
