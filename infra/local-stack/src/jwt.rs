//! HS256 JSON Web Tokens for the local stack: minted by `local-stack token`, checked by the
//! emulated API Gateway JWT authorizer in `local-stack`.
//!
//! Deployed, API Gateway verifies RS256 tokens against the issuer's JWKS; locally a
//! shared secret stands in for the key set. The checks are the ones API Gateway makes:
//! signature, `exp`, `nbf`, `iss` and `aud` (or `client_id`).

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

pub const DEFAULT_SECRET: &str = "local-dev-secret-change-me";
pub const DEFAULT_ISSUER: &str = "http://localhost/local-issuer";
pub const DEFAULT_AUDIENCE: &str = "segmentation-api";
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";

/// Tokens whose header or payload segment is longer than this are refused unread.
const MAX_SEGMENT: usize = 16 * 1024;

/// What a token must be signed with and carry.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
}

impl JwtConfig {
    /// `LOCAL_JWT_SECRET`, `LOCAL_JWT_ISSUER` and `LOCAL_JWT_AUDIENCE`, with local defaults.
    pub fn from_env() -> JwtConfig {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        JwtConfig {
            secret: var("LOCAL_JWT_SECRET", DEFAULT_SECRET).into_bytes(),
            issuer: var("LOCAL_JWT_ISSUER", DEFAULT_ISSUER),
            audience: var("LOCAL_JWT_AUDIENCE", DEFAULT_AUDIENCE),
        }
    }
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    UnsupportedAlgorithm(String),
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
}

impl JwtError {
    /// The `error_description` API Gateway puts in its `www-authenticate` challenge.
    pub fn description(&self) -> &'static str {
        match self {
            JwtError::Malformed => "the token is malformed",
            JwtError::UnsupportedAlgorithm(_) => "the token's signing algorithm is not supported",
            JwtError::BadSignature => "the token's signature is invalid",
            JwtError::MissingExpiry => "the token has no expiry",
            JwtError::Expired => "the token has expired",
            JwtError::NotYetValid => "the token is not valid yet",
            JwtError::WrongIssuer => "the token does not have a valid issuer",
            JwtError::WrongAudience => "the token does not have a valid audience",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::UnsupportedAlgorithm(alg) => write!(f, "{} (`{alg}`)", self.description()),
            other => f.write_str(other.description()),
        }
    }
}

impl std::error::Error for JwtError {}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Signs `claims` as an HS256 JWT.
pub fn sign(secret: &[u8], claims: &Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = mac(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The claims of a development token for `tenant`, valid for `ttl_seconds` from `now`.
pub fn dev_claims(
    config: &JwtConfig,
    tenant_claim: &str,
    tenant: &str,
    ttl_seconds: i64,
    now: i64,
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(format!("dev-user@{tenant}")));
    claims.insert(tenant_claim.into(), json!(tenant));
    claims.insert("iss".into(), json!(config.issuer));
    claims.insert("aud".into(), json!(config.audience));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl_seconds));
    claims
}

fn decode_json(segment: &str) -> Result<Map<String, Value>, JwtError> {
    if segment.len() > MAX_SEGMENT {
        return Err(JwtError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// A NumericDate claim: absent is `None`, anything but a number is malformed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or(JwtError::Malformed),
    }
}

/// Checks an HS256 token against `config` at time `now` (seconds since the epoch) and
/// returns its claims.
pub fn verify(config: &JwtConfig, token: &str, now: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };

    let header = decode_json(header_b64)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        Some(other) => return Err(JwtError::UnsupportedAlgorithm(other.to_string())),
        None => return Err(JwtError::Malformed),
    }

    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwtError::Malformed)?;
    let mut mac = mac(&config.secret);
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(payload_b64.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;

    let claims = decode_json(payload_b64)?;
    let now = now as f64;
    match numeric_date(&claims, "exp")? {
        None => return Err(JwtError::MissingExpiry),
        Some(exp) if exp <= now => return Err(JwtError::Expired),
        Some(_) => {}
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now
    {
        return Err(JwtError::NotYetValid);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(JwtError::WrongIssuer);
    }
    // Like API Gateway: `aud` (a string or a list) must name the audience, or, for
    // tokens without `aud`, `client_id` must.
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == config.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|aud| aud.as_str() == Some(config.audience.as_str())),
        Some(_) => false,
        None => claims.get("client_id").and_then(Value::as_str) == Some(config.audience.as_str()),
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    Ok(claims)
}

