//! Membership counts (customers per segment, per cluster value, per cluster field), kept
//! from the table's stream instead of inside customers' writes.
//!
//! A customer write touches only the customer's own items (the customer, its email
//! guard, its membership rows), so writes of different customers never collide. The
//! customer item carries `memberships`: every segment and cluster value it is counted
//! in. The stream consumer hands each batch's customer records to
//! [`Store::count_memberships`], which keeps one ledger item per customer
//! (`COUNTED#<id>`): the memberships already counted and the sequence number of the
//! stream record that set them. A record moves the counters by the difference between
//! its memberships and the ledger's, in one transaction with the ledger, so:
//! - the counters always equal the sum of the ledgers: a duplicated or retried record
//!   finds the ledger already at its state and moves nothing;
//! - a record not newer than the ledger's sequence number is skipped, so an older record
//!   delivered late cannot undo a newer one;
//! - a batch's deltas are summed per counter first: one transaction per 100 items moves
//!   every counter the batch touches once, so the counters (shared items) are written by
//!   the consumer a few times per batch, never by a client's write.
//!
//! A counter step is conditional on its segment or field still existing (a field also on
//! its `created_at`, so a re-created field does not inherit counts). When it does not,
//! the deltas into it are dropped and the customer is reported back for repair: its
//! write was validated just before the segment or field was deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use domain::FieldDef;

use crate::error::{CONFLICT_DETAIL, backoff};
use crate::fields::field_key;
use crate::keys::{self, CLUSTER_COUNT, sk};
use crate::segments::{SEGMENT_COUNT, segment_key};
use crate::write::{Cancelled, Item, key, n};
use crate::{Store, StoreError, StoreResult};

/// The attribute of a customer item listing what it is counted in.
pub(crate) const MEMBERSHIPS: &str = "memberships";
/// The sort key prefix of a customer's counting ledger, in the tenant's partition.
pub const LEDGER: &str = "COUNTED#";
/// The attribute of a cluster value count item (`CLUSTER_COUNT#<field>#<value>`).
pub(crate) const VALUE_COUNT: &str = "count";
/// DynamoDB's limit of actions in one transaction.
const MAX_ITEMS: usize = 100;
/// Attempts of one counting transaction that keeps colliding with another consumer's.
const ATTEMPTS: u32 = 8;

/// One thing a customer is counted in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Membership {
    Segment(String),
    Cluster {
        field: String,
        /// The field definition's `created_at` as stored: a re-created field is another.
        stamp: String,
        value_key: String,
    },
}

impl Membership {
    fn encode(&self) -> String {
        match self {
            Self::Segment(id) => format!("S#{id}"),
            Self::Cluster {
                field,
                stamp,
                value_key,
            } => format!("C#{field}#{stamp}#{value_key}"),
        }
    }

    /// Field names, ids and stamps hold no `#`; the value key is last, so it may.
    fn decode(text: &str) -> Option<Self> {
        if let Some(id) = text.strip_prefix("S#") {
            return Some(Self::Segment(id.to_owned()));
        }
        let mut parts = text.strip_prefix("C#")?.splitn(3, '#');
        Some(Self::Cluster {
            field: parts.next()?.to_owned(),
            stamp: parts.next()?.to_owned(),
            value_key: parts.next()?.to_owned(),
        })
    }

    /// The counters this membership adds one to.
    fn counters(&self) -> Vec<Counter> {
        match self {
            Self::Segment(id) => vec![Counter::Segment(id.clone())],
            Self::Cluster {
                field,
                stamp,
                value_key,
            } => vec![
                Counter::Field {
                    field: field.clone(),
                    stamp: stamp.clone(),
                },
                Counter::Value {
                    field: field.clone(),
                    stamp: stamp.clone(),
                    value_key: value_key.clone(),
                },
            ],
        }
    }

    /// The entity whose existence the membership depends on.
    fn owner(&self) -> Counter {
        self.counters().remove(0)
    }
}

