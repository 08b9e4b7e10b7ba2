//! Customers: core contact data, at most one segment, and custom field values.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::field::{FieldDef, is_valid_email};
use crate::ids::is_valid_entity_id;
use crate::segment::{Segment, SegmentStatus};
use crate::validation::{ObjectReader, Violations};

/// A customer as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub id: String,
    /// Unique per tenant, compared case-insensitively.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Tax id or other official document number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// Values of the tenant's custom fields, keyed by field name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// For each value in `fields`, the `created_at` of the field definition it was
    /// validated against. A field deleted and later re-created under the same name is a
    /// new field: values stamped with the old one stay hidden and are dropped at the
    /// next write. Stored only; `visible` clears it, so clients never see it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(ignore)]
    pub field_stamps: BTreeMap<String, DateTime<Utc>>,
    /// Who made the last write. The stream evaluates only writes by the API, so the
    /// rules' own write-back never triggers another evaluation.
    #[serde(default)]
    pub written_by: WrittenBy,
    /// For each cluster value a rule set: which rule, which version, when. Stored only;
    /// shown by `GET /customers/{id}/clusters`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(ignore)]
    pub cluster_sources: BTreeMap<String, ClusterSource>,
    /// The rule that set or cleared the segment, while the segment is as it left it.
    /// Stored only; the membership-change events name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub segment_source: Option<ClusterSource>,
    /// The failures of the last evaluation, one per failing rule. Stored only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub rule_errors: Vec<RuleFailure>,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who made a customer's last write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WrittenBy {
    /// A client, through the HTTP API (or an import).
    #[default]
    Api,
    /// The tenant's rules, through the assign function.
    Rules,
    /// The service itself, taking a customer out of a segment or cluster field that was
    /// deleted while the customer's write was in flight (see `store::counts`).
    System,
}

/// Provenance of a cluster value set by a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterSource {
    pub rule: String,
    pub version: u32,
    pub at: DateTime<Utc>,
}

impl ClusterSource {
    pub fn new(rule: String, version: u32, at: DateTime<Utc>) -> Self {
        Self { rule, version, at }
    }
}

/// Why a rule could not assign a customer the last time it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleFailure {
    pub rule: String,
    pub version: u32,
    /// Stable machine-readable reason, e.g. `fuel_exhausted` or `invalid_output`.
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl RuleFailure {
    /// The same failure again, ignoring when it happened.
    pub fn same_as(&self, other: &RuleFailure) -> bool {
        (&self.rule, self.version, &self.code, &self.message)
            == (&other.rule, other.version, &other.code, &other.message)
    }
}

/// A validated customer body: everything a client may set.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerDraft {
    pub id: Option<String>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub document: Option<String>,
    pub phone: Option<String>,
    pub segment_id: Option<String>,
    pub fields: Map<String, Value>,
    /// Which definition each value was validated against (see `Customer::field_stamps`).
    pub field_stamps: BTreeMap<String, DateTime<Utc>>,
}

/// What the tenant has defined, needed to validate a customer body.
pub struct CustomerSchema<'a> {
    pub fields: &'a [FieldDef],
    /// The segment the body names, as currently stored (None when it does not exist).
    pub segment: Option<&'a Segment>,
    /// The segment the customer is in before this write. Deactivating a segment stops new
    /// assignments, but its customers stay in it and can still be edited.
    pub current_segment_id: Option<&'a str>,
}

