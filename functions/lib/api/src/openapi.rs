//! The OpenAPI 3.1 description. Each route carries its [`Doc`] (declared beside its
//! handler); [`document`] assembles them with the schemas of the types they name
//! (utoipa derives), so the description cannot drift from what is served.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::route::Endpoint;

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
    name: fn() -> Cow<'static, str>,
    collect: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
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
    /// `text/csv`: the customer import's request, the export's response.
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
    /// ([`Endpoint::retries_on_conflict`]).
    pub retries: Option<bool>,
    /// Guarded by the JWT authorizer.
    pub authorized: bool,
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

    fn types(&self) -> impl Iterator<Item = Type> {
        [self.request, self.response]
            .into_iter()
            .filter_map(|body| match body {
                Body::Json(t) | Body::Page(_, t) | Body::JsonOrCsv(t) => Some(t),
                _ => None,
            })
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": schema_ref(item) },
            "next_cursor": { "type": ["string", "null"] }
        }
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string" },
            "code": { "type": "string" },
            "customer_count": { "type": "integer" },
            "errors": { "type": "array", "items": schema_ref("Violation") }
        }
    })
}

fn success(body: Body) -> Value {
    match body {
        Body::Json(t) => json!({
            "description": "Success",
            "content": {"application/json": {"schema": schema_ref(&(t.name)())}}
        }),
        Body::Page(name, _) => json!({
            "description": "Success",
            "content": {"application/json": {"schema": schema_ref(name)}}
        }),
        Body::JsonOrCsv(t) => json!({
            "description": "Success",
            "content": {
                "application/json": {"schema": schema_ref(&(t.name)())},
                "text/csv": {"schema": {"type": "string"}}
            }
        }),
        Body::Csv => json!({
            "description": "Core columns, then every field by name; imports back unchanged",
            "headers": {"Link": {
                "description": "`<...>; rel=\"next\"` when more customers follow",
                "schema": {"type": "string"}
            }},
            "content": {"text/csv": {"schema": {"type": "string"}}}
        }),
        Body::Document => json!({
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }),
        Body::None | Body::Wasm => json!({"description": "Done"}),
    }
}

fn request_body(method: &str, body: Body) -> Option<Value> {
    let media = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    Some(match body {
        Body::Wasm => json!({
            "required": true,
            "content": {"application/wasm": {"schema": {"type": "string", "contentMediaType": "application/wasm"}}}
        }),
        Body::Csv => json!({
            "required": true,
            "description": "UTF-8 (BOM optional), `,` or `;` separated, RFC 4180 quoting; \
                a header row of core columns and field names; at most 6,000,000 bytes and \
                10,000 rows",
            "content": {"text/csv": {"schema": {"type": "string"}}}
        }),
        Body::Json(t) | Body::JsonOrCsv(t) => json!({
            "required": true,
            "content": {media: {"schema": schema_ref(&(t.name)())}}
        }),
        Body::Page(name, _) => json!({
            "required": true,
            "content": {media: {"schema": schema_ref(name)}}
        }),
        Body::None | Body::Document => return None,
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let doc = &endpoint.doc;
    let mut parameters: Vec<Value> = endpoint
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(doc.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    if doc.conditional {
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The ETag last read; 412 when the resource changed since",
            "schema": {"type": "string"}
        }));
    }
    let problem = json!({"application/problem+json": {"schema": schema_ref("Problem")}});
    let mut responses = Map::new();
    let answer = success(doc.response);
    if doc.or_created {
        responses.insert("201".into(), answer.clone());
    }
    responses.insert(doc.status.to_string(), answer);
    if doc.authorized {
        for (status, description) in [
            ("400", "Malformed request"),
            ("401", "No valid tenant token"),
            ("404", "Not found"),
            ("409", "Conflicts with the current state"),
            ("412", "If-Match does not match the current ETag"),
            ("413", "Body too large"),
            ("415", "Body is not JSON"),
            ("422", "Validation failed; every failing property is listed"),
            ("503", "Database unavailable; retry"),
        ] {
            responses.insert(
                status.into(),
                json!({"description": description, "content": problem}),
            );
        }
    }
    let mut operation = json!({
        "operationId": doc.id,
        "summary": doc.summary,
        "tags": [endpoint.function.name()],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = request_body(endpoint.method, doc.request) {
        operation["requestBody"] = body;
    }
    operation["security"] = if doc.authorized {
        json!([{"tenantJwt": []}])
    } else {
        json!([])
    };
    operation
}

/// The whole document for `endpoints`, served at `GET /openapi.json`.
pub fn document<'a>(endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Value {
    let mut paths = Map::new();
    let mut found = Vec::new();
    let mut pages = BTreeMap::new();
    collect::<domain::Violation>(&mut found);
    for endpoint in endpoints {
        let item = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}));
        item[endpoint.method.to_ascii_lowercase()] = operation(endpoint);
        for t in endpoint.doc.types() {
            (t.collect)(&mut found);
        }
        for body in [endpoint.doc.request, endpoint.doc.response] {
            if let Body::Page(name, t) = body {
                pages.insert(name, (t.name)());
            }
        }
    }
    let mut schemas: Map<String, Value> = found
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    for (name, item) in pages {
        schemas.insert(name.to_owned(), page_schema(&item));
    }
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Customer segmentation API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Segments, custom fields (clusters) and customers, per tenant. \
                The tenant comes from the JWT authorizer's claims."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}
