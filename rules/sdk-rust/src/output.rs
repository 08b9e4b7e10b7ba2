//! The rule's decision and its JSON form, written straight into one string.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::json::Value;

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

/// The rule's decision: cluster values to store on the customer and what to do with
/// its segment. Each cluster value is kept as JSON text, so writing the output is one
/// concatenation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// `(name, value as JSON)` in the order set; a name set twice keeps its last value.
    clusters: Vec<(String, String)>,
    pub segment: SegmentChoice,
}

/// A value a cluster can be set to. Implemented for text, booleans, numbers, `Option`
/// (`None` clears the field: JSON `null`) and values read from the input.
pub trait ClusterValue {
    /// Appends the value as JSON.
    fn write_json(&self, out: &mut String);
}

impl Output {
    /// No clusters, segment unchanged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one cluster field (builder style).
    pub fn cluster(mut self, name: &str, value: impl ClusterValue) -> Self {
        let mut json = String::with_capacity(16);
        value.write_json(&mut json);
        match self.clusters.iter_mut().find(|(known, _)| known == name) {
            Some((_, old)) => *old = json,
            None => self.clusters.push((name.to_string(), json)),
        }
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

    /// A cluster's value as JSON text, if the rule set it.
    pub fn cluster_json(&self, name: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, json)| json.as_str())
    }

    /// The output document exactly as the host expects it.
    pub fn to_json(&self) -> String {
        let size: usize = self
            .clusters
            .iter()
            .map(|(name, json)| name.len() + json.len() + 4)
            .sum();
        let mut out = String::with_capacity(size + 32);
        out.push_str("{\"clusters\":{");
        for (index, (name, json)) in self.clusters.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_string(&mut out, name);
            out.push(':');
            out.push_str(json);
        }
        out.push('}');
        match &self.segment {
            SegmentChoice::Unchanged => {}
            SegmentChoice::Clear => out.push_str(",\"segment\":null"),
            SegmentChoice::Set(name) => {
                out.push_str(",\"segment\":");
                write_string(&mut out, name);
            }
        }
        out.push('}');
        out
    }
}

impl ClusterValue for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl ClusterValue for &str {
    fn write_json(&self, out: &mut String) {
        write_string(out, self);
    }
}

impl ClusterValue for String {
    fn write_json(&self, out: &mut String) {
        write_string(out, self);
    }
}

/// Written with `Display`, which gives the shortest text that reads back the same;
/// not finite values, which JSON cannot hold, become `null` (as in serde_json).
impl ClusterValue for f64 {
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            out.push_str(&self.to_string());
        } else {
            out.push_str("null");
        }
    }
}

// In decimal without `core::fmt` (see `logging.rs` for why that matters).
macro_rules! integer_cluster_values {
    ($($integer:ty),*) => {$(
        impl ClusterValue for $integer {
            fn write_json(&self, out: &mut String) {
                crate::LogPiece::write_log(self, out);
            }
        }
    )*};
}
integer_cluster_values!(i32, i64, u32, u64, usize);

impl<T: ClusterValue> ClusterValue for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl ClusterValue for Value<'_> {
    fn write_json(&self, out: &mut String) {
        write_value(out, self);
    }
}

impl ClusterValue for &Value<'_> {
    fn write_json(&self, out: &mut String) {
        write_value(out, self);
    }
}

impl ClusterValue for &String {
    fn write_json(&self, out: &mut String) {
        write_string(out, self);
    }
}

/// Appends `value` as compact JSON.
pub(crate) fn write_value(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => flag.write_json(out),
        Value::Number(number) => out.push_str(number.as_str()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(object) => {
            out.push('{');
            for (index, (name, item)) in object.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends `text` as a JSON string: quotes, backslashes and control characters
/// escaped, everything else as is (the output is UTF-8).
pub(crate) fn write_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    if !text
        .bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
    {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut run = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `run` and `index` are at ASCII bytes, so `get` never fails (and, unlike
        // indexing, brings no panic path).
        out.push_str(text.get(run..index).unwrap_or(""));
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        run = index + 1;
    }
    out.push_str(text.get(run..).unwrap_or(""));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_the_three_segment_choices() {
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
    fn every_kind_of_cluster_value() {
        let input = crate::json::parse(r#"{"list": [1, "x"], "n": 2.50}"#).unwrap();
        let output = Output::new()
            .cluster("flag", true)
            .cluster("count", 3u32)
            .cluster("ratio", 0.25)
            .cluster("infinite", f64::INFINITY)
            .cluster("cleared", None::<&str>)
            .cluster("owned", String::from("o"))
            .cluster("echo", &input);
        assert_eq!(
            output.to_json(),
            r#"{"clusters":{"flag":true,"count":3,"ratio":0.25,"infinite":null,"cleared":null,"owned":"o","echo":{"list":[1,"x"],"n":2.50}}}"#
        );
    }

    #[test]
    fn a_cluster_set_twice_keeps_its_last_value_in_its_first_place() {
        let output = Output::new()
            .cluster("a", 1u32)
            .cluster("b", 2u32)
            .cluster("a", 3u32);
        assert_eq!(output.to_json(), r#"{"clusters":{"a":3,"b":2}}"#);
        assert_eq!(output.cluster_json("a"), Some("3"));
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_string(&mut out, "q\" b\\ n\n t\t c\u{1} é");
        assert_eq!(out, r#""q\" b\\ n\n t\t c\u0001 é""#);
        let reread = crate::json::parse(&out).unwrap();
        assert_eq!(reread.as_str(), Some("q\" b\\ n\n t\t c\u{1} é"));
    }
}
