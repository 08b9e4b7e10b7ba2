#!/usr/bin/env bash
# Quick start #1: the whole backend on this machine.
#   moto (local DynamoDB API) on 127.0.0.1:$MOTO_PORT (5000)
#   local-stack (every function behind an emulated API Gateway + JWT authorizer)
#   on 127.0.0.1:$LOCAL_API_PORT (3000), and the console at /console/ on the same port
# Runs in the foreground until Ctrl-C; stops what it started on exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

LOCAL_API_PORT="${LOCAL_API_PORT:-3000}"
export TABLE_NAME="${TABLE_NAME:-segmentation-local}"
export DYNAMODB_ENDPOINT="${DYNAMODB_ENDPOINT:-http://127.0.0.1:$MOTO_PORT}"
export CURSOR_SECRET="${CURSOR_SECRET:-local-cursor-secret-0123456789}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export LOCAL_API_PORT RUST_LOG="${RUST_LOG:-info}"

"$REPO_ROOT/infra/setup.sh"

if http_up "$LOCAL_API_PORT"; then
    die "something already listens on 127.0.0.1:$LOCAL_API_PORT; stop it or set LOCAL_API_PORT"
fi

log "building local-stack"
cargo build -q -p local-stack --bins
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"

STARTED_MOTO=0
API_PID=""
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$API_PID" ] && kill -0 "$API_PID" 2>/dev/null; then
        kill -TERM "$API_PID" 2>/dev/null || true
        wait "$API_PID" 2>/dev/null || true
        log "local-stack stopped"
    fi
    if [ "$STARTED_MOTO" -eq 1 ]; then
        moto_stop "$MOTO_PORT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! http_up "$MOTO_PORT"; then
    STARTED_MOTO=1
fi
moto_start "$MOTO_PORT"

# CONSOLE_DIR: serve the console from its source folder (edit, reload) instead of the
# copy embedded in the binary.
SERVE_ARGS=()
[ -n "${CONSOLE_DIR:-}" ] && SERVE_ARGS+=(--console-dir "$CONSOLE_DIR")
"$TARGET_DIR/debug/local-stack" serve "${SERVE_ARGS[@]}" &
API_PID=$!
ready=0
for _ in $(seq 1 300); do
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$LOCAL_API_PORT/openapi.json"; then
        ready=1
        break
    fi
    kill -0 "$API_PID" 2>/dev/null || die "local-stack exited during startup"
    sleep 0.1
done
[ "$ready" -eq 1 ] || die "local-stack did not answer on port $LOCAL_API_PORT within 30s"

TOKEN="$("$TARGET_DIR/debug/local-stack" token demo)"
URL="http://127.0.0.1:$LOCAL_API_PORT"
cat <<MSG

Local stack is up: $URL (table $TABLE_NAME in moto at $DYNAMODB_ENDPOINT)

The back-office console (signs in as tenant "demo"; "Switch tenant" offers demo-2):
  $URL/console/

A token for tenant "demo" (valid 1 hour):
  export TOKEN=$TOKEN

Create a segment, then list segments:
  curl -s -X POST $URL/segments -H "authorization: Bearer \$TOKEN" \\
       -H 'content-type: application/json' -d '{"name":"VIP","description":"Top spenders"}'
  curl -s $URL/segments -H "authorization: Bearer \$TOKEN"

The OpenAPI document (no token needed):
  curl -s $URL/openapi.json

Tokens for other tenants:
  cargo run -q -p local-stack -- token acme

Membership-change events go to the bus ${EVENT_BUS_NAME:-segmentation-local-events} in moto;
to watch them: docs/local-stack.md, "Events locally".

Wipe all data: ./infra/moto.sh reset    Stop: Ctrl-C
MSG

wait "$API_PID"
