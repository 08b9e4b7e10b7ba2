use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Segment, SegmentStatus};

use crate::keys::{self, SEGMENT, SEGMENT_NAME, sk};
use crate::write::{Item, OnFail, Tx, entity_item, key, n};
use crate::{Page, PageKey, Store, StoreError, StoreResult};

const COUNT: &str = "customer_count";

fn segment_item(tenant: &str, segment: &Segment) -> StoreResult<Item> {
    entity_item(
        keys::tenant(tenant),
        sk(SEGMENT, &segment.id),
        "segment",
        segment,
    )
}

/// Holds a segment name so that two segments cannot share it (case-insensitive).
fn name_guard(tenant: &str, name_key: &str) -> Item {
    key(keys::tenant(tenant), sk(SEGMENT_NAME, name_key))
}

fn add_name_guard(tx: &mut Tx, tenant: &str, segment: &Segment) -> StoreResult<()> {
    let mut guard = name_guard(tenant, &segment.name_key());
    guard.insert("segment_id".into(), AttributeValue::S(segment.id.clone()));
    tx.create(
        guard,
        OnFail::Duplicate(format!("a segment named `{}` already exists", segment.name)),
    )
}

impl Store {
    pub async fn create_segment(&self, tenant: &str, segment: &Segment) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.create(
            segment_item(tenant, segment)?,
            OnFail::AlreadyExists(format!("segment `{}`", segment.id)),
        )?;
        add_name_guard(&mut tx, tenant, segment)?;
        self.commit(tx).await
    }

    pub async fn get_segment(&self, tenant: &str, id: &str) -> StoreResult<Option<Segment>> {
        self.get_item(keys::tenant(tenant), sk(SEGMENT, id)).await
    }

    /// Every segment of the tenant (the master list is small), e.g. for rule input.
    pub async fn all_segments(&self, tenant: &str) -> StoreResult<Vec<Segment>> {
        self.query_all(&keys::tenant(tenant), SEGMENT).await
    }

    /// Segments in id order, optionally only those with `status`.
    pub async fn list_segments(
        &self,
        tenant: &str,
        status: Option<SegmentStatus>,
        limit: usize,
        start: Option<PageKey>,
    ) -> StoreResult<Page<Segment>> {
        let keep = move |item: &Item| match status {
            None => true,
            Some(status) => {
                item.get("status").and_then(|v| v.as_s().ok()) == Some(&status.as_str().to_owned())
            }
        };
        let page = self
            .query_page(&keys::tenant(tenant), SEGMENT, limit, start, &keep)
            .await?;
        page.decode()
    }

    /// Replaces `old` by `new` (same id), moving the name guard when the name changes.
    pub async fn update_segment(
        &self,
        tenant: &str,
        old: &Segment,
        new: &Segment,
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.rewrite(
            segment_item(tenant, new)?,
            segment_item(tenant, old)?.into_keys(),
            &[COUNT],
            old.version,
        )?;
        if old.name_key() != new.name_key() {
            tx.delete(name_guard(tenant, &old.name_key()), None, OnFail::Never)?;
            add_name_guard(&mut tx, tenant, new)?;
        }
        self.commit(tx).await
    }

    /// Deletes a segment that no customer is in and that is still at its read version.
    ///
    /// No customer write touches the segment item, so "no customer is in it" is read
    /// from its membership rows: any row refuses the delete. A customer write validated
    /// just before the delete may still land just after it; the delete sweeps the rows
    /// it finds once the segment is gone, and the stream's counting repairs any later one.
    pub async fn delete_segment(&self, tenant: &str, segment: &Segment) -> StoreResult<()> {
        let members = crate::CustomerFilter::Segment(segment.id.clone());
        if self.has_members(tenant, &members).await? {
            return Err(StoreError::InUse {
                what: format!("segment `{}`", segment.name),
                count: segment.customer_count.max(1),
            });
        }
        let mut tx = self.tx();
        tx.delete(
            key(keys::tenant(tenant), sk(SEGMENT, &segment.id)),
            Some((
                "version = :expected",
                Item::from([(":expected".to_owned(), n(segment.version as i64))]),
            )),
            OnFail::VersionMismatch,
        )?;
        tx.delete(name_guard(tenant, &segment.name_key()), None, OnFail::Never)?;
        self.commit(tx).await?;
        let stragglers = self.member_ids(tenant, &members).await?;
        self.repair_customers(tenant, &stragglers).await?;
        Ok(())
    }
}

pub(crate) fn segment_key(tenant: &str, id: &str) -> Item {
    key(keys::tenant(tenant), sk(SEGMENT, id))
}

pub(crate) const SEGMENT_COUNT: &str = COUNT;
