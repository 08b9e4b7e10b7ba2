//! The local identity provider: what Cognito's hosted UI does for the console when
//! deployed, for a fixed list of development tenants. OAuth 2.0 authorization code with
//! PKCE (S256 only), codes that are good once and for a minute, and tokens signed like
//! `local-stack token`, so the console's sign-in runs the same code path locally.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::jwt::{self, JwtConfig};
use crate::server::{self, Reply};

pub const AUTHORIZE: &str = "/local-idp/authorize";
pub const TOKEN: &str = "/local-idp/token";
/// The console's client id at the local provider.
pub const CLIENT_ID: &str = "console-local";
/// The only page a code may be sent back to.
const REDIRECT_PATH: &str = "/console/";
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// Whether a request path belongs to the provider.
pub fn serves(path: &str) -> bool {
    path.starts_with("/local-idp/")
}

/// What a code was issued for, checked when it is exchanged.
struct Grant {
    tenant: String,
    challenge: String,
    redirect_uri: String,
    issued: Instant,
}

pub struct Idp {
    jwt: JwtConfig,
    tenant_claim: String,
    tenants: Vec<String>,
    codes: Mutex<HashMap<String, Grant>>,
    random: RandomState,
    counter: AtomicU64,
}

impl Idp {
    /// Tenants from `LOCAL_DEV_TENANTS` (comma-separated; default `demo,demo-2`), the
    /// first one signed in unless another is chosen; the claim from `TENANT_CLAIM`.
    pub fn from_env(jwt: JwtConfig) -> Idp {
        let tenants = std::env::var("LOCAL_DEV_TENANTS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "demo,demo-2".into());
        let claim = std::env::var("TENANT_CLAIM")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| jwt::DEFAULT_TENANT_CLAIM.into());
        Idp::new(
            jwt,
            claim,
            tenants.split(',').map(|t| t.trim().to_owned()).collect(),
        )
    }

