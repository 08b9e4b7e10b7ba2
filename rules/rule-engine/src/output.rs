//! The rule's output document (ABI v1), parsed strictly.
//!
//! Only the shape is checked here. Whether the clusters are declared, their
//! values have the right types, or the segment exists is the domain layer's
//! business.

use serde_json::{Map, Value};

use crate::error::RunError;

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

impl RuleOutput {
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

/// Parses stdout into a [`RuleOutput`]: one JSON object (whitespace around it
/// is fine), with exactly the keys `clusters` (required) and `segment`.
pub(crate) fn parse(stdout: &[u8]) -> Result<RuleOutput, RunError> {
    let text = std::str::from_utf8(stdout).map_err(|error| RunError::OutputNotUtf8 {
        valid_up_to: error.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(RunError::NoOutput);
    }
    // `from_str` rejects anything but whitespace after the document.
    let document: Value = serde_json::from_str(text).map_err(RunError::OutputNotJson)?;
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

fn shape(message: impl Into<String>) -> RunError {
    RunError::OutputShape(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_error(stdout: &str) -> String {
        match parse(stdout.as_bytes()) {
            Err(RunError::OutputShape(message)) => message,
            other => panic!("expected a shape error for {stdout:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_three_segment_choices() {
        let unchanged = parse(b" {\"clusters\": {\"tier\": \"A\"}}\n").unwrap();
        assert_eq!(unchanged.segment, SegmentChoice::Unchanged);
        assert_eq!(unchanged.clusters["tier"], "A");
        let clear = parse(br#"{"clusters": {}, "segment": null}"#).unwrap();
        assert_eq!(clear.segment, SegmentChoice::Clear);
        let set = parse(br#"{"clusters": {}, "segment": "gold"}"#).unwrap();
        assert_eq!(set.segment, SegmentChoice::Set("gold".into()));
        assert_eq!(
            set.to_json().to_string(),
            r#"{"clusters":{},"segment":"gold"}"#
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
        assert!(matches!(parse(b"  \n"), Err(RunError::NoOutput)));
        assert!(matches!(
            parse(b"{\"clusters\": {}} {\"clusters\": {}}"),
            Err(RunError::OutputNotJson(_))
        ));
        assert!(matches!(
            parse(b"ok\xff"),
            Err(RunError::OutputNotUtf8 { valid_up_to: 2 })
        ));
    }
}
