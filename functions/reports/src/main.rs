//! The `reports` Lambda: wiring only; the `api` crate handles requests.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::run(api::Function::Reports).await
}
