//! One contract for the resources a client creates, reads, lists, patches and deletes
//! (`/segments`, `/fields`, `/customers`): what each of them promises over HTTP, written
//! once as the functions below and run against each resource by the modules at the end
//! (`contract::segments::`, `contract::fields::`, `contract::customers::`). A
//! [`Resource`] says what differs: the paths, the key, valid and conflicting bodies,
//! patches, the listing order. What only one resource does (a segment in use, a field's
//! type change, a customer's PUT, filters and indexes) is tested in its own module.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{Map, Value, json};
use tests::{Client, Method, Stack, unique_tenant};

/// How a resource's listing orders its items, and whether it pages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// By key (for generated ids, creation order), paged with `limit` and `cursor`.
    ByKey,
    /// Shard after shard, by key within a shard ([`in_listing_order`]), paged.
    Shards,
    /// By key, all at once: `next_cursor` is always null, no paging parameters.
    Unpaged,
}

/// What the contract needs to know of one resource.
struct Resource {
    /// A short name, for tenant ids.
    name: &'static str,
    /// The collection's path: `POST` creates, `GET` lists.
    collection: &'static str,
    /// The member that names an item in its path (`{collection}/{key}`).
    key: &'static str,
    /// Whether a create without a key gets a generated one (a UUIDv7, so time-ordered).
    generated_key: bool,
    /// The `n`th of a set of distinct valid create bodies, none needing other resources.
    create: fn(usize) -> Value,
    /// Creates that must conflict (409) with the item `create(0)` made.
    conflicts: fn(&Value) -> Vec<Value>,
    /// The `n`th of a set of valid patches of any item, each setting the same members to
    /// new values.
    patch: fn(usize) -> Value,
    /// An optional member and a valid value for it: PATCH sets it, then removes it with
    /// `null`.
    removable: (&'static str, &'static str),
    /// Members that PATCH cannot remove (422 at their pointer).
    required: &'static [&'static str],
    /// A patch with invalid values, and the pointers of all its errors.
    invalid_patch: fn() -> (Value, &'static [&'static str]),
    /// A string member that makes bodies of any size: invalid at 200 KiB.
    padded: &'static str,
    /// A key that names no item.
    unknown: &'static str,
    /// The methods of an item (the `Allow` of a 405 there).
    item_methods: &'static [&'static str],
    /// Whether `PUT {collection}/{key}` creates or replaces (its bodies are checked like
    /// POST's and PATCH's).
    put: bool,
    listing: Listing,
    /// Queries the listing refuses (400) besides [`BAD_QUERIES`].
    bad_queries: &'static [&'static str],
    /// A create that must succeed once the given item is deleted: its key or unique
    /// members are free again.
    recreate: fn(&Value) -> Value,
}

