//! Membership changes: what one write of a customer changed in its segment and its
//! cluster values, for the membership-change events (`functions/events`, docs/events.md).
//!
//! Each side of a write is read as the customer item records it: its segment, and the
//! value of every field that was a cluster field when that side was written (the item's
//! `memberships` names them; the caller passes their names in, so no definitions are
//! read). Comparing the two sides gives one change per segment or cluster field whose
//! value differs, whoever wrote it, and none for a write that leaves them all as they
//! were (a name change, the same body again, a rule run that changes nothing).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::customer::{Customer, WrittenBy};

/// What a customer is a member of, as one version of its item records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memberships {
    pub segment_id: Option<String>,
    /// Each cluster field the customer holds a value of, with that value.
    pub clusters: BTreeMap<String, Value>,
}

impl Customer {
    /// The customer's memberships, given the fields that were cluster fields (and held a
    /// value written under their definition) when this version was written.
    pub fn memberships<'a>(
        &self,
        cluster_fields: impl IntoIterator<Item = &'a str>,
    ) -> Memberships {
        let clusters = cluster_fields
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), self.fields.get(name)?.clone())))
            .collect();
        Memberships {
            segment_id: self.segment_id.clone(),
            clusters,
        }
    }
}

/// What a membership change is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// The customer's segment (`segment_id`).
    Segment,
    /// The value of this cluster field.
    Cluster(String),
}

/// Who made a change, as the customer item records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChangedBy {
    /// A client: an API write, an import row or a deletion.
    Client,
    /// The tenant's rules, on the stream or in a backfill. The rule and its module
    /// version are known for a cluster value the rule set (`cluster_sources`); the
    /// customer item does not record which rule chose a segment or cleared a value.
    Rule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
    },
    /// The service itself: a repair that took the customer out of a segment or field
    /// deleted while its write was in flight.
    System,
}

/// One segment or cluster value that a write changed.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipChange {
    pub subject: Subject,
    /// `None`: the customer was in no segment, or held no value of the field.
    pub old: Option<Value>,
    /// `None`: the customer left the segment or the value (or was deleted).
    pub new: Option<Value>,
    pub by: ChangedBy,
}

