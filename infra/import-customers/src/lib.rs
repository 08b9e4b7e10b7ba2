//! `import-customers`: imports a CSV file or a workbook (`.xlsx`, `.xls`, `.ods`, by
//! its name) of any size through `POST /customers/import`.
//!
//! The API takes at most 6,000,000 bytes (4,500,000 for a workbook) and 10,000 rows per
//! request. This client reads the file, splits it by records into requests of at most
//! `--rows-per-request` rows and [`MAX_REQUEST_BYTES`] bytes
//! ([`MAX_WORKBOOK_REQUEST_BYTES`]), each starting with the header ([`split`]; a
//! workbook's rows go as xlsx workbooks, at their own row numbers), posts them
//! `--concurrency` at a time, and adds up the reports in request order with every failed
//! row's line turned back into the file's line. When the server's time budget runs out
//! in a request (`stopped_at_line`), the rest of that request is posted again.
//!
//! [`run`] is the whole command (arguments, progress, summary, exit code);
//! [`import_file`] is the import alone, for callers that want the [`Summary`]. The flags
//! are read by clap ([`args`]), the bar on a terminal is indicatif's.

pub mod args;
mod progress;
pub mod report;
pub mod split;

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::spreadsheet::WorkbookFormat;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::task::JoinSet;

use progress::{ProgressView, counts};

pub use args::{
    Command, DEFAULT_CONCURRENCY, DEFAULT_ROWS_PER_REQUEST, MAX_CONCURRENCY, Options, TOKEN_ENV,
    UsageError, parse_args, usage,
};
pub use report::{CellError, FailedRow, ImportReport, Summary, thousands};
pub use split::{
    File, MAX_REQUEST_BYTES, MAX_REQUEST_ROWS, MAX_WORKBOOK_REQUEST_BYTES, SplitError,
};

