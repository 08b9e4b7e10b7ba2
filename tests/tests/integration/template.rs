//! `template.yaml` and the code cannot drift apart: every route the code serves is
//! declared on the function that serves it, and nothing else is; every function's
//! binary exists in the workspace.

use std::collections::BTreeSet;

use api::Function;

/// (function binary, method, path) for every HttpApi event of the template.
fn template_routes() -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml"))
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
    let api = rules_api::endpoints().map(|r| (r.function.name(), r.method, r.path));
    let console = console::ROUTES.map(|(method, path)| ("console", method, path));
    let served: BTreeSet<(String, String, String)> = api
        .chain(console)
        .map(|(function, method, path)| (function.to_owned(), method.to_owned(), path.to_owned()))
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
    let root = tests::repo_root();
    let names = Function::ALL.map(Function::name);
    for name in names.into_iter().chain(["console"]) {
        let dir = root.join("functions").join(name);
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

/// The stream mapping of function `id`: its block from `Type: DynamoDB` on.
fn stream_mapping(text: &str, id: &str) -> String {
    let (_, _, block) = resources(text)
        .into_iter()
        .find(|(i, kind, _)| i == id && kind == "AWS::Serverless::Function")
        .unwrap_or_else(|| panic!("no function {id}"));
    let start = block
        .find("Type: DynamoDB")
        .unwrap_or_else(|| panic!("{id} has no stream mapping"));
    block[start..].to_owned()
}

/// Function `id`'s stream mapping has this batch size, these retries and filters, and
/// reports partial batch failures.
fn check_mapping(
    text: &str,
    id: &str,
    batch_size: usize,
    retries: u32,
    filters: Vec<serde_json::Value>,
) {
    let mapping = stream_mapping(text, id);
    let value = |key: &str| template_value(&mapping, "Type: DynamoDB", key);
    assert_eq!(value("BatchSize:"), batch_size.to_string(), "{id}");
    assert_eq!(value("MaximumRetryAttempts:"), retries.to_string(), "{id}");
    assert_eq!(
        value("FunctionResponseTypes:"),
        "[ReportBatchItemFailures]",
        "{id}"
    );
    assert_eq!(value("BisectBatchOnFunctionError:"), "true", "{id}");
    let patterns: Vec<serde_json::Value> = mapping
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- Pattern:"))
        .map(|p| serde_json::from_str(p.trim().trim_matches('\'')).expect("a JSON pattern"))
        .collect();
    assert_eq!(patterns, filters, "{id}");
}

#[test]
fn the_stream_mapping_matches_what_the_assign_code_expects() {
    use evaluation::stream::{BATCH_SIZE, MAXIMUM_RETRY_ATTEMPTS, filter_patterns};
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    check_mapping(
        &text,
        "AssignFunction",
        BATCH_SIZE,
        MAXIMUM_RETRY_ATTEMPTS,
        filter_patterns(),
    );
    assert_eq!(
        template_value(&text, "StreamSpecification:", "StreamViewType:"),
        "NEW_AND_OLD_IMAGES"
    );
}

/// The events function: its mapping as `events::stream` expects, its bus named in its
/// environment, and its role allowed to put events on that bus only.
#[test]
fn the_events_mapping_matches_the_events_code_and_its_role_puts_on_its_bus_only() {
    use events::stream::{BATCH_SIZE, MAXIMUM_RETRY_ATTEMPTS, filter_patterns};
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    check_mapping(
        &text,
        "EventsFunction",
        BATCH_SIZE,
        MAXIMUM_RETRY_ATTEMPTS,
        filter_patterns(),
    );
    let all = resources(&text);
    let block = |id: &str, kind: &str| {
        all.iter()
            .find(|(i, k, _)| i == id && k == kind)
            .map(|(_, _, block)| block.clone())
            .unwrap_or_else(|| panic!("no {kind} named {id}"))
    };
    block("EventBus", "AWS::Events::EventBus");
    let function = block("EventsFunction", "AWS::Serverless::Function");
    assert_eq!(
        block_value(&function, "EVENT_BUS_NAME:"),
        Some("!Ref EventBus")
    );
    assert!(function.contains("Destination: !GetAtt EventsFailures.Arn"));
    let role = block("EventsRole", "AWS::IAM::Role");
    let puts: Vec<&str> = role.lines().map(str::trim).collect();
    let at = puts
        .iter()
        .position(|line| *line == "Action: events:PutEvents")
        .expect("the role may put events");
    assert_eq!(puts[at + 1], "Resource: !GetAtt EventBus.Arn");
    assert!(
        !role.contains("Resource: !GetAtt Table.Arn"),
        "it reads no table item"
    );
    let outputs = &text[text.find("\nOutputs:").expect("outputs")..];
    assert!(outputs.contains("Value: !Ref EventBus"));
}

/// DynamoDB Streams throttles more than two simultaneous readers of a shard: assign and
/// events are both (docs/events.md), so a third consumer must share one of them.
#[test]
fn the_table_stream_has_at_most_two_readers() {
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    let readers: Vec<String> = functions_of_template()
        .into_iter()
        .filter(|(_, block)| block.contains("Stream: !GetAtt Table.StreamArn"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(readers, ["AssignFunction", "EventsFunction"]);
    assert_eq!(text.matches("Type: DynamoDB").count(), 2);
}

/// The resources of template.yaml: (logical id, `Type`, the text of its block).
fn resources(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut in_resources = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_resources = trimmed == "Resources:";
            continue;
        }
        if !in_resources {
            continue;
        }
        if indent == 2 {
            let id = trimmed.trim_end_matches(':').to_owned();
            out.push((id, String::new(), String::new()));
            continue;
        }
        let last = out
            .last_mut()
            .expect("a resource line belongs to a resource");
        if indent == 4
            && let Some(kind) = trimmed.strip_prefix("Type:")
        {
            last.1 = kind.trim().to_owned();
        }
        last.2.push_str(line);
        last.2.push('\n');
    }
    out
}

/// The value of the first `key: value` line of `block`, unquoted.
fn block_value<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block
        .lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .map(|v| v.trim().trim_matches('"'))
}

