//! The spreadsheet path: `POST /customers/import` (CSV and workbook upserts with a
//! per-row report, dry runs, limits) and `GET /customers/export` (filters, paging, round
//! trip; CSV and xlsx).

use std::collections::BTreeSet;
use std::io::Cursor;

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Method, Reply, Stack, unique_tenant};

async fn import(client: &Client, query: &str, csv: impl Into<Vec<u8>>) -> Reply {
    send_raw(
        client,
        Method::POST,
        &format!("/customers/import{query}"),
        Some("text/csv"),
        csv,
    )
    .await
}

/// Imports and returns the report, checking its shape.
async fn imported(client: &Client, query: &str, csv: impl Into<Vec<u8>>) -> Value {
    let reply = import(client, query, csv).await.expect(200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{reply:#?}"
    );
    reply.json
}

/// The report's counts: (created, updated, unchanged, failed rows).
fn counts(report: &Value) -> (u64, u64, u64, usize) {
    (
        report["created"].as_u64().expect("created"),
        report["updated"].as_u64().expect("updated"),
        report["unchanged"].as_u64().expect("unchanged"),
        report["failed"].as_array().expect("failed").len(),
    )
}

/// The failed rows as (line, sorted errors as `column: detail`).
fn failures(report: &Value) -> Vec<(u64, Vec<String>)> {
    report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|row| {
            let mut errors: Vec<String> = row["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["column"].as_str().unwrap_or("-"),
                        e["detail"].as_str().expect("detail")
                    )
                })
                .collect();
            errors.sort();
            (row["line"].as_u64().expect("line"), errors)
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn export(client: &Client, query: &str) -> Reply {
    let reply = client
        .get(&format!("/customers/export{query}"))
        .await
        .expect(200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8"),
        "{reply:#?}"
    );
    reply
}

/// The data lines of an exported file (header excluded), assuming no line breaks in values.
fn data_lines(csv: &str) -> Vec<String> {
    csv.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn segment(client: &Client, name: &str) -> String {
    create_segment(client, &json!({ "name": name })).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn all_customer_ids(client: &Client) -> BTreeSet<String> {
    ids(&list_all(client, "/customers", 100).await)
        .into_iter()
        .collect()
}

async fn fields_for_import(client: &Client) {
    for body in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "visits", "type": "integer"}),
        json!({"name": "vip", "type": "boolean"}),
        json!({"name": "credit", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
    ] {
        create_field(client, &body).await;
    }
}

#[tokio::test]
async fn good_rows_are_created_and_bad_rows_reported_by_line() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-mixed"));
    fields_for_import(&client).await;
    let vip = segment(&client, "VIP").await;
    let csv = format!(
        "id,email,first_name,segment_id,tier,visits,vip,credit,since\n\
         c-1,ann@example.com,Ann,{vip},AA,3,yes,0012.50,2026-01-31\n\
         ,bob@example.com,Bob,,B,,No,,\n\
         c-3,not-an-email,Cid,,Z,x,maybe,1e3,2026-02-30\n\
         c-4,dan@example.com,\"Dan \"\"D\"\"\",nope-segment,,,,,\n\
         c-1,eve@example.com,Eve,,,,,,\n\
         ,ANN@example.com,Ann again,,,,,,\n\
         c-8,fay@example.com\n\
         \"c-9\",\"gus@example.com\",\"Gus\nSecond line\",,A,,,,\n\
         c-11,hal@example.com,Hal,,A,-7,1,3,\n"
    );
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (4, 0, 0, 5), "{report}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["stopped_at_line"], Value::Null);
    assert_eq!(
        failures(&report),
        [
            (
                4,
                strings(&[
                    "credit: must be a decimal number like 1234.50 (a string or a JSON number)",
                    "email: must be an email address",
                    "since: must be a date like 2026-01-31",
                    "tier: must be one of AA, A, B",
                    "vip: must be true or false",
                    "visits: must be an integer",
                ])
            ),
            (
                5,
                strings(&["segment_id: no segment has id `nope-segment`"])
            ),
            (6, strings(&["id: line 2 already has id `c-1`"])),
            (
                7,
                strings(&["email: line 2 already has email `ANN@example.com`"])
            ),
            (
                8,
                strings(&["-: has 2 values but the header has 9 columns"])
            ),
        ]
    );
    let failed_ids: Vec<&Value> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["id"])
        .collect();
    assert_eq!(
        failed_ids,
        [
            &json!("c-3"),
            &json!("c-4"),
            &json!("c-1"),
            &Value::Null,
            &json!("c-8")
        ]
    );

    // Good rows are there, with typed and canonical values; bad rows wrote nothing.
    let ann = client.get("/customers/c-1").await.expect(200).json;
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["segment_id"], vip.as_str());
    assert_eq!(
        ann["fields"],
        json!({"tier": "AA", "visits": 3, "vip": true, "credit": "12.5", "since": "2026-01-31"})
    );
    let bob = client
        .get(&with_param("/customers", "email", "bob@example.com"))
        .await
        .expect(200)
        .json["items"][0]
        .clone();
    assert!(is_generated_id(bob["id"].as_str().unwrap()), "{bob}");
    assert_eq!(bob["fields"], json!({"tier": "B", "vip": false}));
    let gus = client.get("/customers/c-9").await.expect(200).json;
    assert_eq!(gus["first_name"], "Gus\nSecond line");
    let hal = client.get("/customers/c-11").await.expect(200).json;
    assert_eq!(
        hal["fields"],
        json!({"tier": "A", "visits": -7, "vip": true, "credit": "3"})
    );
    for absent in ["c-3", "c-4", "c-8"] {
        client
            .get(&format!("/customers/{absent}"))
            .await
            .expect(404);
    }
    let bob_id = bob["id"].as_str().unwrap().to_string();
    assert_eq!(
        all_customer_ids(&client).await,
        ["c-1", "c-9", "c-11", bob_id.as_str()]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    // Written like any API write: indexes and counters follow.
    let in_aa = list_all(&client, "/customers?cluster.tier=AA", 50).await;
    assert_eq!(ids(&in_aa), ["c-1"]);
    wait_for_segment_count(&client, &vip, 1).await;
    let clusters = client.get("/customers/c-1/clusters").await.expect(200);
    assert_eq!(clusters.json["written_by"], "api");
}

