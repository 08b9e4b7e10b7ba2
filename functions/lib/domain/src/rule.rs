//! Tenant rule modules: their configuration, the JSON a rule reads (ABI v1), and the
//! checks its answer must pass before anything is written.

use chrono::{DateTime, Utc};
use rule_abi::{ABI_VERSION, RuleOutput, SegmentChoice};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::customer::Customer;
use crate::field::{FieldDef, is_valid_field_name};
use crate::sales::SalesSummary;
use crate::segment::{Segment, SegmentStatus};
use crate::validation::{ObjectReader, Violations};

/// Per-rule limits; `None` takes the engine default. Each is capped by the tenant maxima.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

/// Tenant-wide maxima for [`RuleLimits`].
pub const MAX_FUEL: u64 = 100_000_000;
pub const MAX_MEMORY_MIB: u32 = 64;
pub const MAX_TIMEOUT_MS: u32 = 1_000;

/// A rule's configuration. Its code lives in immutable [`RuleVersion`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cluster fields this rule may set; no two rules of a tenant share one.
    pub outputs: Vec<String>,
    /// Whether the rule may choose the customer's segment.
    pub segment_output: bool,
    pub enabled: bool,
    /// Rules run in ascending priority, then name.
    pub priority: i32,
    #[serde(default)]
    pub limits: RuleLimits,
    /// Version that runs; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<u32>,
    /// Number of the newest uploaded module version; 0 before the first upload.
    #[serde(default)]
    pub latest_version: u32,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client may set on a rule (`PUT /rules/{name}`, or a PATCH merged into it).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDraft {
    pub description: Option<String>,
    pub outputs: Vec<String>,
    pub segment_output: bool,
    pub enabled: bool,
    pub priority: i32,
    pub limits: RuleLimits,
    pub pinned_version: Option<u32>,
}

impl RuleDraft {
    /// Validates a body against the tenant's fields: outputs must be cluster fields.
    pub fn parse(body: &Value, fields: &[FieldDef]) -> Result<Self, Violations> {
        let mut reader = ObjectReader::new(body, "")?;
        reader.ignore(&[
            "name",
            "latest_version",
            "version",
            "created_at",
            "updated_at",
        ]);
        let description = reader.string("description", 1000);
        let segment_output = reader.boolean("segment_output").unwrap_or(false);
        let enabled = reader.boolean("enabled").unwrap_or(false);
        let priority = match reader.raw("priority") {
            None => 100,
            Some(value) => match value.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) => n,
                None => {
                    let pointer = reader.pointer("priority");
                    reader.violations.push(pointer, "must be an integer");
                    100
                }
            },
        };
        let pinned_version = match reader.raw("pinned_version") {
            None => None,
            Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    let pointer = reader.pointer("pinned_version");
                    reader
                        .violations
                        .push(pointer, "must be a version number (1 or more)");
                    None
                }
            },
        };
        let outputs = parse_outputs(&mut reader, fields);
        let limits = parse_limits(&mut reader);
        let violations = reader.finish();
        violations.finish(Self {
            description,
            outputs,
            segment_output,
            enabled,
            priority,
            limits,
            pinned_version,
        })
    }

    pub fn into_rule(self, name: String, now: DateTime<Utc>) -> Rule {
        Rule {
            name,
            description: self.description,
            outputs: self.outputs,
            segment_output: self.segment_output,
            enabled: self.enabled,
            priority: self.priority,
            limits: self.limits,
            pinned_version: self.pinned_version,
            latest_version: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

fn parse_outputs(reader: &mut ObjectReader, fields: &[FieldDef]) -> Vec<String> {
    let pointer = reader.pointer("outputs");
    let Some(raw) = reader.raw("outputs") else {
        return Vec::new();
    };
    let Some(items) = raw.as_array() else {
        reader
            .violations
            .push(pointer, "must be an array of field names");
        return Vec::new();
    };
    let mut outputs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = format!("{pointer}/{i}");
        match item.as_str() {
            Some(name) if !is_valid_field_name(name) => {
                reader.violations.push(here, "is not a field name");
            }
            Some(name) if outputs.iter().any(|o| o == name) => {
                reader
                    .violations
                    .push(here, format!("lists `{name}` twice"));
            }
            Some(name) => match fields.iter().find(|f| f.name == name) {
                Some(field) if field.cluster => outputs.push(name.to_owned()),
                Some(_) => reader
                    .violations
                    .push(here, format!("`{name}` is not a cluster field")),
                None => reader
                    .violations
                    .push(here, format!("no field is named `{name}`")),
            },
            None => reader.violations.push(here, "must be a string"),
        }
    }
    outputs
}

fn parse_limits(reader: &mut ObjectReader) -> RuleLimits {
    let pointer = reader.pointer("limits");
    let Some(raw) = reader.raw("limits") else {
        return RuleLimits::default();
    };
    let mut limits = RuleLimits::default();
    let Ok(mut inner) = ObjectReader::new(raw, &pointer) else {
        reader.violations.push(pointer, "must be an object");
        return limits;
    };
    let bounded = |inner: &mut ObjectReader, key: &'static str, max: u64| {
        let value = inner.raw(key)?;
        match value.as_u64() {
            Some(n) if n >= 1 && n <= max => Some(n),
            _ => {
                let at = inner.pointer(key);
                inner
                    .violations
                    .push(at, format!("must be an integer from 1 to {max}"));
                None
            }
        }
    };
    limits.fuel = bounded(&mut inner, "fuel", MAX_FUEL);
    limits.memory_mib =
        bounded(&mut inner, "memory_mib", u64::from(MAX_MEMORY_MIB)).map(|n| n as u32);
    limits.timeout_ms =
        bounded(&mut inner, "timeout_ms", u64::from(MAX_TIMEOUT_MS)).map(|n| n as u32);
    for violation in inner.finish().0 {
        reader.violations.0.push(violation);
    }
    limits
}

