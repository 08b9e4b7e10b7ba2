//! The vocabulary of route descriptions: what an operation takes and returns ([`Doc`]),
//! declared with each route; `openapi` turns them into the OpenAPI document.

use std::borrow::Cow;

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// A query parameter: name and description.
pub type Param = (&'static str, &'static str);

/// The paging parameters of JSON listings.
pub const LIMIT: Param = ("limit", "Page size, 1 to 100 (default 50)");
pub const CURSOR: Param = (
    "cursor",
    "Opaque cursor from the previous page's next_cursor",
);

/// A type whose schema the document lists under `components/schemas`.
#[derive(Debug, Clone, Copy)]
pub struct Type {
    pub(crate) name: fn() -> Cow<'static, str>,
    pub(crate) collect: fn(&mut Vec<(String, RefOr<Schema>)>),
}

pub(crate) fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// The schema of `T` (and of the types it refers to).
pub const fn of<T: ToSchema>() -> Type {
    Type {
        name: T::name,
        collect: collect::<T>,
    }
}

/// A request or response body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// `application/json` (`application/merge-patch+json` for a PATCH request).
    Json(Type),
    /// `{"items": [T], "next_cursor": ...}`, under the given schema name.
    Page(&'static str, Type),
    /// JSON by default, `text/csv` when asked for.
    JsonOrCsv(Type),
    /// A spreadsheet: the customer import's request (`text/csv` or an xlsx, xls or ods
    /// workbook), the export's response (`text/csv` or xlsx).
    Csv,
    /// The raw `application/wasm` module upload.
    Wasm,
    /// This document.
    Document,
}

pub const fn json<T: ToSchema>() -> Body {
    Body::Json(of::<T>())
}

pub const fn page<T: ToSchema>(name: &'static str) -> Body {
    Body::Page(name, of::<T>())
}

/// OpenAPI links from an operation's success response: the operations (by
/// `operationId`; each link is named after its operation) a client can call next with
/// what the answer or its own request holds, and where their parameters come from, as
/// `(parameter name, runtime expression)`: `$response.body#/id`, `$request.path.name`.
/// Tools that chain calls (schemathesis's stateful phase) follow them to reach real
/// resources instead of guessing ids.
pub type Links = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// What an operation takes and returns, for the document and the router.
#[derive(Debug)]
pub struct Doc {
    /// The `operationId`.
    pub id: &'static str,
    pub summary: &'static str,
    pub request: Body,
    pub status: u16,
    pub response: Body,
    pub query: &'static [Param],
    /// Takes `If-Match`.
    pub conditional: bool,
    /// A create-or-replace: 201 when the resource did not exist.
    pub or_created: bool,
    /// `None`: writes retry a lost version race, reads do not
    /// ([`Endpoint::retries_on_conflict`](crate::Endpoint::retries_on_conflict)).
    pub retries: Option<bool>,
    /// Guarded by the JWT authorizer.
    pub authorized: bool,
    /// Links from the success response to the operations that take what it returns.
    pub links: &'static [Links],
}

impl Doc {
    pub const fn new(id: &'static str, summary: &'static str) -> Doc {
        Doc {
            id,
            summary,
            request: Body::None,
            status: 200,
            response: Body::None,
            query: &[],
            conditional: false,
            or_created: false,
            retries: None,
            authorized: true,
            links: &[],
        }
    }

    pub const fn takes(mut self, body: Body) -> Doc {
        self.request = body;
        self
    }

    pub const fn answers(mut self, status: u16, body: Body) -> Doc {
        self.status = status;
        self.response = body;
        self
    }

    pub const fn query(mut self, query: &'static [Param]) -> Doc {
        self.query = query;
        self
    }

    pub const fn conditional(mut self) -> Doc {
        self.conditional = true;
        self
    }

    pub const fn or_created(mut self) -> Doc {
        self.or_created = true;
        self
    }

    /// A write that must not be re-applied after a lost race (it retries per item
    /// itself), or a POST that writes nothing.
    pub const fn no_retry(mut self) -> Doc {
        self.retries = Some(false);
        self
    }

    /// Served without a token.
    pub const fn public(mut self) -> Doc {
        self.authorized = false;
        self
    }

    /// What the success response links to, in groups of operations that take the same
    /// parameters (see [`Links`]).
    pub const fn links(mut self, links: &'static [Links]) -> Doc {
        self.links = links;
        self
    }

    pub(crate) fn types(&self) -> impl Iterator<Item = Type> {
        [self.request, self.response]
            .into_iter()
            .filter_map(|body| match body {
                Body::Json(t) | Body::Page(_, t) | Body::JsonOrCsv(t) => Some(t),
                _ => None,
            })
    }
}
