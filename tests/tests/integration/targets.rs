//! Combined targets (issue 14): several segment and cluster conditions, each with one
//! or several values, combined with `match=all` or `match=any`, on `GET /customers`,
//! the export, the cluster member lists and the annual report; `GET /targets/count`;
//! cursors bound to the exact combination; bad combinations; and the cost rule (`all`
//! reads in proportion to its smallest condition), from the store's debug log.

use crate::common::*;
use serde_json::json;
use tests::{Client, Stack, unique_tenant};

/// A customer as the tests write it, to compute what each target must hold.
struct Model {
    id: String,
    segment: Option<String>,
    tier: Option<&'static str>,
    distributor: Option<bool>,
    region: Option<&'static str>,
}

/// Segments gold and silver, cluster fields tier, distributor and region (a region
/// holds a comma), and 24 customers spread over every combination of them.
async fn targeted_tenant(client: &Client) -> (String, String, Vec<Model>) {
    tier_clusters(client).await;
    create_field(
        client,
        &json!({ "name": "region", "type": "string", "cluster": true }),
    )
    .await;
    let segment = async |name: &str| {
        create_segment(client, &json!({ "name": name })).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (gold, silver) = (segment("Gold").await, segment("Silver").await);
    let mut models = Vec::new();
    for i in 0..24 {
        let model = Model {
            id: format!("t{i:02}"),
            segment: [Some(gold.clone()), Some(silver.clone()), None][i % 3].clone(),
            tier: [Some("AA"), Some("A"), Some("B"), None][i % 4],
            distributor: [Some(true), Some(false), None, Some(true), Some(false)][i % 5],
            region: [Some("north, west"), Some("south"), None][(i / 3) % 3],
        };
        let mut fields = serde_json::Map::new();
        if let Some(tier) = model.tier {
            fields.insert("tier".into(), json!(tier));
        }
        if let Some(distributor) = model.distributor {
            fields.insert("distributor".into(), json!(distributor));
        }
        if let Some(region) = model.region {
            fields.insert("region".into(), json!(region));
        }
        create_customer(
            client,
            &json!({ "id": model.id, "email": format!("{}@example.com", model.id),
                     "segment_id": model.segment, "fields": fields }),
        )
        .await;
        models.push(model);
    }
    (gold, silver, models)
}

/// The ids of the models `keep` accepts, in listing order.
fn expected(models: &[Model], keep: impl Fn(&Model) -> bool) -> Vec<String> {
    let ids: Vec<&str> = models
        .iter()
        .filter(|m| keep(m))
        .map(|m| m.id.as_str())
        .collect();
    in_listing_order(&ids)
}

/// A query string with `{gold}` and `{silver}` replaced by the segment ids.
fn query(template: &str, gold: &str, silver: &str) -> String {
    template.replace("{gold}", gold).replace("{silver}", silver)
}

/// The targets the tests walk: the query (values percent-encoded where needed; `\,` is
/// a comma inside a value) and which models it holds.
#[allow(clippy::type_complexity)]
fn cases(gold: &str, silver: &str) -> Vec<(String, &'static str, Box<dyn Fn(&Model) -> bool>)> {
    let (g, s) = (Some(gold.to_owned()), Some(silver.to_owned()));
    let (g2, g3, s3) = (g.clone(), g.clone(), s.clone());
    vec![
        (
            query("segment={gold}&cluster.distributor=true", gold, silver),
            "all",
            Box::new(move |m: &Model| m.segment == g && m.distributor == Some(true)),
        ),
        (
            "cluster.tier=AA,A".into(),
            "all",
            Box::new(|m: &Model| matches!(m.tier, Some("AA" | "A"))),
        ),
        (
            "cluster.tier=AA,A&match=any&cluster.distributor=true".into(),
            "any",
            Box::new(|m: &Model| matches!(m.tier, Some("AA" | "A")) || m.distributor == Some(true)),
        ),
        (
            query(
                "segment={gold},{silver}&cluster.tier=B,AA&cluster.region=north%5C%2C%20west",
                gold,
                silver,
            ),
            "all",
            Box::new(move |m: &Model| {
                m.segment.is_some()
                    && matches!(m.tier, Some("B" | "AA"))
                    && m.region == Some("north, west")
            }),
        ),
        (
            query("match=any&segment={gold}&cluster.tier=AA", gold, silver),
            "any",
            Box::new(move |m: &Model| m.segment == g2 || m.tier == Some("AA")),
        ),
        (
            query(
                "cluster.region=north%5C%2C%20west,south&match=all&segment={silver}&cluster.distributor=false",
                gold,
                silver,
            ),
            "all",
            Box::new(move |m: &Model| {
                m.region.is_some() && m.segment == s3 && m.distributor == Some(false)
            }),
        ),
        (
            query("segment={gold}", gold, silver),
            "all",
            Box::new(move |m: &Model| m.segment == g3),
        ),
    ]
}

#[tokio::test]
async fn all_and_any_list_count_and_export_every_member_once() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("tgt-walk"));
    let (gold, silver, models) = targeted_tenant(&client).await;

    for (query, matching, keep) in cases(&gold, &silver) {
        let want = expected(&models, keep);
        assert!(
            !want.is_empty(),
            "{query}: a case that selects nobody proves little"
        );
        assert!(
            want.len() < models.len(),
            "{query}: nor one that selects everyone"
        );
        // Every page size walks every member exactly once, in listing order.
        for limit in [1, 3, 50] {
            let walked = ids(&list_all(&client, &format!("/customers?{query}"), limit).await);
            assert_eq!(walked, want, "{query}, limit {limit}");
        }
        // The count is the walk's total, exactly, at once (no stream lag).
        let count = client
            .get(&format!("/targets/count?{query}"))
            .await
            .expect(200)
            .json;
        assert_eq!(count["count"], want.len(), "{query}: {count}");
        assert_eq!(count["match"], matching, "{query}: {count}");
        // The export holds the same customers.
        let export = client
            .get(&format!("/customers/export?{query}"))
            .await
            .expect(200)
            .text;
        let exported: Vec<String> = export
            .split("\r\n")
            .skip(1)
            .filter(|row| !row.is_empty())
            .map(|row| row.split(',').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(exported, want, "{query}: export");
    }

    // The member list takes the same combination around its own field.
    let members = format!("/clusters/tier/members?value=AA,A&segment={gold}");
    assert_eq!(
        ids(&list_all(&client, &members, 2).await),
        expected(&models, |m| matches!(m.tier, Some("AA" | "A"))
            && m.segment.as_deref() == Some(gold.as_str())),
    );
    let members = "/clusters/distributor/members?value=true&cluster.tier=B&match=any";
    assert_eq!(
        ids(&list_all(&client, members, 50).await),
        expected(&models, |m| m.distributor == Some(true)
            || m.tier == Some("B")),
    );

    // The count answers the conditions as read: canonical order, values sorted.
    let count = client
        .get(&format!(
            "/targets/count?cluster.tier=AA,A&segment={silver},{gold}&match=all"
        ))
        .await
        .expect(200)
        .json;
    let mut segments = vec![gold.clone(), silver.clone()];
    segments.sort();
    assert_eq!(
        count["conditions"],
        json!({ "segment": segments, "cluster.tier": ["A", "AA"] }),
        "{count}"
    );
    // An unknown segment selects nobody.
    let nobody = client
        .get("/targets/count?segment=no-such-segment&cluster.tier=AA")
        .await
        .expect(200)
        .json;
    assert_eq!(nobody["count"], 0, "{nobody}");
    let (items, next) = page(
        &client,
        "/customers?segment=no-such-segment&cluster.tier=AA&limit=5",
    )
    .await;
    assert!(items.is_empty() && next.is_none(), "{items:?} {next:?}");
}

