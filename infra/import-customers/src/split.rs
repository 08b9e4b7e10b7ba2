//! Splitting an import file into requests the API accepts, and mapping the lines of a
//! request back to the lines of the file.
//!
//! A workbook ([`File::parse_workbook`]) is read as the server reads one (the
//! `workbook` crate) and each request is an xlsx workbook of the header and some of its
//! rows, each written at its own row number: the server then reports the sheet's rows
//! as they are, and the cells keep their types. Rows the server would fail whatever
//! the tenant's fields (a repeated id or email, a value outside the header's columns, a
//! formula's error, which a workbook cannot be given again) are failed here with the
//! server's words.
//!
//! CSV:
//! The file is read as the server reads it (`domain::spreadsheet::read_csv`): UTF-8 with
//! or without a byte order mark, `,` or `;` by the server's rule, RFC 4180 quoting,
//! blank lines and rows whose cells are all empty skipped. Every record is written
//! again with the `csv` crate (`,` between values, `\n` after each record, quotes where
//! needed), so a value with line breaks stays whole in one request. Each request starts
//! with the header, then as many rows as the row and byte limits allow.
//!
//! Lines: the server reports a failed row by the line where it starts in the body it
//! was sent. [`File::parse`] keeps the line where each record starts in the file;
//! [`Request`] keeps where each of its rows starts in its body; together they turn a
//! reported line into the file's line.

use std::fmt;
use std::ops::Range;

use domain::spreadsheet::{
    Cell, DuplicateKeys, RecordReader, SheetRow, WorkbookFormat, count_line_ends as count_lines,
    header_names, record_cells, row_problems,
};

use crate::report::{CellError, FailedRow};

/// Most bytes per request body. The API refuses bodies over 6,000,000 bytes; this leaves
/// room to spare.
pub const MAX_REQUEST_BYTES: usize = 5_000_000;
/// Most rows per request: the API refuses more.
pub const MAX_REQUEST_ROWS: usize = 10_000;
/// Most bytes per workbook request body. The API refuses workbooks over 4,500,000 bytes
/// (they reach the function base64-encoded); this leaves room to spare.
pub const MAX_WORKBOOK_REQUEST_BYTES: usize = 4_000_000;
/// The most characters a workbook cell holds.
const MAX_CELL_CHARS: usize = 32_767;
/// The rows of an xlsx sheet.
const MAX_SHEET_ROWS: u64 = 1_048_576;

/// Why a file cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// The file holds no header row (it is empty or blank).
    NoHeader,
    /// One row is more than a request may carry, even alone with the header.
    RowTooLarge {
        line: u64,
        bytes: usize,
        limit: usize,
    },
    /// The CSV reader or writer failed.
    Csv(String),
    /// The workbook cannot be read, or its sheet is not there (the server's words).
    Workbook(String),
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHeader => write!(f, "the file has no header row naming its columns"),
            Self::RowTooLarge { line, bytes, limit } => write!(
                f,
                "the row at line {line} takes {bytes} bytes with the header, more than the \
                 {limit} bytes a request may carry"
            ),
            Self::Csv(err) => write!(f, "the file is not readable as CSV: {err}"),
            Self::Workbook(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for SplitError {}

impl From<csv::Error> for SplitError {
    fn from(err: csv::Error) -> Self {
        Self::Csv(err.to_string())
    }
}

/// One data row, as written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    /// The 1-based line of the file where the record starts.
    line: u64,
    /// Where the row's bytes end in [`File::body`] (they start where the previous row's
    /// end).
    end: usize,
    /// How many lines the written row takes (more than one when a value holds line
    /// breaks).
    lines: u64,
}

/// An import file, read and written again record by record (CSV) or row by row (a
/// workbook).
#[derive(Debug, Clone)]
pub struct File {
    rows: Rows,
    /// Rows that name an id or an email an earlier row of the file already names. The
    /// server fails such rows within one request; across requests it cannot see them,
    /// so they are failed here, with the server's words, and not sent.
    duplicates: Vec<FailedRow>,
}

