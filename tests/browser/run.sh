#!/usr/bin/env bash
# Usage: tests/browser/run.sh [node --test options]
# The console's end-to-end tests: Debian's headless Chromium (infra/setup.sh installs
# it), driven by playwright-core, against a private stack on free ports (moto and
# target/debug/local-stack, which infra/test.sh builds first), through the UI only.
#   UPDATE_SCREENSHOT=1  also writes the README's picture, docs/console.png
#   CONSOLE_DIR=DIR      serve the console from DIR (functions/console/assets) instead
#                        of the copy embedded in the binary, to test edits without a build
#   HEADED=1             a visible browser (needs a display)
# Screenshots of every screen and the measurements go to target/console-screenshots/.
# Exits non-zero when a test fails; stops everything it started on exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../infra/lib.sh"
HERE="$REPO_ROOT/tests/browser"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
BIN="$TARGET_DIR/debug/local-stack"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

command -v node >/dev/null || die "node is missing (the tests run on Node's own test runner)"
[ -x "$CHROMIUM" ] || die "$CHROMIUM is missing; run ./infra/setup.sh"
[ -x "$BIN" ] || die "$BIN is missing; run: cargo build -p local-stack --bins"

npm_ci_once "$HERE"

# The private stack; private_stack_stop (infra/lib.sh) stops what PRIVATE_PIDS lists
# and removes WORK on exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/console-browser.XXXXXX")"
SHOTS="$REPO_ROOT/target/console-screenshots"
keep_logs() {
    local status=$?
    mkdir -p "$SHOTS"
    cp "$WORK"/*.log "$SHOTS/" 2>/dev/null || true
    [ "$status" -eq 0 ] || log "logs of the stack: $SHOTS/local-stack.log, $SHOTS/moto.log"
    private_stack_stop
    exit "$status"
}
trap keep_logs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

moto_launch 0 "$WORK/moto.log"
PRIVATE_PIDS+=("$MOTO_PID")

export TABLE_NAME="console-browser-$$-$(date +%s)"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$MOTO_LISTENING"
export CURSOR_SECRET="local-cursor-secret-0123456789"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true
export LOCAL_STREAMS=on LOCAL_STREAM_CHECKPOINT="$WORK/streams"
export RUST_LOG="${RUST_LOG:-warn}"
# Every import request stops after its first written row, so the console's imports go
# through their resume paths (the rest of a CSV sent again, a workbook sent again).
export IMPORT_TIME_BUDGET_MS=0
SERVE_ARGS=()
if [ -n "${CONSOLE_DIR:-}" ]; then
    SERVE_ARGS+=(--console-dir "$CONSOLE_DIR")
elif [ -n "$(find "$REPO_ROOT/functions/console/assets" -type f -newer "$BIN" -print -quit)" ]; then
    # The binary embeds the console as it was when it was built.
    log "warning: functions/console/assets changed since $BIN was built; the tests see the old console"
    log "         (cargo build -p local-stack --bins, or CONSOLE_DIR=functions/console/assets)"
fi
# Port 0: the server picks a free one and prints it ("listening on http://...").
LOCAL_API_PORT=0 "$BIN" serve "${SERVE_ARGS[@]}" >"$WORK/local-stack.out" 2>"$WORK/local-stack.log" </dev/null &
API_PID=$!
PRIVATE_PIDS+=("$API_PID")
URL=""
for _ in $(seq 1 300); do
    URL="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$WORK/local-stack.out")"
    [ -z "$URL" ] || break
    kill -0 "$API_PID" 2>/dev/null || { tail -n 20 "$WORK/local-stack.log" >&2; die "local-stack exited during startup"; }
    sleep 0.1
done
[ -n "$URL" ] || die "local-stack did not listen within 30s"
log "stack up: $URL (moto on port $MOTO_LISTENING, table $TABLE_NAME)"

export CONSOLE_URL="$URL/console/"
# Sales come from the tenant's own systems through the API (the console has no sales
# form): the report scenario records a few with this token, as such a system would.
export API_URL="$URL"
API_TOKEN="$("$BIN" token demo)"
export API_TOKEN
export SCREENSHOTS="$SHOTS"
export RULE_WASM="${RULE_WASM:-$TARGET_DIR/rules-wasm/tier-rust.wasm}"
[ -f "$RULE_WASM" ] || die "$RULE_WASM is missing; run: bash rules/build-examples.sh"
rm -rf "$SHOTS" && mkdir -p "$SHOTS"
cd "$HERE"
# One file, its tests in order: later scenarios use what earlier ones created.
status=0
node --test --test-concurrency=1 "$@" console.test.mjs || status=$?
echo
cat "$SHOTS/measurements.txt" 2>/dev/null || true
log "screenshots in $SHOTS"
exit "$status"