/// The stored form of a field's `created_at`, as the field item holds it.
pub(crate) fn stamp_of(field: &FieldDef) -> String {
    match serde_json::to_value(field.created_at) {
        Ok(serde_json::Value::String(text)) => text,
        _ => field.created_at.to_rfc3339(),
    }
}

pub(crate) fn encode_memberships(memberships: &[Membership]) -> AttributeValue {
    AttributeValue::L(
        memberships
            .iter()
            .map(|m| AttributeValue::S(m.encode()))
            .collect(),
    )
}

pub(crate) fn decode_memberships(value: Option<&AttributeValue>) -> BTreeSet<Membership> {
    match value {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| v.as_s().ok())
            .filter_map(|s| Membership::decode(s))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// A counter the consumer moves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Counter {
    /// `customer_count` on the segment item.
    Segment(String),
    /// `member_count` on the field item: customers holding any value of the field.
    Field { field: String, stamp: String },
    /// `count` on the field value's `CLUSTER_COUNT#` item.
    Value {
        field: String,
        stamp: String,
        value_key: String,
    },
}

impl Counter {
    /// A value counter lives and dies with its field's counter.
    fn owner(&self) -> Counter {
        match self {
            Self::Value { field, stamp, .. } => Self::Field {
                field: field.clone(),
                stamp: stamp.clone(),
            },
            other => other.clone(),
        }
    }
}

/// One customer record of the stream, as counting sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedWrite {
    pub customer_id: String,
    /// The stream record's sequence number: orders one customer's records.
    pub sequence: String,
    memberships: BTreeSet<Membership>,
}

impl CountedWrite {
    /// From a customer record: its new image, or `None` when the customer was deleted.
    pub fn from_image(
        customer_id: &str,
        sequence: &str,
        new_image: Option<&HashMap<String, serde_dynamo::AttributeValue>>,
    ) -> Self {
        Self {
            customer_id: customer_id.to_owned(),
            sequence: sequence.to_owned(),
            memberships: new_image.map(image_memberships).unwrap_or_default(),
        }
    }
}