#[derive(Debug, Clone)]
enum Rows {
    Csv(CsvRows),
    Sheet {
        header: SheetRow,
        rows: Vec<SheetRow>,
    },
}

#[derive(Debug, Clone)]
struct CsvRows {
    /// The header record, written, with its line end.
    header: Vec<u8>,
    header_lines: u64,
    /// Every data row to send, written back to back.
    body: Vec<u8>,
    rows: Vec<Row>,
}

impl File {
    /// Reads a whole CSV file.
    pub fn parse(data: &[u8]) -> Result<File, SplitError> {
        let mut reader = RecordReader::new(data);
        let mut record = csv::ByteRecord::new();
        if !reader.read_header(&mut record)? {
            return Err(SplitError::NoHeader);
        }
        // Quoted throughout, so that `detect_separator` finds `,` in every request
        // whatever the names hold.
        let mut header_writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(Vec::new());
        header_writer.write_byte_record(&record)?;
        let header = into_bytes(header_writer)?;
        let header_lines = count_lines(&header);
        let mut seen = DuplicateKeys::new(&record_cells(&record));

        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        let mut rows = Vec::new();
        let mut duplicates = Vec::new();
        let mut written = 0;
        while let Some(line) = reader.read_record(&mut record)? {
            let (id, email) = seen.keys(&record_cells(&record));
            let errors = seen.check(line, id.as_deref(), email.as_deref());
            if !errors.is_empty() {
                duplicates.push(FailedRow { line, id, errors });
                continue;
            }
            writer.write_byte_record(&record)?;
            writer
                .flush()
                .map_err(|err| SplitError::Csv(err.to_string()))?;
            let end = writer.get_ref().len();
            rows.push(Row {
                line,
                end,
                lines: count_lines(&writer.get_ref()[written..end]),
            });
            written = end;
        }
        Ok(File {
            rows: Rows::Csv(CsvRows {
                header,
                header_lines,
                body: into_bytes(writer)?,
                rows,
            }),
            duplicates,
        })
    }

    /// Reads the first sheet of a workbook, or `sheet`.
    pub fn parse_workbook(
        format: WorkbookFormat,
        data: &[u8],
        sheet: Option<&str>,
    ) -> Result<File, SplitError> {
        let unreadable = |err: &dyn fmt::Display| SplitError::Workbook(err.to_string());
        let mut rows = workbook::read(format, data, sheet, usize::MAX)
            .map_err(|err| unreadable(&err))?
            .into_iter();
        let header = rows.next().ok_or(SplitError::NoHeader)?;
        let names = header_names(&header.cells).map_err(|err| unreadable(&err))?;
        let mut seen = DuplicateKeys::new(&header.cells);
        let mut sendable = Vec::new();
        let mut duplicates = Vec::new();
        for row in rows.filter(|row| !row.is_blank()) {
            let (id, email) = seen.keys(&row.cells);
            let mut errors = row_problems(&row, &names);
            errors.extend(seen.check(row.line, id.as_deref(), email.as_deref()));
            errors.extend(unwritable(&row));
            if errors.is_empty() {
                sendable.push(row);
            } else {
                duplicates.push(FailedRow {
                    line: row.line,
                    id,
                    errors,
                });
            }
        }
        Ok(File {
            rows: Rows::Sheet {
                header,
                rows: sendable,
            },
            duplicates,
        })
    }

    /// The data rows to send.
    pub fn rows(&self) -> usize {
        match &self.rows {
            Rows::Csv(csv) => csv.rows.len(),
            Rows::Sheet { rows, .. } => rows.len(),
        }
    }

    /// Rows failed before sending anything: see [`File`] and, for a workbook, the
    /// module's documentation.
    pub fn duplicates(&self) -> &[FailedRow] {
        &self.duplicates
    }

