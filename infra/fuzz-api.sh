#!/usr/bin/env bash
# Fuzzes the local API from its own OpenAPI document with schemathesis (issue 7).
#
# Installs schemathesis into .venv (pinned, idempotent), starts its own moto and
# local-stack on free ports with a fresh table (a running ./infra/dev.sh is not
# disturbed), mints a token for a fresh tenant, seeds a segment, fields, a customer, a
# sale and a rule (with the Rust example module and a dry-run backfill job when
# rules/build-examples.sh has built it), and a spare set for the DELETE operations
# alone, points each operation's path parameters at its own resource's seeds most of
# the time (a schemathesis.toml of dictionaries), then runs
#   st run http://127.0.0.1:PORT/openapi.json -H 'Authorization: Bearer <token>'
#      --checks not_a_server_error,response_schema_conformance
# with FUZZ_EXAMPLES (default 50) test cases per operation and phase; the stateful
# phase chains calls along the document's OpenAPI links (a create's answer gives the
# id its GET, PATCH, DELETE... take). Then prints, per operation, the answers it got by
# status (from the HAR report), and whether any was other than 404 (401 aside: one
# case per operation goes without a token). Fails (exit 1) on any failed check, an
# ERROR in the server log, or an operation that never got past 404 (but for those that
# need the example module, when it is not built). Stops what it started on exit.
#
#   ./infra/fuzz-api.sh
#   FUZZ_EXAMPLES=200 FUZZ_SEED=1 ./infra/fuzz-api.sh
#   FUZZ_PHASES=coverage,fuzzing ./infra/fuzz-api.sh   # without the stateful phase
#   FUZZ_REPORT_DIR=/tmp/st ./infra/fuzz-api.sh        # keep the JUnit and HAR reports
#
# ./infra/test.sh runs it with FUZZ_EXAMPLES=20 (about a minute); the default and
# larger values are the longer runs docs/reliability.md reports.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SCHEMATHESIS_VERSION="4.32.5"
EXAMPLES="${FUZZ_EXAMPLES:-50}"
SEED="${FUZZ_SEED:-7}"
PHASES="${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}"
WORKERS="${FUZZ_WORKERS:-2}"
# A safety net for the whole run. Not schemathesis's --max-time: with it, the fuzzing
# phase repeats until the time is spent.
MAX_SECONDS="${FUZZ_MAX_SECONDS:-900}"
CHECKS="not_a_server_error,response_schema_conformance"

"$REPO_ROOT/infra/setup.sh" >/dev/null
pip_pin schemathesis "$SCHEMATHESIS_VERSION"

BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
# FUZZ_PREBUILT=1: use the local-stack binary there as it is (./infra/test.sh built it
# with the workspace's features; `cargo build -p local-stack` would rebuild for its own).
if [ "${FUZZ_PREBUILT:-0}" != 1 ]; then
    log "building local-stack (debug)"
    cargo build -q -p local-stack --bins
fi

private_stack_start fuzz "$BIN"
log "moto on :$MOTO, local-stack (debug) on :$PORT, table $TABLE_NAME"

TENANT="fuzz-$$-$(date +%s)"
TOKEN="$("$BIN/local-stack" token "$TENANT" --ttl-seconds 7200)"

