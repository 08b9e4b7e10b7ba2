//! The tenant isolation matrix (issue 7; OWASP API1, broken object-level
//! authorization). Tenant A owns one of everything: segments, fields, customers, sales,
//! a rule with an uploaded module and a version, a finished dry-run backfill job. Then,
//! for every route of `rules_api::endpoints()` (the table the server routes with, so a new route
//! without a case here fails the test):
//!
//! - tenant B's token on A's ids answers 404, exactly as for ids that never existed
//!   (the two answers are compared byte for byte once the ids are swapped), also with
//!   `If-Match` carrying A's ETag; a conditional create-or-replace answers 412 like it
//!   does for any absent resource;
//! - routes without ids (lists, reports, export, `/clusters`) show B its own data and
//!   nothing of A's; creates make B's own resources;
//! - once B owns resources under A's very ids and names, B still sees none of A's
//!   versions, jobs, sales or cluster values through them;
//! - A's cursors, replayed by B on the identical listing, are 400;
//! - and afterwards every read of A's answers exactly as before (bodies and ETags).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use tests::{Client, Method, Reply, Stack, unique_tenant};

const YEAR: &str = "2025";

// ---------------------------------------------------------------------------------
// What a case names

/// The ids a case puts in its path, body and headers: tenant A's, or made-up ones that
/// no tenant has (to check that B cannot tell A's ids from ids that do not exist).
#[derive(Clone, Debug)]
struct Ids {
    segment: String,
    segment_name: String,
    customer: String,
    customer2: String,
    email: String,
    email2: String,
    field: String,
    cluster_field: String,
    rule: String,
    job: String,
    sale_reference: String,
    /// ETags (as sent in `If-Match`) of A's segment, field, customer and rule.
    segment_etag: String,
    field_etag: String,
    customer_etag: String,
    rule_etag: String,
}

impl Ids {
    /// Ids of the same shapes that nothing uses, with A's ETags.
    fn ghost_of(a: &Ids, tag: &str) -> Ids {
        Ids {
            segment: "0123456789abcdef0123456789abcdef".into(),
            segment_name: format!("ZZ-Segment-{tag}"),
            customer: format!("zz-cust-{tag}"),
            customer2: format!("zz-cust2-{tag}"),
            email: format!("zz-mail-{tag}@example.com"),
            email2: format!("zz-mail2-{tag}@example.com"),
            field: format!("zz_field_{tag}"),
            cluster_field: format!("zz_cluster_{tag}"),
            rule: format!("zz_rule_{tag}"),
            job: "fedcba9876543210fedcba9876543210".into(),
            sale_reference: format!("ZZ-REF-{tag}"),
            ..a.clone()
        }
    }

    /// `(ghost, a)` pairs, longest first, to rewrite a ghost answer into A's terms.
    fn swaps(ghost: &Ids, a: &Ids) -> Vec<(String, String)> {
        let mut pairs = vec![
            (ghost.segment.clone(), a.segment.clone()),
            (ghost.segment_name.clone(), a.segment_name.clone()),
            (ghost.customer2.clone(), a.customer2.clone()),
            (ghost.customer.clone(), a.customer.clone()),
            (ghost.email2.clone(), a.email2.clone()),
            (ghost.email.clone(), a.email.clone()),
            (ghost.field.clone(), a.field.clone()),
            (ghost.cluster_field.clone(), a.cluster_field.clone()),
            (ghost.rule.clone(), a.rule.clone()),
            (ghost.job.clone(), a.job.clone()),
            (ghost.sale_reference.clone(), a.sale_reference.clone()),
        ];
        pairs.sort_by_key(|(g, _)| std::cmp::Reverse(g.len()));
        pairs
    }
}

/// What B owns before the matrix runs, so listings have something of B's to show.
struct BOwn {
    segment_name: String,
    customer: String,
    rule: String,
}

// ---------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Must change nothing anywhere; run for A's ids and for ghost ids.
    Probe,
    /// Creates B's own resources, some under A's ids and names; run after every probe.
    Create,
}

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// 404 `not_found`, the same answer as for ids that do not exist.
    Hidden,
    /// 412 `precondition_failed`, the same answer as for ids that do not exist.
    Precondition,
    /// 200 with B's own data (or none), nothing of A's.
    Own,
    /// 201: B created a resource of its own.
    Created,
    /// 422 `validation_failed` at exactly this pointer.
    Invalid(String),
}

struct Case {
    route: (&'static str, &'static str),
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
    expect: Expect,
    phase: Phase,
    /// A string B's own answer must contain (so an empty answer cannot pass by accident).
    contains: Option<String>,
}

impl Case {
    fn json(mut self, body: Value) -> Case {
        self.body = Some(("application/json", body.to_string().into_bytes()));
        self
    }

    fn raw(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some((content_type, body.into()));
        self
    }

