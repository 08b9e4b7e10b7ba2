#!/usr/bin/env bash
# Builds the example rules into $RULES_WASM_DIR (default: <repo>/target/rules-wasm):
#   tier-rust.wasm  with Debian's rustc 1.63 for wasm32-wasi, offline (the SDK has no
#                   dependencies; it is no_std there, std linked only for its panic
#                   handlers); first-allocation.wasm the same way (rules/sdk-rust/checks)
#   tier-c.wasm, sales-tier-c.wasm  with Debian's clang + lld + wasi-libc
#   tier-assemblyscript.wasm  with the AssemblyScript compiler from npm (Node.js >= 20),
#                   pinned by rules/examples/tier-assemblyscript/package-lock.json
# Installs the Debian packages it needs when missing (non-interactive, as root); with
# --packages-only it does only that. Skips a module whose output is newer than all of
# its sources. With --test-rust-sdk it runs the Rust SDK's own tests instead (natively,
# with the same toolchain).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# log and npm_ci_once
source "$repo/infra/lib.sh"
out="${RULES_WASM_DIR:-$repo/target/rules-wasm}"
rules="$repo/rules"

packages=(rustc cargo libstd-rust-dev-wasm32 clang lld wasi-libc libclang-rt-dev-wasm32)

install_missing_packages() {
    local missing=()
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "build-examples: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# True when $1 exists and is newer than every file under the other arguments.
up_to_date() {
    local target="$1"
    shift
    [ -f "$target" ] || return 1
    [ -z "$(find "$@" -newer "$target" -type f -print -quit)" ]
}

# debian_cargo DIR ARGS...: Debian's cargo in DIR, offline, with a private CARGO_HOME
# (so ~/.cargo is left alone) and Debian's binaries by absolute path: rustup's shims
# (earlier in PATH) would pick the repo's pinned toolchain, which has no wasm32-wasi std.
debian_cargo() {
    local dir="$1"
    shift
    local cargo_home="$out/.cargo-home"
    mkdir -p "$cargo_home"
    printf '[net]\noffline = true\n' >"$cargo_home/config.toml"
    (cd "$dir" &&
        env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_BUILD_TARGET \
            CARGO_HOME="$cargo_home" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
            /usr/bin/cargo "$@")
}

# build_rust NAME DIR: builds $out/NAME.wasm from the Rust crate in DIR (the package
# NAME), with the SDK's sources among its inputs.
build_rust() {
    local name="$1" dir="$2"
    local target="$out/$name.wasm"
    local sources=("$rules/sdk-rust/src" "$rules/sdk-rust/Cargo.toml"
                   "$dir/src" "$dir/Cargo.toml" "$dir/.cargo")
    if up_to_date "$target" "${sources[@]}"; then
        echo "build-examples: $name.wasm is up to date"
        return
    fi
    debian_cargo "$dir" build --quiet --release --target wasm32-wasi \
        --target-dir "$out/cargo-target"
    cp "$out/cargo-target/wasm32-wasi/release/$name.wasm" "$target"
    echo "build-examples: built $target"
}

# build_c NAME SOURCE: builds $out/NAME.wasm from rules/examples/NAME/SOURCE.
build_c() {
    local name="$1" source="$2"
    local target="$out/$name.wasm"
    local sources=("$rules/sdk-c" "$rules/examples/$name")
    if up_to_date "$target" "${sources[@]}"; then
        echo "build-examples: $name.wasm is up to date"
        return
    fi
    # Debian installs wasi-libc as /usr/include/wasm32-wasi and
    # /usr/lib/wasm32-wasi, which is what clang expects with --sysroot=/usr.
    clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
        -I "$rules/sdk-c" -Wl,--strip-all \
        -o "$target" "$rules/examples/$name/$source"
    echo "build-examples: built $target"
}

build_assemblyscript() {
    local name=tier-assemblyscript
    local dir="$rules/examples/$name" sdk="$rules/sdk-assemblyscript"
    local target="$out/$name.wasm"
    local sources=("$sdk/index.ts" "$sdk/assembly" "$sdk/package.json"
                   "$dir/assembly" "$dir/asconfig.json" "$dir/package.json" "$dir/package-lock.json")
    if up_to_date "$target" "${sources[@]}"; then
        echo "build-examples: $name.wasm is up to date"
        return
    fi
    if ! command -v npm >/dev/null; then
        echo "build-examples: npm is missing; $name needs Node.js >= 20 and npm" >&2
        return 1
    fi
    npm_ci_once "$dir"
    # The release target of asconfig.json: -O3, the stub runtime, the WASI shim.
    (cd "$dir" && node_modules/.bin/asc assembly/index.ts --config asconfig.json \
        --target release --outFile "$target")
    echo "build-examples: built $target"
}

install_missing_packages
[ "${1:-}" = "--packages-only" ] && exit 0
mkdir -p "$out"
if [ "${1:-}" = "--test-rust-sdk" ]; then
    # Formatting too: the SDK and the example are outside the workspace `cargo fmt`
    # checks (rustup's rustfmt, with their edition). rustfmt follows `mod` items, so
    # lib.rs covers every file of the SDK.
    rustfmt --edition 2021 --check "$rules/sdk-rust/src/lib.rs" \
        "$rules/examples/tier-rust/src/main.rs" \
        "$rules/sdk-rust/checks/first-allocation/src/main.rs"
    debian_cargo "$rules/sdk-rust" test --quiet --target-dir "$out/sdk-rust-tests"
    exit
fi
build_rust tier-rust "$rules/examples/tier-rust"
# Not an example: a check of the SDK on wasm32-wasi (its cases are the `sdk-rust` suite).
build_rust first-allocation "$rules/sdk-rust/checks/first-allocation"
build_c tier-c tier.c
build_c sales-tier-c sales_tier.c
build_assemblyscript
