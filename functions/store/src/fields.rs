use domain::FieldDef;

use crate::keys::{self, FIELD, sk};
use crate::write::{Item, OnFail, entity_item, key, n};
use crate::{Store, StoreResult};

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
    /// customer holds a value (its membership index would otherwise dangle) and no rule
    /// sets it.
    pub async fn delete_field(&self, tenant: &str, field: &FieldDef) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.delete(
            field_key(tenant, &field.name),
            Some((
                "version = :expected AND (attribute_not_exists(member_count) OR member_count = :zero)",
                Item::from([
                    (":expected".to_owned(), n(field.version as i64)),
                    (":zero".to_owned(), n(0)),
                ]),
            )),
            OnFail::InUse {
                what: format!("cluster field `{}`", field.name),
                count_attribute: COUNT,
            },
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
        self.commit(tx).await
    }
}