/// Queries every listing refuses with 400: out-of-range or unparsable limits, unknown
/// parameters, cursors that are not the listing's.
const BAD_QUERIES: &[&str] = &[
    "limit=0",
    "limit=101",
    "limit=-1",
    "limit=abc",
    "limit=x",
    "limit=",
    "colour=red",
    "cursor=garbage",
    "cursor=eyJ0IjoieCJ9.AAAA",
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

const SEGMENTS: Resource = Resource {
    name: "segments",
    collection: "/segments",
    key: "id",
    generated_key: true,
    create: |n| json!({ "name": format!("Seg{n}"), "description": format!("Segment {n}") }),
    conflicts: |_| {
        ["Seg0", "seg0", "SEG0"]
            .into_iter()
            .map(|name| json!({ "name": name }))
            .collect()
    },
    patch: |n| {
        let status = if n % 2 == 0 { "inactive" } else { "active" };
        json!({ "description": format!("patched {n}"), "status": status })
    },
    removable: ("description", "d"),
    required: &["name"],
    invalid_patch: || {
        (
            json!({ "status": "gone", "name": "n".repeat(65) }),
            &["/status", "/name"],
        )
    },
    padded: "description",
    unknown: "0190000000007000800000000000dead",
    item_methods: &["GET", "PATCH", "DELETE"],
    put: false,
    listing: Listing::ByKey,
    bad_queries: &["status=deleted", "status=ACTIVE"],
    // Case-insensitively: the name is free again.
    recreate: |deleted| json!({ "name": deleted["name"].as_str().unwrap().to_lowercase() }),
};

const FIELDS: Resource = Resource {
    name: "fields",
    collection: "/fields",
    key: "name",
    generated_key: false,
    create: |n| {
        let name = if n == 0 {
            "vat".to_string()
        } else {
            format!("f{n}")
        };
        json!({ "name": name, "type": "string" })
    },
    conflicts: |_| {
        vec![
            json!({ "name": "vat", "type": "integer" }),
            json!({ "name": "vat", "type": "string" }),
        ]
    },
    patch: |n| json!({ "label": format!("Label {n}") }),
    removable: ("default", "x"),
    required: &["type"],
    invalid_patch: || {
        (
            json!({ "required": "yes", "label": "l".repeat(129) }),
            &["/required", "/label"],
        )
    },
    padded: "label",
    unknown: "nope",
    item_methods: &["GET", "PATCH", "DELETE"],
    put: false,
    listing: Listing::Unpaged,
    bad_queries: &[],
    // The name can be defined again, from version 1, with another type.
    recreate: |deleted| json!({ "name": deleted["name"], "type": "integer" }),
};

const CUSTOMERS: Resource = Resource {
    name: "customers",
    collection: "/customers",
    key: "id",
    generated_key: true,
    create: |n| json!({ "email": format!("c{n}@example.com") }),
    conflicts: |first| {
        let mut bodies = vec![json!({ "id": first["id"], "email": "other@example.com" })];
        for email in ["c0@example.com", "C0@Example.com", "C0@EXAMPLE.COM"] {
            bodies.push(json!({ "email": email }));
        }
        bodies
    },
    patch: |n| json!({ "first_name": format!("Name {n}") }),
    removable: ("last_name", "Smith"),
    required: &["email"],
    invalid_patch: || {
        (
            json!({ "email": "bad", "phone": "call me" }),
            &["/email", "/phone"],
        )
    },
    padded: "first_name",
    unknown: "nope",
    item_methods: &["GET", "PUT", "PATCH", "DELETE"],
    put: true,
    listing: Listing::Shards,
    bad_queries: &[],
    // The id is free for a new create, and the email (in another case) too.
    recreate: |deleted| json!({ "id": deleted["id"], "email": deleted["email"].as_str().unwrap().to_uppercase() }),
};

impl Resource {
    /// A client of a fresh tenant, on the shared stack.
    async fn client(&self, test: &str) -> Client {
        let stack = Stack::get().await;
        stack.client(&unique_tenant(&format!("{}-{test}", self.name)))
    }

    fn item(&self, key: &str) -> String {
        format!("{}/{key}", self.collection)
    }

    #[track_caller]
    fn key_of(&self, entity: &Value) -> String {
        entity[self.key]
            .as_str()
            .unwrap_or_else(|| panic!("no {}: {entity}", self.key))
            .to_string()
    }

    fn paged(&self) -> bool {
        self.listing != Listing::Unpaged
    }

    /// Creates `create(n)`; returns the entity.
    async fn create_item(&self, client: &Client, n: usize) -> Value {
        client
            .post(self.collection, &(self.create)(n))
            .await
            .expect(201)
            .json
    }

    /// `items` in the order the listing returns them.
    fn in_order(&self, items: &[Value]) -> Vec<Value> {
        let mut items = items.to_vec();
        match self.listing {
            Listing::ByKey | Listing::Unpaged => items.sort_by_key(|item| self.key_of(item)),
            Listing::Shards => items.sort_by_key(|item| {
                let key = self.key_of(item);
                (store::keys::shard_of(&key), key)
            }),
        }
        items
    }

    /// A valid create body with the padded member `kib` KiB long.
    fn padded_body(&self, kib: usize) -> Value {
        let mut body = (self.create)(1);
        body[self.padded] = json!("x".repeat(kib * 1024));
        body
    }
}

/// `entity` with the JSON merge patch `patch` applied (RFC 7396).
fn merged(entity: &Value, patch: &Value) -> Value {
    match (entity, patch) {
        (Value::Object(entity), Value::Object(patch)) => {
            let mut out: Map<String, Value> = entity.clone();
            for (name, value) in patch {
                if value.is_null() {
                    out.remove(name);
                } else {
                    let current = out.get(name).cloned().unwrap_or(Value::Null);
                    out.insert(name.clone(), merged(&current, value));
                }
            }
            Value::Object(out)
        }
        (_, patch) => patch.clone(),
    }
}

/// Asserts that `reply` is `entity` with `patch` applied: every member, none more, none
/// fewer, but for the version and the update time.
#[track_caller]
fn assert_patched(reply: &Value, entity: &Value, patch: &Value) {
    let expected = merged(entity, patch);
    let members = |value: &Value| -> BTreeSet<String> {
        value
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {value}"))
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(members(reply), members(&expected), "{reply}");
    for (member, value) in expected.as_object().unwrap() {
        if member != "version" && member != "updated_at" {
            assert_eq!(reply[member], *value, "{member}: {reply}");
        }
    }
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("an HTTP method")
}

// ---------------------------------------------------------------------------------
// The contract

/// POST answers 201 with `Location`, `ETag: "1"` and the entity as sent, with its key
/// (a generated one where the resource generates them) and equal creation and update
/// times; GET at the location answers the same entity.
async fn create_answers_201_with_location_etag_and_the_entity(r: &Resource) {
    let client = r.client("create").await;
    let body = (r.create)(0);
    let reply = client.post(r.collection, &body).await;
    assert_entity(&reply, 201, 1);
    assert_eq!(etag(&reply), "\"1\"");
    let key = r.key_of(&reply.json);
    if r.generated_key {
        assert!(is_generated_id(&key), "{key}");
    }
    let location = r.item(&key);
    assert_eq!(reply.header("location"), Some(location.as_str()));
    for (member, value) in body.as_object().unwrap() {
        assert_eq!(reply.json[member], *value, "{member}: {}", reply.text);
    }
    let created = &reply.json;
    assert!(is_timestamp(&created["created_at"]), "{}", reply.text);
    assert_eq!(created["created_at"], created["updated_at"]);

    let read = client.get(&location).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, reply.json);
}

/// A create that collides with an item's key or unique members is 409 and changes
/// nothing.
async fn conflicting_creates_are_409_and_change_nothing(r: &Resource) {
    let client = r.client("dup").await;
    let first = r.create_item(&client, 0).await;
    for body in (r.conflicts)(&first) {
        let reply = client.post(r.collection, &body).await;
        assert_problem(&reply, 409, "conflict");
    }
    let read = client.get(&r.item(&r.key_of(&first))).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, first);
    let (items, next) = page(&client, r.collection).await;
    assert_eq!(items, vec![first]);
    assert_eq!(next, None);
}

