//! The OpenAPI 3.1 description. Each route carries its [`Doc`](crate::doc::Doc) (declared beside its
//! handler, in the vocabulary of [`crate::doc`]); [`document`] assembles them with the
//! schemas of the types they name (utoipa derives), so the description cannot drift
//! from what is served.

use std::collections::BTreeMap;

use domain::spreadsheet::WorkbookFormat;
use serde_json::{Map, Value, json};

use crate::doc::{Body, Links, collect};
use crate::route::Endpoint;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": schema_ref(item) },
            "next_cursor": { "type": ["string", "null"] }
        }
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string" },
            "code": { "type": "string" },
            "customer_count": { "type": "integer" },
            "errors": { "type": "array", "items": schema_ref("Violation") }
        }
    })
}

fn success(body: Body) -> Value {
    match body {
        Body::Json(t) => json!({
            "description": "Success",
            "content": {"application/json": {"schema": schema_ref(&(t.name)())}}
        }),
        Body::Page(name, _) => json!({
            "description": "Success",
            "content": {"application/json": {"schema": schema_ref(name)}}
        }),
        Body::JsonOrCsv(t) => json!({
            "description": "Success",
            "content": {
                "application/json": {"schema": schema_ref(&(t.name)())},
                "text/csv": {"schema": {"type": "string"}}
            }
        }),
        Body::Csv => json!({
            "description": "Core columns, then every field by name; imports back unchanged",
            "headers": {"Link": {
                "description": "`<...>; rel=\"next\"` when more customers follow",
                "schema": {"type": "string"}
            }},
            "content": spreadsheet_content(&[WorkbookFormat::Xlsx])
        }),
        Body::Document => json!({
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }),
        Body::None | Body::Wasm => json!({"description": "Done"}),
    }
}

/// `text/csv` and these workbook media types (bytes: OpenAPI 3.1 `contentMediaType`).
fn spreadsheet_content(workbooks: &[WorkbookFormat]) -> Value {
    let mut content = Map::new();
    content.insert("text/csv".into(), json!({"schema": {"type": "string"}}));
    for format in workbooks {
        let media = format.media_type();
        let schema = json!({"schema": {"type": "string", "contentMediaType": media}});
        content.insert(media.into(), schema);
    }
    Value::Object(content)
}

/// A response's `links`: one per operation, named after it.
fn links_object(links: &[Links]) -> Value {
    let mut out = Map::new();
    for (operations, parameters) in links {
        let parameters: Map<String, Value> = parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
            .collect();
        for operation in *operations {
            out.insert(
                (*operation).to_owned(),
                json!({"operationId": operation, "parameters": parameters}),
            );
        }
    }
    Value::Object(out)
}

fn request_body(method: &str, body: Body) -> Option<Value> {
    let media = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    Some(match body {
        Body::Wasm => json!({
            "required": true,
            "content": {"application/wasm": {"schema": {"type": "string", "contentMediaType": "application/wasm"}}}
        }),
        Body::Csv => json!({
            "required": true,
            "description": "CSV: UTF-8 (BOM optional), `,` or `;` separated, RFC 4180 \
                quoting, at most 6,000,000 bytes. A workbook (xlsx, xls, ods): its first \
                sheet, or `?sheet=`, at most 4,500,000 bytes. A header row of core \
                columns and field names; at most 10,000 rows",
            "content": spreadsheet_content(&WorkbookFormat::ALL)
        }),
        Body::Json(t) | Body::JsonOrCsv(t) => json!({
            "required": true,
            "content": {media: {"schema": schema_ref(&(t.name)())}}
        }),
        Body::Page(name, _) => json!({
            "required": true,
            "content": {media: {"schema": schema_ref(name)}}
        }),
        Body::None | Body::Document => return None,
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let doc = &endpoint.doc;
    let mut parameters: Vec<Value> = endpoint
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(doc.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    if doc.conditional {
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The ETag last read; 412 when the resource changed since",
            "schema": {"type": "string"}
        }));
    }
    let problem = json!({"application/problem+json": {"schema": schema_ref("Problem")}});
    let mut responses = Map::new();
    let mut answer = success(doc.response);
    if !doc.links.is_empty() {
        answer["links"] = links_object(doc.links);
    }
    if doc.or_created {
        responses.insert("201".into(), answer.clone());
    }
    responses.insert(doc.status.to_string(), answer);
    if doc.authorized {
        for (status, description) in [
            ("400", "Malformed request"),
            ("401", "No valid tenant token"),
            ("404", "Not found"),
            ("409", "Conflicts with the current state"),
            ("412", "If-Match does not match the current ETag"),
            ("413", "Body too large"),
            ("415", "Body is not JSON"),
            ("422", "Validation failed; every failing property is listed"),
            ("503", "Database unavailable; retry"),
        ] {
            responses.insert(
                status.into(),
                json!({"description": description, "content": problem}),
            );
        }
    }
    let mut operation = json!({
        "operationId": doc.id,
        "summary": doc.summary,
        "tags": [endpoint.function.name()],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = request_body(endpoint.method, doc.request) {
        operation["requestBody"] = body;
    }
    operation["security"] = if doc.authorized {
        json!([{"tenantJwt": []}])
    } else {
        json!([])
    };
    operation
}

/// The whole document for `endpoints`, served at `GET /openapi.json`.
pub fn document<'a>(endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Value {
    let mut paths = Map::new();
    let mut found = Vec::new();
    let mut pages = BTreeMap::new();
    collect::<domain::Violation>(&mut found);
    for endpoint in endpoints {
        let item = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}));
        item[endpoint.method.to_ascii_lowercase()] = operation(endpoint);
        for t in endpoint.doc.types() {
            (t.collect)(&mut found);
        }
        for body in [endpoint.doc.request, endpoint.doc.response] {
            if let Body::Page(name, t) = body {
                pages.insert(name, (t.name)());
            }
        }
    }
    let mut schemas: Map<String, Value> = found
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    for (name, item) in pages {
        schemas.insert(name.to_owned(), page_schema(&item));
    }
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Customer segmentation API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Segments, custom fields (clusters) and customers, per tenant. \
                The tenant comes from the JWT authorizer's claims."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tenantJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}

