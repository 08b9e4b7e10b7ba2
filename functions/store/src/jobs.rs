//! Backfill jobs: one item per job, advanced one step at a time under a condition on
//! the step it was read at, so concurrent or repeated steps never count twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{BackfillJob, Customer};

use crate::keys::{self, BACKFILL, CUSTOMER, sk};
use crate::write::{Item, OnFail, entity_item, n};
use crate::{CustomerFilter, PageKey, Store, StoreResult};

fn job_sk(rule: &str, id: &str) -> String {
    format!("{BACKFILL}{rule}#{id}")
}

fn job_item(tenant: &str, job: &BackfillJob) -> StoreResult<Item> {
    entity_item(
        keys::tenant(tenant),
        job_sk(&job.rule, &job.id),
        "backfill",
        job,
    )
}

impl Store {
    pub async fn create_job(&self, tenant: &str, job: &BackfillJob) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.create(
            job_item(tenant, job)?,
            OnFail::AlreadyExists(format!("backfill job `{}`", job.id)),
        )?;
        self.commit(tx).await
    }

    pub async fn get_job(
        &self,
        tenant: &str,
        rule: &str,
        id: &str,
    ) -> StoreResult<Option<BackfillJob>> {
        self.get_item(keys::tenant(tenant), job_sk(rule, id)).await
    }

    /// A rule's jobs, newest first (job ids are time-ordered).
    pub async fn list_jobs(&self, tenant: &str, rule: &str) -> StoreResult<Vec<BackfillJob>> {
        let mut jobs: Vec<BackfillJob> = self
            .query_all(&keys::tenant(tenant), &format!("{BACKFILL}{rule}#"))
            .await?;
        jobs.reverse();
        Ok(jobs)
    }

    /// Saves the job's next state only if it is still at the step and phase `previous`
    /// was read at; otherwise `VersionMismatch` (another invocation got there first).
    pub async fn advance_job(
        &self,
        tenant: &str,
        previous: &BackfillJob,
        next: &BackfillJob,
    ) -> StoreResult<()> {
        let phase = serde_json::to_value(previous.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut tx = self.tx();
        tx.put_if(
            job_item(tenant, next)?,
            "#step = :step AND #phase = :phase",
            HashMap::from([
                ("#step".to_owned(), "step".to_owned()),
                ("#phase".to_owned(), "phase".to_owned()),
            ]),
            Item::from([
                (":step".to_owned(), n(previous.step as i64)),
                (":phase".to_owned(), AttributeValue::S(phase)),
            ]),
            OnFail::VersionMismatch,
        )?;
        self.commit(tx).await
    }

    /// Up to `limit` customers in id order after the customer `after` (all of them from
    /// the start when `None`), and the id to continue after, if more may follow.
    pub async fn customers_after(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Customer>, Option<String>)> {
        let start = after.map(|id| {
            PageKey(
                [
                    (keys::PK.to_owned(), keys::tenant(tenant)),
                    (keys::SK.to_owned(), sk(CUSTOMER, id)),
                ]
                .into(),
            )
        });
        let page = self
            .list_customers(tenant, &CustomerFilter::All, limit, start)
            .await?;
        let next = page
            .next
            .is_some()
            .then(|| page.items.last().map(|c| c.id.clone()))
            .flatten();
        Ok((page.items, next))
    }
}
