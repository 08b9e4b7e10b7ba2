//! The events function's handler: a DynamoDB Streams batch of customer writes in, one
//! event per segment or cluster value each write changed out on the bus, the batch's
//! failures back to the event source.
//!
//! Guarantees:
//! - at least once: a record is reported as failed unless every event of it was
//!   accepted by the bus, so Lambda delivers it again (and the records after it of its
//!   shard: it retries from the lowest failed sequence number); a redelivered change
//!   has the same idempotency key, for consumers to drop;
//! - in order per customer: a batch's records are grouped by customer, and a customer's
//!   event is put only after all its earlier ones were accepted (a call holds at most one
//!   record of each customer); after a customer's first failed record none of its later
//!   events is put (they come again with the retry). Different customers' events share
//!   calls of up to 10 entries, and up to [`CONCURRENT_CALLS`] calls run at once. The bus
//!   itself does not promise to deliver in order: `sequence` in each event orders them;
//! - nothing for writes that change nothing: a write yields the changes of
//!   [`domain::membership`], none when its segment and cluster values stay.
//!
//! It reads nothing from the table: both images are in the record (the table's stream
//! is `NEW_AND_OLD_IMAGES`), and the item's `memberships` says which fields were cluster
//! fields at each write.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use domain::Customer;
use domain::membership::{Memberships, membership_changes};
use futures_util::future::join_all;
use serde_json::Value;
use store::{counts, keys};

use crate::detail::{ChangeEvent, Written};
use crate::publish::{Bus, Entry, MAX_ENTRIES};

/// Records per invocation, as declared on the event source mapping in `template.yaml`.
pub const BATCH_SIZE: usize = 100;
/// Retries of a failing record before it goes to the on-failure destination: more than
/// the assign function's, since a retry only repeats `PutEvents` calls (harmless, the
/// keys dedupe) and giving up loses the events.
pub const MAXIMUM_RETRY_ATTEMPTS: u32 = 10;
/// `PutEvents` calls in flight at once: a batch of [`BATCH_SIZE`] records that change
/// one value each is one round of calls.
pub const CONCURRENT_CALLS: usize = 10;

/// The event-source filter of `template.yaml`: every write of a customer item, created,
/// changed or deleted (membership rows and ledgers carry another `kind`, or none).
pub fn filter_patterns() -> Vec<Value> {
    keys::customer_record_patterns()
}

/// The events of one customer record, or why it has none it can publish.
type Decoded = Result<Vec<Entry>, RecordError>;

/// Why a customer record cannot be published; the record fails, not the batch.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("the record has no sequence number")]
    NoSequence,
    #[error("an image is not a customer: {0}")]
    NotACustomer(serde_dynamo::Error),
    #[error("an event cannot be written: {0}")]
    Unwritable(serde_json::Error),
}

/// A group's records still to put, each as its batch position and (part of) its entries.
type Parts<'a> = VecDeque<(usize, &'a [Entry])>;

/// A customer's records in the batch, in stream order.
struct Group {
    tenant: String,
    /// (position in the batch, its entries); ends at the first broken record.
    records: Vec<(usize, Vec<Entry>)>,
    /// The position of a record that cannot be decoded: the group's failure.
    broken: Option<usize>,
}

impl Group {
    fn entries(&self) -> usize {
        self.records.iter().map(|(_, e)| e.len()).sum()
    }
}

/// The warm state of the events function.
pub struct Publisher<B> {
    bus: Arc<B>,
}

impl<B> Clone for Publisher<B> {
    fn clone(&self) -> Self {
        Self {
            bus: self.bus.clone(),
        }
    }
}

impl<B: Bus> Publisher<B> {
    pub fn new(bus: B) -> Self {
        Self { bus: Arc::new(bus) }
    }