/// What is wrong with the links of `document`, one line each; empty when every link
/// names an operation of the document, gives each of its path parameters and only
/// parameters it has, and takes them from a path parameter of its own operation or from
/// a member of its response's schema.
pub fn link_errors(document: &Value) -> Vec<String> {
    let mut operations = BTreeMap::new();
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(id) = operation["operationId"].as_str() {
                operations.insert(id, operation);
            }
        }
    }
    let parameters = |operation: &Value, place: Option<&str>| -> Vec<String> {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| place.is_none_or(|place| p["in"] == place))
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    let mut errors = Vec::new();
    for (source, operation) in &operations {
        let responses = operation["responses"].as_object().into_iter().flatten();
        for (status, response) in responses {
            let links = response["links"].as_object().into_iter().flatten();
            for (name, link) in links {
                let at = format!("{source} {status} link {name}");
                let target = link["operationId"].as_str().unwrap_or_default();
                let Some(target_operation) = operations.get(target) else {
                    errors.push(format!("{at}: no operation `{target}`"));
                    continue;
                };
                let given = link["parameters"].as_object().cloned().unwrap_or_default();
                for needed in parameters(target_operation, Some("path")) {
                    if !given.contains_key(&needed) {
                        errors.push(format!("{at}: path parameter `{needed}` not given"));
                    }
                }
                let known = parameters(target_operation, None);
                for (parameter, expression) in &given {
                    if !known.contains(parameter) {
                        errors.push(format!("{at}: `{target}` has no parameter `{parameter}`"));
                    }
                    let expression = expression.as_str().unwrap_or_default();
                    if let Some(own) = expression.strip_prefix("$request.path.") {
                        if !parameters(operation, Some("path")).iter().any(|p| p == own) {
                            errors.push(format!("{at}: `{source}` has no path parameter `{own}`"));
                        }
                    } else if let Some(pointer) = expression.strip_prefix("$response.body#/") {
                        let member = pointer.split('/').next().unwrap_or_default();
                        let schema = &response["content"]["application/json"]["schema"];
                        if !has_member(document, schema, member) {
                            errors.push(format!("{at}: the response has no member `{member}`"));
                        }
                    } else {
                        errors.push(format!("{at}: unsupported expression `{expression}`"));
                    }
                }
            }
        }
    }
    errors
}

/// Whether `schema` (through `$ref` and `allOf`) declares the property `member`.
fn has_member(document: &Value, schema: &Value, member: &str) -> bool {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return has_member(document, &document["components"]["schemas"][name], member);
    }
    schema["properties"].get(member).is_some()
        || schema["allOf"]
            .as_array()
            .is_some_and(|all| all.iter().any(|s| has_member(document, s, member)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route;

    #[test]
    fn every_link_names_a_real_operation_and_its_parameters() {
        let document = document(route::all(crate::ROUTES).map(|r| &r.endpoint));
        assert_eq!(link_errors(&document), Vec::<String>::new());
        let links = document.to_string().matches("\"operationId\"").count();
        assert!(links > route::all(crate::ROUTES).count(), "no links at all");
    }

    #[test]
    fn a_link_to_nowhere_is_reported() {
        let mut document = document(route::all(crate::ROUTES).map(|r| &r.endpoint));
        document["paths"]["/segments"]["post"]["responses"]["201"]["links"] = json!({
            "Nowhere": {"operationId": "Nowhere", "parameters": {}},
            "GetSegment": {"operationId": "GetSegment", "parameters": {"id": "$response.body#/nope"}},
            "GetField": {"operationId": "GetField", "parameters": {"id": "$request.path.id"}}
        });
        let errors = link_errors(&document);
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }
}
