//! The back-office console: a browser app (plain ES modules, no build step) embedded in
//! this crate and served under `/console` by the `console` Lambda and by the local stack.
//!
//! The app signs in by itself (OAuth 2.0 authorization code with PKCE) and calls the API
//! on the same origin with the token it got, so these routes need no authorizer and the
//! API needs no CORS. What to sign in with comes from `/console/config.json`, built here
//! from the environment (see [`SignIn::from_env`]).

use std::borrow::Cow;
use std::path::PathBuf;

use lambda_http::Body;
use lambda_http::http::{HeaderMap, Response, StatusCode, header};
use serde::Serialize;

/// The routes the `console` function serves (API Gateway syntax), for `template.yaml`.
pub const ROUTES: [(&str, &str); 2] = [("GET", "/console"), ("GET", "/console/{proxy+}")];

/// Where the console lives on the API's origin.
pub const PREFIX: &str = "/console";

/// (path below `assets/`, bytes, entity tag), written by `build.rs`.
const EMBEDDED: &[(&str, &[u8], &str)] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Whether a request path belongs to the console.
pub fn serves(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// How the console signs in: the identity provider's OAuth 2.0 endpoints for a public
/// client using PKCE. Sent to the browser as `/console/config.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignIn {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    /// Space-separated scopes asked for.
    pub scope: String,
    /// Which token of the token response the API accepts: `access_token`, or `id_token`
    /// where only the ID token carries the tenant claim (Cognito's custom attributes).
    pub token: String,
    /// The claim that names the tenant, so the console can show who is signed in.
    pub tenant_claim: String,
    /// Where to send the browser to sign out (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    /// Tenants a local identity provider offers to switch between (empty when deployed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dev_tenants: Vec<String>,
}

impl SignIn {
    /// From `CONSOLE_AUTHORIZE_URL`, `CONSOLE_TOKEN_URL`, `CONSOLE_CLIENT_ID` (all three
    /// needed), `CONSOLE_SCOPE` (default `openid`), `CONSOLE_TOKEN` (default
    /// `access_token`), `CONSOLE_LOGOUT_URL` and `TENANT_CLAIM` (default `tenant_id`).
    pub fn from_env() -> Option<SignIn> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Some(SignIn {
            authorize_url: var("CONSOLE_AUTHORIZE_URL")?,
            token_url: var("CONSOLE_TOKEN_URL")?,
            client_id: var("CONSOLE_CLIENT_ID")?,
            scope: var("CONSOLE_SCOPE").unwrap_or_else(|| "openid".into()),
            token: var("CONSOLE_TOKEN").unwrap_or_else(|| "access_token".into()),
            tenant_claim: var("TENANT_CLAIM").unwrap_or_else(|| "tenant_id".into()),
            logout_url: var("CONSOLE_LOGOUT_URL"),
            dev_tenants: Vec::new(),
        })
    }
}

/// Where the files come from: the binary, or a folder while developing the console
/// (`local-stack serve --console-dir functions/console/assets`), read on every request.
#[derive(Debug, Clone)]
enum Files {
    Embedded,
    Folder(PathBuf),
}

/// The console's HTTP answers.
#[derive(Debug, Clone)]
pub struct Console {
    sign_in: Option<SignIn>,
    files: Files,
    policy: String,
}

impl Console {
    pub fn new(sign_in: Option<SignIn>) -> Console {
        let policy = content_security_policy(sign_in.as_ref());
        Console {
            sign_in,
            files: Files::Embedded,
            policy,
        }
    }

    /// The deployed console: sign-in from the environment, embedded files.
    pub fn from_env() -> Console {
        Console::new(SignIn::from_env())
    }

    /// Serves the files of `folder` instead of the embedded ones.
    pub fn from_folder(mut self, folder: PathBuf) -> Console {
        self.files = Files::Folder(folder);
        self
    }

    /// The answer to `method path`. Only GET and HEAD; the rest is a 405.
    pub fn respond(&self, method: &str, path: &str, headers: &HeaderMap) -> Response<Body> {
        let head = method == "HEAD";
        if method != "GET" && !head {
            let mut response = self.plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(relative) = path.strip_prefix("/console") else {
            return self.plain(StatusCode::NOT_FOUND, "not found");
        };
        let relative = match relative {
            "" => {
                // Relative URLs in the page resolve against `/console/`.
                let mut response = self.plain(StatusCode::PERMANENT_REDIRECT, "");
                response.headers_mut().insert(
                    header::LOCATION,
                    header::HeaderValue::from_static("/console/"),
                );
                return response;
            }
            "/" => "index.html",
            other => other.trim_start_matches('/'),
        };
        if relative == "config.json" {
            let body = serde_json::json!({ "sign_in": self.sign_in }).to_string();
            return self.answer(
                StatusCode::OK,
                "application/json",
                body.into_bytes(),
                None,
                head,
            );
        }
        let Some((bytes, tag)) = self.file(relative) else {
            return self.plain(StatusCode::NOT_FOUND, "not found");
        };
        let unchanged = tag.as_deref().is_some_and(|tag| {
            headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|wanted| wanted.split(',').any(|t| t.trim() == tag))
        });
        if unchanged {
            let mut response = self.answer(StatusCode::NOT_MODIFIED, "", Vec::new(), tag, true);
            response.headers_mut().remove(header::CONTENT_TYPE);
            return response;
        }
        self.answer(
            StatusCode::OK,
            content_type(relative),
            bytes.into_owned(),
            tag,
            head,
        )
    }

