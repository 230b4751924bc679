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
    # One stamp for both set-ups: "<hash of every pyproject> <what was installed>". The test
    # set-up installs a superset of the demo's, so after ./scripts/test, ./scripts/demo
    # installs nothing; after ./scripts/demo, ./scripts/test adds its part once.
    local stamp="$VENV/.corecall-installed"
    local projects=("$ROOT/pyproject.toml" "$ROOT"/plugins/*/pyproject.toml
                    "$ROOT/asterisk/pyproject.toml" "$ROOT/tests/support/pyproject.toml")
    local hash
    hash="$(cat "${projects[@]}" 2>/dev/null | sha256sum | cut -c1-16)"
    local have_stamp=""
    [ -f "$stamp" ] && have_stamp="$(cat "$stamp")"
    if [ "$have_stamp" = "$hash test" ] || [ "$have_stamp" = "$hash $1" ]; then
        return 0
    fi
    echo "==> installing corecall and its plugins into $VENV (progress below; full log in $VENV/pip-install.log)"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    local extras=""
    [ "$1" = test ] && extras="[test]"
    local args=(-e "$ROOT$extras")
    for p in "$ROOT"/plugins/*/; do args+=(-e "$p"); done
    # The test set-up adds the lab (asterisk/) and the test helpers (tests/support/), both
    # packages installed like the plugins, so nothing is loaded by path.
    [ "$1" = test ] && args+=(-e "$ROOT/asterisk" -e "$ROOT/tests/support")
    # Progress: one short line per package fetched or built, with the elapsed time, so a slow
    # machine never looks stuck; the whole pip output goes to the log.
    local start=$SECONDS
    set +e
    "$VENV/bin/python" -m pip install --progress-bar off "${args[@]}" 2>&1 \
        | tee "$VENV/pip-install.log" \
        | while read -r line; do  # read without IFS= drops the leading indentation
            case "$line" in
                Obtaining*|Collecting*|"Building editable"*|"Building wheel"*|\
                "Installing build dependencies: started"|"Installing collected"*|Successfully*)
                    printf '    [%3ss] %s\n' "$((SECONDS - start))" "${line:0:100}" ;;
            esac
        done
    local rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" != 0 ]; then
        cat "$VENV/pip-install.log" >&2
        echo "!! pip install failed (log above, also in $VENV/pip-install.log)" >&2
        exit 1
    fi
    echo "$hash $1" >"$stamp"
}
