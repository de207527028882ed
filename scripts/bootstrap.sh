#!/usr/bin/env bash
# Prepare a fresh clone for `make run` or `make test`; safe and fast to re-run.
#
#   scripts/bootstrap.sh run    venv + pinned deps + PostgreSQL/RabbitMQ for DATABASE_URL
#   scripts/bootstrap.sh test   same for TEST_DATABASE_URL, plus Debian chromium (best effort)
#
# Knobs: PYTHON (default python3), PARTSEMBLE_SKIP_CHROMIUM=1, and those of scripts/infra.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV=".venv"
STAMP="$VENV/.requirements.sha256"
PIP_LOG="$VENV/.pip-install.log"

log() { echo "bootstrap: $*" >&2; }
die() { echo "$*" >&2; exit 1; }

# Step 1: a Python 3.11+ interpreter must exist.
check_python() {
    command -v "$PYTHON" >/dev/null \
        || die "$PYTHON not found: install Python 3.11 (apt-get install python3 python3-venv)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" --version 2>&1) is too old: install Python 3.11 as $PYTHON (or set PYTHON=...)"
}

# Step 2: create .venv, or re-create it when its interpreter no longer runs.
ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    log "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" \
        || die "could not create $VENV with '$PYTHON -m venv': install python3-venv (apt-get install python3-venv)"
}

# Step 3: install requirements.txt, only when it changed since the last install.
ensure_requirements() {
    local want
    want="$(sha256sum requirements.txt | cut -d' ' -f1)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        return 0
    fi
    log "installing requirements.txt into $VENV (log: $PIP_LOG)"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -r requirements.txt >"$PIP_LOG" 2>&1; then
        tail -n 10 "$PIP_LOG" >&2
        die "pip install -r requirements.txt failed: see $PIP_LOG"
    fi
    echo "$want" > "$STAMP"
}

# Step 4: PostgreSQL and RabbitMQ reachable (started if needed).
ensure_infra() {
    bash scripts/infra.sh "$1"
}

# apt-get as root, or through passwordless sudo; no stdin, no prompts, output to $APT_LOG.
apt_get() {
    local sudo=()
    if ((EUID != 0)) && command -v sudo >/dev/null; then
        sudo=(sudo -n)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@" </dev/null >>"$APT_LOG" 2>&1
}

# Step 5 (test only): Debian chromium for browser tests; warn, never fail.
ensure_chromium() {
    [[ "${PARTSEMBLE_SKIP_CHROMIUM:-}" != 1 ]] || return 0
    [[ -x /usr/bin/chromium ]] && return 0
    if ! command -v apt-get >/dev/null; then
        log "WARNING: /usr/bin/chromium is missing and apt-get is not available: browser tests will fail; install chromium"
        return 0
    fi
    APT_LOG="$(mktemp "${TMPDIR:-/tmp}/partsemble-apt.XXXXXX.log")"
    log "installing chromium with apt-get (once; log: $APT_LOG)"
    # Try with the current package lists first; refresh them only if that fails.
    if apt_get install -y chromium || { apt_get update && apt_get install -y chromium; }; then
        return 0
    fi
    tail -n 5 "$APT_LOG" >&2 || true
    log "WARNING: could not install chromium (apt-get install -y chromium failed, see $APT_LOG): browser tests will fail"
}

# Step 6 (test only): axe-core, injected into the Sales tab by the browser tests (accessibility).
AXE_VERSION="4.14.1"
ensure_axe() {
    local dir="tests/browser/node"
    if [[ -f "$dir/node_modules/axe-core/axe.min.js" ]] \
        && grep -q "\"version\": \"$AXE_VERSION\"" "$dir/node_modules/axe-core/package.json"; then
        return 0
    fi
    if ! command -v npm >/dev/null; then
        log "WARNING: npm is missing: the accessibility check of the browser tests will fail; install nodejs and npm"
        return 0
    fi
    log "installing axe-core $AXE_VERSION into $dir (npm)"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "axe-core@$AXE_VERSION" >&2 \
        || log "WARNING: npm install axe-core@$AXE_VERSION failed: the accessibility check will fail"
}

main() {
    local mode="${1:-run}"
    [[ "$mode" == run || "$mode" == test ]] || die "usage: $0 run|test"
    check_python
    ensure_venv
    ensure_requirements
    ensure_infra "$mode"
    if [[ "$mode" == test ]]; then
        ensure_chromium
        ensure_axe
    fi
}

main "$@"
