//! Writing xlsx: an export's typed rows ([`XlsxWriter`]), and rows read from a
//! workbook written again at their own row numbers ([`write_rows`]).
//!
//! A value becomes a number, date or boolean cell only where reading that cell back
//! gives the same value; the rest are text cells, which read back as they are: integers
//! beyond 15 digits (a double rounds them), decimals a double does not hold exactly,
//! dates before 1900-03-01 (where Excel's calendar is off by a day) and instants with
//! more than millisecond precision.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use domain::spreadsheet::{Cell, ExportCell, ExportError, RowWriter, SheetRow, format_number};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

/// The sheet an export is written to.
pub const SHEET_NAME: &str = "customers";
/// The largest integer a number cell holds exactly in every spreadsheet: 15 digits.
const MAX_EXACT_INTEGER: u64 = 999_999_999_999_999;

/// Number formats of date cells, so that a spreadsheet shows them as ISO dates.
struct Formats {
    date: Format,
    datetime: Format,
    datetime_ms: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            datetime_ms: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
        }
    }

    /// Writes a date, or a date and time to the millisecond, as a date cell; `false`
    /// when the sheet cannot hold it exactly.
    fn write(
        &self,
        sheet: &mut Worksheet,
        (row, column): (u32, u16),
        at: NaiveDateTime,
    ) -> Result<bool, XlsxError> {
        let Some(excel) = excel_datetime(at) else {
            return Ok(false);
        };
        let format = if at.time() == NaiveTime::MIN {
            &self.date
        } else if at.nanosecond() == 0 {
            &self.datetime
        } else {
            &self.datetime_ms
        };
        sheet.write_datetime_with_format(row, column, &excel, format)?;
        Ok(true)
    }
}

/// `at` as a spreadsheet date when it holds it exactly: from 1900-03-01 (before, Excel's
/// 1900 leap-year bug shifts the serial) to 9999, whole milliseconds.
fn excel_datetime(at: NaiveDateTime) -> Option<ExcelDateTime> {
    let first = NaiveDate::from_ymd_opt(1900, 3, 1)?;
    if at.date() < first || at.year() > 9999 || !at.nanosecond().is_multiple_of(1_000_000) {
        return None;
    }
    let date = ExcelDateTime::from_ymd(
        u16::try_from(at.year()).ok()?,
        u8::try_from(at.month()).ok()?,
        u8::try_from(at.day()).ok()?,
    )
    .ok()?;
    let millis = at.nanosecond() / 1_000_000;
    date.and_hms_milli(
        u16::try_from(at.hour()).ok()?,
        u8::try_from(at.minute()).ok()?,
        u8::try_from(at.second()).ok()?,
        u16::try_from(millis).ok()?,
    )
    .ok()
}

/// Writes an export as one xlsx sheet, [`SHEET_NAME`]: a bold, frozen header row, then
/// a row per customer with typed cells.
pub struct XlsxWriter {
    sheet: Worksheet,
    formats: Formats,
    row: u32,
    /// What the rows would take as CSV ([`RowWriter::bytes`]).
    len: usize,
    /// The first write that failed, reported by `finish`.
    error: Option<XlsxError>,
}

impl XlsxWriter {
    pub fn new() -> Self {
        let mut sheet = Worksheet::new();
        let error = sheet.set_name(SHEET_NAME).err();
        Self {
            sheet,
            formats: Formats::new(),
            row: 0,
            len: 0,
            error,
        }
    }

    fn keep(&mut self, result: Result<(), XlsxError>) {
        if let Err(err) = result
            && self.error.is_none()
        {
            self.error = Some(err);
        }
    }

    fn cell(&mut self, column: u16, cell: &ExportCell) -> Result<(), XlsxError> {
        let (row, sheet) = (self.row, &mut self.sheet);
        match cell {
            ExportCell::Empty => {}
            ExportCell::Text(text) => {
                sheet.write_string(row, column, text)?;
            }
            ExportCell::Integer(n) if n.unsigned_abs() <= MAX_EXACT_INTEGER => {
                sheet.write_number(row, column, *n as f64)?;
            }
            ExportCell::Integer(n) => {
                sheet.write_string(row, column, n.to_string())?;
            }
            ExportCell::Decimal(text) => match text.parse::<f64>() {
                Ok(number) if format_number(number) == *text => {
                    sheet.write_number(row, column, number)?;
                }
                _ => {
                    sheet.write_string(row, column, text)?;
                }
            },
            ExportCell::Bool(b) => {
                sheet.write_boolean(row, column, *b)?;
            }
            ExportCell::Date(date, text) => {
                let at = date.and_time(NaiveTime::MIN);
                if !self.formats.write(sheet, (row, column), at)? {
                    sheet.write_string(row, column, text)?;
                }
            }
            ExportCell::Datetime(at, text) => {
                if !self.formats.write(sheet, (row, column), *at)? {
                    sheet.write_string(row, column, text)?;
                }
            }
        }
        Ok(())
    }
}

impl Default for XlsxWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RowWriter for XlsxWriter {
    fn header(&mut self, columns: &[String]) {
        let bold = Format::new().set_bold();
        for (column, name) in (0u16..).zip(columns) {
            let result = self
                .sheet
                .write_string_with_format(self.row, column, name, &bold)
                .map(drop);
            self.keep(result);
            self.len += name.len() + 1;
        }
        let result = self.sheet.set_freeze_panes(1, 0).map(drop);
        self.keep(result);
        self.row += 1;
    }

