//! Sales and the yearly totals that reports and rules read instead of them.
//!
//! Recording a sale is one transaction: the customer must exist, the reference guard is
//! created (so a re-post of the same reference changes nothing), the sale is stored
//! under its date, and the customer's totals for the sale's year and currency gain the
//! amount in its month with `ADD`, an atomic counter that concurrent sales cannot lose.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Amount, Sale, SalesSummary, YearTotals};

use crate::keys::{self, CUSTOMER, SALE, SALE_REF, sk};
use crate::write::{Item, OnFail, entity_item, key, n};
use crate::{Page, PageKey, Store, StoreError, StoreResult, error};

/// What recording a sale did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleRecorded {
    Created,
    /// The reference was recorded before; nothing changed. Holds the stored sale.
    AlreadyRecorded(Sale),
}

const MONTHS: [&str; 12] = [
    "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10", "m11", "m12",
];

fn sale_sk(sale: &Sale) -> String {
    format!("{SALE}{}#{}", sale.date.format("%Y-%m-%d"), sale.reference)
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// A totals item back into the domain type; counters absent from the item are zero.
fn totals_from_item(item: &Item) -> StoreResult<YearTotals> {
    let broken = || StoreError::Internal("a sales totals item lacks its identity".into());
    let mut months = [Amount::ZERO; 12];
    for (month, name) in months.iter_mut().zip(MONTHS) {
        *month = Amount::from_units(number(item, name).unwrap_or(0));
    }
    Ok(YearTotals {
        customer_id: text(item, "customer_id").ok_or_else(broken)?,
        year: number(item, "year").ok_or_else(broken)?,
        currency: text(item, "currency").ok_or_else(broken)?,
        months,
        total: Amount::from_units(number(item, "total").unwrap_or(0)),
        orders: number(item, "orders").unwrap_or(0),
    })
}

impl Store {
    /// Records a sale of an existing customer exactly once per reference.
    pub async fn record_sale(&self, tenant: &str, sale: &Sale) -> StoreResult<SaleRecorded> {
        let sales = keys::sales(tenant, &sale.customer_id);
        let sales_partition = sales.clone();
        let mut tx = self.tx();
        // A customer deleted since the handler read it: the retry answers 404.
        tx.check(
            key(
                keys::customer_home(tenant, &sale.customer_id),
                sk(CUSTOMER, &sale.customer_id),
            ),
            "attribute_exists(pk)",
            OnFail::VersionMismatch,
        )?;
        tx.create(
            entity_item(
                sales.clone(),
                sk(SALE_REF, &sale.reference),
                "sale_ref",
                sale,
            )?,
            OnFail::Duplicate(sale.reference.clone()),
        )?;
        tx.create(
            entity_item(sales, sale_sk(sale), "sale", sale)?,
            OnFail::Never,
        )?;
        let year = sale.year();
        tx.update(
            key(
                keys::sales_year(tenant, year, keys::shard_of(&sale.customer_id)),
                keys::year_totals(&sale.customer_id, &sale.currency),
            ),
            "ADD #month :amount, #total :amount, #orders :one \
             SET #customer = :customer, #year = :year, #currency = :currency, #kind = :kind",
            HashMap::from([
                ("#month".into(), MONTHS[sale.month() as usize - 1].into()),
                ("#total".into(), "total".into()),
                ("#orders".into(), "orders".into()),
                ("#customer".into(), "customer_id".into()),
                ("#year".into(), "year".into()),
                ("#currency".into(), "currency".into()),
                ("#kind".into(), "kind".into()),
            ]),
            Item::from([
                (":amount".into(), n(sale.amount.units())),
                (":one".into(), n(1)),
                (
                    ":customer".into(),
                    AttributeValue::S(sale.customer_id.clone()),
                ),
                (":year".into(), n(i64::from(year))),
                (":currency".into(), AttributeValue::S(sale.currency.clone())),
                (
                    ":kind".into(),
                    AttributeValue::S(keys::SALES_TOTALS_KIND.into()),
                ),
            ]),
            OnFail::Never,
        )?;
        // The year's currency set is one item for the whole tenant: written outside the
        // transaction, because concurrent transactions on one item cancel each other and
        // every sale of the year would touch it. A sale that then fails leaves its
        // currency listed with no totals behind it, which reads as no sales.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::tenant(tenant), keys::year_currencies(year))))
            .update_expression("ADD currencies :currency")
            .expression_attribute_values(
                ":currency",
                AttributeValue::Ss(vec![sale.currency.clone()]),
            )
            .send()
            .await
            .map_err(error::from_sdk)?;
        match self.commit(tx).await {
            Ok(()) => Ok(SaleRecorded::Created),
            Err(StoreError::Duplicate(_)) => {
                let existing: Option<Sale> = self
                    .get_item(sales_partition, sk(SALE_REF, &sale.reference))
                    .await?;
                existing
                    .map(SaleRecorded::AlreadyRecorded)
                    .ok_or(StoreError::VersionMismatch)
            }
            Err(err) => Err(err),
        }
    }

    /// A customer's sales in date order, optionally of one year.
    pub async fn list_sales(
        &self,
        tenant: &str,
        customer_id: &str,
        year: Option<i32>,
        limit: usize,
        start: Option<PageKey>,
    ) -> StoreResult<Page<Sale>> {
        let prefix = match year {
            Some(year) => format!("{SALE}{year:04}-"),
            None => SALE.to_owned(),
        };
        let page = self
            .query_page(
                &keys::sales(tenant, customer_id),
                &prefix,
                limit,
                start,
                &|_| true,
            )
            .await?;
        page.decode()
    }

    /// The currencies the tenant recorded sales in during `year`.
    pub async fn sales_currencies(&self, tenant: &str, year: i32) -> StoreResult<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Currencies {
            #[serde(default)]
            currencies: BTreeSet<String>,
        }
        let found: Option<Currencies> = self
            .get_item(keys::tenant(tenant), keys::year_currencies(year))
            .await?;
        Ok(found
            .map(|c| c.currencies.into_iter().collect())
            .unwrap_or_default())
    }

    /// Every customer's totals of `year` in `currency`: a Query of each shard of the
    /// year's partition, all at once; the size is the number of customers with sales
    /// that year.
    pub async fn year_totals(
        &self,
        tenant: &str,
        year: i32,
        currency: &str,
    ) -> StoreResult<Vec<YearTotals>> {
        let suffix = format!("#{currency}");
        let keep = |item: &Item| {
            item.get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.ends_with(&suffix))
        };
        let shards = keys::shards().map(|shard| keys::sales_year(tenant, year, shard));
        let partitions: Vec<String> = shards.collect();
        futures_util::future::try_join_all(
            partitions
                .iter()
                .map(|pk| self.query_all_items(pk, CUSTOMER, &keep)),
        )
        .await?
        .iter()
        .flatten()
        .map(totals_from_item)
        .collect()
    }

    /// The totals of `year` in `currency` of the given customers (those without sales
    /// that year are left out): batch reads, one item per customer.
    pub async fn year_totals_of(
        &self,
        tenant: &str,
        year: i32,
        currency: &str,
        customer_ids: &[String],
    ) -> StoreResult<Vec<YearTotals>> {
        let item_keys: Vec<(String, String)> = customer_ids
            .iter()
            .map(|id| {
                (
                    keys::sales_year(tenant, year, keys::shard_of(id)),
                    keys::year_totals(id, currency),
                )
            })
            .collect();
        let items = self.batch_get_items(&item_keys).await?;
        items.iter().map(totals_from_item).collect()
    }

    /// What the rules see of one customer's sales as of `year`: [`Self::sales_summaries`]
    /// for one id. (Not a Query of the customer's totals: moto, the local DynamoDB, scans
    /// the whole table for every Query.) The stream reads a batch's customers together
    /// with [`Self::sales_summaries`] instead.
    pub async fn sales_summary(
        &self,
        tenant: &str,
        customer_id: &str,
        year: i32,
    ) -> StoreResult<SalesSummary> {
        let id = customer_id.to_owned();
        Ok(self
            .sales_summaries(tenant, std::slice::from_ref(&id), year)
            .await?
            .remove(&id)
            .unwrap_or_default())
    }

    /// What the rules see of each customer's sales as of `year` (this and last year).
    /// Two rounds of reads whatever the number of customers (up to 100; more take one
    /// more round per hundred): both years' currency sets at once, then the totals items
    /// of every (year, currency) at once, each a batch read.
    pub async fn sales_summaries(
        &self,
        tenant: &str,
        customer_ids: &[String],
        year: i32,
    ) -> StoreResult<HashMap<String, SalesSummary>> {
        let (last_year, this_year) = tokio::try_join!(
            self.sales_currencies(tenant, year - 1),
            self.sales_currencies(tenant, year),
        )?;
        let reads = [(year - 1, last_year), (year, this_year)]
            .into_iter()
            .flat_map(|(year, currencies)| currencies.into_iter().map(move |c| (year, c)))
            .map(|(year, currency)| async move {
                self.year_totals_of(tenant, year, &currency, customer_ids)
                    .await
            });
        let totals = futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten();
        let mut by_customer: HashMap<String, Vec<YearTotals>> = HashMap::new();
        for t in totals {
            by_customer
                .entry(t.customer_id.clone())
                .or_default()
                .push(t);
        }
        Ok(customer_ids
            .iter()
            .map(|id| {
                let mine = by_customer.get(id).map(Vec::as_slice);
                (
                    id.clone(),
                    SalesSummary::from_totals(year, mine.unwrap_or_default()),
                )
            })
            .collect())
    }
}