/// An unknown member is 422 at its pointer, and a JSON body that is not an object is 422;
/// nothing is created.
async fn unknown_members_and_non_objects_are_422_and_create_nothing(r: &Resource) {
    let client = r.client("invalid").await;
    let mut body = (r.create)(0);
    body["colour"] = json!("red");
    let reply = client.post(r.collection, &body).await;
    assert_eq!(pointers(&reply), set(&["/colour"]));
    assert_eq!(error_detail(&reply, "/colour"), "is not a known property");
    assert_eq!(reply.json["instance"], r.collection);

    let reply = client.post(r.collection, &json!([(r.create)(0)])).await;
    assert_problem(&reply, 422, "validation_failed");

    let (items, _) = page(&client, r.collection).await;
    assert!(items.is_empty(), "{items:?}");
}

/// Every body-taking route (POST, PATCH, and PUT where the resource has it, on an
/// existing and on a new key) refuses malformed, empty and blank JSON and a missing
/// media type (400), another media type (415) and bodies over 256 KiB (413); just under
/// the limit the body is read and judged on its content. Nothing changes.
async fn malformed_empty_oversized_and_non_json_bodies_are_refused(r: &Resource) {
    let client = r.client("bodies").await;
    let item = r.create_item(&client, 0).await;
    let path = r.item(&r.key_of(&item));
    let fresh = r.item("fresh");
    let mut targets = vec![
        (Method::POST, r.collection.to_string()),
        (Method::PATCH, path.clone()),
    ];
    if r.put {
        targets.push((Method::PUT, path.clone()));
        targets.push((Method::PUT, fresh.clone()));
    }
    let truncated = format!("{{\"{}\": ", r.padded);
    for (method, target) in &targets {
        for body in ["{", truncated.as_str()] {
            let reply = send_raw(
                &client,
                method.clone(),
                target,
                Some("application/json"),
                body,
            )
            .await;
            assert_problem(&reply, 400, "bad_request");
            assert_eq!(reply.json["instance"], target.as_str());
        }
        for body in ["", "  "] {
            let reply = send_raw(
                &client,
                method.clone(),
                target,
                Some("application/json"),
                body,
            )
            .await;
            assert_problem(&reply, 400, "bad_request");
        }
        let reply = send_raw(&client, method.clone(), target, None, "").await;
        assert_problem(&reply, 400, "bad_request");
        let reply = send_raw(
            &client,
            method.clone(),
            target,
            Some("text/plain"),
            (r.create)(1).to_string(),
        )
        .await;
        assert_problem(&reply, 415, "unsupported_media_type");
        for kib in [260, 300] {
            let reply = send_raw(
                &client,
                method.clone(),
                target,
                Some("application/json"),
                r.padded_body(kib).to_string(),
            )
            .await;
            assert_problem(&reply, 413, "payload_too_large");
        }
    }

    // Just under the limit the body is read, and judged on its content.
    let reply = client.post(r.collection, &r.padded_body(200)).await;
    assert_eq!(pointers(&reply), set(&[&format!("/{}", r.padded)]));

    // Nothing changed.
    let (items, _) = page(&client, r.collection).await;
    assert_eq!(items, vec![item.clone()]);
    let read = client.get(&path).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, item);
    if r.put {
        assert_problem(&client.get(&fresh).await, 404, "not_found");
    }
}