    fn if_match(mut self, etag: &str) -> Case {
        self.headers.push(("if-match", etag.to_string()));
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Case {
        self.headers.push((name, value.to_string()));
        self
    }

    fn creates(mut self) -> Case {
        self.phase = Phase::Create;
        self
    }

    fn containing(mut self, text: &str) -> Case {
        self.contains = Some(text.to_string());
        self
    }

    fn label(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!(
            "[{} {}] {} {} {}",
            self.route.0,
            self.route.1,
            self.method,
            self.path,
            headers.join(", ")
        )
    }

    /// Everything B sends, to tell A's strings B supplied itself from leaked ones.
    fn sent(&self) -> String {
        let mut sent = self.path.clone();
        for (_, value) in &self.headers {
            sent.push_str(value);
        }
        if let Some((_, body)) = &self.body {
            sent.push_str(&String::from_utf8_lossy(body));
        }
        sent
    }

    async fn send(&self, client: &Client) -> Reply {
        let mut request = client.request(self.method.clone(), &self.path);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some((content_type, body)) = &self.body {
            request = request
                .header("content-type", content_type)
                .body(body.clone());
        }
        request.send().await
    }
}

/// The cases of one route, or `None` when the route has none (the test then fails).
fn cases_for(
    route: (&'static str, &'static str),
    ids: &Ids,
    b: &BOwn,
    year: &str,
) -> Option<Vec<Case>> {
    let case = |method: Method, path: String, expect: Expect| Case {
        route,
        method,
        path,
        headers: Vec::new(),
        body: None,
        expect,
        phase: Phase::Probe,
        contains: None,
    };
    use Expect::*;
    use Method as M;
    let segment = format!("/segments/{}", ids.segment);
    let field = format!("/fields/{}", ids.field);
    let cluster_field = format!("/fields/{}", ids.cluster_field);
    let customer = format!("/customers/{}", ids.customer);
    let rule = format!("/rules/{}", ids.rule);
    let job = format!("{rule}/backfill/{}", ids.job);
    let sale = json!({"date": format!("{year}-02-01"), "amount": "10.00", "currency": "EUR",
                      "reference": ids.sale_reference});
    let cases = match route {
        ("GET", "/segments") => vec![
            case(M::GET, "/segments".into(), Own).containing(&b.segment_name),
            case(M::GET, "/segments?status=active".into(), Own).containing(&b.segment_name),
            case(M::GET, "/segments?status=inactive".into(), Own),
        ],
        ("POST", "/segments") => vec![
            case(M::POST, "/segments".into(), Created)
                .json(json!({"name": ids.segment_name}))
                .creates(),
        ],
        ("GET", "/segments/{id}") => vec![case(M::GET, segment, Hidden)],
        ("PATCH", "/segments/{id}") => vec![
            case(M::PATCH, segment.clone(), Hidden).json(json!({"name": "Hijacked"})),
            case(M::PATCH, segment, Hidden)
                .json(json!({"status": "inactive"}))
                .if_match(&ids.segment_etag),
        ],
        ("DELETE", "/segments/{id}") => vec![
            case(M::DELETE, segment.clone(), Hidden),
            case(M::DELETE, segment.clone(), Hidden).if_match(&ids.segment_etag),
            case(M::DELETE, segment, Hidden).if_match("*"),
        ],
        ("GET", "/fields") => {
            vec![case(M::GET, "/fields".into(), Own).containing("b_level")]
        }
        ("POST", "/fields") => vec![
            case(M::POST, "/fields".into(), Created)
                .json(json!({"name": ids.cluster_field, "type": "string"}))
                .creates(),
        ],
        ("GET", "/fields/{name}") => vec![
            case(M::GET, field.clone(), Hidden),
            case(M::GET, cluster_field.clone(), Hidden),
        ],
        ("PATCH", "/fields/{name}") => vec![
            case(M::PATCH, field.clone(), Hidden).json(json!({"label": "Hijacked"})),
            case(M::PATCH, field.clone(), Hidden)
                .json(json!({"required": true}))
                .if_match(&ids.field_etag),
            case(M::PATCH, cluster_field.clone(), Hidden)
                .json(json!({"values": ["AA", "A", "B", "C"]})),
        ],
        ("DELETE", "/fields/{name}") => vec![
            case(M::DELETE, field.clone(), Hidden),
            case(M::DELETE, field, Hidden).if_match(&ids.field_etag),
            case(M::DELETE, cluster_field, Hidden),
        ],
        ("GET", "/customers") => vec![
            case(M::GET, "/customers".into(), Own).containing(&b.customer),
            case(M::GET, "/customers?limit=100".into(), Own).containing(&b.customer),
            case(M::GET, format!("/customers?segment={}", ids.segment), Own),
            case(M::GET, format!("/customers?email={}", enc(&ids.email)), Own),
            case(
                M::GET,
                format!("/customers?email={}", enc(&ids.email.to_uppercase())),
                Own,
            ),
            case(M::GET, "/customers?cluster.b_level=gold".into(), Own).containing(&b.customer),
        ],
        ("POST", "/customers") => vec![
            // B's customers cannot join A's segment or hold A's fields...
            case(M::POST, "/customers".into(), Invalid("/segment_id".into()))
                .json(json!({"email": format!("b-seg-{}", ids.email), "segment_id": ids.segment})),
            case(
                M::POST,
                "/customers".into(),
                Invalid(format!("/fields/{}", ids.field)),
            )
            .json(json!({"email": format!("b-fld-{}", ids.email), "fields": {ids.field.clone(): "x"}})),
            // ...but may use A's email: uniqueness is per tenant.
            case(M::POST, "/customers".into(), Created)
                .json(json!({"email": ids.email, "first_name": "Bea"}))
                .creates(),
        ],
        ("POST", "/customers/import") => vec![
            // Dry run first (writes nothing): A's id and A's email are new to B.
            case(M::POST, "/customers/import?dry_run=true".into(), Own).raw(
                "text/csv",
                format!(
                    "id,email,segment_id\n{},b-imp-{},\n,{},\nb-imp-3,b-imp3@example.com,{}\n",
                    ids.customer2, ids.email2, ids.email2, ids.segment
                ),
            ),
            case(M::POST, "/customers/import".into(), Own)
                .raw(
                    "text/csv",
                    format!(
                        "id,email,segment_id\n{},b-imp-{},\nb-imp-3,b-imp3@example.com,{}\n",
                        ids.customer2, ids.email2, ids.segment
                    ),
                )
                .creates(),
        ],
        ("GET", "/customers/export") => vec![
            case(M::GET, "/customers/export".into(), Own).containing(&b.customer),
            case(
                M::GET,
                format!("/customers/export?segment={}", ids.segment),
                Own,
            ),
            case(
                M::GET,
                format!("/customers/export?email={}", enc(&ids.email)),
                Own,
            ),
        ],
        ("GET", "/customers/{id}") => vec![case(M::GET, customer.clone(), Hidden)],
        ("PUT", "/customers/{id}") => vec![
            case(M::PUT, customer.clone(), Precondition)
                .json(json!({"email": "b-put@example.com"}))
                .if_match(&ids.customer_etag),
            case(M::PUT, customer.clone(), Precondition)
                .json(json!({"email": "b-put@example.com"}))
                .if_match("*"),
            case(M::PUT, customer.clone(), Created)
                .json(json!({"email": "b-put@example.com", "first_name": "Bea"}))
                .creates(),
        ],
        ("PATCH", "/customers/{id}") => vec![
            case(M::PATCH, customer.clone(), Hidden).json(json!({"first_name": "Mallory"})),
            case(M::PATCH, customer.clone(), Hidden)
                .json(json!({"first_name": "Mallory"}))
                .if_match(&ids.customer_etag),
            case(M::PATCH, customer.clone(), Hidden).raw("application/merge-patch+json", r#"{"segment_id": null}"#),
        ],
        ("DELETE", "/customers/{id}") => vec![
            case(M::DELETE, customer.clone(), Hidden),
            case(M::DELETE, customer.clone(), Hidden).if_match(&ids.customer_etag),
        ],
        ("GET", "/customers/{id}/clusters") => {
            vec![case(M::GET, format!("{customer}/clusters"), Hidden)]
        }
        ("POST", "/customers/{id}/sales") => vec![
            case(M::POST, format!("{customer}/sales"), Hidden).json(sale.clone()),
            case(M::POST, format!("/customers/{}/sales", ids.customer2), Hidden)
                .json(sale.clone()),
        ],
        ("GET", "/customers/{id}/sales") => vec![
            case(M::GET, format!("{customer}/sales"), Hidden),
            case(M::GET, format!("{customer}/sales?year={year}"), Hidden),
        ],
        ("GET", "/reports/annual-sales") => vec![
            case(M::GET, format!("/reports/annual-sales?year={year}"), Own)
                .containing(&b.customer),
            case(
                M::GET,
                format!("/reports/annual-sales?year={year}&currency=EUR&format=csv"),
                Own,
            )
            .containing(&b.customer),
            case(
                M::GET,
                format!("/reports/annual-sales?year={year}&segment={}", ids.segment),
                Own,
            ),
            case(
                M::GET,
                format!("/reports/annual-sales?year={year}&cluster.b_level=gold"),
                Own,
            )
            .header("accept", "text/csv")
            .containing(&b.customer),
        ],
        ("GET", "/clusters") => vec![case(M::GET, "/clusters".into(), Own).containing("b_level")],
        ("GET", "/targets/count") => vec![
            // A's segment counts none of B's customers (and none of A's).
            case(
                M::GET,
                format!("/targets/count?segment={}", ids.segment),
                Own,
            )
            .containing(r#""count":0"#),
            case(
                M::GET,
                "/targets/count?cluster.b_level=gold&match=any".into(),
                Own,
            )
            .containing("b_level"),
        ],
        ("GET", "/clusters/{field}/members") => vec![
            case(
                M::GET,
                format!("/clusters/{}/members?value=AA", ids.cluster_field),
                Hidden,
            ),
            case(
                M::GET,
                format!("/clusters/{}/members?value=true", ids.cluster_field),
                Hidden,
            ),
        ],
        ("GET", "/rules") => vec![case(M::GET, "/rules".into(), Own).containing(&b.rule)],
        ("GET", "/rules/{name}") => vec![case(M::GET, rule.clone(), Hidden)],
        ("PUT", "/rules/{name}") => vec![
            case(M::PUT, rule.clone(), Precondition)
                .json(json!({"outputs": []}))
                .if_match(&ids.rule_etag),
            case(M::PUT, rule.clone(), Created)
                .json(json!({"outputs": [], "description": "B's own"}))
                .creates(),
        ],
        ("PATCH", "/rules/{name}") => vec![
            case(M::PATCH, rule.clone(), Hidden).json(json!({"enabled": true})),
            case(M::PATCH, rule.clone(), Hidden)
                .json(json!({"pinned_version": 1}))
                .if_match(&ids.rule_etag),
        ],
        ("DELETE", "/rules/{name}") => vec![
            case(M::DELETE, rule.clone(), Hidden),
            case(M::DELETE, rule.clone(), Hidden).if_match(&ids.rule_etag),
        ],
        ("PUT", "/rules/{name}/module") => vec![
            case(M::PUT, format!("{rule}/module"), Hidden).raw("application/wasm", empty_rule()),
            case(M::PUT, format!("{rule}/module"), Hidden)
                .raw("application/wasm", empty_rule())
                .if_match(&ids.rule_etag),
        ],
        ("GET", "/rules/{name}/versions") => {
            vec![case(M::GET, format!("{rule}/versions"), Hidden)]
        }
        ("GET", "/rules/{name}/versions/{number}") => vec![
            case(M::GET, format!("{rule}/versions/1"), Hidden),
            case(M::GET, format!("{rule}/versions/2"), Hidden),
        ],
        ("POST", "/rules/{name}/test") => vec![
            case(M::POST, format!("{rule}/test"), Hidden).json(json!({"customer_id": ids.customer})),
            case(M::POST, format!("{rule}/test"), Hidden)
                .json(json!({"customer": {"email": "t@example.com"}, "version": 1})),
            // B's own rule cannot be tested on A's customer.
            case(
                M::POST,
                format!("/rules/{}/test", b.rule),
                Invalid("/customer_id".into()),
            )
            .json(json!({"customer_id": ids.customer})),
        ],
        ("POST", "/rules/{name}/backfill") => vec![
            case(M::POST, format!("{rule}/backfill"), Hidden).json(json!({"dry_run": true})),
            case(M::POST, format!("{rule}/backfill"), Hidden),
        ],
        ("GET", "/rules/{name}/backfill") => {
            vec![case(M::GET, format!("{rule}/backfill"), Hidden)]
        }
        ("GET", "/rules/{name}/backfill/{job}") => vec![
            case(M::GET, job.clone(), Hidden),
            // A's job under B's own rule.
            case(
                M::GET,
                format!("/rules/{}/backfill/{}", b.rule, ids.job),
                Hidden,
            ),
        ],
        ("POST", "/rules/{name}/backfill/{job}/resume") => vec![
            case(M::POST, format!("{job}/resume"), Hidden),
            case(
                M::POST,
                format!("/rules/{}/backfill/{}/resume", b.rule, ids.job),
                Hidden,
            ),
        ],
        ("GET", "/openapi.json") => vec![case(M::GET, "/openapi.json".into(), Own)],
        _ => return None,
    };
    Some(cases)
}

/// A valid, do-nothing rule module.
fn empty_rule() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .expect("valid WAT")
}

// ---------------------------------------------------------------------------------
// Tenant A

struct TenantA {
    client: Client,
    ids: Ids,
    segment2: String,
    /// Strings only A's data holds; none may reach B unless B sent it.
    markers: Vec<String>,
}

/// `tag`: unique, and valid inside field and rule names (`[a-z0-9_]`).
fn tag_of(tenant: &str) -> String {
    tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn populate_a(stack: &Stack, tenant: &str) -> TenantA {
    let a = stack.client(tenant);
    let tag = tag_of(tenant);
    // In A's values only, never in an id B could send.
    let secret = format!("s3cret{}", tag_of(&unique_tenant("x")).replace('_', ""));
    let note = format!("a_note_{tag}");
    for body in [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true,
               "label": format!("A tier {secret}")}),
        json!({"name": "distributor", "type": "boolean", "cluster": true}),
        json!({"name": "annual_revenue", "type": "decimal"}),
        json!({"name": note, "type": "string", "label": format!("A note {secret}")}),
    ] {
        create_field(&a, &body).await;
    }
    let segment_name = format!("A-VIP-{tag}");
    let segment = id(&a
        .post(
            "/segments",
            &json!({"name": segment_name, "description": format!("A top spenders {secret}")}),
        )
        .await
        .expect(201));
    let segment2 = id(&a
        .post(
            "/segments",
            &json!({"name": format!("A-Second-{tag}"), "status": "inactive"}),
        )
        .await
        .expect(201));
    let (customer, customer2) = (format!("a-c1-{tag}"), format!("a-c2-{tag}"));
    let (email, email2) = (
        format!("a1-{tag}@example.com"),
        format!("a2-{tag}@example.com"),
    );
    for (id, email, revenue) in [(&customer, &email, "150000"), (&customer2, &email2, "500")] {
        create_customer(
            &a,
            &json!({"id": id, "email": email, "first_name": format!("Ann{secret}"),
                    "last_name": format!("Last{secret}"), "phone": "+34 600 000 001",
                    "segment_id": segment,
                    "fields": {"tier": "AA", "distributor": true, "annual_revenue": revenue,
                               note.clone(): format!("A private note {secret}")}}),
        )
        .await;
    }
    // The counts, kept from the stream, settle before the first snapshot.
    wait_for_segment_count(&a, &segment, 2).await;
    wait_for_member_count(&a, "tier", 2).await;
    wait_for_member_count(&a, "distributor", 2).await;
    wait_for_cluster_values(
        &a,
        &[
            ("tier", json!([{"value": "AA", "count": 2}])),
            ("distributor", json!([{"value": true, "count": 2}])),
        ],
    )
    .await;
    let sale_reference = format!("A-INV-{tag}-1");
    for (customer, reference, date, amount) in [
        (&customer, sale_reference.clone(), "02-01", "1234.50"),
        (&customer, format!("A-INV-{tag}-2"), "03-01", "99.99"),
        (&customer2, format!("A-INV-{tag}-3"), "04-01", "10"),
    ] {
        a.post(
            &format!("/customers/{customer}/sales"),
            &json!({"date": format!("{YEAR}-{date}"), "amount": amount, "currency": "EUR",
                    "reference": reference, "description": format!("A order {secret}")}),
        )
        .await
        .expect(201);
    }
    let rule = format!("tiering_{tag}");
    a.put(
        &format!("/rules/{rule}"),
        &json!({"description": format!("A rule {secret}"), "outputs": ["tier", "distributor"]}),
    )
    .await
    .expect(201);
    let reply = upload(&a, &rule, &example("tier-rust")).await;
    assert_eq!(reply.status, 201, "upload refused: {reply:#?}");
    let reply = a
        .post(
            &format!("/rules/{rule}/backfill"),
            &json!({"dry_run": true}),
        )
        .await
        .expect(202);
    let job = id(&reply);
    // Let the job finish, so A's state is at rest before the first snapshot.
    eventually(
        &a,
        &format!("/rules/{rule}/backfill/{job}"),
        Duration::from_secs(90),
        |job| job["state"] == "done",
    )
    .await;

    let etag_of = async |path: String| etag(&a.get(&path).await.expect(200));
    let ids = Ids {
        segment_etag: etag_of(format!("/segments/{segment}")).await,
        field_etag: etag_of(format!("/fields/{note}")).await,
        customer_etag: etag_of(format!("/customers/{customer}")).await,
        rule_etag: etag_of(format!("/rules/{rule}")).await,
        segment: segment.clone(),
        segment_name,
        customer,
        customer2,
        email,
        email2,
        field: note,
        cluster_field: "tier".into(),
        rule,
        job: job.clone(),
        sale_reference,
    };
    let markers = vec![
        secret,
        tag.clone(),
        segment,
        segment2.clone(),
        job,
        "600 000 001".into(),
    ];
    TenantA {
        client: a,
        ids,
        segment2,
        markers,
    }
}

/// Every read of A's, each with status, ETag and body.
async fn snapshot(a: &TenantA) -> Vec<(String, u16, Option<String>, String)> {
    let ids = &a.ids;
    let mut paths = vec![
        "/segments".to_string(),
        format!("/segments/{}", ids.segment),
        format!("/segments/{}", a.segment2),
        "/fields".into(),
        format!("/fields/{}", ids.field),
        "/fields/tier".into(),
        "/customers".into(),
        format!("/customers?segment={}", ids.segment),
        "/customers?cluster.tier=AA".into(),
        "/customers/export".into(),
        "/clusters".into(),
        "/clusters/tier/members?value=AA".into(),
        format!("/reports/annual-sales?year={YEAR}"),
        "/rules".into(),
        format!("/rules/{}", ids.rule),
        format!("/rules/{}/versions", ids.rule),
        format!("/rules/{}/versions/1", ids.rule),
        format!("/rules/{}/backfill", ids.rule),
        format!("/rules/{}/backfill/{}", ids.rule, ids.job),
    ];
    for customer in [&ids.customer, &ids.customer2] {
        paths.push(format!("/customers/{customer}"));
        paths.push(format!("/customers/{customer}/clusters"));
        paths.push(format!("/customers/{customer}/sales"));
    }
    let mut out = Vec::new();
    for path in paths {
        let reply = a.client.get(&path).await;
        assert_eq!(reply.status, 200, "A's own read {path}: {reply:#?}");
        let etag = reply.header("etag").map(str::to_string);
        out.push((path, reply.status, etag, reply.text));
    }
    out
}

// ---------------------------------------------------------------------------------
// Checks

/// The markers of A's that appear in `text` although B did not send them.
fn leaks<'m>(markers: &'m [String], sent: &str, text: &str) -> Vec<&'m str> {
    markers
        .iter()
        .filter(|m| !sent.contains(m.as_str()) && text.contains(m.as_str()))
        .map(String::as_str)
        .collect()
}

