//! Randomised property tests of the parsers that read untrusted text (issue 7): the rule
//! output a tenant's module writes, the list-filter query strings, the page cursors and
//! the CSV import files. Every input must end in an answer (a parsed value or a clear refusal), never a
//! panic or a 5xx.
//!
//! The inputs come from a small seeded generator (xorshift), so a failure names the
//! seed and case that reproduce it: mostly structure-aware (JSON documents with the
//! right keys and wrong values, query strings with the real parameter names, real
//! cursors with bytes flipped, CSV tables written with RFC 4180 quoting and then
//! sometimes mangled), plus raw random bytes. Well-formed CSV files are checked cell by
//! cell against the table they were written from.
//!
//! `PARSER_FUZZ_SEED` (default 7) and `PARSER_FUZZ_SCALE` (default 1; the number of
//! cases is multiplied by it) allow longer runs:
//! `PARSER_FUZZ_SCALE=20 cargo test -p tests --test integration parsers:: -- --nocapture`.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::common::*;
use chrono::Utc;
use domain::FieldDef;
use domain::field::FieldDraft;
use domain::rule::{RuleDraft, check_output};
use domain::segment::SegmentDraft;
use domain::spreadsheet::CORE_COLUMNS;
use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, EngineConfig, Limits, ModuleHash, RuleEngine, RuleOutput,
    SegmentChoice,
};
use serde_json::{Map, Value, json};
use tests::{Client, Method, Stack, unique_tenant};

// ---------------------------------------------------------------------------------
// The generator

struct Gen(u64);

impl Gen {
    fn new(salt: u64) -> Gen {
        let seed: u64 = std::env::var("PARSER_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7);
        Gen((seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Short strings that tend to matter to parsers.
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "",
            " ",
            "AA",
            "A",
            "aa",
            "B",
            "true",
            "false",
            "null",
            "0",
            "-1",
            "1.5",
            "1e309",
            "NaN",
            "2026-02-30",
            "2026-01-01",
            "2026-01-01T00:00:00Z",
            "99999999999999999999",
            "é",
            "😀",
            "\u{0}",
            "\u{202e}",
            "\\",
            "\"",
            "%",
            "%00",
            "%zz",
            "&",
            "=",
            "#",
            "+",
            ".",
            "..",
            "/",
            "seg-1",
            "Retail",
            "retail",
            "x@example.com",
            "cursor",
            "{}",
            "[]",
            "\u{fffd}",
            "\n",
            "\t",
            "a#b",
            "0.0001",
            "-0",
            "12.34567",
        ];
        let mut text = String::new();
        for _ in 0..self.below(4) {
            let piece: &str = PIECES[self.below(PIECES.len())];
            text.push_str(piece);
        }
        if self.chance(10) {
            text.push_str(&"x".repeat(self.below(3000)));
        }
        text
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 4 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.chance(50)),
            2 => json!(self.next() as i64 >> self.below(64)),
            3 => json!((self.next() as f64) / (self.next() as f64 + 1.0)),
            4 | 5 => json!(self.text()),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut object = Map::new();
                for _ in 0..self.below(4) {
                    object.insert(self.key(), self.value(depth + 1));
                }
                Value::Object(object)
            }
        }
    }

    fn key(&mut self) -> String {
        const KEYS: &[&str] = &[
            "tier",
            "vip",
            "count",
            "score",
            "since",
            "at",
            "code",
            "label",
            "notes",
            "ghost",
            "clusters",
            "segment",
            "",
            "__proto__",
            "tier ",
            "TIER",
        ];
        if self.chance(85) {
            self.pick(KEYS).to_string()
        } else {
            self.text()
        }
    }

    /// A rule's stdout: mostly ABI-shaped JSON with random values, sometimes broken.
    fn rule_output(&mut self) -> Vec<u8> {
        let mut document = Map::new();
        if self.chance(90) {
            let clusters = if self.chance(85) {
                let mut clusters = Map::new();
                for _ in 0..self.below(5) {
                    clusters.insert(self.key(), self.value(1));
                }
                Value::Object(clusters)
            } else {
                self.value(1)
            };
            document.insert("clusters".into(), clusters);
        }
        if self.chance(50) {
            let segment = match self.below(4) {
                0 => Value::Null,
                1 => json!(self.pick(&["Retail", "retail", "s1", "Old", "", " "])),
                _ => self.value(2),
            };
            document.insert("segment".into(), segment);
        }
        if self.chance(10) {
            document.insert(self.key(), self.value(1));
        }
        let mut bytes = Value::Object(document).to_string().into_bytes();
        match self.below(10) {
            0 => bytes = self.bytes(64),
            1 if !bytes.is_empty() => {
                let at = self.below(bytes.len());
                bytes.truncate(at);
            }
            2 if !bytes.is_empty() => {
                let at = self.below(bytes.len());
                bytes[at] = self.next() as u8;
            }
            3 => {
                let nest = self.below(400);
                let mut deep = b"{\"clusters\":{\"tier\":".to_vec();
                deep.extend(std::iter::repeat_n(b'[', nest));
                deep.extend(std::iter::repeat_n(b']', nest));
                deep.extend(b"}}");
                bytes = deep;
            }
            4 => {
                let copy = bytes.clone();
                bytes.push(b' ');
                bytes.extend(copy);
            }
            _ => {}
        }
        bytes
    }
}

