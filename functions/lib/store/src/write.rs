//! Transactional writes. Every write is a list of steps, each with the meaning of its
//! condition failing, so a cancelled transaction maps to one precise [`StoreError`] and
//! nothing is half-written.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use serde::Serialize;

use crate::error::{CONFLICT_DETAIL, StoreError, StoreResult, backoff, from_sdk};
use crate::{Store, keys};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// What it means when a step's condition fails.
pub(crate) enum OnFail {
    /// Cannot fail (no condition), or a failure would be a bug.
    Never,
    AlreadyExists(String),
    Duplicate(String),
    VersionMismatch,
}

struct Step {
    item: TransactWriteItem,
    on_fail: OnFail,
}

/// The steps of one transaction, built against the store's table.
pub(crate) struct Tx<'a> {
    table: &'a str,
    steps: Vec<Step>,
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(pk)),
        (keys::SK.to_owned(), AttributeValue::S(sk)),
    ])
}

/// An entity item: its serialized attributes plus keys and a `kind` marker that stream
/// consumers use to tell customers from other items.
pub(crate) fn entity_item<T: Serialize>(
    pk: String,
    sk: String,
    kind: &str,
    entity: &T,
) -> StoreResult<Item> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(entity)?;
    item.extend(key(pk, sk));
    item.insert("kind".into(), AttributeValue::S(kind.into()));
    Ok(item)
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Tx<'_> {
    fn push(&mut self, item: TransactWriteItem, on_fail: OnFail) {
        self.steps.push(Step { item, on_fail });
    }

    /// Put that must not overwrite anything.
    pub fn create(&mut self, item: Item, on_fail: OnFail) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        self.push(TransactWriteItem::builder().put(put).build(), on_fail);
        Ok(())
    }

    /// Put that replaces the item only if it is still at `version`.
    pub fn replace(&mut self, item: Item, version: u64) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(version as i64))
            .build()?;
        self.push(
            TransactWriteItem::builder().put(put).build(),
            OnFail::VersionMismatch,
        );
        Ok(())
    }

    /// Put that applies only while `expression` holds for the stored item.
    pub fn put_if(
        &mut self,
        item: Item,
        expression: &str,
        names: HashMap<String, String>,
        values: Item,
        on_fail: OnFail,
    ) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()?;
        self.push(TransactWriteItem::builder().put(put).build(), on_fail);
        Ok(())
    }

    /// Rewrites an entity's attributes in place, leaving counters that other writes
    /// maintain (`preserve`) untouched, only if it is still at `version`.
    pub fn rewrite(
        &mut self,
        new_item: Item,
        old_attributes: impl IntoIterator<Item = String>,
        preserve: &[&str],
        version: u64,
    ) -> StoreResult<()> {
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":expected".to_owned(), n(version as i64))]);
        let mut sets = Vec::new();
        let mut key_item = Item::new();
        for (i, (name, value)) in new_item.into_iter().enumerate() {
            if name == keys::PK || name == keys::SK {
                key_item.insert(name, value);
                continue;
            }
            if preserve.contains(&name.as_str()) {
                continue;
            }
            sets.push(format!("#a{i} = :a{i}"));
            values.insert(format!(":a{i}"), value);
            names.insert(format!("#a{i}"), name);
        }
        let mut removes = Vec::new();
        for (i, name) in old_attributes.into_iter().enumerate() {
            if !names.values().any(|n| n == &name)
                && !key_item.contains_key(&name)
                && !preserve.contains(&name.as_str())
            {
                removes.push(format!("#r{i}"));
                names.insert(format!("#r{i}"), name);
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        names.insert("#version".into(), "version".into());
        let update = Update::builder()
            .table_name(self.table)
            .set_key(Some(key_item))
            .update_expression(expression)
            .condition_expression("#version = :expected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()?;
        self.push(
            TransactWriteItem::builder().update(update).build(),
            OnFail::VersionMismatch,
        );
        Ok(())
    }

    /// Delete with an optional condition.
    pub fn delete(
        &mut self,
        key: Item,
        condition: Option<(&str, Item)>,
        on_fail: OnFail,
    ) -> StoreResult<()> {
        let mut delete = Delete::builder().table_name(self.table).set_key(Some(key));
        if let Some((expression, values)) = condition {
            delete = delete
                .condition_expression(expression)
                .set_expression_attribute_values(Some(values));
        }
        self.push(
            TransactWriteItem::builder().delete(delete.build()?).build(),
            on_fail,
        );
        Ok(())
    }

    /// A free-form update (several counters and attributes of one item at once).
    pub fn update(
        &mut self,
        key: Item,
        expression: &str,
        names: HashMap<String, String>,
        values: Item,
        on_fail: OnFail,
    ) -> StoreResult<()> {
        let update = Update::builder()
            .table_name(self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()?;
        self.push(TransactWriteItem::builder().update(update).build(), on_fail);
        Ok(())
    }

    /// Unconditional put (index entries whose content is derived from the entity).
    pub fn put(&mut self, item: Item) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .build()?;
        self.push(TransactWriteItem::builder().put(put).build(), OnFail::Never);
        Ok(())
    }

    /// A condition on an item the transaction does not change.
    pub fn check(&mut self, key: Item, expression: &str, on_fail: OnFail) -> StoreResult<()> {
        let check = ConditionCheck::builder()
            .table_name(self.table)
            .set_key(Some(key))
            .condition_expression(expression)
            .build()?;
        self.push(
            TransactWriteItem::builder().condition_check(check).build(),
            on_fail,
        );
        Ok(())
    }
}

/// Why DynamoDB cancelled one attempt of a transaction.
pub(crate) enum Cancelled {
    /// These steps' conditions failed (their indexes; never empty).
    Conditions(Vec<usize>),
    /// Another transaction or write held one of the items (`TransactionConflict`).
    Conflict,
}

/// Attempts of a transaction that keeps colliding before the caller is told so.
const CONFLICT_ATTEMPTS: u32 = 6;
/// The base of the jittered backoff between those attempts (waits up to 20, 40, 80... ms).
const CONFLICT_BACKOFF_MS: u64 = 10;

impl Store {
    pub(crate) fn tx(&self) -> Tx<'_> {
        Tx {
            table: &self.table,
            steps: Vec::new(),
        }
    }

    /// Runs the steps as one transaction. A collision with a concurrent write of the
    /// same item is retried with jittered backoff and, if it keeps losing, is a
    /// [`StoreError::Conflict`]; a failed condition maps to its step's meaning.
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> StoreResult<()> {
        let steps = tx.steps;
        let items: Vec<TransactWriteItem> = steps.iter().map(|s| s.item.clone()).collect();
        let mut attempt = 0;
        loop {
            match self.try_transaction(&items).await? {
                Ok(()) => return Ok(()),
                Err(Cancelled::Conditions(failed)) => {
                    return Err(failure(&steps[failed[0]].on_fail));
                }
                Err(Cancelled::Conflict) => {
                    attempt += 1;
                    tracing::warn!(attempt, "transaction conflict");
                    if attempt >= CONFLICT_ATTEMPTS {
                        return Err(StoreError::Conflict(CONFLICT_DETAIL.into()));
                    }
                    tokio::time::sleep(backoff(attempt, CONFLICT_BACKOFF_MS)).await;
                }
            }
        }
    }

    /// One TransactWriteItems call; a cancellation is returned, not mapped, so callers
    /// that can act on single steps (the membership counts) can.
    pub(crate) async fn try_transaction(
        &self,
        items: &[TransactWriteItem],
    ) -> StoreResult<Result<(), Cancelled>> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items.to_vec()))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let Some(reasons) = cancellation_reasons(&err) else {
            return Err(match from_sdk(err) {
                // A transaction that collides is reported as a cancellation, but be
                // ready for DynamoDB's other conflict shape too.
                StoreError::Conflict(_) => return Ok(Err(Cancelled::Conflict)),
                other => other,
            });
        };
        let failed: Vec<usize> = reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Ok(Err(Cancelled::Conditions(failed)));
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            return Ok(Err(Cancelled::Conflict));
        }
        Err(StoreError::Unavailable(format!(
            "transaction cancelled: {:?}",
            reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
        )))
    }
}

fn cancellation_reasons<R>(
    err: &SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<aws_sdk_dynamodb::types::CancellationReason>> {
    match err {
        SdkError::ServiceError(service) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                Some(cancelled.cancellation_reasons().to_vec())
            }
            _ => None,
        },
        _ => None,
    }
}

fn failure(on_fail: &OnFail) -> StoreError {
    match on_fail {
        OnFail::Never => StoreError::Internal("an unconditional write was refused".into()),
        OnFail::AlreadyExists(what) => StoreError::AlreadyExists(what.clone()),
        OnFail::Duplicate(message) => StoreError::Duplicate(message.clone()),
        OnFail::VersionMismatch => StoreError::VersionMismatch,
    }
}
