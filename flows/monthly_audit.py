"""The audit as a Prefect flow: extract → load → audit → render, one task per stage.

Deployed twice from prefect.yaml: `monthly-audit/monthly` (scheduled after Patch Tuesday plus the
grace period) and `monthly-audit/on-demand` (any scope and as-of time). Parameters left at None fall
back (as do empty lists) to the HOTPATCH_AUDIT_* environment, then to the defaults in config.Settings.

Run once without a server:  python flows/monthly_audit.py
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import observe, tasks
from hotpatch_audit.config import ReportFormat, Settings
from hotpatch_audit.errors import HotpatchAuditError
from hotpatch_audit.pipeline import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    RunOutcome,
    RunRequest,
    check_render_settings,
    check_scheduled_request,
    describe_failure,
    fail_run,
    plan_run,
    run_turn,
    start_run,
)

Format = ReportFormat  # html, pdf, csv, parquet, jsonl, ocsf: the setting formats


def settings_from(**overrides: Any) -> Settings:
    """Settings with the flow parameters that were given (None or [] means: environment, then default)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None and v != []})


class RunIncompleteError(HotpatchAuditError):
    """The run closed incomplete: its reports are written (they say what is missing) and the flow run fails, as
    the CLI exits 1. Carries the outcome, so a parent flow (tenants-audit) still finds the report."""

    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__(f"run {outcome.run_id} is {outcome.status}: {outcome.error}")
        self.outcome = outcome


@flow(name="monthly-audit", on_failure=[observe.notify_failure], on_crashed=[observe.notify_failure])
def monthly_audit(
    source: Literal["demo", "snapshot", "arg"] | None = None,
    subscriptions: list[str] | None = None,
    management_groups: list[str] | None = None,
    tenants: list[str] | None = None,
    as_of: datetime | None = None,
    formats: list[Format] | None = None,
    language: Literal["en", "ja"] | None = None,
    timezone: str | None = None,
    demo_machines: int | None = None,
    snapshot_dir: Path | None = None,
    is_monthly: bool = True,
    ledger_path: Path | None = None,
    out_dir: Path | None = None,
    work_dir: Path | None = None,
    label: str | None = None,
) -> RunOutcome:
    """Audit one scope as of one time and write its reports; the run is recorded in the ledger.

    A monthly run (is_monthly, the scheduled deployment) must read Resource Graph (source arg) with its scope
    named; as_of defaults to the flow run's scheduled start time. `label` (a tenant's name in tenants-audit)
    keys the run's artifacts.
    """
    logger = get_run_logger()
    settings = settings_from(
        source=source,
        subscriptions=subscriptions,
        management_groups=management_groups,
        arg_tenants=tenants,
        formats=formats,
        language=language,
        timezone=timezone,
        demo_machines=demo_machines,
        snapshot_dir=snapshot_dir,
        ledger_path=ledger_path,
        out_dir=out_dir,
        work_dir=work_dir,
    )
    request = RunRequest(
        source=settings.source,
        subscriptions=tuple(settings.subscriptions),
        management_groups=tuple(settings.management_groups),
        tenants=tuple(settings.arg_tenants),
        as_of=as_of or observe.scheduled_as_of(),
        is_monthly=is_monthly,
        snapshot_dir=settings.snapshot_dir,
    )
    # Checked before anything is registered: bad input leaves the ledger as it was.
    check_scheduled_request(request)
    ctx = plan_run(settings, request)
    check_render_settings(settings)
    gate = observe.resource_graph_gate(settings)
    # Runs of the same scope and as-of take turns from registering to closing.
    with run_turn(settings, ctx, on_wait=logger.warning):
        start_run(settings, request, ctx)
        logger.info(
            "run %s: source=%s scope=%s as_of=%s", ctx.run_id, ctx.source, ctx.scope, ctx.as_of.isoformat()
        )
        try:
            extracted = tasks.extract(settings, ctx, gate)
            loaded = tasks.load(settings, ctx, extracted)
            status, findings = tasks.audit(settings, ctx, extracted.complete)
        except BaseException as exc:
            # The run is marked failed and its rows dropped; the previous good run stays the latest.
            fail_run(settings, ctx, exc)
            logger.error("run %s failed: %s", ctx.run_id, describe_failure(exc))
            raise
    paths = tasks.render(settings, ctx.run_id)
    outcome = RunOutcome(
        ctx.run_id, status, findings, paths, EXIT_OK if status == "succeeded" else EXIT_INCOMPLETE
    )
    if extracted.errors:
        outcome.error = "; ".join(f"{name}: {error}" for name, error in sorted(extracted.errors.items()))
    _summarize(outcome, extracted.rows, loaded.rows)
    observe.publish_run(settings, outcome, label=label)
    if outcome.exit_code != EXIT_OK:
        # Reports are written and say what is missing; the flow still fails, as the CLI exits non-zero.
        raise RunIncompleteError(outcome)
    return outcome


def _summarize(outcome: RunOutcome, extracted: dict[str, int], loaded: dict[str, int]) -> None:
    """Log the run's figures and attach them to the flow run as a markdown artifact."""
    logger = get_run_logger()
    logger.info(
        "run %s %s: %d findings, %d reports",
        outcome.run_id,
        outcome.status,
        outcome.findings,
        len(outcome.report_paths),
    )
    lines = [
        f"**Run** `{outcome.run_id}`: {outcome.status}, {outcome.findings:,} findings",
        "",
        "| query | rows extracted | rows loaded |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {rows:,} | {loaded.get(name, 0):,} |" for name, rows in sorted(extracted.items())]
    if outcome.error:
        lines += ["", f"**Incomplete:** {outcome.error}"]
    create_markdown_artifact("\n".join(lines), key="audit-run", description=f"Audit run {outcome.run_id}")


if __name__ == "__main__":
    monthly_audit(source="demo", demo_machines=500, is_monthly=False)
