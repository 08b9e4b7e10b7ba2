//! A route is declared once, in its handler's module: method, path, the Lambda function
//! that serves it on AWS, its OpenAPI description and the handler. The Lambda
//! functions, the local server, the OpenAPI document and the template check all read
//! these declarations, so they cannot disagree about what is served.

use std::future::Future;
use std::pin::Pin;

use crate::doc::Doc;
use crate::http::{Call, Reply};
use crate::problem::ApiError;

/// The Lambda function that serves a route on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Segments,
    Fields,
    Customers,
    /// Rule modules (the `rules-api` crate); the only HTTP function that embeds wasmtime.
    Rules,
    /// Reports that read many customers' totals at once (more memory, longer timeout).
    Reports,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Self::Segments,
        Self::Fields,
        Self::Customers,
        Self::Rules,
        Self::Reports,
    ];

    /// The folder, crate and binary name of the function (`functions/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Segments => "segments",
            Self::Fields => "fields",
            Self::Customers => "customers",
            Self::Rules => "rules-api",
            Self::Reports => "reports",
        }
    }
}

/// What a handler returns: boxed, so that handlers of different types fit one table.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send + 'a>>;

/// A handler over the function's warm state `S` (see [`handler!`](crate::handler)).
pub type Handler<S> = for<'a> fn(&'a S, Call) -> Answer<'a>;

/// Turns `async fn name(state: &S, call: Call) -> Result<Reply, ApiError>` into a
/// [`Handler`] for a route table.
#[macro_export]
macro_rules! handler {
    ($f:path) => {
        |state, call| ::std::boxed::Box::pin($f(state, call))
    };
}

/// Where a route is and how it is described; everything but the handler.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    /// API Gateway route syntax: `{name}` matches one path segment.
    pub path: &'static str,
    pub function: Function,
    pub doc: Doc,
}

impl Endpoint {
    /// Whether the JWT authorizer guards the route (all but the API description).
    pub fn authorized(&self) -> bool {
        self.doc.authorized
    }

    /// Whether a write without `If-Match` that loses a version race is applied again to
    /// the newer state. Reads never race; see [`Doc::retries`].
    pub fn retries_on_conflict(&self) -> bool {
        self.doc.retries.unwrap_or(self.method != "GET")
    }
}

pub struct Route<S: 'static> {
    pub endpoint: Endpoint,
    pub handler: Handler<S>,
}

impl<S> AsRef<Endpoint> for Route<S> {
    fn as_ref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl AsRef<Endpoint> for Endpoint {
    fn as_ref(&self) -> &Endpoint {
        self
    }
}

/// A function's route tables, one per handler module.
pub type Tables<S> = &'static [&'static [Route<S>]];

/// Every route of `tables`.
pub fn all<S>(tables: Tables<S>) -> impl Iterator<Item = &'static Route<S>> + Clone {
    tables.iter().copied().flatten()
}

impl<S> Route<S> {
    pub const fn new(
        function: Function,
        method: &'static str,
        path: &'static str,
        doc: Doc,
        handler: Handler<S>,
    ) -> Self {
        Route {
            endpoint: Endpoint {
                method,
                path,
                function,
                doc,
            },
            handler,
        }
    }
}

/// Finds the route for a request, with its path parameters. `only` restricts the
/// search to one function's routes (what that Lambda is wired to on AWS). As on API
/// Gateway, the most specific pattern wins: `/customers/import` over `/customers/{id}`.
pub fn find<'r, R: AsRef<Endpoint>>(
    routes: impl IntoIterator<Item = &'r R>,
    method: &str,
    path: &str,
    only: Option<Function>,
) -> Result<(&'r R, Vec<String>), ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut allowed = Vec::new();
    let mut best: Option<(&R, Vec<String>, usize)> = None;
    for route in routes {
        let endpoint = route.as_ref();
        if only.is_some_and(|f| endpoint.function != f) {
            continue;
        }
        let Some(params) = match_path(endpoint.path, &segments) else {
            continue;
        };
        if endpoint.method != method {
            allowed.push(endpoint.method);
            continue;
        }
        let literals = segments.len() - params.len();
        if best.as_ref().is_none_or(|(_, _, most)| literals > *most) {
            best = Some((route, params, literals));
        }
    }
    match best {
        Some((route, params, _)) => Ok((route, params)),
        None if allowed.is_empty() => Err(ApiError::NotFound(format!("no route for {path}"))),
        None => Err(ApiError::MethodNotAllowed { allowed }),
    }
}

/// Whether any of `routes` has the shape of `path`, whatever the method.
pub fn serves<'r, R: AsRef<Endpoint> + 'r>(
    routes: impl IntoIterator<Item = &'r R>,
    path: &str,
) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    routes
        .into_iter()
        .any(|route| match_path(route.as_ref().path, &segments).is_some())
}

fn match_path(pattern: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.split('/').skip(1).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push((*segment).to_owned());
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{App, ROUTES};

    fn routes() -> impl Iterator<Item = &'static Route<App>> + Clone {
        all(ROUTES)
    }

    fn find_op(
        method: &str,
        path: &str,
        only: Option<Function>,
    ) -> Result<(&'static str, Vec<String>), ApiError> {
        find(routes(), method, path, only).map(|(r, p)| (r.endpoint.doc.id, p))
    }

    #[test]
    fn routes_match_like_api_gateway() {
        assert_eq!(
            find_op("GET", "/customers/c-1", None).unwrap(),
            ("GetCustomer", vec!["c-1".to_owned()])
        );
        assert!(matches!(
            find_op("POST", "/customers/c-1", None),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            find_op("GET", "/nope", None),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            find_op("GET", "/customers", Some(Function::Segments)),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(find_op("GET", "/segments//", None), Ok((id, _)) if id == "ListSegments"));
    }

    #[test]
    fn literal_customer_paths_win_over_the_id_parameter() {
        assert_eq!(
            find_op("POST", "/customers/import", None).unwrap(),
            ("ImportCustomers", vec![])
        );
        assert_eq!(
            find_op("GET", "/customers/export", Some(Function::Customers))
                .unwrap()
                .0,
            "ExportCustomers"
        );
        let endpoint = |id: &str| -> &'static Endpoint {
            &routes()
                .find(|r: &&Route<App>| r.endpoint.doc.id == id)
                .unwrap()
                .endpoint
        };
        assert!(!endpoint("ImportCustomers").retries_on_conflict());
        assert!(!endpoint("ExportCustomers").retries_on_conflict());
        assert!(endpoint("ReplaceCustomer").retries_on_conflict());
    }
}