#[tokio::test]
async fn the_annual_report_takes_a_combination() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("tgt-report"));
    let (gold, silver, models) = targeted_tenant(&client).await;
    // Every other customer buys, for a total that tells them apart.
    for (i, model) in models.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        client
            .post(
                &format!("/customers/{}/sales", model.id),
                &json!({"date": "2026-04-01", "amount": format!("{}.00", 10 + i),
                        "currency": "EUR", "reference": format!("r-{}", model.id)}),
            )
            .await
            .expect(201);
    }
    let buyers: Vec<&str> = models.iter().step_by(2).map(|m| m.id.as_str()).collect();
    for (query, _, keep) in cases(&gold, &silver) {
        let mut want: Vec<String> = expected(&models, keep)
            .into_iter()
            .filter(|id| buyers.contains(&id.as_str()))
            .collect();
        want.sort();
        let report = client
            .get(&format!(
                "/reports/annual-sales?year=2026&{query}&limit=100"
            ))
            .await
            .expect(200)
            .json;
        let mut rows: Vec<String> = report["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {report}"))
            .iter()
            .map(|row| row["customer_id"].as_str().unwrap().to_owned())
            .collect();
        rows.sort();
        assert_eq!(rows, want, "{query}: {report}");
    }
}

#[tokio::test]
async fn cursors_are_bound_to_the_exact_combination() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("tgt-cursor"));
    let (gold, silver, models) = targeted_tenant(&client).await;
    let combination = format!("/customers?segment={gold}&cluster.tier=AA,A&match=any");
    let (first, next) = page(&client, &with_param(&combination, "limit", "2")).await;
    let cursor = enc(&next.expect("a cursor after a full page"));

    // The same combination, written in another order, goes on where the page stopped.
    let reordered = format!("/customers?match=any&cluster.tier=A,AA&segment={gold}");
    let (second, _) = page(&client, &format!("{reordered}&limit=2&cursor={cursor}")).await;
    let want = expected(&models, |m| {
        m.segment.as_deref() == Some(gold.as_str()) || matches!(m.tier, Some("AA" | "A"))
    });
    assert_eq!([ids(&first), ids(&second)].concat(), want[..4]);

    // Any other combination, listing or tenant refuses it.
    for path in [
        format!("/customers?segment={gold}&cluster.tier=AA,A&cursor={cursor}"),
        format!("/customers?segment={gold}&cluster.tier=AA&match=any&cursor={cursor}"),
        format!("/customers?segment={silver}&cluster.tier=AA,A&match=any&cursor={cursor}"),
        format!("/customers?segment={gold},{silver}&cluster.tier=AA,A&match=any&cursor={cursor}"),
        format!("/customers?segment={gold}&cursor={cursor}"),
        format!("/customers?cursor={cursor}"),
        format!("/clusters/tier/members?value=AA,A&cursor={cursor}"),
        format!("/customers/export?segment={gold}&cluster.tier=AA,A&match=any&cursor={cursor}"),
    ] {
        assert_problem(&client.get(&path).await, 400, "bad_request");
    }
    let other = stack.client(&unique_tenant("tgt-cursor-b"));
    let reply = other.get(&format!("{combination}&cursor={cursor}")).await;
    assert_problem(&reply, 400, "bad_request");

    // An `all` walk's cursor carries its driving condition: it goes on on the same
    // combination (also through the member list) and nowhere else.
    let all = format!("/customers?segment={gold}&cluster.tier=AA,A");
    let (_, next) = page(&client, &with_param(&all, "limit", "1")).await;
    let cursor = enc(&next.expect("a cursor after a full page"));
    page(
        &client,
        &format!("/clusters/tier/members?value=A,AA&segment={gold}&cursor={cursor}"),
    )
    .await;
    for path in [
        format!("/customers?segment={gold}&cluster.tier=AA,A&match=any&cursor={cursor}"),
        format!("/customers?segment={gold}&cluster.tier=AA,A,B&cursor={cursor}"),
        format!("/customers?cluster.tier=AA,A&cursor={cursor}"),
    ] {
        assert_problem(&client.get(&path).await, 400, "bad_request");
    }
}