#[track_caller]
fn check(case: &Case, reply: &Reply, markers: &[String]) {
    let label = case.label();
    match &case.expect {
        Expect::Hidden => {
            assert_eq!(reply.status, 404, "{label}: {reply:#?}");
            assert_problem(reply, 404, "not_found");
        }
        Expect::Precondition => {
            assert_eq!(reply.status, 412, "{label}: {reply:#?}");
            assert_problem(reply, 412, "precondition_failed");
        }
        Expect::Own => assert_eq!(reply.status, 200, "{label}: {reply:#?}"),
        Expect::Created => assert_eq!(reply.status, 201, "{label}: {reply:#?}"),
        Expect::Invalid(pointer) => {
            assert_eq!(reply.status, 422, "{label}: {reply:#?}");
            assert_eq!(pointers(reply), set(&[pointer.as_str()]), "{label}");
        }
    }
    let leaked = leaks(markers, &case.sent(), &reply.text);
    assert!(
        leaked.is_empty(),
        "{label} leaks {leaked:?}: {}",
        reply.text
    );
    for (name, value) in &reply.headers {
        let value = value.to_str().unwrap_or_default();
        let leaked = leaks(markers, &case.sent(), value);
        assert!(leaked.is_empty(), "{label} leaks {leaked:?} in {name}");
    }
    if let Some(text) = &case.contains {
        assert!(
            reply.text.contains(text.as_str()),
            "{label}: B's own `{text}` missing: {}",
            reply.text
        );
    }
}

