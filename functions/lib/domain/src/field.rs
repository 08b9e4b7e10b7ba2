//! Custom fields of the customer record (a CRM's "Master Data"). A field marked `cluster`
//! groups customers by its value, e.g. boolean `distributor` or enum `tier`.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::{ObjectReader, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Text,
    Integer,
    Decimal,
    Boolean,
    Date,
    Datetime,
    Email,
    Enum,
}

impl FieldType {
    const ALL: [FieldType; 9] = [
        Self::String,
        Self::Text,
        Self::Integer,
        Self::Decimal,
        Self::Boolean,
        Self::Date,
        Self::Datetime,
        Self::Email,
        Self::Enum,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Email => "email",
            Self::Enum => "enum",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Cluster values become index keys, so only types with one canonical spelling per value.
    pub fn can_be_cluster(self) -> bool {
        matches!(
            self,
            Self::String | Self::Integer | Self::Boolean | Self::Enum
        )
    }

    fn max_length_limit(self) -> Option<u32> {
        match self {
            Self::String => Some(STRING_MAX),
            Self::Text => Some(TEXT_MAX),
            _ => None,
        }
    }

    /// Type changes that keep every stored value valid and meaning the same.
    fn widens_to(self, to: FieldType) -> bool {
        self == to
            || matches!(
                (self, to),
                (Self::String, Self::Text)
                    | (Self::Integer, Self::Decimal)
                    | (Self::Email, Self::String | Self::Text)
                    | (Self::Enum, Self::String | Self::Text)
            )
    }
}

pub const STRING_MAX: u32 = 255;
pub const TEXT_MAX: u32 = 10_000;
pub const ENUM_VALUES_MAX: usize = 100;
/// Every cluster field costs index writes in a customer's transaction (at most 100 items),
/// so a tenant may have at most this many.
pub const CLUSTER_FIELDS_MAX: usize = 16;
/// A tenant's field definitions are read on every customer write; keep them one page.
pub const FIELDS_MAX: usize = 200;

/// A field definition as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldDef {
    /// API name, `^[a-z][a-z0-9_]{0,63}$`; the key in a customer's `fields`.
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub cluster: bool,
    /// Maximum characters of a `string` or `text` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Customers holding a value (cluster fields only); maintained by every customer write.
    #[serde(default)]
    pub member_count: i64,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a value does not fit its field. The message is what clients see after the
/// value's JSON pointer in a 422 problem response (`/fields/tier must be one of AA, A, B`)
/// or after the parameter in a 400 (`cluster.distributor must be true or false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldValueError {
    #[error("must be a string")]
    NotString,
    #[error("must be at most {limit} characters")]
    TooLong { limit: usize },
    #[error("must be an integer")]
    NotInteger,
    #[error("must be a decimal number like 1234.50 (a string or a JSON number)")]
    NotDecimal,
    #[error("must be true or false")]
    NotBoolean,
    #[error("must be a date like 2026-01-31")]
    NotDate,
    #[error("must be an RFC 3339 date-time like 2026-01-31T12:00:00Z")]
    NotDatetime,
    #[error("must be an email address")]
    NotEmail,
    /// Not one of an `enum` field's values (listed in the message).
    #[error("must be one of {}", values.join(", "))]
    NotInEnum { values: Vec<String> },
}

/// What a client may set on a field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDraft {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    pub values: Vec<String>,
    pub required: bool,
    pub default: Option<Value>,
    pub cluster: bool,
    pub max_length: Option<u32>,
}