    /// Splits the rows into requests of at most `max_rows` rows and `max_bytes` bytes
    /// (the header included; for a workbook, at most [`MAX_WORKBOOK_REQUEST_BYTES`]), in
    /// file order. A file without rows is one request of its header alone, so the server
    /// still checks the header.
    pub fn chunks(
        &self,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Vec<Range<usize>>, SplitError> {
        match &self.rows {
            Rows::Csv(csv) => csv.chunks(max_rows, max_bytes),
            Rows::Sheet { header, rows } => sheet_chunks(
                header,
                rows,
                max_rows.max(1),
                max_bytes.min(MAX_WORKBOOK_REQUEST_BYTES),
            ),
        }
    }

    /// The body that imports `rows` (indexes into the file's rows), and its line map.
    pub fn request(&self, rows: Range<usize>) -> Request {
        match &self.rows {
            Rows::Csv(csv) => csv.request(rows),
            Rows::Sheet { header, rows: all } => Request {
                // Cannot fail: `parse_workbook` kept only rows a workbook holds.
                body: workbook::write_rows(header, &all[rows.clone()]).unwrap_or_default(),
                content_type: WorkbookFormat::Xlsx.media_type(),
                starts: all[rows.clone()].iter().map(|r| (r.line, r.line)).collect(),
                rows,
            },
        }
    }
}

/// Why a row cannot be written into a workbook again (past the last row of a sheet, or
/// text longer than a cell holds), if it cannot.
fn unwritable(row: &SheetRow) -> Option<CellError> {
    let too_long =
        |cell: &Cell| matches!(cell, Cell::Text(t) if t.chars().count() > MAX_CELL_CHARS);
    let detail = if row.line > MAX_SHEET_ROWS {
        format!("is past row {MAX_SHEET_ROWS}, the last an xlsx sheet has")
    } else if row.cells.iter().any(too_long) {
        format!("holds text longer than the {MAX_CELL_CHARS} characters of a workbook cell")
    } else {
        return None;
    };
    Some(CellError {
        column: None,
        detail,
    })
}

/// Requests of at most `max_rows` rows whose workbooks take at most `max_bytes`: as many
/// rows as fit, halving a request that is too large.
fn sheet_chunks(
    header: &SheetRow,
    rows: &[SheetRow],
    max_rows: usize,
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, SplitError> {
    let size = |range: Range<usize>| {
        workbook::write_rows(header, &rows[range])
            .map(|body| body.len())
            .map_err(|err| SplitError::Workbook(err.to_string()))
    };
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut len = max_rows.min(rows.len() - start);
        loop {
            let bytes = size(start..start + len)?;
            if bytes <= max_bytes {
                break;
            }
            if len == 1 {
                return Err(SplitError::RowTooLarge {
                    line: rows[start].line,
                    bytes,
                    limit: max_bytes,
                });
            }
            len = len.div_ceil(2);
        }
        chunks.push(start..start + len);
        start += len;
    }
    if chunks.is_empty() {
        chunks.push(0..0);
    }
    Ok(chunks)
}

impl CsvRows {
    fn row_bytes(&self, rows: Range<usize>) -> &[u8] {
        let start = rows.start.checked_sub(1).map_or(0, |i| self.rows[i].end);
        let end = rows.end.checked_sub(1).map_or(0, |i| self.rows[i].end);
        &self.body[start..end.max(start)]
    }

    fn chunks(&self, max_rows: usize, max_bytes: usize) -> Result<Vec<Range<usize>>, SplitError> {
        let max_rows = max_rows.max(1);
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut bytes = self.header.len();
        for (index, row) in self.rows.iter().enumerate() {
            let size = self.row_bytes(index..index + 1).len();
            if self.header.len() + size > max_bytes {
                return Err(SplitError::RowTooLarge {
                    line: row.line,
                    bytes: self.header.len() + size,
                    limit: max_bytes,
                });
            }
            if index - start == max_rows || bytes + size > max_bytes {
                chunks.push(start..index);
                start = index;
                bytes = self.header.len();
            }
            bytes += size;
        }
        if start < self.rows.len() || chunks.is_empty() {
            chunks.push(start..self.rows.len());
        }
        Ok(chunks)
    }

