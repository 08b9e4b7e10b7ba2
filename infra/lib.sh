# Shared helpers for the infra/*.sh scripts. Source it; do not run it.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
LOCAL_DIR="$REPO_ROOT/.local"
MOTO_VERSION="5.2.5"
# cfn-lint checks template.yaml (infra/test.sh); moto[server] also pulls it in, unpinned.
CFN_LINT_VERSION="1.58.0"
# wasmtime-py runs the example rules outside the product (rules/portability.py); the
# newest release with a manylinux x86_64 wheel (py3-none, so any Python 3).
WASMTIME_PY_VERSION="50.0.1"
MOTO_PORT="${MOTO_PORT:-5000}"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '[%s] error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# npm ci in directory $1 only when its node_modules was not installed from this very
# lock file: warm machines skip it, a changed lock reinstalls.
npm_ci_once() {
    local dir="$1" sum
    sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$dir/node_modules/.lock-sha256" 2>/dev/null || true)" = "$sum" ]; then
        log "node_modules of ${dir#"$REPO_ROOT/"} matches package-lock.json"
        return 0
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$dir/node_modules/.lock-sha256"
    log "installed node_modules of ${dir#"$REPO_ROOT/"} (npm ci)"
}

# Runs apt-get install for the given packages, updating the index once per process.
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "need $* but apt-get is not available; install it by hand"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    if [ "$APT_UPDATED" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pip_pin NAME VERSION [REQUIREMENT]: installs NAME==VERSION into .venv unless that
# version is already there (REQUIREMENT, e.g. "moto[server]==5.2.5", overrides what
# pip is asked for). Needs the venv (infra/setup.sh creates it).
pip_pin() {
    local name="$1" version="$2" requirement="${3:-$1==$2}" installed
    [ -x "$VENV/bin/pip" ] || die ".venv is missing; run ./infra/setup.sh"
    installed="$("$VENV/bin/pip" show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)"
    if [ "$installed" = "$version" ]; then
        log "$name $version present"
    else
        "$VENV/bin/pip" install -q --disable-pip-version-check "$requirement"
        log "installed $requirement into .venv"
    fi
}

# True when an HTTP server answers on 127.0.0.1:$1 (any status).
http_up() {
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null
}

# moto_launch PORT LOG [OPTION...]: starts moto in the background the one way
# (infra/moto.sh run, see there), on PORT (0: any free port), its output in LOG, and
# waits until it listens: the server writes its port to LOG's .port file then. Sets
# MOTO_PID, MOTO_LISTENING (the port) and MOTO_STARTUP_SECONDS. Dies with the log's end if moto exits first or
# is not listening within 30 s (and stops it then). The OPTIONs go to infra/moto_server.py.
moto_launch() {
    local port="$1" logfile="$2" portfile="${2%.log}.port" started=$SECONDS
    shift 2
    rm -f "$portfile"
    nohup "$REPO_ROOT/infra/moto.sh" run -H 127.0.0.1 -p "$port" --port-file "$portfile" "$@" \
        >"$logfile" 2>&1 </dev/null &
    MOTO_PID=$!
    local i
    for i in $(seq 1 300); do
        if [ -s "$portfile" ]; then
            MOTO_LISTENING="$(cat "$portfile")"
            MOTO_STARTUP_SECONDS=$((SECONDS - started))
            return 0
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            tail -n 20 "$logfile" >&2 || true
            die "moto exited during startup (log $logfile)"
        fi
        sleep 0.1
    done
    kill "$MOTO_PID" 2>/dev/null || true
    die "moto was not listening on port $port within 30s (log $logfile)"
}

# moto_start [port [OPTION...]]: starts moto in the background unless something already
# answers on the port; pid and log in .local/.
moto_start() {
    local port="${1:-$MOTO_PORT}"
    [ "$#" -eq 0 ] || shift
    mkdir -p "$LOCAL_DIR"
    if http_up "$port"; then
        log "moto already answering on 127.0.0.1:$port"
        return 0
    fi
    local logfile="$LOCAL_DIR/moto-$port.log"
    moto_launch "$port" "$logfile" "$@"
    echo "$MOTO_PID" >"$LOCAL_DIR/moto-$port.pid"
    log "moto started on 127.0.0.1:$port in ${MOTO_STARTUP_SECONDS}s (pid $MOTO_PID, log $logfile)"
}

# moto_stop [port]: stops the moto_server this script started (by its pid file).
moto_stop() {
    local port="${1:-$MOTO_PORT}"
    local pidfile="$LOCAL_DIR/moto-$port.pid"
    if [ -f "$pidfile" ]; then
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            local i
            for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            log "moto stopped (pid $pid)"
        fi
        rm -f "$pidfile"
    else
        log "no moto started by these scripts on port $port"
    fi
}

# moto_reset [port]: wipes every table and item in a running moto.
moto_reset() {
    local port="${1:-$MOTO_PORT}"
    curl -sf -X POST "http://127.0.0.1:$port/moto-api/reset" >/dev/null \
        || die "moto is not answering on port $port"
    log "moto on port $port reset"
}

# A TCP port nobody listens on now, on loopback.
free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# private_stack_start NAME BIN_DIR: moto and BIN_DIR/local-stack on free ports with a
# fresh table, for scripts that must not disturb a running ./infra/dev.sh. Sets WORK (a
# temporary folder holding both logs), MOTO, PORT, URL and TABLE_NAME; both processes
# stop and WORK goes when the calling script exits.
PRIVATE_PIDS=()
private_stack_start() {
    local name="$1" bin="$2"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")"
    trap private_stack_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # MOTO_LATENCY_MS and MOTO_TRACE, when exported, reach moto (infra/scale.sh).
    moto_launch 0 "$WORK/moto.log"
    PRIVATE_PIDS+=("$MOTO_PID")
    MOTO="$MOTO_LISTENING"

    PORT="$(free_port)"
    export LOCAL_API_PORT="$PORT"
    export TABLE_NAME="$name-$$-$(date +%s)"
    export DYNAMODB_ENDPOINT="http://127.0.0.1:$MOTO"
    export CURSOR_SECRET="local-cursor-secret-0123456789"
    export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
    export AWS_EC2_METADATA_DISABLED=true
    export LOCAL_STREAMS="${LOCAL_STREAMS:-on}"
    export LOCAL_STREAM_CHECKPOINT="$WORK/streams"
    export RUST_LOG="${RUST_LOG:-warn}"
    "$bin/local-stack" serve >"$WORK/local-stack.log" 2>&1 </dev/null &
    local api_pid=$!
    PRIVATE_PIDS+=("$api_pid")
    URL="http://127.0.0.1:$PORT"
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null --max-time 1 "$URL/openapi.json" && break
        kill -0 "$api_pid" 2>/dev/null || { tail -n 20 "$WORK/local-stack.log" >&2; die "local-stack exited"; }
        sleep 0.1
    done
    curl -sf -o /dev/null --max-time 1 "$URL/openapi.json" || die "local-stack did not start"
}

# private_stack_errors: true (and prints the first lines) when the private local-stack
# logged an error.
private_stack_errors() {
    grep -q 'ERROR' "$WORK/local-stack.log" || return 1
    log "local-stack logged errors:"
    grep 'ERROR' "$WORK/local-stack.log" | head -20 >&2
}

# Stops what private_stack_start started (and any pid a script adds to PRIVATE_PIDS),
# newest first, and removes WORK.
private_stack_stop() {
    trap - EXIT INT TERM
    local i pid
    for ((i = ${#PRIVATE_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PRIVATE_PIDS[$i]}"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
}
