# Quiet, offline Prefect environment for this checkout. Source it from anywhere:
#
#     . scripts/prefect-env.sh
#
# prefect.toml (repository root) holds the Prefect settings a TOML file can carry; this file adds what
# it cannot: DO_NOT_TRACK (read by Prefect's client outside its settings) and an absolute PREFECT_HOME
# (so the CLI finds it from any directory), and repeats the rest for shells outside the checkout.
# Values already in the environment win.
# No secrets here: Azure credentials come from azure-identity (see docs/prefect.md).

_hpa_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"

export PREFECT_HOME="${PREFECT_HOME:-$_hpa_root/.prefect}"
export DO_NOT_TRACK="${DO_NOT_TRACK:-1}"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
export PREFECT_LOGGING_EXTRA_LOGGERS="${PREFECT_LOGGING_EXTRA_LOGGERS:-hotpatch_audit}"
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-300}"
export PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS="${PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS:-false}"
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="${PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW:-ignore}"
# PREFECT_API_URL stays unset: flows then run against a temporary local server. Set it to a running
# server (`prefect server start` -> http://127.0.0.1:4200/api) before `prefect deploy` or a worker.

# PREFECT_HOME holds a SQLite database and logs: keep it out of git even without a .gitignore entry.
mkdir -p "$PREFECT_HOME"
[ -e "$PREFECT_HOME/.gitignore" ] || printf '*\n' >"$PREFECT_HOME/.gitignore"

unset _hpa_root
