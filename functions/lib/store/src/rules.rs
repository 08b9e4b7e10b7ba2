use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use domain::rule::{Rule, RuleVersion};

use crate::error::from_sdk;
use crate::keys::{self, RULE, RULE_OUTPUT, RULE_VERSION, sk};
use crate::write::{Item, OnFail, entity_item, key, n};
use crate::{Store, StoreError, StoreResult};

/// DynamoDB items hold at most 400 KB; chunks leave room for keys and attributes.
const CHUNK_BYTES: usize = 300 * 1024;

fn rule_item(tenant: &str, rule: &Rule) -> StoreResult<Item> {
    entity_item(keys::tenant(tenant), sk(RULE, &rule.name), "rule", rule)
}

/// What a rule owns: its cluster outputs, and the segment when it may set it. Each has a
/// guard item naming the owner, so two rules never own one output, even when they are
/// configured at the same moment.
fn owned_outputs(rule: &Rule) -> Vec<String> {
    let mut owned = rule.outputs.clone();
    if rule.segment_output {
        owned.push("@segment".to_owned());
    }
    owned
}

pub(crate) fn output_guard(tenant: &str, output: &str) -> Item {
    key(keys::tenant(tenant), sk(RULE_OUTPUT, output))
}

/// Adds the guard changes that move ownership from `before`'s outputs to `after`'s.
fn move_output_guards(
    tx: &mut crate::write::Tx,
    tenant: &str,
    before: Option<&Rule>,
    after: Option<&Rule>,
) -> StoreResult<()> {
    let old = before.map(owned_outputs).unwrap_or_default();
    let new = after.map(owned_outputs).unwrap_or_default();
    for output in old.iter().filter(|o| !new.contains(o)) {
        tx.delete(output_guard(tenant, output), None, OnFail::Never)?;
    }
    if let Some(rule) = after {
        for output in new.iter().filter(|o| !old.contains(o)) {
            let mut guard = output_guard(tenant, output);
            guard.insert("rule".into(), AttributeValue::S(rule.name.clone()));
            let shown = output.trim_start_matches('@');
            tx.create(
                guard,
                OnFail::Duplicate(format!(
                    "another rule already sets `{shown}`; every output has one owner"
                )),
            )?;
        }
    }
    Ok(())
}

/// Version sort keys are zero-padded so versions list in numeric order.
fn version_sk(rule: &str, number: u32) -> String {
    format!("{RULE_VERSION}{rule}#{number:08}")
}

impl Store {
    pub async fn get_rule(&self, tenant: &str, name: &str) -> StoreResult<Option<Rule>> {
        self.get_item(keys::tenant(tenant), sk(RULE, name)).await
    }

    /// All of a tenant's rules, in name order (a small set).
    pub async fn list_rules(&self, tenant: &str) -> StoreResult<Vec<Rule>> {
        self.query_all(&keys::tenant(tenant), RULE).await
    }

    /// Creates the rule, or replaces it when `previous` is given and still current.
    pub async fn save_rule(
        &self,
        tenant: &str,
        previous: Option<&Rule>,
        rule: &Rule,
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        let item = rule_item(tenant, rule)?;
        match previous {
            None => tx.create(item, OnFail::AlreadyExists(format!("rule `{}`", rule.name)))?,
            Some(previous) => tx.replace(item, previous.version)?,
        }
        move_output_guards(&mut tx, tenant, previous, Some(rule))?;
        self.commit(tx).await
    }

    /// Records a new module version and points the rule at it, in one transaction that is
    /// written only after the module's chunks are stored, so a half-uploaded module is
    /// never visible.
    pub async fn add_rule_version(
        &self,
        tenant: &str,
        previous: &Rule,
        rule: &Rule,
        version: &RuleVersion,
    ) -> StoreResult<()> {
        let mut tx = self.tx();
        tx.replace(rule_item(tenant, rule)?, previous.version)?;
        tx.create(
            entity_item(
                keys::tenant(tenant),
                version_sk(&rule.name, version.number),
                "rule_version",
                version,
            )?,
            OnFail::AlreadyExists(format!(
                "version {} of rule `{}`",
                version.number, rule.name
            )),
        )?;
        self.commit(tx).await
    }

