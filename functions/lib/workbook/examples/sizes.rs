//! What a full export page costs as xlsx: writes 10,000 customers' rows (the export's
//! and the import's row limit) with 16 columns of every kind, then reads the workbook
//! back as the import does, printing sizes and times (docs/api.md cites them):
//!
//! ```sh
//! cargo run --release -p workbook --example sizes
//! /usr/bin/time -v target/release/examples/sizes   # the peak memory
//! ```

use std::time::Instant;

use chrono::NaiveDate;
use domain::spreadsheet::{ExportCell, RowWriter, WorkbookFormat};

const ROWS: usize = 10_000;

fn main() {
    let columns: Vec<String> = (0..16).map(|i| format!("column_{i}")).collect();
    let started = Instant::now();
    let mut writer: Box<dyn RowWriter> = Box::new(workbook::XlsxWriter::new());
    writer.header(&columns);
    for i in 0..ROWS {
        let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i as u64);
        let at = day.and_hms_opt(10, 30, 0).unwrap();
        let mut cells = vec![
            ExportCell::Text(format!("c-{i:06}")),
            ExportCell::Text(format!("customer-{i}@example.com")),
            ExportCell::Text(format!("First {i}")),
            ExportCell::Text(format!("Last {i}")),
            ExportCell::Text(format!("DOC-{i:08}")),
            ExportCell::Text(format!("+1 555 {i:04}")),
            ExportCell::Text("01JSEGMENT0000000000000000".into()),
            ExportCell::Integer(i as i64 * 7),
            ExportCell::Decimal(format!("{}.{:02}", i * 3, i % 100)),
            ExportCell::Bool(i % 2 == 0),
            ExportCell::Date(day, day.to_string()),
            ExportCell::Datetime(at, format!("{}Z", at.format("%Y-%m-%dT%H:%M:%S"))),
            ExportCell::Text(["AA", "A", "B"][i % 3].into()),
        ];
        cells.push(ExportCell::Text(format!("a note about customer {i}")));
        cells.push(ExportCell::Text(format!("code-{}", i % 97)));
        cells.push(ExportCell::Empty);
        writer.row(&cells);
    }
    let as_csv = writer.bytes();
    let bytes = writer.finish().expect("the workbook");
    let written = started.elapsed();
    let started = Instant::now();
    let rows = workbook::read(WorkbookFormat::Xlsx, &bytes, None, ROWS + 2).expect("read");
    let read = started.elapsed();
    assert_eq!(rows.len(), ROWS + 1);
    println!(
        "{ROWS} rows x {} columns: {} bytes as CSV, {} bytes as xlsx ({} base64); \
         written in {} ms, read in {} ms",
        columns.len(),
        as_csv,
        bytes.len(),
        bytes.len().div_ceil(3) * 4,
        written.as_millis(),
        read.as_millis()
    );
}
