//! `import-customers` (`infra/import-customers`, the `import-customers` library called in-process)
//! against the local stack: a file split into several requests, failed rows reported by
//! the file's lines, a second run finding every row unchanged, the rest of a request
//! sent again after the server's time budget ran out, HTTP errors, and workbooks sent in
//! parts with their sheet's row numbers.

use std::path::PathBuf;

use crate::common::*;
use crate::spreadsheet::{
    assert_clients_imported, clients_failures, clients_fields, clients_xlsx, fixture,
};
use import_customers::{Command, Console, Options, Summary, import_file, parse_args, run};
use serde_json::json;
use tests::{Stack, token, unique_tenant};

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// A CSV file.
    fn new(tenant: &str, contents: &str) -> TempFile {
        Self::named(&format!("{tenant}.csv"), contents.as_bytes())
    }

    fn named(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn options(args: &[&str]) -> Options {
    match parse_args(args.iter().map(|a| a.to_string()), None) {
        Ok(Command::Import(options)) => options,
        other => panic!("{other:?}"),
    }
}

/// Runs the whole command; (exit status, stdout, stderr).
async fn run_command(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let console = Console {
        out: &mut out,
        err: &mut err,
        err_is_terminal: false,
    };
    let status = run(args.iter().map(|a| a.to_string()), None, console).await;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (status, text(out), text(err))
}

fn counts(summary: &Summary) -> (u64, u64, u64, usize) {
    (
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.failed.len(),
    )
}

/// 900 rows (a byte order mark, a value with a line break, a blank line) with four
/// bad ones; returns the file and the failure lines expected, with the file's lines.
fn customers_file() -> (String, Vec<String>) {
    let mut csv = String::from("\u{feff}email,first_name,visits\n");
    let mut expected = Vec::new();
    let mut line = 2;
    let mut third = 0;
    for i in 1..=900 {
        let email = format!("cust-{i}@example.com");
        let row = match i {
            3 => {
                third = line;
                format!("{email},Name {i},{i}")
            }
            50 => format!("{email},\"Multi\nline\",{i}"),
            100 => {
                expected.push(format!("line {line}: email: must be an email address"));
                format!("not-an-email-{i},Name {i},{i}")
            }
            500 => {
                expected.push(format!("line {line}: visits: must be an integer"));
                format!("{email},Name {i},many")
            }
            850 => {
                expected.push(format!(
                    "line {line}: has 2 values but the header has 3 columns"
                ));
                format!("{email},Name {i}")
            }
            // The third row's email again, in another request than the third row's.
            880 => {
                expected.push(format!(
                    "line {line}: email: line {third} already has email `CUST-3@example.com`"
                ));
                format!("CUST-3@example.com,Again,{i}")
            }
            _ => format!("{email},Name {i},{i}"),
        };
        line += 1 + row.matches('\n').count();
        csv.push_str(&row);
        csv.push('\n');
        if i == 600 {
            csv.push('\n');
            line += 1;
        }
    }
    (csv, expected)
}

#[tokio::test]
async fn a_large_file_imports_in_several_requests_with_the_files_line_numbers() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("imp-cli");
    let client = stack.client(&tenant);
    create_field(&client, &json!({"name": "visits", "type": "integer"})).await;
    let (csv, expected) = customers_file();
    // The multi-line value and the blank line move every later row down the file.
    assert_eq!(
        expected.first().map(String::as_str),
        Some("line 102: email: must be an email address")
    );
    let file = TempFile::new(&tenant, &csv);
    let token = token(&tenant);
    let path = file.path();
    let args = [
        "--url",
        &stack.base_url,
        "--token",
        &token,
        "--rows-per-request",
        "400",
        &path,
    ];

    let mut answered = Vec::new();
    let summary = import_file(&options(&args), &mut |progress| {
        answered.push((progress.request, progress.requests, progress.summary.done()));
    })
    .await
    .expect("import");
    assert_eq!(counts(&summary), (896, 0, 0, 4), "{summary:#?}");
    assert_eq!(summary.rows, 900);
    assert!(!summary.dry_run);
    // 899 rows to send (the repeated email fails before sending): 400, 400, 99.
    assert_eq!(summary.requests - summary.resent, 3, "{summary:#?}");
    assert_eq!(answered.first(), Some(&(0, 3, 1)));
    assert_eq!(answered.last(), Some(&(3, 3, 900)));
    assert_eq!(summary.failure_lines(), expected);

    let multi = client
        .get("/customers?email=cust-50@example.com")
        .await
        .expect(200);
    assert_eq!(multi.json["items"][0]["first_name"], "Multi\nline");

    // Again, as the command: every row is unchanged, the same rows fail.
    let (status, out, err) = run_command(&args).await;
    assert_eq!(status, 1, "{out}\n{err}");
    let mut lines = out.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with(&format!("{path}: 900 rows in ")), "{out}");
    assert_eq!(
        lines.next(),
        Some("created 0 updated 0 unchanged 896 failed 4"),
        "{out}"
    );
    assert_eq!(lines.collect::<Vec<_>>(), expected, "{out}");
    assert!(err.starts_with("request 1/3 (lines 2-"), "{err}");
    assert!(err.contains("\nrequest 3/3 (lines "), "{err}");
}

