"""What Prefect adds around a run: artifacts, a failure notification, and the Resource Graph rate limit that
every run of one identity shares. Prefect-only helpers; the pipeline itself never imports Prefect.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_UI_URL

from hotpatch_audit.config import Settings
from hotpatch_audit.pipeline import RunOutcome, run_figures

log = logging.getLogger("hotpatch_audit.flows")
WEBHOOK_TIMEOUT_S = 15.0


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) from free text such as a tenant name."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(p for p in parts if p).lower())).strip("-")


def scheduled_as_of() -> datetime:
    """The flow run's scheduled start time (UTC, whole seconds): the as-of of a scheduled run, even when a busy
    worker starts it late; for a run started by hand, the time it was requested."""
    start = current_flow_run.scheduled_start_time
    return datetime.fromtimestamp(start.timestamp(), UTC).replace(microsecond=0)


def publish_run(settings: Settings, outcome: RunOutcome, *, label: str | None = None) -> None:
    """Attach the run's key figures and completeness (a table) and a link to its report to the flow run."""
    rows = [{"figure": name, "value": value} for name, value in run_figures(settings, outcome.run_id)]
    key = artifact_key("audit-figures", label or "")
    create_table_artifact(rows, key=key, description=f"Audit run {outcome.run_id}: key figures and completeness"
                          + (f" ({label})" if label else ""))
    report = next((p for p in outcome.report_paths if p.name == "audit.html"), None)
    report = report or next((p for p in outcome.report_paths if p.name == "audit.pdf"), None)
    if report is None:
        return
    if settings.report_base_url:
        link = f"{settings.report_base_url.rstrip('/')}/{report.parent.name}/{report.name}"
    else:
        link = report.resolve().as_uri()
    create_link_artifact(link, link_text=f"{report.name} of {outcome.run_id}",
                         key=artifact_key("audit-report", label or ""),
                         description="The run's report" + (f" ({label})" if label else ""))


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure / on_crashed hook: POST the failed or incomplete run to the notify_webhook_url setting (the
    worker's environment). A notification that cannot be sent is logged, never raised: the run's own state
    stays what it was."""
    settings = Settings()
    if settings.notify_webhook_url is None:
        return
    url = settings.notify_webhook_url.get_secret_value()
    ui = PREFECT_UI_URL.value()
    link = f"{ui.rstrip('/')}/runs/flow-run/{flow_run.id}" if ui else None
    message = (getattr(state, "message", None) or "").strip()
    text = f"hotpatch-audit: flow run {flow_run.name} of {flow.name} is {state.type.value}" + (
        f": {message}" if message else "") + (f" ({link})" if link else "")
    payload = {"text": text[:4000], "flow": flow.name, "flow_run": flow_run.name, "flow_run_id": str(flow_run.id),
               "state": state.type.value, "message": message[:4000], "url": link}
    try:
        httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as exc:
        # the URL is a secret: name the failure, not the address
        log.error("the failure notification could not be sent to notify_webhook_url: %s", type(exc).__name__)


def ensure_rate_limit(name: str, burst: int, per_second: float) -> None:
    """Create the global rate limit `name` unless it exists (an existing one keeps its values)."""
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=burst, slot_decay_per_second=per_second))
            except ObjectAlreadyExists:
                return  # another run created it a moment ago
            log.info("created the Prefect rate limit %s: %d slots, %.2f per second", name, burst, per_second)
            return
    if not limit.slot_decay_per_second:
        raise ValueError(f"the Prefect concurrency limit {name!r} is not a rate limit (slot decay 0); "
                         "give it a slot decay or set arg_rate_limit_name to another name")


def resource_graph_gate(settings: Settings) -> Callable[[], None] | None:
    """For source arg: a callable that takes one slot of the identity's shared Prefect rate limit, given to the
    Resource Graph client to call before each request (arg_rate_limit_name; empty: None, no shared limit)."""
    name = settings.arg_rate_limit_name
    if settings.source != "arg" or not name:
        return None
    ensure_rate_limit(name, settings.arg_rate_limit_burst, settings.arg_rate_limit_per_second)
    timeout = settings.arg_max_retry_seconds

    def gate() -> None:
        rate_limit(name, occupy=1, timeout_seconds=timeout, strict=True)

    get_run_logger().info("Resource Graph requests share the Prefect rate limit %s", name)
    return gate


def report_folder(paths: Sequence[Path]) -> Path | None:
    """The run's report folder: where its manifest.json (written last) is."""
    return next((p.parent for p in reversed(paths) if p.name == "manifest.json"), None)
