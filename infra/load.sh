#!/usr/bin/env bash
# A bounded load test of the local API on loopback (issue 7), with wrk (Debian package).
#
# Starts its own moto and local-stack on free ports with a fresh table (a running
# ./infra/dev.sh is not disturbed), seeds customers for one tenant, then sends
#   LOAD_GETS   (3000) GET  /customers/{id}   over the seeded ids,
#   LOAD_POSTS  (1000) POST /customers        each with a new email,
# both at LOAD_CONNECTIONS (16) connections on LOAD_THREADS (2) wrk threads, and prints
# requests, time, throughput, latency percentiles and the answers by status class.
# Fails (exit 1) on any answer that is not 2xx, any socket error, or fewer requests than
# asked. Stops what it started on exit.
#
#   ./infra/load.sh                      # debug local-stack, as ./infra/dev.sh runs it
#   LOAD_PROFILE=release ./infra/load.sh # release build (slow to build the first time)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

GETS="${LOAD_GETS:-3000}"
POSTS="${LOAD_POSTS:-1000}"
CONNECTIONS="${LOAD_CONNECTIONS:-16}"
THREADS="${LOAD_THREADS:-2}"
SEED="${LOAD_SEED_CUSTOMERS:-50}"
PROFILE="${LOAD_PROFILE:-debug}"
# A safety net only: wrk stops each phase after its request count.
MAX_SECONDS="${LOAD_MAX_SECONDS:-300}"

"$REPO_ROOT/infra/setup.sh" >/dev/null
if command -v wrk >/dev/null 2>&1; then
    log "wrk present"
else
    apt_install wrk
    log "installed wrk"
fi

log "building local-stack ($PROFILE)"
if [ "$PROFILE" = release ]; then
    cargo build -q --release -p local-stack --bins
else
    cargo build -q -p local-stack --bins
fi
BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/$PROFILE"

private_stack_start load "$BIN"
log "moto on :$MOTO, local-stack ($PROFILE) on :$PORT, table $TABLE_NAME, streams $LOCAL_STREAMS"

TENANT="load-$$"
TOKEN="$("$BIN/local-stack" token "$TENANT" --ttl-seconds 3600)"
log "seeding $SEED customers for tenant $TENANT"
: >"$WORK/ids"
for i in $(seq 1 "$SEED"); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/customers" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"id\":\"seed-$i\",\"email\":\"seed-$i@example.com\",\"first_name\":\"Seed\"}")"
    [ "$code" = 201 ] || die "seeding customer $i answered $code"
    echo "seed-$i" >>"$WORK/ids"
done

# wrk runs for a duration; these scripts stop each thread after its share of the
# requests (the last in-flight answers are not counted), leave a mark, and report, per
# status class, every answer they saw. The shell then ends wrk with SIGINT, after
# which it prints its summary as if the duration were over.
cat >"$WORK/common.lua" <<'LUA'
local threads = {}
local counter = 1
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end
function init(args)
    limit = tonumber(args[1])
    token = args[2]
    marks = args[3]
    seen = 0
    ok = 0
    bad = 0
    first_bad = ""
    made = 0
end
function response(status, headers, body)
    seen = seen + 1
    if status >= 200 and status < 300 then
        ok = ok + 1
    else
        bad = bad + 1
        if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
    end
    if seen == limit then
        -- wrk's main thread sleeps for the whole -d: the shell interrupts it once
        -- every thread has left its mark.
        local mark = io.open(marks .. "/done." .. id, "w")
        mark:close()
        wrk.thread:stop()
    end
end
function done(summary, latency, requests)
    local ok_total, bad_total, first = 0, 0, ""
    for _, thread in ipairs(threads) do
        ok_total = ok_total + thread:get("ok")
        bad_total = bad_total + thread:get("bad")
        if first == "" then first = thread:get("first_bad") end
    end
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d seconds=%.2f rps=%.1f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f ok=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
        ok_total + bad_total, summary.duration / 1e6, (ok_total + bad_total) / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000,
        ok_total, bad_total, e.connect, e.read, e.write, e.timeout))
    if first ~= "" then io.write("FIRST_BAD " .. first .. "\n") end
