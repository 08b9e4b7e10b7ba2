//! One event: the EventBridge entry's `detail` (docs/events.schema.json describes it)
//! and the idempotency key that lets a consumer drop redeliveries.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use domain::membership::{ChangedBy, MembershipChange, Subject};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The entries' `source`: what a rule on the bus matches to get these events.
pub const SOURCE: &str = "segmentation";
/// `detail-type` of a change of a customer's segment.
pub const SEGMENT_CHANGED: &str = "customer.segment.changed";
/// `detail-type` of a change of one of a customer's cluster values.
pub const CLUSTER_CHANGED: &str = "customer.cluster.changed";
/// The `field` of a segment change: the customer attribute, as the API names it.
pub const SEGMENT_FIELD: &str = "segment_id";

/// The `detail` of one membership-change event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    /// `customer.segment.changed` or `customer.cluster.changed`; the entry's, not the
    /// detail's.
    #[serde(skip)]
    pub detail_type: &'static str,
    /// The same on every redelivery of this change, different for every other change.
    pub idempotency_key: String,
    pub tenant: String,
    pub customer_id: String,
    /// `segment_id`, or the cluster field's name.
    pub field: String,
    /// `null`: the customer was in no segment, or held no value of the field.
    pub old: Option<Value>,
    /// `null`: the customer left the segment or the value, or was deleted.
    pub new: Option<Value>,
    pub by: ChangedBy,
    /// When the change was written: the write's `updated_at`; for a deletion, the time
    /// the stream recorded it.
    pub at: DateTime<Utc>,
    /// The customer's version after the change; for a deletion, the deleted version.
    pub customer_version: u64,
    /// The stream record's sequence number: a customer's changes in the order they
    /// were written (compare as numbers: longer is later).
    pub sequence: String,
}

/// The facts of one stream record that every event of it shares.
#[derive(Debug, Clone)]
pub struct Written<'a> {
    pub tenant: &'a str,
    pub customer_id: &'a str,
    /// The stream's ARN: sequence numbers are unique within one stream only.
    pub stream: &'a str,
    pub sequence: &'a str,
    pub at: DateTime<Utc>,
    pub customer_version: u64,
}

impl ChangeEvent {
    /// The event of `change`, made by the write described by `written`.
    pub fn new(written: &Written, change: MembershipChange) -> Self {
        let (detail_type, field) = match change.subject {
            Subject::Segment => (SEGMENT_CHANGED, SEGMENT_FIELD.to_owned()),
            Subject::Cluster(field) => (CLUSTER_CHANGED, field),
        };
        Self {
            idempotency_key: idempotency_key(written, detail_type, &field),
            detail_type,
            tenant: written.tenant.to_owned(),
            customer_id: written.customer_id.to_owned(),
            field,
            old: change.old,
            new: change.new,
            by: change.by,
            at: written.at,
            customer_version: written.customer_version,
            sequence: written.sequence.to_owned(),
        }
    }
}

/// SHA-256 (hex) of what identifies one change: the tenant, the customer, the stream
/// record that carried the write (stream and sequence number, the same on every
/// redelivery) and what changed (detail type and field). Each part is length-prefixed,
/// so no two sets of parts give the same input.
pub fn idempotency_key(written: &Written, detail_type: &str, field: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        written.tenant,
        written.customer_id,
        written.stream,
        written.sequence,
        detail_type,
        field,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(sequence: &'static str) -> Written<'static> {
        Written {
            tenant: "acme",
            customer_id: "c1",
            stream: "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-01-01T00:00:00.000",
            sequence,
            at: DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
                .unwrap()
                .into(),
            customer_version: 4,
        }
    }

    #[test]
    fn the_key_is_stable_for_one_change_and_differs_for_any_other() {
        let key = idempotency_key(&written("100"), CLUSTER_CHANGED, "tier");
        // Pinned: consumers compare keys across deployments, so the derivation must not
        // move (the same SHA-256 as Python's over the length-prefixed parts).
        assert_eq!(
            key,
            "17bbf40f24a0d016beb6ccd9f4a4a84137388f164a288ecad8536b69558bc2cf"
        );
        let others = [
            idempotency_key(&written("101"), CLUSTER_CHANGED, "tier"),
            idempotency_key(&written("100"), CLUSTER_CHANGED, "distributor"),
            idempotency_key(&written("100"), SEGMENT_CHANGED, "tier"),
            idempotency_key(
                &Written {
                    tenant: "acme2",
                    ..written("100")
                },
                CLUSTER_CHANGED,
                "tier",
            ),
            // Parts cannot run into each other.
            idempotency_key(
                &Written {
                    tenant: "acmec",
                    customer_id: "1",
                    ..written("100")
                },
                CLUSTER_CHANGED,
                "tier",
            ),
        ];
        for other in others {
            assert_ne!(other, key);
        }
    }

    #[test]
    fn the_detail_names_the_change_and_who_made_it() {
        let event = ChangeEvent::new(
            &written("100"),
            MembershipChange {
                subject: Subject::Segment,
                old: None,
                new: Some(json!("s1")),
                by: ChangedBy::Client,
            },
        );
        assert_eq!(event.detail_type, SEGMENT_CHANGED);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({
                "idempotency_key": event.idempotency_key,
                "tenant": "acme",
                "customer_id": "c1",
                "field": "segment_id",
                "old": null,
                "new": "s1",
                "by": {"kind": "client"},
                "at": "2026-03-01T10:00:00Z",
                "customer_version": 4,
                "sequence": "100",
            })
        );
    }
}
