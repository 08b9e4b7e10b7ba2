//! The command line: the flags as a clap derive ([`Cli`]), read into [`Options`] with the
//! token from `$SEGMENTATION_TOKEN` when `--token` is not given; clap's refusals become
//! [`UsageError`]s, whose messages scripts and tests read.

use std::fmt;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use domain::spreadsheet::WorkbookFormat;

use crate::{Error, MAX_REQUEST_ROWS};

/// Rows per request unless `--rows-per-request` says otherwise.
pub const DEFAULT_ROWS_PER_REQUEST: usize = 5_000;
/// Requests in flight at once unless `--concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The most `--concurrency` takes.
pub const MAX_CONCURRENCY: usize = 16;
/// The environment variable that holds the token when `--token` is not given.
pub const TOKEN_ENV: &str = "SEGMENTATION_TOKEN";

const NAME: &str = "import-customers";

/// The flags, each described in one line of `--help`.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    disable_help_flag = true,
    override_usage = "import-customers --url URL [--token JWT] [--dry-run] [--rows-per-request N]
                        [--concurrency C] [--sheet NAME] FILE",
    help_template = "usage: {usage}\n\n{about}\n\n{all-args}{after-help}",
    about = "\
Imports FILE through POST URL/customers/import: CSV (UTF-8, `,` or `;`, a header row),
or a workbook by its name (.xlsx, .xls, .ods; the first sheet or --sheet), split into
requests of at most N rows (default 5000, at most 10000) and 5,000,000 bytes (4,000,000
as xlsx for a workbook), C of them in flight at once (default 4, at most 16).",
    after_help = "\
Exit status: 0 when every row imported, 1 when some rows failed (listed as
`line N: column: detail`, lines of FILE or rows of its sheet),
2 on a usage, file or HTTP error."
)]
struct Cli {
    /// the API, e.g. http://127.0.0.1:3000
    #[arg(long, value_name = "URL")]
    url: String,
    /// the bearer token (default: $SEGMENTATION_TOKEN)
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// validate and classify every row, write nothing
    #[arg(long, overrides_with = "dry_run")]
    dry_run: bool,
    /// rows per request, 1 to 10000
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROWS_PER_REQUEST,
          value_parser = rows_per_request)]
    rows_per_request: usize,
    /// requests in flight at once, 1 to 16
    #[arg(long, value_name = "C", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = concurrency)]
    concurrency: usize,
    /// the sheet of a workbook to import (default: the first)
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,
    /// the CSV file or workbook to import
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// print this help
    #[arg(short, long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Import(Options),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The API's base URL, without a trailing `/`.
    pub url: String,
    pub token: String,
    pub dry_run: bool,
    pub rows_per_request: usize,
    /// Requests in flight at once (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// The sheet of a workbook to read (the first when `None`).
    pub sheet: Option<String>,
    pub file: PathBuf,
}

