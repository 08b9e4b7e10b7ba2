//! The `console` Lambda: the back-office console's files, served on the HTTP API
//! without the authorizer (the console signs in itself and calls the API with a token).

use std::convert::Infallible;

use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let console = console::Console::from_env();
    tracing::info!(function = "console", "ready");
    lambda_http::run(service_fn(move |request: Request| {
        let answer = console.respond(
            request.method().as_str(),
            request.uri().path(),
            request.headers(),
        );
        async move { Ok::<_, Infallible>(answer) }
    }))
    .await
}