pub fn is_valid_field_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl FieldDraft {
    pub fn parse(body: &Value) -> Result<Self, Violations> {
        let mut reader = ObjectReader::new(body, "")?;
        reader.ignore(&["version", "created_at", "updated_at", "member_count"]);
        let name = reader.required_string("name", 64);
        if let Some(name) = &name
            && !is_valid_field_name(name)
        {
            let pointer = reader.pointer("name");
            reader
                .violations
                .push(pointer, "must match ^[a-z][a-z0-9_]{0,63}$");
        }
        let label = reader.string("label", 128);
        let field_type = match reader.required_string("type", 16) {
            Some(t) => {
                let parsed = FieldType::parse(&t);
                if parsed.is_none() {
                    let pointer = reader.pointer("type");
                    let names: Vec<_> = FieldType::ALL.iter().map(|t| t.as_str()).collect();
                    reader
                        .violations
                        .push(pointer, format!("must be one of {}", names.join(", ")));
                }
                parsed
            }
            None => None,
        };
        let values = parse_enum_values(&mut reader, field_type);
        let required = reader.boolean("required").unwrap_or(false);
        let cluster = reader.boolean("cluster").unwrap_or(false);
        let max_length = parse_max_length(&mut reader, field_type);
        let default = reader.raw("default").cloned();
        if let Some(t) = field_type
            && cluster
            && !t.can_be_cluster()
        {
            let pointer = reader.pointer("cluster");
            reader.violations.push(
                pointer,
                format!(
                    "a `{}` field cannot be a cluster; use string, integer, boolean or enum",
                    t.as_str()
                ),
            );
        }
        let mut violations = reader.finish();
        let (Some(name), Some(field_type)) = (name, field_type) else {
            return Err(violations);
        };
        let mut draft = Self {
            label: label.unwrap_or_else(|| name.clone()),
            name,
            field_type,
            values,
            required,
            default: None,
            cluster,
            max_length,
        };
        if let Some(default) = default {
            match draft.normalize(&default) {
                Ok(value) => draft.default = Some(value),
                Err(error) => violations.push("/default", error.to_string()),
            }
        }
        violations.finish(draft)
    }

    pub fn into_field(self, now: DateTime<Utc>) -> FieldDef {
        FieldDef {
            name: self.name,
            label: self.label,
            field_type: self.field_type,
            values: self.values,
            required: self.required,
            default: self.default,
            cluster: self.cluster,
            max_length: self.max_length,
            member_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn normalize(&self, value: &Value) -> Result<Value, FieldValueError> {
        normalize_value(self.field_type, &self.values, self.max_length, value)
    }
}

fn parse_enum_values(reader: &mut ObjectReader, field_type: Option<FieldType>) -> Vec<String> {
    let raw = reader.raw("values");
    let pointer = reader.pointer("values");
    match (field_type, raw) {
        (Some(FieldType::Enum), None) => {
            reader
                .violations
                .push(pointer, "is required for an enum field");
            Vec::new()
        }
        (Some(FieldType::Enum), Some(Value::Array(items))) => {
            let mut values: Vec<String> = Vec::new();
            for item in items {
                match item.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() && s.chars().count() <= 64 => {
                        if values.iter().any(|v| v == s) {
                            reader
                                .violations
                                .push(pointer.clone(), format!("lists `{s}` twice"));
                        }
                        values.push(s.to_owned());
                    }
                    _ => reader.violations.push(
                        pointer.clone(),
                        "must be non-empty strings of at most 64 characters",
                    ),
                }
            }
            if values.is_empty() || values.len() > ENUM_VALUES_MAX {
                reader.violations.push(
                    pointer,
                    format!("must list between 1 and {ENUM_VALUES_MAX} values"),
                );
            }
            values
        }
        (Some(FieldType::Enum), Some(_)) => {
            reader
                .violations
                .push(pointer, "must be an array of strings");
            Vec::new()
        }
        (_, Some(_)) => {
            reader
                .violations
                .push(pointer, "is only allowed on enum fields");
            Vec::new()
        }
        (None, None) | (Some(_), None) => Vec::new(),
    }
}

fn parse_max_length(reader: &mut ObjectReader, field_type: Option<FieldType>) -> Option<u32> {
    let raw = reader.raw("max_length")?;
    let pointer = reader.pointer("max_length");
    let Some(limit) = field_type.and_then(FieldType::max_length_limit) else {
        reader
            .violations
            .push(pointer, "is only allowed on string and text fields");
        return None;
    };
    match raw.as_u64() {
        Some(n) if n >= 1 && n <= u64::from(limit) => Some(n as u32),
        _ => {
            reader
                .violations
                .push(pointer, format!("must be an integer from 1 to {limit}"));
            None
        }
    }
}

impl FieldDef {
    /// Checks a value against this definition and returns its canonical form
    /// (decimals as strings, datetimes in UTC), or why it does not fit.
    pub fn normalize(&self, value: &Value) -> Result<Value, FieldValueError> {
        normalize_value(self.field_type, &self.values, self.max_length, value)
    }

    /// Why changing this definition into `draft` would break stored values, if it would.
    /// The API answers such a change with 409.
    pub fn incompatible_change(&self, draft: &FieldDraft) -> Option<String> {
        if !self.field_type.widens_to(draft.field_type) {
            return Some(format!(
                "changing type `{}` to `{}` would invalidate stored values",
                self.field_type.as_str(),
                draft.field_type.as_str()
            ));
        }
        if draft.cluster != self.cluster {
            return Some(
                "`cluster` is fixed when a field is created; create a new field instead".into(),
            );
        }
        if self.cluster
            && draft.field_type != self.field_type
            && draft.field_type != FieldType::String
        {
            return Some("a cluster field can only widen from enum to string".into());
        }
        if draft.field_type == FieldType::Enum
            && let Some(removed) = self.values.iter().find(|v| !draft.values.contains(v))
        {
            return Some(format!(
                "removing enum value `{removed}` would invalidate stored values"
            ));
        }
        let old_max = self.max_length.or(self.field_type.max_length_limit());
        let new_max = draft.max_length.or(draft.field_type.max_length_limit());
        if let (Some(old), Some(new)) = (old_max, new_max)
            && new < old
        {
            return Some(format!(
                "lowering max_length from {old} to {new} would invalidate stored values"
            ));
        }
        None
    }

    /// The field after a compatible change: same name and creation time, next version.
    pub fn updated(&self, draft: FieldDraft, now: DateTime<Utc>) -> FieldDef {
        FieldDef {
            member_count: self.member_count,
            version: self.version + 1,
            created_at: self.created_at,
            updated_at: now,
            ..draft.into_field(now)
        }
    }

    /// The index key of a cluster value; `value` must already be normalized.
    pub fn cluster_key(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Reads a cluster value written in a query string (`?cluster.tier=AA`).
    pub fn parse_query_value(&self, raw: &str) -> Result<Value, FieldValueError> {
        let value = match self.field_type {
            FieldType::Boolean => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(FieldValueError::NotBoolean),
            },
            FieldType::Integer => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| FieldValueError::NotInteger)?,
            _ => Value::String(raw.to_owned()),
        };
        self.normalize(&value)
    }
}