/// An unknown key is 404 on GET, PATCH and DELETE, and so are unknown routes; a method
/// the path does not have is 405 with `Allow`. Nothing is created or changed.
async fn unknown_keys_and_routes_are_404_and_wrong_methods_405(r: &Resource) {
    let client = r.client("404").await;
    let item = r.create_item(&client, 0).await;
    let path = r.item(&r.key_of(&item));

    let unknown = r.item(r.unknown);
    for reply in [
        client.get(&unknown).await,
        client.patch(&unknown, &(r.patch)(0)).await,
        client.delete(&unknown).await,
    ] {
        assert_problem(&reply, 404, "not_found");
        assert_eq!(reply.json["instance"], unknown.as_str());
    }
    for route in [
        "/nope".to_string(),
        format!("{}/a/b", r.collection),
        r.collection.trim_end_matches('s').to_string(),
        format!("{path}/extra"),
    ] {
        assert_problem(&client.get(&route).await, 404, "not_found");
    }

    let send = |name: &str, target: &str| {
        let request = client.request(method(name), target);
        let request = if name == "DELETE" || name == "GET" {
            request
        } else {
            request.json(&(r.create)(1))
        };
        request.send()
    };
    for target in [&path, &unknown] {
        for name in METHODS.iter().filter(|m| !r.item_methods.contains(m)) {
            let reply = send(name, target).await;
            assert_problem(&reply, 405, "method_not_allowed");
            assert_eq!(allowed(&reply), set(r.item_methods), "{name} {target}");
        }
    }
    for name in ["PUT", "PATCH", "DELETE"] {
        let reply = send(name, r.collection).await;
        assert_problem(&reply, 405, "method_not_allowed");
        assert_eq!(allowed(&reply), set(&["GET", "POST"]), "{name}");
    }

    // Nothing was created or changed by any of these.
    let read = client.get(&path).await;
    assert_entity(&read, 200, 1);
    assert_eq!(read.json, item);
    let (items, _) = page(&client, r.collection).await;
    assert_eq!(items, vec![item]);
}

