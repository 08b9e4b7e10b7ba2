//! `template.yaml` and the code cannot drift apart: every route the code serves is
//! declared on the function that serves it, and nothing else is; every function's
//! binary exists in the workspace.

use std::collections::BTreeSet;

use api::{Function, ROUTES};

/// (function binary, method, path) for every HttpApi event of the template.
fn template_routes() -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(api_tests::repo_root().join("template.yaml"))
        .expect("template.yaml is readable");
    let mut routes = BTreeSet::new();
    let mut binary = None;
    let mut method: Option<String> = None;
    for line in text.lines() {
        // A new resource at two spaces of indentation ends the previous function.
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            binary = None;
        }
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("Binary:") {
            binary = Some(name.trim().to_owned());
        }
        for part in trimmed.trim_matches(|c| c == '{' || c == '}').split(',') {
            let part = part.trim().trim_end_matches('}').trim();
            if let Some(m) = part.strip_prefix("Method:") {
                method = Some(m.trim().to_owned());
            }
            if let Some(p) = part.strip_prefix("Path:") {
                let path = p.trim().trim_matches('"').to_owned();
                let function = binary.clone().expect("a route belongs to a function");
                let method = method.take().expect("Method comes before Path");
                routes.insert((function, method, path));
            }
        }
    }
    routes
}

#[test]
fn template_declares_exactly_the_served_routes() {
    let served: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| {
            (
                r.function.name().to_owned(),
                r.method.to_owned(),
                r.path.to_owned(),
            )
        })
        .collect();
    let declared = template_routes();
    let missing: Vec<_> = served.difference(&declared).collect();
    let extra: Vec<_> = declared.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not in template.yaml: {missing:?}\nin template.yaml but not served: {extra:?}"
    );
}

#[test]
fn every_function_binary_exists_in_the_workspace() {
    let root = api_tests::repo_root();
    for function in Function::ALL {
        let name = function.name();
        let dir = root.join("functions").join(match function {
            Function::Rules => "rules",
            other => other.name(),
        });
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|_| panic!("{} has no crate", name));
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "the crate in {} is not named {name}",
            dir.display()
        );
        assert!(dir.join("src/main.rs").exists(), "{name} has no main.rs");
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        assert!(
            template.contains(&format!("Binary: {name}")),
            "template.yaml deploys no function with binary {name}"
        );
    }
}

/// The value of `key: value` on the first line after `after` that holds it.
fn template_value(text: &str, after: &str, key: &str) -> String {
    let start = text.find(after).expect("the anchor is in template.yaml");
    text[start..]
        .lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .map(|v| v.trim().trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("no `{key}` after `{after}`"))
}

#[test]
fn the_stream_mapping_matches_what_the_assign_code_expects() {
    use evaluation::stream::{BATCH_SIZE, MAXIMUM_RETRY_ATTEMPTS, filter_patterns};
    let text = std::fs::read_to_string(api_tests::repo_root().join("template.yaml")).unwrap();
    let anchor = "Type: DynamoDB";
    assert_eq!(
        template_value(&text, anchor, "BatchSize:"),
        BATCH_SIZE.to_string()
    );
    assert_eq!(
        template_value(&text, anchor, "MaximumRetryAttempts:"),
        MAXIMUM_RETRY_ATTEMPTS.to_string()
    );
    assert_eq!(
        template_value(&text, anchor, "FunctionResponseTypes:"),
        "[ReportBatchItemFailures]"
    );
    let start = text.find(anchor).unwrap();
    let patterns: Vec<serde_json::Value> = text[start..]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- Pattern:"))
        .map(|p| serde_json::from_str(p.trim().trim_matches('\'')).expect("a JSON pattern"))
        .collect();
    assert_eq!(patterns, filter_patterns());
    assert_eq!(
        template_value(&text, "StreamSpecification:", "StreamViewType:"),
        "NEW_AND_OLD_IMAGES"
    );
}
