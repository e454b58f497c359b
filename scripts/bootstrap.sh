#!/usr/bin/env bash
# Set up everything hotpatch-audit needs on this machine, idempotently:
#   1. system libraries WeasyPrint and the fonts need (Debian/Ubuntu: apt-get; elsewhere: a message),
#   2. uv (pinned) in .tools/, 3. the locked Python packages in .venv/.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it skips what is there).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
PYTHON="${HOTPATCH_AUDIT_PYTHON:-python3}"

# Debian package names; the equivalents elsewhere are listed in README.md.
SYSTEM_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-noto-cjk poppler-utils)
SYSTEM_PACKAGES+=(${HOTPATCH_AUDIT_EXTRA_PACKAGES:-})

log() { printf '[bootstrap] %s\n' "$*" >&2; }

install_system_packages() {
  local missing=()
  if ! command -v dpkg-query >/dev/null 2>&1; then
    log "not a Debian-like system: install Pango >= 1.44, HarfBuzz (subset), DejaVu and Noto CJK fonts, poppler-utils yourself (see README)."
    return 0
  fi
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    [ -z "$pkg" ] && continue
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  log "installing system packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      log "need root to install: apt-get install ${missing[*]}"; return 1; fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_uv() {
  if [ -x "$ROOT/.tools/bin/uv" ] && "$ROOT/.tools/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
    return 0
  fi
  log "installing uv $UV_VERSION into .tools/"
  "$PYTHON" -m venv "$ROOT/.tools"
  "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
}

sync_python() {
  # --frozen: install exactly what uv.lock pins; never re-resolve on a user's machine.
  (cd "$ROOT" && UV_PYTHON_DOWNLOADS=never "$ROOT/.tools/bin/uv" sync --frozen --quiet --python "$PYTHON" "$@")
}

install_system_packages
install_uv
sync_python "$@"