/// The listing holds every item once, as GET answers it, in the listing's order; paged
/// listings walk it page by page with cursors, whatever the page size.
async fn list_holds_every_item_once_in_order_and_pages_walk_it(r: &Resource) {
    let client = r.client("list").await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(r.create_item(&client, n).await);
    }
    if r.generated_key {
        let keys: Vec<String> = created.iter().map(|item| r.key_of(item)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "generated keys are time-ordered");
    }
    let expected = r.in_order(&created);

    let (items, next) = page(&client, r.collection).await;
    assert_eq!(items, expected);
    assert_eq!(next, None);
    if !r.paged() {
        return;
    }

    // Pages of 2: 2 + 2 + 1.
    let paged = with_param(r.collection, "limit", "2");
    let (first, cursor) = page(&client, &paged).await;
    assert_eq!(first, expected[..2]);
    let cursor = cursor.expect("a cursor after a full page");
    let (second, cursor) = page(&client, &with_param(&paged, "cursor", &cursor)).await;
    assert_eq!(second, expected[2..4]);
    let cursor = cursor.expect("a cursor after a full page");
    let (third, cursor) = page(&client, &with_param(&paged, "cursor", &cursor)).await;
    assert_eq!(third, expected[4..]);
    assert_eq!(cursor, None);

    for limit in [1, 3, 5, 100] {
        let all = list_all(&client, r.collection, limit).await;
        assert_eq!(all, expected, "limit {limit}");
    }
}

/// Without `limit`, a page holds 50 items.
async fn the_default_page_holds_50(r: &Resource) {
    let client = r.client("default-page").await;
    let mut created = Vec::new();
    for n in 0..51 {
        created.push(r.create_item(&client, n).await);
    }
    let expected = r.in_order(&created);
    let (first, cursor) = page(&client, r.collection).await;
    assert_eq!(first, expected[..50]);
    let cursor = cursor.expect("a cursor after 50 of 51");
    let (rest, cursor) = page(&client, &with_param(r.collection, "cursor", &cursor)).await;
    assert_eq!(rest, expected[50..]);
    assert_eq!(cursor, None);
}

/// Bad limits, unknown parameters and foreign cursors are 400; good limits are obeyed.
async fn bad_list_queries_are_400(r: &Resource) {
    let client = r.client("query").await;
    r.create_item(&client, 0).await;
    r.create_item(&client, 1).await;

    for query in BAD_QUERIES.iter().chain(r.bad_queries) {
        let reply = client.get(&format!("{}?{query}", r.collection)).await;
        assert_problem(&reply, 400, "bad_request");
    }
    if r.paged() {
        let (items, _) = page(&client, &with_param(r.collection, "limit", "100")).await;
        assert_eq!(items.len(), 2);
        let (items, _) = page(&client, &with_param(r.collection, "limit", "1")).await;
        assert_eq!(items.len(), 1);
    } else {
        let (items, _) = page(&client, r.collection).await;
        assert_eq!(items.len(), 2);
    }
}

