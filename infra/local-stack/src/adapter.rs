//! Converts between the local HTTP server's requests/responses and the
//! `lambda_http` types the handlers see behind API Gateway (HTTP API, payload v2).

use std::collections::HashMap;
use std::net::IpAddr;

use hyper::body::Bytes;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use lambda_http::http::{self, Method, Version};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

/// Everything about one incoming call that API Gateway passes on to the function.
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub source_ip: IpAddr,
    pub request_id: String,
    /// `METHOD /path/{param}` of the matched route, or `$default`.
    pub route_key: String,
    pub path_parameters: HashMap<String, String>,
    /// The verified JWT claims, already flattened to text; `None` on routes without
    /// an authorizer.
    pub claims: Option<HashMap<String, String>>,
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// API Gateway hands text payloads over as they are and base64-encodes the rest, which
/// `lambda_http` decodes into `Body::Binary`.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(http::header::CONTENT_TYPE) else {
        return true;
    };
    let media = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("xml")
        || media.ends_with("javascript")
        || media == "application/x-www-form-urlencoded"
}

fn request_body(headers: &HeaderMap, body: Vec<u8>) -> Body {
    if body.is_empty() {
        return Body::Empty;
    }
    if is_text(headers) {
        match String::from_utf8(body) {
            Ok(text) => Body::Text(text),
            Err(err) => Body::Binary(err.into_bytes()),
        }
    } else {
        Body::Binary(body)
    }
}

