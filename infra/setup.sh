#!/usr/bin/env bash
# Installs what the local stack and the tests need beyond the Rust toolchain:
# a Python virtualenv at .venv with moto's server (a local DynamoDB API) and cfn-lint,
# and Debian's Chromium for the console's browser tests (tests/browser).
# Idempotent and quick when everything is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd() { command -v "$1" >/dev/null 2>&1; }

# curl: the scripts use it to probe and reset moto.
if need_cmd curl; then
    log "curl present"
else
    apt_install curl ca-certificates
    log "installed curl"
fi

if ! need_cmd python3; then
    apt_install python3 python3-venv
    log "installed python3 and python3-venv"
fi

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log ".venv present"
else
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 ships venv's ensurepip separately.
        rm -rf "$VENV"
        pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install python3-venv "python$pyver-venv" 2>/dev/null || apt_install python3-venv
        log "installed python3-venv"
        python3 -m venv "$VENV"
    fi
    log "created .venv with $(python3 --version)"
fi

pip_pin moto "$MOTO_VERSION" "moto[server]==$MOTO_VERSION"

# cfn-lint for template.yaml, pinned so a new rule release cannot fail CI by surprise.
pip_pin cfn-lint "$CFN_LINT_VERSION"

# wasmtime from PyPI: the example rules under a runtime that is not the product's
# (rules/portability.py, infra/test.sh).
pip_pin wasmtime "$WASMTIME_PY_VERSION"

# Chromium: the browser tests (tests/browser/run.sh) drive Debian's build headless.
if need_cmd chromium; then
    log "chromium present"
else
    apt_install chromium
    log "installed chromium"
fi