#[tokio::test]
async fn a_bom_and_semicolons_are_understood() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-dialect"));
    create_field(&client, &json!({"name": "credit", "type": "decimal"})).await;
    let csv = "\u{FEFF}Email;Last_Name;credit\r\n\
               ann@example.com;\"Smith; Jr, \"\"the\"\" second\";1234.50\r\n\
               \r\n\
               bob@example.com;Brown;-0.5\r\n";
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (2, 0, 0, 0), "{report}");
    let ann = &client
        .get(&with_param("/customers", "email", "ann@example.com"))
        .await
        .expect(200)
        .json["items"][0];
    assert_eq!(ann["last_name"], "Smith; Jr, \"the\" second");
    assert_eq!(ann["fields"]["credit"], "1234.5");
    let bob = &client
        .get(&with_param("/customers", "email", "bob@example.com"))
        .await
        .expect(200)
        .json["items"][0];
    assert_eq!(bob["fields"]["credit"], "-0.5");

    // The line numbers count the blank line and the BOM-prefixed header.
    let report = imported(&client, "", "\u{FEFF}email;credit\n\nann@example.com;x\n").await;
    assert_eq!(
        failures(&report),
        [(
            3,
            strings(&["credit: must be a decimal number like 1234.50 (a string or a JSON number)"])
        )]
    );
}

