//! The assign function's handler: a DynamoDB Streams batch of customer writes in, each
//! customer re-evaluated by its tenant's rules, the batch's failures out.
//!
//! Guarantees, record by record:
//! - no loops: only writes made through the API are evaluated (the event-source filter
//!   in `template.yaml`, [`filter_patterns`], and a check here); the rules' own
//!   write-back is marked `written_by: rules`, and an unchanged result writes nothing;
//! - no lost updates: the write-back is conditional on the version that was evaluated;
//!   if the customer changed meanwhile the write is skipped, and the newer stream
//!   record decides;
//! - at-least-once delivery is harmless: a replayed record is either stale (skipped)
//!   or evaluates to what is already stored (nothing written);
//! - a failing rule is recorded on the customer and reported as a batch item failure,
//!   without stopping the other customers' records.
//!
//! A batch is handled customer by customer, many customers at once:
//! - its records are grouped by customer ([`group_records`]): a sales-totals record joins
//!   the group of the customer it names, a backfill chain's records are a group of their
//!   own; a group keeps its records in stream order and processes them one after the
//!   other, while up to [`CONCURRENT_GROUPS`] groups run at once;
//! - what is the same for the whole batch is read once per tenant, before any group runs
//!   (tenants at once, up to [`CONCURRENT_TENANTS`]): its rules, fields and segments,
//!   the sales summaries of all its customers in the batch (one batch read, which reads
//!   the year's currency sets once), and the stored customers whose sales changed (one
//!   batch read);
//! - a group stops at its first failed record: that record is reported, the group's
//!   later records are not processed (the event source delivers them again, since it
//!   retries from the lowest failed sequence number).
//!
//! Beside the rules, every customer record of the batch (by any writer) moves the
//! membership counts, once per tenant ([`crate::counting`]: a read of the ledgers and
//! one transaction per 100 actions, concurrent with the evaluation, so off its path).
//!
//! So a batch of [`BATCH_SIZE`] records of distinct customers of one tenant, with warm
//! modules, waits on 2 rounds of reads and then `BATCH_SIZE / CONCURRENT_GROUPS` = 2
//! rounds of write-backs: 4 sequential rounds of DynamoDB calls.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::{DateTime, Datelike, Utc};
use domain::{BackfillChain, Customer, JobState, SalesSummary, WrittenBy};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use store::{StoreError, keys};
use tracing::Instrument;

use crate::backfill::{self, StepOutcome};
use crate::runner::{EvaluationError, Runner};
use crate::tenant::TenantRules;

/// Records per invocation, as declared on the event source mapping in `template.yaml`.
pub const BATCH_SIZE: usize = 100;
/// Retries of a failing record before it goes to the on-failure destination.
pub const MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
/// Record groups (customers, backfill chains) processed at once within a batch. A batch of
/// [`BATCH_SIZE`] customers then takes `BATCH_SIZE / CONCURRENT_GROUPS` rounds of
/// write-backs after its 2 rounds of reads: 4 rounds, under the 8 allowed. Evaluations
/// take turns on the handler's thread (`Runner::evaluate`), one engine instance at a time.
pub const CONCURRENT_GROUPS: usize = 50;
/// Tenants whose per-batch reads run at once.
pub const CONCURRENT_TENANTS: usize = 16;

/// The event-source filter of `template.yaml`: every write of a customer item, by any
/// writer, created, changed or deleted (the counts follow them all; membership rows
/// carry no `kind`, so they never match), backfill chains that are still running, and a
/// customer's yearly sales totals (a recorded sale re-evaluates the customer). Which
/// customer writes the rules evaluate is decided in code ([`api_write`]).
pub fn filter_patterns() -> Vec<Value> {
    let mut patterns = keys::customer_record_patterns();
    patterns.extend([
        json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": {
                "Keys": { "sk": { "S": [{ "prefix": keys::BACKFILL }] } },
                "NewImage": { "state": { "S": ["running"] } }
            }
        }),
        json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": { "NewImage": { "kind": { "S": [keys::SALES_TOTALS_KIND] } } }
        }),
    ]);
    patterns
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a customer write by the API (the filter should have dropped it).
    Ignored,
    /// The rules' answer is already stored.
    Unchanged,
    /// The customer was written back.
    Written,
    /// The customer changed after this image; its newer record decides.
    Stale,
    /// A backfill chain's step ran (or was not due).
    Backfill(StepOutcome),
}

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("the record's new image is not a customer: {0}")]
    Image(String),
    #[error(transparent)]
    Evaluation(#[from] EvaluationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{count} rule(s) failed; recorded on the customer")]
    RulesFailed { count: usize },
    #[error("reading the tenant's rules or sales for the batch failed: {0}")]
    TenantBatch(String),
}

