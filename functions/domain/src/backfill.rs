//! Backfill jobs: re-evaluating every customer of a tenant after its rules change, or
//! (dry run) counting what one rule version would change, in resumable steps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::customer::Customer;
use crate::field::FieldDef;
use crate::validation::{ObjectReader, Violations};

/// Customers evaluated per step: one page, so a step stays well inside a Lambda timeout.
pub const STEP_CUSTOMERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Done,
}

/// Where a step stands. Counting and writing are separate commits so that a step cut off
/// part-way is redone without counting its customers twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepPhase {
    /// The page at `cursor` is not counted yet.
    #[default]
    Counting,
    /// The page is counted; its write-back may be incomplete.
    Writing,
}

/// A backfill job and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackfillJob {
    pub id: String,
    pub rule: String,
    /// The module version the job was started for.
    pub version: u32,
    /// Counts what this rule version would change, writing nothing.
    pub dry_run: bool,
    pub state: JobState,
    /// Customers evaluated so far.
    pub evaluated: u64,
    /// Customers whose clusters or segment changed (or would, in a dry run).
    pub changed: u64,
    /// Customers on which a rule failed.
    pub failed: u64,
    /// For each cluster field, the new values customers moved to, with their counts.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The id of the last customer of the last finished page: the next step continues
    /// after it. `None` at the start and once the job is done.
    pub cursor: Option<String>,
    /// Steps finished; each step's write is conditional on it.
    pub step: u64,
    #[serde(default)]
    pub phase: StepPhase,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client may ask of `POST /rules/{name}/backfill`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillRequest {
    pub dry_run: bool,
    pub version: Option<u32>,
}

impl BackfillRequest {
    /// An empty body asks for a real run of the active version.
    pub fn parse(body: Option<&Value>) -> Result<Self, Violations> {
        let Some(body) = body else {
            return Ok(Self::default());
        };
        let mut reader = ObjectReader::new(body, "")?;
        let dry_run = reader.boolean("dry_run").unwrap_or(false);
        let version = reader.raw("version").and_then(|raw| {
            let number = raw.as_u64().and_then(|n| u32::try_from(n).ok());
            if number.is_none() {
                let pointer = reader.pointer("version");
                reader.violations.push(pointer, "must be a version number");
            }
            number
        });
        reader.finish().finish(Self { dry_run, version })
    }
}

impl BackfillJob {
    pub fn new(id: String, rule: &str, version: u32, dry_run: bool, now: DateTime<Utc>) -> Self {
        Self {
            id,
            rule: rule.to_owned(),
            version,
            dry_run,
            state: JobState::Running,
            evaluated: 0,
            changed: 0,
            failed: 0,
            changes: BTreeMap::new(),
            cursor: None,
            step: 0,
            phase: StepPhase::Counting,
            created_at: now,
            updated_at: now,
        }
    }

    /// Adds one customer's result to the counts: `after` is the customer as the rules
    /// would leave it (`None`: unchanged).
    pub fn count(
        &mut self,
        before: &Customer,
        after: Option<&Customer>,
        failed: bool,
        fields: &[FieldDef],
    ) {
        self.evaluated += 1;
        self.failed += u64::from(failed);
        let Some(after) = after else {
            return;
        };
        let mut changed = before.segment_id != after.segment_id;
        for field in fields.iter().filter(|f| f.cluster) {
            let old = before.cluster_value_key(field);
            let new = after.cluster_value_key(field);
            if old != new {
                changed = true;
                *self
                    .changes
                    .entry(field.name.clone())
                    .or_default()
                    .entry(new.unwrap_or_else(|| "null".into()))
                    .or_default() += 1;
            }
        }
        self.changed += u64::from(changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{CustomerDraft, CustomerSchema};
    use crate::field::FieldDraft;
    use serde_json::json;

    #[test]
    fn requests_default_to_a_real_run_of_the_active_version() {
        assert_eq!(BackfillRequest::parse(None), Ok(BackfillRequest::default()));
        assert_eq!(
            BackfillRequest::parse(Some(&json!({"dry_run": true, "version": 2}))),
            Ok(BackfillRequest {
                dry_run: true,
                version: Some(2)
            })
        );
        let err = BackfillRequest::parse(Some(&json!({"version": "2", "x": 1}))).unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/version", "/x"]);
    }

    #[test]
    fn counts_changes_by_new_value() {
        let now = Utc::now();
        let fields: Vec<FieldDef> = [
            json!({"name": "tier", "type": "enum", "values": ["AA", "B"], "cluster": true}),
            json!({"name": "note", "type": "string"}),
        ]
        .iter()
        .map(|b| FieldDraft::parse(b).unwrap().into_field(now))
        .collect();
        let schema = CustomerSchema {
            fields: &fields,
            segment: None,
            current_segment_id: None,
        };
        let customer = |body| {
            CustomerDraft::parse(&body, &schema)
                .unwrap()
                .into_customer("c".into(), now)
        };
        let before = customer(json!({"email": "a@b.co", "fields": {"tier": "B"}}));
        let after = customer(json!({"email": "a@b.co", "fields": {"tier": "AA"}}));
        let only_note = customer(json!({"email": "a@b.co", "fields": {"tier": "B", "note": "x"}}));

        let mut job = BackfillJob::new("j".into(), "r", 1, true, now);
        job.count(&before, Some(&after), false, &fields);
        job.count(&before, None, true, &fields);
        job.count(&before, Some(&only_note), false, &fields);
        assert_eq!((job.evaluated, job.changed, job.failed), (3, 1, 1));
        assert_eq!(job.changes["tier"]["AA"], 1);
    }
}