#[tokio::test]
async fn rows_update_by_id_or_else_by_email_and_unchanged_rows_write_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-upsert"));
    create_field(
        &client,
        &json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
    )
    .await;
    create_customer(
        &client,
        &json!({"id": "c-1", "email": "ann@example.com", "first_name": "Ann", "fields": {"tier": "A"}}),
    )
    .await;
    let bob = create_customer(
        &client,
        &json!({"email": "bob@example.com", "first_name": "Bob", "last_name": "Brown", "fields": {"tier": "B"}}),
    )
    .await;
    let bob_id = bob["id"].as_str().unwrap().to_string();
    wait_for_member_count(&client, "tier", 2).await;

    let csv = "id,email,first_name,tier\n\
               c-1,ann@example.com,Ann,A\n\
               ,BOB@example.com,Robert,\n\
               c-2,cat@example.com,Cat,B\n";
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (1, 1, 1, 0), "{report}");

    let ann = client.get("/customers/c-1").await;
    assert_entity(&ann, 200, 1);
    let bob = client.get(&format!("/customers/{bob_id}")).await;
    assert_entity(&bob, 200, 2);
    assert_eq!(bob.json["email"], "BOB@example.com");
    assert_eq!(bob.json["first_name"], "Robert");
    assert_eq!(
        bob.json["last_name"], "Brown",
        "a column the file lacks keeps its value"
    );
    assert_eq!(
        bob.json["fields"],
        json!({}),
        "an empty cell removes the value"
    );
    // Bob leaves the count and c-2 joins it (maybe in two steps of the stream).
    wait_for_member_count(&client, "tier", 2).await;
    client.get("/customers/c-2").await.expect(200);

    // The id wins over the email: c-1 takes a new email, and an email another customer
    // holds is refused for that row only.
    let csv = "id,email\n\
               c-1,ann.new@example.com\n\
               c-2,bob@example.com\n";
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (0, 1, 0, 1), "{report}");
    assert_eq!(
        failures(&report),
        [(
            3,
            vec![format!(
                "email: a customer with email `bob@example.com` already exists (id `{bob_id}`)"
            )]
        )]
    );
    assert_eq!(report["failed"][0]["id"], "c-2");
    let moved = client
        .get(&with_param("/customers", "email", "ann.new@example.com"))
        .await
        .expect(200);
    assert_eq!(ids(moved.json["items"].as_array().unwrap()), ["c-1"]);
    let old = client
        .get(&with_param("/customers", "email", "ann@example.com"))
        .await
        .expect(200);
    assert_eq!(old.json["items"], json!([]));
    assert_eq!(
        client.get("/customers/c-2").await.json["email"],
        "cat@example.com"
    );

    // Two rows of one file that reach the same customer: the later one fails.
    let csv = "id,email,first_name\n\
               c-2,cat@example.com,Cathy\n\
               ,CAT@example.com,Catherine\n";
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (0, 1, 0, 1), "{report}");
    assert_eq!(
        failures(&report)[0],
        (
            3,
            strings(&["email: line 2 already has email `CAT@example.com`"])
        )
    );
    // A row that reaches by its id the customer an earlier row reached by email fails
    // too: one customer, one row per file.
    let csv = "id,email,first_name\n\
               c-2,cathy@example.com,Cath\n\
               ,cathy@example.com,Catherine\n\
               ,ann.new@example.com,Annie\n\
               c-1,ann3@example.com,Anne\n";
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (0, 2, 0, 2), "{report}");
    assert_eq!(
        failures(&report),
        [
            (
                3,
                strings(&["email: line 2 already has email `cathy@example.com`"])
            ),
            (5, strings(&["-: line 4 already imports customer `c-1`"])),
        ]
    );
    assert_eq!(report["failed"][1]["id"], "c-1");
    let cathy = client.get("/customers/c-2").await.json;
    assert_eq!(
        (&cathy["email"], &cathy["first_name"]),
        (&json!("cathy@example.com"), &json!("Cath"))
    );
    assert_eq!(
        client.get("/customers/c-1").await.json["first_name"],
        "Annie"
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_same_and_writes_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-dry"));
    create_customer(
        &client,
        &json!({"id": "c-1", "email": "ann@example.com", "first_name": "Ann"}),
    )
    .await;
    let csv = "id,email,first_name\n\
               c-1,ann@example.com,Annie\n\
               c-2,bob@example.com,Bob\n\
               c-3,,Nobody\n\
               c-4,ann@example.com,Copy\n";
    let dry = imported(&client, "?dry_run=true", csv).await;
    assert_eq!(counts(&dry), (1, 1, 0, 2), "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        failures(&dry),
        [
            (4, strings(&["email: is required"])),
            (
                5,
                strings(&["email: line 2 already has email `ann@example.com`"])
            ),
        ]
    );
    assert_entity(&client.get("/customers/c-1").await, 200, 1);
    assert_eq!(client.get("/customers/c-1").await.json["first_name"], "Ann");
    client.get("/customers/c-2").await.expect(404);
    assert_eq!(
        all_customer_ids(&client).await,
        BTreeSet::from(["c-1".to_string()])
    );

    let real = imported(&client, "?dry_run=false", csv).await;
    assert_eq!(real["dry_run"], false);
    assert_eq!(real["failed"], dry["failed"]);
    assert_eq!(counts(&real), counts(&dry));
    assert_eq!(
        client.get("/customers/c-1").await.json["first_name"],
        "Annie"
    );
    client.get("/customers/c-2").await.expect(200);

    let reply = import(&client, "?dry_run=maybe", "email\n").await;
    assert_problem(&reply, 400, "bad_request");
}

/// A tenant with a field of every type and customers holding all, some or none of them.
async fn varied_tenant(client: &Client) -> (String, String) {
    for body in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "distributor", "type": "boolean", "cluster": true, "default": false}),
        json!({"name": "visits", "type": "integer"}),
        json!({"name": "credit", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "seen_at", "type": "datetime"}),
        json!({"name": "billing", "type": "email"}),
        json!({"name": "code", "type": "string", "max_length": 20}),
        json!({"name": "note", "type": "text"}),
    ] {
        create_field(client, &body).await;
    }
    let gold = segment(client, "Gold").await;
    let silver = segment(client, "Silver").await;
    let customers = [
        json!({"id": "c-1", "email": "Ann@Example.com", "first_name": "Ann", "last_name": "O'Neil, Jr.",
               "document": "X-1", "phone": "+1 (555) 010", "segment_id": gold,
               "fields": {"tier": "AA", "distributor": true, "visits": 12, "credit": "1234.5",
                          "since": "2020-02-29", "seen_at": "2026-01-01T10:00:00.250+02:00",
                          "billing": "ap@example.com", "code": " padded ",
                          "note": "said \"hi\"; then, left"}}),
        json!({"id": "c-2", "email": "bob@example.com", "segment_id": gold,
               "fields": {"tier": "B", "visits": -3, "credit": "-0.01"}}),
        json!({"id": "c-3", "email": "cat@example.com", "segment_id": silver,
               "fields": {"tier": "A"}}),
        json!({"email": "dan@example.com"}),
        json!({"id": "c-5", "email": "eve@example.com", "first_name": "Ève", "fields": {"note": "ünïcödé ✓"}}),
    ];
    for body in customers {
        create_customer(client, &body).await;
    }
    (gold, silver)
}

