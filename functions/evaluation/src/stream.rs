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
//!   without stopping the other records.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Datelike, Utc};
use domain::{BackfillJob, Customer, JobState, SalesSummary, WrittenBy};
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

/// The event-source filter of `template.yaml`: customer items inserted or modified by
/// the API (membership items share the `CUSTOMER#` sort key prefix but carry no
/// `written_by`, so they never match), backfill jobs that are still running, and a
/// customer's yearly sales totals (a recorded sale re-evaluates the customer).
pub fn filter_patterns() -> Vec<Value> {
    vec![
        json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": {
                "Keys": { "sk": { "S": [{ "prefix": keys::CUSTOMER }] } },
                "NewImage": { "written_by": { "S": ["api"] } }
            }
        }),
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
    ]
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
    /// A backfill job's step ran (or was not due).
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
}

/// The warm state of the assign function.
#[derive(Clone)]
pub struct Assigner {
    runner: Runner,
}

impl Assigner {
    pub fn new(runner: Runner) -> Self {
        Self { runner }
    }

    /// Handles one batch; the response names every record that failed, so the event
    /// source retries from the first of them and sends repeat failures on.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut tenants: HashMap<String, TenantRules> = HashMap::new();
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            let sequence = record.change.sequence_number.clone();
            // Every partition key starts with `T#<tenant>`: the record's logs name it.
            let tenant = key_of(record, keys::PK)
                .strip_prefix("T#")
                .and_then(|rest| rest.split('#').next())
                .unwrap_or_default();
            let span = tracing::info_span!("record", tenant);
            let processed = self
                .process(record, &mut tenants)
                .instrument(span.clone())
                .await;
            // No await below: the guard ends with this iteration.
            let _in_record = span.enter();
            match processed {
                Ok(outcome) => tracing::debug!(?sequence, ?outcome, "record done"),
                Err(err) => {
                    tracing::warn!(?sequence, error = %err, "record failed");
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = sequence;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }

    async fn process(
        &self,
        record: &EventRecord,
        tenants: &mut HashMap<String, TenantRules>,
    ) -> Result<Outcome, RecordError> {
        if let Some((tenant, job)) = running_job(record).map_err(RecordError::Image)? {
            let outcome = backfill::step(&self.runner, &tenant, &job).await?;
            return Ok(Outcome::Backfill(outcome));
        }
        let (tenant, customer) = if let Some((tenant, id)) = sale_recorded(record) {
            match self.runner.store().get_customer(&tenant, &id).await? {
                Some(customer) => (tenant, customer),
                None => return Ok(Outcome::Ignored),
            }
        } else {
            match api_write(record).map_err(RecordError::Image)? {
                Some(found) => found,
                None => return Ok(Outcome::Ignored),
            }
        };
        if !tenants.contains_key(&tenant) {
            let rules = TenantRules::load(self.runner.store(), &tenant).await?;
            tenants.insert(tenant.clone(), rules);
        }
        let rules = &tenants[&tenant];
        let now = Utc::now();
        let sales = self
            .runner
            .store()
            .sales_summary(&tenant, &customer.id, now.year())
            .await?;
        let plan = plan(&self.runner, rules, &customer, &sales, now).await?;
        let outcome = match &plan.write {
            None => Outcome::Unchanged,
            Some(next) => {
                let written = self
                    .runner
                    .store()
                    .save_customer(&rules.tenant, Some(&customer), next, &rules.fields)
                    .await;
                match written {
                    Ok(()) => Outcome::Written,
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

/// The `S` value of a key attribute of the record, or "".
fn key_of<'a>(record: &'a EventRecord, name: &str) -> &'a str {
    match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => s.as_str(),
        _ => "",
    }
}

/// The tenant and job of a record that asks for a backfill step.
fn running_job(record: &EventRecord) -> Result<Option<(String, BackfillJob)>, String> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let Some(tenant) = keys::parse_tenant_key(key_of(record, keys::PK)) else {
        return Ok(None);
    };
    if !key_of(record, keys::SK).starts_with(keys::BACKFILL) {
        return Ok(None);
    }
    let job: BackfillJob =
        serde_dynamo::from_item(record.change.new_image.clone()).map_err(|err| err.to_string())?;
    Ok((job.state == JobState::Running).then(|| (tenant.to_owned(), job)))
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
/// modified through the API. `None` for every other record.
pub fn api_write(record: &EventRecord) -> Result<Option<(String, Customer)>, String> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let (pk, sk) = (key_of(record, keys::PK), key_of(record, keys::SK));
    let Some((tenant, _)) = keys::parse_customer_key(pk, sk) else {
        return Ok(None);
    };
    let customer: Customer =
        serde_dynamo::from_item(record.change.new_image.clone()).map_err(|err| err.to_string())?;
    if customer.written_by != WrittenBy::Api {
        return Ok(None);
    }
    Ok(Some((tenant.to_owned(), customer)))
}

/// What the rules decided for one customer image.
#[derive(Debug)]
pub struct Plan {
    /// The customer to write at the next version, or `None` when nothing changes.
    pub write: Option<Customer>,
    pub failed_rules: usize,
}

/// Evaluates one customer image and plans its write-back; no I/O beyond loading a
/// module the process has not seen yet.
pub async fn plan(
    runner: &Runner,
    rules: &TenantRules,
    customer: &Customer,
    sales: &SalesSummary,
    now: DateTime<Utc>,
) -> Result<Plan, EvaluationError> {
    let evaluation = rules.evaluate(runner, customer, sales, now).await?;
    Ok(Plan {
        write: customer.assigned(&evaluation, &rules.fields, now),
        failed_rules: evaluation.failures.len(),
    })
}
