//! Applying what a tenant's rules decided to a customer: merged answers, provenance and
//! failures in, the customer to write out (or nothing, when nothing would change).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::customer::{ClusterSource, Customer, RuleFailure, WrittenBy};
use crate::field::FieldDef;
use crate::rule::Assignment;

/// The answers of every enabled rule for one customer, merged in priority order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Checked cluster values; `Null` clears the value.
    pub clusters: Map<String, Value>,
    /// Which rule and module version set each entry of `clusters`.
    pub sources: BTreeMap<String, (String, u32)>,
    /// `Some(None)` clears the segment; `None` leaves it.
    pub segment_id: Option<Option<String>>,
    /// Which rule and module version set `segment_id`.
    pub segment_source: Option<(String, u32)>,
    /// One entry per rule that failed; its previous outputs stay as they were.
    pub failures: Vec<RuleFailure>,
}

impl Evaluation {
    /// Adds one rule's checked answer. Rules own disjoint outputs (enforced when they are
    /// configured), so the order only matters for the segment: the last rule wins.
    pub fn add(&mut self, rule: &str, version: u32, assignment: Assignment) {
        for (name, value) in assignment.clusters {
            self.sources
                .insert(name.clone(), (rule.to_owned(), version));
            self.clusters.insert(name, value);
        }
        if assignment.segment_id.is_some() {
            self.segment_id = assignment.segment_id;
            self.segment_source = Some((rule.to_owned(), version));
        }
    }

    pub fn fail(&mut self, failure: RuleFailure) {
        self.failures.push(failure);
    }
}

