//! HS256 JSON Web Tokens for the local stack: minted by `local-stack token` and the
//! test harness (`tests/lib.rs`), checked by the emulated API Gateway JWT authorizer in
//! `local-stack`. Signing and checking are `jsonwebtoken`'s.
//!
//! Deployed, API Gateway verifies RS256 tokens against the issuer's JWKS; locally a
//! shared secret stands in for the key set. The checks are the ones API Gateway makes:
//! the algorithm (HS256 only: `none` and every other one are refused), the signature,
//! `exp` (required), `nbf`, `iss` and `aud` (or, for a token without `aud`,
//! `client_id`), against the clock with no leeway.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

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

    /// What `jsonwebtoken` checks: HS256 with this secret, `exp` (required) and `nbf`
    /// with no leeway, `iss` (required), and `aud` when the token has one.
    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation
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

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            // `exp` absent or not a NumericDate; `iss` absent or not a string.
            ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => JwtError::MissingExpiry,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => JwtError::WrongIssuer,
            // Bad base64 or JSON, a payload that is not an object, and the rest.
            _ => JwtError::Malformed,
        }
    }
}

/// Signs `claims` as an HS256 JWT (header `{"typ":"JWT","alg":"HS256"}`).
pub fn sign(secret: &[u8], claims: &Map<String, Value>) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("a JSON object signs with HMAC-SHA256")
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

/// Checks an HS256 token against `config` at the current time (`jsonwebtoken` reads
/// the clock) and returns its claims.
pub fn verify(config: &JwtConfig, token: &str) -> Result<Map<String, Value>, JwtError> {
    let segments: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = segments[..] else {
        return Err(JwtError::Malformed);
    };
    if header.len() > MAX_SEGMENT || payload.len() > MAX_SEGMENT {
        return Err(JwtError::Malformed);
    }
    let alg = jsonwebtoken::decode_header(token)
        .map_err(|_| {
            unknown_algorithm(header).map_or(JwtError::Malformed, JwtError::UnsupportedAlgorithm)
        })?
        .alg;
    if alg != Algorithm::HS256 {
        return Err(JwtError::UnsupportedAlgorithm(format!("{alg:?}")));
    }
    let claims = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(&config.secret),
        &config.validation(),
    )?
    .claims;
    check_gateway_rules(config, &claims)?;
    Ok(claims)
}

/// The `alg` of a header `jsonwebtoken` cannot read because it does not know the
/// algorithm (`none`, say), to name it in the refusal; `None` if the header is not a
/// JSON object with a string `alg` at all.
fn unknown_algorithm(header: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let alg = header.get("alg")?.as_str()?;
    alg.parse::<Algorithm>().is_err().then(|| alg.to_string())
}

