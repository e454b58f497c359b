"""What the arg source reads: tenants, and in each the subscriptions, management groups or whole tenant.

A Scope of kind `tenants` names several tenants (`tenants_scope` builds it, `targets_for` reads it back);
any other scope is one target in the credential's home tenant. Every value that goes into a request body is
checked again here (`check_scope`), and subscriptions are sent in batches (`batched`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hotpatch_audit.errors import ConfigError
from hotpatch_audit.sources import Scope

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MG_RE = re.compile(r"^[A-Za-z0-9_.()-]{1,90}$")
_TENANT_RE = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                        r"|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63})$")


@dataclass(frozen=True)
class TenantTarget:
    """One tenant (None: the credential's home tenant) and the scope read in it."""

    tenant_id: str | None
    scope: Scope

    def requests(self, batch_size: int) -> list[tuple[list[str] | None, list[str] | None]]:
        """(subscriptions, management_groups) of each request: subscriptions batched, MGs together."""
        check_scope(self.scope)
        if self.scope.kind == "subscriptions":
            return [(batch, None) for batch in batched(self.scope.ids, batch_size)]
        if self.scope.kind == "management_groups":
            return [(None, list(self.scope.ids))]  # together: overlapping groups are de-duplicated by ARG
        return [(None, None)]


def check_scope(scope: Scope) -> None:
    """Re-check every value that goes into a request body."""
    if scope.kind == "subscriptions":
        if not scope.ids:
            raise ConfigError("subscription scope without subscriptions")
        bad = [s for s in scope.ids if not _GUID_RE.match(s)]
        if bad:
            raise ConfigError(f"not a subscription id (GUID): {bad[0]!r}")
    elif scope.kind == "management_groups":
        if not scope.ids:
            raise ConfigError("management group scope without management groups")
        bad = [m for m in scope.ids if not _MG_RE.match(m)]
        if bad:
            raise ConfigError(f"not a management group name: {bad[0]!r}")
    elif scope.kind == "tenant":
        if scope.ids:
            raise ConfigError("tenant scope takes no ids")
    else:
        raise ConfigError(f"the arg source cannot read scope kind {scope.kind!r}")


def tenants_scope(tenants: Mapping[str, Scope]) -> Scope:
    """A Scope for several tenants that survives Scope.key()/parse(): ids `TENANT` or `TENANT=kind:a;b`."""
    ids = []
    for tenant, scope in sorted(tenants.items()):
        if not _TENANT_RE.match(tenant):
            raise ConfigError(f"not a tenant id (GUID or domain): {tenant!r}")
        check_scope(scope)
        ids.append(tenant if scope.kind == "tenant" else f"{tenant}={scope.kind}:{';'.join(scope.ids)}")
    if not ids:
        raise ConfigError("no tenants given")
    return Scope("tenants", tuple(ids))


def targets_for(scope: Scope) -> list[TenantTarget]:
    """The tenants and scopes a Scope names (one target with the home tenant unless kind is `tenants`)."""
    if scope.kind != "tenants":
        check_scope(scope)
        return [TenantTarget(None, scope)]
    targets = []
    for item in scope.ids:
        tenant, _, rest = item.partition("=")
        if not _TENANT_RE.match(tenant):
            raise ConfigError(f"not a tenant id (GUID or domain): {tenant!r}")
        if rest:
            kind, _, ids = rest.partition(":")
            sub = Scope(kind, tuple(x for x in ids.split(";") if x))
        else:
            sub = Scope("tenant")
        check_scope(sub)
        targets.append(TenantTarget(tenant, sub))
    return targets


def batched(items: Sequence[str], size: int) -> list[list[str]]:
    """Split `items` into lists of at most `size`, in order."""
    if size < 1:
        raise ConfigError("batch size must be at least 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
