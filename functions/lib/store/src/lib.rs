//! The only crate that knows DynamoDB. It persists the domain types in one table whose
//! keys are all tenant-scoped (see [`keys`]), keeps uniqueness guards and membership
//! rows in the same transaction as the entity they describe, counts memberships from
//! the stream ([`counts`]) so that no two customers' writes share an item, and pages
//! every listing with a Query, never a Scan.

mod backfill;
pub mod counts;
mod customers;
mod error;
mod fields;
pub mod keys;
mod rules;
mod sales;
mod segments;
pub mod stream;
mod table;
mod targets;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

pub use counts::CountedWrite;
pub use customers::{ClusterValueCount, CustomerFilter};
pub use error::{StoreError, StoreResult};
pub use sales::SaleRecorded;
pub use table::table_definition_summary;

/// Where a listing stopped: the last key DynamoDB evaluated. Opaque to clients (the API
/// signs it into a cursor), checked against the partition it is used with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageKey(pub BTreeMap<String, String>);

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageKey>,
}

impl Page<HashMap<String, AttributeValue>> {
    /// The page with its raw items turned into domain types.
    fn decode<T: for<'de> Deserialize<'de>>(self) -> StoreResult<Page<T>> {
        Ok(Page {
            items: self
                .items
                .into_iter()
                .map(serde_dynamo::aws_sdk_dynamodb_1::from_item)
                .collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

/// How to reach the table; read from the environment by the functions.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub table_name: String,
    /// A local DynamoDB-API server (moto); `None` on AWS.
    pub endpoint_url: Option<String>,
}

/// A function's environment lacks what it needs to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} {why}")]
    Invalid {
        name: &'static str,
        why: &'static str,
    },
}

impl StoreConfig {
    /// `TABLE_NAME` (required) and `DYNAMODB_ENDPOINT` (local stack only).
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name =
            std::env::var("TABLE_NAME").map_err(|_| ConfigError::Missing("TABLE_NAME"))?;
        let endpoint_url = std::env::var("DYNAMODB_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty());
        Ok(Self {
            table_name,
            endpoint_url,
        })
    }

    /// The SDK configuration of every client of the table (this store's, and the local
    /// stack's DynamoDB Streams poller): one TLS stack (rustls + ring), short timeouts so
    /// a missing database answers 503 instead of hanging, the SDK's standard retries, and
    /// with a local endpoint a fixed region and credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(12))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .timeout_config(timeouts);
        if let Some(endpoint) = &self.endpoint_url {
            // A local server accepts any credentials; do not depend on the developer's.
            loader = loader
                .endpoint_url(endpoint)
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
        loader.load().await
    }
}

/// The product's persistence. Cheap to clone; one per warm Lambda container.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// Builds a client from [`StoreConfig::sdk_config`].
    pub async fn connect(config: &StoreConfig) -> Self {
        Self {
            client: Client::new(&config.sdk_config().await),
            table: config.table_name.clone(),
        }
    }

    /// Reads one item by key.
    async fn get_item<T: for<'de> Deserialize<'de>>(
        &self,
        pk: String,
        sk: String,
    ) -> StoreResult<Option<T>> {
        match self.get_raw(pk, sk).await? {
            Some(item) => Ok(Some(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// Reads one item by key, undecoded (strongly consistent).
    async fn get_raw(
        &self,
        pk: String,
        sk: String,
    ) -> StoreResult<Option<HashMap<String, AttributeValue>>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, AttributeValue::S(pk))
            .key(keys::SK, AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(error::from_sdk)?;
        Ok(output.item)
    }

    /// Deletes one item by key, whether or not it exists.
    async fn delete_item(&self, pk: String, sk: String) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, AttributeValue::S(pk))
            .key(keys::SK, AttributeValue::S(sk))
            .send()
            .await
            .map_err(error::from_sdk)?;
        Ok(())
    }

    /// One page of the items of `pk` whose sort key starts with `prefix`, in key order.
    /// `keep` drops items after reading (e.g. a status filter); the query goes on until the
    /// page is full or the partition is exhausted, so pages stay full.
    async fn query_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        start: Option<PageKey>,
        keep: &(dyn Fn(&HashMap<String, AttributeValue>) -> bool + Sync),
    ) -> StoreResult<Page<HashMap<String, AttributeValue>>> {
        let mut start = match start {
            Some(key) => Some(checked_start_key(key, pk, prefix)?),
            None => None,
        };
        let mut items = Vec::new();
        loop {
            let output = self
                .prefix_query(pk, prefix)
                .set_exclusive_start_key(start.take())
                .limit((limit - items.len()) as i32)
                .send()
                .await
                .map_err(error::from_sdk)?;
            items.extend(output.items.unwrap_or_default().into_iter().filter(keep));
            match output.last_evaluated_key {
                Some(last) if items.len() < limit => start = Some(last),
                Some(last) => {
                    return Ok(Page {
                        items,
                        next: Some(page_key(last)),
                    });
                }
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    /// One page of a listing spread over `partitions` (one per shard, see
    /// [`keys::SHARDS`]): the partitions one after the other, each in key order, so the
    /// page key of the last item read says where to go on. When a partition runs out
    /// before the page is full, the next ones are read at once in waves of 1, 2, 4, ...
    /// partitions: a large tenant usually fills a page from one partition, a small one
    /// in a few rounds.
    async fn query_spread_page(
        &self,
        partitions: &[String],
        prefix: &str,
        limit: usize,
        start: Option<PageKey>,
        keep: &(dyn Fn(&HashMap<String, AttributeValue>) -> bool + Sync),
    ) -> StoreResult<Page<HashMap<String, AttributeValue>>> {
        let first = match &start {
            None => 0,
            Some(key) => partitions
                .iter()
                .position(|p| key.0.get(keys::PK) == Some(p))
                .ok_or(StoreError::InvalidCursor)?,
        };
        let mut page = self
            .query_page(&partitions[first], prefix, limit, start, keep)
            .await?;
        // The partition the page's last item came from, and the next one not read yet.
        let (mut last, mut unread, mut wave) = (first, first + 1, 1);
        while page.next.is_none() && page.items.len() < limit && unread < partitions.len() {
            let room = limit - page.items.len();
            let read = &partitions[unread..(unread + wave).min(partitions.len())];
            let pages = futures_util::future::try_join_all(
                read.iter()
                    .map(|pk| self.query_page(pk, prefix, room, None, keep)),
            )
            .await?;
            for (index, shard_page) in (unread..).zip(pages) {
                let room = limit - page.items.len();
                let whole = shard_page.items.len() <= room;
                if !shard_page.items.is_empty() {
                    last = index;
                }
                page.items.extend(shard_page.items.into_iter().take(room));
                if !whole || shard_page.next.is_some() {
                    page.next = page.items.last().map(item_key);
                    break;
                }
            }
            unread += read.len();
            wave *= 2;
        }
        // Full at the end of a partition with more to come: go on after its last item
        // (the next page finds that partition exhausted and moves on).
        if page.next.is_none() && page.items.len() == limit && last + 1 < partitions.len() {
            page.next = page.items.last().map(item_key);
        }
        Ok(page)
    }

    /// Every item of a small partition prefix (field definitions), across pages.
    async fn query_all<T: for<'de> Deserialize<'de>>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> StoreResult<Vec<T>> {
        self.query_all_items(pk, prefix, &|_| true)
            .await?
            .into_iter()
            .map(|item| Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?))
            .collect()
    }

    /// [`Store::query_all`] without decoding, keeping only what `keep` accepts.
    async fn query_all_items(
        &self,
        pk: &str,
        prefix: &str,
        keep: &(dyn Fn(&HashMap<String, AttributeValue>) -> bool + Sync),
    ) -> StoreResult<Vec<HashMap<String, AttributeValue>>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self.query_page(pk, prefix, 1000, start, keep).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Reads many items by key (pk, sk), keeping the order of `item_keys`.
    async fn batch_get<T: for<'de> Deserialize<'de>>(
        &self,
        item_keys: &[(String, String)],
    ) -> StoreResult<Vec<T>> {
        self.batch_get_items(item_keys)
            .await?
            .into_iter()
            .map(|item| Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?))
            .collect()
    }

    /// [`Store::batch_get`] without decoding; missing items are left out. The chunks of
    /// 100 keys (DynamoDB's limit) are read at once.
    async fn batch_get_items(
        &self,
        item_keys: &[(String, String)],
    ) -> StoreResult<Vec<HashMap<String, AttributeValue>>> {
        let chunks = futures_util::future::try_join_all(
            item_keys
                .chunks(100)
                .map(|chunk| self.batch_get_chunk(chunk)),
        )
        .await?;
        let mut found: HashMap<(String, String), HashMap<String, AttributeValue>> =
            chunks.into_iter().flatten().collect();
        Ok(item_keys.iter().filter_map(|k| found.remove(k)).collect())
    }

    /// One BatchGetItem of at most 100 keys, with its unprocessed keys retried.
    async fn batch_get_chunk(
        &self,
        chunk: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), HashMap<String, AttributeValue>)>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for (pk, sk) in chunk {
            request = request.keys(HashMap::from([
                (keys::PK.to_owned(), AttributeValue::S(pk.clone())),
                (keys::SK.to_owned(), AttributeValue::S(sk.clone())),
            ]));
        }
        let mut found = Vec::new();
        let mut pending = Some(HashMap::from([(self.table.clone(), request.build()?)]));
        let mut attempt = 0u32;
        while let Some(request_items) = pending.take().filter(|r| !r.is_empty()) {
            if attempt > 0 {
                tokio::time::sleep(crate::error::backoff(attempt, 20)).await;
            }
            attempt += 1;
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(request_items))
                .send()
                .await
                .map_err(error::from_sdk)?;
            for item in output
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                    (item.get(keys::PK), item.get(keys::SK))
                {
                    found.push(((pk.clone(), sk.clone()), item));
                }
            }
            pending = output.unprocessed_keys;
            if attempt > 8 {
                return Err(StoreError::Unavailable(
                    "batch read kept returning unprocessed keys".into(),
                ));
            }
        }
        Ok(found)
    }
}

/// Where a listing that stopped at `item` goes on.
fn item_key(item: &HashMap<String, AttributeValue>) -> PageKey {
    page_key(
        [keys::PK, keys::SK]
            .into_iter()
            .filter_map(|k| Some((k.to_owned(), item.get(k)?.clone())))
            .collect(),
    )
}

fn page_key(last: HashMap<String, AttributeValue>) -> PageKey {
    PageKey(
        last.into_iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
    )
}

/// A page key is only accepted for the partition and prefix it came from.
fn checked_start_key(
    key: PageKey,
    pk: &str,
    prefix: &str,
) -> StoreResult<HashMap<String, AttributeValue>> {
    let fits = key.0.len() == 2
        && key.0.get(keys::PK).map(String::as_str) == Some(pk)
        && key.0.get(keys::SK).is_some_and(|sk| sk.starts_with(prefix));
    if !fits {
        return Err(StoreError::InvalidCursor);
    }
    Ok(key
        .0
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}