/// Headers as the function sees them: one value per name (repeated headers joined with
/// commas, as API Gateway does), plus the `x-forwarded-*` headers API Gateway adds.
fn function_headers(incoming: &Incoming) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in incoming.headers.keys() {
        let values: Vec<&[u8]> = incoming
            .headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let joined = values.join(&b", "[..]);
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(name.clone(), value);
        }
    }
    let forwarded = [
        ("x-forwarded-for", incoming.source_ip.to_string()),
        ("x-forwarded-proto", "http".to_string()),
    ];
    for (name, value) in forwarded {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// The `lambda_http::Request` the real Lambda adapter would build for this call.
pub fn lambda_request(incoming: Incoming) -> lambda_http::Request {
    let headers = function_headers(&incoming);
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();

    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_description.method = incoming.method.clone();
    http_description.path = Some(incoming.path.clone());
    http_description.protocol = Some(protocol(incoming.version).to_string());
    http_description.source_ip = Some(incoming.source_ip.to_string());
    http_description.user_agent = headers
        .get(USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .map(str::to_string);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.request_id = Some(incoming.request_id.clone());
    context.route_key = Some(incoming.route_key.clone());
    context.stage = Some("$default".to_string());
    context.account_id = Some("000000000000".to_string());
    context.apiid = Some("local".to_string());
    context.domain_name = Some(host.split(':').next().unwrap_or_default().to_string());
    context.domain_prefix = Some("local".to_string());
    context.time_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    context.http = http_description;
    if let Some(claims) = incoming.claims {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims;
        jwt.scopes = None;
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        context.authorizer = Some(authorizer);
    }

    let raw_query = incoming.query.clone().unwrap_or_default();
    let mut uri = format!("http://{host}{}", incoming.path);
    if !raw_query.is_empty() {
        uri.push('?');
        uri.push_str(&raw_query);
    }
    let query_map: QueryMap = raw_query.parse().unwrap_or_default();

    let mut request = http::Request::builder()
        .method(incoming.method)
        .uri(&uri)
        .body(request_body(&headers, incoming.body))
        .unwrap_or_else(|_| {
            // The path came from a URI hyper already parsed, so this only happens for
            // a Host header that is not a valid authority: fall back to a relative URI.
            let mut fallback = http::Request::new(Body::Empty);
            if let Ok(relative) = format!(
                "{}{}",
                incoming.path,
                if raw_query.is_empty() {
                    String::new()
                } else {
                    format!("?{raw_query}")
                }
            )
            .parse()
            {
                *fallback.uri_mut() = relative;
            }
            fallback
        });
    *request.headers_mut() = headers;
    request
        .with_raw_http_path(incoming.path)
        .with_query_string_parameters(query_map)
        .with_path_parameters(incoming.path_parameters)
        .with_request_context(RequestContext::ApiGatewayV2(context))
}

/// The HTTP response API Gateway sends back for a function's response.
pub fn http_response(
    response: lambda_http::Response<Body>,
    request_id: &str,
) -> http::Response<http_body_util::Full<Bytes>> {
    let (mut parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        parts
            .headers
            .insert(HeaderName::from_static("apigw-requestid"), value);
    }
    http::Response::from_parts(parts, http_body_util::Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use lambda_http::http::StatusCode;

    fn incoming(claims: Option<HashMap<String, String>>) -> Incoming {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:3000"));
        headers.insert(USER_AGENT, HeaderValue::from_static("curl/8"));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        Incoming {
            method: Method::POST,
            path: "/segments/abc".into(),
            query: Some("limit=5&tag=a&tag=b%20c".into()),
            version: Version::HTTP_11,
            headers,
            body: br#"{"name":"x"}"#.to_vec(),
            source_ip: "127.0.0.1".parse().unwrap(),
            request_id: "req-1".into(),
            route_key: "POST /segments/{id}".into(),
            path_parameters: HashMap::from([("id".to_string(), "abc".to_string())]),
            claims,
        }
    }

    #[test]
    fn builds_the_request_the_lambda_adapter_would() {
        let claims = HashMap::from([("tenant_id".to_string(), "acme".to_string())]);
        let req = lambda_request(incoming(Some(claims)));

        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path(), "/segments/abc");
        assert_eq!(req.uri().query(), Some("limit=5&tag=a&tag=b%20c"));
        assert_eq!(req.raw_http_path(), "/segments/abc");
        let query = req.query_string_parameters();
        assert_eq!(query.first("limit"), Some("5"));
        assert_eq!(query.all("tag"), Some(vec!["a", "b c"]));
        assert_eq!(req.headers()["x-multi"], "a, b");
        assert_eq!(req.headers()["x-forwarded-for"], "127.0.0.1");
        assert!(matches!(req.body(), Body::Text(t) if t == r#"{"name":"x"}"#));

        let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions().get::<RequestContext>()
        else {
            panic!("no API Gateway v2 request context");
        };
        assert_eq!(ctx.request_id.as_deref(), Some("req-1"));
        assert_eq!(ctx.route_key.as_deref(), Some("POST /segments/{id}"));
        assert_eq!(req.path_parameters().first("id"), Some("abc"));
        assert_eq!(ctx.stage.as_deref(), Some("$default"));
        assert_eq!(ctx.http.method, Method::POST);
        assert_eq!(ctx.http.path.as_deref(), Some("/segments/abc"));
        assert_eq!(ctx.http.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(ctx.http.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(ctx.http.user_agent.as_deref(), Some("curl/8"));
        let jwt = ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .unwrap();
        assert_eq!(jwt.claims["tenant_id"], "acme");
    }

    #[test]
    fn routes_without_authorizer_have_no_claims_and_binary_bodies_stay_binary() {
        let mut call = incoming(None);
        call.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        call.body = vec![0, 159, 146, 150];
        call.query = None;
        let req = lambda_request(call);
        assert_eq!(req.uri().query(), None);
        assert!(matches!(req.body(), Body::Binary(b) if b == &[0, 159, 146, 150]));
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions().get::<RequestContext>()
        else {
            panic!("no API Gateway v2 request context");
        };
        assert!(ctx.authorizer.is_none());
    }

    #[tokio::test]
    async fn workbooks_travel_as_bytes_both_ways() {
        // API Gateway base64-encodes a workbook (no text media type) and lambda_http
        // decodes it to `Body::Binary`; the answer's `Body::Binary` goes back as bytes.
        let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe".to_vec();
        for media in [
            xlsx,
            "application/vnd.ms-excel",
            "application/vnd.oasis.opendocument.spreadsheet",
        ] {
            let mut call = incoming(None);
            call.headers
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(media));
            call.body = zip.clone();
            let req = lambda_request(call);
            assert!(
                matches!(req.body(), Body::Binary(b) if b == &zip),
                "{media}"
            );
        }
        let response = lambda_http::Response::builder()
            .header("content-type", xlsx)
            .body(Body::Binary(zip.clone()))
            .unwrap();
        let converted = http_response(response, "req-1");
        assert_eq!(converted.headers()["content-type"], xlsx);
        let body = converted.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], &zip[..]);
    }

    #[tokio::test]
    async fn converts_the_response() {
        let response = lambda_http::Response::builder()
            .status(StatusCode::CREATED)
            .header("content-type", "application/json")
            .body(Body::Text("{\"ok\":true}".into()))
            .unwrap();
        let converted = http_response(response, "req-9");
        assert_eq!(converted.status(), StatusCode::CREATED);
        assert_eq!(converted.headers()["content-type"], "application/json");
        assert_eq!(converted.headers()["apigw-requestid"], "req-9");
        let body = converted.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{\"ok\":true}");
    }
}