/// `text` with the ghost ids replaced by A's.
fn in_a_terms(text: &str, swaps: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (ghost, a) in swaps {
        text = text.replace(ghost.as_str(), a);
    }
    text
}

// ---------------------------------------------------------------------------------
// The matrix

#[tokio::test]
async fn every_route_answers_another_tenant_as_if_a_ids_did_not_exist() {
    let stack = Stack::get().await;
    let tenant_a = unique_tenant("iso-a");
    let a = populate_a(stack, &tenant_a).await;
    let tag = tag_of(&tenant_a);
    let ghost = Ids::ghost_of(&a.ids, &tag);
    let swaps = Ids::swaps(&ghost, &a.ids);
    let before = snapshot(&a).await;

    // B owns a little of its own, under other names.
    let b = stack.client(&unique_tenant("iso-b"));
    create_field(
        &b,
        &json!({"name": "b_level", "type": "enum", "values": ["gold"], "cluster": true}),
    )
    .await;
    let b_segment = "B-own-segment".to_string();
    let b_segment_id = id(&b
        .post("/segments", &json!({"name": b_segment}))
        .await
        .expect(201));
    let b_own = BOwn {
        segment_name: b_segment,
        customer: "b-own-1".into(),
        rule: "b_rule".into(),
    };
    create_customer(
        &b,
        &json!({"id": b_own.customer, "email": "b1@example.com", "segment_id": b_segment_id,
                "fields": {"b_level": "gold"}}),
    )
    .await;
    b.post(
        &format!("/customers/{}/sales", b_own.customer),
        &json!({"date": format!("{YEAR}-05-05"), "amount": "5", "currency": "EUR",
                "reference": "b-ref"}),
    )
    .await
    .expect(201);
    b.put(&format!("/rules/{}", b_own.rule), &json!({"outputs": []}))
        .await
        .expect(201);
    assert_eq!(upload(&b, &b_own.rule, &empty_rule()).await.status, 201);

    // Every route has cases.
    let mut missing = Vec::new();
    let mut all = Vec::new();
    let mut all_ghost = Vec::new();
    let endpoints: Vec<&api::Endpoint> = rules_api::endpoints().collect();
    for route in &endpoints {
        let key = (route.method, route.path);
        match (
            cases_for(key, &a.ids, &b_own, YEAR),
            cases_for(key, &ghost, &b_own, YEAR),
        ) {
            (Some(cases), Some(ghost_cases)) => {
                assert!(!cases.is_empty(), "{key:?} has an empty case list");
                all.extend(cases);
                all_ghost.extend(ghost_cases);
            }
            _ => missing.push(format!("{} {}", route.method, route.path)),
        }
    }
    assert!(
        missing.is_empty(),
        "routes of rules_api::endpoints() without an isolation case in tests/tests/integration/isolation.rs: {missing:#?}"
    );
    let covered: BTreeSet<_> = all.iter().map(|c| c.route).collect();
    assert_eq!(covered.len(), endpoints.len());

    // Probes: nothing may change, and A's ids answer exactly like ids nobody has.
    let mut probes = 0;
    let mut compared = 0;
    for (case, ghost_case) in all.iter().zip(&all_ghost) {
        if case.phase != Phase::Probe {
            continue;
        }
        probes += 1;
        let reply = case.send(&b).await;
        check(case, &reply, &a.markers);
        if matches!(case.expect, Expect::Hidden | Expect::Precondition) {
            compared += 1;
            let ghost_reply = ghost_case.send(&b).await;
            check(ghost_case, &ghost_reply, &a.markers);
            assert_eq!(
                (reply.status, in_a_terms(&ghost_reply.text, &swaps)),
                (ghost_reply.status, reply.text.clone()),
                "{}: A's id and an unknown id answer differently",
                case.label()
            );
            assert_eq!(
                reply.header("content-type"),
                ghost_reply.header("content-type")
            );
        }
    }
    assert_eq!(snapshot(&a).await, before, "a probe changed A's data");

    // Creates: B's own resources, several under A's ids and names.
    let mut creates = 0;
    for case in all.iter().filter(|c| c.phase == Phase::Create) {
        creates += 1;
        let reply = case.send(&b).await;
        check(case, &reply, &a.markers);
        match case.route {
            ("POST", "/customers/import") => {
                // A's id and A's email are new customers for B; nothing is "updated".
                let report = &reply.json;
                assert_eq!(report["created"], 1, "{}", reply.text);
                assert_eq!(report["updated"], 0, "{}", reply.text);
                assert_eq!(report["failed"].as_array().map(Vec::len), Some(1));
            }
            ("POST", "/segments") | ("POST", "/customers") => {
                assert_ne!(reply.json["id"], a.ids.segment.as_str());
                assert_ne!(reply.json["id"], a.ids.customer.as_str());
            }
            ("PUT", "/rules/{name}") => {
                assert_eq!(reply.json["latest_version"], 0, "{}", reply.text)
            }
            _ => {}
        }
    }
    // The import's dry run, a probe, classified the same rows the same way.
    let dry = all
        .iter()
        .find(|c| c.path == "/customers/import?dry_run=true")
        .expect("dry-run import case");
    let dry = dry.send(&b).await;
    assert_eq!(dry.json["updated"], 0, "{}", dry.text);

    // B now owns a customer under A's customer ids, a rule under A's rule name and a
    // field under A's cluster field name. Through them B still sees nothing of A's.
    let shadow = [
        format!("/customers/{}", a.ids.customer),
        format!("/customers/{}", a.ids.customer2),
        format!("/customers/{}/clusters", a.ids.customer),
        format!("/customers/{}/sales", a.ids.customer),
        format!("/customers/{}/sales?year={YEAR}", a.ids.customer),
        format!("/rules/{}", a.ids.rule),
        format!("/rules/{}/versions", a.ids.rule),
        format!("/rules/{}/backfill", a.ids.rule),
        format!("/fields/{}", a.ids.cluster_field),
        "/customers".into(),
        "/customers/export".into(),
        "/clusters".into(),
        format!("/reports/annual-sales?year={YEAR}"),
    ];
    let sent_ids = [
        a.ids.customer.as_str(),
        a.ids.customer2.as_str(),
        a.ids.rule.as_str(),
        a.ids.email.as_str(),
        a.ids.email2.as_str(),
        a.ids.segment_name.as_str(),
    ]
    .join(" ");
    for path in &shadow {
        let reply = b.get(path).await.expect(200);
        let leaked = leaks(&a.markers, &sent_ids, &reply.text);
        assert!(leaked.is_empty(), "{path} leaks {leaked:?}: {}", reply.text);
    }
    let read = |path: String| {
        let b = b.clone();
        async move { b.get(&path).await }
    };
    let mine = read(format!("/customers/{}", a.ids.customer)).await;
    assert_eq!(mine.json["email"], "b-put@example.com", "{}", mine.text);
    assert_eq!(mine.json["version"], 1);
    let sales = read(format!("/customers/{}/sales", a.ids.customer)).await;
    assert_eq!(
        sales.json["items"],
        json!([]),
        "A's sales through B's customer"
    );
    let versions = read(format!("/rules/{}/versions", a.ids.rule)).await;
    assert_eq!(
        versions.json["items"],
        json!([]),
        "A's versions via B's rule"
    );
    let jobs = read(format!("/rules/{}/backfill", a.ids.rule)).await;
    assert_eq!(jobs.json["items"], json!([]), "A's jobs via B's rule");
    for path in [
        format!("/rules/{}/versions/1", a.ids.rule),
        format!("/rules/{}/backfill/{}", a.ids.rule, a.ids.job),
        format!("/clusters/{}/members?value=AA", a.ids.cluster_field),
    ] {
        assert_problem(&read(path).await, 404, "not_found");
    }
    let reply = b
        .post(
            &format!("/rules/{}/backfill/{}/resume", a.ids.rule, a.ids.job),
            &json!({}),
        )
        .await;
    assert_problem(&reply, 404, "not_found");
    // B's rule of A's name has no module: it cannot run A's.
    let reply = b
        .post(
            &format!("/rules/{}/test", a.ids.rule),
            &json!({"customer_id": a.ids.customer}),
        )
        .await;
    assert_problem(&reply, 409, "conflict");
    // A's sale reference is free for B's customer of the same id: 201, not A's 409/200.
    let reply = b
        .post(
            &format!("/customers/{}/sales", a.ids.customer),
            &json!({"date": format!("{YEAR}-02-01"), "amount": "1.00", "currency": "EUR",
                    "reference": a.ids.sale_reference}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:#?}");

    // Nothing of A's changed: bodies, ETags, counts, cluster values, jobs, sales.
    let after = snapshot(&a).await;
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before, after, "A's {} changed", before.0);
    }
    assert_eq!(before.len(), after.len());
    println!(
        "isolation matrix: {} routes, {} cases ({probes} probes, {compared} of them also sent \
         with unknown ids and compared; {creates} creates), {} shadow reads, {} reads of A's \
         compared before and after",
        endpoints.len(),
        all.len(),
        shadow.len(),
        before.len()
    );
}