/// What the records of a group are about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GroupKey {
    /// A customer's writes and sales totals: its id.
    Customer(String),
    /// A backfill chain's steps: the chain item's key.
    Chain(String),
}

/// What one record asks for, decoded once.
#[derive(Debug)]
enum Work {
    /// Evaluate this customer image, written by the API.
    Evaluate(Box<Customer>),
    /// The customer's sales totals changed: evaluate the customer as stored.
    SaleRecorded { customer_id: String },
    /// Run the chain's next step.
    Backfill(Box<BackfillChain>),
    /// The image cannot be decoded: the record fails.
    Broken(String),
}

/// Records of one customer (or one backfill chain) of one tenant, in batch order.
#[derive(Debug)]
struct Group {
    tenant: String,
    key: GroupKey,
    /// Each record's position in the batch, with its work.
    records: Vec<(usize, Work)>,
}

/// A batch's records by customer and chain, groups in the order of their first record;
/// records that ask for nothing are in no group.
#[derive(Debug, Default)]
struct Grouped {
    groups: Vec<Group>,
    /// Positions in the batch.
    ignored: Vec<usize>,
}

/// Groups a batch's records by what they are about: the customer of an API write or of
/// a sales-totals change (by tenant and customer id), or the backfill chain (by its
/// item key). Each group keeps its records in batch order. The customer images it
/// decodes are taken out of their records (decoded by value, not copied): anything else
/// that reads them (the counting) reads them first.
fn group_records(records: &mut [EventRecord]) -> Grouped {
    let mut grouped = Grouped::default();
    let mut index: HashMap<(String, GroupKey), usize> = HashMap::new();
    for (position, record) in records.iter_mut().enumerate() {
        let Some((tenant, key, work)) = classify(record) else {
            grouped.ignored.push(position);
            continue;
        };
        let slot = *index
            .entry((tenant.clone(), key.clone()))
            .or_insert_with(|| {
                grouped.groups.push(Group {
                    tenant,
                    key,
                    records: Vec::new(),
                });
                grouped.groups.len() - 1
            });
        grouped.groups[slot].records.push((position, work));
    }
    grouped
}

/// The tenant, group and work of a record; `None` when it asks for nothing.
fn classify(record: &mut EventRecord) -> Option<(String, GroupKey, Work)> {
    let chain_key = || {
        let (pk, sk) = (key_of(record, keys::PK), key_of(record, keys::SK));
        GroupKey::Chain(format!("{pk}/{sk}"))
    };
    match running_chain(record) {
        Ok(Some((tenant, chain))) => {
            return Some((tenant, chain_key(), Work::Backfill(chain.into())));
        }
        Ok(None) => {}
        Err(reason) => {
            // Only a chain item's image fails to decode as a chain: its key names the tenant.
            let tenant = keys::parse_customers_key(key_of(record, keys::PK))?;
            return Some((tenant.to_owned(), chain_key(), Work::Broken(reason)));
        }
    }
    if let Some((tenant, customer_id)) = sale_recorded(record) {
        let key = GroupKey::Customer(customer_id.clone());
        return Some((tenant, key, Work::SaleRecorded { customer_id }));
    }
    let written = api_write(record);
    let (pk, sk) = (key_of(record, keys::PK), key_of(record, keys::SK));
    // `api_write` decodes only customer items, whose key names the tenant and customer.
    let (tenant, id) = keys::parse_customer_key(pk, sk)?;
    let key = GroupKey::Customer(id.to_owned());
    match written {
        Ok(Some((_, customer))) => Some((tenant.to_owned(), key, Work::Evaluate(customer.into()))),
        Ok(None) => None,
        Err(reason) => Some((tenant.to_owned(), key, Work::Broken(reason))),
    }
}

/// The batch's customers of one tenant, and what must be read for them.
#[derive(Debug, Default)]
struct TenantNeeds<'a> {
    /// Every customer evaluated: their sales summaries are read.
    customers: BTreeSet<&'a str>,
    /// Customers whose sales changed: they are read as stored.
    sold: BTreeSet<&'a str>,
}

