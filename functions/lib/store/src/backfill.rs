//! Backfill jobs. A job is a head item (what was asked, when) in the tenant's partition
//! and one chain item per shard, stored in that shard's customers partition so that the
//! chains' stream records spread like the customers they walk. Each chain advances one
//! step at a time under a condition on the step it was read at, so concurrent or
//! repeated steps never count twice. Nothing writes the head after its creation: the
//! job's progress is read from its chains.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::{BackfillChain, BackfillJob, Customer};
use serde::{Deserialize, Serialize};

use crate::keys::{self, BACKFILL, CUSTOMER, sk};
use crate::write::{Item, OnFail, entity_item, n};
use crate::{PageKey, Store, StoreResult};

fn job_sk(rule: &str, id: &str) -> String {
    format!("{BACKFILL}{rule}#{id}")
}

/// What a job's head item holds. It has no `state`, so the stream's backfill filter
/// (running chains) never matches it.
#[derive(Serialize, Deserialize)]
struct JobHead {
    id: String,
    rule: String,
    version: u32,
    dry_run: bool,
    created_at: DateTime<Utc>,
}

impl JobHead {
    fn with(self, chains: Vec<BackfillChain>) -> BackfillJob {
        BackfillJob::from_chains(
            self.id,
            self.rule,
            self.version,
            self.dry_run,
            self.created_at,
            chains,
        )
    }
}

fn chain_key(tenant: &str, rule: &str, job: &str, shard: u8) -> (String, String) {
    (keys::customers(tenant, shard), job_sk(rule, job))
}

fn chain_item(tenant: &str, chain: &BackfillChain) -> StoreResult<Item> {
    let (pk, sk) = chain_key(tenant, &chain.rule, &chain.job, chain.shard);
    entity_item(pk, sk, "backfill_chain", chain)
}

impl Store {
    /// Creates the job's head and its chains (one per shard) in one transaction; each
    /// chain's stream record runs its first step.
    pub async fn create_job(&self, tenant: &str, job: &BackfillJob) -> StoreResult<()> {
        let head = JobHead {
            id: job.id.clone(),
            rule: job.rule.clone(),
            version: job.version,
            dry_run: job.dry_run,
            created_at: job.created_at,
        };
        let mut tx = self.tx();
        tx.create(
            entity_item(
                keys::tenant(tenant),
                job_sk(&job.rule, &job.id),
                "backfill",
                &head,
            )?,
            OnFail::AlreadyExists(format!("backfill job `{}`", job.id)),
        )?;
        for chain in &job.chains {
            tx.create(chain_item(tenant, chain)?, OnFail::Never)?;
        }
        self.commit(tx).await
    }

    /// A job: its head and its chains, read at once.
    pub async fn get_job(
        &self,
        tenant: &str,
        rule: &str,
        id: &str,
    ) -> StoreResult<Option<BackfillJob>> {
        let ids = [id];
        let (head, mut chains) = tokio::try_join!(
            self.get_item::<JobHead>(keys::tenant(tenant), job_sk(rule, id)),
            self.chains_of(tenant, rule, &ids),
        )?;
        Ok(head.map(|head| {
            let mine = chains.remove(&head.id).unwrap_or_default();
            head.with(mine)
        }))
    }

    /// A rule's jobs, newest first (job ids are time-ordered).
    pub async fn list_jobs(&self, tenant: &str, rule: &str) -> StoreResult<Vec<BackfillJob>> {
        let mut heads: Vec<JobHead> = self
            .query_all(&keys::tenant(tenant), &format!("{BACKFILL}{rule}#"))
            .await?;
        heads.reverse();
        let ids: Vec<&str> = heads.iter().map(|h| h.id.as_str()).collect();
        let mut chains = self.chains_of(tenant, rule, &ids).await?;
        Ok(heads
            .into_iter()
            .map(|head| {
                let mine = chains.remove(&head.id).unwrap_or_default();
                head.with(mine)
            })
            .collect())
    }

    /// The chains of the jobs `ids` of `rule`, by job id, each in shard order (the order
    /// of the keys the batch read keeps).
    async fn chains_of(
        &self,
        tenant: &str,
        rule: &str,
        ids: &[&str],
    ) -> StoreResult<HashMap<String, Vec<BackfillChain>>> {
        let chain_keys: Vec<(String, String)> = ids
            .iter()
            .flat_map(|id| keys::shards().map(move |shard| chain_key(tenant, rule, id, shard)))
            .collect();
        let mut chains: HashMap<String, Vec<BackfillChain>> = HashMap::new();
        for chain in self.batch_get::<BackfillChain>(&chain_keys).await? {
            chains.entry(chain.job.clone()).or_default().push(chain);
        }
        Ok(chains)
    }

    /// One chain as stored now.
    pub async fn get_chain(
        &self,
        tenant: &str,
        rule: &str,
        job: &str,
        shard: u8,
    ) -> StoreResult<Option<BackfillChain>> {
        let (pk, sk) = chain_key(tenant, rule, job, shard);
        self.get_item(pk, sk).await
    }

    /// Saves the chain's next state only if it is still at the step and phase
    /// `previous` was read at; otherwise `VersionMismatch` (another invocation got
    /// there first).
    pub async fn advance_chain(
        &self,
        tenant: &str,
        previous: &BackfillChain,
        next: &BackfillChain,
    ) -> StoreResult<()> {
        let phase = serde_json::to_value(previous.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut tx = self.tx();
        tx.put_if(
            chain_item(tenant, next)?,
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

    /// Up to `limit` customers of one shard in id order after the customer `after` (from
    /// the shard's start when `None`), and the id to continue after, if more may follow.
    pub async fn customers_after(
        &self,
        tenant: &str,
        shard: u8,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Customer>, Option<String>)> {
        let partition = keys::customers(tenant, shard);
        let start = after.map(|id| {
            PageKey(
                [
                    (keys::PK.to_owned(), partition.clone()),
                    (keys::SK.to_owned(), sk(CUSTOMER, id)),
                ]
                .into(),
            )
        });
        let page = self
            .query_page(&partition, CUSTOMER, limit, start, &|_| true)
            .await?
            .decode::<Customer>()?;
        let next = page
            .next
            .is_some()
            .then(|| page.items.last().map(|c| c.id.clone()))
            .flatten();
        Ok((page.items, next))
    }
}
