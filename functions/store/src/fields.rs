use domain::FieldDef;

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
    /// "No customer holds a value" is read from the value counts and the membership rows
    /// of every value counted so far; a write that lands after the delete is swept here
    /// or repaired by the stream's counting, whose steps require the field to exist.
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
        let partitions: Vec<String> = values
            .iter()
            .map(|v| keys::cluster_members(tenant, &field.name, &v.value))
            .collect();
        let counted: i64 = values.iter().map(|v| v.count.max(0)).sum();
        let mut in_use = field.member_count.max(counted);
        if in_use == 0 {
            for partition in &partitions {
                if self.has_members(partition).await? {
                    in_use = 1;
                    break;
                }
            }
        }
        if in_use > 0 {
            return Err(StoreError::InUse {
                what: format!("cluster field `{}`", field.name),
                count: in_use,
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
        // The field's value counts go with it: a field re-created under the name starts at 0.
        for value in &values {
            self.delete_item(
                keys::tenant(tenant),
                crate::counts::cluster_count_sk(&field.name, &value.value),
            )
            .await?;
        }
        let mut stragglers = Vec::new();
        for partition in &partitions {
            stragglers.extend(self.member_ids(partition).await?);
        }
        self.repair_customers(tenant, &stragglers).await?;
        Ok(())
    }
}
