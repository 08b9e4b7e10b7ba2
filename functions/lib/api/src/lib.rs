//! Everything the HTTP Lambda functions share: configuration, tenant authentication,
//! routing, problem responses, and the handlers of the segments, fields, customers and
//! reports functions. Each route is declared beside its handler ([`route`]); a
//! function's `main.rs` only calls [`run`] with its [`Function`]. The rules API (the
//! `rules-api` crate) serves its own routes through [`serve`] with its own state.

mod clusters;
mod cursor;
pub mod customers;
pub mod doc;
mod fields;
pub mod http;
mod listing;
pub mod openapi;
pub mod problem;
pub mod route;
mod sales;
mod segments;
mod spreadsheet;

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use store::{ConfigError, Store, StoreConfig};
use tracing::Instrument;

use crate::cursor::CursorSigner;
use crate::http::{Call, Reply, problem_response};
use crate::problem::ApiError;
pub use crate::route::{Endpoint, Function, Route, Tables};
pub use domain::spreadsheet::Workbooks;

/// The routes of this crate's handlers, one table per module.
pub const ROUTES: Tables<App> = &[
    segments::ROUTES,
    fields::ROUTES,
    clusters::ROUTES,
    customers::ROUTES,
    listing::ROUTES,
    spreadsheet::ROUTES,
    sales::ROUTES,
];

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
}

/// The warm state of a function: configuration and the database client.
#[derive(Clone)]
pub struct App {
    config: Config,
    store: Store,
    cursors: CursorSigner,
    /// Workbook import and export, for the functions that link a reader and writer
    /// (`customers`, the local stack); `None` elsewhere.
    workbooks: Option<Arc<dyn Workbooks>>,
}

/// What a function's handlers get: its warm state, which holds an [`App`].
pub trait State: Send + Sync + 'static {
    fn app(&self) -> &App;
}

impl State for App {
    fn app(&self) -> &App {
        self
    }
}

impl App {
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let store = Store::connect(&config.store).await;
        let cursors = CursorSigner::new(config.cursor_secret.as_bytes());
        Ok(Self {
            config,
            store,
            cursors,
            workbooks: None,
        })
    }

    /// Reads and writes workbooks on the spreadsheet routes with `workbooks` (the
    /// `workbook` crate's); without, they take and give CSV only.
    pub fn with_workbooks(mut self, workbooks: Arc<dyn Workbooks>) -> Self {
        self.workbooks = Some(workbooks);
        self
    }

    pub(crate) fn workbooks(&self) -> Option<&dyn Workbooks> {
        self.workbooks.as_deref()
    }

    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(Config::from_env()?).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves this crate's routes; `only` restricts them to one function's, as that
    /// Lambda is wired behind API Gateway.
    pub async fn handle(&self, only: Option<Function>, request: Request) -> Response<Body> {
        serve(self, ROUTES, only, request).await
    }
}

/// Answers `request` from `tables` (restricted to `only`'s routes when given): finds the
/// route, checks the tenant, runs the handler, and maps every error to a problem.
pub async fn serve<S: State>(
    state: &S,
    tables: Tables<S>,
    only: Option<Function>,
    request: Request,
) -> Response<Body> {
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
    let result = route(state, tables, only, request)
        .instrument(span.clone())
        .await;
    let response = match result {
        Ok(reply) => reply.into_response(),
        Err(err) => span.in_scope(|| problem_response(&err, &path)),
    };
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "handled"));
    response
}

async fn route<S: State>(
    state: &S,
    tables: Tables<S>,
    only: Option<Function>,
    request: Request,
) -> Result<Reply, ApiError> {
    let (route, params) = route::find(
        route::all(tables),
        request.method().as_str(),
        request.uri().path(),
        only,
    )?;
    let tenant = if route.endpoint.authorized() {
        let tenant = tenant_of(&request, &state.app().config.tenant_claim)?;
        tracing::Span::current().record("tenant", tenant.as_str());
        tenant
    } else {
        String::new()
    };
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
    run_retrying(state, route, call).await
}

/// A write without `If-Match` means "apply this to whatever is current": when another
/// write wins the race in between, the handler re-reads and applies it again instead
/// of answering 412 to a client that set no precondition.
async fn run_retrying<S: State>(
    state: &S,
    route: &Route<S>,
    call: Call,
) -> Result<Reply, ApiError> {
    const ATTEMPTS: usize = 4;
    if call
        .headers
        .contains_key(lambda_http::http::header::IF_MATCH)
        || !route.endpoint.retries_on_conflict()
    {
        return (route.handler)(state, call).await;
    }
    for _ in 1..ATTEMPTS {
        match (route.handler)(state, call.clone()).await {
            Err(ApiError::PreconditionFailed) => continue,
            other => return other,
        }
    }
    match (route.handler)(state, call).await {
        Err(ApiError::PreconditionFailed) => Err(ApiError::Conflict {
            detail: "the resource kept changing while this request was applied; retry it".into(),
            extra: None,
        }),
        other => other,
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

/// The Lambda entry point of the functions whose handlers live in this crate.
pub async fn run(function: Function) -> Result<(), lambda_http::Error> {
    start(function, None).await
}

/// [`run`] for a function that also reads and writes workbooks (`customers`).
pub async fn run_with_workbooks(
    function: Function,
    workbooks: Arc<dyn Workbooks>,
) -> Result<(), lambda_http::Error> {
    start(function, Some(workbooks)).await
}

async fn start(
    function: Function,
    workbooks: Option<Arc<dyn Workbooks>>,
) -> Result<(), lambda_http::Error> {
    logging::init();
    let mut app = App::from_env().await?;
    app.workbooks = workbooks;
    run_lambda(function, app, ROUTES).await
}

/// The lambda_http runtime loop over one warm `state`, serving `function`'s routes.
pub async fn run_lambda<S: State + Clone>(
    function: Function,
    state: S,
    tables: Tables<S>,
) -> Result<(), lambda_http::Error> {
    tracing::info!(
        function = function.name(),
        table = state.app().store.table_name(),
        "ready"
    );
    lambda_http::run(service_fn(move |request: Request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(serve(&state, tables, Some(function), request).await) }
    }))
    .await
}
