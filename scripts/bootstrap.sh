#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: system packages (when root on Debian),
# the project virtualenv (.venv) and corecall with its built-in plugin distributions.
# Idempotent: a second run only checks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CORECALL_VENV:-$ROOT/.venv}"

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    # Install Debian packages when we can (root + apt); otherwise say what is missing.
    [ "$#" -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "==> installing Debian packages: $*"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$@" >/dev/null
    else
        echo "!! missing system packages: $* (install them as root: apt-get install $*)" >&2
    fi
}

bootstrap_python() {
    local py="${PYTHON:-python3}"
    if ! have "$py"; then apt_install python3 python3-venv python3-pip; fi
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "!! corecall needs Python 3.11 or newer; $py is $("$py" --version 2>&1)" >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            apt_install python3-venv
            rm -rf "$VENV"
            "$py" -m venv "$VENV"
        fi
    fi
    local stamp="$VENV/.corecall-installed"
    local inputs
    # The test set-up adds the lab (asterisk/) and the test helpers (tests/support/), both
    # packages installed like the plugins, so nothing is loaded by path.
    local extra_dists=()
    [ "$1" = test ] && extra_dists=("$ROOT/asterisk" "$ROOT/tests/support")
    local projects=("$ROOT/pyproject.toml" "$ROOT"/plugins/*/pyproject.toml)
    for d in "${extra_dists[@]}"; do projects+=("$d/pyproject.toml"); done
    inputs="$(cat "${projects[@]}" | sha256sum | cut -c1-16)$1"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
        echo "==> installing corecall and its plugins into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        local extras=""
        [ "$1" = test ] && extras="[test]"
        local args=(-e "$ROOT$extras")
        for p in "$ROOT"/plugins/*/ "${extra_dists[@]}"; do args+=(-e "$p"); done
        # Quiet unless it fails: setuptools' editable-install notices are noise here.
        if ! "$VENV/bin/python" -m pip install -q "${args[@]}" >"$VENV/pip-install.log" 2>&1; then
            cat "$VENV/pip-install.log" >&2
            echo "!! pip install failed (log above, also in $VENV/pip-install.log)" >&2
            exit 1
        fi
        echo "$inputs" >"$stamp"
    fi
}