/// What is the same for all of a tenant's records in the batch.
struct TenantBatch {
    rules: TenantRules,
    sales: HashMap<String, SalesSummary>,
    /// The customers of sales-totals records, as stored when the batch began.
    stored: HashMap<String, Customer>,
}

type TenantBatches = HashMap<String, Result<TenantBatch, RecordError>>;

/// The warm state of the assign function.
#[derive(Clone)]
pub struct Assigner {
    runner: Runner,
}

impl Assigner {
    pub fn new(runner: Runner) -> Self {
        Self { runner }
    }

    /// Handles one batch; the response names the first failed record of every customer
    /// (and chain) that had one, so the event source retries from the lowest of them and
    /// sends repeat failures on.
    pub async fn handle(&self, mut event: Event) -> DynamoDbEventResponse {
        let now = Utc::now();
        // Counting sees every customer record (by any writer); it runs beside the
        // rules, which only see the API's writes: neither depends on the other. It reads
        // the images before grouping takes out the ones the rules evaluate.
        let counted = crate::counting::CountedBatch::of(&event.records);
        let Grouped { groups, ignored } = group_records(&mut event.records);
        let records = &event.records;
        for position in ignored {
            let record = &records[position];
            let _in_record = record_span(record).entered();
            let sequence = &record.change.sequence_number;
            tracing::debug!(?sequence, outcome = ?Outcome::Ignored, "record done");
        }

        let counting = crate::counting::count_batch(self.runner.store(), counted);
        let evaluating = async {
            let tenants = self.load_tenants(&groups, now).await;
            stream::iter(&groups)
                .map(|group| self.run_group(records, group, &tenants, now))
                .buffer_unordered(CONCURRENT_GROUPS)
                .filter_map(std::future::ready)
                .collect::<Vec<usize>>()
                .await
        };
        let (counting_failures, mut failed) = tokio::join!(counting, evaluating);
        for failure in counting_failures {
            tracing::warn!(tenant = failure.tenant, error = %failure.error, "counting failed");
            if let Some(position) = records
                .iter()
                .position(|r| r.change.sequence_number == failure.first_sequence)
            {
                failed.push(position);
            }
        }
        store::stream::batch_item_failures(records, failed)
    }

    /// Reads, per tenant with customers in the batch, what all its records share.
    async fn load_tenants(&self, groups: &[Group], now: DateTime<Utc>) -> TenantBatches {
        let mut needs: HashMap<&str, TenantNeeds> = HashMap::new();
        for group in groups {
            for (_, work) in &group.records {
                let tenant = needs.entry(group.tenant.as_str()).or_default();
                match work {
                    Work::Evaluate(customer) => {
                        tenant.customers.insert(&customer.id);
                    }
                    Work::SaleRecorded { customer_id } => {
                        tenant.customers.insert(customer_id);
                        tenant.sold.insert(customer_id);
                    }
                    Work::Backfill(_) | Work::Broken(_) => {}
                }
            }
        }
        needs.retain(|_, needs| !needs.customers.is_empty());
        stream::iter(needs)
            .map(|(tenant, needs)| async move {
                let span = tracing::info_span!("tenant batch", tenant);
                let loaded = self
                    .load_tenant(tenant, &needs, now)
                    .instrument(span.clone())
                    .await;
                if let Err(err) = &loaded {
                    let _in_tenant = span.enter();
                    tracing::warn!(error = %err, "the tenant's batch reads failed");
                }
                (tenant.to_owned(), loaded)
            })
            .buffer_unordered(CONCURRENT_TENANTS)
            .collect()
            .await
    }

    /// One tenant's rules, its customers' sales summaries and the stored customers whose
    /// sales changed, read at once; then the rule modules loaded if they are not yet.
    async fn load_tenant(
        &self,
        tenant: &str,
        needs: &TenantNeeds<'_>,
        now: DateTime<Utc>,
    ) -> Result<TenantBatch, RecordError> {
        let store = self.runner.store();
        let owned = |ids: &BTreeSet<&str>| ids.iter().map(|id| (*id).to_owned()).collect();
        let (customers, sold): (Vec<String>, Vec<String>) =
            (owned(&needs.customers), owned(&needs.sold));
        let (rules, sales, stored) = tokio::try_join!(
            async { Ok::<_, RecordError>(TenantRules::load(store, tenant).await?) },
            async {
                Ok(store
                    .sales_summaries(tenant, &customers, now.year())
                    .await?)
            },
            async {
                if sold.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(store.get_customers(tenant, &sold).await?)
            },
        )?;
        let stored: HashMap<String, Customer> =
            stored.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(TenantBatch {
            rules,
            sales,
            stored,
        })
    }

