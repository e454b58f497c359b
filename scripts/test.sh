#!/usr/bin/env bash
# Set everything up (system libraries, uv, locked packages incl. dev tools), then run the whole
# test suite. Arguments are passed to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The tests also need a browser: Debian's chromium (tests/test_html_browser.py drives it with Playwright).
HOTPATCH_AUDIT_EXTRA_PACKAGES="chromium ${HOTPATCH_AUDIT_EXTRA_PACKAGES:-}" bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/prefect-env.sh"
export MPLBACKEND=Agg
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