/// The changes of one write, segment first and then cluster fields by name: `before` is
/// empty for a created customer, `after` is `None` for a deleted one (a deletion is a
/// client's and leaves every membership).
pub fn membership_changes(
    before: &Memberships,
    after: Option<(&Customer, &Memberships)>,
) -> Vec<MembershipChange> {
    let empty = Memberships::default();
    let now = after.map_or(&empty, |(_, memberships)| memberships);
    let by = |subject: &Subject| match after {
        None => ChangedBy::Client,
        Some((customer, _)) => changed_by(customer, subject),
    };
    let mut changes = Vec::new();
    if before.segment_id != now.segment_id {
        changes.push(MembershipChange {
            subject: Subject::Segment,
            old: before.segment_id.clone().map(Value::String),
            new: now.segment_id.clone().map(Value::String),
            by: by(&Subject::Segment),
        });
    }
    let fields: BTreeSet<&String> = before.clusters.keys().chain(now.clusters.keys()).collect();
    for field in fields {
        let (old, new) = (before.clusters.get(field), now.clusters.get(field));
        if old != new {
            let subject = Subject::Cluster(field.clone());
            changes.push(MembershipChange {
                by: by(&subject),
                subject,
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    changes
}

/// Who wrote `customer`, with the rule behind a cluster value when it is recorded.
fn changed_by(customer: &Customer, subject: &Subject) -> ChangedBy {
    match customer.written_by {
        WrittenBy::Api => ChangedBy::Client,
        WrittenBy::System => ChangedBy::System,
        WrittenBy::Rules => {
            let source = match subject {
                Subject::Cluster(field) => customer.cluster_sources.get(field),
                Subject::Segment => customer.segment_source.as_ref(),
            };
            ChangedBy::Rule {
                rule: source.map(|s| s.rule.clone()),
                version: source.map(|s| s.version),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{ClusterSource, CustomerDraft, CustomerSchema};
    use chrono::Utc;
    use serde_json::json;

    /// A customer with this `segment_id` and these `fields` (no definitions checked).
    fn customer(body: Value) -> Customer {
        let schema = CustomerSchema {
            fields: &[],
            segment: None,
            current_segment_id: None,
        };
        let mut customer = CustomerDraft::parse(&json!({"email": "a@b.co"}), &schema)
            .unwrap()
            .into_customer("c1".into(), Utc::now());
        customer.segment_id = body["segment_id"].as_str().map(str::to_owned);
        if let Some(Value::Object(fields)) = body.get("fields") {
            customer.fields = fields.clone();
        }
        if let Some(name) = body["first_name"].as_str() {
            customer.first_name = Some(name.to_owned());
        }
        customer
    }

    const CLUSTERS: [&str; 2] = ["tier", "distributor"];

    fn changes(before: Option<&Customer>, after: Option<&Customer>) -> Vec<MembershipChange> {
        let before = before.map_or_else(Memberships::default, |c| c.memberships(CLUSTERS));
        let after = after.map(|c| (c, c.memberships(CLUSTERS)));
        membership_changes(&before, after.as_ref().map(|(c, m)| (*c, m)))
    }

    fn change(subject: Subject, old: Value, new: Value, by: ChangedBy) -> MembershipChange {
        let some = |v: Value| (!v.is_null()).then_some(v);
        MembershipChange {
            subject,
            old: some(old),
            new: some(new),
            by,
        }
    }

    fn tier() -> Subject {
        Subject::Cluster("tier".into())
    }

    #[test]
    fn a_write_that_keeps_segment_and_cluster_values_changes_nothing() {
        let plain = customer(json!({"first_name": "Ann", "fields": {"vat": "X1"}}));
        assert!(changes(None, Some(&plain)).is_empty());
        let member = customer(json!({"segment_id": "s1", "fields": {"tier": "AA", "vat": "1"}}));
        let mut renamed = member.clone();
        renamed.first_name = Some("Bea".into());
        renamed.fields.insert("vat".into(), json!("2"));
        renamed.version += 1;
        assert!(changes(Some(&member), Some(&renamed)).is_empty());
        // A rule run that changes nothing, or the same body again: nothing either.
        let mut rerun = member.clone();
        rerun.written_by = WrittenBy::Rules;
        assert!(changes(Some(&member), Some(&rerun)).is_empty());
    }

    #[test]
    fn a_created_customer_enters_its_segment_and_values_and_a_deleted_one_leaves_them() {
        let member = customer(json!({"segment_id": "s1",
            "fields": {"tier": "AA", "distributor": false, "vat": "1"}}));
        let entered = [
            change(
                Subject::Segment,
                Value::Null,
                json!("s1"),
                ChangedBy::Client,
            ),
            change(
                Subject::Cluster("distributor".into()),
                Value::Null,
                json!(false),
                ChangedBy::Client,
            ),
            change(tier(), Value::Null, json!("AA"), ChangedBy::Client),
        ];
        assert_eq!(changes(None, Some(&member)), entered);
        let left: Vec<_> = entered
            .into_iter()
            .map(|c| change(c.subject, c.new.unwrap(), Value::Null, ChangedBy::Client))
            .collect();
        assert_eq!(changes(Some(&member), None), left);
    }

    #[test]
    fn a_rules_write_names_the_rule_of_each_value_it_set() {
        let before =
            customer(json!({"segment_id": "s1", "fields": {"tier": "B", "distributor": true}}));
        let mut after = customer(json!({"segment_id": "s2", "fields": {"tier": "AA"}}));
        after.written_by = WrittenBy::Rules;
        after.cluster_sources.insert(
            "tier".into(),
            ClusterSource {
                rule: "tiering".into(),
                version: 3,
                at: Utc::now(),
            },
        );
        let unknown_rule = ChangedBy::Rule {
            rule: None,
            version: None,
        };
        assert_eq!(
            changes(Some(&before), Some(&after)),
            [
                change(
                    Subject::Segment,
                    json!("s1"),
                    json!("s2"),
                    unknown_rule.clone()
                ),
                change(
                    Subject::Cluster("distributor".into()),
                    json!(true),
                    Value::Null,
                    unknown_rule,
                ),
                change(
                    tier(),
                    json!("B"),
                    json!("AA"),
                    ChangedBy::Rule {
                        rule: Some("tiering".into()),
                        version: Some(3),
                    },
                ),
            ]
        );
        let mut repaired = before.clone();
        repaired.segment_id = None;
        repaired.written_by = WrittenBy::System;
        assert_eq!(
            changes(Some(&before), Some(&repaired)),
            [change(
                Subject::Segment,
                json!("s1"),
                Value::Null,
                ChangedBy::System
            )]
        );
    }

    #[test]
    fn only_fields_that_were_clusters_at_the_write_count() {
        let before = customer(json!({"fields": {"tier": "A", "vat": "1"}}));
        let after = customer(json!({"fields": {"tier": "A", "vat": "2"}}));
        let memberships =
            |c: &Customer, clusters: &[&'static str]| c.memberships(clusters.iter().copied());
        // `vat` is no cluster: its change is none of these events.
        let (old, new) = (
            memberships(&before, &CLUSTERS),
            memberships(&after, &CLUSTERS),
        );
        assert!(membership_changes(&old, Some((&after, &new))).is_empty());
        // `tier` stopped being a cluster field (or was deleted) before this write: the
        // customer leaves its value although the value is still on the item.
        let new = memberships(&after, &["distributor"]);
        assert_eq!(
            membership_changes(&old, Some((&after, &new))),
            [change(tier(), json!("A"), Value::Null, ChangedBy::Client)]
        );
        assert_eq!(
            serde_json::to_value(ChangedBy::Rule {
                rule: Some("tiering".into()),
                version: Some(2)
            })
            .unwrap(),
            json!({"kind": "rule", "rule": "tiering", "version": 2})
        );
        assert_eq!(
            serde_json::to_value(ChangedBy::Client).unwrap(),
            json!({"kind": "client"})
        );
    }

    #[test]
    fn a_segment_a_rule_chose_names_the_rule() {
        let before = customer(json!({"segment_id": "s1"}));
        let mut after = customer(json!({"segment_id": "vip"}));
        after.written_by = WrittenBy::Rules;
        after.segment_source = Some(ClusterSource::new("tiering".into(), 5, Utc::now()));
        assert_eq!(
            changes(Some(&before), Some(&after)),
            [change(
                Subject::Segment,
                json!("s1"),
                json!("vip"),
                ChangedBy::Rule {
                    rule: Some("tiering".into()),
                    version: Some(5)
                }
            )]
        );
    }
}
