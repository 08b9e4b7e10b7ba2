//! Identifiers. They become parts of DynamoDB keys, so their alphabet excludes the `#`
//! separator and anything that could let one tenant's key reach into another's.

/// Tenant ids come from verified token claims; they still must be key-safe.
pub fn is_valid_tenant_id(id: &str) -> bool {
    is_key_safe(id, 64)
}

/// Client-supplied customer ids and segment ids: letters, digits, `_`, `-`, `.`; 1 to 64.
pub fn is_valid_entity_id(id: &str) -> bool {
    is_key_safe(id, 64)
}

fn is_key_safe(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && id.as_bytes()[0].is_ascii_alphanumeric()
}

/// Time-ordered ids, so "list customers" returns them roughly in creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_exclude_key_separators() {
        assert!(is_valid_entity_id("cust-001.A_b"));
        assert!(!is_valid_entity_id(""));
        assert!(!is_valid_entity_id("a#b"));
        assert!(!is_valid_entity_id("-a"));
        assert!(!is_valid_entity_id("a/b"));
        assert!(!is_valid_entity_id(&"a".repeat(65)));
        assert!(is_valid_entity_id(&new_id()));
    }
}
