//! One step of a backfill job: the next page of customers, evaluated, counted, written.
//!
//! Steps are driven by the table's stream: every job write that leaves it running is a
//! stream record, and handling that record runs the next step. A step is cut off safely
//! at any point: its counts are committed together with the move to the `writing` phase,
//! its writes are conditional and idempotent, and the cursor moves on only after them;
//! a repeated or stale record finds the job at another step and does nothing.

use chrono::{Datelike, Utc};
use domain::backfill::STEP_CUSTOMERS;
use domain::{BackfillJob, JobState, StepPhase};
use store::StoreError;

use crate::runner::{EvaluationError, Runner};
use crate::stream::plan;
use crate::tenant::TenantRules;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The record was not the job's current step (a duplicate, or another invocation
    /// got there first).
    Skipped,
    /// A page was handled; the job's write triggers the next step.
    Advanced,
    Finished,
}

/// Runs the step the job item `image` describes, if the job is still there.
pub async fn step(
    runner: &Runner,
    tenant: &str,
    image: &BackfillJob,
) -> Result<StepOutcome, EvaluationError> {
    let store = runner.store();
    let Some(job) = store.get_job(tenant, &image.rule, &image.id).await? else {
        return Ok(StepOutcome::Skipped);
    };
    if job.state != JobState::Running || job.step != image.step || job.phase != image.phase {
        return Ok(StepOutcome::Skipped);
    }
    // Customers first, rules second: a customer written after a rule change (say, a
    // rule disabled meanwhile) is then always evaluated with the rules as they are now.
    let (customers, next_cursor) = store
        .customers_after(tenant, job.cursor.as_deref(), STEP_CUSTOMERS)
        .await?;
    let rules = if job.dry_run {
        TenantRules::load_one(store, tenant, &job.rule, job.version).await?
    } else {
        TenantRules::load(store, tenant).await?
    };
    let now = Utc::now();
    let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    let sales = store.sales_summaries(tenant, &ids, now.year()).await?;
    let mut plans = Vec::with_capacity(customers.len());
    for customer in &customers {
        let summary = sales.get(&customer.id).cloned().unwrap_or_default();
        plans.push(plan(runner, &rules, customer, &summary, now).await?);
    }

    let mut current = job.clone();
    if job.phase == StepPhase::Counting {
        let mut counted = job.clone();
        for (customer, plan) in customers.iter().zip(&plans) {
            counted.count(
                customer,
                plan.write.as_ref(),
                plan.failed_rules > 0,
                &rules.fields,
            );
        }
        counted.phase = StepPhase::Writing;
        counted.updated_at = now;
        if !commit(runner, tenant, &current, &counted).await? {
            return Ok(StepOutcome::Skipped);
        }
        current = counted;
    }
    if !job.dry_run {
        for (customer, plan) in customers.iter().zip(plans) {
            let Some(next) = plan.write else { continue };
            match store
                .save_customer(tenant, Some(customer), &next, &rules.fields)
                .await
            {
                // A customer changed meanwhile is re-evaluated from its own record.
                Ok(()) | Err(StoreError::VersionMismatch) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    let mut advanced = current.clone();
    advanced.step += 1;
    advanced.phase = StepPhase::Counting;
    advanced.updated_at = Utc::now();
    let finished = next_cursor.is_none();
    advanced.cursor = next_cursor;
    if finished {
        advanced.state = JobState::Done;
    }
    if !commit(runner, tenant, &current, &advanced).await? {
        return Ok(StepOutcome::Skipped);
    }
    Ok(if finished {
        StepOutcome::Finished
    } else {
        StepOutcome::Advanced
    })
}

/// Moves the job from `from` to `to`; `false` when another invocation already did.
async fn commit(
    runner: &Runner,
    tenant: &str,
    from: &BackfillJob,
    to: &BackfillJob,
) -> Result<bool, EvaluationError> {
    match runner.store().advance_job(tenant, from, to).await {
        Ok(()) => Ok(true),
        Err(StoreError::VersionMismatch) => Ok(false),
        Err(err) => Err(err.into()),
    }
}
