//! Everything the HTTP Lambda functions share: configuration, tenant authentication,
//! routing, handlers and the mapping of errors to problem responses. Each function's
//! `main.rs` only calls [`run`] with its [`Function`]; the local server calls
//! [`App::handle`] for all of them.

#[cfg(feature = "rules")]
mod backfill;
mod clusters;
mod cursor;
mod customers;
mod fields;
pub mod http;
mod listing;
pub mod openapi;
pub mod problem;
pub mod routes;
#[cfg(feature = "rules")]
mod rules;
mod sales;
mod segments;
mod spreadsheet;

use std::convert::Infallible;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use store::{ConfigError, Store, StoreConfig};
use tracing::Instrument;

use crate::cursor::CursorSigner;
use crate::http::{Call, Reply, problem_response};
use crate::problem::ApiError;
pub use crate::routes::{Function, Op, ROUTES, Route};

/// Settings read once per container.
#[derive(Debug, Clone)]
pub struct Config {
    /// The JWT claim that names the tenant (`TENANT_CLAIM`, default `tenant_id`).
    pub tenant_claim: String,
    /// Key for signing page cursors (`CURSOR_SECRET`); the same for every container.
    pub cursor_secret: String,
    pub store: StoreConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cursor_secret =
            std::env::var("CURSOR_SECRET").map_err(|_| ConfigError::Missing("CURSOR_SECRET"))?;
        if cursor_secret.len() < 16 {
            return Err(ConfigError::Invalid {
                name: "CURSOR_SECRET",
                why: "must be at least 16 characters",
            });
        }
        Ok(Self {
            tenant_claim: std::env::var("TENANT_CLAIM").unwrap_or_else(|_| "tenant_id".into()),
            cursor_secret,
            store: StoreConfig::from_env()?,
        })
    }
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The wasm engine could not be built (the builds that serve rules).
    #[cfg(feature = "rules")]
    #[error(transparent)]
    Engine(#[from] rule_engine::EngineError),
}

/// The warm state of a function: configuration and the database client.
#[derive(Clone)]
pub struct App {
    config: Config,
    store: Store,
    cursors: CursorSigner,
    /// The wasm engine and module loading, in the builds that serve rules (feature `rules`).
    #[cfg(feature = "rules")]
    runner: evaluation::Runner,
}

