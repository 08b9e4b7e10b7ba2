//! The hostile rule modules of `tests/hostile/*.wat` and what each must end in (the
//! `;; attack:`, `;; expect:` and `;; limits:` comments at the top of each file; see
//! `tests/hostile/README.md`). Shared by `hostile.rs` and `hostile_memory.rs`.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// Replaced in a module's text by the id of another tenant's segment.
pub const RIVAL_SEGMENT_ID: &str = "{{RIVAL_SEGMENT_ID}}";

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Refused at upload: 422 with this text in the detail at `/module`.
    Upload(String),
    /// Accepted; the run fails with this error code and text in its message.
    Run { code: String, text: String },
    /// Accepted and runs, but the output is refused at `pointer` with this text.
    Verdict { pointer: String, text: String },
    /// Contained: the run succeeds and its log holds this text.
    Ok(String),
}

#[derive(Debug, Clone)]
pub struct Hostile {
    /// File name without `.wat`.
    pub name: String,
    pub attack: String,
    pub expect: Expect,
    /// The rule's `limits` for this module, if it sets any.
    pub limits: Option<Value>,
    text: String,
}

impl Hostile {
    /// The module's binary, with `{{RIVAL_SEGMENT_ID}}` replaced by `rival_segment`.
    pub fn wasm(&self, rival_segment: &str) -> Vec<u8> {
        let text = self.text.replace(RIVAL_SEGMENT_ID, rival_segment);
        wat::parse_str(&text).unwrap_or_else(|e| panic!("tests/hostile/{}.wat: {e}", self.name))
    }

    /// `expect` with the placeholder replaced too.
    pub fn expect_for(&self, rival_segment: &str) -> Expect {
        let fill = |s: &String| s.replace(RIVAL_SEGMENT_ID, rival_segment);
        match &self.expect {
            Expect::Upload(text) => Expect::Upload(fill(text)),
            Expect::Run { code, text } => Expect::Run {
                code: code.clone(),
                text: fill(text),
            },
            Expect::Verdict { pointer, text } => Expect::Verdict {
                pointer: pointer.clone(),
                text: fill(text),
            },
            Expect::Ok(text) => Expect::Ok(fill(text)),
        }
    }
}

pub fn dir() -> PathBuf {
    tests::repo_root().join("tests/hostile")
}

/// Every module of the corpus, by name. Panics on a file without `attack` or `expect`.
pub fn corpus() -> Vec<Hostile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("{}: {e}", dir().display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "wat"))
        .collect();
    paths.sort();
    paths.iter().map(|path| parse(path)).collect()
}

fn parse(path: &std::path::Path) -> Hostile {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file name")
        .to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut attack = Vec::new();
    let mut expect = None;
    let mut limits = None;
    let mut in_attack = false;
    for line in text.lines().take_while(|l| l.starts_with(";;")) {
        let line = line.trim_start_matches(";;").trim();
        if let Some(rest) = line.strip_prefix("attack:") {
            attack.push(rest.trim().to_string());
            in_attack = true;
        } else if let Some(rest) = line.strip_prefix("expect:") {
            assert!(expect.is_none(), "{name}: more than one `expect`");
            expect = Some(parse_expect(&name, rest.trim()));
            in_attack = false;
        } else if let Some(rest) = line.strip_prefix("limits:") {
            limits = Some(
                serde_json::from_str(rest.trim())
                    .unwrap_or_else(|e| panic!("{name}: bad limits: {e}")),
            );
            in_attack = false;
        } else if in_attack {
            attack.push(line.to_string());
        }
    }
    let attack = attack.join(" ");
    assert!(!attack.is_empty(), "{name}: no `;; attack:` comment");
    Hostile {
        expect: expect.unwrap_or_else(|| panic!("{name}: no `;; expect:` comment")),
        name,
        attack,
        limits,
        text,
    }
}

fn parse_expect(name: &str, spec: &str) -> Expect {
    let (head, text) = spec
        .split_once(':')
        .unwrap_or_else(|| panic!("{name}: `expect: <kind>: <text>`, got `{spec}`"));
    let text = text.trim().to_string();
    let mut words = head.split_whitespace();
    let kind = words.next().unwrap_or_default();
    let arg = words.next().map(str::to_string);
    match (kind, arg) {
        ("upload", None) if !text.is_empty() => Expect::Upload(text),
        ("run", Some(code)) if !text.is_empty() => Expect::Run { code, text },
        ("verdict", Some(pointer)) if !text.is_empty() => Expect::Verdict { pointer, text },
        ("ok", None) => Expect::Ok(text),
        _ => panic!("{name}: cannot read `expect: {spec}`"),
    }
}
