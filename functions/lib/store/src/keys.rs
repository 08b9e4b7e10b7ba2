//! Every key of the single table. Each partition key starts with `T#<tenant>`, so no
//! request can name an item of another tenant, and an IAM `dynamodb:LeadingKeys`
//! condition can pin a caller to its own prefix.
//!
//! | item                 | pk                                    | sk                   |
//! |----------------------|---------------------------------------|----------------------|
//! | segment              | `T#<t>`                               | `SEGMENT#<id>`       |
//! | segment name guard   | `T#<t>`                               | `SEGMENT_NAME#<lower name>` |
//! | field                | `T#<t>`                               | `FIELD#<name>`       |
//! | customer             | `T#<t>#CUSTOMERS#<shard of id>`       | `CUSTOMER#<id>`      |
//! | counting ledger      | `T#<t>#CUSTOMERS#<shard of id>`       | `COUNTED#<id>`       |
//! | email guard          | `T#<t>#EMAILS#<shard of email>`       | `EMAIL#<lower email>`|
//! | segment membership   | `T#<t>#SEGMENT#<segment id>#<shard of id>` | `CUSTOMER#<id>` |
//! | cluster membership   | `T#<t>#CLUSTER#<field>#<value>#<shard of id>` | `CUSTOMER#<id>` |
//! | rule                 | `T#<t>`                               | `RULE#<name>`        |
//! | rule version         | `T#<t>`                               | `RULE_VERSION#<name>#<00000001>` |
//! | backfill job         | `T#<t>`                               | `BACKFILL#<rule>#<job id>` |
//! | backfill chain       | `T#<t>#CUSTOMERS#<shard>`             | `BACKFILL#<rule>#<job id>` |
//! | rule output guard    | `T#<t>`                               | `RULE_OUTPUT#<field>` or `RULE_OUTPUT#@segment` |
//! | cluster value count  | `T#<t>`                               | `CLUSTER_COUNT#<field>#<value>` |
//! | sale                 | `T#<t>#SALES#<customer id>`           | `SALE#<yyyy-mm-dd>#<reference>` |
//! | sale reference guard | `T#<t>#SALES#<customer id>`           | `SALE_REF#<reference>` |
//! | yearly sales totals  | `T#<t>#SALES_YEAR#<yyyy>#<shard of id>` | `CUSTOMER#<id>#<currency>` |
//! | currencies of a year | `T#<t>`                               | `SALES_YEAR#<yyyy>`  |
//! | module / artifact    | `T#<t>#BLOB#<sha256>[@<engine key>]`  | `CHUNK#<00000>`      |
//!
//! Tenant ids, entity ids and field names cannot contain `#` (see `domain::ids`), the
//! shard is always the last component of a spread partition and the cluster value the
//! one before it, so every key parses one way only.
//!
//! Layout version 3 (docs/performance.md): what grows with the number of customers is
//! spread over [`SHARDS`] partitions per tenant (per segment, per cluster value, per
//! sales year) by a stable hash of the customer id ([`shard_of`]), so no tenant, segment
//! or value is capped by one partition's write rate. A customer's write touches only
//! the customer, its email guard and its membership rows; the counts (`customer_count`
//! on the segment, `member_count` on the field, the cluster value counts) and the
//! ledgers are written by the stream's counting alone (see [`crate::counts`]).

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

/// How many partitions a tenant's customers (and each membership and sales year) are
/// spread over: 16 partitions take 16,000 write units/s, far above what one tenant's
/// traffic and a backfill need (docs/performance.md), while a listing of a small
/// tenant stays a few Queries. Changing it moves every key: it is part of the layout.
pub const SHARDS: u8 = 16;

/// The shard of a customer id or an email key: FNV-1a (32 bits) of its bytes modulo
/// [`SHARDS`]. Written out rather than taken from `std` because `std`'s hashers may
/// change between releases, and a key must never move.
pub fn shard_of(key: &str) -> u8 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    (hash % u32::from(SHARDS)) as u8
}

/// Every shard, in listing order.
pub fn shards() -> impl Iterator<Item = u8> {
    0..SHARDS
}

/// One shard of the tenant's customers (with their counting ledgers and the backfill
/// chains that walk them).
pub fn customers(tenant: &str, shard: u8) -> String {
    format!("T#{tenant}#CUSTOMERS#{shard:02}")
}

/// The partition that holds the customer `id`.
pub fn customer_home(tenant: &str, id: &str) -> String {
    customers(tenant, shard_of(id))
}

/// The partition of the email guard of `email_key` (a lower-cased email).
pub fn email_home(tenant: &str, email_key: &str) -> String {
    format!("T#{tenant}#EMAILS#{:02}", shard_of(email_key))
}

/// One shard of a segment's members.
pub fn segment_members(tenant: &str, segment_id: &str, shard: u8) -> String {
    format!("T#{tenant}#SEGMENT#{segment_id}#{shard:02}")
}

/// One shard of the members of one value of a cluster field.
pub fn cluster_members(tenant: &str, field: &str, value_key: &str, shard: u8) -> String {
    format!("T#{tenant}#CLUSTER#{field}#{value_key}#{shard:02}")
}

