use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Customer, FieldDef};

use std::collections::BTreeSet;

use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt};

use crate::counts::{MEMBERSHIPS, Membership, decode_memberships, encode_memberships, stamp_of};
use crate::keys::{self, CLUSTER_COUNT, CUSTOMER, EMAIL, shard_of, sk};
use crate::write::{Item, OnFail, Tx, entity_item, key, n};
use crate::{Page, PageKey, Store, StoreResult};

/// Which customers a listing walks: a customers or membership partition per shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerFilter {
    All,
    Segment(String),
    /// Customers whose cluster field `field` has the value with index key `value_key`.
    Cluster {
        field: String,
        value_key: String,
    },
}

impl CustomerFilter {
    /// The partition of one shard of this filter's customers (or their membership rows).
    fn partition(&self, tenant: &str, shard: u8) -> String {
        match self {
            Self::All => keys::customers(tenant, shard),
            Self::Segment(segment_id) => keys::segment_members(tenant, segment_id, shard),
            Self::Cluster { field, value_key } => {
                keys::cluster_members(tenant, field, value_key, shard)
            }
        }
    }

    /// Every shard's partition, in listing order.
    pub(crate) fn partitions(&self, tenant: &str) -> Vec<String> {
        keys::shards().map(|s| self.partition(tenant, s)).collect()
    }
}

/// The customer's item, carrying the memberships it is counted in (see [`crate::counts`]).
fn customer_item(tenant: &str, customer: &Customer, fields: &[FieldDef]) -> StoreResult<Item> {
    let mut item = entity_item(
        keys::customer_home(tenant, &customer.id),
        sk(CUSTOMER, &customer.id),
        keys::CUSTOMER_KIND,
        customer,
    )?;
    let memberships = memberships_of(customer, fields);
    item.insert(MEMBERSHIPS.into(), encode_memberships(&memberships));
    Ok(item)
}

fn email_guard(tenant: &str, email_key: &str) -> Item {
    key(keys::email_home(tenant, email_key), sk(EMAIL, email_key))
}

/// An index entry: a customer's key inside a membership partition.
fn membership(partition: String, customer_id: &str) -> Item {
    let mut item = key(partition, sk(CUSTOMER, customer_id));
    item.insert(
        "customer_id".into(),
        AttributeValue::S(customer_id.to_owned()),
    );
    item
}

impl Store {
    pub async fn get_customer(&self, tenant: &str, id: &str) -> StoreResult<Option<Customer>> {
        self.get_item(keys::customer_home(tenant, id), sk(CUSTOMER, id))
            .await
    }

    /// Many customers by id in one batch read; missing ones are left out.
    pub async fn get_customers(&self, tenant: &str, ids: &[String]) -> StoreResult<Vec<Customer>> {
        self.batch_get(&customer_keys(tenant, ids)).await
    }

    /// The customer holding an email (case-insensitive): the uniqueness guard names it.
    pub async fn find_customer_by_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> StoreResult<Option<Customer>> {
        #[derive(serde::Deserialize)]
        struct Guard {
            customer_id: String,
        }
        let email_key = email.to_lowercase();
        let guard: Option<Guard> = self
            .get_item(keys::email_home(tenant, &email_key), sk(EMAIL, &email_key))
            .await?;
        match guard {
            Some(guard) => self.get_customer(tenant, &guard.customer_id).await,
            None => Ok(None),
        }
    }