// ---------------------------------------------------------------------------------
// Cursors

/// The cursor a listing hands out after a page of one: `next_cursor`, or the `cursor`
/// of a CSV answer's `Link: <...>; rel="next"`.
fn next_cursor(reply: &Reply) -> String {
    if let Some(cursor) = reply.json["next_cursor"].as_str() {
        return cursor.to_string();
    }
    let link = reply
        .header("link")
        .unwrap_or_else(|| panic!("no next cursor: {reply:#?}"));
    let start = link.find("cursor=").expect("cursor in Link") + "cursor=".len();
    let end = link[start..]
        .find(['&', '>'])
        .map_or(link.len(), |e| start + e);
    let encoded = &link[start..end];
    // The Link query is form-encoded; cursors are URL-safe base64 plus `.`.
    encoded.replace("%2E", ".").replace("%2e", ".")
}

/// Gives `client` two segments, two customers of one of them in cluster `tier=AA`
/// (ids `x1`, `x2`), and sales of the year (two for `x1`, one for `x2`).
async fn listable(client: &Client) -> String {
    create_field(
        client,
        &json!({"name": "tier", "type": "enum", "values": ["AA", "A"], "cluster": true}),
    )
    .await;
    let segment = id(&client
        .post("/segments", &json!({"name": "One"}))
        .await
        .expect(201));
    client
        .post("/segments", &json!({"name": "Two"}))
        .await
        .expect(201);
    for customer in ["x1", "x2"] {
        create_customer(
            client,
            &json!({"id": customer, "email": format!("{customer}@example.com"),
                    "segment_id": segment, "fields": {"tier": "AA"}}),
        )
        .await;
    }
    for (customer, reference, amount) in [("x1", "r1", "10"), ("x1", "r2", "20"), ("x2", "r3", "5")]
    {
        client
            .post(
                &format!("/customers/{customer}/sales"),
                &json!({"date": format!("{YEAR}-06-01"), "amount": amount,
                        "currency": "EUR", "reference": reference}),
            )
            .await
            .expect(201);
    }
    segment
}