/// A customer's sales and their reference guards.
pub fn sales(tenant: &str, customer_id: &str) -> String {
    format!("T#{tenant}#SALES#{customer_id}")
}

/// One shard of every customer's totals of one year: what the annual report reads.
pub fn sales_year(tenant: &str, year: i32, shard: u8) -> String {
    format!("T#{tenant}#SALES_YEAR#{year:04}#{shard:02}")
}

/// The sort key, in the tenant's partition, of the set of currencies sold in `year`.
pub fn year_currencies(year: i32) -> String {
    format!("{SALES_YEAR}{year:04}")
}

/// The `kind` attribute of a customer item (membership rows and ledgers carry another
/// `kind`, or none).
pub const CUSTOMER_KIND: &str = "customer";

/// The stream filter patterns that match every write of a customer item: created,
/// changed (the new image) or deleted (the old image). Both stream consumers use them.
pub fn customer_record_patterns() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": { "NewImage": { "kind": { "S": [CUSTOMER_KIND] } } }
        }),
        serde_json::json!({
            "eventName": ["REMOVE"],
            "dynamodb": { "OldImage": { "kind": { "S": [CUSTOMER_KIND] } } }
        }),
    ]
}

/// The `kind` attribute of the items that hold a customer's yearly sales totals: the
/// stream filter of the assign function matches it (a recorded sale re-evaluates rules).
pub const SALES_TOTALS_KIND: &str = "sales_totals";

/// The sort key of a customer's totals in a [`sales_year`] partition.
pub fn year_totals(customer_id: &str, currency: &str) -> String {
    format!("{CUSTOMER}{customer_id}#{currency}")
}

/// `pk` without its trailing `#<shard>`, if it ends with a valid one.
fn unsharded(pk: &str) -> Option<&str> {
    let (rest, shard) = pk.rsplit_once('#')?;
    let valid = shard.len() == 2 && shard.parse::<u8>().is_ok_and(|s| s < SHARDS);
    valid.then_some(rest)
}

/// The tenant of a [`sales_year`] partition key.
pub fn parse_sales_year_key(pk: &str) -> Option<&str> {
    let (tenant, year) = unsharded(pk)?
        .strip_prefix("T#")?
        .split_once("#SALES_YEAR#")?;
    (!tenant.contains('#') && year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
        .then_some(tenant)
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

/// The tenant of a [`customers`] partition key.
pub fn parse_customers_key(pk: &str) -> Option<&str> {
    let tenant = unsharded(pk)?
        .strip_prefix("T#")?
        .strip_suffix("#CUSTOMERS")?;
    (!tenant.contains('#')).then_some(tenant)
}

/// The tenant and customer id of a customer item's key, or `None` for any other item
/// (membership items also sort under `CUSTOMER#`, but in other partitions).
pub fn parse_customer_key<'a>(pk: &'a str, sk: &'a str) -> Option<(&'a str, &'a str)> {
    let tenant = parse_customers_key(pk)?;
    let id = sk.strip_prefix(CUSTOMER)?;
    (pk == customer_home(tenant, id)).then_some((tenant, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_customer_items_parse_as_customers() {
        let home = customer_home("acme", "c1");
        assert_eq!(
            parse_customer_key(&home, "CUSTOMER#c1"),
            Some(("acme", "c1"))
        );
        // Another shard's partition never holds c1.
        let elsewhere = customers("acme", (shard_of("c1") + 1) % SHARDS);
        assert_eq!(parse_customer_key(&elsewhere, "CUSTOMER#c1"), None);
        assert_eq!(
            parse_customer_key(
                &segment_members("acme", "s1", shard_of("c1")),
                "CUSTOMER#c1"
            ),
            None
        );
        assert_eq!(parse_customer_key("T#acme", "CUSTOMER#c1"), None);
        assert_eq!(parse_customer_key(&home, "COUNTED#c1"), None);
        assert_eq!(
            parse_customer_key(&sales_year("acme", 2026, 3), "CUSTOMER#c1#EUR"),
            None
        );
    }

    #[test]
    fn sales_year_keys_name_their_tenant() {
        for shard in shards() {
            assert_eq!(
                parse_sales_year_key(&sales_year("acme", 2026, shard)),
                Some("acme")
            );
        }
        assert_eq!(parse_sales_year_key("T#acme#SALES_YEAR#2026"), None);
        assert_eq!(parse_sales_year_key("T#acme#SALES_YEAR#2026#16"), None);
        assert_eq!(parse_sales_year_key(&sales("acme", "c1")), None);
        assert_eq!(parse_sales_year_key("T#acme"), None);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // FNV-1a's published value for "a" (0xe40c292c): a key never moves.
        assert_eq!(shard_of("a"), (0xe40c_292c_u32 % 16) as u8);
        let mut sizes = [0u32; SHARDS as usize];
        for n in 0..16_000 {
            sizes[usize::from(shard_of(&format!("customer-{n}")))] += 1;
        }
        // Within 10 % of an even spread (1,000 each).
        assert!(
            sizes.iter().all(|&s| (900..=1100).contains(&s)),
            "{sizes:?}"
        );
    }
}
