//! Reading a sheet into rows of typed cells.
//!
//! The header is the sheet's first row with a value; its columns run from its first to
//! its last value, and every row gets a cell for each of them. A value left or right of
//! them is the row's [`problem`](SheetRow::problem): the import would have nowhere to
//! put it, and dropping it silently would lose data. Rows are numbered as the sheet
//! numbers them, so a failed row's `line` is the row a person sees.
//!
//! xlsx sheets are read cell by cell (calamine's cell reader), so that reading stops
//! after the rows the import takes and a sheet's extent costs nothing by itself; xls and
//! ods sheets are read whole (calamine has no cell reader for them), within the request
//! size limit.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Data, DataRef, Ods, Reader, Xls, Xlsx};
use chrono::{NaiveDate, NaiveDateTime};
use domain::spreadsheet::{Cell, SheetRow, WorkbookError, WorkbookFormat};

/// The widest header read. A tenant has at most 200 fields and 7 core columns, so no
/// header the import takes is wider; a wider one is refused before its rows are laid
/// out (each row gets a cell per column).
pub const MAX_COLUMNS: usize = 256;

/// The rows of the first sheet, or of `sheet`, as the domain's
/// [`Workbooks::read`](domain::spreadsheet::Workbooks::read) describes; at most
/// `max_rows` rows with a value (the header included) are read.
pub fn read(
    format: WorkbookFormat,
    data: &[u8],
    sheet: Option<&str>,
    max_rows: usize,
) -> Result<Vec<SheetRow>, WorkbookError> {
    // The readers parse what a client sent; should one of them panic on a malformed
    // file, that file is unreadable, not the request (or the local stack) broken.
    let read = std::panic::AssertUnwindSafe(|| read_sheet(format, data, sheet, max_rows));
    std::panic::catch_unwind(read).unwrap_or_else(|_| {
        Err(WorkbookError::Unreadable {
            format: format.extension(),
            detail: "its structure is broken".into(),
        })
    })
}

fn read_sheet(
    format: WorkbookFormat,
    data: &[u8],
    sheet: Option<&str>,
    max_rows: usize,
) -> Result<Vec<SheetRow>, WorkbookError> {
    let unreadable = |detail: String| WorkbookError::Unreadable {
        format: format.extension(),
        detail,
    };
    let mut rows = Rows::new(max_rows);
    match format {
        WorkbookFormat::Xlsx => {
            let mut book = Xlsx::new(Cursor::new(data)).map_err(|e| unreadable(e.to_string()))?;
            let name = pick(book.sheet_names(), sheet)?;
            let mut cells = book
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(e.to_string()))?;
            while let Some(cell) = cells.next_cell().map_err(|e| unreadable(e.to_string()))? {
                let (row, column) = cell.get_position();
                if !rows.add(row, column, from_ref(cell.get_value())) {
                    break;
                }
            }
        }
        WorkbookFormat::Xls => {
            let mut book = Xls::new(Cursor::new(data)).map_err(|e| unreadable(e.to_string()))?;
            let name = pick(book.sheet_names(), sheet)?;
            let range = book
                .worksheet_range(&name)
                .map_err(|e| unreadable(e.to_string()))?;
            rows.add_range(&range);
        }
        WorkbookFormat::Ods => {
            let mut book = Ods::new(Cursor::new(data)).map_err(|e| unreadable(e.to_string()))?;
            let name = pick(book.sheet_names(), sheet)?;
            let range = book
                .worksheet_range(&name)
                .map_err(|e| unreadable(e.to_string()))?;
            rows.add_range(&range);
        }
    }
    rows.finish()
}

/// The sheet to read: `wanted` (exactly as named), else the first.
fn pick(names: Vec<String>, wanted: Option<&str>) -> Result<String, WorkbookError> {
    match wanted {
        Some(wanted) if names.iter().any(|name| name == wanted) => Ok(wanted.to_owned()),
        Some(wanted) => Err(WorkbookError::NoSuchSheet {
            name: wanted.to_owned(),
            sheets: names,
        }),
        None => names.into_iter().next().ok_or(WorkbookError::NoSheets),
    }
}

