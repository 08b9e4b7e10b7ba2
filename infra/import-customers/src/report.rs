//! What `POST /customers/import` answers, and what the client adds up from it.

use serde::Deserialize;

/// The 200 answer of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: Vec<FailedRow>,
    #[serde(default)]
    pub dry_run: bool,
    /// Set when the server's time budget ran out: the rows from this line of the body on
    /// were neither imported nor counted.
    #[serde(default)]
    pub stopped_at_line: Option<u64>,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FailedRow {
    /// The line where the row starts: in the request body as the server answers, in
    /// the file once the client has mapped it.
    pub line: u64,
    /// The customer the row names or matched, when known.
    #[serde(default)]
    pub id: Option<String>,
    pub errors: Vec<CellError>,
}

/// One problem of a row: the server's own type.
pub use domain::spreadsheet::CellError;

/// The whole file's outcome so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Data rows of the file (blank rows and rows of empty cells are not rows).
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Failed rows with the file's line numbers, in line order once the import ends.
    pub failed: Vec<FailedRow>,
    /// Requests sent (answered with 200), resent remainders included.
    pub requests: usize,
    /// Requests that sent the rest of a request again after the server ran out of time.
    pub resent: usize,
    pub dry_run: bool,
}

impl Summary {
    /// Rows with an outcome.
    pub fn done(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.failed.len() as u64
    }

    /// Each error of each failed row as `line N: column: detail` (no column: `line N:
    /// detail`).
    pub fn failure_lines(&self) -> Vec<String> {
        self.failed
            .iter()
            .flat_map(|row| {
                row.errors.iter().map(move |error| match &error.column {
                    Some(column) => format!("line {}: {column}: {}", row.line, error.detail),
                    None => format!("line {}: {}", row.line, error.detail),
                })
            })
            .collect()
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(
            [0, 7, 999, 1_000, 12_345, 999_999, 1_000_000].map(thousands),
            ["0", "7", "999", "1,000", "12,345", "999,999", "1,000,000"]
        );
    }

    #[test]
    fn a_report_reads_with_and_without_optional_members() {
        let report: ImportReport = serde_json::from_str(
            r#"{"created":1,"updated":2,"unchanged":3,"failed":[{"line":4,"id":"c-1",
            "errors":[{"column":"email","detail":"bad"},{"detail":"worse"}]}],
            "dry_run":false,"stopped_at_line":null}"#,
        )
        .unwrap();
        assert_eq!(report.failed[0].errors[1].column, None);
        let summary = Summary {
            failed: report.failed.clone(),
            ..Summary::default()
        };
        assert_eq!(
            summary.failure_lines(),
            ["line 4: email: bad", "line 4: worse"]
        );
        let report: ImportReport = serde_json::from_str(
            r#"{"created":0,"updated":0,"unchanged":0,"failed":[],"stopped_at_line":7}"#,
        )
        .unwrap();
        assert_eq!(report.stopped_at_line, Some(7));
    }
}
