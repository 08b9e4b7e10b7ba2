//! Backfill jobs: re-evaluating every customer of a tenant after its rules change, or
//! (dry run) counting what one rule version would change, in resumable steps.
//!
//! A job fans out into one chain per shard of the tenant's customers (see the store's
//! key layout): the chains step through their shards in parallel, each on its own, and
//! the job's progress is the sum of theirs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::customer::Customer;
use crate::field::FieldDef;
use crate::validation::{ObjectReader, Violations};

/// Customers evaluated per step of a chain: a page, so a step stays well inside a
/// Lambda timeout, and large enough that the wait between steps (the stream's delivery)
/// is a small part of a chain's time.
pub const STEP_CUSTOMERS: usize = 250;

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

/// What a job (or one chain of it) has done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Customers evaluated so far.
    pub evaluated: u64,
    /// Customers whose clusters or segment changed (or would, in a dry run).
    pub changed: u64,
    /// Customers on which a rule failed.
    pub failed: u64,
    /// For each cluster field, the new values customers moved to, with their counts.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Progress {
    /// Adds one customer's result: `after` is the customer as the rules would leave it
    /// (`None`: unchanged).
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

    fn add(&mut self, other: &Progress) {
        self.evaluated += other.evaluated;
        self.changed += other.changed;
        self.failed += other.failed;
        for (field, values) in &other.changes {
            let mine = self.changes.entry(field.clone()).or_default();
            for (value, count) in values {
                *mine.entry(value.clone()).or_default() += count;
            }
        }
    }
}

/// One chain of a job: the steps through one shard of the tenant's customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackfillChain {
    /// The job's id.
    pub job: String,
    pub rule: String,
    pub version: u32,
    pub dry_run: bool,
    /// The shard of customers this chain walks.
    pub shard: u8,
    pub state: JobState,
    pub progress: Progress,
    /// The id of the last customer of the last finished page: the next step continues
    /// after it. `None` at the start and once the chain is done.
    pub cursor: Option<String>,
    /// Steps finished; each step's write is conditional on it.
    pub step: u64,
    #[serde(default)]
    pub phase: StepPhase,
    pub updated_at: DateTime<Utc>,
}

/// A backfill job and its progress: the sum of its chains, which it lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackfillJob {
    pub id: String,
    pub rule: String,
    /// The module version the job was started for.
    pub version: u32,
    /// Counts what this rule version would change, writing nothing.
    pub dry_run: bool,
    /// `done` once every chain is.
    pub state: JobState,
    #[serde(flatten)]
    pub progress: Progress,
    /// Each chain's own progress, by shard.
    pub chains: Vec<BackfillChain>,
    pub created_at: DateTime<Utc>,
    /// The latest step of any chain.
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

impl BackfillChain {
    /// The chain of job `id` over `shard`, before its first step.
    pub fn new(
        id: &str,
        rule: &str,
        version: u32,
        dry_run: bool,
        shard: u8,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            job: id.to_owned(),
            rule: rule.to_owned(),
            version,
            dry_run,
            shard,
            state: JobState::Running,
            progress: Progress::default(),
            cursor: None,
            step: 0,
            phase: StepPhase::Counting,
            updated_at: now,
        }
    }
}

impl BackfillJob {
    /// A job as its chains stand; `chains` are in shard order.
    pub fn from_chains(
        id: String,
        rule: String,
        version: u32,
        dry_run: bool,
        created_at: DateTime<Utc>,
        chains: Vec<BackfillChain>,
    ) -> Self {
        let mut progress = Progress::default();
        for chain in &chains {
            progress.add(&chain.progress);
        }
        let done = chains.iter().all(|c| c.state == JobState::Done);
        let updated_at = chains
            .iter()
            .map(|c| c.updated_at)
            .max()
            .unwrap_or(created_at);
        Self {
            id,
            rule,
            version,
            dry_run,
            state: if done {
                JobState::Done
            } else {
                JobState::Running
            },
            progress,
            chains,
            created_at,
            updated_at,
        }
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
    fn counts_changes_by_new_value_and_jobs_sum_their_chains() {
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

        let mut first = BackfillChain::new("j", "r", 1, true, 0, now);
        first.progress.count(&before, Some(&after), false, &fields);
        first.progress.count(&before, None, true, &fields);
        first
            .progress
            .count(&before, Some(&only_note), false, &fields);
        let p = &first.progress;
        assert_eq!((p.evaluated, p.changed, p.failed), (3, 1, 1));
        assert_eq!(p.changes["tier"]["AA"], 1);

        let mut second = BackfillChain::new("j", "r", 1, true, 1, now);
        second.progress.count(&before, Some(&after), false, &fields);
        second.state = JobState::Done;
        let job = BackfillJob::from_chains(
            "j".into(),
            "r".into(),
            1,
            true,
            now,
            vec![first.clone(), second.clone()],
        );
        assert_eq!((job.progress.evaluated, job.progress.changed), (4, 2));
        assert_eq!(job.progress.changes["tier"]["AA"], 2);
        assert_eq!(job.state, JobState::Running, "one chain still runs");
        first.state = JobState::Done;
        let done =
            BackfillJob::from_chains("j".into(), "r".into(), 1, true, now, vec![first, second]);
        assert_eq!(done.state, JobState::Done);
    }
}