/// The claims as API Gateway hands them to the function: every value as text. Numbers
/// keep their decimal form, booleans become `true`/`false`, lists `[a b]`.
pub fn claims_as_strings(claims: &Map<String, Value>) -> HashMap<String, String> {
    fn text(value: &Value) -> Option<String> {
        match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(items) => Some(format!(
                "[{}]",
                items.iter().filter_map(text).collect::<Vec<_>>().join(" ")
            )),
            Value::Object(_) => Some(value.to_string()),
        }
    }
    claims
        .iter()
        .filter_map(|(name, value)| text(value).map(|v| (name.clone(), v)))
        .collect()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn config() -> JwtConfig {
        JwtConfig {
            secret: b"unit-test-secret".to_vec(),
            issuer: "https://issuer.test".into(),
            audience: "aud-test".into(),
        }
    }

    fn token_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let cfg = config();
        let mut claims = dev_claims(&cfg, "tenant_id", "acme", 600, NOW);
        edit(&mut claims);
        sign(&cfg.secret, &claims)
    }

    #[test]
    fn valid_token_round_trips() {
        let token = token_with(|_| {});
        let claims = verify(&config(), &token, NOW).expect("valid");
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["exp"], NOW + 600);
        let strings = claims_as_strings(&claims);
        assert_eq!(strings["exp"], (NOW + 600).to_string());
        assert_eq!(strings["aud"], "aud-test");
    }

    #[test]
    fn expired_token_is_refused() {
        let token = token_with(|_| {});
        assert_eq!(verify(&config(), &token, NOW + 600), Err(JwtError::Expired));
        assert_eq!(
            verify(&config(), &token, NOW + 10_000),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn missing_expiry_and_future_nbf_are_refused() {
        let token = token_with(|c| {
            c.remove("exp");
        });
        assert_eq!(verify(&config(), &token, NOW), Err(JwtError::MissingExpiry));
        let token = token_with(|c| {
            c.insert("nbf".into(), json!(NOW + 60));
        });
        assert_eq!(verify(&config(), &token, NOW), Err(JwtError::NotYetValid));
    }

    #[test]
    fn bad_signature_is_refused() {
        let cfg = config();
        let claims = dev_claims(&cfg, "tenant_id", "acme", 600, NOW);
        let forged = sign(b"another-secret", &claims);
        assert_eq!(verify(&cfg, &forged, NOW), Err(JwtError::BadSignature));

        // A payload swapped under a valid signature.
        let good = sign(&cfg.secret, &claims);
        let other = token_with(|c| {
            c.insert("tenant_id".into(), json!("globex"));
        });
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(
            verify(&cfg, &parts.join("."), NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn wrong_audience_is_refused() {
        let token = token_with(|c| {
            c.insert("aud".into(), json!("someone-else"));
        });
        assert_eq!(verify(&config(), &token, NOW), Err(JwtError::WrongAudience));
        let token = token_with(|c| {
            c.insert("aud".into(), json!(["x", "aud-test"]));
        });
        assert!(verify(&config(), &token, NOW).is_ok());
        let token = token_with(|c| {
            c.remove("aud");
            c.insert("client_id".into(), json!("aud-test"));
        });
        assert!(verify(&config(), &token, NOW).is_ok());
    }

    #[test]
    fn wrong_issuer_is_refused() {
        let token = token_with(|c| {
            c.insert("iss".into(), json!("https://evil.test"));
        });
        assert_eq!(verify(&config(), &token, NOW), Err(JwtError::WrongIssuer));
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = dev_claims(&config(), "tenant_id", "acme", 600, NOW);
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(matches!(
                verify(&config(), &token, NOW),
                Err(JwtError::UnsupportedAlgorithm(_)) | Err(JwtError::Malformed)
            ));
        }
        assert_eq!(
            verify(&config(), &format!("{header}.{payload}."), NOW),
            Err(JwtError::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token_with(|_| {});
        let cases = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{good}.extra"),
            "!!!.???.***".into(),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
        ];
        for token in cases {
            assert_eq!(
                verify(&config(), &token, NOW),
                Err(JwtError::Malformed),
                "{token:?}"
            );
        }
        // A correctly signed payload that is not a JSON object.
        let cfg = config();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode("42");
        let mut mac = mac(&cfg.secret);
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            verify(&cfg, &format!("{header}.{payload}.{sig}"), NOW),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn claims_are_flattened_to_text() {
        let mut claims = Map::new();
        claims.insert("s".into(), json!("x"));
        claims.insert("n".into(), json!(42));
        claims.insert("f".into(), json!(1.5));
        claims.insert("b".into(), json!(true));
        claims.insert("l".into(), json!(["a", "b"]));
        claims.insert("z".into(), Value::Null);
        let flat = claims_as_strings(&claims);
        assert_eq!(flat["s"], "x");
        assert_eq!(flat["n"], "42");
        assert_eq!(flat["f"], "1.5");
        assert_eq!(flat["b"], "true");
        assert_eq!(flat["l"], "[a b]");
        assert!(!flat.contains_key("z"));
    }
}