    fn file(&self, relative: &str) -> Option<(Cow<'static, [u8]>, Option<String>)> {
        match &self.files {
            Files::Embedded => EMBEDDED
                .iter()
                .find(|(path, _, _)| *path == relative)
                .map(|(_, bytes, tag)| (Cow::Borrowed(*bytes), Some((*tag).to_owned()))),
            Files::Folder(folder) => {
                // Only plain relative names: nothing outside the folder.
                if relative
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
                {
                    return None;
                }
                std::fs::read(folder.join(relative))
                    .ok()
                    .map(|b| (Cow::Owned(b), None))
            }
        }
    }

    fn plain(&self, status: StatusCode, text: &str) -> Response<Body> {
        self.answer(
            status,
            "text/plain; charset=utf-8",
            text.as_bytes().to_vec(),
            None,
            false,
        )
    }

    fn answer(
        &self,
        status: StatusCode,
        content_type: &'static str,
        body: Vec<u8>,
        tag: Option<String>,
        head: bool,
    ) -> Response<Body> {
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_SECURITY_POLICY, self.policy.as_str())
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "no-referrer")
            // Revalidated on every load (the names carry no hash), cheap with the ETag.
            .header(
                header::CACHE_CONTROL,
                if tag.is_some() {
                    "no-cache"
                } else {
                    "no-store"
                },
            );
        if let Some(tag) = tag {
            builder = builder.header(header::ETAG, tag);
        }
        let body = if head || body.is_empty() {
            Body::Empty
        } else if content_type.starts_with("text/") || content_type == "application/json" {
            match String::from_utf8(body) {
                Ok(text) => Body::Text(text),
                Err(err) => Body::Binary(err.into_bytes()),
            }
        } else {
            Body::Binary(body)
        };
        builder.body(body).expect("static headers are valid")
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Scripts and styles from the console's own files only; the API on the same origin;
/// the token endpoint where the identity provider is elsewhere.
fn content_security_policy(sign_in: Option<&SignIn>) -> String {
    let mut connect = String::from("'self'");
    if let Some(origin) = sign_in.and_then(|s| origin(&s.token_url)) {
        connect.push(' ');
        connect.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// `https://host[:port]` of an absolute URL; `None` for a path on this origin.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(token_url: &str) -> SignIn {
        SignIn {
            authorize_url: "https://id.example.com/oauth2/authorize".into(),
            token_url: token_url.into(),
            client_id: "client".into(),
            scope: "openid".into(),
            token: "access_token".into(),
            tenant_claim: "tenant_id".into(),
            logout_url: None,
            dev_tenants: Vec::new(),
        }
    }

    fn text(response: &Response<Body>) -> String {
        match response.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            Body::Empty => String::new(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn serves_the_page_its_files_and_the_sign_in_config() {
        let console = Console::new(Some(sign_in("https://id.example.com/oauth2/token")));
        let none = HeaderMap::new();

        let page = console.respond("GET", "/console/", &none);
        assert_eq!(page.status(), 200);
        assert!(text(&page).contains("<script type=\"module\""));
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(
            policy.contains("connect-src 'self' https://id.example.com;"),
            "{policy}"
        );

        let redirect = console.respond("GET", "/console", &none);
        assert_eq!(redirect.status(), 308);
        assert_eq!(redirect.headers()[header::LOCATION], "/console/");

        let config = console.respond("GET", "/console/config.json", &none);
        let config: serde_json::Value = serde_json::from_str(&text(&config)).unwrap();
        assert_eq!(config["sign_in"]["client_id"], "client");

        let script = console.respond("GET", "/console/js/main.js", &none);
        assert_eq!(script.status(), 200);
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );

        // The entity tag makes a reload a 304.
        let mut again = HeaderMap::new();
        again.insert(
            header::IF_NONE_MATCH,
            script.headers()[header::ETAG].clone(),
        );
        assert_eq!(
            console
                .respond("GET", "/console/js/main.js", &again)
                .status(),
            304
        );

        assert_eq!(
            console.respond("GET", "/console/nope.js", &none).status(),
            404
        );
        assert_eq!(console.respond("POST", "/console/", &none).status(), 405);
    }

    #[test]
    fn a_folder_serves_nothing_outside_itself() {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
        let console = Console::new(None).from_folder(folder);
        let none = HeaderMap::new();
        assert_eq!(
            console
                .respond("GET", "/console/index.html", &none)
                .status(),
            200
        );
        assert_eq!(
            console
                .respond("GET", "/console/../Cargo.toml", &none)
                .status(),
            404
        );
        assert_eq!(
            console
                .respond("GET", "/console/js/../../build.rs", &none)
                .status(),
            404
        );
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin("https://a.example.com/oauth2/token"),
            Some("https://a.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:3000"),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin("/local-idp/token"), None);
    }
}