fn scale() -> usize {
    std::env::var("PARSER_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(1)
}

// ---------------------------------------------------------------------------------
// Rule output: the engine's parser, then the domain's checks

/// Copies stdin to stdout: whatever the host feeds it becomes the rule's output.
const ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (func (export "_start")
    (local $total i32)
    ;; Read stdin into 1024.. in chunks until EOF (iovec at 0, count at 8).
    (loop $more
      (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $total)))
      (i32.store (i32.const 4) (i32.const 65536))
      (br_if 1 (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $total (i32.add (local.get $total) (i32.load (i32.const 8))))
      (br_if $more (i32.load (i32.const 8))))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (local.get $total))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

fn fields() -> Vec<FieldDef> {
    [
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "vip", "type": "boolean", "cluster": true}),
        json!({"name": "count", "type": "integer", "cluster": true}),
        json!({"name": "score", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "code", "type": "string", "cluster": true, "max_length": 8}),
        json!({"name": "notes", "type": "text"}),
    ]
    .iter()
    .map(|body| {
        FieldDraft::parse(body)
            .unwrap_or_else(|e| panic!("{body}: {e:?}"))
            .into_field(Utc::now())
    })
    .collect()
}

#[test]
fn rule_outputs_of_any_shape_are_parsed_or_refused_without_panicking() {
    let fields = fields();
    let rule = RuleDraft::parse(
        &json!({"outputs": ["tier", "vip", "count", "code"],
                "segment_output": true}),
        &fields,
    )
    .expect("rule")
    .into_rule("fuzz".into(), Utc::now());
    let segments = vec![
        SegmentDraft::parse(&json!({"name": "Retail"}))
            .unwrap()
            .into_segment("s1".into(), Utc::now()),
        SegmentDraft::parse(&json!({"name": "Old", "status": "inactive"}))
            .unwrap()
            .into_segment("s2".into(), Utc::now()),
    ];
    let engine = RuleEngine::new(EngineConfig {
        max_concurrent_runs: 2,
        ..EngineConfig::default()
    })
    .expect("engine");
    let wasm = wat::parse_str(ECHO).expect("echo module");
    engine
        .validate(&wasm, DEFAULT_MAX_MODULE_BYTES)
        .expect("valid");
    let artifact = engine.precompile(&wasm).expect("precompile");
    // SAFETY: the artifact is `precompile`'s output just above.
    let echo = unsafe { engine.load_artifact(ModuleHash::of(&wasm), &artifact) }.expect("load");
    let limits = Limits {
        fuel: 2_000_000,
        ..Limits::default()
    };

    let mut generator = Gen::new(1);
    let cases = 3_000 * scale();
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for case in 0..cases {
        let stdout = generator.rule_output();
        let report = engine.run(&echo, &stdout, &limits);
        let label = || format!("case {case}: {:?}", String::from_utf8_lossy(&stdout));
        let output = match report.outcome {
            Err(error) => {
                let code = error.code();
                assert!(
                    matches!(
                        code,
                        "no_output"
                            | "output_not_utf8"
                            | "output_not_json"
                            | "output_shape"
                            | "output_too_large"
                    ),
                    "{}: {code} {error}",
                    label()
                );
                assert!(!error.to_string().is_empty());
                *outcomes.entry(code.to_string()).or_default() += 1;
                continue;
            }
            Ok(output) => output,
        };
        // What the engine accepted is an ABI document that reads back the same.
        let document = output.to_json();
        let reparsed: Value = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("{}: accepted but not JSON: {e}", label()));
        assert_eq!(reparsed["clusters"], document["clusters"], "{}", label());
        match check_output(&rule, output, &fields, &segments) {
            Ok(assignment) => {
                for (name, _) in serde_json::to_value(&assignment).unwrap()["clusters"]
                    .as_object()
                    .unwrap()
                {
                    assert!(rule.outputs.contains(name), "{}: {name}", label());
                }
                *outcomes.entry("accepted".into()).or_default() += 1;
            }
            Err(violations) => {
                assert!(!violations.0.is_empty(), "{}", label());
                for v in &violations.0 {
                    assert!(
                        v.pointer.starts_with("/clusters/") || v.pointer == "/segment",
                        "{}: {v:?}",
                        label()
                    );
                    assert!(!v.detail.is_empty(), "{}", label());
                }
                *outcomes.entry("refused by the domain".into()).or_default() += 1;
            }
        }
    }
    let engine_runs = cases;

    // The domain's checks alone, on many more random documents.
    let direct = 30_000 * scale();
    let mut direct_outcomes = [0usize; 2];
    for _ in 0..direct {
        let clusters = match generator.value(0) {
            Value::Object(map) => map,
            other => Map::from_iter([(generator.key(), other)]),
        };
        let segment = match generator.below(3) {
            0 => SegmentChoice::Unchanged,
            1 => SegmentChoice::Clear,
            _ => SegmentChoice::Set(generator.text()),
        };
        let output = RuleOutput { clusters, segment };
        let ok = check_output(&rule, output, &fields, &segments).is_ok();
        direct_outcomes[usize::from(ok)] += 1;
    }
    println!(
        "rule output: {engine_runs} engine runs (echo module) in {:.2?}: {outcomes:?}; \
         {direct} direct domain checks: {} accepted, {} refused; no panic",
        started.elapsed(),
        direct_outcomes[1],
        direct_outcomes[0]
    );
    assert!(
        outcomes.get("accepted").is_some_and(|n| *n > 0),
        "{outcomes:?}"
    );
    assert!(outcomes.len() >= 5, "too little variety: {outcomes:?}");
}

