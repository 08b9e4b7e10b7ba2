//! The Annual Sales Summary for 10,000 customers, past DynamoDB: ranking the totals
//! rows, joining them with customers and segments, and writing the CSV. The reads the
//! report makes (a Query of each shard of the year's totals, batch reads of the page's
//! customers) are not included.

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use domain::report::{rank, rows, to_csv};
use domain::{Amount, CustomerDraft, CustomerSchema, SegmentDraft, YearTotals};
use serde_json::json;

const CUSTOMERS: usize = 10_000;

fn bench(c: &mut Criterion) {
    let now = Utc::now();
    let segments: Vec<_> = ["AA", "A", "B"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            SegmentDraft::parse(&json!({ "name": name }))
                .unwrap()
                .into_segment(format!("s{i}"), now)
        })
        .collect();
    let schema = CustomerSchema {
        fields: &[],
        segment: None,
        current_segment_id: None,
    };
    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            let mut customer = CustomerDraft::parse(
                &json!({"email": format!("c{i}@example.com"), "first_name": "Ana",
                        "last_name": format!("Customer {i}")}),
                &schema,
            )
            .unwrap()
            .into_customer(format!("c{i:05}"), now);
            customer.segment_id = Some(format!("s{}", i % 3));
            customer
        })
        .collect();
    let totals: Vec<YearTotals> = (0..CUSTOMERS)
        .map(|i| {
            let month = Amount::from_units(((i * 7919) % 1_000_000) as i64 * 100);
            YearTotals {
                customer_id: format!("c{i:05}"),
                year: 2026,
                currency: "EUR".into(),
                months: [month; 12],
                total: Amount::from_units(month.units() * 12),
                orders: 12,
            }
        })
        .collect();

    let mut group = c.benchmark_group("annual_report_10000_customers");
    group.bench_function("rank", |b| {
        b.iter(|| {
            let mut all = totals.clone();
            rank(&mut all);
            all
        })
    });
    group.bench_function("rank_join_json_page_of_100", |b| {
        b.iter(|| {
            let mut all = totals.clone();
            rank(&mut all);
            serde_json::to_string(&rows(&all[..100], &customers[..100], &segments)).unwrap()
        })
    });
    group.bench_function("rank_join_csv_all_rows", |b| {
        b.iter(|| {
            let mut all = totals.clone();
            rank(&mut all);
            to_csv(&rows(&all, &customers, &segments))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
