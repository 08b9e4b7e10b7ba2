//! CSV import without DynamoDB: reading a 10,000-row file against the tenant's fields and
//! validating every row as `POST /customers` would (`cargo bench -p domain --bench import`).

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::spreadsheet::read_csv;
use domain::{CustomerDraft, CustomerSchema, FieldDef, FieldDraft, merge_patch};
use serde_json::{Value, json};

const ROWS: usize = 10_000;

fn fields() -> Vec<FieldDef> {
    [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true, "default": false}),
        json!({"name": "credit", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "vat", "type": "string", "required": true}),
    ]
    .iter()
    .map(|body| FieldDraft::parse(body).unwrap().into_field(Utc::now()))
    .collect()
}

fn file() -> Vec<u8> {
    let mut text =
        String::from("id;email;first_name;last_name;phone;tier;distributor;credit;since;vat\r\n");
    for i in 0..ROWS {
        let tier = ["AA", "A", "B"][i % 3];
        let distributor = ["yes", "no", "1", "false"][i % 4];
        text.push_str(&format!(
            "c-{i};user{i}@example.com;\"Ann {i}\";Smith;+1 555 {i:04};{tier};{distributor};\
             {}.{:02};2026-{:02}-{:02};VAT{i}\r\n",
            i * 7,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    text.into_bytes()
}

/// Reads the file and validates every row; returns how many rows are valid.
fn import(data: &[u8], fields: &[FieldDef]) -> usize {
    let file = read_csv(data, fields, ROWS).expect("the header fits");
    let schema = CustomerSchema {
        fields,
        segment: None,
        current_segment_id: None,
    };
    file.rows
        .iter()
        .filter(|row| {
            let Ok(patch) = &row.patch else { return false };
            let mut document = Value::Object(Default::default());
            merge_patch(&mut document, patch);
            CustomerDraft::parse(&document, &schema).is_ok()
        })
        .count()
}

fn bench(c: &mut Criterion) {
    let fields = fields();
    let data = file();
    assert_eq!(import(&data, &fields), ROWS, "every generated row is valid");
    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    group.bench_function("csv_10000_rows_parse_and_validate", |b| {
        b.iter(|| import(std::hint::black_box(&data), &fields))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