// ---------------------------------------------------------------------------------
// Query strings and cursors, over HTTP

/// Percent-encodes every byte except unreserved ones, or (sometimes) sends it raw.
fn query_part(generator: &mut Gen, text: &str) -> String {
    if generator.chance(15) {
        // As typed: `&`, `=`, `%` and spaces are the parser's problem.
        text.replace(' ', "+")
            .replace('#', "%23")
            .replace('\n', "%0A")
    } else {
        enc(text)
    }
}

async fn listable_tenant(client: &Client) -> String {
    for body in fields_bodies() {
        create_field(client, &body).await;
    }
    let segment = id(&client
        .post("/segments", &json!({"name": "Retail"}))
        .await
        .expect(201));
    client
        .post("/segments", &json!({"name": "Old", "status": "inactive"}))
        .await
        .expect(201);
    for i in 0..3 {
        create_customer(
            client,
            &json!({"id": format!("c{i}"), "email": format!("c{i}@example.com"),
                    "segment_id": segment,
                    "fields": {"tier": "AA", "vip": true, "count": 3, "score": "1.50",
                               "since": "2026-01-01", "code": "X"}}),
        )
        .await;
        client
            .post(
                &format!("/customers/c{i}/sales"),
                &json!({"date": "2026-03-01", "amount": "10", "currency": "EUR",
                        "reference": format!("r{i}")}),
            )
            .await
            .expect(201);
    }
    segment
}

