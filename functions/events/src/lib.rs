//! Membership-change events: every change of a customer's segment or of a cluster value
//! that takes effect (by a client, an import, a rule, a backfill or a repair) becomes one
//! event on an EventBridge bus, so downstream tools learn of it without polling
//! (docs/events.md).
//!
//! The events function is the table stream's second reader ([`stream`]: filters, batch
//! size, retries, the handler); it reads nothing from the table. What a write changed
//! is domain logic ([`domain::membership`]); the event's shape and idempotency key are
//! [`detail`]; putting events on the bus is [`publish`].

pub mod detail;
pub mod publish;
pub mod stream;

pub use detail::{CLUSTER_CHANGED, ChangeEvent, SEGMENT_CHANGED, SOURCE};
pub use publish::{Bus, EventBridge, PublishError};
pub use stream::Publisher;

/// The bus the events go to: `EVENT_BUS_NAME` (required; `template.yaml` sets it).
pub fn bus_name_from_env() -> Result<String, store::ConfigError> {
    std::env::var("EVENT_BUS_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .ok_or(store::ConfigError::Missing("EVENT_BUS_NAME"))
}
