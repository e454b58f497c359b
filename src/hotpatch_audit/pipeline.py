"""The audit pipeline as plain functions, one per stage: extract → load → audit → render.

The CLI calls run_audit(); the Prefect flows call the stage functions one task each.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from hotpatch_audit import __version__
from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, HotpatchAuditError, SourceError
from hotpatch_audit.extract import Snapshot, extract_to_snapshot
from hotpatch_audit.sources import EmulatedDemoSource, Scope, SnapshotSource, Source

if TYPE_CHECKING:
    from hotpatch_audit.waivers import WaiverFile

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
MONTHLY_RUN_TIME = time(3, 0)


@dataclass(frozen=True)
class RunRequest:
    """What to audit: source, scope, as-of time; run_id is generated when not given."""

    source: str = "demo"
    subscriptions: tuple[str, ...] = ()
    management_groups: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    as_of: datetime | None = None
    run_id: str | None = None
    is_monthly: bool = True
    snapshot_dir: Path | None = None


@dataclass(frozen=True)
class RunContext:
    """A registered run."""

    run_id: str
    source: str
    scope: str
    as_of: datetime
    snapshot_dir: Path | None
    work_dir: Path


@dataclass(frozen=True)
class ExtractResult:
    """Where the run's pages are and how many rows each query returned."""

    snapshot_dir: Path
    rows: dict[str, int]
    complete: bool
    errors: dict[str, str]


@dataclass(frozen=True)
class LoadResult:
    """Rows loaded per raw table."""

    rows: dict[str, int]


@dataclass
class RunOutcome:
    """The end of a run: its status, findings count, reports and the process exit code."""

    run_id: str
    status: str
    findings: int = 0
    report_paths: list[Path] = field(default_factory=list)
    exit_code: int = EXIT_OK
    error: str | None = None


def monthly_run_date(year: int, month: int) -> date:
    """The scheduled audit day: the Wednesday after Patch Tuesday plus 14 days' grace (the 23rd to 29th)."""
    first = date(year, month, 1)
    second_tuesday = first + timedelta(days=(1 - first.weekday()) % 7 + 7)
    return second_tuesday + timedelta(days=15)


def latest_monthly_as_of(today: date) -> datetime:
    """The as-of time of the newest monthly run that is due on or before `today`."""
    y, m = today.year, today.month
    while monthly_run_date(y, m) > today:
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return datetime.combine(monthly_run_date(y, m), MONTHLY_RUN_TIME, tzinfo=UTC)


def monthly_as_of_series(end: datetime, months: int) -> list[datetime]:
    """`months` consecutive monthly run times ending with the month of `end`."""
    out = []
    y, m = end.year, end.month
    for _ in range(months):
        out.append(datetime.combine(monthly_run_date(y, m), MONTHLY_RUN_TIME, tzinfo=UTC))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return sorted(out)


def _scope_for(settings: Settings, request: RunRequest) -> Scope:
    if request.source == "demo":
        return Scope("demo", (f"machines={settings.demo_machines}", f"seed={settings.demo_seed}"))
    if request.source == "snapshot":
        directory = request.snapshot_dir or settings.snapshot_dir
        if directory is None:
            raise ConfigError("source snapshot needs a snapshot directory (--snapshot DIR)")
        return SnapshotSource(Path(directory)).scope
    if request.source == "arg":
        subs = list(request.subscriptions or settings.subscriptions)
        mgs = list(request.management_groups or settings.management_groups)
        tenants = list(request.tenants or settings.arg_tenants)
        if tenants:
            from hotpatch_audit.arg import tenants_scope

            if subs or mgs:
                raise ConfigError("with several tenants, each tenant is read whole; drop subscriptions/groups")
            return tenants_scope({t: Scope("tenant") for t in tenants})
        return Scope.for_azure(subs, mgs)
    raise ConfigError(f"unknown source {request.source!r} (demo, snapshot, arg)")