fn fields_bodies() -> Vec<Value> {
    vec![
        json!({"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": true}),
        json!({"name": "vip", "type": "boolean", "cluster": true}),
        json!({"name": "count", "type": "integer", "cluster": true}),
        json!({"name": "score", "type": "decimal"}),
        json!({"name": "since", "type": "date"}),
        json!({"name": "code", "type": "string", "cluster": true, "max_length": 8}),
        json!({"name": "notes", "type": "text"}),
    ]
}

/// A random query for one of the listings.
fn random_query(generator: &mut Gen, segment: &str, cursors: &[String]) -> String {
    const PATHS: &[&str] = &[
        "/customers",
        "/customers/export",
        "/segments",
        "/clusters/tier/members",
        "/clusters/count/members",
        "/clusters/since/members",
        "/clusters/score/members",
        "/customers/c1/sales",
        "/reports/annual-sales",
    ];
    const NAMES: &[&str] = &[
        "segment",
        "email",
        "limit",
        "cursor",
        "status",
        "year",
        "currency",
        "format",
        "value",
        "cluster.tier",
        "cluster.vip",
        "cluster.count",
        "cluster.score",
        "cluster.since",
        "cluster.code",
        "cluster.notes",
        "cluster.ghost",
        "cluster.",
        "cluster",
        "dry_run",
    ];
    let path = generator.pick(PATHS).to_string();
    let mut pairs = Vec::new();
    for _ in 0..generator.below(4) {
        let name = if generator.chance(90) {
            generator.pick(NAMES).to_string()
        } else {
            generator.text()
        };
        let value = match generator.below(8) {
            0 => segment.to_string(),
            1 if !cursors.is_empty() => generator.pick(cursors).clone(),
            2 => generator.below(300).to_string(),
            3 => generator
                .pick(&[
                    "AA",
                    "true",
                    "3",
                    "1.5",
                    "2026-01-01",
                    "EUR",
                    "csv",
                    "json",
                    "active",
                ])
                .to_string(),
            _ => generator.text(),
        };
        pairs.push(format!(
            "{}={}",
            query_part(generator, &name),
            query_part(generator, &value)
        ));
    }
    if generator.chance(10) {
        let bare = generator.text();
        pairs.push(query_part(generator, &bare));
    }
    if pairs.is_empty() {
        path
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

/// A cursor made from a real one: a byte changed, cut, parts swapped or re-encoded.
fn mutated_cursor(generator: &mut Gen, cursors: &[String]) -> String {
    let cursor = generator.pick(cursors).clone();
    let mut bytes = cursor.clone().into_bytes();
    match generator.below(7) {
        0 => {
            let at = generator.below(bytes.len());
            bytes[at] = *generator.pick(b"ABCabc012_-.=+/%");
        }
        1 => {
            let at = generator.below(bytes.len());
            bytes.truncate(at);
        }
        2 => {
            let other = generator.pick(cursors).clone();
            let (payload, _) = cursor.split_once('.').unwrap_or((&cursor, ""));
            let (_, tag) = other.split_once('.').unwrap_or(("", &other));
            bytes = format!("{payload}.{tag}").into_bytes();
        }
        3 => {
            // A payload naming another tenant, with the original tag.
            use base64::Engine;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let (payload, tag) = cursor.split_once('.').unwrap_or((&cursor, ""));
            let decoded = engine.decode(payload).unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded).replace("\"t\":\"", "\"t\":\"x");
            bytes = format!("{}.{tag}", engine.encode(text)).into_bytes();
        }
        4 => bytes.extend(generator.bytes(8).iter().map(|b| b'a' + b % 26)),
        5 => bytes = generator.text().into_bytes(),
        _ => bytes.insert(generator.below(bytes.len() + 1), b'.'),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn list_filters_and_cursors_answer_200_or_a_4xx_problem_never_a_5xx() {
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fuzz-query"));
    let segment = listable_tenant(&client).await;

    // Real cursors of several listings.
    let mut cursors = Vec::new();
    for path in [
        "/customers?limit=1".to_string(),
        format!("/customers?segment={segment}&limit=1"),
        "/customers?cluster.tier=AA&limit=1".into(),
        "/segments?limit=1".into(),
        "/customers/c1/sales?limit=1".into(),
        "/reports/annual-sales?year=2026&limit=1".into(),
    ] {
        let reply = client.get(&path).await.expect(200);
        let cursor = reply.json["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no cursor: {}", reply.text));
        cursors.push(cursor.to_string());
        // The real cursor goes on.
        client
            .get(&with_param(&path, "cursor", cursor))
            .await
            .expect(200);
    }

    let mut generator = Gen::new(2);
    let started = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let queries = 400 * scale();
    for case in 0..queries {
        let path = random_query(&mut generator, &segment, &cursors);
        let reply = client.get(&path).await;
        assert!(
            matches!(reply.status, 200 | 400 | 404 | 422),
            "case {case}: GET {path}: {reply:#?}"
        );
        if reply.status != 200 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "case {case}: GET {path}"
            );
        }
        *statuses.entry(reply.status).or_default() += 1;
    }

    // Tampered cursors on the listing they came from: always 400.
    let tampered = 200 * scale();
    let listings = [
        "/customers?limit=1".to_string(),
        format!("/customers?segment={segment}&limit=1"),
        "/customers?cluster.tier=AA&limit=1".into(),
        "/segments?limit=1".into(),
        "/customers/c1/sales?limit=1".into(),
        "/reports/annual-sales?year=2026&limit=1".into(),
    ];
    let mut refused = 0;
    for case in 0..tampered {
        let which = generator.below(cursors.len());
        let mutated = mutated_cursor(&mut generator, &cursors[which..=which]);
        if mutated == cursors[which] {
            continue;
        }
        let path = with_param(&listings[which], "cursor", &mutated);
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 400, "case {case}: GET {path}: {reply:#?}");
        refused += 1;
    }
    println!(
        "queries: {queries} random list queries in {:.2?}: statuses {statuses:?}; \
         {refused} tampered cursors, all 400",
        started.elapsed()
    );
    assert!(statuses.get(&200).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(statuses.get(&400).is_some_and(|n| *n > 0), "{statuses:?}");
}