/// PATCH is a JSON merge patch applied to the entity as the client sees it: what it
/// names changes, the rest (key and creation time included) stays, the update time
/// moves on; `null` removes a member, also as `application/merge-patch+json`; echoing
/// read-only members and the key is fine. A result that is not valid (a changed key, an
/// unknown member, a removed required member, invalid values) is 422 listing every
/// failing member, and changes nothing.
async fn patch_is_a_merge_patch_and_validates_the_result(r: &Resource) {
    let client = r.client("patch").await;
    let created = r.create_item(&client, 0).await;
    let key = r.key_of(&created);
    let path = r.item(&key);

    let patch = (r.patch)(0);
    let reply = client.patch(&path, &patch).await;
    assert_entity(&reply, 200, 2);
    assert_patched(&reply.json, &created, &patch);
    assert!(
        instant(&reply.json["updated_at"]) > instant(&created["updated_at"]),
        "{}",
        reply.text
    );
    assert_eq!(client.get(&path).await.expect(200).json, reply.json);

    // null removes a member, as application/merge-patch+json.
    let (member, value) = r.removable;
    let before = reply.json;
    let set_it = json!({ member: value });
    let reply = client.patch(&path, &set_it).await;
    assert_entity(&reply, 200, 3);
    assert_patched(&reply.json, &before, &set_it);
    let before = reply.json;
    let remove_it = json!({ member: null });
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &remove_it,
        &[("content-type", "application/merge-patch+json")],
    )
    .await;
    assert_entity(&reply, 200, 4);
    assert!(reply.json.get(member).is_none(), "{}", reply.text);
    assert_patched(&reply.json, &before, &remove_it);

    // Echoing the entity as read, read-only members included, is fine; so is the key.
    let read = client.get(&path).await.expect(200).json;
    let patch = (r.patch)(1);
    let reply = client.patch(&path, &merged(&read, &patch)).await;
    assert_entity(&reply, 200, 5);
    assert_patched(&reply.json, &read, &patch);
    let mut patch = (r.patch)(2);
    patch[r.key] = json!(key);
    let before = reply.json;
    let reply = client.patch(&path, &patch).await;
    assert_entity(&reply, 200, 6);
    assert_patched(&reply.json, &before, &patch);

    // Invalid results: 422 with every failing member, and nothing changes.
    let before = client.get(&path).await.expect(200).json;
    let reply = client.patch(&path, &json!({ r.key: "another" })).await;
    assert_eq!(pointers(&reply), set(&[&format!("/{}", r.key)]));
    assert_problem(&client.get(&r.item("another")).await, 404, "not_found");
    let reply = client.patch(&path, &json!({ "colour": "red" })).await;
    assert_eq!(pointers(&reply), set(&["/colour"]));
    assert_eq!(error_detail(&reply, "/colour"), "is not a known property");
    for member in r.required {
        let reply = client.patch(&path, &json!({ *member: null })).await;
        assert_eq!(pointers(&reply), set(&[&format!("/{member}")]));
    }
    let (invalid, failing) = (r.invalid_patch)();
    let reply = client.patch(&path, &invalid).await;
    assert_eq!(pointers(&reply), set(failing));

    let after = client.get(&path).await;
    assert_entity(&after, 200, 6);
    assert_eq!(after.json, before);
}

/// `If-Match` on PATCH and DELETE: the current tag, `*` or a list holding the current
/// tag match; a stale (or future) tag is 412 and changes nothing. After DELETE (204,
/// no body) the item is 404 to GET, PATCH and DELETE, and its key and unique members
/// are free again.
async fn if_match_guards_patch_and_delete(r: &Resource) {
    let client = r.client("ifmatch").await;
    let created = client.post(r.collection, &(r.create)(0)).await;
    assert_entity(&created, 201, 1);
    assert_eq!(etag(&created), "\"1\"");
    let key = r.key_of(&created.json);
    let path = r.item(&key);

    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &(r.patch)(0),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_entity(&reply, 200, 2);
    let current = reply.json;

    // The same precondition again is stale: 412, nothing changes.
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &(r.patch)(1),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&reply, 412, "precondition_failed");
    let read = client.get(&path).await;
    assert_entity(&read, 200, 2);
    assert_eq!(read.json, current);

    // `*` and a list containing the current tag match.
    let patch = (r.patch)(2);
    let reply = send_json(&client, Method::PATCH, &path, &patch, &[("if-match", "*")]).await;
    assert_entity(&reply, 200, 3);
    assert_patched(&reply.json, &current, &patch);
    let patch = (r.patch)(3);
    let reply = send_json(
        &client,
        Method::PATCH,
        &path,
        &patch,
        &[("if-match", "\"1\", \"3\"")],
    )
    .await;
    assert_entity(&reply, 200, 4);
    let current = reply.json;

    // DELETE with a stale or a future tag: 412, and the item stays.
    for tag in ["\"3\"", "\"5\""] {
        let reply = delete_with(&client, &path, &[("if-match", tag)]).await;
        assert_problem(&reply, 412, "precondition_failed");
        let read = client.get(&path).await;
        assert_entity(&read, 200, 4);
        assert_eq!(read.json, current);
    }

    let reply = delete_with(&client, &path, &[("if-match", "\"4\"")]).await;
    assert_eq!(reply.status, 204, "{reply:#?}");
    assert!(reply.text.is_empty(), "{reply:#?}");
    assert_problem(&client.get(&path).await, 404, "not_found");
    assert_problem(&client.delete(&path).await, 404, "not_found");
    assert_problem(&client.patch(&path, &(r.patch)(4)).await, 404, "not_found");
    let (items, _) = page(&client, r.collection).await;
    assert!(items.is_empty(), "{items:?}");

    // Its key and unique members are free again.
    let body = (r.recreate)(&current);
    let reply = client.post(r.collection, &body).await;
    assert_entity(&reply, 201, 1);
    if body.get(r.key).is_some() {
        assert_eq!(r.key_of(&reply.json), key);
    }
}