# seed METHOD PATH BODY EXPECTED...: one request; dies unless the status is expected.
# The answer is left in $WORK/seed.out.
seed() {
    local method="$1" path="$2" body="$3"
    shift 3
    local code
    code="$(curl -s -o "$WORK/seed.out" -w '%{http_code}' -X "$method" "$URL$path" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$body")"
    local want
    for want in "$@"; do [ "$code" = "$want" ] && return 0; done
    die "seeding $method $path answered $code: $(head -c 300 "$WORK/seed.out")"
}
seed_id() { "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <"$WORK/seed.out"; }
log "seeding tenant $TENANT: a segment, fields, a customer, a sale, a rule; another set to delete"
seed POST /segments '{"name":"VIP","description":"Top spenders"}' 201
SEGMENT="$(seed_id)"
# What the DELETE operations get instead, so that they do not take away what the
# others read: a deleted rule takes its versions and jobs along.
seed POST /segments '{"name":"Spare"}' 201
SPARE_SEGMENT="$(seed_id)"
seed POST /fields '{"name":"spare","type":"string"}' 201
seed PUT /customers/spare '{"email":"spare@example.com"}' 201
seed PUT /rules/spare '{"outputs":[],"enabled":false}' 201
seed POST /fields '{"name":"tier","type":"enum","values":["AA","A","B"],"cluster":true}' 201
seed POST /fields '{"name":"distributor","type":"boolean","cluster":true}' 201
seed POST /fields '{"name":"region","type":"string","cluster":true}' 201
seed POST /fields '{"name":"annual_revenue","type":"string"}' 201
seed PUT /customers/c1 "{\"email\":\"c1@example.com\",\"first_name\":\"Ada\",\"segment_id\":\"$SEGMENT\",\"fields\":{\"region\":\"north\",\"tier\":\"A\",\"annual_revenue\":\"1000\"}}" 201
seed POST /customers/c1/sales '{"reference":"s1","amount":"12.50","currency":"EUR","date":"2026-01-15"}' 201
seed PUT /rules/tiering '{"outputs":["tier","distributor"],"enabled":false}' 201
# The Rust example rule (rules/build-examples.sh builds it), for versions, test runs
# and a dry-run backfill job; without it those operations mostly answer 404 or 409.
MODULE="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/rules-wasm/tier-rust.wasm"
JOB=none
# Operations that may stay at 404 in this run (named in the report, not a failure).
UNREACHABLE=""
if [ -f "$MODULE" ]; then
    code="$(curl -s -o "$WORK/seed.out" -w '%{http_code}' -X PUT "$URL/rules/tiering/module" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/wasm' --data-binary "@$MODULE")"
    [ "$code" = 201 ] || die "uploading $MODULE answered $code: $(head -c 300 "$WORK/seed.out")"
    seed POST /rules/tiering/backfill '{"dry_run":true}' 202
    JOB="$(seed_id)"
else
    log "no $MODULE (run rules/build-examples.sh): the rule has no version"
    UNREACHABLE="GetRuleVersion GetBackfill ResumeBackfill"
fi

# Path parameters come from these dictionaries 80 % of the time, so that the operations
# on one resource reach past their 404 (each item operation gets the seeded ids of its
# own resource, the DELETE operations the spare ones); some body and query members half
# of the time, so that some generated bodies pass the API's own checks (a known segment,
# a unique email, a version that exists). The stateful phase chains calls along the
# document's links instead (and learns more of them from Location headers).
cat >"$WORK/schemathesis.toml" <<TOML
[dictionaries]
customers = { values = ["c1"] }
segments = { values = ["$SEGMENT"] }
fields = { values = ["region", "tier", "distributor", "annual_revenue"] }
cluster_fields = { values = ["region", "tier", "distributor"] }
cluster_values = { values = ["north", "A", "true"] }
rules = { values = ["tiering"] }
jobs = { values = ["$JOB"] }
numbers = { values = ["1"] }
versions = { values = [1] }
years = { values = ["2026"] }
names = { values = ["fuzz_a", "fuzz_b", "fuzz_c", "fuzz_d"] }
emails = { values = ["fuzz-a@example.com", "fuzz-b@example.com", "fuzz-c@example.com"] }
spare_customers = { values = ["spare"] }
spare_segments = { values = ["$SPARE_SEGMENT"] }
spare_names = { values = ["spare"] }

[parameters]
"path.job" = { dictionary = "jobs", probability = 0.8 }
"path.number" = { dictionary = "numbers", probability = 0.8 }
"query.year" = { dictionary = "years", probability = 0.5 }
"query.value" = { dictionary = "cluster_values", probability = 0.5 }
"body.name" = { dictionary = "names", probability = 0.5 }
"body.email" = { dictionary = "emails", probability = 0.5 }
"body.segment_id" = { dictionary = "segments", probability = 0.5 }
"body.customer_id" = { dictionary = "customers", probability = 0.5 }
"body.version" = { dictionary = "versions", probability = 0.5 }

[[operations]]
include-operation-id = ["GetCustomer", "ReplaceCustomer", "UpdateCustomer", "GetCustomerClusters", "RecordSale", "ListSales"]
parameters = { "path.id" = { dictionary = "customers", probability = 0.8 } }

[[operations]]
include-operation-id = ["GetSegment", "UpdateSegment"]
parameters = { "path.id" = { dictionary = "segments", probability = 0.8 } }

[[operations]]
include-operation-id = ["GetField", "UpdateField"]
parameters = { "path.name" = { dictionary = "fields", probability = 0.8 } }

[[operations]]
include-operation-id = ["ListClusterMembers"]
parameters = { "path.field" = { dictionary = "cluster_fields", probability = 0.8 } }

[[operations]]
include-operation-id = ["GetRule", "PutRule", "UpdateRule", "ListRuleVersions", "GetRuleVersion", "TestRule", "StartBackfill", "ListBackfills", "GetBackfill", "ResumeBackfill"]
parameters = { "path.name" = { dictionary = "rules", probability = 0.8 } }

[[operations]]
include-operation-id = ["DeleteCustomer"]
parameters = { "path.id" = { dictionary = "spare_customers", probability = 0.8 } }

[[operations]]
include-operation-id = ["DeleteSegment"]
parameters = { "path.id" = { dictionary = "spare_segments", probability = 0.8 } }

[[operations]]
include-operation-id = ["DeleteField", "DeleteRule"]
parameters = { "path.name" = { dictionary = "spare_names", probability = 0.8 } }
TOML

# The HAR report holds every request and answer: the per-operation table below reads it.
REPORT_DIR="${FUZZ_REPORT_DIR:-$WORK/report}"
mkdir -p "$REPORT_DIR"
HAR="$REPORT_DIR/fuzz-api.har.json"
rm -f "$HAR"
EXTRA=(--report junit,har --report-dir "$REPORT_DIR" --report-har-path "$HAR")
log "schemathesis $SCHEMATHESIS_VERSION: $EXAMPLES examples per operation, phases $PHASES, seed $SEED, checks $CHECKS"
STARTED=$SECONDS
status=0
# The module upload takes raw WebAssembly bytes: random bodies only exercise the
# parser's first refusal, which tests/tests/integration/hostile.rs covers far better.
# --foreground: Ctrl-C reaches schemathesis instead of waiting for the timeout.
timeout --foreground "$MAX_SECONDS" "$VENV/bin/st" --no-color --config-file "$WORK/schemathesis.toml" run "$URL/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --checks "$CHECKS" \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --phases "$PHASES" \
    --workers "$WORKERS" \
    --request-timeout 30 \
    --exclude-path '/rules/{name}/module' \
    --suppress-health-check all \
    --output-truncate false \
    "${EXTRA[@]}" || status=$?
log "schemathesis finished in $((SECONDS - STARTED)) s with exit code $status; $(nproc) cores"

# Per operation: the answers by status, and whether any got past 404 (the one case
# without a token, 401, does not count).
curl -s "$URL/openapi.json" >"$WORK/openapi.json"
if [ -f "$HAR" ]; then
    "$VENV/bin/python" - "$HAR" "$WORK/openapi.json" "$UNREACHABLE" <<'PY' || status=1
import collections, json, re, sys, urllib.parse

har, spec = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
operations = []
for path, item in spec["paths"].items():
    pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
    for method, operation in item.items():
        operations.append((method.upper(), path, pattern, operation["operationId"]))
# Literal paths first: /customers/import is not /customers/{id}.
operations.sort(key=lambda o: o[1].count("{"))
answers = collections.defaultdict(collections.Counter)
for entry in har["log"]["entries"]:
    method = entry["request"]["method"]
    path = urllib.parse.urlsplit(entry["request"]["url"]).path
    for m, _, pattern, operation in operations:
        if m == method and pattern.match(path):
            answers[operation][entry["response"]["status"]] += 1
            break
unreached = []
print(f"{'operation':22} {'method':6} {'path':37} {'cases':>5} {'2xx':>5} {'other':>5}  answers by status")
for method, path, _, operation in sorted(operations, key=lambda o: (o[1], o[0])):
    counts = answers.get(operation, collections.Counter())
    total = sum(counts.values())
    if total == 0:
        continue  # not fuzzed (excluded)
    ok = sum(n for s, n in counts.items() if 200 <= s < 300)
    other = sum(n for s, n in counts.items() if s not in (401, 404))
    if other == 0:
        unreached.append(operation)
    statuses = " ".join(f"{s}:{n}" for s, n in sorted(counts.items()))
    print(f"{operation:22} {method:6} {path:37} {total:5} {ok:5} {other:5}  {statuses}")
fuzzed = sum(1 for o in operations if answers.get(o[3]))
print(f"{fuzzed - len(unreached)} of {fuzzed} operations got an answer other than 404 (401 aside); "
      f"{sum(1 for o in operations if any(200 <= s < 300 for s in answers.get(o[3], {})))} a 2xx")
if unreached:
    print("never past 404: " + ", ".join(unreached))
    if set(unreached) - set(sys.argv[3].split()):
        sys.exit(1)
PY
fi

private_stack_errors && status=1
[ "$status" -eq 0 ] || die "fuzzing found failures"
log "no failures"
