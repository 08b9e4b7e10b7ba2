//! Putting events on the bus: the [`Bus`] the handler publishes through, and its
//! EventBridge implementation ([`EventBridge`], `PutEvents`).

use std::future::Future;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::detail::{ChangeEvent, SOURCE};

/// The most entries one `PutEvents` call takes.
pub const MAX_ENTRIES: usize = 10;

/// One entry of a `PutEvents` call, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub detail_type: &'static str,
    /// The event's JSON.
    pub detail: String,
    pub time: chrono::DateTime<chrono::Utc>,
}

impl Entry {
    pub fn of(event: &ChangeEvent) -> Result<Self, serde_json::Error> {
        Ok(Self {
            detail_type: event.detail_type,
            detail: serde_json::to_string(event)?,
            time: event.at,
        })
    }
}

/// The whole call failed: nothing of it may be taken as published.
#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct PublishError(pub String);

/// Where the handler puts events. A trait so that the handler's batching, ordering and
/// failure reporting are tested without a bus.
pub trait Bus: Send + Sync + 'static {
    /// Puts at most [`MAX_ENTRIES`] entries in one call and answers, entry by entry in
    /// the same order, why the bus refused it (`None`: accepted).
    fn put(
        &self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PublishError>> + Send;
}

/// An EventBridge bus, by name.
#[derive(Debug, Clone)]
pub struct EventBridge {
    client: Client,
    bus_name: String,
}

impl EventBridge {
    /// A client with the store's SDK settings ([`store::StoreConfig::sdk_config`]: TLS,
    /// timeouts, retries; locally the DynamoDB-API server's endpoint, which moto serves
    /// EventBridge on too).
    pub async fn connect(config: &store::StoreConfig, bus_name: impl Into<String>) -> Self {
        Self {
            client: Client::new(&config.sdk_config().await),
            bus_name: bus_name.into(),
        }
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Creates the bus unless it exists: the local stack does, as it creates the table;
    /// on AWS the template creates it.
    pub async fn ensure_bus(&self) -> Result<(), PublishError> {
        let created = self
            .client
            .create_event_bus()
            .name(&self.bus_name)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(PublishError(DisplayErrorContext(&err).to_string())),
        }
    }
}

impl Bus for EventBridge {
    async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, PublishError> {
        let mut call = self.client.put_events();
        for entry in entries {
            call = call.entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(SOURCE)
                    .detail_type(entry.detail_type)
                    .detail(&entry.detail)
                    .time(DateTime::from_millis(entry.time.timestamp_millis()))
                    .build(),
            );
        }
        let output = call
            .send()
            .await
            .map_err(|err| PublishError(DisplayErrorContext(&err).to_string()))?;
        let results = output.entries.unwrap_or_default();
        // An answer without an entry's result does not say it was accepted.
        Ok((0..entries.len())
            .map(|i| match results.get(i) {
                Some(result) => result.error_code.as_ref().map(|code| {
                    let message = result.error_message.as_deref().unwrap_or_default();
                    format!("{code}: {message}")
                }),
                None => Some("no result for the entry".into()),
            })
            .collect())
    }
}
