//! One step of a backfill chain: the next page of the chain's shard of customers,
//! evaluated, counted, written.
//!
//! Steps are driven by the table's stream: every chain write that leaves it running is
//! a stream record, and handling that record runs the chain's next step. The chains of
//! a job (one per shard) live in different partitions, so their records arrive on
//! different shards or parallel batches and the chains run side by side. A step is cut
//! off safely at any point: its counts are committed together with the move to the
//! `writing` phase, its writes are conditional and idempotent, and the cursor moves on
//! only after them; a repeated or stale record finds the chain at another step and
//! does nothing.

use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use domain::backfill::STEP_CUSTOMERS;
use domain::{BackfillChain, JobState, StepPhase};
use futures_util::{StreamExt, TryStreamExt};
use store::StoreError;

use crate::runner::{EvaluationError, Runner};
use crate::tenant::TenantRules;

/// Customers per step: `BACKFILL_STEP_CUSTOMERS` if set (tests take smaller steps to
/// see a job mid-way), else [`STEP_CUSTOMERS`].
fn step_customers() -> usize {
    static STEP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *STEP.get_or_init(|| {
        std::env::var("BACKFILL_STEP_CUSTOMERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(STEP_CUSTOMERS)
    })
}

/// Customer writes of one step in flight at once.
pub const WRITES_IN_FLIGHT: usize = 8;

/// The most customers one chain writes per second. A changed customer costs about 4
/// write units in its shard's partition (its item, then its counting ledger, both in
/// transactions), so 150/s keeps a chain near 600 of the partition's 1,000 write units
/// per second, leaving room for the tenant's own traffic (docs/performance.md).
pub const CHAIN_WRITES_PER_SECOND: f64 = 150.0;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The record was not the chain's current step (a duplicate, or another invocation
    /// got there first).
    Skipped,
    /// A page was handled; the chain's write triggers the next step.
    Advanced,
    Finished,
}

/// Runs the step the chain item `image` describes, if the chain is still there.
pub async fn step(
    runner: &Runner,
    tenant: &str,
    image: &BackfillChain,
) -> Result<StepOutcome, EvaluationError> {
    let started = Instant::now();
    let store = runner.store();
    let Some(chain) = store
        .get_chain(tenant, &image.rule, &image.job, image.shard)
        .await?
    else {
        return Ok(StepOutcome::Skipped);
    };
    if chain.state != JobState::Running || chain.step != image.step || chain.phase != image.phase {
        return Ok(StepOutcome::Skipped);
    }
    // Customers first, rules second: a customer written after a rule change (say, a
    // rule disabled meanwhile) is then always evaluated with the rules as they are now.
    let (customers, next_cursor) = store
        .customers_after(
            tenant,
            chain.shard,
            chain.cursor.as_deref(),
            step_customers(),
        )
        .await?;
    // Then the rules and the page's sales at once.
    let now = Utc::now();
    let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    let load_rules = async {
        if chain.dry_run {
            TenantRules::load_one(store, tenant, &chain.rule, chain.version).await
        } else {
            TenantRules::load(store, tenant).await
        }
    };
    let (rules, sales) = tokio::try_join!(load_rules, async {
        Ok(store.sales_summaries(tenant, &ids, now.year()).await?)
    })?;
    let mut plans = Vec::with_capacity(customers.len());
    for customer in &customers {
        let summary = sales.get(&customer.id).cloned().unwrap_or_default();
        plans.push(rules.plan(runner, customer, &summary, now).await?);
    }

    let mut current = chain.clone();
    if chain.phase == StepPhase::Counting {
        let mut counted = chain.clone();
        for (customer, plan) in customers.iter().zip(&plans) {
            counted.progress.count(
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
    if !chain.dry_run {
        let writes: Vec<_> = customers
            .iter()
            .zip(plans)
            .filter_map(|(customer, plan)| Some((customer, plan.write?)))
            .collect();
        let written = writes.len();
        let fields = &rules.fields;
        futures_util::stream::iter(writes)
            .map(|(customer, next)| async move {
                match store
                    .save_customer(tenant, Some(customer), &next, fields)
                    .await
                {
                    // A customer changed meanwhile is re-evaluated from its own record.
                    Ok(()) | Err(StoreError::VersionMismatch) => Ok(()),
                    Err(err) => Err(EvaluationError::from(err)),
                }
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        // Keep the chain within its share of the partition's write rate.
        let paced = Duration::from_secs_f64(written as f64 / CHAIN_WRITES_PER_SECOND);
        tokio::time::sleep(paced.saturating_sub(started.elapsed())).await;
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

/// Moves the chain from `from` to `to`; `false` when another invocation already did.
async fn commit(
    runner: &Runner,
    tenant: &str,
    from: &BackfillChain,
    to: &BackfillChain,
) -> Result<bool, EvaluationError> {
    match runner.store().advance_chain(tenant, from, to).await {
        Ok(()) => Ok(true),
        Err(StoreError::VersionMismatch) => Ok(false),
        Err(err) => Err(err.into()),
    }
}