#[tokio::test]
async fn an_export_imports_back_unchanged() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("exp-round"));
    varied_tenant(&client).await;

    let reply = export(&client, "").await;
    assert!(reply.header("link").is_none(), "{reply:#?}");
    let text = reply.text.clone();
    assert!(
        text.starts_with(
            "id,email,first_name,last_name,document,phone,segment_id,\
             billing,code,credit,distributor,note,seen_at,since,tier,visits\r\n"
        ),
        "{text}"
    );
    let lines = data_lines(&text);
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines.iter().any(
            |l| l.starts_with("c-1,Ann@Example.com,Ann,\"O'Neil, Jr.\",X-1,")
                && l.ends_with(
                    ",ap@example.com, padded ,1234.5,true,\"said \"\"hi\"\"; then, left\",\
                 2026-01-01T08:00:00.250Z,2020-02-29,AA,12"
                )
        ),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("c-3,cat@example.com,,,,,") && l.ends_with(",,,false,,,,A,")),
        "{text}"
    );

    let versions_before = list_all(&client, "/customers", 100).await;
    let report = imported(&client, "", reply.text.clone()).await;
    assert_eq!(counts(&report), (0, 0, 5, 0), "{report}");
    assert_eq!(list_all(&client, "/customers", 100).await, versions_before);
    assert_eq!(
        export(&client, "").await.text,
        text,
        "a second export is the same"
    );
}

#[tokio::test]
async fn exports_follow_the_listing_filters_and_page_with_a_link() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("exp-filter"));
    let (gold, silver) = varied_tenant(&client).await;

    let first_column = |text: &str| -> BTreeSet<String> {
        data_lines(text)
            .iter()
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let gold_export = export(&client, &format!("?segment={gold}")).await.text;
    assert_eq!(
        first_column(&gold_export),
        BTreeSet::from(["c-1".to_string(), "c-2".to_string()])
    );
    let silver_export = export(&client, &format!("?segment={silver}")).await.text;
    assert_eq!(
        first_column(&silver_export),
        BTreeSet::from(["c-3".to_string()])
    );
    let by_email = export(&client, "?email=ANN%40example.com").await.text;
    assert_eq!(first_column(&by_email), BTreeSet::from(["c-1".to_string()]));
    let by_cluster = export(&client, "?cluster.distributor=false").await.text;
    assert_eq!(
        by_cluster.split("\r\n").next(),
        gold_export.split("\r\n").next()
    );
    assert_eq!(data_lines(&by_cluster).len(), 4, "{by_cluster}");
    let nobody = export(&client, "?segment=no-such-segment").await.text;
    assert_eq!(data_lines(&nobody), Vec::<String>::new());

    // Pages of two, joined by the Link header, hold every customer once.
    let mut seen = Vec::new();
    let mut next = Some(format!("/customers/export?segment={gold}&limit=1"));
    let mut pages = 0;
    while let Some(path) = next.take() {
        let reply = export(&client, path.trim_start_matches("/customers/export")).await;
        pages += 1;
        let lines = data_lines(&reply.text);
        assert!(lines.len() <= 1, "{}", reply.text);
        seen.extend(lines);
        next = reply.header("link").map(|link| {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("bad Link: {link}"));
            assert!(target.contains(&format!("segment={gold}")), "{link}");
            target.to_string()
        });
        assert!(pages < 10, "paging does not end");
    }
    let mut expected = data_lines(&gold_export);
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    let all = export(&client, "?limit=2").await;
    assert_eq!(data_lines(&all.text).len(), 2);
    let link = all.header("link").expect("a next link").to_string();
    let cursor_part = link.split("cursor=").nth(1).unwrap();
    let cursor = cursor_part.split(['>', '&']).next().unwrap();
    // A cursor only continues the export it came from.
    let reply = client
        .get(&format!("/customers/export?segment={gold}&cursor={cursor}"))
        .await;
    assert_problem(&reply, 400, "bad_request");
    let reply = client.get(&format!("/customers?cursor={cursor}")).await;
    assert_problem(&reply, 400, "bad_request");

    for bad in [
        format!("?segment={gold}&email=a%40b.co"),
        "?limit=0".to_string(),
        "?limit=10001".to_string(),
        "?colour=red".to_string(),
        "?cluster.visits=3".to_string(),
    ] {
        let reply = client.get(&format!("/customers/export{bad}")).await;
        assert_problem(&reply, 400, "bad_request");
    }
}