impl Rule {
    pub fn updated(&self, draft: RuleDraft, now: DateTime<Utc>) -> Rule {
        Rule {
            latest_version: self.latest_version,
            version: self.version + 1,
            created_at: self.created_at,
            ..draft.into_rule(self.name.clone(), now)
        }
    }

    /// The module version that runs, if any was uploaded.
    pub fn active_version(&self) -> Option<u32> {
        match (self.pinned_version, self.latest_version) {
            (_, 0) => None,
            (Some(pinned), _) => Some(pinned),
            (None, latest) => Some(latest),
        }
    }

    /// The first output another rule already declares (a cluster field, or `segment`),
    /// which would make two rules fight over one value.
    pub fn output_clash<'a>(&self, others: &'a [Rule]) -> Option<(&'a str, String)> {
        others
            .iter()
            .filter(|other| other.name != self.name)
            .find_map(|other| {
                let field = self
                    .outputs
                    .iter()
                    .find(|o| other.outputs.contains(o))
                    .cloned();
                let segment =
                    (self.segment_output && other.segment_output).then(|| "segment".to_owned());
                field.or(segment).map(|o| (other.name.as_str(), o))
            })
    }
}

/// One immutable uploaded module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleVersion {
    pub rule: String,
    pub number: u32,
    /// Hex SHA-256 of the module bytes.
    pub sha256: String,
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

/// A checked answer: canonical values for declared cluster fields and a segment id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Assignment {
    #[schema(value_type = Object)]
    pub clusters: Map<String, Value>,
    /// `Some(None)` clears the segment; absent leaves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<Option<String>>,
}

/// The ABI v1 input document, borrowed from what the host already holds and written
/// straight to the bytes a rule reads: it is made once per rule and customer on the
/// stream's path, where building a JSON tree first cost more than the rest of the host's
/// work. The keys are in alphabetical order, as the document has always been written.
/// New keys may be added; rules must ignore unknown ones.
#[derive(Debug, Serialize)]
pub struct RuleInput<'a> {
    abi: u32,
    customer: InputCustomer<'a>,
    rule: InputRule<'a>,
    sales: &'a SalesSummary,
    segments: ActiveSegments<'a>,
}

#[derive(Debug, Serialize)]
struct InputCustomer<'a> {
    document: Option<&'a str>,
    email: &'a str,
    fields: &'a Map<String, Value>,
    first_name: Option<&'a str>,
    id: &'a str,
    last_name: Option<&'a str>,
    phone: Option<&'a str>,
    segment: Option<SegmentName<'a>>,
}

/// A segment as a rule sees it.
#[derive(Debug, Serialize)]
struct SegmentName<'a> {
    id: &'a str,
    name: &'a str,
}

impl<'a> SegmentName<'a> {
    fn of(segment: &'a Segment) -> Self {
        Self {
            id: &segment.id,
            name: &segment.name,
        }
    }
}

#[derive(Debug, Serialize)]
struct InputRule<'a> {
    name: &'a str,
    version: u32,
}

