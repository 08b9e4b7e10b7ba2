//! The local API Gateway: accepts HTTP/1.1, enforces the payload limit, runs the JWT
//! authorizer and hands each request to the function handler. Beside the API it serves
//! the console (the `console` function's routes, without the authorizer, as deployed)
//! and the local identity provider the console signs in with.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming as IncomingBody};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;

use crate::adapter::{self, Incoming};
use crate::idp::{self, Idp};
use crate::jwt::{self, JwtConfig, JwtError};

/// API Gateway's payload limit for HTTP APIs.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Past the limit the rest of a body is read and dropped, so that the client gets the
/// 413 instead of a reset connection; bodies larger than this are cut off.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long in-flight requests get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(5);

/// The function behind the gateway.
pub trait Handler: Clone + Send + Sync + 'static {
    fn call(
        &self,
        request: lambda_http::Request,
    ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static;
}

impl Handler for rules_api::App {
    fn call(
        &self,
        request: lambda_http::Request,
    ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static {
        let app = self.clone();
        async move { app.handle_any(request).await }
    }
}

/// What the local stack serves beside the API.
pub struct Site {
    pub console: console::Console,
    pub idp: Idp,
}

struct Gateway<H> {
    handler: H,
    jwt: JwtConfig,
    site: Option<Site>,
    requests: AtomicU64,
    started: u64,
}

pub(crate) type Reply = Response<Full<Bytes>>;

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: H,
    jwt: JwtConfig,
    site: Option<Site>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let gateway = Arc::new(Gateway {
        handler,
        jwt,
        site,
        requests: AtomicU64::new(0),
        started: jwt::now() as u64,
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let gateway = gateway.clone();
        let service = service_fn(move |req| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(gateway.respond(req, remote).await) }
        });
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => tracing::warn!("in-flight requests did not finish in time"),
    }
    Ok(())
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(req: &mut Request<IncomingBody>) -> Result<Vec<u8>, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let body = req.body_mut();
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                bytes.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                return Err(BodyError::TooLarge);
            }
        }
    }
    if total > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    Ok(bytes)
}

pub(crate) fn json_reply(
    status: StatusCode,
    content_type: &'static str,
    body: serde_json::Value,
) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What API Gateway's JWT authorizer answers when it refuses a request.
fn unauthorized(error: Option<&JwtError>) -> Reply {
    let mut response = json_reply(
        StatusCode::UNAUTHORIZED,
        "application/json",
        json!({ "message": "Unauthorized" }),
    );
    let challenge = match error {
        None => "Bearer".to_string(),
        Some(err) => format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
            err.description()
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

fn too_large(path: &str) -> Reply {
    json_reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        "application/problem+json",
        json!({
            "type": "about:blank",
            "title": "Payload Too Large",
            "status": 413,
            "detail": format!("the request body is larger than {MAX_BODY} bytes"),
            "code": "payload_too_large",
            "instance": path,
        }),
    )
}

/// What API Gateway answers when the function fails without a response.
fn internal_error() -> Reply {
    json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/json",
        json!({ "message": "Internal Server Error" }),
    )
}

/// The bearer token of an `Authorization` header (the `Bearer ` prefix is optional, as
/// with API Gateway).
fn bearer_token(req: &Request<IncomingBody>) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    (!token.is_empty()).then_some(token)
}

/// How API Gateway sees a request: the route key, the path parameters and whether the
/// JWT authorizer guards the route, from the route table the template is checked
/// against. Requests that match no route are still passed on (the handler answers 404
/// or 405) under the `$default` key, behind the authorizer.
fn route_of(method: &Method, path: &str) -> (String, HashMap<String, String>, bool) {
    match api::route::find(rules_api::endpoints(), method.as_str(), path, None) {
        Ok((endpoint, values)) => {
            let names = endpoint
                .path
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'));
            let params = names.map(str::to_string).zip(values).collect();
            (
                format!("{} {}", endpoint.method, endpoint.path),
                params,
                endpoint.authorized(),
            )
        }
        Err(_) => ("$default".to_string(), HashMap::new(), true),
    }
}

