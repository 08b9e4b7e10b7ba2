//! The table's shape. `template.yaml` declares the same on AWS; the local stack creates
//! it here, so tests run against the layout production uses. Also the keys-only Query
//! that target walks read membership partitions with.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use crate::error::from_sdk;
use crate::{Store, StoreResult, keys};

/// A one-line description for logs and the template consistency check.
pub fn table_definition_summary() -> &'static str {
    "pk (S, HASH), sk (S, RANGE), PAY_PER_REQUEST, stream NEW_AND_OLD_IMAGES"
}

impl Store {
    /// Creates the table if it does not exist (local stack only; on AWS the template owns it).
    pub async fn ensure_table(&self) -> StoreResult<()> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(err) => return Err(from_sdk(err)),
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute(keys::PK)?)
            .attribute_definitions(attribute(keys::SK)?)
            .key_schema(key(keys::PK, KeyType::Hash)?)
            .key_schema(key(keys::SK, KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another process created it first.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(from_sdk(err)),
        }
    }

    /// Table name, for logs.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// A strongly consistent Query of the items of `pk` whose sort key starts with
    /// `prefix` (`#pk` and `#sk` name the key attributes).
    pub(crate) fn prefix_query(&self, pk: &str, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
    }

    /// The sort keys of `pk` that start with `prefix` and come after `prefix` +
    /// `after`, in key order, without their prefix (e.g. the customer ids of a membership
    /// partition): keys only, so a walk that needs ids reads no other attribute. At most
    /// `limit` (`None`: all); the flag says whether more may follow.
    pub(crate) async fn query_sort_keys(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<(Vec<String>, bool)> {
        if limit == Some(0) {
            return Ok((Vec::new(), true));
        }
        let mut start = after.map(|after| {
            HashMap::from([
                (keys::PK.to_owned(), AttributeValue::S(pk.to_owned())),
                (
                    keys::SK.to_owned(),
                    AttributeValue::S(format!("{prefix}{after}")),
                ),
            ])
        });
        let mut found = Vec::new();
        loop {
            let room = limit.map(|limit| (limit - found.len()).min(i32::MAX as usize) as i32);
            let output = self
                .prefix_query(pk, prefix)
                .projection_expression("#sk")
                .set_exclusive_start_key(start.take())
                .set_limit(room)
                .send()
                .await
                .map_err(from_sdk)?;
            found.extend(
                output
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|mut item| match item.remove(keys::SK) {
                        Some(AttributeValue::S(sk)) => sk.strip_prefix(prefix).map(str::to_owned),
                        _ => None,
                    }),
            );
            match output.last_evaluated_key {
                Some(last) if limit.is_none_or(|limit| found.len() < limit) => start = Some(last),
                Some(_) => return Ok((found, true)),
                None => return Ok((found, false)),
            }
        }
    }
}
