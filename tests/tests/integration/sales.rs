//! Sales, the Annual Sales Summary per Customer, cluster membership counts, and the
//! rule input's sales aggregates, over HTTP against the local stack.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use chrono::Datelike;
use serde_json::{Value, json};
use tests::{Client, Method, Stack, unique_tenant};

/// How long the stream may take to deliver and the rules to answer.
const SETTLE: Duration = Duration::from_secs(30);

async fn sale(client: &Client, customer: &str, body: Value) -> tests::Reply {
    client
        .post(&format!("/customers/{customer}/sales"), &body)
        .await
}

fn eur(date: &str, amount: &str, reference: &str) -> Value {
    json!({"date": date, "amount": amount, "currency": "EUR", "reference": reference})
}

/// A report's rows as `(customer_id, total)`.
fn totals(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {report}"))
        .iter()
        .map(|row| {
            (
                row["customer_id"].as_str().unwrap().to_owned(),
                row["total"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sales_count_once_and_the_annual_report_adds_them_up_exactly() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("sales"));
    let aa = create_segment(&client, &json!({"name": "AA"})).await;
    let b = create_segment(&client, &json!({"name": "B"})).await;
    create_field(
        &client,
        &json!({"name": "vip", "type": "boolean", "cluster": true}),
    )
    .await;
    for (id, segment, vip) in [
        ("c1", Some(&aa), true),
        ("c2", Some(&b), false),
        ("c3", None, false),
        ("c4", Some(&aa), true),
    ] {
        create_customer(
            &client,
            &json!({"id": id, "email": format!("{id}@example.com"), "first_name": "Ana",
                    "last_name": id, "segment_id": segment.map(|s| s["id"].clone()),
                    "fields": {"vip": vip}}),
        )
        .await;
    }

    // Amounts that binary floating point cannot add exactly.
    for (customer, body) in [
        ("c1", eur("2026-01-15", "0.10", "r1")),
        ("c1", eur("2026-01-20", "0.20", "r2")),
        ("c1", eur("2026-03-01", "1000.005", "r3")),
        ("c1", eur("2025-05-05", "7", "old")),
        ("c2", eur("2026-12-31", "99.99", "x1")),
        (
            "c3",
            json!({"date": "2026-06-01", "amount": 50, "currency": "eur", "reference": "y"}),
        ),
    ] {
        let reply = sale(&client, customer, body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }

    // The same sale again is a safe retry; another sale under its reference is refused.
    let again = sale(&client, "c1", eur("2026-01-15", "0.10", "r1")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["amount"], "0.10");
    let clash = sale(&client, "c1", eur("2026-01-15", "0.11", "r1")).await;
    assert_problem(&clash, 409, "conflict");
    assert_eq!(clash.json["sale"]["amount"], "0.10", "{}", clash.text);

    // Bad sales list every problem and record nothing; unknown customers are 404.
    let bad = sale(
        &client,
        "c1",
        json!({"date": "2026-02-30", "amount": "1.23456", "currency": "EURO"}),
    )
    .await;
    assert_problem(&bad, 422, "validation_failed");
    assert_eq!(
        pointers(&bad),
        set(&["/date", "/amount", "/currency", "/reference"])
    );
    assert_problem(
        &sale(&client, "nobody", eur("2026-01-01", "1", "z")).await,
        404,
        "not_found",
    );

    let listed = list_all(&client, "/customers/c1/sales?year=2026", 2).await;
    let references: Vec<&str> = listed
        .iter()
        .map(|s| s["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references, ["r1", "r2", "r3"], "date order, this year only");
    assert_eq!(list_all(&client, "/customers/c1/sales", 100).await.len(), 4);

    // The report: one row per customer with sales, highest total first, exact sums.
    let report = client
        .get("/reports/annual-sales?year=2026")
        .await
        .expect(200)
        .json;
    assert_eq!(report["currency"], "EUR");
    assert_eq!(
        totals(&report),
        [
            ("c1".to_owned(), "1000.305".to_owned()),
            ("c2".to_owned(), "99.99".to_owned()),
            ("c3".to_owned(), "50.00".to_owned()),
        ]
    );
    let c1 = &report["items"][0];
    assert_eq!(c1["name"], "Ana c1");
    assert_eq!(c1["segment"]["name"], "AA", "the segment column");
    assert_eq!(c1["orders"], 3);
    let months: Vec<&str> = c1["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(months[0], "0.30");
    assert_eq!(months[1], "0.00");
    assert_eq!(months[2], "1000.005");
    assert_eq!(report["items"][1]["months"][11], "99.99");
    assert_eq!(report["items"][2]["segment"], Value::Null);
    let last_year = client
        .get("/reports/annual-sales?year=2025")
        .await
        .expect(200)
        .json;
    assert_eq!(totals(&last_year), [("c1".to_owned(), "7.00".to_owned())]);

    // Filters: by segment, by cluster value; a customer without sales has no row.
    let by_segment = client
        .get(&format!(
            "/reports/annual-sales?year=2026&segment={}",
            aa["id"].as_str().unwrap()
        ))
        .await
        .expect(200)
        .json;
    assert_eq!(
        totals(&by_segment),
        [("c1".to_owned(), "1000.305".to_owned())]
    );
    let by_cluster = client
        .get("/reports/annual-sales?year=2026&cluster.vip=false")
        .await
        .expect(200)
        .json;
    assert_eq!(
        totals(&by_cluster),
        [
            ("c2".to_owned(), "99.99".to_owned()),
            ("c3".to_owned(), "50.00".to_owned())
        ]
    );

    // Pages walk the ranking once; cursors are bound to the tenant and the query.
    let walked = list_all(&client, "/reports/annual-sales?year=2026", 2).await;
    assert_eq!(walked, report["items"].as_array().unwrap().clone());
    let first = client
        .get("/reports/annual-sales?year=2026&limit=1")
        .await
        .expect(200)
        .json;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let other = stack.client(&unique_tenant("sales-other"));
    assert_problem(
        &other
            .get(&with_param(
                "/reports/annual-sales?year=2026",
                "cursor",
                &cursor,
            ))
            .await,
        400,
        "bad_request",
    );
    assert_problem(
        &client
            .get(&with_param(
                "/reports/annual-sales?year=2025",
                "cursor",
                &cursor,
            ))
            .await,
        400,
        "bad_request",
    );

    // CSV: the same rows, parsed back.
    let csv = client
        .request(Method::GET, "/reports/annual-sales?year=2026")
        .header("accept", "text/csv")
        .send()
        .await
        .expect(200);
    assert!(
        csv.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")),
        "{csv:?}"
    );
    let lines: Vec<Vec<&str>> = csv
        .text
        .lines()
        .map(|line| line.split(',').collect())
        .collect();
    assert_eq!(
        lines[0][..5],
        ["customer_id", "name", "email", "segment", "currency"]
    );
    assert_eq!(lines[0][17..], ["total", "orders"]);
    assert_eq!(lines.len(), 4, "{}", csv.text);
    for (line, row) in lines[1..].iter().zip(report["items"].as_array().unwrap()) {
        assert_eq!(line[0], row["customer_id"]);
        assert_eq!(line[3], row["segment"]["name"].as_str().unwrap_or(""));
        assert_eq!(line[5], row["months"][0]);
        assert_eq!(line[17], row["total"]);
        assert_eq!(line[18], row["orders"].to_string());
    }
    let by_format = client
        .get("/reports/annual-sales?year=2026&format=csv")
        .await
        .expect(200);
    assert_eq!(by_format.text, csv.text);

    // Two currencies in one year: the report asks which one, and never adds them up.
    let usd = json!({"date": "2026-07-01", "amount": "5", "currency": "USD", "reference": "u1"});
    assert_eq!(sale(&client, "c2", usd).await.status, 201);
    assert_problem(
        &client.get("/reports/annual-sales?year=2026").await,
        422,
        "validation_failed",
    );
    let in_usd = client
        .get("/reports/annual-sales?year=2026&currency=usd")
        .await
        .expect(200)
        .json;
    assert_eq!(totals(&in_usd), [("c2".to_owned(), "5.00".to_owned())]);
    let empty = client
        .get("/reports/annual-sales?year=1999")
        .await
        .expect(200)
        .json;
    assert_eq!(empty["items"], json!([]));
    assert_problem(
        &client.get("/reports/annual-sales").await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn concurrent_sales_lose_nothing_and_a_reference_counts_once() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("sales-race"));
    create_customer(&client, &json!({"id": "c1", "email": "c1@example.com"})).await;

    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            sale(&client, "c1", eur("2026-04-01", "0.10", &format!("n{i}"))).await
        }));
    }
    for _ in 0..6 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            sale(&client, "c1", eur("2026-04-02", "1.00", "same")).await
        }));
    }
    let mut statuses = BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap().status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&201), Some(&11), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&5), "{statuses:?}");

    let report = client
        .get("/reports/annual-sales?year=2026")
        .await
        .expect(200)
        .json;
    assert_eq!(totals(&report), [("c1".to_owned(), "2.00".to_owned())]);
    assert_eq!(report["items"][0]["orders"], 11);
    assert_eq!(report["items"][0]["months"][3], "2.00");
}

