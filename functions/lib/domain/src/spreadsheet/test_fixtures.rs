//! Test fixtures that the import and the export tests share: a tenant's fields of every
//! type the tests read, and the patch of a row that reads without errors.

use chrono::Utc;
use serde_json::{Value, json};

use super::ImportRow;
use crate::field::{FieldDef, FieldDraft};

pub(super) fn defs() -> Vec<FieldDef> {
    [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true, "default": false}),
        json!({"name": "visits", "type": "integer"}),
        json!({"name": "credit", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "note", "type": "text"}),
    ]
    .iter()
    .map(|b| FieldDraft::parse(b).unwrap().into_field(Utc::now()))
    .collect()
}

pub(super) fn patch(row: &ImportRow) -> &Value {
    row.patch.as_ref().unwrap()
}