end
LUA
{
    cat "$WORK/common.lua"
    echo 'local ids = {'
    sed 's/.*/"&",/' "$WORK/ids"
    echo '}'
    cat <<'LUA'
local n = 0
function request()
    n = n + 1
    local id = ids[(n % #ids) + 1]
    return wrk.format("GET", "/customers/" .. id, {["authorization"] = "Bearer " .. token})
end
LUA
} >"$WORK/get.lua"
{
    cat "$WORK/common.lua"
    cat <<'LUA'
local n = 0
function request()
    n = n + 1
    local body = string.format(
        '{"email":"load-%d-%d@example.com","first_name":"Load","fields":{}}', id, n)
    return wrk.format("POST", "/customers", {
        ["authorization"] = "Bearer " .. token,
        ["content-type"] = "application/json",
    }, body)
end
LUA
} >"$WORK/post.lua"

# phase NAME SCRIPT COUNT PATH: runs wrk and checks its RESULT line.
FAILED=0
phase() {
    local name="$1" script="$2" count="$3" path="$4"
    local per_thread=$(((count + THREADS - 1) / THREADS))
    local out="$WORK/$(basename "$script" .lua).out"
    log "$name: $count requests at $CONNECTIONS connections, $THREADS threads"
    local marks="$WORK/marks-$(basename "$script" .lua)"
    mkdir -p "$marks"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MAX_SECONDS}s" --timeout 10s --latency \
        -s "$script" "$URL$path" -- "$per_thread" "$TOKEN" "$marks" >"$out" 2>&1 &
    local wrk_pid=$!
    PRIVATE_PIDS+=("$wrk_pid") # stopped with the stack if the script is interrupted
    while kill -0 "$wrk_pid" 2>/dev/null; do
        if [ "$(find "$marks" -name 'done.*' | wc -l)" -ge "$THREADS" ]; then
            kill -INT "$wrk_pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$wrk_pid" || true
    local result
    result="$(grep '^RESULT' "$out" || true)"
    [ -n "$result" ] || { cat "$out" >&2; die "$name: wrk printed no result"; }
    echo "  $name: ${result#RESULT }"
    grep '^FIRST_BAD' "$out" | sed 's/^/  /' || true
    local requests non2xx errors
    requests="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$result")"
    non2xx="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$result")"
    errors="$(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|timeout)=/) { split($i, kv, "="); s += kv[2] } print s }' <<<"$result")"
    if [ "$non2xx" -ne 0 ] || [ "$errors" -ne 0 ] || [ "$requests" -lt "$count" ]; then
        FAILED=1
        log "$name: FAILED ($requests requests, $non2xx not 2xx, $errors socket errors)"
    fi
}

STARTED=$SECONDS
phase "GET /customers/{id}" "$WORK/get.lua" "$GETS" "/customers/seed-1"
phase "POST /customers" "$WORK/post.lua" "$POSTS" "/customers"

# The writes landed: count what the tenant holds now (pages of 100).
count=0
cursor=""
while :; do
    page="$(curl -sf "$URL/customers?limit=100${cursor:+&cursor=$cursor}" -H "authorization: Bearer $TOKEN")"
    count=$((count + $("$VENV/bin/python" -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' <<<"$page")))
    cursor="$("$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"] or "")' <<<"$page")"
    [ -n "$cursor" ] || break
done
log "tenant $TENANT holds $count customers ($SEED seeded, then the POSTs)"
if [ "$count" -lt $((SEED + POSTS)) ]; then
    log "FAILED: fewer customers than seeded plus posted"
    FAILED=1
fi
log "total $((SECONDS - STARTED)) s; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
private_stack_errors && FAILED=1
[ "$FAILED" -eq 0 ] || die "load test failed"
log "zero errors"
