//! Workbooks for the customer import and export, behind the domain's
//! [`Workbooks`](domain::spreadsheet::Workbooks): [`read`] turns a sheet of an xlsx, xls
//! or ods workbook (calamine) into the domain's rows of typed cells, [`XlsxWriter`]
//! writes an export as an xlsx workbook (rust_xlsxwriter) with typed cells, and
//! [`write_rows`] writes rows read from a workbook again (the `import-customers` CLI
//! sends a big workbook in parts).
//!
//! Its own crate because the readers and the writer (zip, XML, the BIFF reader) cost
//! build time and binary size that only the programs that use them should pay: the
//! `customers` function, the local stack and `import-customers` link it; the other
//! functions do not (docs/deploying.md, "Builds and cold starts").

mod read;
mod write;

pub use read::{MAX_COLUMNS, column_name, read};
pub use write::{XlsxWriter, write_rows};

use domain::spreadsheet::{RowWriter, SheetRow, WorkbookError, WorkbookFormat};

/// The workbook support a function is given
/// ([`api::App::with_workbooks`](../api/struct.App.html)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Workbooks;

impl domain::spreadsheet::Workbooks for Workbooks {
    fn read(
        &self,
        format: WorkbookFormat,
        data: &[u8],
        sheet: Option<&str>,
        max_rows: usize,
    ) -> Result<Vec<SheetRow>, WorkbookError> {
        read(format, data, sheet, max_rows)
    }

    fn xlsx_writer(&self) -> Box<dyn RowWriter> {
        Box::new(XlsxWriter::new())
    }
}