#[tokio::test]
async fn bodies_media_types_and_headers_are_checked_before_anything_is_written() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-refuse"));
    create_field(&client, &json!({"name": "tier", "type": "string"})).await;

    // 413 over 6 MB, whatever the content.
    let mut big = b"email,tier\n".to_vec();
    while big.len() <= 6_000_000 {
        big.extend_from_slice(b"someone@example.com,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    }
    let reply = import(&client, "", big).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert!(
        reply.json["detail"].as_str().unwrap().contains("6000000"),
        "{}",
        reply.text
    );

    // 413 for more rows than one request imports (the body itself is small).
    let mut many = String::from("email\n");
    for i in 0..10_001 {
        many.push_str(&format!("u{i}@example.com\n"));
    }
    let reply = import(&client, "", many).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert_eq!(
        reply.json["detail"],
        "the file has more than 10000 rows; split it into files of at most 10000 rows"
    );

    // 415 for anything but UTF-8 CSV and the workbooks the API reads.
    for (content_type, detail) in [
        (
            "application/json",
            "expected text/csv or a workbook (xlsx application/vnd.openxmlformats-\
             officedocument.spreadsheetml.sheet, xls application/vnd.ms-excel, ods \
             application/vnd.oasis.opendocument.spreadsheet), got `application/json`",
        ),
        (
            "text/csv; charset=windows-1252",
            "only UTF-8 CSV is read, got charset `windows-1252`",
        ),
    ] {
        let reply = send_raw(
            &client,
            Method::POST,
            "/customers/import",
            Some(content_type),
            "email\na@b.co\n",
        )
        .await;
        assert_problem(&reply, 415, "unsupported_media_type");
        assert_eq!(reply.json["detail"], detail);
    }
    let reply = send_raw(
        &client,
        Method::POST,
        "/customers/import",
        Some("Text/CSV; Charset=\"UTF-8\""),
        "email\n",
    )
    .await
    .expect(200);
    assert_eq!(counts(&reply.json), (0, 0, 0, 0));

    // 422 lists every bad column of the header.
    let reply = import(&client, "", "email,colour,Tier,tier,\na@b.co,red,x,y,\n").await;
    assert_eq!(
        pointers(&reply),
        set(&["/header/1", "/header/3", "/header/4"])
    );
    assert_eq!(
        error_detail(&reply, "/header/1"),
        "`colour` (column 2) is neither a core column (id, email, first_name, last_name, \
         document, phone, segment_id) nor a defined field"
    );
    assert_eq!(
        error_detail(&reply, "/header/3"),
        "`tier` (column 4) repeats column 3"
    );
    assert_eq!(error_detail(&reply, "/header/4"), "column 5 has no name");
    let reply = import(&client, "", "first_name,tier\nAnn,x\n").await;
    assert_eq!(pointers(&reply), set(&["/header"]));
    let reply = import(&client, "", "").await;
    assert_problem(&reply, 400, "bad_request");

    assert_eq!(all_customer_ids(&client).await, BTreeSet::new());
}

#[tokio::test]
async fn an_import_out_of_time_reports_where_it_stopped() {
    let stack = Stack::get().await;
    let api = stack.spawn_api(&[("IMPORT_TIME_BUDGET_MS", "0")]);
    let tenant = unique_tenant("imp-budget");
    let client = api.client(&tenant);
    let csv = "email\n\nann@example.com\nbob@example.com\n";
    // No time at all: the request still writes one row, so re-posting always progresses.
    let report = imported(&client, "", csv).await;
    assert_eq!(counts(&report), (1, 0, 0, 0), "{report}");
    assert_eq!(report["stopped_at_line"], 4);
    assert_eq!(
        all_customer_ids(&stack.client(&tenant)).await.len(),
        1,
        "only the first row"
    );
    // The shared API has the normal budget: posting the file again finishes it.
    let report = imported(&stack.client(&tenant), "", csv).await;
    assert_eq!(counts(&report), (1, 0, 1, 0), "{report}");
    assert_eq!(report["stopped_at_line"], Value::Null);
}

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub(crate) const XLS: &str = "application/vnd.ms-excel";
pub(crate) const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";

/// A committed workbook of `tests/fixtures/workbooks` (see `make.py` there).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = tests::repo_root()
        .join("tests/fixtures/workbooks")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures' workbook as xlsx, written here with rust_xlsxwriter: sheet `Clients`
/// (the header on row 2, after a blank row; typed cells) and `Archive`.
pub(crate) fn clients_xlsx() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let stamp = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let sheet = book.add_worksheet().set_name("Clients").unwrap();
    let header = [
        "id",
        "email",
        "first_name",
        "visits",
        "credit",
        "vip",
        "since",
        "seen_at",
        "note",
    ];
    for (column, name) in (0u16..).zip(header) {
        sheet.write_string(1, column, name).unwrap();
    }
    sheet.write_string(2, 0, "c-1").unwrap();
    sheet.write_string(2, 1, "ann@example.com").unwrap();
    sheet.write_string(2, 2, "Ann").unwrap();
    sheet.write_number(2, 3, 12.0).unwrap();
    sheet.write_number(2, 4, 1234.5).unwrap();
    sheet.write_boolean(2, 5, true).unwrap();
    let since = ExcelDateTime::from_ymd(2026, 1, 31).unwrap();
    sheet
        .write_datetime_with_format(2, 6, &since, &date)
        .unwrap();
    let seen = ExcelDateTime::from_ymd(2026, 1, 31)
        .unwrap()
        .and_hms(10, 30, 0)
        .unwrap();
    sheet
        .write_datetime_with_format(2, 7, &seen, &stamp)
        .unwrap();
    sheet.write_number(2, 8, 0.1 + 0.2).unwrap();
    sheet.write_string(4, 0, "c-2").unwrap();
    sheet.write_string(4, 1, "bob@example.com").unwrap();
    sheet.write_string(4, 2, "Bob").unwrap();
    sheet.write_number(4, 3, 3.5).unwrap();
    sheet.write_boolean(4, 5, false).unwrap();
    sheet.write_string(4, 6, "2026-02-30").unwrap();
    sheet.write_string(4, 8, "  keeps its spaces ").unwrap();
    sheet.write_number(5, 0, 1_234_567.0).unwrap();
    sheet.write_string(5, 1, "cid@example.com").unwrap();
    sheet.write_number(5, 4, -0.25).unwrap();
    let archive = book.add_worksheet().set_name("Archive").unwrap();
    archive.write_string(0, 0, "email").unwrap();
    archive.write_string(0, 1, "first_name").unwrap();
    archive.write_string(1, 0, "old@example.com").unwrap();
    archive.write_string(1, 1, "Old").unwrap();
    book.save_to_buffer().unwrap()
}