/// The cells with a value, by row and column (0-based), as they are read.
struct Rows {
    rows: BTreeMap<u32, Vec<(u32, Cell)>>,
    max_rows: usize,
}

impl Rows {
    fn new(max_rows: usize) -> Self {
        Self {
            rows: BTreeMap::new(),
            max_rows,
        }
    }

    /// Keeps a cell unless it is blank; `false` once a cell lies past the rows wanted
    /// (sheets list their rows in order, so the rest does too).
    fn add(&mut self, row: u32, column: u32, cell: Cell) -> bool {
        if cell.is_blank() {
            return true;
        }
        if !self.rows.contains_key(&row) && self.rows.len() >= self.max_rows {
            match self.rows.last_key_value() {
                Some((&last, _)) if last > row => {
                    self.rows.remove(&last);
                }
                _ => return false,
            }
        }
        self.rows.entry(row).or_default().push((column, cell));
        true
    }

    fn add_range(&mut self, range: &calamine::Range<Data>) {
        let Some((top, left)) = range.start() else {
            return;
        };
        for (index, row) in range.rows().enumerate() {
            let at = top + index as u32;
            for (offset, data) in row.iter().enumerate() {
                if !self.add(at, left + offset as u32, from_data(data)) {
                    return;
                }
            }
        }
    }

    /// Lays the rows out under the header's columns.
    fn finish(self) -> Result<Vec<SheetRow>, WorkbookError> {
        let mut rows = self.rows.into_iter();
        let Some((header_row, header_cells)) = rows.next() else {
            return Ok(Vec::new());
        };
        let first = header_cells.iter().map(|(c, _)| *c).min().unwrap_or(0);
        let last = header_cells.iter().map(|(c, _)| *c).max().unwrap_or(0);
        let width = (last - first) as usize + 1;
        if width > MAX_COLUMNS {
            return Err(WorkbookError::TooWide {
                columns: width,
                limit: MAX_COLUMNS,
            });
        }
        let lay_out = |row: u32, cells: Vec<(u32, Cell)>| {
            let mut out = SheetRow::new(u64::from(row) + 1, vec![Cell::Empty; width]);
            for (column, cell) in cells {
                if (first..=last).contains(&column) {
                    out.cells[(column - first) as usize] = cell;
                } else if out.problem.is_none() {
                    out.problem = Some(format!(
                        "has a value in column {}, outside the header's columns {} to {}",
                        column_name(column),
                        column_name(first),
                        column_name(last)
                    ));
                }
            }
            out
        };
        let mut out = vec![lay_out(header_row, header_cells)];
        out.extend(rows.map(|(row, cells)| lay_out(row, cells)));
        Ok(out)
    }
}

