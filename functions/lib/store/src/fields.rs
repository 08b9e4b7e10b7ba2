use std::collections::BTreeSet;

use domain::FieldDef;
use futures_util::future::try_join_all;

use crate::keys::{self, FIELD, sk};
use crate::write::{Item, OnFail, entity_item, key, n};
use crate::{ClusterValueCount, Store, StoreError, StoreResult};

const COUNT: &str = "member_count";
pub(crate) const FIELD_COUNT: &str = COUNT;

fn field_item(tenant: &str, field: &FieldDef) -> StoreResult<Item> {
    entity_item(keys::tenant(tenant), sk(FIELD, &field.name), "field", field)
}

pub(crate) fn field_key(tenant: &str, name: &str) -> Item {
    key(keys::tenant(tenant), sk(FIELD, name))
}

impl Store {
    pub async fn create_field(&self, tenant: &str, field: &FieldDef) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.create(
            field_item(tenant, field)?,
            OnFail::AlreadyExists(format!("field `{}`", field.name)),
        )?;
        self.commit(tx).await
    }

    pub async fn get_field(&self, tenant: &str, name: &str) -> StoreResult<Option<FieldDef>> {
        self.get_item(keys::tenant(tenant), sk(FIELD, name)).await
    }

    /// All of a tenant's field definitions, in name order (a bounded, small set).
    pub async fn list_fields(&self, tenant: &str) -> StoreResult<Vec<FieldDef>> {
        self.query_all(&keys::tenant(tenant), FIELD).await
    }

    pub async fn update_field(
        &self,
        tenant: &str,
        old: &FieldDef,
        new: &FieldDef,
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.rewrite(
            field_item(tenant, new)?,
            field_item(tenant, old)?.into_keys(),
            &[COUNT],
            old.version,
        )?;
        self.commit(tx).await
    }

    /// Deletes a field definition still at its read version; a cluster field only when no
    /// customer holds a value (its membership rows would otherwise dangle) and no rule
    /// sets it.
    ///
    /// "No customer holds a value" is read from the membership rows of every value
    /// counted so far and, for an enum or boolean, of every value it has (the counts
    /// lag; the rows do not). A write that lands after the delete, or holds a text value
    /// not counted yet, is swept here or repaired by the stream's counting, whose steps
    /// require the field to exist.
    pub async fn delete_field(&self, tenant: &str, field: &FieldDef) -> StoreResult<()> {
        let values: Vec<ClusterValueCount> = if field.cluster {
            self.query_all(
                &keys::tenant(tenant),
                &format!("{}{}#", keys::CLUSTER_COUNT, field.name),
            )
            .await?
        } else {
            Vec::new()
        };
        // Every value a customer can hold a row for: those counted so far, and for an
        // enum or a boolean every value it has.
        let mut value_keys: BTreeSet<String> = values.iter().map(|v| v.value.clone()).collect();
        if field.cluster {
            value_keys.extend(field.values.iter().cloned());
            if field.field_type == domain::FieldType::Boolean {
                value_keys.extend(["true".to_owned(), "false".to_owned()]);
            }
        }
        let memberships: Vec<crate::CustomerFilter> = value_keys
            .into_iter()
            .map(|value_key| crate::CustomerFilter::Cluster {
                field: field.name.clone(),
                value_key,
            })
            .collect();
        let occupied =
            try_join_all(memberships.iter().map(|m| self.has_members(tenant, m))).await?;
        if occupied.into_iter().any(|o| o) {
            let counted: i64 = values.iter().map(|v| v.count.max(0)).sum();
            return Err(StoreError::InUse {
                what: format!("cluster field `{}`", field.name),
                count: field.member_count.max(counted).max(1),
            });
        }
        let mut tx = self.tx();
        tx.delete(
            field_key(tenant, &field.name),
            Some((
                "version = :expected",
                Item::from([(":expected".to_owned(), n(field.version as i64))]),
            )),
            OnFail::VersionMismatch,
        )?;
        // A rule that sets the field holds its output guard; its outputs change first.
        tx.check(
            crate::rules::output_guard(tenant, &field.name),
            "attribute_not_exists(pk)",
            OnFail::Duplicate(format!(
                "a rule sets field `{}`; remove it from the rule's outputs first",
                field.name
            )),
        )?;
        self.commit(tx).await?;
        // The field's value counts go with it: a field re-created under the name starts
        // at 0. Then the members that landed meanwhile are taken out.
        try_join_all(values.iter().map(|value| {
            self.delete_item(
                keys::tenant(tenant),
                crate::counts::cluster_count_sk(&field.name, &value.value),
            )
        }))
        .await?;
        let stragglers: Vec<String> =
            try_join_all(memberships.iter().map(|m| self.member_ids(tenant, m)))
                .await?
                .concat();
        self.repair_customers(tenant, &stragglers).await?;
        Ok(())
    }
}
