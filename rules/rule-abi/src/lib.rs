//! The documents of the rule ABI v1 (`rules/README.md`, "Rule ABI v1"): the output a
//! rule writes to stdout, parsed strictly, and the ABI version the input carries.
//!
//! Pure data: no wasmtime. The engine (`rule-engine`) parses every run's stdout with
//! [`RuleOutput::parse`]; the domain checks the parsed [`RuleOutput`] against a
//! tenant's fields and segments without linking the engine. The input document is
//! built by the domain from its own types (`domain::rule::rule_input`), stamped with
//! [`ABI_VERSION`].
//!
//! Only the output's shape is checked here. Whether the clusters are declared, their
//! values have the right types, or the segment exists is the domain layer's business.

use serde_json::{Map, Value};

/// The `abi` key of every input document. Additions rules can ignore (new input keys)
/// keep it; anything else is a new version.
pub const ABI_VERSION: u32 = 1;

/// What a rule decided for one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutput {
    /// Cluster field name -> value, as the rule wrote them.
    pub clusters: Map<String, Value>,
    /// What to do with the customer's segment.
    pub segment: SegmentChoice,
}

/// The `segment` key of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentChoice {
    /// `segment` absent: leave the customer's segment as it is.
    Unchanged,
    /// `"segment": null`: remove the customer from its segment.
    Clear,
    /// `"segment": "<name or id>"`: move the customer to that segment.
    Set(String),
}

/// Why a rule's stdout is not an ABI v1 output. Messages are shown to tenants;
/// [`OutputError::code`] gives the stable names.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("rule wrote nothing to stdout")]
    NoOutput,
    #[error("output is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("output is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("output has the wrong shape: {0}")]
    Shape(String),
}

impl OutputError {
    /// A stable machine-readable name, e.g. for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            OutputError::NoOutput => "no_output",
            OutputError::NotUtf8 { .. } => "output_not_utf8",
            OutputError::NotJson(_) => "output_not_json",
            OutputError::Shape(_) => "output_shape",
        }
    }
}

impl RuleOutput {
    /// Parses a rule's stdout: one JSON object (whitespace around it is fine), with
    /// exactly the keys `clusters` (required, an object) and `segment` (absent, `null`
    /// or a non-empty string).
    pub fn parse(stdout: &[u8]) -> Result<RuleOutput, OutputError> {
        let text = std::str::from_utf8(stdout).map_err(|error| OutputError::NotUtf8 {
            valid_up_to: error.valid_up_to(),
        })?;
        if text.trim().is_empty() {
            return Err(OutputError::NoOutput);
        }
        // `from_str` rejects anything but whitespace after the document.
        let document: Value = serde_json::from_str(text).map_err(OutputError::NotJson)?;
        let Value::Object(mut document) = document else {
            return Err(shape("the output must be a JSON object"));
        };
        if let Some(unknown) = document
            .keys()
            .find(|key| !matches!(key.as_str(), "clusters" | "segment"))
        {
            return Err(shape(format!(
                "unknown key `{unknown}` (ABI v1 allows `clusters` and `segment`)"
            )));
        }
        let clusters = match document.remove("clusters") {
            Some(Value::Object(clusters)) => clusters,
            Some(_) => return Err(shape("`clusters` must be an object")),
            None => return Err(shape("missing `clusters`")),
        };
        let segment = match document.remove("segment") {
            None => SegmentChoice::Unchanged,
            Some(Value::Null) => SegmentChoice::Clear,
            Some(Value::String(name)) if name.is_empty() => {
                return Err(shape("`segment` must not be empty; use null to clear it"));
            }
            Some(Value::String(name)) => SegmentChoice::Set(name),
            Some(_) => return Err(shape("`segment` must be a string or null")),
        };
        Ok(RuleOutput { clusters, segment })
    }

    /// The output as the ABI v1 document (`segment` omitted when unchanged).
    pub fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("clusters".into(), Value::Object(self.clusters.clone()));
        match &self.segment {
            SegmentChoice::Unchanged => {}
            SegmentChoice::Clear => {
                document.insert("segment".into(), Value::Null);
            }
            SegmentChoice::Set(name) => {
                document.insert("segment".into(), Value::String(name.clone()));
            }
        }
        Value::Object(document)
    }
}

fn shape(message: impl Into<String>) -> OutputError {
    OutputError::Shape(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_error(stdout: &str) -> String {
        match RuleOutput::parse(stdout.as_bytes()) {
            Err(OutputError::Shape(message)) => message,
            other => panic!("expected a shape error for {stdout:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_three_segment_choices() {
        let unchanged = RuleOutput::parse(b" {\"clusters\": {\"tier\": \"A\"}}\n").unwrap();
        assert_eq!(unchanged.segment, SegmentChoice::Unchanged);
        assert_eq!(unchanged.clusters["tier"], "A");
        let clear = RuleOutput::parse(br#"{"clusters": {}, "segment": null}"#).unwrap();
        assert_eq!(clear.segment, SegmentChoice::Clear);
        let set = RuleOutput::parse(br#"{"clusters": {}, "segment": "gold"}"#).unwrap();
        assert_eq!(set.segment, SegmentChoice::Set("gold".into()));
        assert_eq!(
            set.to_json().to_string(),
            r#"{"clusters":{},"segment":"gold"}"#
        );
        assert_eq!(
            unchanged.to_json().to_string(),
            r#"{"clusters":{"tier":"A"}}"#
        );
        assert_eq!(
            clear.to_json().to_string(),
            r#"{"clusters":{},"segment":null}"#
        );
    }

    #[test]
    fn rejects_wrong_shapes_with_clear_messages() {
        assert_eq!(shape_error("[]"), "the output must be a JSON object");
        assert_eq!(shape_error("{}"), "missing `clusters`");
        assert_eq!(
            shape_error(r#"{"clusters": []}"#),
            "`clusters` must be an object"
        );
        assert_eq!(
            shape_error(r#"{"clusters": {}, "segment": 3}"#),
            "`segment` must be a string or null"
        );
        assert!(shape_error(r#"{"clusters": {}, "x": 1}"#).starts_with("unknown key `x`"));
        assert!(shape_error(r#"{"clusters": {}, "segment": ""}"#).contains("must not be empty"));
    }

    #[test]
    fn rejects_non_json_and_trailing_documents() {
        assert!(matches!(
            RuleOutput::parse(b"  \n"),
            Err(OutputError::NoOutput)
        ));
        assert!(matches!(
            RuleOutput::parse(b"{\"clusters\": {}} {\"clusters\": {}}"),
            Err(OutputError::NotJson(_))
        ));
        assert!(matches!(
            RuleOutput::parse(b"ok\xff"),
            Err(OutputError::NotUtf8 { valid_up_to: 2 })
        ));
    }

    #[test]
    fn errors_keep_their_codes_and_messages() {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"", "no_output", "rule wrote nothing to stdout"),
            (
                b"ok\xff",
                "output_not_utf8",
                "output is not valid UTF-8 (invalid byte at offset 2)",
            ),
            (
                b"ok",
                "output_not_json",
                "output is not valid JSON: expected value at line 1 column 1",
            ),
            (
                br#"{"clusters": []}"#,
                "output_shape",
                "output has the wrong shape: `clusters` must be an object",
            ),
        ];
        for (stdout, code, message) in cases {
            let error = RuleOutput::parse(stdout).unwrap_err();
            assert_eq!((error.code(), error.to_string().as_str()), (code, message));
        }
    }
}