    fn request(&self, rows: Range<usize>) -> Request {
        let mut body = Vec::with_capacity(self.header.len() + self.row_bytes(rows.clone()).len());
        body.extend_from_slice(&self.header);
        body.extend_from_slice(self.row_bytes(rows.clone()));
        let mut line = self.header_lines + 1;
        let starts = self.rows[rows.clone()]
            .iter()
            .map(|row| {
                let start = (line, row.line);
                line += row.lines;
                start
            })
            .collect();
        Request {
            body,
            content_type: "text/csv",
            rows,
            starts,
        }
    }
}

/// One request body and where its rows came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub body: Vec<u8>,
    /// `text/csv`, or the xlsx media type for a workbook's rows.
    pub content_type: &'static str,
    /// The file's rows it carries.
    pub rows: Range<usize>,
    /// For each row: the line where it starts in `body`, and in the file.
    starts: Vec<(u64, u64)>,
}

impl Request {
    /// The file's line for a line the server reports in this body: the line of the row
    /// that starts there (or, for a line inside a row, of the row it belongs to).
    pub fn file_line(&self, line: u64) -> u64 {
        match self.starts.binary_search_by_key(&line, |&(body, _)| body) {
            Ok(index) => self.starts[index].1,
            Err(0) => line,
            Err(index) => self.starts[index - 1].1,
        }
    }

    /// The file's row (an index, as in [`File::request`]) that starts at `line` of this
    /// body, or the first row after it.
    pub fn row_at(&self, line: u64) -> usize {
        let index = self.starts.partition_point(|&(body, _)| body < line);
        self.rows.start + index
    }

    /// The line of the file where the request's first row starts.
    pub fn first_line(&self) -> Option<u64> {
        self.starts.first().map(|&(_, file)| file)
    }

    /// The line of the file where the request's last row starts.
    pub fn last_line(&self) -> Option<u64> {
        self.starts.last().map(|&(_, file)| file)
    }
}