def _writer(settings: Settings, holder: str) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The ledger's writer connection, with the settings' lock timeout and memory limit."""
    from hotpatch_audit.ledger import open_writer

    return open_writer(settings.path(settings.ledger_path), settings.project_root,
                       timeout=settings.lock_timeout_seconds, memory_limit=settings.duckdb_memory_limit, holder=holder,
                       calendar_override=calendar_override(settings))


def waiver_file(settings: Settings) -> WaiverFile | None:
    """The validated waiver file, if one is set (ConfigError naming file, waiver and field otherwise)."""
    from hotpatch_audit.waivers import load_waivers

    return load_waivers(settings.path(settings.waivers_path)) if settings.waivers_path else None


def calendar_override(settings: Settings) -> Path | None:
    """The local calendar override file, if one is set."""
    return settings.path(settings.calendar_override_path) if settings.calendar_override_path else None


def start_run(settings: Settings, request: RunRequest) -> RunContext:
    """Validate the request and register the run in the ledger as `running`."""
    from hotpatch_audit.analyze import calendar_version
    from hotpatch_audit.ledger import register_run

    scope = _scope_for(settings, request)
    waiver_file(settings)  # fail fast on a bad waiver file; audit_stage reads it again for the run
    as_of = request.as_of
    if as_of is None and request.source == "snapshot":
        snap_as_of = SnapshotSource(Path(request.snapshot_dir or settings.snapshot_dir or "")).as_of
        as_of = datetime.fromisoformat(snap_as_of.replace("Z", "+00:00")) if snap_as_of else None
    if as_of is None:
        as_of = datetime.now(UTC).replace(microsecond=0)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    run_id = request.run_id or f"run-{as_of:%Y%m%dT%H%MZ}-{uuid.uuid4().hex[:8]}"
    work_dir = settings.path(settings.work_dir) / run_id
    with _writer(settings, f"run {run_id}") as con:
        register_run(
            con, run_id=run_id, scope=scope.key(), as_of=as_of, source=request.source,
            tool_version=__version__,
            calendar_version=calendar_version(settings.project_root, calendar_override(settings)),
            is_monthly=request.is_monthly, settings=settings.audit_rules(),
        )
    log.info("run %s registered: source=%s scope=%s as_of=%s", run_id, request.source, scope.key(), as_of)
    return RunContext(run_id, request.source, scope.key(), as_of,
                      request.snapshot_dir or settings.snapshot_dir, work_dir)


def make_source(settings: Settings, ctx: RunContext) -> Source:
    """The data source for a run."""
    if ctx.source == "demo":
        return EmulatedDemoSource(demo_fleet(settings, ctx.as_of), Scope.parse(ctx.scope), as_of=ctx.as_of,
                                  cert_dir=settings.path(settings.work_dir) / "emulator-tls",
                                  max_workers=settings.arg_max_workers, memory_limit=settings.duckdb_memory_limit)
    if ctx.source == "snapshot":
        return SnapshotSource(Path(ctx.snapshot_dir or ""))
    if ctx.source == "arg":
        from hotpatch_audit.arg import ArgSource

        return ArgSource.from_settings(settings, Scope.parse(ctx.scope))
    raise ConfigError(f"unknown source {ctx.source!r}")


def demo_fleet(settings: Settings, as_of: datetime) -> Path:
    """The demo fleet's Resource Graph tables as of `as_of`, generated once into a DuckDB file."""
    from hotpatch_audit.argtables import create_arg_tables
    from hotpatch_audit.duck import connect
    from hotpatch_audit.fleet import generate_fleet

    fleet_dir = settings.path(settings.work_dir) / "demo-fleet"
    fleet_dir.mkdir(parents=True, exist_ok=True)
    path = fleet_dir / f"fleet-{settings.demo_machines}-{settings.demo_seed}-{as_of:%Y%m%dT%H%M%S}.duckdb"
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    con = connect(tmp, memory_limit=settings.duckdb_memory_limit)
    try:
        create_arg_tables(con)
        generate_fleet(con, as_of=as_of, machines=settings.demo_machines, seed=settings.demo_seed,
                       calendar_path=settings.project_root / "data" / "release_calendar.csv")
    finally:
        con.close()
    tmp.replace(path)
    return path