impl Customer {
    /// The customer with the rules' answer applied, or `None` when it would change nothing
    /// a client can see (values, segment, provenance or the recorded failures), so that an
    /// unchanged result writes nothing.
    ///
    /// `visible` is `self.to_visible(definitions)`, which the caller already made for the
    /// rules' input: it becomes the written customer instead of a second copy.
    pub fn assigned(
        &self,
        visible: Customer,
        evaluation: &Evaluation,
        definitions: &[FieldDef],
        now: DateTime<Utc>,
    ) -> Option<Customer> {
        debug_assert_eq!(visible, self.to_visible(definitions));
        let mut next = visible;
        // `to_visible` left out the stored-only parts; keep the provenance and stamps of the
        // values that are still visible.
        next.cluster_sources = self
            .cluster_sources
            .iter()
            .filter(|(name, _)| next.fields.contains_key(*name))
            .map(|(name, source)| (name.clone(), source.clone()))
            .collect();
        next.field_stamps = definitions
            .iter()
            .filter(|d| next.fields.contains_key(&d.name))
            .map(|d| (d.name.clone(), d.created_at))
            .collect();
        next.segment_source = self.segment_source.clone();

        // Whether a value, the segment or a provenance entry changed.
        let mut changed = false;
        for (name, value) in &evaluation.clusters {
            let Some(definition) = definitions.iter().find(|d| &d.name == name) else {
                continue;
            };
            let source = evaluation.sources.get(name).cloned();
            if value.is_null() {
                next.field_stamps.remove(name);
                // Only a visible value has a kept provenance entry (see above).
                next.cluster_sources.remove(name);
                if let Some(_cleared) = next.fields.remove(name) {
                    changed = true;
                    if let Some((rule, version)) = source {
                        // Kept on the item that clears the value, so that its change event
                        // names the rule; the next write drops it with the value gone.
                        next.cluster_sources
                            .insert(name.clone(), ClusterSource::new(rule, version, now));
                    }
                }
                continue;
            }
            let Some((rule, version)) = source else {
                continue;
            };
            let unchanged = next.fields.get(name) == Some(value)
                && next
                    .cluster_sources
                    .get(name)
                    .is_some_and(|s| s.rule == rule && s.version == version);
            if unchanged {
                continue;
            }
            changed = true;
            next.fields.insert(name.clone(), value.clone());
            next.field_stamps
                .insert(name.clone(), definition.created_at);
            next.cluster_sources
                .insert(name.clone(), ClusterSource::new(rule, version, now));
        }
        if let (Some(segment_id), Some((rule, version))) =
            (&evaluation.segment_id, &evaluation.segment_source)
        {
            let unchanged = next.segment_id == *segment_id
                && next
                    .segment_source
                    .as_ref()
                    .is_some_and(|s| s.rule == *rule && s.version == *version);
            if !unchanged {
                changed = true;
                next.segment_id = segment_id.clone();
                next.segment_source = Some(ClusterSource::new(rule.clone(), *version, now));
            }
        }

        let same_failures = self.rule_errors.len() == evaluation.failures.len()
            && self
                .rule_errors
                .iter()
                .zip(&evaluation.failures)
                .all(|(a, b)| a.same_as(b));
        if !changed && same_failures {
            return None;
        }
        next.rule_errors = if same_failures {
            self.rule_errors.clone()
        } else {
            evaluation.failures.clone()
        };
        next.version = self.version + 1;
        next.updated_at = now;
        next.written_by = WrittenBy::Rules;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{CustomerDraft, CustomerSchema};
    use crate::field::FieldDraft;
    use serde_json::json;

    fn fields() -> Vec<FieldDef> {
        [
            json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
            json!({"name": "distributor", "type": "boolean", "cluster": true}),
            json!({"name": "revenue", "type": "decimal"}),
        ]
        .iter()
        .map(|b| FieldDraft::parse(b).unwrap().into_field(Utc::now()))
        .collect()
    }

    fn customer(fields: &[FieldDef], body: Value) -> Customer {
        let schema = CustomerSchema {
            fields,
            segment: None,
            current_segment_id: None,
        };
        CustomerDraft::parse(&body, &schema)
            .unwrap()
            .into_customer("c1".into(), Utc::now())
    }

    fn answer(clusters: Value) -> Assignment {
        Assignment {
            clusters: clusters.as_object().unwrap().clone(),
            segment_id: None,
        }
    }

    /// `assigned` as the stream calls it, on the customer's visible copy.
    fn assign(
        customer: &Customer,
        evaluation: &Evaluation,
        fields: &[FieldDef],
    ) -> Option<Customer> {
        customer.assigned(customer.to_visible(fields), evaluation, fields, Utc::now())
    }

    fn failure(code: &str) -> RuleFailure {
        RuleFailure {
            rule: "tiering".into(),
            version: 1,
            code: code.into(),
            message: "it broke".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn sets_values_with_provenance_and_then_writes_nothing_more() {
        let fields = fields();
        let stored = customer(
            &fields,
            json!({"email": "a@b.co", "fields": {"revenue": "10"}}),
        );
        let mut evaluation = Evaluation::default();
        evaluation.add(
            "tiering",
            3,
            answer(json!({"tier": "AA", "distributor": true})),
        );

        let next = assign(&stored, &evaluation, &fields).expect("a change");
        assert_eq!(next.version, stored.version + 1);
        assert_eq!(next.written_by, WrittenBy::Rules);
        assert_eq!(next.fields["tier"], json!("AA"));
        assert_eq!(next.fields["revenue"], json!("10"));
        assert_eq!(next.cluster_sources["tier"].rule, "tiering");
        assert_eq!(next.cluster_sources["tier"].version, 3);
        assert_eq!(
            next.cluster_memberships(&fields),
            [
                ("tier".into(), "AA".into()),
                ("distributor".into(), "true".into())
            ]
        );

        // The same answer on the written customer changes nothing: no write, no loop.
        assert_eq!(assign(&next, &evaluation, &fields), None);
    }

    #[test]
    fn a_null_clears_and_a_failure_is_recorded_once() {
        let fields = fields();
        let stored = customer(&fields, json!({"email": "a@b.co", "fields": {"tier": "B"}}));
        let mut evaluation = Evaluation::default();
        evaluation.add("tiering", 1, answer(json!({"tier": null})));
        let next = assign(&stored, &evaluation, &fields).unwrap();
        assert!(!next.fields.contains_key("tier"));
        assert!(next.cluster_memberships(&fields).is_empty());

        let mut failing = Evaluation::default();
        failing.fail(failure("fuel_exhausted"));
        let failed = assign(&next, &failing, &fields).unwrap();
        assert_eq!(failed.rule_errors.len(), 1);
        assert_eq!(failed.fields, next.fields, "a failure changes no value");
        let mut again = Evaluation::default();
        again.fail(failure("fuel_exhausted"));
        assert_eq!(assign(&failed, &again, &fields), None);
        // Recovery clears the recorded failure.
        assert!(
            assign(&failed, &Evaluation::default(), &fields)
                .unwrap()
                .rule_errors
                .is_empty()
        );
    }

    #[test]
    fn a_manual_value_equal_to_the_rules_answer_is_adopted_by_the_rule() {
        let fields = fields();
        let stored = customer(&fields, json!({"email": "a@b.co", "fields": {"tier": "A"}}));
        let mut evaluation = Evaluation::default();
        evaluation.add("tiering", 2, answer(json!({"tier": "A"})));
        let next = assign(&stored, &evaluation, &fields).unwrap();
        assert_eq!(next.fields, stored.fields);
        assert_eq!(next.cluster_sources["tier"].version, 2);
    }

    #[test]
    fn the_segment_and_a_cleared_value_name_the_rule_that_wrote_them() {
        let fields = fields();
        let stored = customer(&fields, json!({"email": "a@b.co", "fields": {"tier": "B"}}));
        let mut evaluation = Evaluation::default();
        evaluation.add(
            "tiering",
            4,
            Assignment {
                clusters: json!({"tier": null}).as_object().unwrap().clone(),
                segment_id: Some(Some("vip".into())),
            },
        );
        let next = assign(&stored, &evaluation, &fields).unwrap();
        assert_eq!(next.segment_id.as_deref(), Some("vip"));
        let source = next.segment_source.as_ref().expect("the segment's rule");
        assert_eq!((source.rule.as_str(), source.version), ("tiering", 4));
        assert!(!next.fields.contains_key("tier"));
        assert_eq!(next.cluster_sources["tier"].version, 4, "the clearing rule");
        // The same answer again writes nothing (the cleared value's source goes with it).
        let again = assign(&next, &evaluation, &fields);
        assert_eq!(again, None);

        // A client write that keeps the segment keeps its rule; one that changes it does not.
        let mut draft = customer(&fields, json!({"email": "a@b.co"}));
        draft.segment_id = Some("vip".into());
        let kept = next.replaced(draft_of(&draft), Utc::now());
        assert_eq!(kept.segment_source, next.segment_source);
        draft.segment_id = Some("other".into());
        let moved = next.replaced(draft_of(&draft), Utc::now());
        assert_eq!(moved.segment_source, None);
    }

    /// The draft a client would send for `customer`.
    fn draft_of(customer: &Customer) -> CustomerDraft {
        CustomerDraft {
            id: Some(customer.id.clone()),
            email: customer.email.clone(),
            first_name: None,
            last_name: None,
            document: None,
            phone: None,
            segment_id: customer.segment_id.clone(),
            fields: customer.fields.clone(),
            field_stamps: customer.field_stamps.clone(),
        }
    }
}
