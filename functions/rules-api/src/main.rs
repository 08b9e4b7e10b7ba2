//! The `rules-api` Lambda: wiring only; the `api` crate handles requests.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::run(api::Function::Rules).await
}
