//! Stream records in Lambda's format: the SDK's DynamoDB Streams records turned into
//! the JSON Lambda puts in `Records[]`, which the filters match and the handler gets.
//!
//! What moto (5.2) gives differs from what DynamoDB delivers, and is corrected here:
//! `eventVersion` `1.0` (DynamoDB says `1.1`, as delivered here) and
//! `ApproximateCreationDateTime` in milliseconds (delivered here in whole seconds, like
//! Lambda). Left as moto gives them: `SizeBytes`, overestimated, and a write that
//! changes nothing still yields a `MODIFY`.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use serde_json::{Map, Value, json};

use super::error::RecordError;

/// A stream record as Lambda delivers it in `Records[]` (its `dynamodb` field with
/// DynamoDB-JSON images). `ApproximateCreationDateTime` is in whole seconds, as Lambda
/// delivers it; `eventVersion` is DynamoDB Streams' current `1.1`.
pub fn lambda_record(
    record: &Record,
    stream_arn: &str,
    region: &str,
) -> Result<Value, RecordError> {
    let change = record.dynamodb.as_ref().ok_or(RecordError::NoChange)?;
    let mut dynamodb = Map::new();
    if let Some(time) = change.approximate_creation_date_time {
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(time.secs()));
    }
    for (name, image) in [
        ("Keys", &change.keys),
        ("NewImage", &change.new_image),
        ("OldImage", &change.old_image),
    ] {
        if let Some(image) = image {
            dynamodb.insert(name.into(), dynamodb_json(image)?);
        }
    }
    if let Some(sequence_number) = &change.sequence_number {
        dynamodb.insert("SequenceNumber".into(), json!(sequence_number));
    }
    if let Some(size) = change.size_bytes {
        dynamodb.insert("SizeBytes".into(), json!(size));
    }
    if let Some(view) = &change.stream_view_type {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let mut out = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.as_deref().unwrap_or(region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = &record.user_identity {
        out["userIdentity"] = json!({
            "type": identity.r#type,
            "principalId": identity.principal_id,
        });
    }
    Ok(out)
}

fn dynamodb_json(image: &HashMap<String, AttributeValue>) -> Result<Value, RecordError> {
    let item = serde_dynamo::Item::from(image.clone());
    serde_json::to_value(&item).map_err(RecordError::Image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::ARN;
    use aws_lambda_events::event::dynamodb::EventRecord;
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    fn sdk_record(name: OperationType, with_new: bool, with_old: bool) -> Record {
        let mut change = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs_and_nanos(
                1_700_000_123,
                456_000_000,
            ))
            .keys("pk", s("T#acme"))
            .keys("sk", s("CUSTOMER#1"))
            .sequence_number("1100000000017454423009")
            .size_bytes(321)
            .stream_view_type(StreamViewType::NewAndOldImages);
        if with_new {
            change = change
                .new_image("pk", s("T#acme"))
                .new_image("sk", s("CUSTOMER#1"))
                .new_image("written_by", s("api"))
                .new_image("n", AttributeValue::N("1.5".into()))
                .new_image("ok", AttributeValue::Bool(true))
                .new_image("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
                .new_image(
                    "m",
                    AttributeValue::M([("x".to_string(), AttributeValue::Null(true))].into()),
                )
                .new_image("l", AttributeValue::L(vec![s("v")]))
                .new_image("b", AttributeValue::B(b"xy".to_vec().into()));
        }
        if with_old {
            change = change
                .old_image("pk", s("T#acme"))
                .old_image("sk", s("CUSTOMER#1"))
                .old_image("written_by", s("assign"));
        }
        Record::builder()
            .event_id("e-1")
            .event_name(name)
            .event_version("1.0")
            .event_source("aws:dynamodb")
            .aws_region("eu-west-1")
            .dynamodb(change.build())
            .build()
    }

    #[test]
    fn converts_sdk_records_to_what_lambda_delivers() {
        let json = lambda_record(
            &sdk_record(OperationType::Modify, true, true),
            ARN,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(json["eventID"], "e-1");
        assert_eq!(json["eventName"], "MODIFY");
        assert_eq!(json["eventVersion"], "1.1");
        assert_eq!(json["eventSource"], "aws:dynamodb");
        assert_eq!(json["awsRegion"], "eu-west-1");
        assert_eq!(json["eventSourceARN"], ARN);
        let d = &json["dynamodb"];
        assert_eq!(d["ApproximateCreationDateTime"], 1_700_000_123);
        assert_eq!(
            d["Keys"],
            json!({ "pk": { "S": "T#acme" }, "sk": { "S": "CUSTOMER#1" } })
        );
        assert_eq!(d["NewImage"]["written_by"], json!({ "S": "api" }));
        assert_eq!(d["NewImage"]["n"], json!({ "N": "1.5" }));
        assert_eq!(d["NewImage"]["ok"], json!({ "BOOL": true }));
        assert_eq!(d["NewImage"]["tags"], json!({ "SS": ["a", "b"] }));
        assert_eq!(
            d["NewImage"]["m"],
            json!({ "M": { "x": { "NULL": true } } })
        );
        assert_eq!(d["NewImage"]["l"], json!({ "L": [{ "S": "v" }] }));
        assert_eq!(d["NewImage"]["b"], json!({ "B": "eHk=" }));
        assert_eq!(d["OldImage"]["written_by"], json!({ "S": "assign" }));
        assert_eq!(d["SequenceNumber"], "1100000000017454423009");
        assert_eq!(d["SizeBytes"], 321);
        assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert!(json.get("userIdentity").is_none());

        // What the handler gets.
        let record: EventRecord = serde_json::from_value(json).unwrap();
        assert_eq!(record.event_name, "MODIFY");
        assert_eq!(record.event_source_arn.as_deref(), Some(ARN));
        assert_eq!(
            record.change.approximate_creation_date_time.timestamp(),
            1_700_000_123
        );
        assert_eq!(
            record.change.sequence_number.as_deref(),
            Some("1100000000017454423009")
        );
        assert_eq!(record.change.keys.len(), 2);
        assert_eq!(
            record.change.keys.get("sk"),
            Some(&serde_dynamo::AttributeValue::S("CUSTOMER#1".into()))
        );
        assert_eq!(
            record.change.new_image.get("written_by"),
            Some(&serde_dynamo::AttributeValue::S("api".into()))
        );
        assert_eq!(record.change.old_image.len(), 3);
        assert_eq!(record.change.size_bytes, 321);
        assert_eq!(
            record.change.stream_view_type,
            Some(aws_lambda_events::event::dynamodb::StreamViewType::NewAndOldImages)
        );
    }

    #[test]
    fn a_remove_has_only_the_old_image_and_ttl_deletes_keep_their_identity() {
        let mut record = sdk_record(OperationType::Remove, false, true);
        record.aws_region = None;
        record.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let json = lambda_record(&record, ARN, "us-east-1").unwrap();
        assert!(json["dynamodb"].get("NewImage").is_none());
        assert_eq!(json["awsRegion"], "us-east-1");
        assert_eq!(
            json["userIdentity"],
            json!({ "type": "Service", "principalId": "dynamodb.amazonaws.com" })
        );
        let record: EventRecord = serde_json::from_value(json).unwrap();
        assert_eq!(record.event_name, "REMOVE");
        assert!(record.change.new_image.is_empty());
        assert_eq!(record.change.old_image.len(), 3);
        assert_eq!(
            record.user_identity.unwrap().principal_id,
            "dynamodb.amazonaws.com"
        );

        let mut broken = sdk_record(OperationType::Insert, true, false);
        broken.dynamodb = None;
        assert!(matches!(
            lambda_record(&broken, ARN, "us-east-1"),
            Err(RecordError::NoChange)
        ));
    }
}
