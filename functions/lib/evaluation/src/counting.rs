//! The stream's counting step: every customer record of a batch (written by a client, a
//! rule, a backfill or a repair; created, changed or deleted) moves the membership
//! counts, once per batch and tenant (see `store::counts` for why that is exact).

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use store::{CountedWrite, Store, StoreError, keys};

/// The tenant and count input of a record that wrote a customer item, or `None`.
pub fn counted_write(record: &EventRecord) -> Option<(String, CountedWrite)> {
    let key = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => s.as_str(),
        _ => "",
    };
    let (tenant, id) = keys::parse_customer_key(key(keys::PK), key(keys::SK))?;
    let image = match record.event_name.as_str() {
        "INSERT" | "MODIFY" => Some(&*record.change.new_image),
        "REMOVE" => None,
        _ => return None,
    };
    let sequence = record.change.sequence_number.as_deref().unwrap_or_default();
    Some((
        tenant.to_owned(),
        CountedWrite::from_image(id, sequence, image),
    ))
}

/// A tenant whose counting failed, and the first of its records in the batch: the
/// event source retries from there, and recounting what was counted moves nothing.
#[derive(Debug)]
pub struct CountingFailure {
    pub tenant: String,
    pub first_sequence: Option<String>,
    pub error: StoreError,
}

/// A batch's counted writes by tenant, with each tenant's first record. Read from the
/// records before the rules' decoding takes the images it evaluates out of them.
#[derive(Debug, Default)]
pub struct CountedBatch {
    by_tenant: BTreeMap<String, Vec<CountedWrite>>,
    first: BTreeMap<String, Option<String>>,
}

impl CountedBatch {
    pub fn of(records: &[EventRecord]) -> Self {
        let mut batch = Self::default();
        for record in records {
            if let Some((tenant, write)) = counted_write(record) {
                batch
                    .first
                    .entry(tenant.clone())
                    .or_insert_with(|| record.change.sequence_number.clone());
                batch.by_tenant.entry(tenant).or_default().push(write);
            }
        }
        batch
    }
}

/// Counts every customer record of the batch, tenant by tenant, and repairs the
/// customers the counting found in a deleted segment or field.
pub async fn count_batch(store: &Store, batch: CountedBatch) -> Vec<CountingFailure> {
    let CountedBatch {
        by_tenant,
        mut first,
    } = batch;
    let runs = by_tenant.into_iter().map(|(tenant, writes)| async move {
        let result = match store.count_memberships(&tenant, &writes).await {
            Ok(dangling) => store.repair_customers(&tenant, &dangling).await.map(|_| ()),
            Err(err) => Err(err),
        };
        (tenant, result)
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(|(tenant, result)| {
            let error = result.err()?;
            Some(CountingFailure {
                first_sequence: first.remove(&tenant).flatten(),
                tenant,
                error,
            })
        })
        .collect()
}