/// The memberships a customer's stream image lists.
fn image_memberships(
    image: &HashMap<String, serde_dynamo::AttributeValue>,
) -> BTreeSet<Membership> {
    match image.get(MEMBERSHIPS) {
        Some(serde_dynamo::AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                serde_dynamo::AttributeValue::S(s) => Membership::decode(s),
                _ => None,
            })
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The fields a customer's stream image was counted in as cluster fields (with a value):
/// which of its fields were clusters when it was written, without reading definitions.
pub fn cluster_fields(image: &HashMap<String, serde_dynamo::AttributeValue>) -> Vec<String> {
    image_memberships(image)
        .into_iter()
        .filter_map(|membership| match membership {
            Membership::Cluster { field, .. } => Some(field),
            Membership::Segment(_) => None,
        })
        .collect()
}

/// Stream sequence numbers are decimal strings of up to 40 digits.
fn newer(sequence: &str, than: &str) -> bool {
    (sequence.len(), sequence) > (than.len(), than)
}

/// What a customer's ledger says was counted.
struct Ledger {
    sequence: Option<String>,
    memberships: BTreeSet<Membership>,
}

/// One customer's move, planned against its ledger.
struct Move {
    customer_id: String,
    sequence: String,
    /// The ledger's sequence when read: the ledger write is conditional on it.
    read_sequence: Option<String>,
    from: BTreeSet<Membership>,
    to: BTreeSet<Membership>,
}

impl Move {
    /// The memberships that still count: those whose segment or field exists.
    fn counted(set: &BTreeSet<Membership>, gone: &BTreeSet<Counter>) -> BTreeSet<Membership> {
        set.iter()
            .filter(|m| !gone.contains(&m.owner()))
            .cloned()
            .collect()
    }

    fn deltas(&self, gone: &BTreeSet<Counter>) -> BTreeMap<Counter, i64> {
        let mut deltas: BTreeMap<Counter, i64> = BTreeMap::new();
        let from = Self::counted(&self.from, gone);
        let to = Self::counted(&self.to, gone);
        for m in from.difference(&to) {
            for c in m.counters() {
                *deltas.entry(c).or_default() -= 1;
            }
        }
        for m in to.difference(&from) {
            for c in m.counters() {
                *deltas.entry(c).or_default() += 1;
            }
        }
        // A customer moving between two values of one field: the field's count does not
        // move, but its step stays, as the check that the field still exists.
        deltas
    }
}

impl Store {
    /// Brings the counters up to date with a batch of one tenant's customer records
    /// (any order; a customer's newest record wins). Returns the customers whose
    /// memberships name a segment or field that no longer exists, for
    /// [`Store::repair_customers`].
    pub async fn count_memberships(
        &self,
        tenant: &str,
        writes: &[CountedWrite],
    ) -> StoreResult<Vec<String>> {
        let mut newest: BTreeMap<&str, &CountedWrite> = BTreeMap::new();
        for write in writes {
            let entry = newest.entry(&write.customer_id).or_insert(write);
            if newer(&write.sequence, &entry.sequence) {
                *entry = write;
            }
        }
        let ledger_keys: Vec<(String, String)> = newest
            .keys()
            .map(|id| (keys::customer_home(tenant, id), sk(LEDGER, id)))
            .collect();
        let ledgers: HashMap<String, Ledger> = self
            .batch_get_items(&ledger_keys)
            .await?
            .into_iter()
            .filter_map(|item| {
                let id = item.get(keys::SK)?.as_s().ok()?.strip_prefix(LEDGER)?;
                Some((
                    id.to_owned(),
                    Ledger {
                        sequence: item.get("seq").and_then(|v| v.as_s().ok()).cloned(),
                        memberships: decode_memberships(item.get(MEMBERSHIPS)),
                    },
                ))
            })
            .collect();
        let moves: Vec<Move> = newest
            .into_values()
            .filter_map(|write| {
                let ledger = ledgers.get(&write.customer_id);
                let read_sequence = ledger.and_then(|l| l.sequence.clone());
                if read_sequence
                    .as_deref()
                    .is_some_and(|seen| !newer(&write.sequence, seen))
                {
                    return None;
                }
                Some(Move {
                    customer_id: write.customer_id.clone(),
                    sequence: write.sequence.clone(),
                    read_sequence,
                    from: ledger.map(|l| l.memberships.clone()).unwrap_or_default(),
                    to: write.memberships.clone(),
                })
            })
            .collect();

        let mut gone = BTreeSet::new();
        for chunk in chunks(&moves) {
            self.apply_moves(tenant, chunk, &mut gone).await?;
        }
        Ok(moves
            .iter()
            .filter(|m| m.to.iter().any(|x| gone.contains(&x.owner())))
            .map(|m| m.customer_id.clone())
            .collect())
    }

    /// One transaction: the ledgers of `moves` and the summed counters they move.
    /// Counters of a deleted segment or field are learnt from the cancellation, added
    /// to `gone` and left out of the retry.
    async fn apply_moves(
        &self,
        tenant: &str,
        moves: &[Move],
        gone: &mut BTreeSet<Counter>,
    ) -> StoreResult<()> {
        let mut conflicts = 0;
        loop {
            let mut totals: BTreeMap<Counter, i64> = BTreeMap::new();
            for m in moves {
                for (counter, delta) in m.deltas(gone) {
                    *totals.entry(counter).or_default() += delta;
                }
            }
            // A field's step must come with any of its values' steps (it is their check).
            let owners: Vec<Counter> = totals.keys().map(Counter::owner).collect();
            for owner in owners {
                totals.entry(owner).or_default();
            }
            let mut items = Vec::with_capacity(moves.len() + totals.len());
            for m in moves {
                items.push(self.ledger_put(tenant, m, gone)?);
            }
            let counters: Vec<&Counter> = totals.keys().collect();
            for (counter, delta) in &totals {
                items.push(self.counter_step(tenant, counter, *delta)?);
            }
            match self.try_transaction(&items).await? {
                Ok(()) => return Ok(()),
                Err(Cancelled::Conditions(failed)) => {
                    let mut learnt = false;
                    for index in failed {
                        match index.checked_sub(moves.len()) {
                            Some(c) => learnt |= gone.insert(counters[c].owner()),
                            // Another consumer counted this customer meanwhile: the
                            // records are redelivered and counted against the new ledger.
                            None => {
                                return Err(StoreError::Conflict(format!(
                                    "the counting ledger of customer `{}` moved meanwhile",
                                    moves[index].customer_id
                                )));
                            }
                        }
                    }
                    if !learnt {
                        return Err(StoreError::Internal(
                            "a counting step failed twice on the same counter".into(),
                        ));
                    }
                }
                Err(Cancelled::Conflict) => {
                    conflicts += 1;
                    tracing::debug!(conflicts, "counting transaction conflict");
                    if conflicts >= ATTEMPTS {
                        return Err(StoreError::Conflict(CONFLICT_DETAIL.into()));
                    }
                    tokio::time::sleep(backoff(conflicts, 15)).await;
                }
            }
        }
    }

    fn ledger_put(
        &self,
        tenant: &str,
        m: &Move,
        gone: &BTreeSet<Counter>,
    ) -> StoreResult<TransactWriteItem> {
        let counted: Vec<Membership> = Move::counted(&m.to, gone).into_iter().collect();
        let mut item = key(
            keys::customer_home(tenant, &m.customer_id),
            sk(LEDGER, &m.customer_id),
        );
        item.insert("seq".into(), AttributeValue::S(m.sequence.clone()));
        item.insert(MEMBERSHIPS.into(), encode_memberships(&counted));
        item.insert("kind".into(), AttributeValue::S("counted".into()));
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match &m.read_sequence {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(seen) => put
                .condition_expression("seq = :seen")
                .expression_attribute_values(":seen", AttributeValue::S(seen.clone())),
        };
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    fn counter_step(
        &self,
        tenant: &str,
        counter: &Counter,
        delta: i64,
    ) -> StoreResult<TransactWriteItem> {
        let add = |key: Item, attribute: &str, condition: &str, values: Item| {
            let mut values = values;
            values.insert(":delta".into(), n(delta));
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("ADD #count :delta")
                .expression_attribute_names("#count", attribute)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .build()
        };
        let item = match counter {
            Counter::Segment(id) => TransactWriteItem::builder().update(add(
                segment_key(tenant, id),
                SEGMENT_COUNT,
                "attribute_exists(pk)",
                Item::new(),
            )?),
            Counter::Field { field, stamp } => {
                let values = Item::from([(":stamp".to_owned(), AttributeValue::S(stamp.clone()))]);
                if delta == 0 {
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(field_key(tenant, field)))
                        .condition_expression("created_at = :stamp")
                        .set_expression_attribute_values(Some(values))
                        .build()?;
                    TransactWriteItem::builder().condition_check(check)
                } else {
                    TransactWriteItem::builder().update(add(
                        field_key(tenant, field),
                        crate::fields::FIELD_COUNT,
                        "created_at = :stamp",
                        values,
                    )?)
                }
            }
            Counter::Value {
                field, value_key, ..
            } => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        keys::tenant(tenant),
                        cluster_count_sk(field, value_key),
                    )))
                    .update_expression(
                        "ADD #count :delta SET #field = :field, #value = :value, #kind = :kind",
                    )
                    .expression_attribute_names("#count", VALUE_COUNT)
                    .expression_attribute_names("#field", "field")
                    .expression_attribute_names("#value", "value")
                    .expression_attribute_names("#kind", "kind")
                    .expression_attribute_values(":delta", n(delta))
                    .expression_attribute_values(":field", AttributeValue::S(field.clone()))
                    .expression_attribute_values(":value", AttributeValue::S(value_key.clone()))
                    .expression_attribute_values(":kind", AttributeValue::S("cluster_count".into()))
                    .build()?;
                TransactWriteItem::builder().update(update)
            }
        };
        Ok(item.build())
    }
}

