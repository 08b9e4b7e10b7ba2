#!/usr/bin/env bash
# Builds every Lambda function of template.yaml for arm64 (provided.al2023) the way
# `sam build` does: in the function's CodeUri (its own crate, so cargo resolves that
# package's features alone), `cargo lambda build --release --arm64 --bin <Binary>`.
# Then prints each bootstrap's stripped size. Installs cargo-lambda and zig (PyPI:
# cargo-lambda, ziglang) into .venv and the aarch64-unknown-linux-gnu Rust target when
# missing. Not part of infra/test.sh: a cold build takes far longer than the rest of CI
# (see docs/deploying.md, "Builds and cold starts").
#
# Usage: infra/build-lambdas.sh [BINARY...]   (default: every function of template.yaml)
# The bootstraps land in $CARGO_TARGET_DIR/lambda/<binary>/bootstrap (target/ by default).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CARGO_LAMBDA_VERSION="1.9.2"
ZIGLANG_VERSION="0.14.1"
TARGET="aarch64-unknown-linux-gnu"

# "<binary> <CodeUri>" for every function of template.yaml (Binary comes before CodeUri).
declare -A code_uri
ALL_BINARIES=()
while read -r binary dir; do
    code_uri[$binary]="$dir"
    ALL_BINARIES+=("$binary")
done < <(awk '$1 == "Binary:" { b = $2 } $1 == "CodeUri:" && b != "" { print b, $2; b = "" }' template.yaml)
[ "${#ALL_BINARIES[@]}" -gt 0 ] || die "found no Binary/CodeUri pairs in template.yaml"

"$REPO_ROOT/infra/setup.sh" >/dev/null
pip_pin cargo-lambda "$CARGO_LAMBDA_VERSION"
pip_pin ziglang "$ZIGLANG_VERSION"
# cargo finds `cargo-lambda` on PATH; cargo-zigbuild (inside it) runs `python3 -m ziglang`.
export PATH="$VENV/bin:$PATH"

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    log "adding the Rust target $TARGET"
    rustup target add "$TARGET" \
        || die "could not add the Rust target $TARGET (offline, or rustup missing?); run \`rustup target add $TARGET\` in $REPO_ROOT and retry"
fi

binaries=("$@")
[ "${#binaries[@]}" -gt 0 ] || binaries=("${ALL_BINARIES[@]}")
out_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/lambda"
strip_tool="$(command -v llvm-strip || command -v aarch64-linux-gnu-strip || true)"

total_start=$SECONDS
declare -A seconds
for binary in "${binaries[@]}"; do
    dir="${code_uri[$binary]:-}"
    [ -n "$dir" ] || die "template.yaml deploys no function with Binary: $binary"
    start=$SECONDS
    log "(cd $dir && cargo lambda build --release --arm64 --bin $binary)"
    (cd "$REPO_ROOT/$dir" && cargo lambda build --release --arm64 --bin "$binary")
    seconds[$binary]=$((SECONDS - start))
done

echo
printf '%-10s %12s %9s %8s  %s\n' binary "bytes" "MB" "build" "stripped size (profile.release strips; checked with ${strip_tool:-no strip tool})"
for binary in "${binaries[@]}"; do
    bootstrap="$out_dir/$binary/bootstrap"
    [ -f "$bootstrap" ] || die "no bootstrap at $bootstrap"
    bytes="$(stat -c %s "$bootstrap")"
    if [ -n "$strip_tool" ]; then
        tmp="$(mktemp)"
        "$strip_tool" --strip-all -o "$tmp" "$bootstrap"
        bytes="$(stat -c %s "$tmp")"
        rm -f "$tmp"
    fi
    printf '%-10s %12s %9s %7ss\n' "$binary" "$bytes" \
        "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')" "${seconds[$binary]}"
done
log "built ${#binaries[@]} function(s) in $((SECONDS - total_start))s"
