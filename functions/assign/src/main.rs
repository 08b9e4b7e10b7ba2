//! The `assign` Lambda: wiring only; `evaluation::stream` handles the batches.

use aws_lambda_events::event::dynamodb::Event;
use evaluation::{Runner, stream::Assigner};
use lambda_runtime::{LambdaEvent, service_fn};
use store::{Store, StoreConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let store = Store::connect(&StoreConfig::from_env()?).await;
    let assigner = Assigner::new(Runner::new(store)?);
    tracing::info!("ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let assigner = assigner.clone();
        async move { Ok::<_, lambda_runtime::Error>(Box::pin(assigner.handle(event.payload)).await) }
    }))
    .await
}