def extract_stage(
    settings: Settings, ctx: RunContext, on_page: Callable[[str, int, int], None] | None = None,
    save_dir: Path | None = None,
) -> ExtractResult:
    """Run every KQL file through the run's source; pages land in a snapshot directory."""
    specs = load_queries(settings.project_root)
    source = make_source(settings, ctx)
    directory = save_dir or (ctx.work_dir / "snapshot")
    try:
        snap = extract_to_snapshot(source, specs, directory, as_of=ctx.as_of, project_root=settings.project_root,
                                   on_page=on_page)
    finally:
        close = getattr(source, "close", None)
        if close:
            close()
    errors = {n: q.error for n, q in snap.queries.items() if q.error}
    if snap.queries and len(errors) == len(snap.queries):
        # Nothing was collected (bad credentials, wrong endpoint, no access): a failed run, not a partial one.
        first = next(iter(errors.values()))
        raise SourceError(f"every query failed; the first: {first}")
    return ExtractResult(directory, {n: q.rows for n, q in snap.queries.items()}, snap.complete, errors)


def load_stage(settings: Settings, ctx: RunContext, extracted: ExtractResult) -> LoadResult:
    """Load the snapshot atomically into the ledger's raw tables."""
    from hotpatch_audit.extract import snapshot_from_manifest
    from hotpatch_audit.ledger import load_snapshot
    from hotpatch_audit.sources import read_manifest

    snap: Snapshot = snapshot_from_manifest(extracted.snapshot_dir, read_manifest(extracted.snapshot_dir))
    with _writer(settings, f"run {ctx.run_id} (load)") as con:
        rows = load_snapshot(con, ctx.run_id, snap)
    return LoadResult(rows)


def audit_stage(settings: Settings, ctx: RunContext, complete: bool = True) -> tuple[str, int]:
    """Judge the run: materialize audit.findings and close the run (succeeded or incomplete)."""
    from hotpatch_audit.ledger import finish_run

    waivers = waiver_file(settings)
    with _writer(settings, f"run {ctx.run_id} (audit)") as con:
        return finish_run(con, ctx.run_id, complete, waivers)


def render_stage(
    settings: Settings, run_id: str, out_dir: Path | None = None, *, snapshot_dir: Path | None = None,
    per_owner: bool = False,
) -> list[Path]:
    """Render the run's reports and exports from the ledger (read-only, waits while a writer is busy), then
    write SHA256SUMS and manifest.json last; return the paths written, manifest.json last.

    With per_owner, also one report per owner under <out>/owners/<owner-slug>/, each with only that owner's
    machines and findings and its own manifest; owner names are untrusted text, slugged for the path
    (render.owner_slug) and escaped in the report. The folder's manifest lists every file, the owners' too,
    and the files of snapshot_dir (a snapshot saved with the run; it must be inside the folder).
    """
    from hotpatch_audit.duck import connect
    from hotpatch_audit.files import SUMS_NAME
    from hotpatch_audit.ledger import ledger_lock
    from hotpatch_audit.manifest import run_facts, write_manifest
    from hotpatch_audit.render import owner_slug, render_reports, run_owners

    ledger = settings.path(settings.ledger_path)
    target = out_dir or settings.path(settings.out_dir) / run_id
    target.mkdir(parents=True, exist_ok=True)
    generated_at = datetime.now(UTC).replace(microsecond=0)
    refresh_definitions(settings)
    with ledger_lock(ledger, exclusive=False, timeout=settings.lock_timeout_seconds):
        con = connect(ledger, read_only=True, memory_limit=settings.duckdb_memory_limit)
        try:
            facts = run_facts(con, run_id)
        finally:
            con.close()
        written = render_reports(ledger, run_id, target, settings=settings, formats=settings.formats,
                                 generated_at=generated_at)
        if per_owner:
            for owner in run_owners(ledger, run_id, settings=settings):
                folder = target / "owners" / owner_slug(owner)
                files = render_reports(ledger, run_id, folder, settings=settings, formats=settings.formats,
                                       owner=owner, generated_at=generated_at)
                manifest = write_manifest(folder, files, facts=facts, settings=settings, generated_at=generated_at,
                                          owner=owner)
                written += [*files, folder / SUMS_NAME, manifest]
    snapshot = snapshot_dir or _saved_snapshot(target / "snapshot", facts)
    snapshot_files = sorted(p for p in snapshot.rglob("*") if p.is_file()) if snapshot and snapshot.is_dir() else []
    manifest = write_manifest(target, [*written, *snapshot_files], facts=facts, settings=settings,
                              generated_at=generated_at)
    return [*written, target / SUMS_NAME, manifest]


