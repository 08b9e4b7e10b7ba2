//! The rules API: tenant rule modules (`/rules`), their backfills, and the API's
//! OpenAPI description. Its own crate because it embeds wasmtime (through
//! `evaluation`), which the other HTTP functions do not link; the plumbing (routing,
//! tenant, problems) is the `api` crate's, driven with this crate's [`App`].

mod backfill;
mod rules;

use std::sync::OnceLock;

use api::doc::{Body, Doc};
use api::handler;
use api::http::{Call, Reply};
use api::problem::ApiError;
use api::route::{self, Endpoint, Function, Route, Tables};
use lambda_http::http::StatusCode;
use lambda_http::{Request, Response};
use serde_json::Value;
use store::Store;

/// The routes this crate serves, one table per module.
pub const ROUTES: Tables<App> = &[rules::ROUTES, backfill::ROUTES, DESCRIPTION];

/// Served here because only this function links every handler crate, so only here is
/// the whole route list (and so the whole description) known.
const DESCRIPTION: &[Route<App>] = &[Route::new(
    Function::Rules,
    "GET",
    "/openapi.json",
    Doc::new("OpenApi", "This API's OpenAPI 3.1 description")
        .answers(200, Body::Document)
        .public(),
    handler!(describe),
)];

/// Every endpoint of every HTTP function: the template check, the local gateway and the
/// OpenAPI description read this list.
pub fn endpoints() -> impl Iterator<Item = &'static Endpoint> + Clone {
    route::all(api::ROUTES)
        .map(|r| &r.endpoint)
        .chain(route::all(ROUTES).map(|r| &r.endpoint))
}

async fn describe(_: &App, _: Call) -> Result<Reply, ApiError> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| api::openapi::document(endpoints()));
    Reply::json(StatusCode::OK, document)
}

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Api(#[from] api::StartError),
    #[error(transparent)]
    Engine(#[from] rule_engine::EngineError),
}

/// The warm state: the shared [`api::App`] plus the wasm engine and module loading.
#[derive(Clone)]
pub struct App {
    api: api::App,
    store: Store,
    runner: evaluation::Runner,
}

impl api::State for App {
    fn app(&self) -> &api::App {
        &self.api
    }
}

impl App {
    pub fn new(api: api::App) -> Result<Self, StartError> {
        let store = api.store().clone();
        let runner = evaluation::Runner::new(store.clone())?;
        Ok(Self { api, store, runner })
    }

    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(api::App::from_env().await?)
    }

    /// The rule runner, shared with the local stream poller so one process holds one engine.
    pub fn runner(&self) -> &evaluation::Runner {
        &self.runner
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves any route of any HTTP function (the local server; on AWS, API Gateway
    /// sends each function only its own routes).
    pub async fn handle_any(&self, request: Request) -> Response<lambda_http::Body> {
        if route::serves(route::all(ROUTES), request.uri().path()) {
            api::serve(self, ROUTES, None, request).await
        } else {
            self.api.handle(None, request).await
        }
    }

    /// Serves `function`'s routes only, as that Lambda does behind API Gateway.
    pub async fn handle(
        &self,
        function: Function,
        request: Request,
    ) -> Response<lambda_http::Body> {
        if function == Function::Rules {
            api::serve(self, ROUTES, Some(function), request).await
        } else {
            self.api.handle(Some(function), request).await
        }
    }
}

/// The `rules-api` Lambda.
pub async fn run() -> Result<(), lambda_http::Error> {
    logging::init();
    let app = App::from_env().await?;
    api::run_lambda(Function::Rules, app, ROUTES).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_every_reference_is_described() {
        let doc = api::openapi::document(endpoints());
        for endpoint in endpoints() {
            let method = endpoint.method.to_ascii_lowercase();
            let operation = &doc["paths"][endpoint.path][&method];
            assert!(
                operation.is_object(),
                "{} {} missing",
                endpoint.method,
                endpoint.path
            );
            assert_eq!(operation["operationId"], endpoint.doc.id);
        }
        let ids: std::collections::BTreeSet<_> = endpoints().map(|e| e.doc.id).collect();
        assert_eq!(ids.len(), endpoints().count(), "operation ids are unique");
        let text = doc.to_string();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name: String = reference.chars().take_while(|c| *c != '"').collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "{name} undefined"
            );
        }
    }
}