/// The fields the `Clients` sheet fills.
pub(crate) async fn clients_fields(client: &Client) {
    for body in [
        json!({"name": "visits", "type": "integer"}),
        json!({"name": "credit", "type": "decimal"}),
        json!({"name": "vip", "type": "boolean"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "seen_at", "type": "datetime"}),
        json!({"name": "note", "type": "text"}),
    ] {
        create_field(client, &body).await;
    }
}

/// What importing the `Clients` sheet fails: its row 5, by the sheet's row number.
pub(crate) fn clients_failures() -> Vec<(u64, Vec<String>)> {
    vec![(
        5,
        strings(&[
            "since: must be a date like 2026-01-31",
            "visits: must be an integer",
        ]),
    )]
}

/// Checks what the `Clients` sheet imported: each cell as the spreadsheet showed it.
pub(crate) async fn assert_clients_imported(client: &Client) {
    let ann = client.get("/customers/c-1").await.expect(200).json;
    assert_eq!(
        ann["fields"],
        json!({
            "visits": 12, "credit": "1234.5", "vip": true, "since": "2026-01-31",
            "seen_at": "2026-01-31T10:30:00Z", "note": "0.3"
        }),
        "{ann}"
    );
    assert_eq!(ann["first_name"], "Ann");
    let cid = client.get("/customers/1234567").await.expect(200).json;
    assert_eq!(cid["email"], "cid@example.com");
    assert_eq!(cid["fields"], json!({"credit": "-0.25"}), "{cid}");
    client.get("/customers/c-2").await.expect(404);
}

async fn import_workbook(client: &Client, media: &str, query: &str, body: Vec<u8>) -> Reply {
    send_raw(
        client,
        Method::POST,
        &format!("/customers/import{query}"),
        Some(media),
        body,
    )
    .await
}