/// The tenant's active segments, what a rule may choose from.
#[derive(Debug)]
struct ActiveSegments<'a>(&'a [Segment]);

impl Serialize for ActiveSegments<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let active = self.0.iter().filter(|s| s.status == SegmentStatus::Active);
        serializer.collect_seq(active.map(SegmentName::of))
    }
}

/// What a rule reads about `customer` (as the client sees it: [`Customer::to_visible`]).
pub fn rule_input<'a>(
    customer: &'a Customer,
    sales: &'a SalesSummary,
    segments: &'a [Segment],
    rule: &'a Rule,
    module_version: u32,
) -> RuleInput<'a> {
    let segment = customer
        .segment_id
        .as_ref()
        .and_then(|id| segments.iter().find(|s| &s.id == id))
        .map(SegmentName::of);
    RuleInput {
        abi: ABI_VERSION,
        customer: InputCustomer {
            document: customer.document.as_deref(),
            email: &customer.email,
            fields: &customer.fields,
            first_name: customer.first_name.as_deref(),
            id: &customer.id,
            last_name: customer.last_name.as_deref(),
            phone: customer.phone.as_deref(),
            segment,
        },
        rule: InputRule {
            name: &rule.name,
            version: module_version,
        },
        sales,
        segments: ActiveSegments(segments),
    }
}

impl RuleInput<'_> {
    /// The document as a rule reads it on stdin.
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        // The example's input is ~400 bytes: one allocation, no regrowth.
        let mut bytes = Vec::with_capacity(1024);
        serde_json::to_writer(&mut bytes, self)?;
        Ok(bytes)
    }
}

