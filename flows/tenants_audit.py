"""Many tenants: one child `monthly-audit` run per tenant, each with its own ledger and report, then one roll-up.

For a service provider who audits several customers. Every child reads Resource Graph (source arg) through the
same shared Prefect rate limit (setting arg_rate_limit_name), so all runs of one identity stay within Resource
Graph's quota together, however many run at once. The roll-up (hotpatch_audit.rollup) reads the children's
Parquet exports together; it never opens their ledgers. Deployed as `tenants-audit/monthly-tenants` in
prefect.yaml; the tenants come from a YAML file on the worker or the `tenants` parameter (docs/prefect.md).

Layout under base_dir (default out/tenants):

    <name>/ledger.duckdb            the tenant's ledger
    <name>/reports/<run id>/        the tenant's report folder (audit.html, audit.pdf, exports, manifest.json)
    <name>/work                     the tenant's scratch space
    rollup/<as-of date>/            rollup.html, rollup.pdf, rollup.csv, rollup.parquet, manifest.json
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows import observe
from flows.monthly_audit import Format, RunIncompleteError, monthly_audit, settings_from
from hotpatch_audit.config import check_time_zone
from hotpatch_audit.errors import ConfigError, HotpatchAuditError
from hotpatch_audit.pipeline import describe_failure
from hotpatch_audit.sources import Scope

MAX_PARALLEL = 3  # tenants audited at once by default; the shared rate limit paces their requests together
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Tenant(BaseModel):
    """One customer: a name for its folder and reports, and what to read (a tenant id, or its subscriptions or
    management groups as the provider's identity sees them, e.g. through Azure Lighthouse)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Folder and report name: letters, digits, dot, dash, underscore (max 63).")
    tenant_id: str | None = Field(None, description="Entra tenant id (GUID) or domain, read whole.")
    subscriptions: list[str] = Field(default_factory=list, description="Subscription ids in scope.")
    management_groups: list[str] = Field(default_factory=list, description="Management groups in scope.")
    language: Literal["en", "ja"] | None = Field(None, description="Report language for this tenant.")
    timezone: str | None = Field(None, description="Report time zone for this tenant (IANA name).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value in {".", ".."} or value.lower() == "rollup":
            raise ValueError(f"{value[:70]!r} is not a tenant name: letters, digits, . - _ (max 63), not 'rollup'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)

    def scope(self) -> dict[str, list[str]]:
        """The child run's scope parameters (one of tenants, subscriptions, management groups)."""
        given = [bool(self.tenant_id), bool(self.subscriptions), bool(self.management_groups)]
        if sum(given) != 1:
            raise ConfigError(f"tenant {self.name}: give exactly one of tenant_id, subscriptions, management_groups")
        if self.tenant_id:
            return {"tenants": [self.tenant_id]}
        if self.subscriptions:
            return {"subscriptions": self.subscriptions}
        return {"management_groups": self.management_groups}


class TenantResult(BaseModel):
    """What one tenant's child run left: its status, run and report folder (None when nothing was written)."""

    name: str
    status: str
    run_id: str | None = None
    report_dir: Path | None = None
    error: str | None = None


def read_tenants(path: Path) -> list[Tenant]:
    """Read and check a tenants file: `tenants:` followed by a list of Tenant entries (YAML)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: tenants file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tenants"), list):
        raise ConfigError(f"{path}: expected a mapping with a `tenants:` list")
    try:
        return [Tenant.model_validate(entry) for entry in data["tenants"]]
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check_tenants(tenants: list[Tenant]) -> list[Tenant]:
    """At least one tenant, unique names (case-insensitive: they become folders), each with one scope."""
    if not tenants:
        raise ConfigError("no tenants: give the tenants parameter or a tenants_file")
    seen: set[str] = set()
    for tenant in tenants:
        tenant.scope()
        Scope.for_azure(tenant.subscriptions, tenant.management_groups)  # GUIDs and group names, checked up front
        if tenant.name.lower() in seen:
            raise ConfigError(f"tenant name {tenant.name!r} is given twice")
        seen.add(tenant.name.lower())
    return tenants


@task(name="audit-tenant", task_run_name="audit-{tenant.name}", cache_policy=NO_CACHE)
def audit_tenant(
    tenant: Tenant, base_dir: Path, as_of: datetime, is_monthly: bool, formats: list[Format] | None,
    language: str | None, timezone: str | None,
) -> TenantResult:
    """One child monthly-audit run for the tenant; never raises, so every tenant is rolled up."""
    folder = base_dir / tenant.name
    child = monthly_audit.with_options(flow_run_name=f"{tenant.name}-{as_of:%Y-%m-%d}")
    try:
        outcome = child(
            source="arg", **tenant.scope(), as_of=as_of, is_monthly=is_monthly, formats=formats,
            language=tenant.language or language, timezone=tenant.timezone or timezone,
            ledger_path=folder / "ledger.duckdb", out_dir=folder / "reports", work_dir=folder / "work",
            label=tenant.name,
        )
    except RunIncompleteError as exc:
        out = exc.outcome
        return TenantResult(name=tenant.name, status=out.status, run_id=out.run_id,
                            report_dir=observe.report_folder(out.report_paths), error=out.error)
    except Exception as exc:  # noqa: BLE001 - the tenant failed; the others go on and the parent fails at the end
        return TenantResult(name=tenant.name, status="failed", error=describe_failure(exc))
    return TenantResult(name=tenant.name, status=outcome.status, run_id=outcome.run_id,
                        report_dir=observe.report_folder(outcome.report_paths))


@flow(name="tenants-audit", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL),
      on_failure=[observe.notify_failure], on_crashed=[observe.notify_failure])
def tenants_audit(
    tenants: list[Tenant] | None = None,
    tenants_file: Path | None = None,
    base_dir: Path | None = None,
    as_of: datetime | None = None,
    is_monthly: bool = True,
    formats: list[Format] | None = None,
    language: Literal["en", "ja"] | None = None,
    timezone: str | None = None,
) -> list[TenantResult]:
    """Audit every tenant (at most MAX_PARALLEL at once), then write the roll-up across them.

    All children share one as-of: the given one, else this flow run's scheduled start time. The flow run fails
    when any tenant failed or ended incomplete, after the roll-up is written (it shows which)."""
    logger = get_run_logger()
    settings = settings_from(language=language, timezone=timezone)
    given = list(tenants or []) + (read_tenants(settings.path(tenants_file)) if tenants_file else [])
    check_tenants(given)
    root = settings.path(base_dir or Path("out/tenants"))
    when = as_of or observe.scheduled_as_of()
    logger.info("auditing %d tenants as of %s into %s", len(given), when.isoformat(), root)
    futures = [audit_tenant.submit(t, root, when, is_monthly, formats, language, timezone) for t in given]
    results = [f.result() for f in futures]

    rolled = {r.name: r.report_dir for r in results if r.report_dir is not None}
    rollup_paths: list[Path] = []
    if rolled:
        from hotpatch_audit.rollup import rollup

        rollup_paths = rollup(rolled, root / "rollup" / f"{when:%Y-%m-%d}", formats=settings.formats,
                              language=settings.language, timezone=settings.timezone)
        logger.info("roll-up of %d tenants: %s", len(rolled), ", ".join(p.name for p in rollup_paths))
    create_table_artifact(
        [{"tenant": r.name, "status": r.status, "run": r.run_id or "", "report": str(r.report_dir or ""),
          "problem": (r.error or "")[:300]} for r in results],
        key="tenants-audit", description=f"Tenants audited as of {when:%Y-%m-%d %H:%M} UTC")
    bad = [r for r in results if r.status != "succeeded"]
    if bad:
        raise HotpatchAuditError(
            f"{len(bad)} of {len(results)} tenants did not succeed: "
            + "; ".join(f"{r.name} {r.status}" + (f" ({r.error[:200]})" if r.error else "") for r in bad))
    return results