impl<H: Handler> Gateway<H> {
    fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("local-{:x}-{n:06}", self.started)
    }

    async fn respond(&self, mut req: Request<IncomingBody>, remote: SocketAddr) -> Reply {
        let started = Instant::now();
        let request_id = self.next_request_id();
        let method = req.method().clone();
        let path = req.uri().path().to_string();

        let response = self.dispatch(&mut req, remote, &request_id).await;

        tracing::info!(
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            request_id = %request_id,
            "request"
        );
        let mut response = response;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("apigw-requestid", value);
        }
        response
    }

    async fn dispatch(
        &self,
        req: &mut Request<IncomingBody>,
        remote: SocketAddr,
        request_id: &str,
    ) -> Reply {
        let path = req.uri().path().to_string();
        let body = match read_body(req).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return too_large(&path),
            Err(BodyError::Broken) => {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    "application/json",
                    json!({ "message": "Bad Request" }),
                );
            }
        };

        if let Some(site) = &self.site {
            if idp::serves(&path) {
                return site
                    .idp
                    .respond(req.method().as_str(), &path, req.uri().query(), &body);
            }
            if console::serves(&path) {
                let answer = site
                    .console
                    .respond(req.method().as_str(), &path, req.headers());
                return adapter::http_response(answer, request_id);
            }
        }

        let (route_key, path_parameters, authorized) = route_of(req.method(), &path);
        let claims: Option<HashMap<String, String>> = if !authorized {
            None
        } else {
            let Some(token) = bearer_token(req) else {
                return unauthorized(None);
            };
            match jwt::verify(&self.jwt, token) {
                Ok(claims) => Some(jwt::claims_as_strings(&claims)),
                Err(err) => {
                    tracing::debug!(error = %err, "token refused");
                    return unauthorized(Some(&err));
                }
            }
        };

        let lambda_request = adapter::lambda_request(Incoming {
            method: req.method().clone(),
            path,
            query: req.uri().query().map(str::to_string),
            version: req.version(),
            headers: std::mem::take(req.headers_mut()),
            body,
            source_ip: remote.ip(),
            request_id: request_id.to_string(),
            route_key,
            path_parameters,
            claims,
        });

        // A panicking handler is a crashed invocation: API Gateway answers 500.
        match tokio::spawn(self.handler.call(lambda_request)).await {
            Ok(response) => adapter::http_response(response, request_id),
            Err(err) => {
                tracing::error!(error = %err, "handler failed");
                internal_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    /// Echoes the tenant claim and the body length, or panics on `/panic`.
    #[derive(Clone)]
    struct Echo;

    impl Handler for Echo {
        fn call(
            &self,
            request: lambda_http::Request,
        ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static
        {
            echo(request)
        }
    }

    async fn echo(request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        if request.uri().path() == "/panic" {
            panic!("handler panicked on purpose");
        }
        let tenant = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|jwt| jwt.claims.get("tenant_id").cloned()),
            _ => None,
        };
        let len = match request.body() {
            lambda_http::Body::Text(t) => t.len(),
            lambda_http::Body::Binary(b) => b.len(),
            _ => 0,
        };
        let route_key = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
            _ => None,
        };
        let body = json!({
            "tenant": tenant,
            "len": len,
            "query": request.uri().query(),
            "route": route_key,
            "id": request.path_parameters().first("id"),
        });
        lambda_http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(lambda_http::Body::Text(body.to_string()))
            .unwrap()
    }

    async fn start() -> (String, tokio::sync::oneshot::Sender<()>, JwtConfig) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = JwtConfig {
            secret: b"server-test-secret".to_vec(),
            issuer: "iss".into(),
            audience: "aud".into(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = config.clone();
        tokio::spawn(async move {
            serve(listener, Echo, cfg, None, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (format!("127.0.0.1:{}", addr.port()), tx, config)
    }

    /// A minimal HTTP/1.1 client: one request per connection.
    async fn send(addr: &str, request: String, body: &[u8]) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    fn request(method: &str, path: &str, token: Option<&str>, len: usize) -> String {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {path} HTTP/1.1\r\nhost: local\r\nconnection: close\r\n{auth}content-length: {len}\r\n\r\n"
        )
    }

    #[tokio::test]
    async fn authorizes_forwards_and_limits() {
        let (addr, stop, config) = start().await;
        let claims = jwt::dev_claims(&config, "tenant_id", "acme", 60, jwt::now());
        let token = jwt::sign(&config.secret, &claims);

        // No token: API Gateway's refusal.
        let (status, head, body) = send(&addr, request("GET", "/segments", None, 0), b"").await;
        assert_eq!(status, 401);
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert_eq!(body, r#"{"message":"Unauthorized"}"#);

        // A forged token.
        let forged = jwt::sign(b"nope", &claims);
        let (status, head, _) =
            send(&addr, request("GET", "/segments", Some(&forged), 0), b"").await;
        assert_eq!(status, 401);
        assert!(head.contains("invalid_token"), "{head}");

        // The public route needs no token.
        let (status, _, body) = send(&addr, request("GET", "/openapi.json", None, 0), b"").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""tenant":null"#), "{body}");

        // A valid token reaches the handler with its claims.
        let (status, head, body) = send(
            &addr,
            request("POST", "/segments?limit=2", Some(&token), 5),
            b"hello",
        )
        .await;
        assert_eq!(status, 200);
        assert!(head.contains("apigw-requestid: local-"), "{head}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({
                "tenant": "acme",
                "len": 5,
                "query": "limit=2",
                "route": "POST /segments",
                "id": null,
            })
        );

        // Path parameters and the route key come from the route table.
        let (status, _, body) = send(
            &addr,
            request("DELETE", "/segments/s-1", Some(&token), 0),
            b"",
        )
        .await;
        assert_eq!(status, 200);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["route"], "DELETE /segments/{id}");
        assert_eq!(body["id"], "s-1");

        // Over 10 MiB: 413 problem, after the body was read.
        let big = vec![b'x'; MAX_BODY + 1];
        let (status, head, body) = send(
            &addr,
            request("POST", "/segments", Some(&token), big.len()),
            &big,
        )
        .await;
        assert_eq!(status, 413);
        assert!(head.contains("application/problem+json"), "{head}");
        assert!(body.contains("payload_too_large"), "{body}");

        // A panicking handler is a 500 from the gateway, and the server keeps serving.
        let (status, _, body) = send(&addr, request("GET", "/panic", Some(&token), 0), b"").await;
        assert_eq!(status, 500);
        assert_eq!(body, r#"{"message":"Internal Server Error"}"#);
        let (status, _, _) = send(&addr, request("GET", "/openapi.json", None, 0), b"").await;
        assert_eq!(status, 200);

        stop.send(()).unwrap();
    }
}