fn into_bytes(writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, SplitError> {
    writer
        .into_inner()
        .map_err(|err| SplitError::Csv(err.error().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CellError;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("UTF-8")
    }

    /// The rows (without header) of each request, as text.
    fn bodies(file: &File, max_rows: usize, max_bytes: usize) -> Vec<String> {
        file.chunks(max_rows, max_bytes)
            .expect("chunks")
            .into_iter()
            .map(|rows| text(&file.request(rows).body).to_owned())
            .collect()
    }

    #[test]
    fn requests_hold_at_most_the_row_limit_and_repeat_the_header() {
        let file =
            File::parse(b"email,first_name\na@x.io,A\nb@x.io,B\nc@x.io,C\nd@x.io,D\ne@x.io,E\n")
                .expect("parse");
        assert_eq!(file.rows(), 5);
        assert_eq!(
            file.chunks(2, MAX_REQUEST_BYTES).unwrap(),
            vec![0..2, 2..4, 4..5]
        );
        assert_eq!(
            bodies(&file, 2, MAX_REQUEST_BYTES),
            [
                "\"email\",\"first_name\"\na@x.io,A\nb@x.io,B\n",
                "\"email\",\"first_name\"\nc@x.io,C\nd@x.io,D\n",
                "\"email\",\"first_name\"\ne@x.io,E\n",
            ]
        );
        assert_eq!(file.chunks(5, MAX_REQUEST_BYTES).unwrap(), vec![0..5]);
        assert_eq!(file.chunks(10_000, MAX_REQUEST_BYTES).unwrap(), vec![0..5]);
    }

    #[test]
    fn requests_stay_within_the_byte_limit() {
        // The header takes 8 bytes, each row 8.
        let file = File::parse(b"email\naa@x.io\nbb@x.io\ncc@x.io\ndd@x.io\n").expect("parse");
        assert_eq!(file.request(0..0).body, b"\"email\"\n");
        // 8 + 8 + 8 = 24 fits exactly; a third row would not.
        assert_eq!(file.chunks(100, 24).unwrap(), vec![0..2, 2..4]);
        assert_eq!(file.chunks(100, 23).unwrap(), vec![0..1, 1..2, 2..3, 3..4]);
        for rows in file.chunks(100, 24).unwrap() {
            assert!(file.request(rows).body.len() <= 24);
        }
        // Bytes and rows together: whichever limit comes first.
        assert_eq!(file.chunks(1, 24).unwrap(), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(file.chunks(3, 32).unwrap(), vec![0..3, 3..4]);
        assert_eq!(
            file.chunks(100, 15),
            Err(SplitError::RowTooLarge {
                line: 2,
                bytes: 16,
                limit: 15
            })
        );
    }

    #[test]
    fn a_quoted_value_with_line_breaks_stays_in_one_request() {
        let data = "id;note\n1;\"first\nsecond; still\r\nthird\"\n2;\"a \"\"quote\"\"\"\n3;plain\n";
        let file = File::parse(data.as_bytes()).expect("parse");
        assert_eq!(
            bodies(&file, 1, MAX_REQUEST_BYTES),
            [
                "\"id\",\"note\"\n1,\"first\nsecond; still\r\nthird\"\n",
                "\"id\",\"note\"\n2,\"a \"\"quote\"\"\"\n",
                "\"id\",\"note\"\n3,plain\n",
            ]
        );
        // The request reads back as the server reads it: `,` and the same values.
        let body = file.request(0..3).body;
        assert_eq!(domain::spreadsheet::detect_separator(&body), b',');
        let records: Vec<Vec<String>> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(body.as_slice())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            records,
            [
                vec!["id", "note"],
                vec!["1", "first\nsecond; still\r\nthird"],
                vec!["2", "a \"quote\""],
                vec!["3", "plain"],
            ]
        );
    }

    #[test]
    fn reported_lines_map_back_to_the_file() {
        // Line 1 header, 2 blank, 3-5 one row (two line breaks inside quotes), 6 a row
        // of empty cells (skipped), 7 and 8 rows, 9 blank, 10 a row ending the file
        // without a line end; `\r\n` and lone `\r` line ends.
        let data = b"\xEF\xBB\xBFemail,first_name\r\n\r\na@x.io,\"one\r\ntwo\rthree\"\r\n,\r\nb@x.io,x\nc@x.io,y\r\n\nd@x.io,z";
        let file = File::parse(data).expect("parse");
        assert_eq!(file.rows(), 4);
        let all = file.request(0..4);
        assert_eq!(
            text(&all.body),
            "\"email\",\"first_name\"\na@x.io,\"one\r\ntwo\rthree\"\nb@x.io,x\nc@x.io,y\nd@x.io,z\n"
        );
        // In the body: a@ at 2 (to 4), b@ 5, c@ 6, d@ 7.
        assert_eq!([2, 5, 6, 7].map(|line| all.file_line(line)), [3, 7, 8, 10]);
        // A line inside a row belongs to it.
        assert_eq!(all.file_line(3), 3);
        assert_eq!((all.first_line(), all.last_line()), (Some(3), Some(10)));

        let chunks = file.chunks(2, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(chunks, vec![0..2, 2..4]);
        let second = file.request(chunks[1].clone());
        assert_eq!(
            text(&second.body),
            "\"email\",\"first_name\"\nc@x.io,y\nd@x.io,z\n"
        );
        assert_eq!([2, 3].map(|line| second.file_line(line)), [8, 10]);
        assert_eq!(second.row_at(3), 3);

        // What the server reports for the body agrees: read it as the server does.
        let fields = [];
        let read = domain::spreadsheet::read_csv(&all.body, &fields, 10).expect("read");
        let lines: Vec<u64> = read.rows.iter().map(|r| all.file_line(r.line)).collect();
        assert_eq!(lines, [3, 7, 8, 10]);
    }

    #[test]
    fn the_rest_of_a_request_resumes_at_the_row_of_a_line() {
        let file =
            File::parse(b"email,note\na@x.io,\"1\n2\"\nb@x.io,x\nc@x.io,y\n").expect("parse");
        let all = file.request(0..3);
        // Rows start at body lines 2, 4 and 5.
        assert_eq!([2, 4, 5, 6].map(|line| all.row_at(line)), [0, 1, 2, 3]);
        let rest = file.request(all.row_at(4)..all.rows.end);
        assert_eq!(text(&rest.body), "\"email\",\"note\"\nb@x.io,x\nc@x.io,y\n");
        assert_eq!([2, 3].map(|line| rest.file_line(line)), [4, 5]);
    }

    #[test]
    fn semicolons_and_the_header_names_survive() {
        let file = File::parse("\u{feff}Email; First Name ;a,b\nann@x.io;Ann;1,5\n".as_bytes())
            .expect("parse");
        let body = file.request(0..1).body;
        assert_eq!(
            text(&body),
            "\"Email\",\" First Name \",\"a,b\"\nann@x.io,Ann,\"1,5\"\n"
        );
        assert_eq!(domain::spreadsheet::detect_separator(&body), b',');
    }

    #[test]
    fn rows_of_another_length_and_other_bytes_go_as_they_are() {
        let file = File::parse(b"email,a,b\nx@y.io\nz@y.io,1,2,3\nw@y.io,\xff,\n").expect("parse");
        assert_eq!(
            file.request(0..3).body,
            b"\"email\",\"a\",\"b\"\nx@y.io\nz@y.io,1,2,3\nw@y.io,\xff,\n"
        );
    }

    #[test]
    fn later_rows_naming_an_earlier_id_or_email_fail_before_sending() {
        let data = b"ID,Email\nc-1,ann@x.io\nc-2,bob@x.io\n\nc-1,cid@x.io\n,ANN@x.io\nc-2,BOB@x.io\nc-3,\n";
        let file = File::parse(data).expect("parse");
        assert_eq!(file.rows(), 3);
        assert_eq!(
            text(&file.request(0..3).body),
            "\"ID\",\"Email\"\nc-1,ann@x.io\nc-2,bob@x.io\nc-3,\n"
        );
        let failed = |line: u64, id: Option<&str>, errors: &[(&str, &str)]| FailedRow {
            line,
            id: id.map(str::to_owned),
            errors: errors
                .iter()
                .map(|(column, detail)| CellError {
                    column: Some(column.to_string()),
                    detail: detail.to_string(),
                })
                .collect(),
        };
        assert_eq!(
            file.duplicates(),
            [
                failed(5, Some("c-1"), &[("id", "line 2 already has id `c-1`")]),
                failed(6, None, &[("email", "line 2 already has email `ANN@x.io`")]),
                failed(
                    7,
                    Some("c-2"),
                    &[
                        ("id", "line 3 already has id `c-2`"),
                        ("email", "line 3 already has email `BOB@x.io`")
                    ]
                ),
            ]
        );
        // The request still maps lines: c-3 is the file's line 8.
        assert_eq!(file.request(0..3).file_line(4), 8);
    }

    #[test]
    fn a_file_without_rows_is_one_request_of_its_header() {
        let file = File::parse(b"\n\nemail\n\n,\n").expect("parse");
        assert_eq!(file.rows(), 0);
        assert_eq!(file.chunks(10, 100).unwrap(), vec![0..0]);
        assert_eq!(file.request(0..0).body, b"\"email\"\n");
        assert_eq!(File::parse(b"").unwrap_err(), SplitError::NoHeader);
        assert_eq!(
            File::parse(b"\xEF\xBB\xBF\r\n\n").unwrap_err(),
            SplitError::NoHeader
        );
    }
}
