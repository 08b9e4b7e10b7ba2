#!/usr/bin/env bash
# Fuzzes the local API from its own OpenAPI document with schemathesis (issue 7).
#
# Installs schemathesis into .venv (pinned, idempotent), starts its own moto and
# local-stack on free ports with a fresh table (a running ./infra/dev.sh is not
# disturbed), mints a token for a fresh tenant, seeds a segment, fields, a customer, a
# sale and a rule (with the Rust example module and a dry-run backfill job when
# rules/build-examples.sh has built it), points path parameters at them half of the
# time (a schemathesis.toml of dictionaries), then runs
#   st run http://127.0.0.1:PORT/openapi.json -H 'Authorization: Bearer <token>'
#      --checks not_a_server_error,response_schema_conformance
# with FUZZ_EXAMPLES (default 50) test cases per operation and phase. Fails (exit 1)
# on any failed check or an ERROR in the server log. Stops what it started on exit.
#
#   ./infra/fuzz-api.sh
#   FUZZ_EXAMPLES=200 FUZZ_SEED=1 ./infra/fuzz-api.sh
#   FUZZ_PHASES=examples,coverage,fuzzing,stateful ./infra/fuzz-api.sh
#   FUZZ_REPORT_DIR=/tmp/st ./infra/fuzz-api.sh   # keep JUnit and HAR reports
#
# ./infra/test.sh runs it with FUZZ_EXAMPLES=20 (about a minute); the default and
# larger values are the longer runs docs/reliability.md reports.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SCHEMATHESIS_VERSION="4.32.5"
EXAMPLES="${FUZZ_EXAMPLES:-50}"
SEED="${FUZZ_SEED:-7}"
PHASES="${FUZZ_PHASES:-examples,coverage,fuzzing}"
WORKERS="${FUZZ_WORKERS:-2}"
# A safety net for the whole run. Not schemathesis's --max-time: with it, the fuzzing
# phase repeats until the time is spent.
MAX_SECONDS="${FUZZ_MAX_SECONDS:-900}"
CHECKS="not_a_server_error,response_schema_conformance"

"$REPO_ROOT/infra/setup.sh" >/dev/null
pip_pin schemathesis "$SCHEMATHESIS_VERSION"

log "building local-stack (debug)"
cargo build -q -p local-stack --bins
BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"

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
log "seeding tenant $TENANT: a segment, fields, a customer, a sale, a rule"
seed POST /segments '{"name":"VIP","description":"Top spenders"}' 201
SEGMENT="$(seed_id)"
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
if [ -f "$MODULE" ]; then
    code="$(curl -s -o "$WORK/seed.out" -w '%{http_code}' -X PUT "$URL/rules/tiering/module" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/wasm' --data-binary "@$MODULE")"
    [ "$code" = 201 ] || die "uploading $MODULE answered $code: $(head -c 300 "$WORK/seed.out")"
    seed POST /rules/tiering/backfill '{"dry_run":true}' 202
    JOB="$(seed_id)"
else
    log "no $MODULE (run rules/build-examples.sh): the rule has no version"
fi

# Path parameters come from these dictionaries half of the time, so the operations on
# one resource reach past their 404 (`id` is a customer's or a segment's, `name` a
# field's or a rule's).
cat >"$WORK/schemathesis.toml" <<TOML
[dictionaries]
ids = { values = ["c1", "$SEGMENT"] }
names = { values = ["tiering", "region", "tier", "annual_revenue"] }
fields = { values = ["region", "tier", "distributor"] }
jobs = { values = ["$JOB"] }
numbers = { values = ["1"] }

[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"path.name" = { dictionary = "names", probability = 0.5 }
"path.field" = { dictionary = "fields", probability = 0.5 }
"path.job" = { dictionary = "jobs", probability = 0.5 }
"path.number" = { dictionary = "numbers", probability = 0.5 }
TOML

EXTRA=()
if [ -n "${FUZZ_REPORT_DIR:-}" ]; then
    EXTRA+=(--report junit,har --report-dir "$FUZZ_REPORT_DIR")
fi
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

private_stack_errors && status=1
[ "$status" -eq 0 ] || die "fuzzing found failures"
log "no failures"
