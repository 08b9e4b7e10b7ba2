use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Customer, FieldDef, Violations};

use crate::fields::{FIELD_COUNT, field_key};
use std::collections::HashMap;

use crate::keys::{self, CLUSTER_COUNT, CUSTOMER, EMAIL, sk};
use crate::segments::{SEGMENT_COUNT, segment_key};
use crate::write::{Item, OnFail, Tx, entity_item, key, n};
use crate::{Page, PageKey, Store, StoreResult};

/// Which customers a listing walks; each is one Query on its own partition.
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
    /// The partition a listing with this filter walks.
    pub(crate) fn partition(&self, tenant: &str) -> String {
        match self {
            Self::All => keys::tenant(tenant),
            Self::Segment(segment_id) => keys::segment_members(tenant, segment_id),
            Self::Cluster { field, value_key } => keys::cluster_members(tenant, field, value_key),
        }
    }
}

fn customer_item(tenant: &str, customer: &Customer) -> StoreResult<Item> {
    entity_item(
        keys::tenant(tenant),
        sk(CUSTOMER, &customer.id),
        "customer",
        customer,
    )
}

fn email_guard(tenant: &str, email_key: &str) -> Item {
    key(keys::tenant(tenant), sk(EMAIL, email_key))
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

fn cluster_partition(
    tenant: &str,
    field: &FieldDef,
    customer: Option<&Customer>,
) -> Option<String> {
    let value_key = customer?.cluster_value_key(field)?;
    Some(keys::cluster_members(tenant, &field.name, &value_key))
}

impl Store {
    pub async fn get_customer(&self, tenant: &str, id: &str) -> StoreResult<Option<Customer>> {
        self.get_item(keys::tenant(tenant), sk(CUSTOMER, id)).await
    }

    /// Many customers by id in one batch read; missing ones are left out.
    pub async fn get_customers(&self, tenant: &str, ids: &[String]) -> StoreResult<Vec<Customer>> {
        let sort_keys: Vec<String> = ids.iter().map(|id| sk(CUSTOMER, id)).collect();
        self.batch_get(&keys::tenant(tenant), &sort_keys).await
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
        let guard: Option<Guard> = self
            .get_item(keys::tenant(tenant), sk(EMAIL, &email.to_lowercase()))
            .await?;
        match guard {
            Some(guard) => self.get_customer(tenant, &guard.customer_id).await,
            None => Ok(None),
        }
    }

    /// One page of customers. Filtered listings walk a membership partition and fetch
    /// the page's customers in one batch, so the cost follows the page size.
    pub async fn list_customers(
        &self,
        tenant: &str,
        filter: &CustomerFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> StoreResult<Page<Customer>> {
        let page = self
            .query_page(&filter.partition(tenant), CUSTOMER, limit, start, &|_| true)
            .await?;
        if matches!(filter, CustomerFilter::All) {
            return page.decode();
        }
        let sort_keys: Vec<String> = page
            .items
            .iter()
            .filter_map(|item| item.get(keys::SK)?.as_s().ok().cloned())
            .collect();
        Ok(Page {
            items: self.batch_get(&keys::tenant(tenant), &sort_keys).await?,
            next: page.next,
        })
    }

    /// Writes a customer (created when `previous` is `None`, else replacing it at its
    /// version) together with its email guard, segment and cluster memberships and their
    /// counters, in one transaction. `fields` are the tenant's current definitions.
    pub async fn save_customer(
        &self,
        tenant: &str,
        previous: Option<&Customer>,
        customer: &Customer,
        fields: &[FieldDef],
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        let item = customer_item(tenant, customer)?;
        match previous {
            None => tx.create(
                item,
                OnFail::AlreadyExists(format!("customer `{}`", customer.id)),
            )?,
            Some(previous) => tx.replace(item, previous.version)?,
        }
        move_indexes(&mut tx, tenant, previous, Some(customer), fields)?;
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
            key(keys::tenant(tenant), sk(CUSTOMER, &customer.id)),
            Some((
                "version = :expected",
                Item::from([(":expected".to_owned(), n(customer.version as i64))]),
            )),
            OnFail::VersionMismatch,
        )?;
        move_indexes(&mut tx, tenant, Some(customer), None, fields)?;
        self.commit(tx).await
    }
}

/// Adds the steps that move a customer's guard, memberships and counters from what
/// `before` needed to what `after` needs. Unchanged parts cost nothing.
fn move_indexes(
    tx: &mut Tx,
    tenant: &str,
    before: Option<&Customer>,
    after: Option<&Customer>,
    fields: &[FieldDef],
) -> StoreResult<()> {
    let id = before.or(after).map(|c| c.id.as_str()).unwrap_or_default();

    let old_email = before.map(Customer::email_key);
    let new_email = after.map(Customer::email_key);
    if old_email != new_email {
        if let Some(old) = &old_email {
            tx.delete(email_guard(tenant, old), None, OnFail::Never)?;
        }
        if let (Some(new), Some(customer)) = (&new_email, after) {
            let mut guard = email_guard(tenant, new);
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

    let old_segment = before.and_then(|c| c.segment_id.as_deref());
    let new_segment = after.and_then(|c| c.segment_id.as_deref());
    if old_segment != new_segment {
        if let Some(old) = old_segment {
            tx.delete(
                membership(keys::segment_members(tenant, old), id),
                None,
                OnFail::Never,
            )?;
            tx.add(
                segment_key(tenant, old),
                SEGMENT_COUNT,
                -1,
                None,
                OnFail::Never,
            )?;
        }
        if let Some(new) = new_segment {
            tx.put(membership(keys::segment_members(tenant, new), id))?;
            // Counting and checking in one step: the segment must still exist and be active.
            tx.add(
                segment_key(tenant, new),
                SEGMENT_COUNT,
                1,
                Some((
                    "attribute_exists(pk) AND #status = :active",
                    Item::from([(":active".to_owned(), AttributeValue::S("active".into()))]),
                )),
                OnFail::Invalid(Violations::one(
                    "/segment_id",
                    format!("segment `{new}` was deactivated or deleted meanwhile"),
                )),
            )?;
        }
    }

    for field in fields.iter().filter(|f| f.cluster) {
        let old = cluster_partition(tenant, field, before);
        let new = cluster_partition(tenant, field, after);
        if old == new {
            continue;
        }
        if let Some(old) = &old {
            tx.delete(membership(old.clone(), id), None, OnFail::Never)?;
        }
        if let Some(new) = new.clone() {
            tx.put(membership(new, id))?;
        }
        let values = |c: Option<&Customer>| c.and_then(|c| c.cluster_value_key(field));
        if let Some(old) = values(before) {
            count_cluster_value(tx, tenant, &field.name, &old, -1)?;
        }
        if let Some(new) = values(after) {
            count_cluster_value(tx, tenant, &field.name, &new, 1)?;
        }
        let delta = i64::from(new.is_some()) - i64::from(old.is_some());
        if delta > 0 {
            tx.add(
                field_key(tenant, &field.name),
                FIELD_COUNT,
                delta,
                Some(("attribute_exists(pk)", Item::new())),
                OnFail::Invalid(Violations::one(
                    format!("/fields/{}", field.name),
                    "the field was deleted meanwhile",
                )),
            )?;
        } else if delta < 0 {
            tx.add(
                field_key(tenant, &field.name),
                FIELD_COUNT,
                delta,
                None,
                OnFail::Never,
            )?;
        }
    }
    Ok(())
}

/// Moves the per-value member counter of a cluster field (what `GET /clusters` lists)
/// in the same transaction as the membership itself, so counts never drift.
fn count_cluster_value(
    tx: &mut Tx,
    tenant: &str,
    field: &str,
    value_key: &str,
    delta: i64,
) -> StoreResult<()> {
    tx.update(
        key(keys::tenant(tenant), cluster_count_sk(field, value_key)),
        "ADD #count :delta SET #field = :field, #value = :value, #kind = :kind",
        HashMap::from([
            ("#count".into(), "count".into()),
            ("#field".into(), "field".into()),
            ("#value".into(), "value".into()),
            ("#kind".into(), "kind".into()),
        ]),
        Item::from([
            (":delta".into(), n(delta)),
            (":field".into(), AttributeValue::S(field.to_owned())),
            (":value".into(), AttributeValue::S(value_key.to_owned())),
            (":kind".into(), AttributeValue::S("cluster_count".into())),
        ]),
        OnFail::Never,
    )
}

fn cluster_count_sk(field: &str, value_key: &str) -> String {
    format!("{CLUSTER_COUNT}{field}#{value_key}")
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
