#!/usr/bin/env bash
# The main job: set everything up, then run a full audit history on the built-in demo fleet.
# Writes out/ledger.duckdb and out/demo/{audit.html,audit.pdf,findings.csv}. Arguments are passed to
# `hotpatch-audit demo` (e.g. --months 12 --machines 2000 --tz Asia/Tokyo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# --inexact: a checkout that also runs the tests keeps its dev tools (uv sync would otherwise remove them, and
# the next test run install them again)
bash "$ROOT/scripts/bootstrap.sh" --no-dev --inexact
source "$ROOT/scripts/prefect-env.sh"
export MPLBACKEND=Agg
cd "$ROOT"
exec "$ROOT/.venv/bin/hotpatch-audit" demo --out out/demo "$@"
