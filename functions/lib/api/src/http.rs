//! Request and response plumbing shared by every handler: body parsing with limits,
//! query parameters, conditional requests (ETag / If-Match), paging and JSON replies.

use lambda_http::http::header::{
    CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MATCH, LINK, LOCATION,
};
use lambda_http::http::{HeaderName, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::Value;
use store::{Page, PageKey};

use crate::App;
use crate::problem::ApiError;

/// JSON bodies above this are refused with 413; a customer item must fit DynamoDB's
/// 400 KB item limit with room for its keys.
pub const MAX_JSON_BODY: usize = 256 * 1024;
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;
/// The media type of every CSV answer.
pub const CSV_UTF8: &str = "text/csv; charset=utf-8";

/// One routed request: the verified tenant, path parameters, query, headers and body.
#[derive(Clone)]
pub struct Call {
    pub tenant: String,
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Call {
    /// The `i`-th `{param}` of the route pattern.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or_default()
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Type` without parameters, lower-cased (media types are
    /// case-insensitive, RFC 9110); `None` when absent.
    pub fn media_type(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?.to_str().unwrap_or_default();
        let media = value.split(';').next().unwrap_or_default().trim();
        Some(media.to_ascii_lowercase())
    }

    /// The `charset` parameter of the `Content-Type`, unquoted and lower-cased (charset
    /// names are case-insensitive); `None` when absent.
    pub fn charset(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?.to_str().unwrap_or_default();
        value
            .to_ascii_lowercase()
            .split(';')
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim() == "charset")
            .map(|(_, value)| value.trim().trim_matches('"').to_owned())
    }

    /// The body as JSON: 415 for another media type, 413 when too large, 400 when it
    /// does not parse.
    pub fn json_body(&self) -> Result<Value, ApiError> {
        if let Some(media) = self.media_type()
            && media != "application/json"
            && !media.ends_with("+json")
        {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected application/json, got `{media}`"
            )));
        }
        if self.body.len() > MAX_JSON_BODY {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_JSON_BODY,
            });
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON document".into(),
            ));
        }
        serde_json::from_slice(&self.body)
            .map_err(|err| ApiError::BadRequest(format!("malformed JSON: {err}")))
    }

    /// 412 unless `If-Match` is absent, `*`, or names the current version.
    pub fn check_if_match(&self, version: u64) -> Result<(), ApiError> {
        let Some(header) = self.headers.get(IF_MATCH) else {
            return Ok(());
        };
        let header = header.to_str().unwrap_or_default();
        let current = etag(version);
        let matches = header
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag == current);
        if matches {
            Ok(())
        } else {
            Err(ApiError::PreconditionFailed)
        }
    }

    /// `?limit=` within 1..=100 (default 50).
    pub fn limit(&self) -> Result<usize, ApiError> {
        self.limit_within(DEFAULT_PAGE, MAX_PAGE)
    }

    /// `?limit=` within 1..=`max`, `default` when absent.
    pub fn limit_within(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.query("limit") {
            None => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "limit must be an integer from 1 to {max}"
                ))),
            },
        }
    }

    /// The decoded `?cursor=`, which must come from the same tenant and `scope`.
    pub fn page_start(&self, app: &App, scope: &str) -> Result<Option<PageKey>, ApiError> {
        self.query("cursor")
            .map(|cursor| app.cursors.decode(&self.tenant, scope, cursor))
            .transpose()
    }

    /// Rejects query parameters the endpoint does not know, so typos do not silently
    /// widen a listing.
    pub fn allow_query(&self, allowed: &[&str], prefixes: &[&str]) -> Result<(), ApiError> {
        for (name, _) in &self.query {
            let known =
                allowed.contains(&name.as_str()) || prefixes.iter().any(|p| name.starts_with(p));
            if !known {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter `{name}`"
                )));
            }
        }
        Ok(())
    }
}

/// The strong ETag of a resource version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// A successful answer, turned into an HTTP response in one place.
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: ReplyBody,
}

enum ReplyBody {
    Empty,
    Json(Value),
    /// Another representation (CSV), with its media type.
    Text {
        content_type: &'static str,
        text: String,
    },
    /// Bytes (an xlsx workbook): the Lambda runtime sends them base64-encoded and API
    /// Gateway decodes them for the client.
    Binary {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

impl Reply {
    pub fn json(status: StatusCode, body: &impl Serialize) -> Result<Reply, ApiError> {
        let body = serde_json::to_value(body)
            .map_err(|err| ApiError::Internal(format!("response serialization: {err}")))?;
        Ok(Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        })
    }

    /// A non-JSON representation, e.g. [`CSV_UTF8`].
    pub fn text(status: StatusCode, content_type: &'static str, text: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Text { content_type, text },
        }
    }

    /// A binary representation, e.g. an xlsx workbook.
    pub fn binary(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Binary {
                content_type,
                bytes,
            },
        }
    }

    /// A single resource with its ETag.
    pub fn entity(
        status: StatusCode,
        body: &impl Serialize,
        version: u64,
    ) -> Result<Reply, ApiError> {
        Ok(Self::json(status, body)?.header(ETAG, etag(version)))
    }

    /// 201 with `Location` and `ETag`.
    pub fn created(
        location: String,
        body: &impl Serialize,
        version: u64,
    ) -> Result<Reply, ApiError> {
        Ok(Self::entity(StatusCode::CREATED, body, version)?.header(LOCATION, location))
    }

    /// `{"items": [...], "next_cursor": ...}` with the page key signed into a cursor.
    pub fn page<T: Serialize>(
        app: &App,
        call: &Call,
        scope: &str,
        page: Page<T>,
    ) -> Result<Reply, ApiError> {
        let next_cursor = page
            .next
            .map(|key| app.cursors.encode(&call.tenant, scope, key));
        Self::json(
            StatusCode::OK,
            &serde_json::json!({ "items": page.items, "next_cursor": next_cursor }),
        )
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    pub fn header(mut self, name: HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// With a `Link: <path?query>; rel="next"` header when a page follows: the request's
    /// query with its `cursor` replaced by `next`.
    pub fn next_link(self, path: &str, call: &Call, next: Option<String>) -> Reply {
        let Some(next) = next else {
            return self;
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in call.query.iter().filter(|(name, _)| name != "cursor") {
            query.append_pair(name, value);
        }
        query.append_pair("cursor", &next);
        self.header(LINK, format!("<{path}?{}>; rel=\"next\"", query.finish()))
    }

    pub fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                builder = builder.header(name, value);
            }
        }
        let body = match self.body {
            ReplyBody::Json(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Body::Text(value.to_string())
            }
            ReplyBody::Text { content_type, text } => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Body::Text(text)
            }
            ReplyBody::Binary {
                content_type,
                bytes,
            } => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Body::Binary(bytes)
            }
            ReplyBody::Empty => Body::Empty,
        };
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

/// The problem response for an error, logged with its internal detail.
pub fn problem_response(err: &ApiError, instance: &str) -> Response<Body> {
    if err.status().is_server_error() {
        tracing::error!(error = %err, status = err.status().as_u16(), "request failed");
    }
    let mut builder = Response::builder()
        .status(err.status())
        .header(CONTENT_TYPE, "application/problem+json");
    if let ApiError::MethodNotAllowed { allowed } = err {
        builder = builder.header("allow", allowed.join(", "));
    }
    if let ApiError::Unavailable(_) = err {
        builder = builder.header("retry-after", "1");
    }
    builder
        .body(Body::Text(err.to_problem(instance).to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// A PATCH may echo an identifier but not change it.
pub fn reject_identity_change(
    patch: &serde_json::Value,
    key: &str,
    current: &str,
) -> Result<(), ApiError> {
    match patch.get(key) {
        Some(value) if value.as_str() != Some(current) => Err(ApiError::Validation(
            domain::Violations::one(format!("/{key}"), "is read-only"),
        )),
        _ => Ok(()),
    }
}