#[tokio::test]
async fn bad_combinations_are_400_problems() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("tgt-bad"));
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }),
    )
    .await;
    create_field(&client, &json!({ "name": "note", "type": "string" })).await;
    create_customer(
        &client,
        &json!({ "id": "c1", "email": "c1@example.com", "fields": { "tier": "AA" } }),
    )
    .await;
    let too_many: String = (0..51)
        .map(|i| format!("cluster.f{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let values: String = (0..101)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        (
            "cluster.nope=1&segment=s".to_string(),
            "not a cluster field",
        ),
        (
            "cluster.note=x&cluster.tier=AA".into(),
            "not a cluster field",
        ),
        ("cluster.tier=AA,Z&segment=s".into(), "must be one of"),
        ("cluster.tier=AA,AA".into(), "twice"),
        ("cluster.tier=AA&cluster.tier=A".into(), "twice"),
        ("segment=a&segment=b".into(), "twice"),
        (too_many, "at most 50 conditions"),
        (format!("segment={values}"), "at most 100 values"),
        ("segment=s&match=most".into(), "`match` must be"),
        ("segment=s&match=any&match=all".into(), "twice"),
    ];
    for (query, detail) in &cases {
        for path in [
            "/customers",
            "/customers/export",
            "/targets/count",
            "/reports/annual-sales?year=2026",
        ] {
            let separator = if path.contains('?') { '&' } else { '?' };
            let reply = client.get(&format!("{path}{separator}{query}")).await;
            assert_problem(&reply, 400, "bad_request");
            assert!(
                reply.json["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(detail)),
                "{path}?{query}: {}",
                reply.text
            );
        }
    }
    // `email` stays on its own.
    for query in [
        "email=c1%40example.com&segment=s",
        "email=c1%40example.com&cluster.tier=AA",
        "email=c1%40example.com&match=any",
    ] {
        for path in ["/customers", "/customers/export"] {
            let reply = client.get(&format!("{path}?{query}")).await;
            assert_problem(&reply, 400, "bad_request");
        }
    }
    // The member list: its own field once; the count: a condition, and no email.
    for path in [
        "/clusters/tier/members?value=AA&cluster.tier=A",
        "/clusters/tier/members?value=AA&match=sometimes",
        "/clusters/tier/members?value=AA,Z",
        "/targets/count",
        "/targets/count?match=any",
        "/targets/count?email=c1%40example.com",
        "/targets/count?segment=s&limit=5",
    ] {
        assert_problem(&client.get(path).await, 400, "bad_request");
    }
    // Nothing of that reached the store: the customer is as it was.
    let (items, _) = page(&client, "/customers?cluster.tier=AA,A").await;
    assert_eq!(ids(&items), ["c1"]);
}