    fn row(&mut self, cells: &[ExportCell]) {
        for (column, cell) in (0u16..).zip(cells) {
            let result = self.cell(column, cell);
            self.keep(result);
            self.len += cell.text().len() + 1;
        }
        self.row += 1;
    }

    fn bytes(&self) -> usize {
        self.len
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, ExportError> {
        let this = *self;
        if let Some(err) = this.error {
            return Err(ExportError(err.to_string()));
        }
        let mut book = Workbook::new();
        book.push_worksheet(this.sheet);
        book.save_to_buffer()
            .map_err(|err| ExportError(err.to_string()))
    }
}

/// Writes the header and `rows` of a sheet as an xlsx workbook, each at its own row
/// number (`line`), cells from column A, so that an import of the result reports the
/// lines of the sheet they came from. Rows holding a cell that cannot be written
/// ([`Cell::Invalid`]) must be left out (the import fails them anyway,
/// `domain::spreadsheet::row_problems`).
pub fn write_rows(header: &SheetRow, rows: &[SheetRow]) -> Result<Vec<u8>, ExportError> {
    let written = || -> Result<Vec<u8>, XlsxError> {
        let formats = Formats::new();
        let mut sheet = Worksheet::new();
        for row in std::iter::once(header).chain(rows) {
            let at = u32::try_from(row.line.saturating_sub(1))
                .map_err(|_| XlsxError::RowColumnLimitError)?;
            for (column, cell) in (0u16..).zip(&row.cells) {
                match cell {
                    Cell::Empty | Cell::Invalid(_) => {}
                    Cell::Text(text) => {
                        sheet.write_string(at, column, text)?;
                    }
                    Cell::Number(number) => {
                        sheet.write_number(at, column, *number)?;
                    }
                    Cell::Bool(b) => {
                        sheet.write_boolean(at, column, *b)?;
                    }
                    Cell::DateTime(when) => {
                        if !formats.write(&mut sheet, (at, column), *when)? {
                            // Text that reads back as the same date or time.
                            sheet.write_string(at, column, cell.text())?;
                        }
                    }
                }
            }
        }
        let mut book = Workbook::new();
        book.push_worksheet(sheet);
        book.save_to_buffer()
    };
    written().map_err(|err| ExportError(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read;
    use domain::spreadsheet::WorkbookFormat;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    /// Writes one export row and reads it back as the import reads workbooks.
    fn round_trip(cells: &[ExportCell]) -> Vec<Cell> {
        let mut writer: Box<dyn RowWriter> = Box::new(XlsxWriter::new());
        let columns: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
        writer.header(&columns);
        writer.row(cells);
        let bytes = writer.finish().unwrap();
        let rows = read(WorkbookFormat::Xlsx, &bytes, Some(SHEET_NAME), 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 2);
        rows[1].cells.clone()
    }

    #[test]
    fn export_cells_are_typed_where_they_read_back_the_same() {
        let date = NaiveDate::from_ymd_opt(2020, 2, 29).unwrap();
        let cells = round_trip(&[
            ExportCell::Integer(-12),
            ExportCell::Integer(999_999_999_999_999),
            ExportCell::Decimal("1234.5".into()),
            ExportCell::Decimal("-0.01".into()),
            ExportCell::Bool(true),
            ExportCell::Date(date, "2020-02-29".into()),
            ExportCell::Datetime(at("2026-01-01 08:00:00.250"), "x".into()),
            ExportCell::Datetime(at("2026-01-01 08:00:00"), "x".into()),
            ExportCell::Text("=1+1".into()),
            ExportCell::Empty,
        ]);
        assert_eq!(
            cells,
            [
                Cell::Number(-12.0),
                Cell::Number(999_999_999_999_999.0),
                Cell::Number(1234.5),
                Cell::Number(-0.01),
                Cell::Bool(true),
                Cell::DateTime(at("2020-02-29 00:00:00")),
                Cell::DateTime(at("2026-01-01 08:00:00.250")),
                Cell::DateTime(at("2026-01-01 08:00:00")),
                Cell::Text("=1+1".into()),
                Cell::Empty,
            ]
        );
    }

    #[test]
    fn values_a_cell_would_change_stay_text() {
        let old = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap();
        let cells = round_trip(&[
            ExportCell::Integer(1_234_567_890_123_456_789),
            ExportCell::Decimal("0.1000000000000000055".into()),
            ExportCell::Decimal("123456789012345678.5".into()),
            ExportCell::Date(old, "1899-12-31".into()),
            ExportCell::Datetime(
                at("2026-01-01 08:00:00.000001"),
                "2026-01-01T08:00:00.000001Z".into(),
            ),
        ]);
        let text = |s: &str| Cell::Text(s.into());
        assert_eq!(
            cells,
            [
                text("1234567890123456789"),
                text("0.1000000000000000055"),
                text("123456789012345678.5"),
                text("1899-12-31"),
                text("2026-01-01T08:00:00.000001Z"),
            ]
        );
    }

    #[test]
    fn rows_are_written_again_at_their_row_numbers() {
        let header = SheetRow::new(3, vec![Cell::Text("email".into()), Cell::Text("n".into())]);
        let rows = [
            SheetRow::new(
                7,
                vec![
                    Cell::Text("a@b.co".into()),
                    Cell::DateTime(at("2026-01-31 10:30:00")),
                ],
            ),
            SheetRow::new(12, vec![Cell::Bool(false), Cell::Number(0.1 + 0.2)]),
        ];
        let bytes = write_rows(&header, &rows).unwrap();
        let read = read(WorkbookFormat::Xlsx, &bytes, None, 10).unwrap();
        assert_eq!(read, [header, rows[0].clone(), rows[1].clone()]);
    }
}
