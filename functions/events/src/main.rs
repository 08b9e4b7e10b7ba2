//! The `events` Lambda: wiring only; `events::stream` handles the batches.

use aws_lambda_events::event::dynamodb::Event;
use events::{EventBridge, Publisher};
use lambda_runtime::{LambdaEvent, service_fn};
use store::StoreConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    // The store's SDK settings; the function reads nothing from the table.
    let bus = EventBridge::connect(&StoreConfig::from_env()?, events::bus_name_from_env()?).await;
    let publisher = Publisher::new(bus);
    tracing::info!("ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let publisher = publisher.clone();
        async move { Ok::<_, lambda_runtime::Error>(publisher.handle(event.payload).await) }
    }))
    .await
}
