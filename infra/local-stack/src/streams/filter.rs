//! Lambda event filtering (`FilterCriteria`): the subset of the EventBridge pattern
//! language Lambda accepts for DynamoDB Streams, checked when the mapping is created
//! and applied to every record in Lambda's format before it is batched.

use serde_json::{Map, Value};

use super::error::PatternError;

/// Checks a filter pattern the way Lambda does when the mapping is created: an object
/// whose leaves are non-empty arrays of values or operators (`prefix`, `suffix`,
/// `equals-ignore-case`, `anything-but`, `exists`, `numeric`).
pub fn validate_pattern(pattern: &Value) -> Result<(), PatternError> {
    match pattern {
        Value::Object(fields) => validate_fields(fields, ""),
        _ => Err(PatternError::NotAnObject),
    }
}

fn validate_fields(fields: &Map<String, Value>, path: &str) -> Result<(), PatternError> {
    for (name, value) in fields {
        let path = format!("{path}/{name}");
        match value {
            Value::Object(nested) => validate_fields(nested, &path)?,
            Value::Array(matchers) if !matchers.is_empty() => {
                for matcher in matchers {
                    validate_matcher(matcher, &path)?;
                }
            }
            Value::Array(_) => return Err(PatternError::EmptyList { path }),
            _ => return Err(PatternError::NotAList { path }),
        }
    }
    Ok(())
}

fn validate_matcher(matcher: &Value, path: &str) -> Result<(), PatternError> {
    let Value::Object(operator) = matcher else {
        return Ok(());
    };
    let mut entries = operator.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PatternError::OperatorKeys {
            path: path.to_string(),
            matcher: matcher.clone(),
        });
    };
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => operand.is_string(),
        "exists" => operand.is_boolean(),
        "anything-but" => match operand {
            Value::Array(values) => !values.is_empty() && values.iter().all(is_scalar),
            Value::Object(inner) => {
                inner.len() == 1
                    && ["prefix", "suffix", "equals-ignore-case"]
                        .iter()
                        .any(|op| inner.get(*op).is_some_and(Value::is_string))
            }
            value => is_scalar(value),
        },
        "numeric" => numeric_conditions(operand).is_some(),
        other => {
            return Err(PatternError::UnsupportedOperator {
                path: path.to_string(),
                operator: other.to_string(),
            });
        }
    };
    if ok {
        Ok(())
    } else {
        Err(PatternError::InvalidOperand {
            path: path.to_string(),
            operator: name.clone(),
            operand: operand.clone(),
        })
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// `["<", 10, ">=", 5]` as (operator, bound) pairs.
fn numeric_conditions(operand: &Value) -> Option<Vec<(&str, f64)>> {
    let items = operand.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str()?;
            let bound = pair[1].as_f64()?;
            ["<", "<=", "=", ">", ">="]
                .contains(&op)
                .then_some((op, bound))
        })
        .collect()
}

/// Whether `event` (a record in Lambda's format) matches a filter pattern, with Lambda's
/// (EventBridge's) rules: every field of the pattern must match; a nested object matches
/// the nested field; a list matches when any of its values or operators matches the
/// field (or, for a list field, any element of it). A missing field matches only
/// `{"exists": false}`.
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields_match(fields, Some(event)),
        _ => false,
    }
}

/// Whether any pattern matches; no patterns match everything.
pub fn filters_match(filters: &[Value], event: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| pattern_matches(p, event))
}

fn fields_match(fields: &Map<String, Value>, event: Option<&Value>) -> bool {
    fields.iter().all(|(name, pattern)| {
        let field = event.and_then(Value::as_object).and_then(|o| o.get(name));
        match pattern {
            Value::Object(nested) => fields_match(nested, field),
            Value::Array(matchers) => matchers.iter().any(|m| leaf_matches(m, field)),
            _ => false,
        }
    })
}

fn leaf_matches(matcher: &Value, field: Option<&Value>) -> bool {
    if let Some(exists) = matcher.get("exists").and_then(Value::as_bool) {
        return exists == field.is_some();
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|item| value_matches(matcher, item)),
        Some(value) => value_matches(matcher, value),
    }
}

