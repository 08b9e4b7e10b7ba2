//! The `rules-api` Lambda: wiring only; the crate's library handles requests.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rules_api::run().await
}