    pub fn new(jwt: JwtConfig, tenant_claim: String, tenants: Vec<String>) -> Idp {
        Idp {
            jwt,
            tenant_claim,
            tenants: tenants.into_iter().filter(|t| !t.is_empty()).collect(),
            codes: Mutex::new(HashMap::new()),
            random: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// The console's sign-in settings for this provider.
    pub fn sign_in(&self) -> console::SignIn {
        console::SignIn {
            authorize_url: AUTHORIZE.into(),
            token_url: TOKEN.into(),
            client_id: CLIENT_ID.into(),
            scope: "openid".into(),
            token: "access_token".into(),
            tenant_claim: self.tenant_claim.clone(),
            logout_url: None,
            dev_tenants: self.tenants.clone(),
        }
    }

    pub fn respond(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Reply {
        match (method, path) {
            ("GET", AUTHORIZE) => self.authorize(&params(query.unwrap_or("").as_bytes())),
            ("POST", TOKEN) => self.token(&params(body)),
            _ => page(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
        }
    }

    fn authorize(&self, query: &HashMap<String, String>) -> Reply {
        let get = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
        // Without a known client and its own redirect address, nothing is sent back.
        let redirect_uri = get("redirect_uri");
        if get("client_id") != CLIENT_ID || !redirect_uri.ends_with(REDIRECT_PATH) {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in refused",
                "Unknown client_id or redirect_uri.",
            );
        }
        let state = get("state");
        let back = |params: &[(&str, &str)]| {
            let mut target = form_urlencoded::Serializer::new(String::new());
            target.extend_pairs(params);
            if !state.is_empty() {
                target.append_pair("state", state);
            }
            redirect(&format!("{redirect_uri}?{}", target.finish()))
        };
        let challenge = get("code_challenge");
        if get("response_type") != "code" {
            return back(&[("error", "unsupported_response_type")]);
        }
        if get("code_challenge_method") != "S256" || !(43..=128).contains(&challenge.len()) {
            return back(&[
                ("error", "invalid_request"),
                ("error_description", "PKCE with S256 is required"),
            ]);
        }
        if get("prompt") == "select_account" {
            return self.chooser(query);
        }
        let tenant = match get("login_hint") {
            "" => self.tenants.first().cloned().unwrap_or_default(),
            hint => hint.to_owned(),
        };
        if !self.tenants.contains(&tenant) {
            return back(&[
                ("error", "access_denied"),
                ("error_description", "not a development tenant"),
            ]);
        }
        let code = self.new_code();
        let mut codes = self.codes.lock().expect("the code table is never poisoned");
        codes.retain(|_, grant| grant.issued.elapsed() < CODE_LIFETIME);
        codes.insert(
            code.clone(),
            Grant {
                tenant,
                challenge: challenge.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                issued: Instant::now(),
            },
        );
        drop(codes);
        back(&[("code", &code)])
    }

    /// The account chooser: one link per development tenant.
    fn chooser(&self, query: &HashMap<String, String>) -> Reply {
        let mut items = String::new();
        for tenant in &self.tenants {
            let mut link = form_urlencoded::Serializer::new(String::new());
            for (name, value) in query {
                if name != "prompt" && name != "login_hint" {
                    link.append_pair(name, value);
                }
            }
            link.append_pair("login_hint", tenant);
            items.push_str(&format!(
                "<li><a href=\"{AUTHORIZE}?{}\">{}</a></li>",
                escape(&link.finish()),
                escape(tenant)
            ));
        }
        page(
            StatusCode::OK,
            "Local sign-in",
            &format!("<p>Sign in as tenant:</p><ul>{items}</ul>"),
        )
    }

    fn token(&self, form: &HashMap<String, String>) -> Reply {
        let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        if get("grant_type") != "authorization_code" {
            return token_error("unsupported_grant_type", "only authorization_code");
        }
        if get("client_id") != CLIENT_ID {
            return token_error("invalid_client", "unknown client_id");
        }
        let grant = self
            .codes
            .lock()
            .expect("the code table is never poisoned")
            .remove(get("code"));
        let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME) else {
            return token_error("invalid_grant", "the code is unknown, used or expired");
        };
        if grant.redirect_uri != get("redirect_uri") {
            return token_error(
                "invalid_grant",
                "redirect_uri differs from the authorization",
            );
        }
        let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
        if verified != grant.challenge {
            return token_error(
                "invalid_grant",
                "code_verifier does not match the challenge",
            );
        }
        let claims = jwt::dev_claims(
            &self.jwt,
            &self.tenant_claim,
            &grant.tenant,
            TOKEN_LIFETIME_SECONDS,
            jwt::now(),
        );
        let token = jwt::sign(&self.jwt.secret, &claims);
        let body = json!({
            "access_token": token,
            "id_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
        });
        json_reply(StatusCode::OK, body)
    }

    /// 128 unpredictable bits: two outputs of a randomly keyed SipHash.
    fn new_code(&self) -> String {
        let half = || {
            let mut hasher = self.random.build_hasher();
            hasher.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
            hasher.finish()
        };
        format!("{:016x}{:016x}", half(), half())
    }
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn redirect(location: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

/// A token endpoint answer: never cached (RFC 6749 section 5.1).
fn json_reply(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut response = server::json_reply(status, "application/json", body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

/// RFC 6749 section 5.2.
fn token_error(error: &str, description: &str) -> Reply {
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({ "error": error, "error_description": description }),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        "text/html; charset=utf-8".parse().expect("static"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'"
            .parse()
            .expect("static"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn idp() -> Idp {
        let jwt = JwtConfig {
            secret: b"idp-test-secret".to_vec(),
            issuer: "iss".into(),
            audience: "aud".into(),
        };
        Idp::new(
            jwt,
            "tenant_id".into(),
            vec!["demo".into(), "demo-2".into()],
        )
    }

    const VERIFIER: &str = "a-verifier-that-is-long-enough-to-be-valid-0123456789";

    fn authorize(idp: &Idp, extra: &str) -> Reply {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
        let query = format!(
            "response_type=code&client_id={CLIENT_ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fconsole%2F\
             &state=s1&code_challenge={challenge}&code_challenge_method=S256{extra}"
        );
        idp.respond("GET", AUTHORIZE, Some(&query), b"")
    }

    fn location(reply: &Reply) -> HashMap<String, String> {
        let location = reply.headers()[LOCATION].to_str().unwrap();
        let (_, query) = location.split_once('?').unwrap();
        params(query.as_bytes())
    }

    async fn exchange(idp: &Idp, code: &str, verifier: &str) -> (StatusCode, serde_json::Value) {
        let form = format!(
            "grant_type=authorization_code&client_id={CLIENT_ID}&code={code}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fconsole%2F&code_verifier={verifier}"
        );
        let reply = idp.respond("POST", TOKEN, None, form.as_bytes());
        let status = reply.status();
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_code_with_its_verifier_gets_a_token_for_the_tenant_once() {
        let idp = idp();
        let reply = authorize(&idp, "&login_hint=demo-2");
        assert_eq!(reply.status(), StatusCode::FOUND);
        let back = location(&reply);
        assert_eq!(back["state"], "s1");
        let code = &back["code"];

        let (status, body) =
            exchange(&idp, code, "the-wrong-verifier-the-wrong-verifier-000000").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");

        // A refused exchange used the code up, as a stolen code must not be retried.
        let reply = authorize(&idp, "&login_hint=demo-2");
        let code = location(&reply)["code"].clone();
        let (status, body) = exchange(&idp, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let claims = jwt::verify(&idp.jwt, body["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["tenant_id"], "demo-2");

        let (status, _) = exchange(&idp, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn refuses_unknown_tenants_plain_challenges_and_strange_clients() {
        let idp = idp();
        assert_eq!(
            location(&authorize(&idp, "&login_hint=other"))["error"],
            "access_denied"
        );
        let plain = idp.respond(
            "GET",
            AUTHORIZE,
            Some("response_type=code&client_id=console-local&redirect_uri=%2Fconsole%2F&code_challenge=abc&code_challenge_method=plain"),
            b"",
        );
        assert_eq!(location(&plain)["error"], "invalid_request");
        let stranger = idp.respond(
            "GET",
            AUTHORIZE,
            Some("response_type=code&client_id=evil&redirect_uri=https%3A%2F%2Fevil.example%2F"),
            b"",
        );
        assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);
        assert!(stranger.headers().get(LOCATION).is_none());
    }

    #[tokio::test]
    async fn the_chooser_lists_every_tenant() {
        let reply = authorize(&idp(), "&prompt=select_account");
        assert_eq!(reply.status(), StatusCode::OK);
        let html = reply.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(html.to_vec()).unwrap();
        assert!(html.contains("login_hint=demo\">demo</a>"), "{html}");
        assert!(html.contains("login_hint=demo-2\">demo-2</a>"), "{html}");
        assert!(!html.contains("prompt=select_account"), "{html}");
    }
}