#[tokio::test]
async fn the_rest_of_a_request_is_sent_again_when_the_server_runs_out_of_time() {
    let stack = Stack::get().await;
    // No time at all: every request writes exactly one row (the server always makes
    // progress) and answers where it stopped, so the client sends the rest again.
    let api = stack.spawn_api(&[("IMPORT_TIME_BUDGET_MS", "0")]);
    let tenant = unique_tenant("imp-cli-budget");
    let mut csv = String::from("email,first_name\n");
    for i in 1..=20 {
        match i {
            15 => csv.push_str("bad-email,\"Two\nlines\"\n"),
            _ => csv.push_str(&format!("late-{i}@example.com,Late {i}\n")),
        }
    }
    let file = TempFile::new(&tenant, &csv);
    let token = token(&tenant);
    let path = file.path();
    let args = ["--url", &api.base_url, "--token", &token, &path];
    let summary = import_file(&options(&args), &mut |_| {})
        .await
        .expect("import");
    assert_eq!(counts(&summary), (19, 0, 0, 1), "{summary:#?}");
    assert_eq!(
        summary.requests, 19,
        "one row written per request: {summary:#?}"
    );
    assert_eq!(summary.requests, 1 + summary.resent);
    assert_eq!(
        summary.failure_lines(),
        ["line 16: email: must be an email address"]
    );
}

#[tokio::test]
async fn http_errors_end_the_import_with_the_problems_detail() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("imp-cli-errors");
    let file = TempFile::new(&tenant, "email,shoe_size\nann@example.com,42\n");
    let token = token(&tenant);
    let path = file.path();

    let (status, out, err) =
        run_command(&["--url", &stack.base_url, "--token", &token, &path]).await;
    assert_eq!(status, 2, "{out}\n{err}");
    assert_eq!(out, "");
    assert!(
        err.starts_with("import-customers: the API answered 422 Unprocessable Entity: "),
        "{err}"
    );
    assert!(
        err.contains("\n  /header/1: `shoe_size` (column 2) is neither a core column"),
        "{err}"
    );

    let (status, _, err) =
        run_command(&["--url", &stack.base_url, "--token", "not-a-jwt", &path]).await;
    assert_eq!(status, 2, "{err}");
    assert!(
        err.starts_with("import-customers: the API answered 401 Unauthorized"),
        "{err}"
    );
}

#[tokio::test]
async fn workbooks_import_in_parts_with_their_sheets_row_numbers() {
    let stack = Stack::get().await;
    for (extension, bytes) in [
        ("xlsx", clients_xlsx()),
        ("XLS", fixture("customers.xls")),
        ("ods", fixture("customers.ods")),
    ] {
        let tenant = unique_tenant("imp-cli-book");
        let client = stack.client(&tenant);
        clients_fields(&client).await;
        let file = TempFile::named(&format!("{tenant}.{extension}"), &bytes);
        let token = token(&tenant);
        let path = file.path();
        let args = [
            "--url",
            &stack.base_url,
            "--token",
            &token,
            "--rows-per-request",
            "1",
            &path,
        ];
        let summary = import_file(&options(&args), &mut |_| {})
            .await
            .expect("import");
        assert_eq!(counts(&summary), (2, 0, 0, 1), "{extension}: {summary:#?}");
        assert_eq!((summary.rows, summary.requests), (3, 3), "{extension}");
        let mut lines = summary.failure_lines();
        lines.sort();
        let expected: Vec<String> = clients_failures()
            .into_iter()
            .flat_map(|(line, errors)| {
                errors
                    .into_iter()
                    .map(move |error| format!("line {line}: {error}"))
            })
            .collect();
        assert_eq!(lines, expected, "{extension}");
        assert_clients_imported(&client).await;

        let archive = [&args[..4], &["--sheet", "Archive", &path]].concat();
        let summary = import_file(&options(&archive), &mut |_| {})
            .await
            .expect("import");
        assert_eq!(counts(&summary), (1, 0, 0, 0), "{extension}: {summary:#?}");
        let missing = [&args[..4], &["--sheet", "Nope", &path]].concat();
        let (status, _, err) = run_command(&missing).await;
        assert_eq!(status, 2, "{err}");
        assert!(
            err.starts_with(
                "import-customers: the workbook has no sheet `Nope`; its sheets are \
                 `Clients`, `Archive`"
            ),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_big_sheet_fails_repeated_rows_before_sending_and_keeps_row_numbers() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("imp-cli-sheet");
    let client = stack.client(&tenant);
    create_field(&client, &json!({"name": "visits", "type": "integer"})).await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    // Header on row 3; rows 4-23, a blank row 10.
    sheet.write_string(2, 0, "email").unwrap();
    sheet.write_string(2, 1, "visits").unwrap();
    for row in 3..23u32 {
        if row == 9 {
            continue;
        }
        let email = match row {
            // Row 20 repeats row 5's email, in another request.
            19 => "Sheet-4@example.com".to_string(),
            _ => format!("sheet-{row}@example.com"),
        };
        sheet.write_string(row, 0, &email).unwrap();
        match row {
            14 => sheet.write_number(row, 1, 2.5).unwrap(),
            _ => sheet.write_number(row, 1, f64::from(row)).unwrap(),
        };
    }
    let file = TempFile::named(&format!("{tenant}.xlsx"), &book.save_to_buffer().unwrap());
    let token = token(&tenant);
    let path = file.path();
    let args = [
        "--url",
        &stack.base_url,
        "--token",
        &token,
        "--rows-per-request",
        "4",
        &path,
    ];
    let summary = import_file(&options(&args), &mut |_| {})
        .await
        .expect("import");
    // 19 rows, one failed before sending: 18 in requests of 4.
    assert_eq!(counts(&summary), (17, 0, 0, 2), "{summary:#?}");
    assert_eq!((summary.rows, summary.requests), (19, 5));
    assert_eq!(
        summary.failure_lines(),
        [
            "line 15: visits: must be an integer",
            "line 20: email: line 5 already has email `Sheet-4@example.com`",
        ]
    );
    let visits = client
        .get("/customers?email=sheet-22@example.com")
        .await
        .expect(200);
    assert_eq!(visits.json["items"][0]["fields"]["visits"], 22);
}
