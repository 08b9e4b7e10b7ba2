//! Opaque, signed page cursors. A cursor is bound to the tenant and the listing that
//! produced it, so a cursor from one tenant (or one filter) is useless anywhere else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use store::PageKey;

use crate::problem::ApiError;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Tenant.
    t: String,
    /// Listing scope, e.g. `customers?segment=abc`.
    s: String,
    /// Where the listing stopped.
    k: PageKey,
}

#[derive(Clone)]
pub struct CursorSigner {
    key: Vec<u8>,
}

impl CursorSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    pub fn encode(&self, tenant: &str, scope: &str, key: PageKey) -> String {
        let payload = serde_json::to_vec(&Payload {
            t: tenant.to_owned(),
            s: scope.to_owned(),
            k: key,
        })
        .expect("cursor payload serializes");
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The page key, if the cursor was signed by us for this tenant and scope.
    pub fn decode(&self, tenant: &str, scope: &str, cursor: &str) -> Result<PageKey, ApiError> {
        let invalid = || ApiError::BadRequest("invalid cursor".into());
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if payload.t != tenant || payload.s != scope {
            return Err(invalid());
        }
        Ok(payload.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key() -> PageKey {
        PageKey(BTreeMap::from([
            ("pk".to_string(), "T#a".to_string()),
            ("sk".to_string(), "CUSTOMER#1".to_string()),
        ]))
    }

    #[test]
    fn cursors_are_bound_to_tenant_and_scope() {
        let signer = CursorSigner::new(b"0123456789abcdef");
        let cursor = signer.encode("a", "customers", key());
        assert_eq!(signer.decode("a", "customers", &cursor).unwrap(), key());
        assert!(signer.decode("b", "customers", &cursor).is_err());
        assert!(signer.decode("a", "segments", &cursor).is_err());
        let other = CursorSigner::new(b"another secret!!");
        assert!(other.decode("a", "customers", &cursor).is_err());
        let mut tampered = cursor.clone();
        tampered.insert(3, 'x');
        assert!(signer.decode("a", "customers", &tampered).is_err());
        assert!(signer.decode("a", "customers", "garbage").is_err());
    }
}
