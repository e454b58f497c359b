# Environment for running hotpatch-audit and Prefect quietly and offline (sourced by the scripts).
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/.prefect}"
export DO_NOT_TRACK=1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_LOGGING_EXTRA_LOGGERS="${PREFECT_LOGGING_EXTRA_LOGGERS:-hotpatch_audit}"
export MPLBACKEND=Agg