// ---------------------------------------------------------------------------------
// CSV import: the domain's reader, then `POST /customers/import`

/// The columns a generated header picks from: the core ones and the names of
/// [`fields`] (refused names are added on top).
fn csv_columns() -> Vec<&'static str> {
    const FIELDS: [&str; 7] = ["tier", "vip", "count", "score", "since", "code", "notes"];
    CORE_COLUMNS.iter().chain(&FIELDS).copied().collect()
}

/// A generated import file and what a correct reader makes of it.
struct CsvCase {
    bytes: Vec<u8>,
    /// `None` when the file was mangled after encoding: only "no panic" is expected.
    expected: Option<CsvExpectation>,
}

struct CsvExpectation {
    header_is_valid: bool,
    /// Per non-blank data row: the line it starts on and its cells as generated.
    rows: Vec<(u64, Vec<String>)>,
    columns: Vec<String>,
}

/// Line breaks as editors count them: `\r\n`, `\n` and a lone `\r`.
fn line_breaks(text: &[u8]) -> u64 {
    let mut breaks = 0;
    for (i, byte) in text.iter().enumerate() {
        match byte {
            b'\n' => breaks += 1,
            b'\r' if text.get(i + 1) != Some(&b'\n') => breaks += 1,
            _ => {}
        }
    }
    breaks
}

