//! Segments: the tenant's master list (e.g. `AA`, `A`, `B`); each customer is in at most one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::{ObjectReader, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SegmentStatus {
    Active,
    Inactive,
}

impl SegmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// A segment as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    pub id: String,
    pub name: String,
    pub status: SegmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How many customers are in the segment; maintained by every customer write.
    #[serde(default)]
    pub customer_count: i64,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client may set on a segment (POST body, or the result of a PATCH merge).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDraft {
    pub name: String,
    pub status: SegmentStatus,
    pub description: Option<String>,
}

pub const SEGMENT_NAME_MAX: usize = 64;

impl SegmentDraft {
    pub fn parse(body: &Value) -> Result<Self, Violations> {
        let mut reader = ObjectReader::new(body, "")?;
        reader.ignore(&[
            "id",
            "version",
            "created_at",
            "updated_at",
            "customer_count",
        ]);
        let name = reader.required_string("name", SEGMENT_NAME_MAX);
        let status = match reader.string("status", 16) {
            None => Some(SegmentStatus::Active),
            Some(s) => {
                let parsed = SegmentStatus::parse(&s);
                if parsed.is_none() {
                    let pointer = reader.pointer("status");
                    reader
                        .violations
                        .push(pointer, "must be `active` or `inactive`");
                }
                parsed
            }
        };
        let description = reader.string("description", 1000);
        let violations = reader.finish();
        match (name, status) {
            (Some(name), Some(status)) => violations.finish(Self {
                name,
                status,
                description,
            }),
            _ => Err(violations),
        }
    }

    /// The key under which names are unique: case-insensitive, as users see them.
    pub fn name_key(&self) -> String {
        self.name.to_lowercase()
    }

    pub fn into_segment(self, id: String, now: DateTime<Utc>) -> Segment {
        Segment {
            id,
            name: self.name,
            status: self.status,
            description: self.description,
            customer_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Segment {
    /// The segment after a change: same id and creation time, next version.
    pub fn updated(&self, draft: SegmentDraft, now: DateTime<Utc>) -> Segment {
        Segment {
            id: self.id.clone(),
            name: draft.name,
            status: draft.status,
            description: draft.description,
            customer_count: self.customer_count,
            version: self.version + 1,
            created_at: self.created_at,
            updated_at: now,
        }
    }

    pub fn name_key(&self) -> String {
        self.name.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_defaults_and_reports_all_errors() {
        let draft = SegmentDraft::parse(&json!({"name": " AA "})).unwrap();
        assert_eq!(draft.name, "AA");
        assert_eq!(draft.status, SegmentStatus::Active);

        let err = SegmentDraft::parse(&json!({"status": "gone", "colour": 1})).unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/name", "/status", "/colour"]);
    }
}