/// Checks a rule's answer (its output as the engine parsed it, shape only) before
/// anything is written. Accepts only declared cluster outputs with values valid for their
/// field, and only an active segment (by id or case-insensitive name) when the rule may
/// set segments.
pub fn check_output(
    rule: &Rule,
    output: RuleOutput,
    fields: &[FieldDef],
    segments: &[Segment],
) -> Result<Assignment, Violations> {
    let mut violations = Violations::new();
    let mut clusters = Map::new();
    for (name, value) in output.clusters {
        let pointer = format!("/clusters/{name}");
        if !rule.outputs.contains(&name) {
            violations.push(pointer, "is not one of the rule's declared outputs");
            continue;
        }
        let Some(field) = fields.iter().find(|f| f.name == name && f.cluster) else {
            violations.push(pointer, "is no longer a cluster field of this tenant");
            continue;
        };
        if value.is_null() {
            clusters.insert(name, Value::Null);
            continue;
        }
        match field.normalize(&value) {
            Ok(value) => {
                clusters.insert(name, value);
            }
            Err(error) => violations.push(pointer, error.to_string()),
        }
    }
    let segment_id = match output.segment {
        SegmentChoice::Unchanged => None,
        _ if !rule.segment_output => {
            violations.push("/segment", "the rule is not allowed to set segments");
            None
        }
        SegmentChoice::Clear => Some(None),
        SegmentChoice::Set(wanted) => {
            let found = segments
                .iter()
                .find(|s| s.id == wanted || s.name.to_lowercase() == wanted.to_lowercase());
            match found {
                Some(s) if s.status == SegmentStatus::Active => Some(Some(s.id.clone())),
                Some(s) => {
                    violations.push("/segment", format!("segment `{}` is inactive", s.name));
                    None
                }
                None => {
                    violations.push("/segment", format!("no segment is named `{wanted}`"));
                    None
                }
            }
        }
    };
    violations.finish(Assignment {
        clusters,
        segment_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldDraft;
    use crate::segment::SegmentDraft;
    use serde_json::json;

    fn fields() -> Vec<FieldDef> {
        [
            json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
            json!({"name": "distributor", "type": "boolean", "cluster": true}),
            json!({"name": "notes", "type": "text"}),
        ]
        .iter()
        .map(|b| FieldDraft::parse(b).unwrap().into_field(Utc::now()))
        .collect()
    }

    fn rule(body: Value) -> Rule {
        RuleDraft::parse(&body, &fields())
            .unwrap()
            .into_rule("tiering".into(), Utc::now())
    }

    #[test]
    fn outputs_must_be_cluster_fields() {
        let err = RuleDraft::parse(
            &json!({"outputs": ["tier", "notes", "ghost", "tier"], "limits": {"fuel": 0}}),
            &fields(),
        )
        .unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/outputs/1", "/outputs/2", "/outputs/3", "/limits/fuel"]
        );
    }

    #[test]
    fn output_is_checked_before_anything_is_written() {
        let segments = vec![
            SegmentDraft::parse(&json!({"name": "AA"}))
                .unwrap()
                .into_segment("s1".into(), Utc::now()),
            SegmentDraft::parse(&json!({"name": "Old", "status": "inactive"}))
                .unwrap()
                .into_segment("s2".into(), Utc::now()),
        ];
        let tiering = rule(json!({"outputs": ["tier"], "segment_output": true}));
        let ok = check_output(
            &tiering,
            RuleOutput {
                clusters: json!({"tier": "AA"}).as_object().unwrap().clone(),
                segment: SegmentChoice::Set("aa".into()),
            },
            &fields(),
            &segments,
        )
        .unwrap();
        assert_eq!(ok.segment_id, Some(Some("s1".into())));

        let err = check_output(
            &tiering,
            RuleOutput {
                clusters: json!({"tier": "Z", "distributor": true})
                    .as_object()
                    .unwrap()
                    .clone(),
                segment: SegmentChoice::Set("Old".into()),
            },
            &fields(),
            &segments,
        )
        .unwrap_err();
        let details: Vec<_> = err
            .0
            .iter()
            .map(|v| format!("{} {}", v.pointer, v.detail))
            .collect();
        assert_eq!(
            details,
            [
                "/clusters/distributor is not one of the rule's declared outputs",
                "/clusters/tier must be one of AA, A, B",
                "/segment segment `Old` is inactive",
            ]
        );
    }

    /// The input document is ABI v1: these keys, nulls for unset contact data, only
    /// active segments, amounts as decimal strings, keys in alphabetical order.
    #[test]
    fn the_input_document_is_abi_v1() {
        let now = Utc::now();
        let segments = [
            SegmentDraft::parse(&json!({"name": "AA"}))
                .unwrap()
                .into_segment("s1".into(), now),
            SegmentDraft::parse(&json!({"name": "Old", "status": "inactive"}))
                .unwrap()
                .into_segment("s2".into(), now),
        ];
        let schema = crate::CustomerSchema {
            fields: &fields(),
            segment: Some(&segments[1]),
            current_segment_id: Some("s2"),
        };
        let body = json!({"email": "a@b.co", "phone": "+1 555", "segment_id": "s2",
            "fields": {"tier": "A", "notes": "x"}});
        let customer = crate::CustomerDraft::parse(&body, &schema)
            .unwrap()
            .into_customer("c1".into(), now);
        let totals = crate::YearTotals {
            customer_id: "c1".into(),
            year: 2026,
            currency: "EUR".into(),
            months: [crate::Amount::ZERO; 12],
            total: crate::Amount::from_units(125_000),
            orders: 3,
        };
        let sales = SalesSummary::from_totals(2026, &[totals]);
        let tiering = rule(json!({"outputs": ["tier"]}));
        let bytes = rule_input(&customer, &sales, &segments, &tiering, 4)
            .to_bytes()
            .unwrap();
        let expected = json!({
            "abi": 1,
            "customer": {
                "document": null, "email": "a@b.co",
                "fields": {"notes": "x", "tier": "A"},
                "first_name": null, "id": "c1", "last_name": null, "phone": "+1 555",
                "segment": {"id": "s2", "name": "Old"},
            },
            "rule": {"name": "tiering", "version": 4},
            "sales": {
                "last_year": {"orders": 0, "totals": {}, "year": 2025},
                "this_year": {"orders": 3, "totals": {"EUR": "12.50"}, "year": 2026},
            },
            "segments": [{"id": "s1", "name": "AA"}],
        });
        // `expected` is a sorted map: equal bytes mean the same keys in the same order.
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn two_rules_cannot_own_one_output() {
        let a = rule(json!({"outputs": ["tier"]}));
        let mut b = rule(json!({"outputs": ["distributor", "tier"]}));
        b.name = "other".into();
        assert_eq!(
            a.output_clash(std::slice::from_ref(&b)),
            Some(("other", "tier".to_string()))
        );
        assert_eq!(a.output_clash(std::slice::from_ref(&a)), None);

        let mut c = rule(json!({"outputs": ["distributor"], "segment_output": true}));
        c.name = "c".into();
        let d = rule(json!({"outputs": [], "segment_output": true}));
        assert_eq!(
            d.output_clash(std::slice::from_ref(&c)),
            Some(("c", "segment".to_string()))
        );
    }
}