    /// One page of customers, shard after shard and by id within a shard (see
    /// [`Store::query_spread_page`]). Filtered listings walk the membership partitions
    /// and fetch the page's customers in one batch, so the cost follows the page size.
    pub async fn list_customers(
        &self,
        tenant: &str,
        filter: &CustomerFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> StoreResult<Page<Customer>> {
        let page = self
            .query_spread_page(&filter.partitions(tenant), CUSTOMER, limit, start, &|_| {
                true
            })
            .await?;
        if matches!(filter, CustomerFilter::All) {
            return page.decode();
        }
        let ids: Vec<String> = page.items.iter().filter_map(member_id).collect();
        Ok(Page {
            items: self.batch_get(&customer_keys(tenant, &ids)).await?,
            next: page.next,
        })
    }

    /// Writes a customer (created when `previous` is `None`, else replacing it at its
    /// version) together with its email guard and membership rows, in one transaction
    /// of the customer's own items. `fields` are the tenant's current definitions.
    pub async fn save_customer(
        &self,
        tenant: &str,
        previous: Option<&Customer>,
        customer: &Customer,
        fields: &[FieldDef],
    ) -> StoreResult<()> {
        let before = previous.map(|p| (p, memberships_of(p, fields)));
        self.write_customer(tenant, before, customer, fields).await
    }

    /// [`Store::save_customer`] from the memberships `previous` holds rows for.
    async fn write_customer(
        &self,
        tenant: &str,
        previous: Option<(&Customer, Vec<Membership>)>,
        customer: &Customer,
        fields: &[FieldDef],
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        let item = customer_item(tenant, customer, fields)?;
        match &previous {
            None => tx.create(
                item,
                OnFail::AlreadyExists(format!("customer `{}`", customer.id)),
            )?,
            Some((previous, _)) => tx.replace(item, previous.version)?,
        }
        let after = (customer, memberships_of(customer, fields));
        move_indexes(&mut tx, tenant, previous, Some(after))?;
        self.commit(tx).await
    }

    /// Deletes a customer still at its read version, with everything that indexes it.
    pub async fn delete_customer(
        &self,
        tenant: &str,
        customer: &Customer,
        fields: &[FieldDef],
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.delete(
            key(
                keys::customer_home(tenant, &customer.id),
                sk(CUSTOMER, &customer.id),
            ),
            Some((
                "version = :expected",
                Item::from([(":expected".to_owned(), n(customer.version as i64))]),
            )),
            OnFail::VersionMismatch,
        )?;
        let before = (customer, memberships_of(customer, fields));
        move_indexes(&mut tx, tenant, Some(before), None)?;
        self.commit(tx).await
    }
}

/// The membership partition that holds the row of `customer_id` for `membership`.
fn partition_of(tenant: &str, membership: &Membership, customer_id: &str) -> String {
    membership_partition(tenant, membership, shard_of(customer_id))
}

/// One shard of a membership's rows.
pub(crate) fn membership_partition(tenant: &str, membership: &Membership, shard: u8) -> String {
    match membership {
        Membership::Segment(id) => keys::segment_members(tenant, id, shard),
        Membership::Cluster {
            field, value_key, ..
        } => keys::cluster_members(tenant, field, value_key, shard),
    }
}

/// The keys of the customer items of `ids`.
pub(crate) fn customer_keys(tenant: &str, ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| (keys::customer_home(tenant, id), sk(CUSTOMER, id)))
        .collect()
}

/// The customer a membership row is for.
fn member_id(row: &Item) -> Option<String> {
    Some(row.get("customer_id")?.as_s().ok()?.clone())
}

/// Adds the steps that move a customer's email guard and membership rows from what
/// `before` held to what `after` needs. Every item is the customer's own: counts are
/// kept from the stream ([`crate::counts`]), so no two customers' writes share an item.
/// Unchanged parts cost nothing.
fn move_indexes(
    tx: &mut Tx,
    tenant: &str,
    before: Option<(&Customer, Vec<Membership>)>,
    after: Option<(&Customer, Vec<Membership>)>,
) -> StoreResult<()> {
    let old: Option<&Customer> = before.as_ref().map(|(c, _)| *c);
    let new: Option<&Customer> = after.as_ref().map(|(c, _)| *c);
    let id = old.or(new).map(|c| c.id.as_str()).unwrap_or_default();

    let old_email = old.map(Customer::email_key);
    let new_email = new.map(Customer::email_key);
    if old_email != new_email {
        if let Some(old) = &old_email {
            tx.delete(email_guard(tenant, old), None, OnFail::Never)?;
        }
        if let (Some(new_key), Some(customer)) = (&new_email, new) {
            let mut guard = email_guard(tenant, new_key);
            guard.insert("customer_id".into(), AttributeValue::S(id.to_owned()));
            tx.create(
                guard,
                OnFail::Duplicate(format!(
                    "a customer with email `{}` already exists",
                    customer.email
                )),
            )?;
        }
    }

    let rows = |side: Option<(&Customer, Vec<Membership>)>| -> BTreeSet<String> {
        side.map(|(_, m)| m.iter().map(|m| partition_of(tenant, m, id)).collect())
            .unwrap_or_default()
    };
    let (old_rows, new_rows) = (rows(before), rows(after));
    for gone in old_rows.difference(&new_rows) {
        tx.delete(membership(gone.clone(), id), None, OnFail::Never)?;
    }
    for added in new_rows.difference(&old_rows) {
        tx.put(membership(added.clone(), id))?;
    }
    Ok(())
}