fn value_matches(matcher: &Value, value: &Value) -> bool {
    let Value::Object(operator) = matcher else {
        return scalar_eq(matcher, value);
    };
    let Some((name, operand)) = operator.iter().next() else {
        return false;
    };
    match name.as_str() {
        "anything-but" => match operand {
            Value::Array(values) => !values.iter().any(|v| scalar_eq(v, value)),
            Value::Object(_) => !value_matches(operand, value),
            single => !scalar_eq(single, value),
        },
        "numeric" => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse::<f64>().ok(),
                _ => None,
            };
            match (number, numeric_conditions(operand)) {
                (Some(n), Some(conditions)) => conditions.iter().all(|(op, bound)| match *op {
                    "<" => n < *bound,
                    "<=" => n <= *bound,
                    "=" => n == *bound,
                    ">" => n > *bound,
                    _ => n >= *bound,
                }),
                _ => false,
            }
        }
        _ => {
            let (Some(text), Some(operand)) = (value.as_str(), operand.as_str()) else {
                return false;
            };
            match name.as_str() {
                "prefix" => text.starts_with(operand),
                "suffix" => text.ends_with(operand),
                "equals-ignore-case" => text.to_lowercase() == operand.to_lowercase(),
                _ => false,
            }
        }
    }
}