#[tokio::test]
async fn workbooks_import_typed_cells_by_the_sheets_row_numbers() {
    let stack = Stack::get().await;
    for (media, body) in [
        (XLSX, clients_xlsx()),
        (XLS, fixture("customers.xls")),
        (ODS, fixture("customers.ods")),
    ] {
        let client = stack.client(&unique_tenant("imp-book"));
        clients_fields(&client).await;

        let dry = import_workbook(&client, media, "?dry_run=true", body.clone())
            .await
            .expect(200)
            .json;
        assert_eq!(counts(&dry), (2, 0, 0, 1), "{media}: {dry}");
        assert_eq!(all_customer_ids(&client).await, BTreeSet::new());

        let report = import_workbook(&client, media, "", body.clone())
            .await
            .expect(200)
            .json;
        assert_eq!(counts(&report), (2, 0, 0, 1), "{media}: {report}");
        assert_eq!(failures(&report), clients_failures(), "{media}");
        assert_eq!(report["failed"][0]["id"], "c-2");
        assert_clients_imported(&client).await;
        let again = import_workbook(&client, media, "", body.clone())
            .await
            .expect(200)
            .json;
        assert_eq!(counts(&again), (0, 0, 2, 1), "{media}: {again}");

        // Another sheet by name; a sheet that is not there names those that are.
        let archive = import_workbook(&client, media, "?sheet=Archive", body.clone())
            .await
            .expect(200)
            .json;
        assert_eq!(counts(&archive), (1, 0, 0, 0), "{media}: {archive}");
        let reply = import_workbook(&client, media, "?sheet=clients", body.clone()).await;
        assert_problem(&reply, 400, "bad_request");
        assert_eq!(
            reply.json["detail"],
            "the workbook has no sheet `clients`; its sheets are `Clients`, `Archive`",
            "{media}"
        );
        assert_eq!(all_customer_ids(&client).await.len(), 3, "{media}");
    }
}

#[tokio::test]
async fn corrupt_and_oversized_workbooks_are_refused_and_write_nothing() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-book-bad"));
    clients_fields(&client).await;
    let good = clients_xlsx();
    let mut cut = good.clone();
    cut.truncate(good.len() / 2);
    for (media, body) in [
        (XLSX, cut),
        (XLSX, b"id,email\nc-1,a@b.co\n".to_vec()),
        (XLS, clients_xlsx()),
        (ODS, fixture("customers.xls")),
        (XLSX, Vec::new()),
    ] {
        let reply = import_workbook(&client, media, "", body).await;
        assert_problem(&reply, 400, "bad_request");
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("the file is not a readable "),
            "{detail}"
        );
    }
    // A workbook reaches the function base64-encoded: 4,500,000 bytes at most.
    let reply = import_workbook(&client, XLSX, "", vec![0; 4_500_001]).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert!(
        reply.json["detail"].as_str().unwrap().contains("4500000"),
        "{}",
        reply.text
    );
    let reply = import_workbook(&client, "text/csv", "?sheet=Clients", b"email\n".to_vec()).await;
    assert_problem(&reply, 400, "bad_request");
    // The header rules are the CSV ones.
    let mut header_only = rust_xlsxwriter::Workbook::new();
    let sheet = header_only.add_worksheet();
    for (column, name) in (0u16..).zip(["email", "colour", "", "email"]) {
        sheet.write_string(0, column + 2, name).unwrap();
    }
    sheet.write_string(1, 1, "stray").unwrap();
    let reply = import_workbook(&client, XLSX, "", header_only.save_to_buffer().unwrap()).await;
    assert_eq!(
        pointers(&reply),
        set(&["/header/1", "/header/2", "/header/3"]),
        "{}",
        reply.text
    );
    assert_eq!(all_customer_ids(&client).await, BTreeSet::new());
}

#[tokio::test]
async fn values_outside_the_header_and_formula_errors_fail_their_row() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("imp-book-rows"));
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 1, "email").unwrap();
    sheet.write_string(0, 2, "first_name").unwrap();
    sheet.write_string(1, 1, "ann@example.com").unwrap();
    sheet.write_string(2, 1, "bob@example.com").unwrap();
    sheet.write_string(2, 4, "a note beside the table").unwrap();
    sheet.write_string(3, 0, "left").unwrap();
    sheet.write_string(3, 1, "cid@example.com").unwrap();
    sheet.write_string(4, 1, "dan@example.com").unwrap();
    let error = rust_xlsxwriter::Formula::new("=1/0").set_result("#DIV/0!");
    sheet.write_formula(4, 2, error).unwrap();
    sheet.write_string(9, 1, "ANN@example.com").unwrap();
    let report = import_workbook(&client, XLSX, "", book.save_to_buffer().unwrap())
        .await
        .expect(200)
        .json;
    assert_eq!(counts(&report), (1, 0, 0, 4), "{report}");
    assert_eq!(
        failures(&report),
        [
            (
                3,
                strings(&["-: has a value in column E, outside the header's columns B to C"])
            ),
            (
                4,
                strings(&["-: has a value in column A, outside the header's columns B to C"])
            ),
            (5, strings(&["first_name: holds the error #DIV/0!"])),
            (
                10,
                strings(&["email: line 2 already has email `ANN@example.com`"])
            ),
        ]
    );
}