/// A column's letters as a spreadsheet names it: 0 is `A`, 26 is `AA`.
pub fn column_name(column: u32) -> String {
    let mut name = Vec::new();
    let mut n = u64::from(column) + 1;
    while n > 0 {
        let digit = ((n - 1) % 26) as u8;
        name.push(b'A' + digit);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

fn from_ref(data: &DataRef<'_>) -> Cell {
    match data {
        DataRef::Empty => Cell::Empty,
        DataRef::String(text) => Cell::Text(text.clone()),
        DataRef::SharedString(text) => Cell::Text((*text).to_owned()),
        DataRef::Float(number) => Cell::Number(*number),
        DataRef::Int(number) => Cell::Number(*number as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(at) => from_excel_datetime(at),
        DataRef::DateTimeIso(text) => from_iso(text),
        DataRef::DurationIso(text) => Cell::Text(text.clone()),
        DataRef::Error(error) => Cell::Invalid(format!("holds the error {error}")),
    }
}

fn from_data(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(text) => Cell::Text(text.clone()),
        Data::Float(number) => Cell::Number(*number),
        Data::Int(number) => Cell::Number(*number as f64),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(at) => from_excel_datetime(at),
        Data::DateTimeIso(text) => from_iso(text),
        Data::DurationIso(text) => Cell::Text(text.clone()),
        Data::Error(error) => Cell::Invalid(format!("holds the error {error}")),
    }
}

/// A number with a date or time format. A time of day alone (a serial below 1) and a
/// duration are text (`10:30:00`): no field holds one.
fn from_excel_datetime(at: &calamine::ExcelDateTime) -> Cell {
    if at.is_duration() || at.as_f64() < 1.0 {
        return match at.as_datetime() {
            Some(time) if !at.is_duration() => Cell::Text(time.format("%H:%M:%S%.f").to_string()),
            _ => Cell::Number(at.as_f64()),
        };
    }
    match at.as_datetime() {
        Some(at) => Cell::DateTime(at),
        None => Cell::Number(at.as_f64()),
    }
}

/// An OpenDocument date (`2026-01-31`) or date and time (`2026-01-31T10:30:00`).
fn from_iso(text: &str) -> Cell {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
        })
        .map_or_else(|_| Cell::Text(text.to_owned()), Cell::DateTime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_by_letters() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
        assert_eq!(column_name(16_383), "XFD");
    }

    #[test]
    fn rows_are_laid_out_under_the_header() {
        let mut rows = Rows::new(10);
        let text = |s: &str| Cell::Text(s.to_owned());
        assert!(rows.add(4, 3, text("x")), "below the header, right of it");
        assert!(rows.add(1, 1, text("email")));
        assert!(rows.add(1, 2, text("tier")));
        assert!(rows.add(2, 2, Cell::Number(3.0)));
        assert!(rows.add(3, 1, text("   ")), "blank cells are not kept");
        assert!(rows.add(5, 0, Cell::Bool(true)));
        let rows = rows.finish().unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 5, 6]);
        assert_eq!(rows[0].cells, [text("email"), text("tier")]);
        assert_eq!(rows[1].cells, [Cell::Empty, Cell::Number(3.0)]);
        assert_eq!(rows[1].problem, None);
        assert_eq!(
            rows[2].problem.as_deref(),
            Some("has a value in column D, outside the header's columns B to C")
        );
        assert_eq!(
            rows[3].problem.as_deref(),
            Some("has a value in column A, outside the header's columns B to C")
        );
    }

    #[test]
    fn reading_stops_after_the_rows_wanted() {
        let mut rows = Rows::new(2);
        assert!(rows.add(0, 0, Cell::Text("email".into())));
        assert!(rows.add(1, 0, Cell::Text("a@b.co".into())));
        assert!(rows.add(1, 1, Cell::Text("more of row 2".into())));
        assert!(!rows.add(2, 0, Cell::Text("c@d.co".into())));
        assert_eq!(rows.finish().unwrap().len(), 2);
    }

    #[test]
    fn a_header_wider_than_any_import_is_refused() {
        let mut rows = Rows::new(10);
        rows.add(0, 0, Cell::Text("email".into()));
        rows.add(0, 16_383, Cell::Text("far".into()));
        assert_eq!(
            rows.finish(),
            Err(WorkbookError::TooWide {
                columns: 16_384,
                limit: MAX_COLUMNS
            })
        );
    }

    #[test]
    fn open_document_dates() {
        let at = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert_eq!(
            from_iso("2026-01-31"),
            Cell::DateTime(at("2026-01-31 00:00:00"))
        );
        assert_eq!(
            from_iso("2026-01-31T10:30:00.5"),
            Cell::DateTime(at("2026-01-31 10:30:00.5"))
        );
        assert_eq!(from_iso("soon"), Cell::Text("soon".into()));
    }
}