fn normalize_value(
    field_type: FieldType,
    enum_values: &[String],
    max_length: Option<u32>,
    value: &Value,
) -> Result<Value, FieldValueError> {
    let text = || value.as_str().ok_or(FieldValueError::NotString);
    let within = |s: &str| {
        let limit = max_length
            .or(field_type.max_length_limit())
            .unwrap_or(STRING_MAX) as usize;
        if s.chars().count() > limit {
            Err(FieldValueError::TooLong { limit })
        } else {
            Ok(Value::String(s.to_owned()))
        }
    };
    match field_type {
        FieldType::String | FieldType::Text => within(text()?),
        FieldType::Integer => match value.as_i64() {
            Some(n) => Ok(Value::from(n)),
            None => Err(FieldValueError::NotInteger),
        },
        FieldType::Decimal => normalize_decimal(value).map(Value::String),
        FieldType::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or(FieldValueError::NotBoolean),
        FieldType::Date => {
            let s = text()?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| FieldValueError::NotDate)
        }
        FieldType::Datetime => {
            let s = text()?;
            DateTime::parse_from_rfc3339(s)
                .map(|d| {
                    Value::String(
                        d.with_timezone(&Utc)
                            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    )
                })
                .map_err(|_| FieldValueError::NotDatetime)
        }
        FieldType::Email => {
            let s = text()?;
            if is_valid_email(s) {
                Ok(Value::String(s.to_owned()))
            } else {
                Err(FieldValueError::NotEmail)
            }
        }
        FieldType::Enum => {
            let s = text()?;
            if enum_values.iter().any(|v| v == s) {
                Ok(Value::String(s.to_owned()))
            } else {
                Err(FieldValueError::NotInEnum {
                    values: enum_values.to_vec(),
                })
            }
        }
    }
}