fn scalar_eq(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => is_scalar(a) && a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{customer_pattern, event};
    use serde_json::json;

    #[test]
    fn the_customer_pattern_keeps_api_writes_of_customers() {
        let p = customer_pattern();
        assert!(validate_pattern(&p).is_ok());
        assert!(pattern_matches(
            &p,
            &event("INSERT", "CUSTOMER#1", Some("api"), "1")
        ));
        assert!(pattern_matches(
            &p,
            &event("MODIFY", "CUSTOMER#1", Some("api"), "2")
        ));
        // Written by another writer, another entity, removed, or without the attribute.
        assert!(!pattern_matches(
            &p,
            &event("MODIFY", "CUSTOMER#1", Some("assign"), "3")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "SEGMENT#1", Some("api"), "4")
        ));
        assert!(!pattern_matches(
            &p,
            &event("REMOVE", "CUSTOMER#1", Some("api"), "5")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "CUSTOMER#1", None, "6")
        ));
        // A prefix is case-sensitive and anchored.
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "customer#1", Some("api"), "7")
        ));
        assert!(!pattern_matches(
            &p,
            &event("INSERT", "X#CUSTOMER#1", Some("api"), "8")
        ));
    }

    #[test]
    fn filters_are_or_ed_and_none_keeps_everything() {
        let remove = event("REMOVE", "CUSTOMER#1", Some("api"), "1");
        let insert = event("INSERT", "SEGMENT#1", None, "2");
        assert!(filters_match(&[], &remove));
        let filters = [customer_pattern(), json!({ "eventName": ["REMOVE"] })];
        assert!(filters_match(&filters, &remove));
        assert!(!filters_match(&filters, &insert));
        assert!(filters_match(
            &filters,
            &event("INSERT", "CUSTOMER#9", Some("api"), "3")
        ));
    }

    #[test]
    fn exact_values_numbers_and_booleans() {
        let e = json!({ "a": "x", "n": 5, "f": 1.5, "b": true, "z": null, "list": ["p", "q"] });
        let yes = |p: Value| assert!(pattern_matches(&p, &e), "{p} should match");
        let no = |p: Value| assert!(!pattern_matches(&p, &e), "{p} should not match");
        yes(json!({ "a": ["y", "x"] }));
        no(json!({ "a": ["y"] }));
        yes(json!({ "n": [5] }));
        yes(json!({ "n": [5.0] }));
        no(json!({ "n": ["5"] }));
        yes(json!({ "f": [1.5] }));
        yes(json!({ "b": [true] }));
        no(json!({ "b": [false] }));
        no(json!({ "b": ["true"] }));
        yes(json!({ "z": [null] }));
        // A list field matches when any element does.
        yes(json!({ "list": ["q"] }));
        no(json!({ "list": ["r"] }));
        // Every field of the pattern must match.
        yes(json!({ "a": ["x"], "n": [5] }));
        no(json!({ "a": ["x"], "n": [6] }));
        // A missing field matches no value.
        no(json!({ "missing": ["x"] }));
        no(json!({ "missing": [null] }));
    }

    #[test]
    fn prefix_suffix_and_ignore_case() {
        let e = json!({ "s": "CUSTOMER#42", "n": 42 });
        assert!(pattern_matches(
            &json!({ "s": [{ "prefix": "CUSTOMER#" }] }),
            &e
        ));
        assert!(pattern_matches(&json!({ "s": [{ "prefix": "" }] }), &e));
        assert!(!pattern_matches(
            &json!({ "s": [{ "prefix": "SEGMENT#" }] }),
            &e
        ));
        assert!(!pattern_matches(&json!({ "n": [{ "prefix": "4" }] }), &e));
        assert!(pattern_matches(&json!({ "s": [{ "suffix": "#42" }] }), &e));
        assert!(pattern_matches(
            &json!({ "s": [{ "equals-ignore-case": "customer#42" }] }),
            &e
        ));
        // Values and operators in one list.
        assert!(pattern_matches(
            &json!({ "s": ["nope", { "prefix": "CUST" }] }),
            &e
        ));
    }

    #[test]
    fn anything_but() {
        let e = json!({ "by": "api", "n": 3 });
        let m = |p: Value| pattern_matches(&p, &e);
        assert!(!m(json!({ "by": [{ "anything-but": ["api", "x"] }] })));
        assert!(m(json!({ "by": [{ "anything-but": ["assign"] }] })));
        assert!(!m(json!({ "by": [{ "anything-but": "api" }] })));
        assert!(m(json!({ "by": [{ "anything-but": "assign" }] })));
        assert!(!m(json!({ "n": [{ "anything-but": 3 }] })));
        assert!(m(json!({ "n": [{ "anything-but": [4, 5] }] })));
        assert!(!m(
            json!({ "by": [{ "anything-but": { "prefix": "ap" } }] })
        ));
        assert!(m(json!({ "by": [{ "anything-but": { "prefix": "as" } }] })));
        // anything-but does not match a missing field.
        assert!(!m(json!({ "missing": [{ "anything-but": "api" }] })));
    }

    #[test]
    fn exists_including_nested_and_missing_parents() {
        let insert = event("INSERT", "CUSTOMER#1", Some("api"), "1");
        let remove = event("REMOVE", "CUSTOMER#1", Some("api"), "2");
        let new_image_exists = json!({ "dynamodb": { "NewImage": [{ "exists": true }] } });
        assert!(pattern_matches(&new_image_exists, &insert));
        assert!(!pattern_matches(&new_image_exists, &remove));
        // A field under a missing object does not exist.
        let no_writer =
            json!({ "dynamodb": { "NewImage": { "written_by": [{ "exists": false }] } } });
        assert!(!pattern_matches(&no_writer, &insert));
        assert!(pattern_matches(&no_writer, &remove));
        let has_writer =
            json!({ "dynamodb": { "NewImage": { "written_by": { "S": [{ "exists": true }] } } } });
        assert!(pattern_matches(&has_writer, &insert));
        assert!(!pattern_matches(&has_writer, &remove));
        // Nested patterns compose with the other fields.
        let old_only = json!({
            "eventName": ["REMOVE"],
            "dynamodb": { "OldImage": { "sk": { "S": [{ "prefix": "CUSTOMER#" }] } }, "NewImage": [{ "exists": false }] }
        });
        assert!(pattern_matches(&old_only, &remove));
        assert!(!pattern_matches(&old_only, &insert));
    }

    #[test]
    fn numeric_ranges() {
        let e = json!({ "n": 5, "s": { "N": "12.5" } });
        assert!(pattern_matches(
            &json!({ "n": [{ "numeric": [">", 0, "<=", 5] }] }),
            &e
        ));
        assert!(!pattern_matches(
            &json!({ "n": [{ "numeric": [">", 5] }] }),
            &e
        ));
        assert!(pattern_matches(
            &json!({ "s": { "N": [{ "numeric": ["=", 12.5] }] } }),
            &e
        ));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            json!(["eventName"]),
            json!({ "eventName": "INSERT" }),
            json!({ "eventName": [] }),
            json!({ "eventName": [{ "wildcard": "IN*" }] }),
            json!({ "eventName": [{ "prefix": 1 }] }),
            json!({ "eventName": [{ "prefix": "A", "suffix": "B" }] }),
            json!({ "eventName": [{ "exists": "yes" }] }),
            json!({ "n": [{ "numeric": [">"] }] }),
            json!({ "n": [{ "numeric": ["~", 1] }] }),
            json!({ "n": [{ "anything-but": [] }] }),
        ] {
            assert!(validate_pattern(&bad).is_err(), "{bad} should be refused");
        }
        let refused = |pattern: Value| validate_pattern(&pattern).unwrap_err();
        assert_eq!(refused(json!(["eventName"])), PatternError::NotAnObject);
        assert_eq!(
            refused(json!({ "dynamodb": { "Keys": [] } })),
            PatternError::EmptyList {
                path: "/dynamodb/Keys".into()
            }
        );
        assert_eq!(
            refused(json!({ "eventName": [{ "wildcard": "IN*" }] })).to_string(),
            "/eventName: unsupported operator `wildcard`"
        );
        assert_eq!(
            refused(json!({ "eventName": [{ "prefix": 1 }] })).to_string(),
            "/eventName: invalid operand for `prefix`: 1"
        );
    }
}
