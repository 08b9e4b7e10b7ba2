//! The table's shape. `template.yaml` declares the same on AWS; the local stack creates
//! it here, so tests run against the layout production uses.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};

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
}