/// Decimals travel as strings so no float rounding ever touches money-like values.
/// Accepts a JSON number or a string like `-1234.50`; up to 18 integer and 12 fraction digits.
fn normalize_decimal(value: &Value) -> Result<String, FieldValueError> {
    let raw = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(FieldValueError::NotDecimal),
    };
    let (sign, digits) = match raw.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", raw.as_str()),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty()
        || int_part.len() > 18
        || frac_part.len() > 12
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || (digits.contains('.') && frac_part.is_empty())
    {
        return Err(FieldValueError::NotDecimal);
    }
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = frac_part.trim_end_matches('0');
    let sign = if int_part == "0" && frac_part.is_empty() {
        ""
    } else {
        sign
    };
    Ok(if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

/// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_valid_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(body: Value) -> FieldDef {
        FieldDraft::parse(&body).unwrap().into_field(Utc::now())
    }

    #[test]
    fn decimals_are_canonical_strings() {
        assert_eq!(normalize_decimal(&json!("0012.500")).unwrap(), "12.5");
        assert_eq!(normalize_decimal(&json!(12)).unwrap(), "12");
        assert_eq!(normalize_decimal(&json!("-0.0")).unwrap(), "0");
        assert_eq!(normalize_decimal(&json!(0.1)).unwrap(), "0.1");
        assert_eq!(
            normalize_decimal(&json!("1e5")),
            Err(FieldValueError::NotDecimal)
        );
        assert!(normalize_decimal(&json!("12.")).is_err());
        assert_eq!(
            normalize_decimal(&json!(true)).unwrap_err().to_string(),
            "must be a decimal number like 1234.50 (a string or a JSON number)"
        );
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let tier = field(json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"]}));
        assert_eq!(tier.normalize(&json!("AA")).unwrap(), json!("AA"));
        assert_eq!(
            tier.normalize(&json!("C")).unwrap_err().to_string(),
            "must be one of AA, A, B"
        );
        let since = field(json!({"name": "since", "type": "datetime"}));
        assert_eq!(
            since
                .normalize(&json!("2026-01-01T01:00:00+01:00"))
                .unwrap(),
            json!("2026-01-01T00:00:00Z")
        );
        let code = field(json!({"name": "code", "type": "string", "max_length": 3}));
        assert_eq!(
            code.normalize(&json!("abcd")).unwrap_err().to_string(),
            "must be at most 3 characters"
        );
        let day = field(json!({"name": "day", "type": "date"}));
        assert_eq!(
            day.normalize(&json!("2026-02-30")),
            Err(FieldValueError::NotDate)
        );
    }

    #[test]
    fn value_errors_read_as_before() {
        let messages = [
            (FieldValueError::NotString, "must be a string"),
            (
                FieldValueError::TooLong { limit: 255 },
                "must be at most 255 characters",
            ),
            (FieldValueError::NotInteger, "must be an integer"),
            (
                FieldValueError::NotDecimal,
                "must be a decimal number like 1234.50 (a string or a JSON number)",
            ),
            (FieldValueError::NotBoolean, "must be true or false"),
            (FieldValueError::NotDate, "must be a date like 2026-01-31"),
            (
                FieldValueError::NotDatetime,
                "must be an RFC 3339 date-time like 2026-01-31T12:00:00Z",
            ),
            (FieldValueError::NotEmail, "must be an email address"),
            (
                FieldValueError::NotInEnum {
                    values: vec!["AA".into(), "A".into()],
                },
                "must be one of AA, A",
            ),
        ];
        for (error, message) in messages {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn drafts_report_every_problem() {
        let err = FieldDraft::parse(&json!({
            "name": "Bad Name", "type": "text", "cluster": true, "values": ["x"]
        }))
        .unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/name", "/values", "/cluster"]);
        let err = FieldDraft::parse(&json!({"name": "n", "type": "integer", "default": "x"}))
            .unwrap_err();
        assert_eq!(err.0[0].pointer, "/default");
    }

    #[test]
    fn only_widening_changes_are_compatible() {
        let tier = field(json!({"name": "tier", "type": "enum", "values": ["A", "B"]}));
        let more =
            FieldDraft::parse(&json!({"name": "tier", "type": "enum", "values": ["A", "B", "C"]}))
                .unwrap();
        assert_eq!(tier.incompatible_change(&more), None);
        let fewer =
            FieldDraft::parse(&json!({"name": "tier", "type": "enum", "values": ["A"]})).unwrap();
        assert!(tier.incompatible_change(&fewer).unwrap().contains("`B`"));
        let count = field(json!({"name": "count", "type": "integer"}));
        let to_bool = FieldDraft::parse(&json!({"name": "count", "type": "boolean"})).unwrap();
        assert!(count.incompatible_change(&to_bool).is_some());
        let to_decimal = FieldDraft::parse(&json!({"name": "count", "type": "decimal"})).unwrap();
        assert_eq!(count.incompatible_change(&to_decimal), None);
    }

    #[test]
    fn cluster_query_values_are_typed() {
        let flag = field(json!({"name": "distributor", "type": "boolean", "cluster": true}));
        assert_eq!(flag.parse_query_value("true").unwrap(), json!(true));
        assert_eq!(
            flag.parse_query_value("yes").unwrap_err().to_string(),
            "must be true or false"
        );
        assert_eq!(FieldDef::cluster_key(&json!(true)), "true");
        assert_eq!(FieldDef::cluster_key(&json!("AA")), "AA");
    }
}
