"""A local Azure Resource Graph emulator (HTTPS) for tests, the demo and extraction benchmarks.

`ResourceGraphEmulator(db_path, ...)` answers `POST /providers/Microsoft.ResourceGraph/resources` like the
real service, running the request's KQL with duckdb-kql over the Resource Graph tables of a DuckDB file,
with $skipToken paging, both result formats, a per-identity quota, latency, fault injection and a request log.
`serve(...)` runs it in the foreground (the `hotpatch-audit emulator` command).
"""

from __future__ import annotations

from hotpatch_audit.demo.emulator.engine import ArgRequestError, QueryEngine, breaks_paging
from hotpatch_audit.demo.emulator.policy import (
    FAULT_KINDS,
    EmulatorStats,
    Fault,
    FaultInjector,
    IdentityStats,
    Quota,
    format_resets_after,
    identity_of,
)
from hotpatch_audit.demo.emulator.server import (
    ARG_PATH,
    QUOTA_REMAINING,
    QUOTA_RESETS_AFTER,
    SUBSCRIPTION_LIMIT_HIT,
    ResourceGraphEmulator,
    decode_skip_token,
    encode_skip_token,
    serve,
)

__all__ = [
    "ARG_PATH", "FAULT_KINDS", "QUOTA_REMAINING", "QUOTA_RESETS_AFTER", "SUBSCRIPTION_LIMIT_HIT",
    "ArgRequestError", "EmulatorStats", "Fault", "FaultInjector", "IdentityStats", "QueryEngine", "Quota",
    "ResourceGraphEmulator", "breaks_paging", "decode_skip_token", "encode_skip_token", "format_resets_after",
    "identity_of", "serve",
]