impl Gen {
    /// A header: mostly known columns with an `id` or `email`, sometimes refused ones.
    fn csv_header(&mut self) -> (Vec<String>, bool) {
        let mut columns: Vec<String> = Vec::new();
        for _ in 0..1 + self.below(6) {
            let name = self.pick(&csv_columns()).to_string();
            if !columns.contains(&name) {
                columns.push(name);
            }
        }
        if !columns.iter().any(|c| c == "id" || c == "email") && self.chance(80) {
            let at = self.below(columns.len() + 1);
            columns.insert(at, self.pick(&["id", "email"]).to_string());
        }
        if self.chance(10) {
            let refused = match self.below(3) {
                0 => "ghost".to_string(),
                1 => String::new(),
                _ => columns[0].clone(),
            };
            let at = self.below(columns.len() + 1);
            columns.insert(at, refused);
        }
        let valid = columns.iter().any(|c| c == "id" || c == "email")
            && columns.iter().all(|c| csv_columns().contains(&c.as_str()))
            && columns
                .iter()
                .enumerate()
                .all(|(i, c)| !columns[..i].contains(c));
        (columns, valid)
    }

    /// A cell: real-looking values of every column kind, or the generator's odd text.
    fn csv_cell(&mut self) -> String {
        match self.below(6) {
            0 => String::new(),
            1 => format!("c{}", self.below(8)),
            2 => format!("p{}@example.com", self.below(8)),
            3 => self
                .pick(&[
                    "AA",
                    "yes",
                    "0",
                    "12",
                    "1.50",
                    "2026-01-01",
                    "  x  ",
                    "a,b",
                    "a;b",
                ])
                .to_string(),
            _ => self.text(),
        }
    }

    /// Writes the table as RFC 4180 CSV, quoting what needs it (and sometimes more).
    fn csv_case(&mut self) -> CsvCase {
        let (columns, header_is_valid) = self.csv_header();
        // `;` is only recognisable from a header with two columns or more.
        let separator = if columns.len() > 1 && self.chance(30) {
            b';'
        } else {
            b','
        };
        let line_end: &[u8] = if self.chance(50) { b"\r\n" } else { b"\n" };
        let mut bytes = Vec::new();
        if self.chance(20) {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let write_record = |generator: &mut Gen, bytes: &mut Vec<u8>, cells: &[String]| {
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    bytes.push(separator);
                }
                let needs_quotes = cell
                    .bytes()
                    .any(|b| b == separator || matches!(b, b'"' | b'\r' | b'\n'));
                if needs_quotes || generator.chance(10) {
                    bytes.push(b'"');
                    bytes.extend(cell.replace('"', "\"\"").bytes());
                    bytes.push(b'"');
                } else {
                    bytes.extend(cell.bytes());
                }
            }
            bytes.extend_from_slice(line_end);
        };
        let header_cells: Vec<String> = columns
            .iter()
            .map(|c| match self.below(4) {
                0 => c.to_uppercase(),
                1 => format!(" {c} "),
                _ => c.clone(),
            })
            .collect();
        write_record(self, &mut bytes, &header_cells);
        let mut rows = Vec::new();
        for _ in 0..self.below(50) {
            let cells: Vec<String> = if self.chance(5) {
                vec![String::new(); columns.len()]
            } else {
                columns.iter().map(|_| self.csv_cell()).collect()
            };
            let blank = cells.iter().all(|c| c.trim_ascii().is_empty());
            let line = 1 + line_breaks(&bytes);
            write_record(self, &mut bytes, &cells);
            if !blank {
                rows.push((line, cells));
            }
        }
        if self.chance(25) {
            let expected = None;
            match self.below(5) {
                0 => bytes = self.bytes(300),
                1 if !bytes.is_empty() => bytes.truncate(self.below(bytes.len())),
                2 if !bytes.is_empty() => {
                    let at = self.below(bytes.len());
                    bytes[at] = self.next() as u8;
                }
                3 => {
                    let at = self.below(bytes.len() + 1);
                    bytes.insert(at, b'"');
                }
                _ => {
                    let at = self.below(bytes.len() + 1);
                    bytes.splice(at..at, [0xFF, 0xFE, b'\r']);
                }
            }
            return CsvCase { bytes, expected };
        }
        CsvCase {
            bytes,
            expected: Some(CsvExpectation {
                header_is_valid,
                rows,
                columns,
            }),
        }
    }
}