    /// Processes a group's records in order, stopping at the first that fails; returns
    /// that record's position in the batch.
    async fn run_group(
        &self,
        records: &[EventRecord],
        group: &Group,
        tenants: &TenantBatches,
        now: DateTime<Utc>,
    ) -> Option<usize> {
        // The customer as this group last wrote it back, newer than the stored one.
        let mut written: Option<Customer> = None;
        for (done, (position, work)) in group.records.iter().enumerate() {
            let record = &records[*position];
            let span = record_span(record);
            let processed = self
                .process(&group.tenant, work, tenants, &mut written, now)
                .instrument(span.clone())
                .await;
            // No await below: the guard ends with this iteration.
            let _in_record = span.enter();
            let sequence = &record.change.sequence_number;
            match processed {
                Ok(outcome) => tracing::debug!(?sequence, ?outcome, "record done"),
                Err(err) => {
                    let left = group.records.len() - done - 1;
                    // The group's later records are redelivered with the retry.
                    tracing::warn!(?sequence, group = ?group.key, error = %err, left, "record failed");
                    return Some(*position);
                }
            }
        }
        None
    }

    async fn process(
        &self,
        tenant: &str,
        work: &Work,
        tenants: &TenantBatches,
        written: &mut Option<Customer>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, RecordError> {
        // A sales-totals record evaluates the customer as it is now: as this group last
        // wrote it back, else as read when the batch began.
        let current: Customer;
        let customer = match work {
            Work::Broken(reason) => return Err(RecordError::Image(reason.clone())),
            Work::Backfill(job) => {
                let outcome = backfill::step(&self.runner, tenant, job).await?;
                return Ok(Outcome::Backfill(outcome));
            }
            Work::Evaluate(customer) => customer.as_ref(),
            Work::SaleRecorded { customer_id } => {
                let batch = tenant_batch(tenants, tenant)?;
                match written.as_ref().or_else(|| batch.stored.get(customer_id)) {
                    Some(customer) => {
                        current = customer.clone();
                        &current
                    }
                    None => return Ok(Outcome::Ignored),
                }
            }
        };
        let batch = tenant_batch(tenants, tenant)?;
        let rules = &batch.rules;
        let none = SalesSummary::default();
        let sales = batch.sales.get(&customer.id).unwrap_or(&none);
        let plan = rules.plan(&self.runner, customer, sales, now).await?;
        let outcome = match plan.write {
            None => Outcome::Unchanged,
            Some(next) => {
                let saved = self
                    .runner
                    .store()
                    .save_customer(&rules.tenant, Some(customer), &next, &rules.fields)
                    .await;
                match saved {
                    Ok(()) => {
                        *written = Some(next);
                        Outcome::Written
                    }
                    Err(StoreError::VersionMismatch) => return Ok(Outcome::Stale),
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if plan.failed_rules > 0 {
            return Err(RecordError::RulesFailed {
                count: plan.failed_rules,
            });
        }
        Ok(outcome)
    }
}

/// The batch reads of the record's tenant, or why they failed.
fn tenant_batch<'a>(
    tenants: &'a TenantBatches,
    tenant: &str,
) -> Result<&'a TenantBatch, RecordError> {
    match tenants.get(tenant) {
        Some(Ok(batch)) => Ok(batch),
        Some(Err(err)) => Err(RecordError::TenantBatch(err.to_string())),
        None => Err(RecordError::TenantBatch("not read".into())),
    }
}

/// The span of one record's logs: every partition key starts with `T#<tenant>`, so the
/// record's logs name the tenant.
fn record_span(record: &EventRecord) -> tracing::Span {
    let tenant = key_of(record, keys::PK)
        .strip_prefix("T#")
        .and_then(|rest| rest.split('#').next())
        .unwrap_or_default();
    tracing::info_span!("record", tenant)
}

/// The `S` value of a key attribute of the record, or "".
fn key_of<'a>(record: &'a EventRecord, name: &str) -> &'a str {
    match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => s.as_str(),
        _ => "",
    }
}

