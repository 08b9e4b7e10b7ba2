//! One tenant's rule set, read once per stream batch rather than once per record.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use domain::rule::{Rule, RuleVersion, check_output, rule_input};
use domain::{Customer, Evaluation, FieldDef, RuleFailure, SalesSummary, Segment};
use futures_util::future::try_join_all;
use rule_engine::RunError;
use store::{Store, StoreError};

use crate::runner::{EvaluationError, Runner};

/// A tenant's enabled rules (with the module version each runs, in priority order), its
/// field definitions and its segments: all that evaluating one of its customers needs.
#[derive(Debug, Clone)]
pub struct TenantRules {
    pub tenant: String,
    pub rules: Vec<(Rule, RuleVersion)>,
    pub fields: Vec<FieldDef>,
    pub segments: Vec<Segment>,
}

/// What the rules decided for one customer image.
#[derive(Debug)]
pub struct Plan {
    /// The customer to write at the next version, or `None` when nothing changes.
    pub write: Option<Customer>,
    pub failed_rules: usize,
}

impl TenantRules {
    /// Two rounds of reads: the rules, fields and segments at once, then the active
    /// version of every enabled rule at once.
    pub async fn load(store: &Store, tenant: &str) -> Result<Self, EvaluationError> {
        let rules = async {
            let mut enabled: Vec<Rule> = store
                .list_rules(tenant)
                .await?
                .into_iter()
                .filter(|rule| rule.enabled)
                .collect();
            enabled.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
            // In priority order: `try_join_all` keeps the order it is given.
            let versions = try_join_all(enabled.into_iter().filter_map(|rule| {
                let number = rule.active_version()?;
                Some(async move {
                    let version = store.get_rule_version(tenant, &rule.name, number).await?;
                    Ok::<_, StoreError>((rule, number, version))
                })
            }))
            .await?;
            let mut rules = Vec::with_capacity(versions.len());
            for (rule, number, version) in versions {
                match version {
                    Some(version) => rules.push((rule, version)),
                    None => tracing::warn!(rule = rule.name, number, "active version is missing"),
                }
            }
            Ok::<_, StoreError>(rules)
        };
        let (rules, fields, segments) =
            tokio::try_join!(rules, store.list_fields(tenant), store.all_segments(tenant))?;
        Ok(Self {
            tenant: tenant.to_owned(),
            rules,
            fields,
            segments,
        })
    }

    /// Only one rule at one module version, enabled or not: what a dry run evaluates.
    /// One round of reads.
    pub async fn load_one(
        store: &Store,
        tenant: &str,
        rule: &str,
        number: u32,
    ) -> Result<Self, EvaluationError> {
        let missing = || EvaluationError::Internal(format!("rule `{rule}` v{number} is gone"));
        let (found, version, fields, segments) = tokio::try_join!(
            store.get_rule(tenant, rule),
            store.get_rule_version(tenant, rule, number),
            store.list_fields(tenant),
            store.all_segments(tenant)
        )?;
        Ok(Self {
            tenant: tenant.to_owned(),
            rules: vec![(found.ok_or_else(missing)?, version.ok_or_else(missing)?)],
            fields,
            segments,
        })
    }

    /// Evaluates one customer image and plans its write-back (for the stream and the
    /// backfill alike); no I/O beyond loading a module the process has not seen yet.
    pub async fn plan(
        &self,
        runner: &Runner,
        customer: &Customer,
        sales: &SalesSummary,
        now: DateTime<Utc>,
    ) -> Result<Plan, EvaluationError> {
        // One visible copy per customer: the rules' input, then the customer written back.
        let visible = customer.to_visible(&self.fields);
        let evaluation = self.evaluate(runner, &visible, sales, now).await?;
        Ok(Plan {
            write: customer.assigned(visible, &evaluation, &self.fields, now),
            failed_rules: evaluation.failures.len(),
        })
    }

    /// Runs every rule on the customer in priority order. Each rule sees the customer
    /// as the rules before it left it, so a later rule may build on an earlier one's
    /// cluster. A failing rule is recorded and changes nothing; the others still count.
    /// Only a failure of the host itself (not of a rule) is an error. `visible` is the
    /// customer as rules see it ([`Customer::to_visible`]).
    async fn evaluate(
        &self,
        runner: &Runner,
        visible: &Customer,
        sales: &SalesSummary,
        now: DateTime<Utc>,
    ) -> Result<Evaluation, EvaluationError> {
        // Copied only when a later rule is to see an earlier one's answer.
        let mut seen = Cow::Borrowed(visible);
        let mut evaluation = Evaluation::default();
        for (position, (rule, version)) in self.rules.iter().enumerate() {
            let input = rule_input(&seen, sales, &self.segments, rule, version.number);
            let report = runner.evaluate(&self.tenant, rule, version, &input).await?;
            let failure = |code: &str, message: String| RuleFailure {
                rule: rule.name.clone(),
                version: version.number,
                code: code.to_owned(),
                message,
                at: now,
            };
            let output = match report.outcome {
                Ok(output) => output,
                Err(RunError::Host(reason)) => return Err(EvaluationError::Internal(reason)),
                Err(err) => {
                    evaluation.fail(failure(err.code(), err.to_string()));
                    continue;
                }
            };
            match check_output(rule, output, &self.fields, &self.segments) {
                Ok(assignment) => {
                    if position + 1 < self.rules.len() {
                        let seen = seen.to_mut();
                        for (name, value) in &assignment.clusters {
                            if value.is_null() {
                                seen.fields.remove(name);
                            } else {
                                seen.fields.insert(name.clone(), value.clone());
                            }
                        }
                        if let Some(segment_id) = &assignment.segment_id {
                            seen.segment_id = segment_id.clone();
                        }
                    }
                    evaluation.add(&rule.name, version.number, assignment);
                }
                Err(violations) => {
                    let message = violations
                        .0
                        .iter()
                        .map(|v| format!("{} {}", v.pointer, v.detail))
                        .collect::<Vec<_>>()
                        .join("; ");
                    evaluation.fail(failure("invalid_output", message));
                }
            }
        }
        Ok(evaluation)
    }
}