/// A command line the command does not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    MissingUrl,
    /// `--url` without `http://` or `https://`.
    Url(String),
    /// Neither `--token` nor `$SEGMENTATION_TOKEN`, or a blank one.
    MissingToken,
    RowsPerRequest(String),
    Concurrency(String),
    MissingFile,
    TooManyFiles,
    /// `--sheet` for a file that is not a workbook.
    SheetOfCsv,
    /// The option (`--url`) at the end, or before another option.
    NeedsValue(String),
    GivenTwice(String),
    /// The argument as given (`--verbose`, `--dry-run=yes`).
    UnknownOption(String),
    /// Anything else clap refuses, in its words.
    Other(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingUrl => write!(f, "--url is required"),
            Self::Url(url) => write!(f, "--url must start with http:// or https://, got `{url}`"),
            Self::MissingToken => write!(f, "a token is required: --token or ${TOKEN_ENV}"),
            Self::RowsPerRequest(value) => write!(
                f,
                "--rows-per-request takes a number from 1 to {MAX_REQUEST_ROWS}, got `{value}`"
            ),
            Self::Concurrency(value) => write!(
                f,
                "--concurrency takes a number from 1 to {MAX_CONCURRENCY}, got `{value}`"
            ),
            Self::MissingFile => write!(f, "which file? name one CSV file or workbook"),
            Self::TooManyFiles => write!(f, "name one CSV file or workbook at a time"),
            Self::SheetOfCsv => write!(
                f,
                "--sheet picks a sheet of a workbook (.xlsx, .xls, .ods); a CSV file has one"
            ),
            Self::NeedsValue(name) => write!(f, "{name} needs a value"),
            Self::GivenTwice(name) => write!(f, "{name} is given twice"),
            Self::UnknownOption(arg) => write!(f, "unknown option `{arg}`"),
            Self::Other(detail) => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for UsageError {}

fn rows_per_request(value: &str) -> Result<usize, UsageError> {
    number(value, MAX_REQUEST_ROWS).ok_or_else(|| UsageError::RowsPerRequest(value.to_owned()))
}

fn concurrency(value: &str) -> Result<usize, UsageError> {
    number(value, MAX_CONCURRENCY).ok_or_else(|| UsageError::Concurrency(value.to_owned()))
}

/// A number from 1 to `max`.
fn number(value: &str, max: usize) -> Option<usize> {
    value.parse().ok().filter(|n| (1..=max).contains(n))
}

/// `--help`: the usage, what the command does, a line per flag and the exit statuses.
pub fn usage() -> String {
    Cli::command().render_help().to_string()
}

/// Reads the arguments (without the program name). `env_token` is `$SEGMENTATION_TOKEN`.
pub fn parse_args<I>(args: I, env_token: Option<String>) -> Result<Command, Error>
where
    I: IntoIterator<Item = String>,
{
    let args: Vec<String> = args.into_iter().collect();
    let env_token = env_token.filter(|token| !token.trim().is_empty());
    let matches = Cli::command()
        .mut_arg("token", |arg| arg.required(env_token.is_none()))
        .try_get_matches_from(std::iter::once(NAME).chain(args.iter().map(String::as_str)));
    let cli = match matches.and_then(|matches| Cli::from_arg_matches(&matches)) {
        Ok(cli) => cli,
        Err(error) if error.kind() == ErrorKind::DisplayHelp => return Ok(Command::Help),
        Err(error) => return Err(Error::Usage(usage_error(&error, &args))),
    };
    let url = cli.url;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Usage(UsageError::Url(url)));
    }
    let Some(token) = cli.token.or(env_token).filter(|t| !t.trim().is_empty()) else {
        return Err(Error::Usage(UsageError::MissingToken));
    };
    let workbook = WorkbookFormat::from_file_name(&cli.file.to_string_lossy()).is_some();
    if cli.sheet.is_some() && !workbook {
        return Err(Error::Usage(UsageError::SheetOfCsv));
    }
    Ok(Command::Import(Options {
        url: url.trim_end_matches('/').to_owned(),
        token: token.trim().to_owned(),
        dry_run: cli.dry_run,
        rows_per_request: cli.rows_per_request,
        concurrency: cli.concurrency,
        sheet: cli.sheet,
        file: cli.file,
    }))
}

