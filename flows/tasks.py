"""Prefect tasks: one per pipeline stage, each a thin wrapper over hotpatch_audit.pipeline.

Orchestration only: names, retries, timeouts, caching. The work (and its logging) lives in the library;
every task body is a call or two, so the CLI and the flows run the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from hotpatch_audit import pipeline
from hotpatch_audit.config import Settings
from hotpatch_audit.errors import AuthError, ConfigError, QueryError, SnapshotError
from hotpatch_audit.ledger import latest_run, open_reader
from hotpatch_audit.pipeline import ExtractResult, LoadResult, RunContext

# Every stage writes files or the ledger, so a cached result would skip real work: no caching.
# Timeouts are generous (a large tenant on a busy machine); they catch hangs, not slow runs.
EXTRACT_TIMEOUT_S = 2 * 3600
LOAD_TIMEOUT_S = 3600
AUDIT_TIMEOUT_S = 3600
RENDER_TIMEOUT_S = 3600


def _transient(task: Task[..., object], task_run: TaskRun, state: State[object]) -> bool:
    """Retry a failed extract unless the failure is one a retry cannot fix: a bad scope, query or snapshot, or
    a credential or permission Resource Graph refused (AuthError: fails in seconds, naming the credential chain)."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, AuthError | ConfigError | QueryError | SnapshotError | FileNotFoundError)


@task(
    name="extract",
    task_run_name="extract-{ctx.run_id}",
    retries=3,
    retry_delay_seconds=[30, 120, 300],
    retry_condition_fn=_transient,
    timeout_seconds=EXTRACT_TIMEOUT_S,
    cache_policy=NO_CACHE,
)
def extract(settings: Settings, ctx: RunContext, gate: Callable[[], None] | None = None) -> ExtractResult:
    """Run every KQL file through the run's source into a snapshot directory; `gate` (source arg) takes a slot
    of the shared Resource Graph rate limit before each request."""
    return pipeline.extract_stage(settings, ctx, before_request=gate)


@task(name="load", task_run_name="load-{ctx.run_id}", timeout_seconds=LOAD_TIMEOUT_S, cache_policy=NO_CACHE)
def load(settings: Settings, ctx: RunContext, extracted: ExtractResult) -> LoadResult:
    """Load the snapshot atomically into the ledger."""
    return pipeline.load_stage(settings, ctx, extracted)


@task(
    name="audit", task_run_name="audit-{ctx.run_id}", timeout_seconds=AUDIT_TIMEOUT_S, cache_policy=NO_CACHE
)
def audit(settings: Settings, ctx: RunContext, complete: bool) -> tuple[str, int]:
    """Materialize the run's findings and close it; return (status, findings)."""
    return pipeline.audit_stage(settings, ctx, complete)


@task(name="render", task_run_name="render-{run_id}", timeout_seconds=RENDER_TIMEOUT_S, cache_policy=NO_CACHE)
def render(settings: Settings, run_id: str, out_dir: Path | None = None) -> list[Path]:
    """Write the run's reports and exports (html, pdf, csv, parquet as configured), then SHA256SUMS and
    manifest.json; return their paths, manifest.json last."""
    return pipeline.render_stage(settings, run_id, out_dir)


@task(name="pick-run", timeout_seconds=RENDER_TIMEOUT_S, cache_policy=NO_CACHE)
def pick_run(settings: Settings) -> str | None:
    """The ledger's latest good run (succeeded or incomplete), or None."""
    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds) as con:
        return latest_run(con)