/// Two PATCHes with the same `If-Match` at once: exactly one wins (200), the other is
/// 412, and the stored entity is the winner's.
async fn two_writers_with_the_same_if_match_one_wins_nothing_is_lost(r: &Resource) {
    let client = r.client("race").await;
    let created = r.create_item(&client, 0).await;
    let path = r.item(&r.key_of(&created));

    for round in 0..5u64 {
        let version = round + 1;
        let tag = format!("\"{version}\"");
        let headers = [("if-match", tag.as_str())];
        let one = (r.patch)(2 * round as usize);
        let two = (r.patch)(2 * round as usize + 1);
        let first = send_json(&client, Method::PATCH, &path, &one, &headers);
        let second = send_json(&client, Method::PATCH, &path, &two, &headers);
        let (first, second) = tokio::join!(first, second);
        let statuses: BTreeSet<u16> = [first.status, second.status].into();
        assert_eq!(
            statuses,
            BTreeSet::from([200, 412]),
            "round {round}: {first:#?} {second:#?}"
        );
        let (winner, loser) = if first.status == 200 {
            (first, second)
        } else {
            (second, first)
        };
        assert_entity(&winner, 200, version + 1);
        assert_problem(&loser, 412, "precondition_failed");
        let read = client.get(&path).await;
        assert_entity(&read, 200, version + 1);
        for member in one.as_object().unwrap().keys() {
            assert_eq!(read.json[member], winner.json[member], "round {round}");
        }
    }
}

// ---------------------------------------------------------------------------------
// The contract run against each resource

/// One `#[tokio::test]` per named contract function, run against `$resource`.
macro_rules! run_against {
    ($resource:expr => $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                super::$test(&$resource).await;
            }
        )*
    };
}

/// Every resource's tests; `paged` adds those of paged listings.
macro_rules! contract_tests {
    ($resource:expr) => {
        run_against!($resource =>
            create_answers_201_with_location_etag_and_the_entity,
            conflicting_creates_are_409_and_change_nothing,
            unknown_members_and_non_objects_are_422_and_create_nothing,
            malformed_empty_oversized_and_non_json_bodies_are_refused,
            unknown_keys_and_routes_are_404_and_wrong_methods_405,
            list_holds_every_item_once_in_order_and_pages_walk_it,
            bad_list_queries_are_400,
            patch_is_a_merge_patch_and_validates_the_result,
            if_match_guards_patch_and_delete,
            two_writers_with_the_same_if_match_one_wins_nothing_is_lost,
        );
    };
    ($resource:expr, paged) => {
        contract_tests!($resource);
        run_against!($resource => the_default_page_holds_50);
    };
}

mod segments {
    contract_tests!(super::SEGMENTS, paged);
}

mod fields {
    contract_tests!(super::FIELDS);
}

mod customers {
    contract_tests!(super::CUSTOMERS, paged);
}
