#!/usr/bin/env bash
# Bootstrap the Tombola development environment (idempotent).
#
#   1. Installs the Debian packages Tombola needs, if any is missing (apt-get update only then):
#        python3, python3-venv, softhsm2, and postgresql when PostgreSQL 15 is absent;
#        xvfb, xauth and the GL/SDL libraries the kivy wheel opens (the POS app's window tests);
#        chromium (the portal's browser tests drive it with Playwright; its own download is blocked).
#   2. Creates .venv with python3 (>= 3.11; override with PYTHON=/path/to/python3.x).
#   3. pip install -e '.[server,dev,aws]' into it (the base set alone is the POS device's; see pyproject).
#
# Step 3 is skipped when .venv/.bootstrap-<hash> exists, the hash covering pyproject.toml and this
# script, so a second run takes about a second. Delete .venv (or the stamp) to force a reinstall.
# As root no sudo is used; as another user, missing Debian packages are reported, not installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
MIN_PY="3.11"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------- Debian packages
pkg_installed() {
    # dpkg-query prints "install ok installed" only for fully installed packages.
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

have_pg15() { [ -x /usr/lib/postgresql/15/bin/postgres ]; }

wanted_packages() {
    echo python3 python3-venv softhsm2
    have_pg15 || echo postgresql
    # The POS app's window tests (part of make test): an X server, and what the kivy wheel's SDL2
    # opens at run time (GL/EGL/GLES dispatch, Mesa's llvmpipe renderer, mtdev for touch input).
    echo xvfb xauth libgl1 libegl1 libgles2 libgl1-mesa-dri libmtdev1
    # Receipt tests decode the printed QR codes with pyzbar, which loads libzbar at run time.
    echo libzbar0
    # bench/api.py loads the server from a second process with wrk.
    echo wrk
    # The portal's browser tests (part of make test): Playwright drives Debian's Chromium.
    echo chromium
}

ensure_debian_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "dpkg-query not found: not a Debian system, skipping system packages."
        return 0
    fi
    local missing=() pkg
    for pkg in $(wanted_packages); do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${missing[*]}
    Install them as root, then run this script again:
        apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # C.UTF-8 so that a PostgreSQL cluster created by the package install is UTF8, not SQL_ASCII.
    LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get update -qq
    LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --------------------------------------------------------------------------- virtualenv
py_ok() {
    # True when "$1" is a Python >= MIN_PY.
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= tuple(map(int, '$MIN_PY'.split('.'))) else 1)" \
        >/dev/null 2>&1
}

stamp_hash() {
    cat "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
}

ensure_venv() {
    local stamp="$VENV/.bootstrap-$(stamp_hash)"
    if [ -f "$stamp" ] && [ -x "$VENV/bin/python" ] && py_ok "$VENV/bin/python"; then
        return 0
    fi

    # Reuse a working .venv; recreate one that is broken, too old or without pip.
    if [ -e "$VENV" ]; then
        if ! py_ok "$VENV/bin/python" || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
            log "existing .venv is unusable (no Python >= $MIN_PY or no pip): recreating it"
            rm -rf "$VENV"
        fi
    fi
    if [ ! -e "$VENV" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set PYTHON=/path/to/python3.11+"
        py_ok "$PYTHON" || die "'$PYTHON' is $("$PYTHON" -V 2>&1); Tombola needs Python >= $MIN_PY (set PYTHON=...)"
        log "creating .venv with $("$PYTHON" -V 2>&1)"
        "$PYTHON" -m venv "$VENV" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
    fi

    log "installing tombola in editable mode with extras [server,dev,aws]"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$ROOT[server,dev,aws]"

    rm -f "$VENV"/.bootstrap-*
    touch "$stamp"
    log "done: $("$VENV/bin/python" -V 2>&1) in .venv"
}

ensure_debian_packages
ensure_venv