/// The sort key of a cluster value's member count, in the tenant's partition.
pub(crate) fn cluster_count_sk(field: &str, value_key: &str) -> String {
    format!("{CLUSTER_COUNT}{field}#{value_key}")
}

/// Splits the moves so that each transaction holds at most [`MAX_ITEMS`] actions: one
/// ledger per customer plus every counter (and field check) the chunk moves.
fn chunks(moves: &[Move]) -> Vec<&[Move]> {
    let none = BTreeSet::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut counters: BTreeSet<Counter> = BTreeSet::new();
    for (i, m) in moves.iter().enumerate() {
        let mine: BTreeSet<Counter> = m
            .deltas(&none)
            .into_keys()
            .flat_map(|c| [c.owner(), c])
            .collect();
        let merged = counters.union(&mine).count();
        if i > start && (i - start + 1) + merged > MAX_ITEMS {
            out.push(&moves[start..i]);
            start = i;
            counters = mine;
        } else {
            counters.extend(mine);
        }
    }
    if start < moves.len() {
        out.push(&moves[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: &str) -> Membership {
        Membership::Segment(id.into())
    }

    fn tier(value: &str) -> Membership {
        Membership::Cluster {
            field: "tier".into(),
            stamp: "2026-01-01T00:00:00Z".into(),
            value_key: value.into(),
        }
    }

    fn moving(id: &str, from: &[Membership], to: &[Membership]) -> Move {
        Move {
            customer_id: id.into(),
            sequence: "1".into(),
            read_sequence: None,
            from: from.iter().cloned().collect(),
            to: to.iter().cloned().collect(),
        }
    }

    #[test]
    fn memberships_round_trip_and_values_may_hold_hashes() {
        for m in [seg("s1"), tier("A#B")] {
            assert_eq!(Membership::decode(&m.encode()), Some(m));
        }
        assert_eq!(Membership::decode("X#1"), None);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(newer("10", "9"));
        assert!(!newer("9", "10"));
        assert!(!newer("10", "10"));
    }

    #[test]
    fn a_move_between_values_keeps_the_field_count_and_checks_the_field() {
        let m = moving("c1", &[seg("s1"), tier("A")], &[seg("s2"), tier("B")]);
        let deltas = m.deltas(&BTreeSet::new());
        assert_eq!(deltas[&Counter::Segment("s1".into())], -1);
        assert_eq!(deltas[&Counter::Segment("s2".into())], 1);
        let field = tier("A").owner();
        assert_eq!(deltas.get(&field).copied(), Some(0));
        assert_eq!(deltas.len(), 5);
    }

    #[test]
    fn gone_owners_count_nothing() {
        let m = moving("c1", &[], &[seg("s1"), tier("A")]);
        let gone = BTreeSet::from([Counter::Segment("s1".into()), tier("A").owner()]);
        assert!(m.deltas(&gone).is_empty());
        assert!(Move::counted(&m.to, &gone).is_empty());
    }

    #[test]
    fn chunks_stay_within_the_transaction_limit() {
        let moves: Vec<Move> = (0..250)
            .map(|i| {
                moving(
                    &format!("c{i}"),
                    &[],
                    &[seg("s1"), tier(&format!("v{}", i % 7))],
                )
            })
            .collect();
        let parts = chunks(&moves);
        assert_eq!(parts.iter().map(|c| c.len()).sum::<usize>(), 250);
        for part in &parts {
            let counters: BTreeSet<Counter> = part
                .iter()
                .flat_map(|m| m.deltas(&BTreeSet::new()).into_keys())
                .flat_map(|c| [c.owner(), c])
                .collect();
            assert!(part.len() + counters.len() <= MAX_ITEMS);
        }
        assert_eq!(parts.len(), 3);
    }
}