/// The rule `rules/examples/sales-tier-c`: segment AA/A/B from this year's EUR sales,
/// `repeat_buyer` from this year's orders.
async fn tenant_with_sales_rule(client: &Client) -> BTreeMap<String, String> {
    let mut segments = BTreeMap::new();
    for name in ["AA", "A", "B"] {
        let segment = create_segment(client, &json!({"name": name})).await;
        segments.insert(name.to_owned(), segment["id"].as_str().unwrap().to_owned());
    }
    create_field(
        client,
        &json!({"name": "repeat_buyer", "type": "boolean", "cluster": true}),
    )
    .await;
    create_field(
        client,
        &json!({"name": "channel", "type": "enum", "values": ["web", "store"], "cluster": true}),
    )
    .await;
    client
        .put(
            "/rules/sales_tier",
            &json!({"outputs": ["repeat_buyer"], "segment_output": true, "enabled": true}),
        )
        .await
        .expect(201);
    let reply = upload(client, "sales_tier", &example("sales-tier-c")).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    segments
}

fn this_year() -> i32 {
    chrono::Utc::now().year()
}

#[tokio::test]
async fn a_recorded_sale_reassigns_the_customer_and_cluster_counts_follow() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("sales-rule"));
    let segments = tenant_with_sales_rule(&client).await;
    let year = this_year();
    let in_segment = |name: &str| {
        let id = segments[name].clone();
        move |c: &Value| c["segment_id"] == id.as_str()
    };

    for (id, channel) in [("c1", "web"), ("c2", "web"), ("c3", "store")] {
        create_customer(
            &client,
            &json!({"id": id, "email": format!("{id}@example.com"), "fields": {"channel": channel}}),
        )
        .await;
        eventually(
            &client,
            &format!("/customers/{id}"),
            SETTLE,
            in_segment("B"),
        )
        .await;
    }

    // Last year's sales do not count as this year's.
    let old = eur(&format!("{}-06-01", year - 1), "50000", "old");
    assert_eq!(sale(&client, "c1", old).await.status, 201);
    let big = eur(&format!("{year}-01-10"), "10000.01", "big");
    assert_eq!(sale(&client, "c1", big).await.status, 201);
    let c1 = eventually(&client, "/customers/c1", SETTLE, in_segment("AA")).await;
    assert_eq!(c1["fields"]["repeat_buyer"], false);
    let second = eur(&format!("{year}-01-11"), "1", "second");
    assert_eq!(sale(&client, "c1", second).await.status, 201);
    eventually(&client, "/customers/c1", SETTLE, |c| {
        c["fields"]["repeat_buyer"] == true
    })
    .await;
    let mid = eur(&format!("{year}-02-01"), "1000.01", "mid");
    assert_eq!(sale(&client, "c2", mid).await.status, 201);
    eventually(&client, "/customers/c2", SETTLE, in_segment("A")).await;

    // A manual change of a cluster value moves its counts too.
    client
        .patch("/customers/c3", &json!({"fields": {"channel": "web"}}))
        .await
        .expect(200);
    // The counts are kept from the stream: wait for them to catch up.
    wait_for_cluster_values(
        &client,
        &[
            ("channel", json!([{"value": "web", "count": 3}])),
            (
                "repeat_buyer",
                json!([{"value": false, "count": 2}, {"value": true, "count": 1}]),
            ),
        ],
    )
    .await;
    wait_for_member_count(&client, "repeat_buyer", 3).await;
    let clusters = client.get("/clusters").await.expect(200).json;
    let by_field: BTreeMap<&str, &Value> = clusters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f))
        .collect();
    assert_eq!(
        by_field["channel"]["values"],
        json!([{"value": "web", "count": 3}]),
        "{clusters}"
    );
    assert_eq!(
        by_field["repeat_buyer"]["values"],
        json!([{"value": false, "count": 2}, {"value": true, "count": 1}]),
        "{clusters}"
    );
    assert_eq!(by_field["repeat_buyer"]["member_count"], 3);

    let members = list_all(&client, "/clusters/repeat_buyer/members?value=true", 10).await;
    assert_eq!(ids(&members), ["c1"]);
    let members = list_all(&client, "/clusters/channel/members?value=web", 2).await;
    assert_eq!(ids(&members), in_listing_order(&["c1", "c2", "c3"]));
    assert_problem(
        &client.get("/clusters/nope/members?value=x").await,
        404,
        "not_found",
    );
    assert_problem(
        &client.get("/clusters/channel/members?value=phone").await,
        400,
        "bad_request",
    );

    // Segment counts follow the rules' writes (kept from the stream: all three at once
    // only when it has caught up).
    let counts = |listed: &Value| -> BTreeMap<String, i64> {
        listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_owned(),
                    s["customer_count"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    let expected = BTreeMap::from([
        ("AA".to_owned(), 1),
        ("A".to_owned(), 1),
        ("B".to_owned(), 1),
    ]);
    let listed = eventually(&client, "/segments?limit=10", COUNT_SETTLE, |listed| {
        counts(listed) == expected
    })
    .await;
    assert_eq!(listed["next_cursor"], Value::Null, "{listed}");

    // The customer's cluster view answers membership in one read, with provenance.
    let view = client.get("/customers/c1/clusters").await.expect(200).json;
    assert_eq!(view["clusters"]["repeat_buyer"]["value"], true);
    assert_eq!(
        view["clusters"]["repeat_buyer"]["source"]["rule"],
        "sales_tier"
    );
    assert_eq!(
        view["clusters"]["channel"]["source"],
        Value::Null,
        "set by a client"
    );
}