    /// Handles one batch; the response names the first failed record of every customer
    /// that had one.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let groups = group_records(&event.records);
        let lanes = lanes(&groups);
        let failures = join_all(lanes.iter().map(|lane| self.run_lane(&groups, lane))).await;
        let mut failed: Vec<usize> = groups.iter().filter_map(|g| g.broken).collect();
        failed.extend(failures.into_iter().flatten());
        store::stream::batch_item_failures(&event.records, failed)
    }

    /// Puts the entries of `lane`'s groups one call after the other, each call holding at
    /// most [`MAX_ENTRIES`] entries and at most one record of each group (its events are
    /// one write's), so a customer's event is put only once all its earlier events were
    /// accepted. Returns the first failed record of each group that had one; none of a
    /// group's later entries is put after it.
    async fn run_lane(&self, groups: &[Group], lane: &[usize]) -> Vec<usize> {
        // Each group's records still to put, split in parts that fit a call.
        let mut pending: Vec<(usize, Parts)> = lane
            .iter()
            .map(|&group| {
                let parts = groups[group]
                    .records
                    .iter()
                    .flat_map(|(position, entries)| {
                        entries
                            .chunks(MAX_ENTRIES)
                            .map(move |part| (*position, part))
                    })
                    .collect();
                (group, parts)
            })
            .collect();
        // Group -> its first failed record.
        let mut failed: HashMap<usize, usize> = HashMap::new();
        loop {
            let mut call: Vec<(usize, usize, &Entry)> = Vec::new();
            for (group, parts) in &mut pending {
                let group = *group;
                if failed.contains_key(&group) {
                    parts.clear();
                    continue;
                }
                if let Some((position, part)) = parts.front().copied()
                    && call.len() + part.len() <= MAX_ENTRIES
                {
                    call.extend(part.iter().map(|entry| (group, position, entry)));
                    parts.pop_front();
                }
            }
            if call.is_empty() {
                break;
            }
            let sent: Vec<Entry> = call.iter().map(|(_, _, entry)| (*entry).clone()).collect();
            match self.bus.put(&sent).await {
                Ok(results) => {
                    for ((group, position, _), refused) in call.iter().zip(results) {
                        if let Some(reason) = refused {
                            let tenant = &groups[*group].tenant;
                            tracing::warn!(tenant, position, reason, "an event was refused");
                            failed.entry(*group).or_insert(*position);
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, entries = call.len(), "a PutEvents call failed");
                    for (group, position, _) in &call {
                        failed.entry(*group).or_insert(*position);
                    }
                }
            }
        }
        failed.into_values().collect()
    }
}

/// Groups a batch's customer records by tenant and customer, in batch order, each
/// decoded into its entries; a group ends at its first record that cannot be decoded.
fn group_records(records: &[EventRecord]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for (position, record) in records.iter().enumerate() {
        let Some((tenant, customer_id, decoded)) = decode(record) else {
            tracing::debug!(sequence = ?record.change.sequence_number, "not a customer record");
            continue;
        };
        let slot = *index
            .entry((tenant.clone(), customer_id))
            .or_insert_with(|| {
                groups.push(Group {
                    tenant,
                    records: Vec::new(),
                    broken: None,
                });
                groups.len() - 1
            });
        let group = &mut groups[slot];
        if group.broken.is_some() {
            continue;
        }
        match decoded {
            Ok(entries) if entries.is_empty() => {}
            Ok(entries) => group.records.push((position, entries)),
            Err(reason) => {
                tracing::warn!(
                    tenant = group.tenant,
                    position,
                    reason = %reason,
                    "a record cannot be published"
                );
                group.broken = Some(position);
            }
        }
    }
    groups
}

/// Splits the groups into lanes of about equal entries, as few as fill calls of
/// [`MAX_ENTRIES`] and at most [`CONCURRENT_CALLS`]; a group is in one lane only, so its
/// entries keep their order.
fn lanes(groups: &[Group]) -> Vec<Vec<usize>> {
    let total: usize = groups.iter().map(Group::entries).sum();
    let count = total.div_ceil(MAX_ENTRIES).min(CONCURRENT_CALLS);
    let mut lanes: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); count];
    for (index, group) in groups.iter().enumerate() {
        let size = group.entries();
        if size == 0 {
            continue;
        }
        if let Some(lane) = lanes.iter_mut().min_by_key(|(load, _)| *load) {
            lane.0 += size;
            lane.1.push(index);
        }
    }
    lanes.into_iter().map(|(_, lane)| lane).collect()
}

