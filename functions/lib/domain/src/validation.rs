//! Collecting every problem of an input at once, so a client can fix them all in one round trip.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One failing part of a request body, addressed by JSON Pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    /// Where in the body, e.g. `/fields/tier`.
    pub pointer: String,
    /// What is wrong, in words a developer can act on.
    pub detail: String,
}

/// Every violation found in one input; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{} validation error(s), first: {}", .0.len(), .0.first().map(|v| format!("{} {}", v.pointer, v.detail)).unwrap_or_default())]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation, for checks that stand alone.
    pub fn one(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.push(pointer, detail);
        v
    }

    pub fn push(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Violation {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was collected, so parsers can end with `violations.finish(result)`.
    pub fn finish<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// Reads the properties of one JSON object, recording a violation for each bad one
/// instead of stopping at the first.
pub struct ObjectReader<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    known: Vec<&'static str>,
    pub violations: Violations,
}

impl<'a> ObjectReader<'a> {
    /// Fails with one violation when the body is not a JSON object.
    pub fn new(value: &'a Value, prefix: &'a str) -> Result<Self, Violations> {
        match value {
            Value::Object(object) => Ok(Self {
                object,
                prefix,
                known: Vec::new(),
                violations: Violations::new(),
            }),
            _ => Err(Violations::one(
                if prefix.is_empty() { "/" } else { prefix },
                "must be a JSON object",
            )),
        }
    }

    pub fn pointer(&self, key: &str) -> String {
        format!("{}/{}", self.prefix, key)
    }

    /// Marks keys that may appear but are ignored (read-only properties echoed back by clients).
    pub fn ignore(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// The raw value, with `null` treated as absent.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// An optional string, trimmed, at most `max` characters; empty counts as absent.
    pub fn string(&mut self, key: &'static str, max: usize) -> Option<String> {
        let value = self.raw(key)?;
        match value.as_str() {
            Some(s) => {
                let s = s.trim();
                if s.chars().count() > max {
                    let pointer = self.pointer(key);
                    self.violations
                        .push(pointer, format!("must be at most {max} characters"));
                    None
                } else if s.is_empty() {
                    None
                } else {
                    Some(s.to_owned())
                }
            }
            None => {
                let pointer = self.pointer(key);
                self.violations.push(pointer, "must be a string");
                None
            }
        }
    }

    /// Like [`Self::string`] but records "is required" when missing.
    pub fn required_string(&mut self, key: &'static str, max: usize) -> Option<String> {
        let had_violations = self.violations.0.len();
        let value = self.string(key, max);
        if value.is_none() && self.violations.0.len() == had_violations {
            let pointer = self.pointer(key);
            self.violations.push(pointer, "is required");
        }
        value
    }

    pub fn boolean(&mut self, key: &'static str) -> Option<bool> {
        let value = self.raw(key)?;
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                let pointer = self.pointer(key);
                self.violations.push(pointer, "must be true or false");
                None
            }
        }
    }

    /// Records a violation for every key that no accessor asked for.
    pub fn finish(mut self) -> Violations {
        let mut unknown: Vec<&String> = self
            .object
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            let pointer = format!("{}/{}", self.prefix, key);
            self.violations.push(pointer, "is not a known property");
        }
        self.violations
    }
}

/// Applies a JSON Merge Patch (RFC 7396): PATCH bodies are merged into the current
/// representation and the result is validated like a full replacement.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch_object) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target_object) = target {
                for (key, value) in patch_object {
                    if value.is_null() {
                        target_object.remove(key);
                    } else {
                        merge_patch(
                            target_object.entry(key.clone()).or_insert(Value::Null),
                            value,
                        );
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut doc, &json!({"c": [1]}));
        assert_eq!(doc, json!({"a": "z", "c": [1]}));
    }

    #[test]
    fn reader_collects_every_problem() {
        let body = json!({"name": 5, "extra": true, "long": "abcdef"});
        let mut reader = ObjectReader::new(&body, "").unwrap();
        assert_eq!(reader.string("name", 10), None);
        assert_eq!(reader.string("long", 3), None);
        assert_eq!(reader.required_string("missing", 3), None);
        let violations = reader.finish();
        let pointers: Vec<_> = violations.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/name", "/long", "/missing", "/extra"]);
    }
}