/// `GET` with headers, the body as bytes (the shared client reads bodies as text).
async fn get_bytes(
    stack: &Stack,
    tenant: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", stack.base_url))
        .bearer_auth(tests::token(tenant));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the body").to_vec();
    (status, headers, body)
}

/// The first sheet of an xlsx workbook, read with calamine.
fn xlsx_rows(bytes: &[u8]) -> Vec<Vec<calamine::Data>> {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(Cursor::new(bytes.to_vec())).expect("an xlsx workbook");
    let name = book.sheet_names()[0].clone();
    assert_eq!(name, "customers");
    let range = book.worksheet_range(&name).expect("the sheet");
    range.rows().map(<[calamine::Data]>::to_vec).collect()
}

#[tokio::test]
async fn an_xlsx_export_has_typed_cells_and_imports_back_unchanged() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("exp-xlsx");
    let client = stack.client(&tenant);
    varied_tenant(&client).await;

    let (status, headers, bytes) =
        get_bytes(stack, &tenant, "/customers/export?format=xlsx", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], XLSX);
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"customers.xlsx\""
    );
    assert!(headers.get("link").is_none());
    let rows = xlsx_rows(&bytes);
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        strings(&[
            "id",
            "email",
            "first_name",
            "last_name",
            "document",
            "phone",
            "segment_id",
            "billing",
            "code",
            "credit",
            "distributor",
            "note",
            "seen_at",
            "since",
            "tier",
            "visits",
        ])
    );
    assert_eq!(rows.len(), 6);
    let ann = rows
        .iter()
        .find(|row| row[0] == calamine::Data::String("c-1".into()))
        .expect("c-1");
    use calamine::{Data, DataType};
    assert_eq!(ann[8], Data::String(" padded ".into()), "text stays text");
    assert_eq!(ann[9], Data::Float(1234.5), "a decimal as a number");
    assert_eq!(ann[10], Data::Bool(true));
    assert_eq!(ann[15], Data::Float(12.0), "an integer as a number");
    assert_eq!(
        ann[13].as_date(),
        chrono::NaiveDate::from_ymd_opt(2020, 2, 29),
        "a date cell: {:?}",
        ann[13]
    );
    assert_eq!(
        ann[12].as_datetime().map(|at| at.to_string()),
        Some("2026-01-01 08:00:00.250".to_string()),
        "a date-time cell in UTC: {:?}",
        ann[12]
    );

    let versions_before = list_all(&client, "/customers", 100).await;
    let report = import_workbook(&client, XLSX, "", bytes.clone())
        .await
        .expect(200)
        .json;
    assert_eq!(counts(&report), (0, 0, 5, 0), "{report}");
    assert_eq!(list_all(&client, "/customers", 100).await, versions_before);

    // `Accept` picks xlsx too; CSV stays the default and wins a tie.
    let (_, headers, by_accept) =
        get_bytes(stack, &tenant, "/customers/export", &[("accept", XLSX)]).await;
    assert_eq!(headers["content-type"], XLSX);
    assert_eq!(xlsx_rows(&by_accept), rows);
    for accept in ["text/csv", "*/*", "", &format!("text/csv, {XLSX}")] {
        let (_, headers, _) =
            get_bytes(stack, &tenant, "/customers/export", &[("accept", accept)]).await;
        assert_eq!(
            headers["content-type"], "text/csv; charset=utf-8",
            "{accept}"
        );
    }
    let preferred = format!("text/csv;q=0.5, {XLSX}");
    let (_, headers, _) = get_bytes(
        stack,
        &tenant,
        "/customers/export",
        &[("accept", &preferred)],
    )
    .await;
    assert_eq!(headers["content-type"], XLSX);
    let reply = client.get("/customers/export?format=pdf").await;
    assert_problem(&reply, 400, "bad_request");

    // Pages keep the format in their Link.
    let mut ids = BTreeSet::new();
    let mut next = Some("/customers/export?format=xlsx&limit=2".to_string());
    while let Some(path) = next.take() {
        let (status, headers, page) = get_bytes(stack, &tenant, &path, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], XLSX);
        let rows = xlsx_rows(&page);
        assert!(rows.len() <= 3, "{} rows", rows.len());
        ids.extend(rows[1..].iter().map(|row| row[0].to_string()));
        next = headers.get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.contains("format=xlsx"), "{link}");
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
        assert!(ids.len() <= 5, "paging does not end");
    }
    assert_eq!(ids, all_customer_ids(&client).await);
}