fn functions_of_template() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    resources(&text)
        .into_iter()
        .filter(|(_, kind, _)| kind == "AWS::Serverless::Function")
        .map(|(id, _, block)| (id, block))
        .collect()
}

/// `sam build` runs `cargo lambda build --bin <Binary>` in the function's CodeUri: that
/// directory must be the crate that has the binary (its own crate, so cargo resolves its
/// features alone and the CRUD functions do not get wasmtime).
#[test]
fn every_function_builds_its_binary_from_its_own_crate() {
    let root = tests::repo_root();
    let functions = functions_of_template();
    assert!(functions.len() >= 5, "template.yaml has too few functions");
    for (id, block) in functions {
        assert_eq!(
            block_value(&block, "BuildMethod:"),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = block_value(&block, "Binary:").unwrap_or_else(|| panic!("{id}: no Binary"));
        let code_uri =
            block_value(&block, "CodeUri:").unwrap_or_else(|| panic!("{id}: no CodeUri"));
        let manifest = std::fs::read_to_string(root.join(code_uri).join("Cargo.toml"))
            .unwrap_or_else(|_| panic!("{id}: CodeUri {code_uri} holds no Cargo.toml"));
        let package_binary = manifest.contains(&format!("\nname = \"{binary}\""))
            && manifest.find("[package]") < manifest.find(&format!("name = \"{binary}\""))
            && root.join(code_uri).join("src/main.rs").exists();
        let explicit_bin = manifest
            .split("[[bin]]")
            .skip(1)
            .any(|bin| block_value(bin, "name =") == Some(binary));
        assert!(
            package_binary || explicit_bin,
            "{id}: the crate in {code_uri} has no binary named {binary}"
        );
    }
}

/// Each function logs as JSON to its own log group, `/aws/lambda/<function name>`, with a
/// retention; its role may write there and nowhere else.
#[test]
fn every_function_has_a_log_group_with_retention() {
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    let all = resources(&text);
    let find = |id: &str, kind: &str| {
        all.iter()
            .find(|(i, k, _)| i == id && k == kind)
            .map(|(_, _, block)| block.clone())
            .unwrap_or_else(|| panic!("no {kind} named {id}"))
    };
    for (id, block) in functions_of_template() {
        let name = block_value(&block, "FunctionName:")
            .and_then(|v| v.strip_prefix("!Sub \""))
            .unwrap_or_else(|| panic!("{id}: no FunctionName: !Sub \"...\""))
            .trim_end_matches('"');
        let group = block_value(&block, "LogGroup:")
            .and_then(|v| v.strip_prefix("!Ref "))
            .unwrap_or_else(|| panic!("{id}: no LoggingConfig.LogGroup: !Ref"));
        let group_block = find(group, "AWS::Logs::LogGroup");
        assert_eq!(
            block_value(&group_block, "LogGroupName:"),
            Some(format!("!Sub \"/aws/lambda/{name}").as_str()),
            "{id}: its log group is not /aws/lambda/<its name>"
        );
        assert_eq!(
            block_value(&group_block, "RetentionInDays:"),
            Some("!Ref LogRetentionDays"),
            "{id}"
        );
        let role = block_value(&block, "Role:")
            .and_then(|v| v.strip_prefix("!GetAtt "))
            .and_then(|v| v.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{id}: no Role: !GetAtt <role>.Arn"));
        let role_block = find(role, "AWS::IAM::Role");
        assert!(
            role_block.contains(&format!("Resource: !GetAtt {group}.Arn")),
            "{id}: its role does not name its log group"
        );
    }
    let globals = &text[text.find("Globals:").unwrap()..text.find("Resources:").unwrap()];
    assert_eq!(block_value(globals, "LogFormat:"), Some("JSON"));
}

/// No statement of any role grants every action or every resource.
#[test]
fn roles_grant_no_wildcard_actions_or_resources() {
    let text = std::fs::read_to_string(tests::repo_root().join("template.yaml")).unwrap();
    let roles: Vec<_> = resources(&text)
        .into_iter()
        .filter(|(_, kind, _)| *kind == "AWS::IAM::Role")
        .collect();
    // One per function: a parser that found none would check nothing.
    assert_eq!(
        roles.len(),
        functions_of_template().len(),
        "roles found: {roles:?}"
    );
    for (id, _, block) in roles {
        for line in block.lines().map(str::trim) {
            let action = line
                .strip_prefix("Action:")
                .or_else(|| line.strip_prefix("- "));
            if let Some(action) = action {
                assert!(
                    !action.contains('*'),
                    "{id} grants a wildcard action: {line}"
                );
            }
            if let Some(resource) = line.strip_prefix("Resource:") {
                let resource = resource.trim().trim_matches(|c| c == '"' || c == '\'');
                assert!(
                    resource != "*" && !resource.ends_with(":*"),
                    "{id} grants every resource: {line}"
                );
            }
        }
    }
}
