#!/usr/bin/env bash
# Quick start #2: the whole test suite, as CI runs it.
# Formatting, lints (while building), the example rule modules, then every test of the
# workspace, including the HTTP integration tests (which start their own moto and
# local-stack), and the console's browser tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

STEPS=()
TIMES=()
TOTAL_START=$(date +%s.%N)

elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

summary() {
    local i
    echo
    echo "== timings =="
    for i in "${!STEPS[@]}"; do
        printf '  %-44s %7ss\n' "${STEPS[$i]}" "${TIMES[$i]}"
    done
    printf '  %-44s %7ss\n' "total" "$(elapsed "$TOTAL_START")"
}

# step NAME CMD...: runs CMD, records its time, stops the suite on failure.
step() {
    local name="$1"
    shift
    echo
    echo "== $name =="
    local start status=0
    start=$(date +%s.%N)
    "$@" || status=$?
    STEPS+=("$name")
    TIMES+=("$(elapsed "$start")")
    if [ "$status" -ne 0 ]; then
        summary
        echo
        echo "FAILED: $name (exit $status)" >&2
        exit "$status"
    fi
}

# Installing (pip, apt) waits on the network and the disk, linting on the CPU: on a
# fresh machine the installs run in the background while cargo checks and lints.
PREPARE_LOG="$(mktemp)"
(
    "$REPO_ROOT/infra/setup.sh"
    bash "$REPO_ROOT/rules/build-examples.sh" --packages-only
) >"$PREPARE_LOG" 2>&1 &
PREPARE_PID=$!
trap 'kill "$PREPARE_PID" 2>/dev/null || true; rm -f "$PREPARE_LOG"' EXIT

# Waits for the background installs and shows what they printed.
prepared() {
    local status=0
    wait "$PREPARE_PID" || status=$?
    cat "$PREPARE_LOG"
    return "$status"
}

# Clippy lints while the code compiles: clippy-driver stands in for rustc on the
# workspace's own crates, as `cargo clippy` does, but building instead of only checking.
# So the dependencies compile once, not once for clippy and again for the tests.
# CLIPPY_ARGS is how cargo-clippy hands the driver its lint flags (here -D warnings).
# Only the workspace's cargo runs get these variables: the example rules build with
# Debian's toolchain (rules/build-examples.sh).
CLIPPY_DRIVER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
linting() {
    env RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER" \
        CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

step "cargo fmt --check" cargo fmt --all -- --check
# This also builds target/debug/local-stack, which the HTTP tests, the browser tests and
# schemathesis start: its integration test (infra/local-stack/tests) needs the binary,
# so cargo builds it here with the workspace's features. A separate
# `cargo build -p local-stack` would resolve that package's features alone and compile
# a dozen dependencies and every workspace crate again.
step "build every target, clippy -D warnings" linting cargo test --workspace --all-targets --no-run
step "setup (in the background since the start)" prepared
# Any error or warning fails the step (template.yaml ignores no rule).
step "cfn-lint template.yaml" "$VENV/bin/cfn-lint" template.yaml
# moto_server.py's direct answers against moto's own serializer (docs/local-stack.md).
step "infra/test_moto_server.py" "$VENV/bin/python" "$REPO_ROOT/infra/test_moto_server.py"
step "rules/build-examples.sh" bash "$REPO_ROOT/rules/build-examples.sh"
# Four tests at a time over the HTTP binary's two stacks: many tests wait on the stream
# poller or a deadline, not on a core (docs/testing.md "How long it takes").
step "cargo test --workspace" linting cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
# The same example cases under wasmtime-py and the engine's runner (built just above).
step "rules: portability (wasmtime from PyPI)" "$VENV/bin/python" "$REPO_ROOT/rules/portability.py"
# The Rust SDK's own tests (its JSON reader, input, output, arena), natively with
# Debian's toolchain, the one the example rules build with.
step "rules: Rust SDK tests (Debian cargo)" bash "$REPO_ROOT/rules/build-examples.sh" --test-rust-sdk
# The TypeScript SDK's own tests (Node's test runner, with WASI).
sdk_assemblyscript_tests() {
    npm_ci_once "$REPO_ROOT/rules/sdk-assemblyscript"
    (cd "$REPO_ROOT/rules/sdk-assemblyscript" && npm test --silent)
}
step "rules: AssemblyScript SDK tests (npm test)" sdk_assemblyscript_tests
# The console in headless Chromium, through its UI (its own moto and local-stack).
step "browser tests (tests/browser/run.sh)" "$REPO_ROOT/tests/browser/run.sh"
# API fuzzing, bounded for CI (about a minute); docs/reliability.md has the longer run.
step "schemathesis (20 examples per operation)" linting env FUZZ_EXAMPLES=20 FUZZ_PREBUILT=1 "$REPO_ROOT/infra/fuzz-api.sh"
summary
