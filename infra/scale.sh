#!/usr/bin/env bash
# The scale benchmark of issue 12 ("Scale with DynamoDB"); not part of CI.
#
# Starts its own moto (DynamoDB's latencies injected, every call traced) and local-stack
# on free ports with a fresh table, runs the scenarios (infra/scale_driver.py), each
# between two marks in the trace and in a tenant of its own, then prints what each
# window's DynamoDB calls show and one summary table (infra/scale_report.py). Stops
# what it started on exit; the trace, the results and the report stay in $SCALE_DIR.
#
#   scenario   what                                                     size: full / small
#   create-1   creates by one writer: the rounds of one create          SCALE_PROBE     20 / 20
#   create-16  creates into one segment and cluster value, 16 writers   SCALE_CREATES  300 / 60
#   create-64  the same, 64 writers                                     SCALE_CREATES  300 / 60
#   stream     customer records handled as one stream batch, a rule on  SCALE_STREAM   100 / 100
#   backfill   customers re-evaluated by a backfill job                 SCALE_BACKFILL 2000 / 200
#   import     rows of a CSV file through import-customers              SCALE_IMPORT 10000 / 500
#
#   ./infra/scale.sh                  # the full run
#   SCALE_SMALL=1 ./infra/scale.sh    # the small sizes: under two minutes
# Also: SCALE_NO_BUILD=1 (use target/debug as it is), SCALE_LATENCY (read=4,write=6,
# transact=15), SCALE_IMPORT_CONCURRENCY (4) and SCALE_IMPORT_ROWS_PER_REQUEST (1000),
# SCALE_IDLE_SECONDS (3: how long the stream must be quiet for a window to end),
# SCALE_DIR (.local/scale).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

if [ "${SCALE_SMALL:-0}" = 1 ]; then
    sizes=(20 60 100 200 500)
else
    sizes=(20 300 100 2000 10000)
fi
PROBE="${SCALE_PROBE:-${sizes[0]}}"
CREATES="${SCALE_CREATES:-${sizes[1]}}"
STREAM="${SCALE_STREAM:-${sizes[2]}}"
BACKFILL="${SCALE_BACKFILL:-${sizes[3]}}"
IMPORT="${SCALE_IMPORT:-${sizes[4]}}"
LATENCY="${SCALE_LATENCY:-read=4,write=6,transact=15}"
SCALE_DIR="${SCALE_DIR:-$LOCAL_DIR/scale}"
BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
WASM="${RULES_WASM_DIR:-$REPO_ROOT/target/rules-wasm}/tier-rust.wasm"

"$REPO_ROOT/infra/setup.sh" >/dev/null
if [ "${SCALE_NO_BUILD:-0}" != 1 ]; then
    log "building local-stack, local-stack token and import-customers"
    cargo build -q -p local-stack -p import-customers --bins
fi
[ -f "$WASM" ] || bash "$REPO_ROOT/rules/build-examples.sh"

mkdir -p "$SCALE_DIR"
rm -f "$SCALE_DIR/trace.jsonl" "$SCALE_DIR/results.jsonl" "$SCALE_DIR/report.txt"
export MOTO_LATENCY_MS="$LATENCY" MOTO_TRACE="$SCALE_DIR/trace.jsonl"
# The driver tells when the stream is idle from these "stream batch handled" lines.
export RUST_LOG="warn,local_stack::streams=debug"
private_stack_start scale "$BIN"
API_PID="${PRIVATE_PIDS[-1]}"
# The stream scenario freezes the main local-stack (SIGSTOP) for a moment; a frozen
# process would never act on the TERM that stops it.
trap 'kill -CONT "$API_PID" 2>/dev/null || true; private_stack_stop' EXIT

# A second local-stack, without a stream poller: writes through it wait in the stream.
QUIET_URL="http://127.0.0.1:$(free_port)"
LOCAL_API_PORT="${QUIET_URL##*:}" LOCAL_STREAMS=off "$BIN/local-stack" serve \
    >"$WORK/quiet-api.log" 2>&1 </dev/null &
PRIVATE_PIDS+=("$!")
for _ in $(seq 1 300); do
    curl -sf -o /dev/null --max-time 1 "$QUIET_URL/openapi.json" && break
    sleep 0.1
done
curl -sf -o /dev/null --max-time 1 "$QUIET_URL/openapi.json" || die "the quiet local-stack did not start"
log "moto on :$MOTO (latency $LATENCY, trace $MOTO_TRACE), local-stack on :$PORT, quiet on ${QUIET_URL##*:}"

driver() {
    "$VENV/bin/python" "$REPO_ROOT/infra/scale_driver.py" --url "$URL" --quiet-url "$QUIET_URL" \
        --moto "http://127.0.0.1:$MOTO" --bin "$BIN" --log "$WORK/local-stack.log" \
        --results "$SCALE_DIR/results.jsonl" --run "scale-$$" \
        --idle "${SCALE_IDLE_SECONDS:-3}" "$@"
}
STARTED=$SECONDS
driver creates --scenario create-1 --count "$PROBE" --writers 1
driver creates --scenario create-16 --count "$CREATES" --writers 16
driver creates --scenario create-64 --count "$CREATES" --writers 64
driver stream --scenario stream --count "$STREAM" --wasm "$WASM" --pause "$API_PID"
driver backfill --scenario backfill --count "$BACKFILL" --wasm "$WASM"
driver import --scenario import --count "$IMPORT" \
    --concurrency "${SCALE_IMPORT_CONCURRENCY:-4}" \
    --rows-per-request "${SCALE_IMPORT_ROWS_PER_REQUEST:-1000}"
log "scenarios done in $((SECONDS - STARTED)) s"

{
    echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
    "$VENV/bin/python" "$REPO_ROOT/infra/scale_report.py" --latency "$LATENCY" \
        "$SCALE_DIR/trace.jsonl" "$SCALE_DIR/results.jsonl"
} | tee "$SCALE_DIR/report.txt"
if private_stack_errors; then die "local-stack logged errors"; fi
