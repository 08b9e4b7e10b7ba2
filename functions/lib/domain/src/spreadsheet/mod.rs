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
//! This file holds what both ways share (cells, rows, core columns, row errors, the
//! workbook formats and [`Workbooks`]); `import` reads rows into customer patches,
//! `csv_records` reads the CSV dialect into records, `export` writes customers as rows.
//! All of it is re-exported here: every item's path is `domain::spreadsheet::Name`.

use std::borrow::Cow;

use chrono::{NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::Violations;

mod csv_records;
mod export;
mod import;
#[cfg(test)]
mod test_fixtures;

pub use csv_records::{RecordReader, count_line_ends, detect_separator, record_cells};
pub use export::{CsvWriter, Export, ExportCell, ExportError, RowWriter, export_columns};
pub use import::{
    DuplicateKeys, ImportError, ImportFile, ImportRow, cell_value, header_names, read_csv,
    read_rows, read_workbook, row_problems, typed_value,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