/// What a customer is counted in, as stored on its item for the stream's counting.
pub(crate) fn memberships_of(customer: &Customer, fields: &[FieldDef]) -> Vec<Membership> {
    let mut out: Vec<Membership> = customer
        .segment_id
        .iter()
        .map(|id| Membership::Segment(id.clone()))
        .collect();
    for field in fields.iter().filter(|f| f.cluster) {
        if let Some(value_key) = customer.cluster_value_key(field) {
            out.push(Membership::Cluster {
                field: field.name.clone(),
                stamp: stamp_of(field),
                value_key,
            });
        }
    }
    out
}

/// How many customers hold one value of a cluster field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ClusterValueCount {
    pub field: String,
    /// The value as written in `?cluster.<field>=<value>`.
    pub value: String,
    pub count: i64,
}

impl Store {
    /// Every cluster value that has customers, per field: one Query of the counters.
    pub async fn cluster_value_counts(&self, tenant: &str) -> StoreResult<Vec<ClusterValueCount>> {
        let counts: Vec<ClusterValueCount> =
            self.query_all(&keys::tenant(tenant), CLUSTER_COUNT).await?;
        Ok(counts.into_iter().filter(|c| c.count > 0).collect())
    }
}

/// Repairs of one customer that keep racing its other writers before giving up.
const REPAIR_ATTEMPTS: u32 = 5;
/// Customers repaired at once (each is its own transaction of its own items).
const REPAIRS_IN_FLIGHT: usize = 16;

impl Store {
    /// Takes customers out of segments and cluster fields that no longer exist (a write
    /// validated just before the deletion and landed just after): the deleting request
    /// sweeps the members it can see, and the stream's counting reports the others.
    /// Returns how many customers were rewritten.
    pub async fn repair_customers(&self, tenant: &str, ids: &[String]) -> StoreResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (fields, segments) =
            tokio::try_join!(self.list_fields(tenant), self.all_segments(tenant))?;
        let segments: std::collections::HashSet<String> =
            segments.into_iter().map(|s| s.id).collect();
        let repairs: Vec<_> = ids
            .iter()
            .map(|id| self.repair_customer(tenant, id, &fields, &segments))
            .collect();
        let repairs = futures_util::stream::iter(repairs)
            .buffer_unordered(REPAIRS_IN_FLIGHT)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(repairs.into_iter().filter(|&repaired| repaired).count())
    }

    /// [`Store::repair_customers`] for one customer; `true` when it was rewritten.
    async fn repair_customer(
        &self,
        tenant: &str,
        id: &str,
        fields: &[FieldDef],
        segments: &std::collections::HashSet<String>,
    ) -> StoreResult<bool> {
        for attempt in 1..=REPAIR_ATTEMPTS {
            let home = keys::customer_home(tenant, id);
            let Some(item) = self.get_raw(home, sk(CUSTOMER, id)).await? else {
                return Ok(false);
            };
            let held = decode_memberships(item.get(MEMBERSHIPS));
            let current: Customer = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?;
            let segment_exists = current
                .segment_id
                .as_ref()
                .is_none_or(|s| segments.contains(s));
            let Some(next) = current.without_dangling(fields, segment_exists, chrono::Utc::now())
            else {
                return Ok(false);
            };
            let before = Some((&current, held.into_iter().collect()));
            match self.write_customer(tenant, before, &next, fields).await {
                Ok(()) => return Ok(true),
                Err(crate::StoreError::VersionMismatch | crate::StoreError::Conflict(_))
                    if attempt < REPAIR_ATTEMPTS => {}
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }

    /// The ids of every customer with a row in a membership (all shards at once): the
    /// rows a filtered report starts from, and the members a deletion sweeps.
    pub async fn member_ids(
        &self,
        tenant: &str,
        membership: &CustomerFilter,
    ) -> StoreResult<Vec<String>> {
        let partitions = membership.partitions(tenant);
        let rows = try_join_all(
            partitions
                .iter()
                .map(|p| self.query_all_items(p, CUSTOMER, &|_| true)),
        )
        .await?;
        Ok(rows.iter().flatten().filter_map(member_id).collect())
    }

    /// Whether any customer has a row in a membership: one small read per shard, at once.
    pub(crate) async fn has_members(
        &self,
        tenant: &str,
        membership: &CustomerFilter,
    ) -> StoreResult<bool> {
        let partitions = membership.partitions(tenant);
        let pages = try_join_all(
            partitions
                .iter()
                .map(|p| self.query_page(p, CUSTOMER, 1, None, &|_| true)),
        )
        .await?;
        Ok(pages.iter().any(|page| !page.items.is_empty()))
    }
}