impl CustomerDraft {
    /// Reads and validates a full customer body (POST, PUT, or a PATCH merged into the
    /// current customer), listing every failing property at once.
    pub fn parse(body: &Value, schema: &CustomerSchema) -> Result<Self, Violations> {
        let mut reader = ObjectReader::new(body, "")?;
        reader.ignore(&["version", "created_at", "updated_at", "written_by"]);
        let id = reader.string("id", 64);
        if let Some(id) = &id
            && !is_valid_entity_id(id)
        {
            let pointer = reader.pointer("id");
            reader.violations.push(
                pointer,
                "must be 1-64 letters, digits, `_`, `-` or `.`, starting with a letter or digit",
            );
        }
        let email = reader.required_string("email", 254);
        if let Some(email) = &email
            && !is_valid_email(email)
        {
            let pointer = reader.pointer("email");
            reader.violations.push(pointer, "must be an email address");
        }
        let first_name = reader.string("first_name", 100);
        let last_name = reader.string("last_name", 100);
        let document = reader.string("document", 64);
        let phone = reader.string("phone", 32);
        if let Some(phone) = &phone
            && !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            let pointer = reader.pointer("phone");
            reader
                .violations
                .push(pointer, "may hold only digits, spaces and + - ( ) .");
        }
        let segment_id = reader.string("segment_id", 64);
        if let Some(segment_id) = &segment_id {
            let pointer = reader.pointer("segment_id");
            match schema.segment {
                Some(segment) if &segment.id == segment_id => {
                    let stays = schema.current_segment_id == Some(segment_id.as_str());
                    if segment.status != SegmentStatus::Active && !stays {
                        reader
                            .violations
                            .push(pointer, format!("segment `{}` is inactive", segment.name));
                    }
                }
                _ => reader
                    .violations
                    .push(pointer, format!("no segment has id `{segment_id}`")),
            }
        }
        let raw_fields = reader.raw("fields");
        let mut violations = reader.finish();
        let fields = match raw_fields {
            None => validate_fields(&Map::new(), schema.fields, &mut violations),
            Some(Value::Object(values)) => validate_fields(values, schema.fields, &mut violations),
            Some(_) => {
                violations.push("/fields", "must be a JSON object");
                Map::new()
            }
        };
        let Some(email) = email else {
            return Err(violations);
        };
        let field_stamps = schema
            .fields
            .iter()
            .filter(|def| fields.contains_key(&def.name))
            .map(|def| (def.name.clone(), def.created_at))
            .collect();
        violations.finish(Self {
            id,
            email,
            first_name,
            last_name,
            document,
            phone,
            segment_id,
            fields,
            field_stamps,
        })
    }

    /// The key under which emails are unique.
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }

    pub fn into_customer(self, id: String, now: DateTime<Utc>) -> Customer {
        Customer {
            id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            document: self.document,
            phone: self.phone,
            segment_id: self.segment_id,
            fields: self.fields,
            field_stamps: self.field_stamps,
            written_by: WrittenBy::Api,
            cluster_sources: BTreeMap::new(),
            segment_source: None,
            rule_errors: Vec::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Checks every value against its definition, applies defaults and required-ness,
/// and returns the canonical values.
fn validate_fields(
    values: &Map<String, Value>,
    definitions: &[FieldDef],
    violations: &mut Violations,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in values {
        if value.is_null() {
            continue;
        }
        match definitions.iter().find(|d| &d.name == name) {
            None => violations.push(format!("/fields/{name}"), "is not a defined field"),
            Some(def) => match def.normalize(value) {
                Ok(value) => {
                    out.insert(name.clone(), value);
                }
                Err(error) => violations.push(format!("/fields/{name}"), error.to_string()),
            },
        }
    }
    for def in definitions {
        if out.contains_key(&def.name) || values.get(&def.name).is_some_and(|v| !v.is_null()) {
            continue;
        }
        if let Some(default) = &def.default {
            out.insert(def.name.clone(), default.clone());
        } else if def.required {
            violations.push(format!("/fields/{}", def.name), "is required");
        }
    }
    out
}

impl Customer {
    /// The customer after a full replacement: same id and creation time, next version.
    /// A client's write keeps the provenance of every cluster value it leaves as it was;
    /// a value the client changed is the client's now.
    pub fn replaced(&self, draft: CustomerDraft, now: DateTime<Utc>) -> Customer {
        let cluster_sources = self
            .cluster_sources
            .iter()
            .filter(|(name, _)| {
                draft.fields.get(*name) == self.fields.get(*name)
                    && draft.field_stamps.get(*name) == self.field_stamps.get(*name)
            })
            .map(|(name, source)| (name.clone(), source.clone()))
            .collect();
        let segment_source = self
            .segment_source
            .clone()
            .filter(|_| draft.segment_id == self.segment_id);
        Customer {
            version: self.version + 1,
            created_at: self.created_at,
            cluster_sources,
            segment_source,
            rule_errors: self.rule_errors.clone(),
            ..draft.into_customer(self.id.clone(), now)
        }
    }

    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }

    /// Whether writing `draft` over this customer would leave everything a client sees
    /// as it is (an import counts such a row as unchanged and writes nothing).
    pub fn unchanged_by(&self, draft: &CustomerDraft, definitions: &[FieldDef]) -> bool {
        let visible = self.to_visible(definitions);
        (
            &visible.email,
            &visible.first_name,
            &visible.last_name,
            &visible.document,
            &visible.phone,
            &visible.segment_id,
            &visible.fields,
        ) == (
            &draft.email,
            &draft.first_name,
            &draft.last_name,
            &draft.document,
            &draft.phone,
            &draft.segment_id,
            &draft.fields,
        )
    }

    /// Only values of fields that are defined now (the same definition they were written
    /// under) and valid for it: values of a deleted field disappear from reads and are
    /// dropped at the next write, even if a field of the same name is created later.
    pub fn visible(mut self, definitions: &[FieldDef]) -> Customer {
        self.cluster_sources.clear();
        self.segment_source = None;
        self.rule_errors.clear();
        let stamps = std::mem::take(&mut self.field_stamps);
        self.fields
            .retain(|name, value| shows(&stamps, definitions, name, value));
        self
    }

    /// [`Customer::visible`] of a borrowed customer: copies only what stays visible
    /// (the stream evaluates every customer it decodes this way, twice).
    pub fn to_visible(&self, definitions: &[FieldDef]) -> Customer {
        let fields = self
            .fields
            .iter()
            .filter(|(name, value)| shows(&self.field_stamps, definitions, name, value))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Customer {
            id: self.id.clone(),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            document: self.document.clone(),
            phone: self.phone.clone(),
            segment_id: self.segment_id.clone(),
            fields,
            field_stamps: BTreeMap::new(),
            written_by: self.written_by,
            cluster_sources: BTreeMap::new(),
            segment_source: None,
            rule_errors: Vec::new(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The cluster index keys this customer belongs to: `(field name, value key)`.
    pub fn cluster_memberships(&self, definitions: &[FieldDef]) -> Vec<(String, String)> {
        definitions
            .iter()
            .filter_map(|d| Some((d.name.clone(), self.cluster_value_key(d)?)))
            .collect()
    }

    /// The index key of this customer's value for a cluster field, if it holds one
    /// written under this very definition.
    /// The customer without what no longer exists: a segment that was deleted
    /// (`segment_exists` is false) and values of fields that were deleted or re-created.
    /// `None` when nothing dangles. Such a customer is left behind by a write that was
    /// validated just before the segment or field was deleted and landed just after.
    pub fn without_dangling(
        &self,
        definitions: &[FieldDef],
        segment_exists: bool,
        now: DateTime<Utc>,
    ) -> Option<Customer> {
        let mut next = self.clone();
        if !segment_exists {
            next.segment_id = None;
            next.segment_source = None;
        }
        next.fields.retain(|name, _| {
            definitions
                .iter()
                .any(|d| &d.name == name && holds_value_of(&self.field_stamps, d))
        });
        let kept = |name: &String| next.fields.contains_key(name);
        next.field_stamps = self
            .field_stamps
            .iter()
            .filter(|(name, _)| kept(name))
            .map(|(name, stamp)| (name.clone(), *stamp))
            .collect();
        next.cluster_sources = self
            .cluster_sources
            .iter()
            .filter(|(name, _)| kept(name))
            .map(|(name, source)| (name.clone(), source.clone()))
            .collect();
        if next.segment_id == self.segment_id && next.fields.len() == self.fields.len() {
            return None;
        }
        next.version = self.version + 1;
        next.updated_at = now;
        next.written_by = WrittenBy::System;
        Some(next)
    }

    pub fn cluster_value_key(&self, definition: &FieldDef) -> Option<String> {
        if !definition.cluster || !holds_value_of(&self.field_stamps, definition) {
            return None;
        }
        self.fields.get(&definition.name).map(FieldDef::cluster_key)
    }
}

/// Whether a stored value of `definition` was written under this very definition.
fn holds_value_of(stamps: &BTreeMap<String, DateTime<Utc>>, definition: &FieldDef) -> bool {
    stamps.get(&definition.name) == Some(&definition.created_at)
}

/// Whether a client sees a stored value: its field is defined now, by the definition
/// the value was written under, and the value is valid for it.
fn shows(
    stamps: &BTreeMap<String, DateTime<Utc>>,
    definitions: &[FieldDef],
    name: &str,
    value: &Value,
) -> bool {
    definitions
        .iter()
        .find(|d| d.name == name)
        .is_some_and(|d| holds_value_of(stamps, d) && d.normalize(value).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldDraft;
    use crate::segment::SegmentDraft;
    use serde_json::json;

    fn defs() -> Vec<FieldDef> {
        [
            json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
            json!({"name": "distributor", "type": "boolean", "cluster": true, "default": false}),
            json!({"name": "vat", "type": "string", "required": true}),
        ]
        .iter()
        .map(|b| FieldDraft::parse(b).unwrap().into_field(Utc::now()))
        .collect()
    }

    #[test]
    fn applies_defaults_and_lists_every_failure() {
        let fields = defs();
        let schema = CustomerSchema {
            fields: &fields,
            segment: None,
            current_segment_id: None,
        };
        let ok = CustomerDraft::parse(
            &json!({"email": "a@b.co", "fields": {"vat": "X1", "tier": "AA"}}),
            &schema,
        )
        .unwrap();
        assert_eq!(ok.fields["distributor"], json!(false));

        let err = CustomerDraft::parse(
            &json!({"email": "nope", "segment_id": "s1", "fields": {"tier": "Z", "color": 1}}),
            &schema,
        )
        .unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/email",
                "/segment_id",
                "/fields/color",
                "/fields/tier",
                "/fields/vat"
            ]
        );
    }

    #[test]
    fn inactive_segments_are_refused() {
        let mut segment = SegmentDraft::parse(&json!({"name": "B", "status": "inactive"}))
            .unwrap()
            .into_segment("s1".into(), Utc::now());
        let fields = defs();
        let body = json!({"email": "a@b.co", "segment_id": "s1", "fields": {"vat": "1"}});
        let schema = CustomerSchema {
            fields: &fields,
            segment: Some(&segment),
            current_segment_id: None,
        };
        let err = CustomerDraft::parse(&body, &schema).unwrap_err();
        assert_eq!(err.0[0].detail, "segment `B` is inactive");
        let staying = CustomerSchema {
            current_segment_id: Some("s1"),
            ..schema
        };
        assert!(
            CustomerDraft::parse(&body, &staying).is_ok(),
            "a customer already in an inactive segment can still be edited"
        );
        segment.status = SegmentStatus::Active;
        let schema = CustomerSchema {
            fields: &fields,
            segment: Some(&segment),
            current_segment_id: None,
        };
        assert!(CustomerDraft::parse(&body, &schema).is_ok());
    }

    #[test]
    fn reads_hide_values_of_deleted_fields() {
        let fields = defs();
        let schema = CustomerSchema {
            fields: &fields,
            segment: None,
            current_segment_id: None,
        };
        let customer = CustomerDraft::parse(
            &json!({"email": "a@b.co", "fields": {"vat": "1", "tier": "A"}}),
            &schema,
        )
        .unwrap()
        .into_customer("c1".into(), Utc::now());
        assert_eq!(
            customer.cluster_memberships(&fields),
            [
                ("tier".to_string(), "A".to_string()),
                ("distributor".to_string(), "false".to_string())
            ]
        );
        let remaining: Vec<FieldDef> = fields.into_iter().filter(|f| f.name != "tier").collect();
        let visible = customer.clone().visible(&remaining);
        assert_eq!(customer.to_visible(&remaining), visible, "both ways agree");
        assert!(!visible.fields.contains_key("tier"));
        assert!(visible.fields.contains_key("vat"));
        assert!(visible.field_stamps.is_empty(), "stamps are never shown");

        // The same name created again is a new field: the old value stays gone.
        let recreated =
            FieldDraft::parse(&json!({"name": "tier", "type": "string", "cluster": true}))
                .unwrap()
                .into_field(Utc::now() + chrono::Duration::seconds(1));
        let mut again = remaining.clone();
        again.push(recreated);
        assert!(!customer.clone().visible(&again).fields.contains_key("tier"));
        assert_eq!(
            customer.to_visible(&again),
            customer.clone().visible(&again)
        );
        assert_eq!(
            customer.cluster_memberships(&again),
            [("distributor".to_string(), "false".to_string())]
        );
    }
}