/// clap's refusal in the command's words; `args` as given, to quote an unknown option.
fn usage_error(error: &clap::Error, args: &[String]) -> UsageError {
    // clap names an option with its value (`--url <URL>`); the messages name it alone.
    let strings = |kind| match error.get(kind) {
        Some(ContextValue::String(value)) => vec![value.clone()],
        Some(ContextValue::Strings(values)) => values.clone(),
        _ => Vec::new(),
    };
    let invalid = strings(ContextKind::InvalidArg);
    let names: Vec<&str> = invalid
        .iter()
        .filter_map(|arg| arg.split_whitespace().next())
        .collect();
    let first = names.first().copied().unwrap_or_default();
    match error.kind() {
        ErrorKind::MissingRequiredArgument => {
            // In the order the command checks them.
            if names.contains(&"--url") {
                UsageError::MissingUrl
            } else if names.contains(&"--token") {
                UsageError::MissingToken
            } else if names.contains(&"<FILE>") {
                UsageError::MissingFile
            } else {
                other(error)
            }
        }
        ErrorKind::InvalidValue if strings(ContextKind::InvalidValue) == [""] => {
            UsageError::NeedsValue(first.to_owned())
        }
        ErrorKind::ArgumentConflict if strings(ContextKind::PriorArg) == invalid => {
            UsageError::GivenTwice(first.to_owned())
        }
        ErrorKind::ValueValidation => {
            match std::error::Error::source(error).and_then(|e| e.downcast_ref::<UsageError>()) {
                Some(usage) => usage.clone(),
                None => other(error),
            }
        }
        // An extra argument is a second file; an option clap does not know (`--verbose`,
        // `-x`) or a value after a flag (`--dry-run=yes`) is quoted as given.
        ErrorKind::UnknownArgument if !first.starts_with('-') => UsageError::TooManyFiles,
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues => {
            UsageError::UnknownOption(as_given(first, args))
        }
        _ => other(error),
    }
}