    pub async fn list_rule_versions(
        &self,
        tenant: &str,
        rule: &str,
    ) -> StoreResult<Vec<RuleVersion>> {
        self.query_all(&keys::tenant(tenant), &format!("{RULE_VERSION}{rule}#"))
            .await
    }

    pub async fn get_rule_version(
        &self,
        tenant: &str,
        rule: &str,
        number: u32,
    ) -> StoreResult<Option<RuleVersion>> {
        self.get_item(keys::tenant(tenant), version_sk(rule, number))
            .await
    }

    /// Deletes a rule still at its read version and its version records. Module bytes are
    /// content-addressed and may be shared by other versions; they stay.
    pub async fn delete_rule(&self, tenant: &str, rule: &Rule) -> StoreResult<()> {
        let versions = self.list_rule_versions(tenant, &rule.name).await?;
        let mut tx = self.tx();
        tx.delete(
            key(keys::tenant(tenant), sk(RULE, &rule.name)),
            Some((
                "version = :expected",
                Item::from([(":expected".to_owned(), n(rule.version as i64))]),
            )),
            OnFail::VersionMismatch,
        )?;
        move_output_guards(&mut tx, tenant, Some(rule), None)?;
        self.commit(tx).await?;
        // The rule is gone, so no reader follows these any more; delete them in batches.
        for chunk in versions.chunks(25) {
            let mut tx = self.tx();
            for version in chunk {
                tx.delete(
                    key(keys::tenant(tenant), version_sk(&rule.name, version.number)),
                    None,
                    OnFail::Never,
                )?;
            }
            self.commit(tx).await?;
        }
        Ok(())
    }

    /// Stores bytes (a module or a compiled artifact) under a content name, in chunks
    /// that each say how many there are, so a reader can tell a complete blob from a
    /// partial one. Writing the same name again is harmless.
    pub async fn put_blob(&self, tenant: &str, name: &str, bytes: &[u8]) -> StoreResult<()> {
        let partition = keys::blob(tenant, name);
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[]]
        } else {
            bytes.chunks(CHUNK_BYTES).collect()
        };
        let total = chunks.len();
        let requests: Vec<WriteRequest> = chunks
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let mut item = key(partition.clone(), format!("CHUNK#{i:05}"));
                item.insert("data".into(), AttributeValue::B(Blob::new(*data)));
                item.insert("chunks".into(), n(total as i64));
                item.insert("size".into(), n(bytes.len() as i64));
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build())
            })
            .collect::<StoreResult<_>>()?;
        // Keep each request under DynamoDB's 16 MB batch limit.
        for batch in requests.chunks(25) {
            let mut pending = Some(HashMap::from([(self.table.clone(), batch.to_vec())]));
            let mut attempt = 0u32;
            while let Some(items) = pending.take().filter(|p| !p.is_empty()) {
                if attempt > 8 {
                    return Err(StoreError::Unavailable(
                        "blob write kept being throttled".into(),
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(crate::error::backoff(attempt, 20)).await;
                }
                attempt += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(from_sdk)?;
                pending = output.unprocessed_items;
            }
        }
        Ok(())
    }

    /// The whole blob, or `None` when it is missing or incomplete.
    pub async fn get_blob(&self, tenant: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let partition = keys::blob(tenant, name);
        let mut bytes = Vec::new();
        let mut seen = 0usize;
        let mut expected: Option<(usize, usize)> = None;
        let mut start = None;
        loop {
            let page = self
                .query_page(&partition, "CHUNK#", 16, start, &|_| true)
                .await?;
            for item in &page.items {
                let number = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse::<usize>().ok())
                };
                let (Some(chunks), Some(size), Some(AttributeValue::B(data))) =
                    (number("chunks"), number("size"), item.get("data"))
                else {
                    return Ok(None);
                };
                if expected.is_some_and(|e| e != (chunks, size)) {
                    return Ok(None);
                }
                expected = Some((chunks, size));
                bytes.extend_from_slice(data.as_ref());
                seen += 1;
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        match expected {
            Some((chunks, size)) if chunks == seen && size == bytes.len() => Ok(Some(bytes)),
            _ => Ok(None),
        }
    }
}
