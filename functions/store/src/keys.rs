//! Every key of the single table. Each partition key starts with `T#<tenant>`, so no
//! request can name an item of another tenant, and an IAM `dynamodb:LeadingKeys`
//! condition can pin a caller to its own prefix.
//!
//! | item                 | pk                                    | sk                   |
//! |----------------------|---------------------------------------|----------------------|
//! | segment              | `T#<t>`                               | `SEGMENT#<id>`       |
//! | segment name guard   | `T#<t>`                               | `SEGMENT_NAME#<lower name>` |
//! | field                | `T#<t>`                               | `FIELD#<name>`       |
//! | customer             | `T#<t>`                               | `CUSTOMER#<id>`      |
//! | email guard          | `T#<t>`                               | `EMAIL#<lower email>`|
//! | segment membership   | `T#<t>#SEGMENT#<segment id>`          | `CUSTOMER#<id>`      |
//! | cluster membership   | `T#<t>#CLUSTER#<field>#<value>`       | `CUSTOMER#<id>`      |
//! | rule                 | `T#<t>`                               | `RULE#<name>`        |
//! | rule version         | `T#<t>`                               | `RULE_VERSION#<name>#<00000001>` |
//! | backfill job         | `T#<t>`                               | `BACKFILL#<rule>#<job id>` |
//! | rule output guard    | `T#<t>`                               | `RULE_OUTPUT#<field>` or `RULE_OUTPUT#@segment` |
//! | cluster value count  | `T#<t>`                               | `CLUSTER_COUNT#<field>#<value>` |
//! | counting ledger      | `T#<t>`                               | `COUNTED#<customer id>` |
//! | sale                 | `T#<t>#SALES#<customer id>`           | `SALE#<yyyy-mm-dd>#<reference>` |
//! | sale reference guard | `T#<t>#SALES#<customer id>`           | `SALE_REF#<reference>` |
//! | yearly sales totals  | `T#<t>#SALES_YEAR#<yyyy>`             | `CUSTOMER#<id>#<currency>` |
//! | currencies of a year | `T#<t>`                               | `SALES_YEAR#<yyyy>`  |
//! | module / artifact    | `T#<t>#BLOB#<sha256>[@<engine key>]`  | `CHUNK#<00000>`      |
//!
//! Tenant ids, entity ids and field names cannot contain `#` (see `domain::ids`), and the
//! cluster value is always the last component, so every key parses one way only.
//!
//! Layout version 2 (docs/performance.md): a customer's write touches only the
//! customer, its email guard and its membership rows; the counts (`customer_count` on
//! the segment, `member_count` on the field, the cluster value counts) and the ledgers
//! are written by the stream's counting alone (see [`crate::counts`]).

pub const PK: &str = "pk";
pub const SK: &str = "sk";

pub const SEGMENT: &str = "SEGMENT#";
pub const SEGMENT_NAME: &str = "SEGMENT_NAME#";
pub const FIELD: &str = "FIELD#";
pub const CUSTOMER: &str = "CUSTOMER#";
pub const EMAIL: &str = "EMAIL#";
pub const RULE: &str = "RULE#";
pub const RULE_VERSION: &str = "RULE_VERSION#";
pub const RULE_OUTPUT: &str = "RULE_OUTPUT#";
pub const BACKFILL: &str = "BACKFILL#";
pub const CLUSTER_COUNT: &str = "CLUSTER_COUNT#";
pub const SALE: &str = "SALE#";
pub const SALE_REF: &str = "SALE_REF#";
pub const SALES_YEAR: &str = "SALES_YEAR#";

pub fn tenant(tenant: &str) -> String {
    format!("T#{tenant}")
}

pub fn segment_members(tenant: &str, segment_id: &str) -> String {
    format!("T#{tenant}#SEGMENT#{segment_id}")
}

pub fn cluster_members(tenant: &str, field: &str, value_key: &str) -> String {
    format!("T#{tenant}#CLUSTER#{field}#{value_key}")
}

/// A customer's sales and their reference guards.
pub fn sales(tenant: &str, customer_id: &str) -> String {
    format!("T#{tenant}#SALES#{customer_id}")
}

/// Every customer's totals of one year: what the annual report reads.
pub fn sales_year(tenant: &str, year: i32) -> String {
    format!("T#{tenant}#SALES_YEAR#{year:04}")
}

/// The sort key, in the tenant's partition, of the set of currencies sold in `year`.
pub fn year_currencies(year: i32) -> String {
    format!("{SALES_YEAR}{year:04}")
}

/// The `kind` attribute of the items that hold a customer's yearly sales totals: the
/// stream filter of the assign function matches it (a recorded sale re-evaluates rules).
pub const SALES_TOTALS_KIND: &str = "sales_totals";

/// The sort key of a customer's totals in a [`sales_year`] partition.
pub fn year_totals(customer_id: &str, currency: &str) -> String {
    format!("{CUSTOMER}{customer_id}#{currency}")
}

/// The tenant of a [`sales_year`] partition key.
pub fn parse_sales_year_key(pk: &str) -> Option<&str> {
    let (tenant, year) = pk.strip_prefix("T#")?.split_once("#SALES_YEAR#")?;
    (!tenant.contains('#') && year.bytes().all(|b| b.is_ascii_digit())).then_some(tenant)
}

/// Content-addressed bytes (rule modules and their compiled artifacts), never shared
/// across tenants.
pub fn blob(tenant: &str, name: &str) -> String {
    format!("T#{tenant}#BLOB#{name}")
}

pub fn sk(prefix: &str, id: &str) -> String {
    format!("{prefix}{id}")
}

/// The tenant of an item in a tenant's main partition (`T#<t>`), or `None`.
pub fn parse_tenant_key(pk: &str) -> Option<&str> {
    pk.strip_prefix("T#").filter(|t| !t.contains('#'))
}

/// The tenant and customer id of a customer item's key, or `None` for any other item
/// (membership items also sort under `CUSTOMER#`, but in a longer partition).
pub fn parse_customer_key<'a>(pk: &'a str, sk: &'a str) -> Option<(&'a str, &'a str)> {
    let tenant = parse_tenant_key(pk)?;
    let id = sk.strip_prefix(CUSTOMER)?;
    Some((tenant, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_customer_items_parse_as_customers() {
        assert_eq!(
            parse_customer_key("T#acme", "CUSTOMER#c1"),
            Some(("acme", "c1"))
        );
        assert_eq!(
            parse_customer_key(&segment_members("acme", "s1"), "CUSTOMER#c1"),
            None
        );
        assert_eq!(parse_customer_key("T#acme", "SEGMENT#s1"), None);
        assert_eq!(
            parse_customer_key(&sales_year("acme", 2026), "CUSTOMER#c1#EUR"),
            None
        );
    }

    #[test]
    fn sales_year_keys_name_their_tenant() {
        assert_eq!(
            parse_sales_year_key(&sales_year("acme", 2026)),
            Some("acme")
        );
        assert_eq!(parse_sales_year_key(&sales("acme", "c1")), None);
        assert_eq!(parse_sales_year_key("T#acme"), None);
    }
}