/// The `rows=` and `customers=` of the store's `target walk` debug lines for `tenant`.
fn walk_reads(log: &str, tenant: &str) -> Vec<(usize, usize)> {
    let number = |line: &str, name: &str| -> usize {
        let start = line
            .find(&format!(" {name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            + name.len()
            + 2;
        line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("no number for {name} in {line}"))
    };
    log.lines()
        .filter(|line| line.contains(tenant) && line.contains("target walk"))
        .map(|line| (number(line, "rows"), number(line, "customers")))
        .collect()
}

#[tokio::test]
async fn all_reads_in_proportion_to_its_smallest_condition() {
    let stack = Stack::get().await;
    let tenant = unique_tenant("tgt-cost");
    let client = stack.client(&tenant);
    create_field(
        &client,
        &json!({ "name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true }),
    )
    .await;
    let big = id(&client
        .post("/segments", &json!({ "name": "Big" }))
        .await
        .expect(201));
    // 60 customers in the segment; 2 of them (and 1 outside it) in tier AA.
    let mut csv = String::from("id,email,segment_id,tier\n");
    for i in 0..60 {
        let tier = if i < 2 { "AA" } else { "A" };
        csv.push_str(&format!("b{i:02},b{i:02}@example.com,{big},{tier}\n"));
    }
    csv.push_str("out,out@example.com,,AA\n");
    let report = send_raw(
        &client,
        tests::Method::POST,
        "/customers/import",
        Some("text/csv"),
        csv,
    )
    .await
    .expect(200)
    .json;
    assert_eq!(report["created"], 61, "{report}");
    // The driver is chosen by the stream's counts: let them settle first.
    wait_for_segment_count(&client, &big, 60).await;
    wait_for_cluster_values(
        &client,
        &[(
            "tier",
            json!([{"value": "A", "count": 58}, {"value": "AA", "count": 3}]),
        )],
    )
    .await;

    // A private local stack logging the store at debug level.
    let api = stack.spawn_api(&[("RUST_LOG", "info,store=debug")]);
    let private = api.client(&tenant);
    let target = format!("segment={big}&cluster.tier=AA");
    let (items, next) = page(&private, &format!("/customers?{target}&limit=50")).await;
    assert_eq!(ids(&items), in_listing_order(&["b00", "b01"]));
    assert_eq!(next, None);
    let count = private
        .get(&format!("/targets/count?{target}"))
        .await
        .expect(200)
        .json;
    assert_eq!(count["count"], 2, "{count}");
    // `any` of the same conditions reads both, for contrast.
    let any = private
        .get(&format!("/targets/count?{target}&match=any"))
        .await
        .expect(200)
        .json;
    assert_eq!(any["count"], 61, "{any}");

    let mut reads = Vec::new();
    for _ in 0..40 {
        reads = walk_reads(&api.log(), &tenant);
        if reads.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reads.len(), 3, "{}", api.log());
    // The page and the count of `all` read the 3 rows of tier AA (the smallest
    // condition) and fetch those 3 customers, never the segment's 60.
    for &(rows, customers) in &reads[..2] {
        assert!(rows <= 3 && customers <= 3, "{reads:?}");
    }
    // `any` reads every row of both conditions (60 + 3) and fetches no customer.
    assert_eq!(reads[2], (63, 0), "{reads:?}");
}