/// The argument, among those before `--`, that clap reported as `name`.
fn as_given(name: &str, args: &[String]) -> String {
    let long = name.starts_with("--");
    args.iter()
        .take_while(|arg| *arg != "--")
        .find(|arg| match arg.strip_prefix(name) {
            Some(rest) if long => rest.is_empty() || rest.starts_with('='),
            Some(_) => !arg.starts_with("--"),
            None => false,
        })
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

/// clap's own message, its first line without `error: `.
fn other(error: &clap::Error) -> UsageError {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default();
    UsageError::Other(line.strip_prefix("error: ").unwrap_or(line).to_owned())
}

/// Command lines for the tests of this crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The import options `items` parse to (with `env` as `$SEGMENTATION_TOKEN`).
    pub(crate) fn options(items: &[&str], env: Option<&str>) -> Options {
        match parse_args(args(items), env.map(str::to_owned)) {
            Ok(Command::Import(options)) => options,
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{args, options};
    use super::*;

    fn usage_error(items: &[&str]) -> String {
        match parse_args(args(items), None) {
            Err(Error::Usage(usage)) => usage.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn arguments_are_read() {
        assert_eq!(
            options(
                &["--url", "http://127.0.0.1:3000/", "--token", "t", "a.csv"],
                None
            ),
            Options {
                url: "http://127.0.0.1:3000".into(),
                token: "t".into(),
                dry_run: false,
                rows_per_request: DEFAULT_ROWS_PER_REQUEST,
                concurrency: DEFAULT_CONCURRENCY,
                sheet: None,
                file: "a.csv".into(),
            }
        );
        let o = options(
            &[
                "--url", "http://x", "--token", "t", "--sheet", "Clients", "a.XLSX",
            ],
            None,
        );
        assert_eq!(
            (o.sheet.as_deref(), o.file),
            (Some("Clients"), PathBuf::from("a.XLSX"))
        );
        let o = options(
            &[
                "a b.csv",
                "--dry-run",
                "--rows-per-request=500",
                "--url=https://x",
                "--concurrency=2",
            ],
            Some("from-env"),
        );
        assert_eq!(o.concurrency, 2);
        assert_eq!(
            (o.token.as_str(), o.dry_run, o.rows_per_request, o.file),
            ("from-env", true, 500, PathBuf::from("a b.csv"))
        );
        assert_eq!(
            options(
                &["--url", "http://x", "--token", "flag", "--", "-f.csv"],
                Some("env")
            )
            .token,
            "flag"
        );
        assert_eq!(
            options(
                &[
                    "--url",
                    "http://x",
                    "--token",
                    " t ",
                    "--dry-run",
                    "--dry-run",
                    "a"
                ],
                Some(" ")
            )
            .token,
            "t"
        );
        assert_eq!(
            parse_args(args(&["--url", "x", "--help"]), None).unwrap(),
            Command::Help
        );
        assert_eq!(parse_args(args(&["-h"]), None).unwrap(), Command::Help);
    }

    #[test]
    fn wrong_arguments_are_usage_errors() {
        assert_eq!(usage_error(&["--token", "t", "a.csv"]), "--url is required");
        assert!(usage_error(&["--url", "127.0.0.1", "--token", "t", "a.csv"]).contains("http://"));
        assert!(usage_error(&["--url", "http://x", "a.csv"]).contains("SEGMENTATION_TOKEN"));
        assert!(usage_error(&["--url", "http://x", "--token", " ", "a.csv"]).contains("token"));
        assert_eq!(
            usage_error(&["--url", "http://x", "--token", "t"]),
            "which file? name one CSV file or workbook"
        );
        assert!(
            usage_error(&["--url", "http://x", "--token", "t", "a", "b"]).contains("at a time")
        );
        assert!(
            usage_error(&["--url", "http://x", "--token", "t", "--sheet", "S", "a.csv"])
                .starts_with("--sheet picks a sheet of a workbook")
        );
        assert_eq!(usage_error(&["--url"]), "--url needs a value");
        assert_eq!(
            usage_error(&["--url", "http://x", "--url", "http://y"]),
            "--url is given twice"
        );
        assert_eq!(usage_error(&["--verbose"]), "unknown option `--verbose`");
        assert_eq!(
            usage_error(&["--verbose=3", "--url", "http://x"]),
            "unknown option `--verbose=3`"
        );
        assert_eq!(
            usage_error(&["--url", "http://x", "-f.csv"]),
            "unknown option `-f.csv`"
        );
        assert_eq!(
            usage_error(&["--dry-run=yes"]),
            "unknown option `--dry-run=yes`"
        );
        for rows in ["0", "10001", "many"] {
            let detail = usage_error(&[
                "--url",
                "http://x",
                "--token",
                "t",
                "--rows-per-request",
                rows,
                "a",
            ]);
            assert!(detail.contains("from 1 to 10000"), "{detail}");
        }
        for concurrency in ["0", "17", "some"] {
            let detail = usage_error(&[
                "--url",
                "http://x",
                "--token",
                "t",
                "--concurrency",
                concurrency,
                "a",
            ]);
            assert_eq!(
                detail,
                format!("--concurrency takes a number from 1 to 16, got `{concurrency}`")
            );
        }
    }

    #[test]
    fn the_help_has_a_line_per_flag() {
        let help = usage();
        assert!(
            help.starts_with("usage: import-customers --url URL"),
            "{help}"
        );
        for (flag, text) in [
            ("--url <URL>", "the API, e.g. http://127.0.0.1:3000"),
            (
                "--token <JWT>",
                "the bearer token (default: $SEGMENTATION_TOKEN)",
            ),
            (
                "--dry-run",
                "validate and classify every row, write nothing",
            ),
            (
                "--rows-per-request <N>",
                "rows per request, 1 to 10000 [default: 5000]",
            ),
            (
                "--concurrency <C>",
                "requests in flight at once, 1 to 16 [default: 4]",
            ),
            (
                "--sheet <NAME>",
                "the sheet of a workbook to import (default: the first)",
            ),
            ("-h, --help", "print this help"),
            ("<FILE>", "the CSV file or workbook to import"),
        ] {
            let line = help
                .lines()
                .find(|line| line.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("{flag}: {help}"));
            assert!(line.trim_end().ends_with(text), "{line}");
        }
        assert!(
            help.trim_end()
                .ends_with("2 on a usage, file or HTTP error."),
            "{help}"
        );
    }
}