/// The tenant, customer id and entries of a customer record; `None` for any other record.
fn decode(record: &EventRecord) -> Option<(String, String, Decoded)> {
    let key = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => s.as_str(),
        _ => "",
    };
    let (tenant, customer_id) = keys::parse_customer_key(key(keys::PK), key(keys::SK))?;
    let (old, new) = match record.event_name.as_str() {
        "INSERT" => (None, Some(&record.change.new_image)),
        "MODIFY" => (
            Some(&record.change.old_image),
            Some(&record.change.new_image),
        ),
        "REMOVE" => (Some(&record.change.old_image), None),
        _ => return None,
    };
    let entries = entries(record, tenant, customer_id, old, new);
    Some((tenant.to_owned(), customer_id.to_owned(), entries))
}

/// The entries of one customer write, from its old and new images.
fn entries(
    record: &EventRecord,
    tenant: &str,
    customer_id: &str,
    old: Option<&serde_dynamo::Item>,
    new: Option<&serde_dynamo::Item>,
) -> Decoded {
    let sequence = record
        .change
        .sequence_number
        .as_deref()
        .ok_or(RecordError::NoSequence)?;
    let decode = |image: &serde_dynamo::Item| -> Result<(Customer, Memberships), RecordError> {
        let customer: Customer =
            serde_dynamo::from_item(image.clone()).map_err(RecordError::NotACustomer)?;
        let clusters = counts::cluster_fields(image);
        let memberships = customer.memberships(clusters.iter().map(String::as_str));
        Ok((customer, memberships))
    };
    let before = old.map(decode).transpose()?;
    let after = new.map(decode).transpose()?;
    let changes = membership_changes(
        before.as_ref().map_or(&Memberships::default(), |(_, m)| m),
        after.as_ref().map(|(customer, m)| (customer, m)),
    );
    let (at, customer_version) = match (&after, &before) {
        (Some((customer, _)), _) => (customer.updated_at, customer.version),
        (None, Some((customer, _))) => (
            record.change.approximate_creation_date_time,
            customer.version,
        ),
        (None, None) => return Ok(Vec::new()),
    };
    let written = Written {
        tenant,
        customer_id,
        stream: record.event_source_arn.as_deref().unwrap_or_default(),
        sequence,
        at,
        customer_version,
    };
    changes
        .into_iter()
        .map(|change| Entry::of(&ChangeEvent::new(&written, change)))
        .collect::<Result<_, _>>()
        .map_err(RecordError::Unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::PublishError;
    use serde_json::json;
    use std::sync::Mutex;

    type Refuse = Box<dyn Fn(&Value) -> bool + Send + Sync>;
    /// Every call: the details sent, each with whether the bus refused it.
    type Calls = Vec<Vec<(Value, bool)>>;

    /// A bus that records every call (the details sent, and which it refused) and refuses
    /// entries, or fails whole calls, as a test says.
    struct FakeBus {
        calls: Arc<Mutex<Calls>>,
        refuse: Refuse,
        fail_call: Refuse,
    }

    impl Bus for FakeBus {
        async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, PublishError> {
            assert!(!entries.is_empty() && entries.len() <= MAX_ENTRIES);
            let details: Vec<Value> = entries
                .iter()
                .map(|e| serde_json::from_str(&e.detail).unwrap())
                .collect();
            if details.iter().any(|d| (self.fail_call)(d)) {
                let sent = details.into_iter().map(|d| (d, true)).collect();
                self.calls.lock().unwrap().push(sent);
                return Err(PublishError("the bus is down".into()));
            }
            let refused: Vec<bool> = details.iter().map(|d| (self.refuse)(d)).collect();
            let results = refused
                .iter()
                .map(|r| r.then(|| "Throttled".into()))
                .collect();
            let sent = details.into_iter().zip(refused).collect();
            self.calls.lock().unwrap().push(sent);
            Ok(results)
        }
    }

    struct Run {
        calls: Calls,
        failures: Vec<String>,
    }

    impl Run {
        /// Every accepted event as (customer, sequence, field, new), in call order.
        fn accepted(&self) -> Vec<(String, String, String, Value)> {
            self.calls
                .iter()
                .flatten()
                .filter(|(_, refused)| !refused)
                .map(|(d, _)| {
                    let text = |name: &str| d[name].as_str().unwrap().to_owned();
                    (
                        text("customer_id"),
                        text("sequence"),
                        text("field"),
                        d["new"].clone(),
                    )
                })
                .collect()
        }
    }

    async fn publish(records: Vec<EventRecord>, refuse: Refuse, fail_call: Refuse) -> Run {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let publisher = Publisher::new(FakeBus {
            calls: calls.clone(),
            refuse,
            fail_call,
        });
        let mut event = Event::default();
        event.records = records;
        let failures = publisher
            .handle(event)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier.unwrap())
            .collect();
        let calls = calls.lock().unwrap().clone();
        Run { calls, failures }
    }

    fn never() -> Refuse {
        Box::new(|_| false)
    }

    fn seq(n: usize) -> String {
        format!("{n:021}")
    }

    /// A customer item's image: its segment, its fields, which of them are cluster
    /// fields (in `memberships`), its writer and version.
    fn image(
        id: &str,
        segment: Option<&str>,
        fields: Value,
        clusters: &[&str],
        version: u64,
    ) -> Value {
        let mut memberships: Vec<String> = segment.map(|s| format!("S#{s}")).into_iter().collect();
        for field in clusters {
            if let Some(value) = fields.get(*field) {
                memberships.push(format!("C#{field}#2026-01-01T00:00:00Z#{value}"));
            }
        }
        json!({
            "pk": keys::customer_home("acme", id), "sk": format!("CUSTOMER#{id}"),
            "kind": "customer", "id": id, "email": format!("{id}@x.io"),
            "segment_id": segment, "fields": fields, "written_by": "api",
            "version": version, "memberships": memberships,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
        })
    }

    fn record(
        name: &str,
        id: &str,
        old: Option<Value>,
        new: Option<Value>,
        n: usize,
    ) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_name = name.into();
        record.event_source_arn = Some("arn:aws:dynamodb:us-east-1:1:table/t/stream/x".into());
        record.change.keys = serde_dynamo::to_item(json!({
            "pk": keys::customer_home("acme", id), "sk": format!("CUSTOMER#{id}"),
        }))
        .unwrap();
        if let Some(old) = old {
            record.change.old_image = serde_dynamo::to_item(old).unwrap();
        }
        if let Some(new) = new {
            record.change.new_image = serde_dynamo::to_item(new).unwrap();
        }
        record.change.sequence_number = Some(seq(n));
        record
    }

    /// A write of customer `id` that moves its `tier` from `from` to `to`.
    fn tier(id: &str, from: &str, to: &str, n: usize) -> EventRecord {
        let side =
            |value: &str, version| image(id, None, json!({ "tier": value }), &["tier"], version);
        record("MODIFY", id, Some(side(from, 1)), Some(side(to, 2)), n)
    }

    #[tokio::test]
    async fn each_real_change_is_one_event_and_writes_that_change_nothing_are_none() {
        let member = image(
            "c1",
            Some("s1"),
            json!({"tier": "AA", "vat": "1"}),
            &["tier"],
            1,
        );
        let mut renamed = member.clone();
        renamed["first_name"] = json!("Ann");
        renamed["fields"]["vat"] = json!("2");
        renamed["version"] = json!(2);
        let mut moved = renamed.clone();
        moved["fields"]["tier"] = json!("A");
        moved["version"] = json!(3);
        let plain = image("c2", None, json!({"vat": "1"}), &["tier"], 1);
        let gone = image("c3", None, json!({"tier": "B"}), &["tier"], 7);
        let mut membership_row = record("INSERT", "c1", None, Some(json!({})), 6);
        membership_row.change.keys = serde_dynamo::to_item(json!({
            "pk": keys::cluster_members("acme", "tier", "AA", 3), "sk": "CUSTOMER#c1",
        }))
        .unwrap();
        let records = vec![
            record("INSERT", "c1", None, Some(member.clone()), 1),
            record("MODIFY", "c1", Some(member), Some(renamed.clone()), 2),
            record("MODIFY", "c1", Some(renamed), Some(moved), 3),
            record("INSERT", "c2", None, Some(plain), 4),
            record("REMOVE", "c3", Some(gone), None, 5),
            membership_row,
        ];
        let run = publish(records, never(), never()).await;
        assert!(run.failures.is_empty());
        let c1 = |n, field: &str, new| ("c1".to_owned(), seq(n), field.to_owned(), new);
        assert_eq!(
            run.accepted(),
            [
                c1(1, "segment_id", json!("s1")),
                c1(1, "tier", json!("AA")),
                ("c3".into(), seq(5), "tier".into(), Value::Null),
                c1(3, "tier", json!("A")),
            ]
        );
        assert_eq!(run.calls.len(), 2, "c1's second change waits for its first");
        let removal = &run.calls[0][2].0;
        assert_eq!(
            (&removal["old"], removal["customer_version"].as_u64()),
            (&json!("B"), Some(7))
        );
        assert_eq!(run.calls[1][0].0["old"], "AA");
    }

    #[tokio::test]
    async fn calls_hold_at_most_ten_entries_and_keep_each_customers_order() {
        let mut records = Vec::new();
        for round in 0..2 {
            for c in 0..60 {
                let (from, to) = if round == 0 { ("B", "A") } else { ("A", "AA") };
                records.push(tier(&format!("c{c}"), from, to, round * 60 + c));
            }
        }
        let run = publish(records, never(), never()).await;
        assert!(run.failures.is_empty());
        let accepted = run.accepted();
        assert_eq!(accepted.len(), 120, "each change once");
        // 120 entries in 10 lanes of 12: two rounds of calls, since a customer's second
        // change waits for its first.
        assert_eq!(run.calls.len(), 20);
        for c in 0..60 {
            let id = format!("c{c}");
            let mine: Vec<&Value> = accepted
                .iter()
                .filter(|a| a.0 == id)
                .map(|a| &a.3)
                .collect();
            assert_eq!(mine, [&json!("A"), &json!("AA")], "{id}");
        }
    }

    #[tokio::test]
    async fn a_refused_event_fails_its_record_and_holds_back_the_customers_later_events() {
        let records = vec![
            tier("c1", "B", "A", 0),
            tier("c2", "B", "A", 1),
            tier("c1", "A", "AA", 2),
            tier("c2", "A", "AA", 3),
            tier("c1", "AA", "B", 4),
        ];
        let refuse: Refuse = Box::new(|d| d["sequence"] == seq(2));
        let run = publish(records, refuse, never()).await;
        assert_eq!(run.failures, [seq(2)]);
        let sequences: Vec<String> = run.accepted().into_iter().map(|a| a.1).collect();
        assert_eq!(
            sequences,
            [seq(0), seq(1), seq(3)],
            "c1's record 4 is not put"
        );

        // A failed call fails the first record of each customer in it, and nothing
        // of theirs is put after it.
        let records = vec![
            tier("c1", "B", "A", 0),
            tier("c2", "B", "A", 1),
            tier("c1", "A", "AA", 2),
        ];
        let run = publish(records, never(), Box::new(|_| true)).await;
        assert_eq!(run.failures, [seq(0), seq(1)]);
        assert_eq!(run.calls.len(), 1);
    }

    #[tokio::test]
    async fn a_broken_image_fails_its_record_after_the_customers_earlier_events() {
        let mut broken = tier("c1", "A", "AA", 1);
        broken.change.new_image = serde_dynamo::to_item(json!({ "kind": "customer" })).unwrap();
        let records = vec![tier("c1", "B", "A", 0), broken, tier("c1", "AA", "B", 2)];
        let run = publish(records, never(), never()).await;
        assert_eq!(run.failures, [seq(1)]);
        let sequences: Vec<String> = run.accepted().into_iter().map(|a| a.1).collect();
        assert_eq!(sequences, [seq(0)]);
    }

    #[tokio::test]
    async fn a_redelivered_record_carries_the_same_keys() {
        let key_of = |run: &Run| run.calls[0][0].0["idempotency_key"].clone();
        let first = publish(vec![tier("c1", "B", "A", 0)], never(), never()).await;
        let again = publish(vec![tier("c1", "B", "A", 0)], never(), never()).await;
        let next = publish(vec![tier("c1", "B", "A", 1)], never(), never()).await;
        assert_eq!(key_of(&first), key_of(&again));
        assert_ne!(key_of(&first), key_of(&next));
    }
}