/// Checks what `read_csv` made of a well-formed file against the table it was written
/// from: every non-blank row, on its line, with its cells.
fn check_import_file(
    case: usize,
    expected: &CsvExpectation,
    result: Result<domain::spreadsheet::ImportFile, domain::spreadsheet::ImportError>,
    max_rows: usize,
) {
    use domain::spreadsheet::ImportError;
    let file = match (result, expected.header_is_valid) {
        (Err(ImportError::Header(violations)), false) => {
            assert!(!violations.0.is_empty(), "case {case}");
            return;
        }
        (Err(ImportError::TooManyRows { limit }), true) => {
            assert_eq!(limit, max_rows, "case {case}");
            assert!(expected.rows.len() > max_rows, "case {case}");
            return;
        }
        (Ok(file), true) => file,
        (other, valid) => panic!("case {case}: header valid {valid}, got {other:?}"),
    };
    assert_eq!(file.columns, expected.columns, "case {case}");
    assert_eq!(file.rows.len(), expected.rows.len(), "case {case}");
    let (mut ids, mut emails) = (Vec::new(), Vec::new());
    for (row, (line, cells)) in file.rows.iter().zip(&expected.rows) {
        assert_eq!(row.line, *line, "case {case}: {cells:?}");
        let cell = |column: &str| {
            let index = expected.columns.iter().position(|c| c == column)?;
            Some(cells[index].trim()).filter(|c| !c.is_empty())
        };
        assert_eq!(row.id.as_deref(), cell("id"), "case {case}, line {line}");
        assert_eq!(
            row.email.as_deref(),
            cell("email"),
            "case {case}, line {line}"
        );
        let id_repeats = cell("id").is_some_and(|id| ids.contains(&id.to_string()));
        let email_repeats =
            cell("email").is_some_and(|email| emails.contains(&email.to_lowercase()));
        ids.extend(cell("id").map(str::to_string));
        emails.extend(cell("email").map(str::to_lowercase));
        let patch = match &row.patch {
            Err(errors) => {
                assert!(
                    id_repeats || email_repeats,
                    "case {case}, line {line}: {errors:?}"
                );
                continue;
            }
            Ok(patch) => patch,
        };
        assert!(!id_repeats && !email_repeats, "case {case}, line {line}");
        for (column, raw) in expected.columns.iter().zip(cells) {
            let got = match patch.get(column) {
                Some(value) => value,
                None => &patch["fields"][column],
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                let absent_id = column == "id" && patch.get("id").is_none();
                assert!(
                    got.is_null() || absent_id,
                    "case {case}, line {line}: {column}"
                );
            } else if CORE_COLUMNS.contains(&column.as_str()) {
                assert_eq!(got, &json!(trimmed), "case {case}, line {line}: {column}");
            } else if matches!(column.as_str(), "code" | "notes" | "tier") {
                // Text keeps its spaces; the field's validation decides the rest.
                assert_eq!(got, &json!(raw), "case {case}, line {line}: {column}");
            } else {
                assert!(!got.is_null(), "case {case}, line {line}: {column}");
            }
        }
    }
}

