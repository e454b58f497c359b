"""The production Azure Resource Graph source (`--source arg`): every row of every query, or a clear error.

Layout (each module imports only those above it, and nothing from hotpatch_audit.demo):

- `credentials`: StaticTokenCredential, TenantCredential, clean_token, redact, the DefaultAzureCredential chain
- `options`: ArgOptions (cloud, endpoint, TLS, token, batching, retries, before_request), check_endpoint, clouds
- `pacer`: quota headers (QuotaInfo), Retry-After, backoff, and QuotaPacer spreading requests over the quota
- `tenants`: TenantTarget, targets_for, tenants_scope, check_scope, batched (what each request reads)
- `paging`: ArgSource, through azure-mgmt-resourcegraph: pages, fetch, attempts, retries, errors

Import from here (`from hotpatch_audit.arg import ArgSource`); the modules are the layout, not the interface.
"""

from __future__ import annotations

from hotpatch_audit.arg.credentials import StaticTokenCredential, TenantCredential, clean_token, redact
from hotpatch_audit.arg.options import CLOUDS, MAX_BATCH, PAGE_SIZE, ArgOptions, check_endpoint
from hotpatch_audit.arg.pacer import (
    PacerStats,
    QuotaInfo,
    QuotaPacer,
    backoff_delay,
    parse_retry_after,
    parse_timespan,
)
from hotpatch_audit.arg.paging import ArgSource, ArgStats, IncompleteResultError
from hotpatch_audit.arg.tenants import TenantTarget, batched, check_scope, targets_for, tenants_scope

__all__ = [
    "CLOUDS", "MAX_BATCH", "PAGE_SIZE", "ArgOptions", "ArgSource", "ArgStats", "IncompleteResultError", "PacerStats",
    "QuotaInfo", "QuotaPacer", "StaticTokenCredential", "TenantCredential", "TenantTarget", "backoff_delay",
    "batched", "check_endpoint", "check_scope", "clean_token", "parse_retry_after", "parse_timespan", "redact",
    "targets_for", "tenants_scope",
]