/// What API Gateway checks beyond `jsonwebtoken`'s validation: a token without `aud`
/// must carry the audience in `client_id`; an `aud` that is neither a string nor a list
/// of strings, or an `nbf` that is not a number, refuses the token (`jsonwebtoken`
/// skips claims it cannot read).
fn check_gateway_rules(config: &JwtConfig, claims: &Map<String, Value>) -> Result<(), JwtError> {
    let audience_ok = match claims.get("aud") {
        None => claims.get("client_id").and_then(Value::as_str) == Some(config.audience.as_str()),
        Some(Value::String(_)) => true,
        Some(Value::Array(list)) => list.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    if claims.get("nbf").is_some_and(|nbf| !nbf.is_number()) {
        return Err(JwtError::Malformed);
    }
    Ok(())
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

    fn config() -> JwtConfig {
        JwtConfig {
            secret: b"unit-test-secret".to_vec(),
            issuer: "https://issuer.test".into(),
            audience: "aud-test".into(),
        }
    }

    fn token_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let cfg = config();
        let mut claims = dev_claims(&cfg, "tenant_id", "acme", 600, now());
        edit(&mut claims);
        sign(&cfg.secret, &claims)
    }

    /// A token with this header over `payload`, signed with the test secret when
    /// `signed`, else with an empty signature.
    fn raw_token(header: &str, payload: &str, signed: bool) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = if signed {
            let key = EncodingKey::from_secret(&config().secret);
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap()
        } else {
            String::new()
        };
        format!("{message}.{signature}")
    }

    #[test]
    fn valid_token_round_trips() {
        let now = now();
        let claims = dev_claims(&config(), "tenant_id", "acme", 600, now);
        let token = sign(&config().secret, &claims);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let verified = verify(&config(), &token).expect("valid");
        assert_eq!(verified, claims);
        assert_eq!(verified["tenant_id"], "acme");
        let strings = claims_as_strings(&verified);
        assert_eq!(strings["exp"], (now + 600).to_string());
        assert_eq!(strings["aud"], "aud-test");
    }

    #[test]
    fn expired_token_is_refused() {
        for ago in [1, 600, 10_000] {
            let token = token_with(|c| {
                c.insert("exp".into(), json!(now() - ago));
            });
            assert_eq!(verify(&config(), &token), Err(JwtError::Expired), "{ago}");
        }
    }

    #[test]
    fn missing_expiry_and_future_nbf_are_refused() {
        for exp in [None, Some(json!("tomorrow")), Some(Value::Null)] {
            let token = token_with(|c| match &exp {
                None => drop(c.remove("exp")),
                Some(exp) => drop(c.insert("exp".into(), exp.clone())),
            });
            assert_eq!(
                verify(&config(), &token),
                Err(JwtError::MissingExpiry),
                "{exp:?}"
            );
        }
        let token = token_with(|c| {
            c.insert("nbf".into(), json!(now() + 60));
        });
        assert_eq!(verify(&config(), &token), Err(JwtError::NotYetValid));
        let token = token_with(|c| {
            c.insert("nbf".into(), json!(now() - 60));
        });
        assert!(verify(&config(), &token).is_ok());
        let token = token_with(|c| {
            c.insert("nbf".into(), json!("yesterday"));
        });
        assert_eq!(verify(&config(), &token), Err(JwtError::Malformed));
    }

    #[test]
    fn bad_signature_is_refused() {
        let cfg = config();
        let claims = dev_claims(&cfg, "tenant_id", "acme", 600, now());
        let forged = sign(b"another-secret", &claims);
        assert_eq!(verify(&cfg, &forged), Err(JwtError::BadSignature));

        // A payload swapped under a valid signature.
        let good = sign(&cfg.secret, &claims);
        let other = token_with(|c| {
            c.insert("tenant_id".into(), json!("globex"));
        });
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(verify(&cfg, &parts.join(".")), Err(JwtError::BadSignature));
        // No signature at all.
        parts[2] = "";
        assert_eq!(verify(&cfg, &parts.join(".")), Err(JwtError::BadSignature));
    }

    #[test]
    fn wrong_audience_is_refused() {
        for aud in [
            json!("someone-else"),
            json!(["x", "y"]),
            json!([]),
            json!(["aud-test", 7]),
            json!(7),
            Value::Null,
        ] {
            let token = token_with(|c| {
                c.insert("aud".into(), aud.clone());
            });
            assert_eq!(
                verify(&config(), &token),
                Err(JwtError::WrongAudience),
                "{aud}"
            );
        }
        let token = token_with(|c| {
            c.insert("aud".into(), json!(["x", "aud-test"]));
        });
        assert!(verify(&config(), &token).is_ok());
        // Without `aud`, `client_id` must name the audience.
        let token = token_with(|c| {
            c.remove("aud");
            c.insert("client_id".into(), json!("aud-test"));
        });
        assert!(verify(&config(), &token).is_ok());
        for client_id in [Some(json!("someone-else")), None] {
            let token = token_with(|c| {
                c.remove("aud");
                if let Some(id) = &client_id {
                    c.insert("client_id".into(), id.clone());
                }
            });
            assert_eq!(verify(&config(), &token), Err(JwtError::WrongAudience));
        }
    }

    #[test]
    fn wrong_issuer_is_refused() {
        for iss in [Some(json!("https://evil.test")), Some(json!(42)), None] {
            let token = token_with(|c| match &iss {
                Some(iss) => drop(c.insert("iss".into(), iss.clone())),
                None => drop(c.remove("iss")),
            });
            assert_eq!(
                verify(&config(), &token),
                Err(JwtError::WrongIssuer),
                "{iss:?}"
            );
        }
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused() {
        let claims = Value::Object(dev_claims(&config(), "tenant_id", "acme", 600, now()));
        let payload = claims.to_string();
        for (header, alg) in [
            (r#"{"alg":"none","typ":"JWT"}"#, "none"),
            (r#"{"alg":"None"}"#, "None"),
            (r#"{"alg":"HS257"}"#, "HS257"),
            (r#"{"alg":"HS512"}"#, "HS512"),
            (r#"{"alg":"RS256"}"#, "RS256"),
        ] {
            for signed in [false, true] {
                assert_eq!(
                    verify(&config(), &raw_token(header, &payload, signed)),
                    Err(JwtError::UnsupportedAlgorithm(alg.into())),
                    "{header}"
                );
            }
        }
        // Without its signature segment, an unsigned token is malformed.
        let unsigned = raw_token(r#"{"alg":"none"}"#, &payload, false);
        let two_segments = unsigned.trim_end_matches('.');
        assert_eq!(verify(&config(), two_segments), Err(JwtError::Malformed));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token_with(|_| {});
        let long = URL_SAFE_NO_PAD.encode("x".repeat(MAX_SEGMENT));
        let cases = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{good}.extra"),
            "!!!.???.***".into(),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#)),
            format!("{long}.e30.sig"),
        ];
        for token in cases {
            assert_eq!(
                verify(&config(), &token),
                Err(JwtError::Malformed),
                "{token:?}"
            );
        }
        // Correctly signed payloads that are not a JSON object.
        for payload in ["42", "[1]", "not json"] {
            let token = raw_token(r#"{"alg":"HS256"}"#, payload, true);
            assert_eq!(
                verify(&config(), &token),
                Err(JwtError::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn refusals_name_what_api_gateway_says() {
        assert_eq!(JwtError::Expired.to_string(), "the token has expired");
        assert_eq!(
            JwtError::UnsupportedAlgorithm("none".into()).to_string(),
            "the token's signing algorithm is not supported (`none`)"
        );
        assert_eq!(
            JwtError::UnsupportedAlgorithm("none".into()).description(),
            "the token's signing algorithm is not supported"
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