/// The tenant and chain of a record that asks for a backfill step.
fn running_chain(record: &EventRecord) -> Result<Option<(String, BackfillChain)>, String> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let Some(tenant) = keys::parse_customers_key(key_of(record, keys::PK)) else {
        return Ok(None);
    };
    if !key_of(record, keys::SK).starts_with(keys::BACKFILL) {
        return Ok(None);
    }
    let chain: BackfillChain =
        serde_dynamo::from_item(record.change.new_image.clone()).map_err(|err| err.to_string())?;
    Ok((chain.state == JobState::Running).then(|| (tenant.to_owned(), chain)))
}

/// The tenant and customer id of a record that changed a customer's sales totals.
fn sale_recorded(record: &EventRecord) -> Option<(String, String)> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let tenant = keys::parse_sales_year_key(key_of(record, keys::PK))?;
    let image = &record.change.new_image;
    match (image.get("kind"), image.get("customer_id")) {
        (
            Some(serde_dynamo::AttributeValue::S(kind)),
            Some(serde_dynamo::AttributeValue::S(id)),
        ) if kind == keys::SALES_TOTALS_KIND => Some((tenant.to_owned(), id.clone())),
        _ => None,
    }
}

/// The tenant and customer of a record the rules must see: a customer inserted or
/// modified through the API. `None` for every other record. Takes a customer record's
/// new image (decoded by value: no copy of it), so read the image before.
pub fn api_write(record: &mut EventRecord) -> Result<Option<(String, Customer)>, String> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let (pk, sk) = (key_of(record, keys::PK), key_of(record, keys::SK));
    let Some((tenant, _)) = keys::parse_customer_key(pk, sk) else {
        return Ok(None);
    };
    let tenant = tenant.to_owned();
    let image = std::mem::take(&mut record.change.new_image);
    let customer: Customer = serde_dynamo::from_item(image).map_err(|err| err.to_string())?;
    if customer.written_by != WrittenBy::Api {
        return Ok(None);
    }
    Ok(Some((tenant, customer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerDraft, CustomerSchema};
    use store::{Store, StoreConfig};

    fn record(event_name: &str, pk: &str, sk: &str, image: Value, sequence: usize) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_name = event_name.into();
        record.change.keys = serde_dynamo::to_item(json!({ "pk": pk, "sk": sk })).unwrap();
        record.change.new_image = serde_dynamo::to_item(image).unwrap();
        record.change.sequence_number = Some(format!("{sequence:021}"));
        record
    }

    fn customer(id: &str, version: u64, by: WrittenBy) -> Value {
        let schema = CustomerSchema {
            fields: &[],
            segment: None,
            current_segment_id: None,
        };
        let mut customer = CustomerDraft::parse(&json!({ "email": format!("{id}@x.io") }), &schema)
            .unwrap()
            .into_customer(id.into(), Utc::now());
        customer.version = version;
        customer.written_by = by;
        serde_json::to_value(customer).unwrap()
    }

    /// A customer item's record, in the batch at `sequence`.
    fn write(tenant: &str, id: &str, version: u64, by: WrittenBy, sequence: usize) -> EventRecord {
        let sk = format!("CUSTOMER#{id}");
        let image = customer(id, version, by);
        record(
            "MODIFY",
            &keys::customer_home(tenant, id),
            &sk,
            image,
            sequence,
        )
    }

    fn sale(tenant: &str, id: &str, sequence: usize) -> EventRecord {
        let image = json!({ "kind": keys::SALES_TOTALS_KIND, "customer_id": id, "total": 5 });
        let pk = keys::sales_year(tenant, 2026, keys::shard_of(id));
        record(
            "MODIFY",
            &pk,
            &keys::year_totals(id, "EUR"),
            image,
            sequence,
        )
    }

    fn job(tenant: &str, id: &str, sequence: usize) -> EventRecord {
        let chain = BackfillChain::new(id, "tiering", 1, false, 3, Utc::now());
        let sk = format!("BACKFILL#tiering#{id}");
        let image = serde_json::to_value(chain).unwrap();
        record("INSERT", &keys::customers(tenant, 3), &sk, image, sequence)
    }

    /// Each group as (tenant, key, the batch positions of its records).
    fn shape(grouped: &Grouped) -> Vec<(String, GroupKey, Vec<usize>)> {
        grouped
            .groups
            .iter()
            .map(|g| {
                let positions = g.records.iter().map(|(p, _)| *p).collect();
                (g.tenant.clone(), g.key.clone(), positions)
            })
            .collect()
    }

    fn customer_key(id: &str) -> GroupKey {
        GroupKey::Customer(id.into())
    }

    #[test]
    fn records_group_by_customer_in_batch_order_and_sales_join_their_customer() {
        let membership = keys::cluster_members("acme", "tier", "AA", keys::shard_of("c1"));
        let mut records = vec![
            write("acme", "c1", 1, WrittenBy::Api, 0),
            write("acme", "c2", 1, WrittenBy::Api, 1),
            sale("acme", "c1", 2),
            write("acme", "c1", 2, WrittenBy::Api, 3),
            // The rules' own write, a membership item, a removal: nothing to do.
            write("acme", "c1", 3, WrittenBy::Rules, 4),
            record("INSERT", &membership, "CUSTOMER#c1", json!({}), 5),
            record(
                "REMOVE",
                &keys::customer_home("acme", "c2"),
                "CUSTOMER#c2",
                json!({}),
                6,
            ),
            // The same customer id in another tenant is another customer.
            write("other", "c1", 1, WrittenBy::Api, 7),
            job("acme", "j1", 8),
            sale("acme", "c3", 9),
            job("acme", "j1", 10),
            // An image that is not a customer still belongs to its customer.
            record(
                "MODIFY",
                &keys::customer_home("acme", "c2"),
                "CUSTOMER#c2",
                json!({ "written_by": "api" }),
                11,
            ),
            job("acme", "j2", 12),
        ];
        let grouped = group_records(&mut records);
        let job_key = |id: &str| {
            let pk = keys::customers("acme", 3);
            GroupKey::Chain(format!("{pk}/BACKFILL#tiering#{id}"))
        };
        assert_eq!(
            shape(&grouped),
            [
                ("acme".into(), customer_key("c1"), vec![0, 2, 3]),
                ("acme".into(), customer_key("c2"), vec![1, 11]),
                ("other".into(), customer_key("c1"), vec![7]),
                ("acme".into(), job_key("j1"), vec![8, 10]),
                ("acme".into(), customer_key("c3"), vec![9]),
                ("acme".into(), job_key("j2"), vec![12]),
            ]
        );
        let ignored: Vec<_> = grouped
            .ignored
            .iter()
            .map(|&p| records[p].change.sequence_number.clone().unwrap())
            .collect();
        assert_eq!(ignored, [4, 5, 6].map(|i| format!("{i:021}")));

        let c1 = &grouped.groups[0].records;
        assert!(matches!(&c1[0].1, Work::Evaluate(c) if c.version == 1));
        assert!(matches!(&c1[1].1, Work::SaleRecorded { customer_id } if customer_id == "c1"));
        assert!(matches!(&c1[2].1, Work::Evaluate(c) if c.version == 2));
        assert!(matches!(&grouped.groups[1].records[1].1, Work::Broken(_)));
        assert!(matches!(&grouped.groups[3].records[0].1, Work::Backfill(c) if c.job == "j1"));
    }

    /// Records that fail before any read (undecodable images), against an unreachable
    /// table: each group reports its first failure, and the counting, which cannot reach
    /// the table, reports the tenant's first customer record (the retry starts there).
    #[tokio::test]
    async fn each_group_reports_its_first_failure_only() {
        let store = Store::connect(&StoreConfig {
            table_name: "unit".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        })
        .await;
        let assigner = Assigner::new(Runner::new(store).unwrap());
        let broken = |id: &str, sequence| {
            let sk = format!("CUSTOMER#{id}");
            record(
                "MODIFY",
                &keys::customer_home("acme", id),
                &sk,
                json!({ "written_by": "api" }),
                sequence,
            )
        };
        let broken_job = record(
            "INSERT",
            &keys::customers("acme", 0),
            "BACKFILL#r#j",
            json!({ "x": 1 }),
            5,
        );
        let mut event = Event::default();
        event.records = vec![
            write("acme", "c9", 2, WrittenBy::Rules, 0),
            broken("c1", 1),
            broken("c2", 2),
            broken("c1", 3),
            broken("c2", 4),
            broken_job,
            broken("c3", 6),
        ];
        let failures: Vec<_> = assigner
            .handle(event)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier.unwrap())
            .collect();
        assert_eq!(failures, [0, 1, 2, 5, 6].map(|i| format!("{i:021}")));
    }
}