#[test]
fn csv_files_of_any_shape_are_read_or_refused_without_panicking() {
    use domain::spreadsheet::{ImportError, read_csv};
    const MAX_ROWS: usize = 40;
    let fields = fields();
    let mut generator = Gen::new(3);
    let files = 5_000 * scale();
    let started = Instant::now();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows_read = 0;
    for case in 0..files {
        let csv = generator.csv_case();
        let result = read_csv(&csv.bytes, &fields, MAX_ROWS);
        let outcome = match &result {
            Ok(file) => {
                assert!(file.rows.len() <= MAX_ROWS, "case {case}");
                assert!(
                    file.rows.windows(2).all(|w| w[0].line < w[1].line)
                        && file.rows.iter().all(|r| r.line >= 2),
                    "case {case}: lines out of order"
                );
                for row in &file.rows {
                    match &row.patch {
                        Ok(patch) => assert!(patch.is_object(), "case {case}"),
                        Err(errors) => assert!(
                            !errors.is_empty() && errors.iter().all(|e| !e.detail.is_empty()),
                            "case {case}"
                        ),
                    }
                }
                rows_read += file.rows.len();
                "read"
            }
            Err(ImportError::Unreadable(detail)) => {
                assert!(!detail.is_empty(), "case {case}");
                "unreadable"
            }
            Err(ImportError::Header(_)) => "bad header",
            Err(ImportError::TooManyRows { .. }) => "too many rows",
        };
        *outcomes.entry(outcome).or_default() += 1;
        if let Some(expected) = &csv.expected {
            check_import_file(case, expected, result, MAX_ROWS);
            *outcomes
                .entry("well-formed, checked cell by cell")
                .or_default() += 1;
        }
    }
    println!(
        "csv: {files} random files ({rows_read} rows) read in {:.2?}: {outcomes:?}; no panic",
        started.elapsed()
    );
    for outcome in ["read", "unreadable", "bad header", "too many rows"] {
        assert!(
            outcomes.contains_key(outcome),
            "never {outcome}: {outcomes:?}"
        );
    }
}

#[tokio::test]
async fn csv_imports_of_any_shape_answer_a_report_or_a_4xx_problem_never_a_5xx() {
    use domain::spreadsheet::read_csv;
    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("fuzz-csv"));
    listable_tenant(&client).await;
    let fields = fields();
    let mut generator = Gen::new(4);
    let started = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let imports = 150 * scale();
    for case in 0..imports {
        let csv = generator.csv_case();
        // Mostly dry runs: the writes are the import tests' business, the parsing is ours.
        let dry_run = generator.chance(70);
        let query = if dry_run { "?dry_run=true" } else { "" };
        let reply = send_raw(
            &client,
            Method::POST,
            &format!("/customers/import{query}"),
            Some("text/csv"),
            csv.bytes.clone(),
        )
        .await;
        let label = || format!("case {case}: {:?}", String::from_utf8_lossy(&csv.bytes));
        assert!(
            matches!(reply.status, 200 | 400 | 413 | 422),
            "{}: {reply:#?}",
            label()
        );
        *statuses.entry(reply.status).or_default() += 1;
        if reply.status != 200 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{}",
                label()
            );
            continue;
        }
        // Every row the reader finds is accounted for once in the report.
        let rows = read_csv(&csv.bytes, &fields, usize::MAX)
            .unwrap_or_else(|e| panic!("{}: answered 200 but {e}", label()))
            .rows
            .len();
        let report = &reply.json;
        let counted: u64 = ["created", "updated", "unchanged"]
            .iter()
            .map(|key| report[key].as_u64().expect("count"))
            .sum::<u64>()
            + report["failed"].as_array().expect("failed").len() as u64;
        if report["stopped_at_line"].is_null() {
            assert_eq!(counted, rows as u64, "{}: {report}", label());
        }
        assert_eq!(report["dry_run"], json!(dry_run), "{}", label());
    }
    // The tenant's data still reads back whole.
    client.get("/customers?limit=100").await.expect(200);
    let export = client.get("/customers/export").await.expect(200);
    assert!(export.text.starts_with("id,email,"), "{}", export.text);
    println!(
        "csv over HTTP: {imports} random imports in {:.2?}: statuses {statuses:?}",
        started.elapsed()
    );
    assert!(statuses.get(&200).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(statuses.get(&422).is_some_and(|n| *n > 0), "{statuses:?}");
}