/// Attempts per request when the API is unavailable or throttles (429, 502, 503, 504)
/// or does not answer; rows are upserts, so sending one again is safe.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// A request may run into the server's time budget before writing any row; after this
/// many such answers in a row the import gives up.
const STALLS: u32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an import stopped before its end.
#[derive(Debug)]
pub enum Error {
    Usage(UsageError),
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    File(SplitError),
    /// The API answered an error status; `detail` and `errors` from its problem
    /// document.
    Http {
        status: u16,
        detail: String,
        errors: Vec<String>,
    },
    /// No answer, or an answer that is not an import report.
    Transport(String),
    /// The server's time budget ran out before it imported a row, again and again.
    NoProgress {
        line: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(detail) => write!(f, "{detail}"),
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::File(error) => write!(f, "{error}"),
            Self::Http {
                status,
                detail,
                errors,
            } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "the API answered {status} {reason}: {detail}")?;
                for error in errors {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
            Self::Transport(detail) => write!(f, "{detail}"),
            Self::NoProgress { line } => write!(
                f,
                "the server ran out of time {STALLS} times before importing the row at line \
                 {line}; try a smaller --rows-per-request"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// An import that stopped, with what it did before.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub summary: Summary,
    /// The file's line of the first row whose request failed, when a request did.
    pub at_line: Option<u64>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failure {}

/// Where an import is, told after each answer (and once before the first request).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub summary: &'a Summary,
    /// The request (1-based) of `requests` that was just answered; 0 before the first.
    pub request: usize,
    pub requests: usize,
    /// The file's lines of the first and last row of the answered request.
    pub lines: Option<(u64, u64)>,
    /// The answered request carried the rest of a request the server stopped in.
    pub rest: bool,
    /// The server ran out of time: the file's line of the first row to send again.
    pub stopped_at: Option<u64>,
}

/// Imports a file: reads and splits it, posts each request, and adds up the reports
/// with the file's line numbers.
pub async fn import_file(
    options: &Options,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, Failure> {
    let mut summary = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let failure = |error: Error, summary: &Summary, at_line: Option<u64>| {
        let mut summary = summary.clone();
        summary.failed.sort_by_key(|row| row.line);
        Failure {
            error,
            summary,
            at_line,
        }
    };
    let file = std::fs::read(&options.file)
        .map_err(|error| Error::Read {
            path: options.file.clone(),
            error,
        })
        .and_then(|data| {
            let name = options.file.to_string_lossy();
            match WorkbookFormat::from_file_name(&name) {
                Some(format) => File::parse_workbook(format, &data, options.sheet.as_deref()),
                None => File::parse(&data),
            }
            .map_err(Error::File)
        })
        .map_err(|error| failure(error, &summary, None))?;
    let chunks = file
        .chunks(
            options.rows_per_request.clamp(1, MAX_REQUEST_ROWS),
            MAX_REQUEST_BYTES,
        )
        .map_err(|error| failure(Error::File(error), &summary, None))?;
    let api = Api::new(options).map_err(|error| failure(error, &summary, None))?;
    summary.rows = (file.rows() + file.duplicates().len()) as u64;
    summary.failed.extend(file.duplicates().iter().cloned());
    on_progress(&Progress {
        summary: &summary,
        request: 0,
        requests: chunks.len(),
        lines: None,
        rest: false,
        stopped_at: None,
    });

    // Up to `concurrency` chunks in flight; their answers are added up and shown in
    // request order, so the summary and the progress read as if the requests went one
    // after the other (a failure reports the rows before its request as sent).
    let api = Arc::new(api);
    let concurrency = options.concurrency.clamp(1, MAX_CONCURRENCY);
    let mut states: Vec<ChunkState> = chunks
        .iter()
        .map(|rows| ChunkState {
            rows: rows.clone(),
            stalls: 0,
            rest: false,
            request: None,
            answers: VecDeque::new(),
            done: false,
        })
        .collect();
    let mut in_flight = JoinSet::new();
    let (mut started, mut active, mut released, mut failed) = (0, 0, 0, false);
    while released < states.len() {
        while !failed && started < states.len() && active < concurrency {
            send(
                &mut in_flight,
                &api,
                &file,
                started,
                &mut states[started],
                false,
            );
            started += 1;
            active += 1;
        }
        while let Some(state) = states.get_mut(released) {
            while let Some(answer) = state.answers.pop_front() {
                match answer {
                    Answer::Report {
                        created,
                        updated,
                        unchanged,
                        failed: failed_rows,
                        rest,
                        lines,
                        stopped_at,
                    } => {
                        summary.requests += 1;
                        summary.resent += usize::from(rest);
                        summary.created += created;
                        summary.updated += updated;
                        summary.unchanged += unchanged;
                        summary.failed.extend(failed_rows);
                        on_progress(&Progress {
                            summary: &summary,
                            request: released + 1,
                            requests: chunks.len(),
                            lines,
                            rest,
                            stopped_at,
                        });
                    }
                    Answer::Failed { error, at_line } => {
                        return Err(failure(error, &summary, at_line));
                    }
                }
            }
            if !state.done {
                break;
            }
            released += 1;
        }
        if released == states.len() {
            break;
        }
        let Some(joined) = in_flight.join_next().await else {
            // Every chunk started has ended, and the first one not released failed.
            break;
        };
        let (index, result) =
            joined.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        let state = &mut states[index];
        let request = state.request.take().expect("a request in flight");
        let report = match result {
            Ok(report) => report,
            Err(error) => {
                state.finish_with(error, request.first_line());
                (active, failed) = (active - 1, true);
                continue;
            }
        };
        let next = report
            .stopped_at_line
            .map(|line| request.row_at(line))
            .filter(|&next| next < state.rows.end);
        let stopped_at = report
            .stopped_at_line
            .filter(|_| next.is_some())
            .map(|line| request.file_line(line));
        state.answers.push_back(Answer::Report {
            created: report.created,
            updated: report.updated,
            unchanged: report.unchanged,
            failed: report
                .failed
                .into_iter()
                .map(|row| FailedRow {
                    line: request.file_line(row.line),
                    ..row
                })
                .collect(),
            rest: state.rest,
            lines: request.first_line().zip(request.last_line()),
            stopped_at,
        });
        let Some(next) = next else {
            state.done = true;
            active -= 1;
            continue;
        };
        let stalled = next == state.rows.start;
        if stalled {
            state.stalls += 1;
            if state.stalls == STALLS {
                let line = stopped_at.unwrap_or(0);
                state.finish_with(Error::NoProgress { line }, Some(line));
                (active, failed) = (active - 1, true);
                continue;
            }
        } else {
            state.stalls = 0;
        }
        state.rows = next..state.rows.end;
        state.rest = true;
        send(&mut in_flight, &api, &file, index, state, stalled);
    }
    summary.failed.sort_by_key(|row| row.line);
    Ok(summary)
}

/// Where one chunk of the file is.
struct ChunkState {
    /// The chunk's rows still to send.
    rows: Range<usize>,
    /// Answers in a row that imported nothing.
    stalls: u32,
    /// The next request carries the rest of one the server stopped in.
    rest: bool,
    /// The request in flight (without its body).
    request: Option<split::Request>,
    /// Answers not yet added up.
    answers: VecDeque<Answer>,
    /// No further request goes for this chunk.
    done: bool,
}

impl ChunkState {
    fn finish_with(&mut self, error: Error, at_line: Option<u64>) {
        self.answers.push_back(Answer::Failed { error, at_line });
        self.done = true;
    }
}

/// One answer of a chunk's request, with the file's lines.
enum Answer {
    Report {
        created: u64,
        updated: u64,
        unchanged: u64,
        failed: Vec<FailedRow>,
        rest: bool,
        lines: Option<(u64, u64)>,
        stopped_at: Option<u64>,
    },
    Failed {
        error: Error,
        at_line: Option<u64>,
    },
}

type InFlight = JoinSet<(usize, Result<ImportReport, Error>)>;

/// Posts a chunk's rows still to send (after a pause when the last answer imported none).
fn send(
    in_flight: &mut InFlight,
    api: &Arc<Api>,
    file: &File,
    index: usize,
    state: &mut ChunkState,
    pause: bool,
) {
    let mut request = file.request(state.rows.clone());
    let body = std::mem::take(&mut request.body);
    let content_type = request.content_type;
    state.request = Some(request);
    let api = Arc::clone(api);
    in_flight.spawn(async move {
        if pause {
            tokio::time::sleep(FIRST_RETRY_DELAY).await;
        }
        (index, api.import(body, content_type).await)
    });
}

/// The API's import endpoint.
struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    fn new(options: &Options) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("import-customers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Transport(format!("cannot set up the HTTP client: {err}")))?;
        let query = if options.dry_run { "?dry_run=true" } else { "" };
        Ok(Self {
            http,
            url: format!("{}/customers/import{query}", options.url),
            token: options.token.clone(),
        })
    }

    /// Posts one body, trying again while the API is unavailable or throttles.
    async fn import(&self, body: Vec<u8>, content_type: &str) -> Result<ImportReport, Error> {
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await;
            let again = attempt < ATTEMPTS;
            match sent {
                Err(err) if again && (err.is_connect() || err.is_timeout()) => {}
                Err(err) => {
                    let attempts = match attempt {
                        1 => String::new(),
                        n => format!(" ({n} attempts)"),
                    };
                    return Err(Error::Transport(format!(
                        "POST {} failed{attempts}: {}",
                        self.url,
                        error_chain(&err)
                    )));
                }
                Ok(response)
                    if again
                        && matches!(
                            response.status(),
                            StatusCode::TOO_MANY_REQUESTS
                                | StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) => {}
                Ok(response) => return self.read(response).await,
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    async fn read(&self, response: reqwest::Response) -> Result<ImportReport, Error> {
        let status = response.status();
        let text = response.text().await.map_err(|err| {
            Error::Transport(format!(
                "reading the answer of POST {} failed: {}",
                self.url,
                error_chain(&err)
            ))
        })?;
        if status == StatusCode::OK {
            return serde_json::from_str(&text).map_err(|err| {
                Error::Transport(format!(
                    "POST {} answered 200 with something else than an import report ({err}): {}",
                    self.url,
                    excerpt(&text)
                ))
            });
        }
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = match problem.get("detail").and_then(Value::as_str) {
            Some(detail) => detail.to_owned(),
            None if text.trim().is_empty() => "(no details)".to_owned(),
            None => excerpt(&text),
        };
        let errors = problem
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let pointer = e.get("pointer").and_then(Value::as_str).unwrap_or("");
                        let detail = e.get("detail").and_then(Value::as_str).unwrap_or("");
                        format!("{pointer}: {detail}")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(Error::Http {
            status: status.as_u16(),
            detail,
            errors,
        })
    }
}

/// An error and its sources (reqwest's own message rarely says what failed).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Where the command writes: the summary and failed rows on `out`; errors on `err`, and
/// progress there as a line per request, or, when `err_is_terminal`, as a bar that
/// indicatif draws on the process's stderr (and only if that is a terminal).
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub err_is_terminal: bool,
}

/// The whole command: returns the exit status (0 every row imported, 1 some failed, 2
/// usage, file or HTTP error).
pub async fn run<I>(args: I, env_token: Option<String>, console: Console<'_>) -> u8
where
    I: IntoIterator<Item = String>,
{
    let Console {
        out,
        err,
        err_is_terminal,
    } = console;
    let options = match parse_args(args, env_token) {
        Ok(Command::Help) => {
            let _ = writeln!(out, "{}", usage().trim_end());
            return 0;
        }
        Ok(Command::Import(options)) => options,
        Err(error) => {
            let _ = writeln!(err, "import-customers: {error}\n\n{}", usage().trim_end());
            return 2;
        }
    };
    let mut view = ProgressView::new(&mut *err, err_is_terminal);
    let result = import_file(&options, &mut |progress| view.show(progress)).await;
    view.finish();
    drop(view);
    match result {
        Ok(summary) => {
            print_summary(out, &options, &summary);
            if summary.failed.is_empty() { 0 } else { 1 }
        }
        Err(failure) => {
            if failure.summary.requests > 0 {
                print_summary(out, &options, &failure.summary);
            }
            let _ = writeln!(err, "import-customers: {}", failure.error);
            if let Some(line) = failure.at_line
                && failure.summary.requests > 0
            {
                let _ = writeln!(
                    err,
                    "rows before line {line} were sent; importing the whole file again is \
                     safe (rows already imported come back unchanged)"
                );
            }
            2
        }
    }
}

fn print_summary(out: &mut dyn Write, options: &Options, summary: &Summary) {
    let requests = match summary.resent {
        0 => format!("{} requests", thousands(summary.requests as u64)),
        resent => format!(
            "{} requests ({} carrying the rest of a request the server ran out of time in)",
            thousands(summary.requests as u64),
            thousands(resent as u64)
        ),
    };
    let _ = writeln!(
        out,
        "{}: {} rows in {requests}{}",
        options.file.display(),
        thousands(summary.rows),
        if summary.dry_run {
            "; dry run, nothing was written"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "{}", counts(summary));
    for line in summary.failure_lines() {
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::args::fixtures::{args, options};

    /// A fake API on a thread: answers each request with `answer(request number from 0,
    /// body)`; returns its URL and the bodies it received.
    fn serve<F>(mut answer: F) -> (String, Arc<Mutex<Vec<Vec<u8>>>>)
    where
        F: FnMut(usize, &[u8]) -> (u16, String) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let received = bodies.clone();
        std::thread::spawn(move || {
            for (index, stream) in listener.incoming().enumerate() {
                let mut stream = BufReader::new(stream.unwrap());
                let mut length = 0;
                let mut line = String::new();
                while stream.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    assert!(!lower.starts_with("authorization:") || line.ends_with("Bearer t\r\n"));
                    line.clear();
                }
                let mut body = vec![0; length];
                stream.read_exact(&mut body).unwrap();
                let (status, json) = answer(index, &body);
                received.lock().unwrap().push(body);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{json}",
                    json.len()
                );
                stream.get_mut().write_all(reply.as_bytes()).unwrap();
            }
        });
        (url, bodies)
    }

    /// Imports at most `per_request` rows of a body (rows with `bad` in their email fail),
    /// like the server does when its time budget runs out.
    fn fake_import(body: &[u8], per_request: usize) -> String {
        let file = domain::spreadsheet::read_csv(body, &[], 10_000).unwrap();
        let done = &file.rows[..file.rows.len().min(per_request)];
        let failed: Vec<Value> = done
            .iter()
            .filter(|row| row.email.as_deref().is_some_and(|e| e.contains("bad")))
            .map(|row| {
                serde_json::json!({"line": row.line, "errors": [{"column": "email", "detail": "bad"}]})
            })
            .collect();
        serde_json::json!({
            "created": done.len() - failed.len(),
            "updated": 0,
            "unchanged": 0,
            "failed": failed,
            "dry_run": false,
            "stopped_at_line": file.rows.get(per_request).map(|row| row.line),
        })
        .to_string()
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("{name}-{}.csv", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[tokio::test]
    async fn the_rest_of_a_request_goes_again_and_unavailable_answers_are_retried() {
        let (url, bodies) = serve(|index, body| match index {
            0 => (503, r#"{"detail":"the database is unavailable"}"#.into()),
            _ => (200, fake_import(body, 2)),
        });
        // Lines: header 1, a@ 2-3, blank 4, b@ 5, bad 6, c@ 7, d@ 8, bad2 9, e@ 10.
        let path = temp_file(
            "cli-resume",
            "email,first_name\na@x.io,\"A\nA\"\n\nb@x.io,B\nbad@x.io,C\nc@x.io,D\nd@x.io,E\nbad2@x.io,F\ne@x.io,G\n",
        );
        let path_arg = path.display().to_string();
        let options = options(
            &[
                "--url",
                &url,
                "--token",
                "t",
                "--rows-per-request",
                "5",
                // One at a time: the fake API answers by arrival.
                "--concurrency",
                "1",
                &path_arg,
            ],
            None,
        );
        let mut seen = Vec::new();
        let summary = import_file(&options, &mut |p| {
            seen.push((p.request, p.rest, p.lines, p.stopped_at));
        })
        .await
        .expect("import");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            (
                summary.rows,
                summary.created,
                summary.requests,
                summary.resent
            ),
            (7, 5, 4, 2)
        );
        assert_eq!(
            summary.failure_lines(),
            ["line 6: email: bad", "line 9: email: bad"]
        );
        // (request, the rest of one, its lines, where the server stopped).
        assert_eq!(
            seen,
            [
                (0, false, None, None),
                (1, false, Some((2, 8)), Some(6)),
                (1, true, Some((6, 8)), Some(8)),
                (1, true, Some((8, 8)), None),
                (2, false, Some((9, 10)), None),
            ]
        );
        let bodies = bodies.lock().unwrap();
        assert_eq!(
            bodies[0], bodies[1],
            "the 503 is retried with the same body"
        );
        let header = "\"email\",\"first_name\"\n";
        let texts: Vec<&str> = bodies[1..]
            .iter()
            .map(|body| {
                let text = std::str::from_utf8(body).unwrap();
                text.strip_prefix(header).expect("the header first")
            })
            .collect();
        assert_eq!(
            texts,
            [
                "a@x.io,\"A\nA\"\nb@x.io,B\nbad@x.io,C\nc@x.io,D\nd@x.io,E\n",
                "bad@x.io,C\nc@x.io,D\nd@x.io,E\n",
                "d@x.io,E\n",
                "bad2@x.io,F\ne@x.io,G\n",
            ]
        );
    }

    #[tokio::test]
    async fn a_server_that_never_gets_further_ends_the_import() {
        let (url, _) = serve(|_, body| (200, fake_import(body, 0)));
        let path = temp_file("cli-stall", "email\na@x.io\nb@x.io\n");
        let path_arg = path.display().to_string();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let console = Console {
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
        };
        let status = run(
            args(&["--url", &url, "--token", "t", &path_arg]),
            None,
            console,
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(status, 2);
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        assert!(
            out.contains("2 rows in 3 requests (2 carrying the rest"),
            "{out}"
        );
        assert!(
            err.contains("import-customers: the server ran out of time 3 times before importing the row at line 2"),
            "{err}"
        );
        assert!(err.contains("rows before line 2 were sent"), "{err}");
    }

    #[tokio::test]
    async fn usage_and_file_errors_exit_with_2() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let console = Console {
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
        };
        assert_eq!(run(args(&["--url", "http://x"]), None, console).await, 2);
        let err_text = String::from_utf8(err).unwrap();
        assert!(
            err_text.starts_with("import-customers: a token is required"),
            "{err_text}"
        );
        assert!(err_text.contains("usage: import-customers"), "{err_text}");
        assert!(out.is_empty());

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let console = Console {
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
        };
        let missing = "/nonexistent/customers.csv";
        let status = run(
            args(&["--url", "http://127.0.0.1:9", "--token", "t", missing]),
            None,
            console,
        )
        .await;
        assert_eq!(status, 2);
        let err_text = String::from_utf8(err).unwrap();
        assert!(
            err_text.starts_with(&format!("import-customers: cannot read {missing}")),
            "{err_text}"
        );

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let console = Console {
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
        };
        assert_eq!(run(args(&["-h"]), None, console).await, 0);
        assert!(String::from_utf8(out).unwrap().starts_with("usage: "));
    }
}