#[tokio::test]
async fn cursors_from_one_tenant_are_refused_on_the_identical_listing_of_another() {
    let stack = Stack::get().await;
    let a = stack.client(&unique_tenant("iso-cur-a"));
    // B mirrors A: same field, customer ids, segment names and sales.
    let b = stack.client(&unique_tenant("iso-cur-b"));
    let a_segment = listable(&a).await;
    let b_segment = listable(&b).await;

    let listings = |segment: &str| {
        vec![
            "/segments?limit=1".to_string(),
            "/segments?status=active&limit=1".into(),
            "/customers?limit=1".into(),
            format!("/customers?segment={segment}&limit=1"),
            "/customers?cluster.tier=AA&limit=1".into(),
            "/clusters/tier/members?value=AA&limit=1".into(),
            "/customers/x1/sales?limit=1".into(),
            format!("/customers/x1/sales?year={YEAR}&limit=1"),
            format!("/reports/annual-sales?year={YEAR}&limit=1"),
            format!("/reports/annual-sales?year={YEAR}&currency=EUR&format=csv&limit=1"),
            format!("/reports/annual-sales?year={YEAR}&segment={segment}&limit=1"),
            "/customers/export?limit=1".into(),
            format!("/customers/export?segment={segment}&limit=1"),
        ]
    };
    let mut refused = 0;
    for (owner, other, segment) in [(&a, &b, &a_segment), (&b, &a, &b_segment)] {
        for path in listings(segment) {
            let first = owner.get(&path).await.expect(200);
            let cursor = next_cursor(&first);
            let with_cursor = with_param(&path, "cursor", &cursor);
            // The owner may continue.
            owner.get(&with_cursor).await.expect(200);
            // The other tenant answers the listing itself (its own data)...
            other.get(&path).await.expect(200);
            // ...but not with the owner's cursor.
            let reply = other.get(&with_cursor).await;
            assert_problem(&reply, 400, "bad_request");
            assert!(
                reply.json["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("cursor")),
                "{path}: {}",
                reply.text
            );
            refused += 1;
        }
    }
    // Listings without pages take no cursor at all.
    for path in ["/fields", "/rules", "/clusters"] {
        let reply = b.get(&format!("{path}?cursor=abc.def")).await;
        assert_problem(&reply, 400, "bad_request");
    }
    println!("cursors: {refused} foreign cursors refused");
}
