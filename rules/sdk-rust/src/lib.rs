//! Guest SDK for customer-segmentation rules, rule ABI v1.
//!
//! A rule is a WASI preview1 command: the host writes one JSON document to stdin
//! and reads one JSON document from stdout. This crate does that plumbing so a
//! rule is a plain function from [`Input`] to [`Output`]:
//!
//! ```no_run
//! use segmentation_rule::{Input, Output};
//!
//! fn evaluate(input: &Input) -> Result<Output, String> {
//!     let vip = input.customer.number("annual_revenue")?.unwrap_or(0.0) >= 100_000.0;
//!     Ok(Output::new().cluster("vip", vip))
//! }
//!
//! fn main() {
//!     segmentation_rule::run(evaluate)
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasi`. Anything written to
//! stderr ([`log`], `eprintln!`) becomes the rule's log; never print to stdout
//! yourself.

use std::fmt::Display;
use std::io::{Read, Write};

use serde::Deserialize;
pub use serde_json::{Map, Value};

/// The ABI version this SDK speaks; the host sends it as `abi`.
pub const ABI_VERSION: u64 = 1;

/// Exit status when stdin is not a valid ABI v1 input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status when the rule function returns an error.
pub const EXIT_RULE_ERROR: i32 = 1;

/// Everything the host tells the rule. Unknown keys are ignored, so rules
/// built against v1 keep working when the host adds data.
#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    pub abi: u64,
    pub customer: Customer,
    /// The tenant's active segments a rule may assign.
    #[serde(default)]
    pub segments: Vec<SegmentRef>,
    pub rule: RuleInfo,
}

/// The customer being evaluated.
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// Tax id or other official document number.
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The segment the customer is in now, if any.
    #[serde(default)]
    pub segment: Option<SegmentRef>,
    /// The tenant's custom fields, keyed by field name.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// A segment as the host names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SegmentRef {
    pub id: String,
    pub name: String,
}

/// Which rule is running; handy in log lines.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleInfo {
    pub name: String,
    #[serde(default)]
    pub version: Value,
}

impl Customer {
    /// A custom field's raw value; `None` when absent or `null`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    /// A text field; `None` when absent, `null` or not a string.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }

    /// A boolean field; `None` when absent, `null` or not a boolean.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.field(name).and_then(Value::as_bool)
    }

    /// A numeric field given as a JSON number or a decimal string such as
    /// `"12500.50"` (decimal fields travel as strings). `Ok(None)` when absent
    /// or `null`; an error when present but not a number.
    pub fn number(&self, name: &str) -> Result<Option<f64>, String> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Number(number)) => number
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("field `{}` is not a finite number", name)),
            Some(Value::String(text)) => parse_decimal(text)
                .map(Some)
                .ok_or_else(|| format!("field `{}` is not a number: {:?}", name, text)),
            Some(other) => Err(format!("field `{}` is not a number: {}", name, other)),
        }
    }
}

/// Parses `[-+]digits[.digits]`, the shape of decimal field values. Stricter
/// than `str::parse::<f64>`, which would also accept `inf` and `1e9`.
fn parse_decimal(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = unsigned.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = digits(whole) && fraction.map_or(true, digits);
    if well_formed {
        text.parse().ok()
    } else {
        None
    }
}

/// What to do with the customer's segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentChoice {
    /// Leave it as it is (`segment` absent from the output).
    Unchanged,
    /// Remove the customer from any segment (`"segment": null`).
    Clear,
    /// Move the customer to the segment with this name or id.
    Set(String),
}

impl Default for SegmentChoice {
    fn default() -> Self {
        SegmentChoice::Unchanged
    }
}

/// The rule's decision: cluster values to store on the customer and what to
/// do with its segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub clusters: Map<String, Value>,
    pub segment: SegmentChoice,
}

impl Output {
    /// No clusters, segment unchanged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one cluster field (builder style).
    pub fn cluster(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.clusters.insert(name.to_string(), value.into());
        self
    }

    /// Moves the customer to a segment, by name or id (builder style).
    pub fn segment(mut self, name_or_id: &str) -> Self {
        self.segment = SegmentChoice::Set(name_or_id.to_string());
        self
    }

    /// Removes the customer from its segment (builder style).
    pub fn clear_segment(mut self) -> Self {
        self.segment = SegmentChoice::Clear;
        self
    }

    /// The output document exactly as the host expects it.
    pub fn to_json(&self) -> String {
        let mut document = Map::new();
        document.insert("clusters".to_string(), Value::Object(self.clusters.clone()));
        match &self.segment {
            SegmentChoice::Unchanged => {}
            SegmentChoice::Clear => {
                document.insert("segment".to_string(), Value::Null);
            }
            SegmentChoice::Set(name) => {
                document.insert("segment".to_string(), Value::String(name.clone()));
            }
        }
        Value::Object(document).to_string()
    }
}

/// Parses an input document; useful for unit-testing a rule natively.
pub fn parse_input(json: &[u8]) -> Result<Input, String> {
    let input: Input =
        serde_json::from_slice(json).map_err(|error| format!("invalid rule input: {}", error))?;
    if input.abi != ABI_VERSION {
        return Err(format!(
            "rule input has abi {}; this rule was built for abi {}",
            input.abi, ABI_VERSION
        ));
    }
    Ok(input)
}

/// Runs a rule as the program's `main`: reads stdin, calls `rule`, writes the
/// output to stdout. On failure prints the reason to stderr and exits with
/// [`EXIT_BAD_INPUT`] or [`EXIT_RULE_ERROR`].
pub fn run<F, E>(rule: F)
where
    F: FnOnce(&Input) -> Result<Output, E>,
    E: Display,
{
    // Room for a typical input up front: `read_to_end` then needs two host
    // calls (the data, then end of file) instead of a series of small reads.
    let mut raw = Vec::with_capacity(4 * 1024);
    if let Err(error) = std::io::stdin().read_to_end(&mut raw) {
        fail(EXIT_BAD_INPUT, &format!("cannot read stdin: {}", error));
    }
    let input = match parse_input(&raw) {
        Ok(input) => input,
        Err(message) => fail(EXIT_BAD_INPUT, &message),
    };
    let output = match rule(&input) {
        Ok(output) => output,
        Err(error) => fail(EXIT_RULE_ERROR, &format!("rule failed: {}", error)),
    };
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(output.to_json().as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        fail(EXIT_RULE_ERROR, &format!("cannot write output: {}", error));
    }
}

/// Writes one line to the rule's log (stderr).
///
/// Prefer this to `eprintln!`: stderr is unbuffered, so `eprintln!` makes one
/// host call per formatted piece, while `log` formats first and writes once.
/// Logging never fails the rule; beyond the host's log limit lines are dropped.
pub fn log(message: impl Display) {
    let line = format!("{}\n", message);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn fail(status: i32, message: &str) -> ! {
    log(message);
    std::process::exit(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(fields: Value) -> Customer {
        let input = serde_json::json!({
            "abi": 1,
            "customer": {"id": "c1", "email": "a@b.c", "segment": null, "fields": fields},
            "segments": [],
            "rule": {"name": "t", "version": 1},
            "future_key": {"ignored": true}
        });
        parse_input(input.to_string().as_bytes()).unwrap().customer
    }

    #[test]
    fn numbers_come_from_numbers_and_decimal_strings() {
        let c = customer(serde_json::json!({"a": 12, "b": "12500.50", "c": "1e9", "d": null}));
        assert_eq!(c.number("a"), Ok(Some(12.0)));
        assert_eq!(c.number("b"), Ok(Some(12500.5)));
        assert!(c.number("c").is_err());
        assert_eq!(c.number("d"), Ok(None));
        assert_eq!(c.number("missing"), Ok(None));
    }

    #[test]
    fn output_serialises_the_three_segment_choices() {
        let base = Output::new().cluster("tier", "A");
        assert_eq!(base.to_json(), r#"{"clusters":{"tier":"A"}}"#);
        assert_eq!(
            base.clone().clear_segment().to_json(),
            r#"{"clusters":{"tier":"A"},"segment":null}"#
        );
        assert_eq!(
            base.segment("gold").to_json(),
            r#"{"clusters":{"tier":"A"},"segment":"gold"}"#
        );
    }

    #[test]
    fn wrong_abi_is_rejected() {
        let input = r#"{"abi": 2, "customer": {"id": "c"}, "rule": {"name": "t"}}"#;
        assert!(parse_input(input.as_bytes()).unwrap_err().contains("abi 2"));
    }
}
