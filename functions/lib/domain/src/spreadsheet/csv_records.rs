//! How the bytes of a CSV file become records ([`RecordReader`]) and the lines they start
//! on, as [`read_csv`](super::read_csv) reads them. The items are public so that
//! clients (the `import-customers` CLI) read and number a file exactly as the server does.
//!
//! The CSV dialect: UTF-8 with or without a byte order mark; `,` or `;` between values,
//! whichever the header line uses more; values quoted as RFC 4180 says (`"a ""b"""`,
//! line breaks inside quotes).

use super::Cell;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a CSV cell that is not UTF-8 reads as.
const NOT_UTF8: &str = "is not UTF-8 text; save the file as CSV UTF-8";

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

/// The records of a CSV file read as [`read_csv`](super::read_csv) reads them: the
/// byte order mark stripped, the separator [`detect_separator`] picks, RFC 4180
/// quoting, rows of any length. Public so that clients that split a big file into
/// imports (the `import-customers` CLI) read it, and number its lines, exactly as the
/// server does.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_follows_the_header_line() {
        assert_eq!(detect_separator(b"id,email\n1;2;3;4"), b',');
        assert_eq!(detect_separator(b"\"a;b\",c\nx"), b',');
        assert_eq!(detect_separator(b"a;b;c,d"), b';');
        assert_eq!(detect_separator(b"email"), b',');
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
}