impl App {
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let store = Store::connect(&config.store).await;
        let cursors = CursorSigner::new(config.cursor_secret.as_bytes());
        Ok(Self {
            config,
            #[cfg(feature = "rules")]
            runner: evaluation::Runner::new(store.clone())?,
            store,
            cursors,
        })
    }

    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(Config::from_env()?).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rule runner, shared with the local stream poller so one process holds one engine.
    #[cfg(feature = "rules")]
    pub fn runner(&self) -> &evaluation::Runner {
        &self.runner
    }

    /// Serves any route of any function (the local server).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        self.respond(None, request).await
    }

    /// Serves only `function`'s routes, as that Lambda does behind API Gateway.
    pub async fn handle_function(&self, function: Function, request: Request) -> Response<Body> {
        self.respond(Some(function), request).await
    }

    async fn respond(&self, only: Option<Function>, request: Request) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let request_id = request_context(&request)
            .and_then(|c| c.request_id.clone())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "request",
            request_id,
            method = %request.method(),
            path,
            tenant = tracing::field::Empty
        );
        let result = self.route(only, request).instrument(span.clone()).await;
        let response = match result {
            Ok(reply) => reply.into_response(),
            Err(err) => span.in_scope(|| problem_response(&err, &path)),
        };
        span.in_scope(|| tracing::info!(status = response.status().as_u16(), "handled"));
        response
    }

    async fn route(&self, only: Option<Function>, request: Request) -> Result<Reply, ApiError> {
        let (route, params) = routes::find(request.method().as_str(), request.uri().path(), only)?;
        if route.op == Op::OpenApi {
            return Reply::json(lambda_http::http::StatusCode::OK, &openapi::document());
        }
        let tenant = tenant_of(&request, &self.config.tenant_claim)?;
        tracing::Span::current().record("tenant", tenant.as_str());
        let query = request
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let (parts, body) = request.into_parts();
        let call = Call {
            tenant,
            params,
            query,
            headers: parts.headers,
            body: body.to_vec(),
        };
        self.dispatch_retrying(route.op, call).await
    }

    /// A write without `If-Match` means "apply this to whatever is current": when another
    /// write wins the race in between, the handler re-reads and applies it again instead
    /// of answering 412 to a client that set no precondition.
    async fn dispatch_retrying(&self, op: Op, call: Call) -> Result<Reply, ApiError> {
        const ATTEMPTS: usize = 4;
        if call
            .headers
            .contains_key(lambda_http::http::header::IF_MATCH)
            || !op.retries_on_conflict()
        {
            return self.dispatch(op, call).await;
        }
        for _ in 1..ATTEMPTS {
            match self.dispatch(op, call.clone()).await {
                Err(ApiError::PreconditionFailed) => continue,
                other => return other,
            }
        }
        match self.dispatch(op, call).await {
            Err(ApiError::PreconditionFailed) => Err(ApiError::Conflict {
                detail: "the resource kept changing while this request was applied; retry it"
                    .into(),
                extra: None,
            }),
            other => other,
        }
    }

    async fn dispatch(&self, op: Op, call: Call) -> Result<Reply, ApiError> {
        match op {
            Op::ListSegments => segments::list(self, call).await,
            Op::CreateSegment => segments::create(self, call).await,
            Op::GetSegment => segments::get(self, call).await,
            Op::UpdateSegment => segments::update(self, call).await,
            Op::DeleteSegment => segments::delete(self, call).await,
            Op::ListFields => fields::list(self, call).await,
            Op::CreateField => fields::create(self, call).await,
            Op::GetField => fields::get(self, call).await,
            Op::UpdateField => fields::update(self, call).await,
            Op::DeleteField => fields::delete(self, call).await,
            Op::ListCustomers => customers::list(self, call).await,
            Op::CreateCustomer => customers::create(self, call).await,
            Op::GetCustomer => customers::get(self, call).await,
            Op::ReplaceCustomer => customers::replace(self, call).await,
            Op::UpdateCustomer => customers::update(self, call).await,
            Op::DeleteCustomer => customers::delete(self, call).await,
            Op::GetCustomerClusters => customers::clusters(self, call).await,
            Op::ImportCustomers => spreadsheet::import(self, call).await,
            Op::ExportCustomers => spreadsheet::export(self, call).await,
            Op::RecordSale => sales::record(self, call).await,
            Op::ListSales => sales::list(self, call).await,
            Op::AnnualSalesReport => sales::annual_report(self, call).await,
            Op::ListClusters => clusters::list(self, call).await,
            Op::ListClusterMembers => clusters::members(self, call).await,
            Op::OpenApi => unreachable!("answered above"),
            #[cfg(feature = "rules")]
            rule_op => self.route_rules(rule_op, call).await,
            #[cfg(not(feature = "rules"))]
            _ => Err(ApiError::NotFound(format!(
                "{} is served by the rules function",
                call.param(0)
            ))),
        }
    }

    #[cfg(feature = "rules")]
    async fn route_rules(&self, op: Op, call: Call) -> Result<Reply, ApiError> {
        match op {
            Op::ListRules => rules::list(self, call).await,
            Op::GetRule => rules::get(self, call).await,
            Op::PutRule => rules::put(self, call).await,
            Op::UpdateRule => rules::update(self, call).await,
            Op::DeleteRule => rules::delete(self, call).await,
            Op::UploadModule => rules::upload(self, call).await,
            Op::ListRuleVersions => rules::versions(self, call).await,
            Op::GetRuleVersion => rules::version(self, call).await,
            Op::TestRule => rules::test(self, call).await,
            Op::StartBackfill => backfill::create(self, call).await,
            Op::ListBackfills => backfill::list(self, call).await,
            Op::GetBackfill => backfill::get(self, call).await,
            Op::ResumeBackfill => backfill::resume(self, call).await,
            other => Err(ApiError::Internal(format!(
                "{other:?} is not a rules operation"
            ))),
        }
    }
}

fn request_context(
    request: &Request,
) -> Option<&lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => Some(context),
        _ => None,
    }
}

/// The tenant named by the verified JWT claims that API Gateway's authorizer put in the
/// request context. Headers and bodies are never consulted.
fn tenant_of(request: &Request, claim: &str) -> Result<String, ApiError> {
    let tenant = request_context(request)
        .and_then(|c| c.authorizer.as_ref())
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get(claim))
        .ok_or(ApiError::Unauthorized)?;
    if !domain::ids::is_valid_tenant_id(tenant) {
        return Err(ApiError::Unauthorized);
    }
    Ok(tenant.clone())
}

/// The Lambda entry point of one HTTP function: JSON logs, one warm [`App`], and the
/// lambda_http runtime loop.
pub async fn run(function: Function) -> Result<(), lambda_http::Error> {
    logging::init();
    let app = App::from_env().await?;
    tracing::info!(
        function = function.name(),
        table = app.store.table_name(),
        "ready"
    );
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle_function(function, request).await) }
    }))
    .await
}