def _saved_snapshot(directory: Path, facts: dict[str, object]) -> Path | None:
    """directory, when it holds the snapshot of the run (same scope and as-of): a re-render lists it again."""
    from hotpatch_audit.sources import read_manifest

    if not (directory / "manifest.json").is_file():
        return None
    try:
        manifest = read_manifest(directory)
    except HotpatchAuditError:
        return None
    same = manifest.get("scope") == facts["scope"] and manifest.get("as_of") == facts["as_of"]
    return directory if same else None


def refresh_definitions(settings: Settings) -> None:
    """Re-apply sql/ when this checkout's definitions differ from the ledger's (e.g. after an upgrade).

    Report views live in the ledger and a read-only reader cannot create them, so a re-render after an
    upgrade takes the writer lock for the moment it takes to apply them.
    """
    from hotpatch_audit.ledger import open_reader, sql_fingerprint

    ledger = settings.path(settings.ledger_path)
    with open_reader(ledger, timeout=settings.lock_timeout_seconds, memory_limit=settings.duckdb_memory_limit) as con:
        try:
            row = con.execute("SELECT fingerprint FROM meta.schema_state").fetchone()
        except duckdb.CatalogException:
            row = None
    if row and row[0] == sql_fingerprint(settings.project_root, calendar_override(settings)):
        return
    with _writer(settings, "report (applying new definitions)"):
        pass


def fail_run(settings: Settings, ctx: RunContext, error: BaseException) -> None:
    """Mark the run failed (its rows dropped); the previous good data stays."""
    from hotpatch_audit.ledger import fail_run as _fail

    with _writer(settings, f"run {ctx.run_id} (fail)") as con:
        _fail(con, ctx.run_id, f"{type(error).__name__}: {error}")


def run_audit(
    settings: Settings, request: RunRequest, *, render: bool = True,
    on_stage: Callable[[str], None] | None = None, on_page: Callable[[str, int, int], None] | None = None,
    out_dir: Path | None = None, per_owner: bool = False, save_snapshot: bool = False,
) -> RunOutcome:
    """One audit end to end without Prefect: extract → load → audit → render (per owner too with per_owner).

    With save_snapshot, the extracted pages are kept as <report folder>/snapshot/ (a snapshot directory that
    `run --source snapshot` can read again) and listed in the folder's manifest.
    """
    reading = request.snapshot_dir or settings.snapshot_dir
    if save_snapshot and out_dir and reading and (out_dir / "snapshot").resolve() == Path(reading).resolve():
        raise ConfigError(f"--save-snapshot would overwrite the snapshot being read ({reading}); use another --out")
    ctx = start_run(settings, request)
    note = on_stage or (lambda _s: None)
    target = out_dir or settings.path(settings.out_dir) / ctx.run_id
    snapshot_dir = target / "snapshot" if save_snapshot else None
    try:
        note("extract")
        extracted = extract_stage(settings, ctx, on_page=on_page, save_dir=snapshot_dir)
        note("load")
        load_stage(settings, ctx, extracted)
        note("audit")
        status, findings = audit_stage(settings, ctx, extracted.complete)
    except (HotpatchAuditError, OSError, Exception) as exc:  # noqa: BLE001 - recorded, then re-raised
        fail_run(settings, ctx, exc)
        raise
    outcome = RunOutcome(ctx.run_id, status, findings,
                         exit_code=EXIT_OK if status == "succeeded" else EXIT_INCOMPLETE)
    if extracted.errors:
        outcome.error = "; ".join(f"{k}: {v}" for k, v in extracted.errors.items())
    if render:
        note("render")
        outcome.report_paths = render_stage(settings, ctx.run_id, target, snapshot_dir=snapshot_dir,
                                            per_owner=per_owner)
    return outcome
