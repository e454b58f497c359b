"""The audit pipeline as plain functions, one per stage: extract → load → audit → render.

The CLI calls run_audit(); the Prefect flows call the stage functions one task each.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

from hotpatch_audit import __version__
from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import Settings
from hotpatch_audit.duck import spare_memory
from hotpatch_audit.errors import ConfigError, HotpatchAuditError, SourceError
from hotpatch_audit.extract import Snapshot, extract_to_snapshot
from hotpatch_audit.sources import Scope, SnapshotSource, Source

if TYPE_CHECKING:
    from hotpatch_audit.waivers import WaiverFile

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
EXIT_FINDINGS = 4  # --fail-on: the run has open findings at or above the given severity
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
        # The generator's version is part of the scope: after an upgrade that changes the fleet, the demo starts
        # its own history instead of competing with (and losing to) the old fleet's runs of the same as-of.
        from hotpatch_audit.demo.source import fleet_version  # production runs never import demo

        return Scope("demo", (f"machines={settings.demo_machines}", f"seed={settings.demo_seed}",
                              f"fleet={fleet_version(settings.project_root)}"))
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


def plan_run(settings: Settings, request: RunRequest) -> RunContext:
    """Check everything a run needs before it is registered, and fix its id, scope and as-of time.

    Scope, waiver file, as-of time (not in the future beyond a small skew, not before the calendar starts) and,
    for a snapshot, the whole snapshot (its SHA256SUMS, manifest and every row's field types) are checked here:
    bad input is refused with one line and leaves the ledger as it was.
    """
    from hotpatch_audit.calendar import calendar_rows
    from hotpatch_audit.snapshot_check import check_as_of

    snapshot_dir = request.snapshot_dir or settings.snapshot_dir
    if request.source == "snapshot":
        if snapshot_dir is None:
            raise ConfigError("source snapshot needs a snapshot directory (--snapshot DIR)")
        if not (Path(snapshot_dir) / "manifest.json").is_file():
            raise ConfigError(f"--snapshot {snapshot_dir}: not a snapshot directory (no manifest.json there); "
                              "give the folder extract --save or run --save-snapshot wrote")
        manifest = check_snapshot(settings, Path(snapshot_dir))
    scope = _scope_for(settings, request)
    waiver_file(settings)  # fail fast on a bad waiver file; audit_stage reads it again for the run
    calendar_rows(settings.project_root, calendar_override(settings))  # and on a bad calendar override
    as_of = request.as_of
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    if request.source == "snapshot":
        snap_as_of = datetime.fromisoformat(str(manifest["as_of"]).replace("Z", "+00:00"))
        if as_of is not None and as_of != snap_as_of:
            raise ConfigError(f"--as-of {as_of:%Y-%m-%dT%H:%MZ} differs from the snapshot's as-of "
                              f"{snap_as_of:%Y-%m-%dT%H:%MZ}: a snapshot is judged as of the time it was taken")
        as_of = snap_as_of
    if as_of is None:
        as_of = datetime.now(UTC).replace(microsecond=0)
    check_as_of(as_of, "--as-of", error=ConfigError)
    run_id = request.run_id or f"run-{as_of:%Y%m%dT%H%MZ}-{uuid.uuid4().hex[:8]}"
    work_dir = settings.path(settings.work_dir) / run_id
    return RunContext(run_id, request.source, scope.key(), as_of, snapshot_dir, work_dir)


def check_snapshot(settings: Settings, directory: Path) -> dict[str, object]:
    """The snapshot checked whole against its SHA256SUMS, its manifest and the raw tables' field types
    (hotpatch_audit.snapshot_check); returns its manifest."""
    from hotpatch_audit.ledger import raw_schema
    from hotpatch_audit.snapshot_check import verify_snapshot

    return verify_snapshot(directory, load_queries(settings.project_root), raw_schema(settings.project_root))


def start_run(settings: Settings, request: RunRequest, planned: RunContext | None = None) -> RunContext:
    """Register the run (planned with plan_run, or planned now) in the ledger as `running`."""
    from hotpatch_audit.analyze import calendar_version
    from hotpatch_audit.ledger import register_run
    from hotpatch_audit.prices import prices_version

    ctx = planned or plan_run(settings, request)
    with _writer(settings, f"run {ctx.run_id}") as con:
        register_run(
            con, run_id=ctx.run_id, scope=ctx.scope, as_of=ctx.as_of, source=request.source,
            tool_version=__version__,
            calendar_version=calendar_version(settings.project_root, calendar_override(settings)),
            is_monthly=request.is_monthly,
            settings={**settings.audit_rules(), "prices_version": prices_version(settings.project_root)},
        )
    log.info("run %s registered: source=%s scope=%s as_of=%s", ctx.run_id, request.source, ctx.scope, ctx.as_of)
    return ctx


def run_turn(
    settings: Settings, ctx: RunContext, on_wait: Callable[[str], None] | None = None
) -> AbstractContextManager[None]:
    """Held from registering a run to closing it: two runs of the same scope and as-of take turns (the second
    waits, up to the lock timeout), so neither judges or replaces the other half-way."""
    from hotpatch_audit.ledger import turn_lock

    return turn_lock(settings.path(settings.ledger_path), f"{ctx.scope}|{ctx.as_of:%Y-%m-%dT%H:%M:%S}",
                     timeout=settings.lock_timeout_seconds, on_wait=on_wait, holder=f"run {ctx.run_id}")


def make_source(settings: Settings, ctx: RunContext, before_request: Callable[[], None] | None = None) -> Source:
    """The data source for a run. `before_request` (arg only) is called before every Resource Graph request: the
    flows pass a Prefect rate limit shared by all runs of one identity."""
    if ctx.source == "demo":
        from hotpatch_audit.demo.source import EmulatedDemoSource, demo_fleet  # production runs never import demo

        return EmulatedDemoSource(demo_fleet(settings, ctx.as_of), Scope.parse(ctx.scope), as_of=ctx.as_of,
                                  cert_dir=settings.path(settings.work_dir) / "emulator-tls",
                                  max_workers=settings.arg_max_workers, memory_limit=settings.duckdb_memory_limit)
    if ctx.source == "snapshot":
        return SnapshotSource(Path(ctx.snapshot_dir or ""))
    if ctx.source == "arg":
        from hotpatch_audit.arg import ArgSource

        source = ArgSource.from_settings(settings, Scope.parse(ctx.scope))
        if before_request is not None:
            source.options = replace(source.options, before_request=before_request)
        return source
    raise ConfigError(f"unknown source {ctx.source!r}")


def extract_stage(
    settings: Settings, ctx: RunContext, on_page: Callable[[str, int, int], None] | None = None,
    save_dir: Path | None = None, before_request: Callable[[], None] | None = None,
) -> ExtractResult:
    """Run every KQL file through the run's source; pages land in a snapshot directory."""
    specs = load_queries(settings.project_root)
    source = make_source(settings, ctx, before_request)
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
    return LoadResult(_within_memory(settings, ctx.run_id, "load", lambda con: load_snapshot(con, ctx.run_id, snap)))


def audit_stage(settings: Settings, ctx: RunContext, complete: bool = True) -> tuple[str, int]:
    """Judge the run: materialize audit.findings and close the run (succeeded or incomplete)."""
    from hotpatch_audit.ledger import finish_run

    waivers = waiver_file(settings)
    return _within_memory(settings, ctx.run_id, "audit", lambda con: finish_run(con, ctx.run_id, complete, waivers))


def _within_memory(settings: Settings, run_id: str, stage: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run one stage's ledger transaction on the writer connection; if DuckDB runs out of memory (the transaction
    is then rolled back whole), run it once more on a new connection with spare_memory's settings (one thread),
    which needs about half the memory, slower."""
    holder = f"run {run_id} ({stage})"
    try:
        with _writer(settings, holder) as con:
            return work(con)
    except duckdb.OutOfMemoryException as exc:
        log.warning("run %s: %s ran out of memory at the %s limit (%s); running it again on one thread", run_id,
                    stage, settings.duckdb_memory_limit, str(exc).splitlines()[0])
    with _writer(settings, holder) as con:
        spare_memory(con)
        return work(con)


def render_stage(
    settings: Settings, run_id: str, out_dir: Path | None = None, *, snapshot_dir: Path | None = None,
    per_owner: bool = False,
) -> list[Path]:
    """Render the run's reports and exports from the ledger (read-only, waits while a writer is busy), then
    write SHA256SUMS and manifest.json last; return the paths written, manifest.json last.

    Everything is written to a new folder beside the target, which then takes the target's place whole
    (files.replace_folder): a kill mid-render leaves the previous report as it was, never a mix of old and new
    files. A target holding files the tool did not write is refused. With per_owner, also one report per owner
    under <out>/owners/<owner-slug>/, each with only that owner's machines and findings and its own manifest;
    owner names are untrusted text, slugged for the path (render.owner_slug) and escaped in the report. The
    folder's manifest lists every file, the owners' too, and the files of the snapshot saved with the run
    (snapshot_dir, or the folder's own snapshot/ of the same run on a re-render), copied into the folder.
    """
    from hotpatch_audit.duck import connect
    from hotpatch_audit.files import (
        SUMS_NAME,
        check_target_folder,
        discard_folder,
        replace_folder,
        staging_folder,
    )
    from hotpatch_audit.ledger import ledger_lock
    from hotpatch_audit.manifest import run_facts, write_manifest
    from hotpatch_audit.render import owner_slug, render_reports, run_owners

    ledger = settings.path(settings.ledger_path)
    target = out_dir or settings.path(settings.out_dir) / run_id
    check_target_folder(target, "report")
    check_render_settings(settings)
    generated_at = datetime.now(UTC).replace(microsecond=0)
    refresh_definitions(settings)
    stage = staging_folder(target)
    try:
        with ledger_lock(ledger, exclusive=False, timeout=settings.lock_timeout_seconds):
            con = connect(ledger, read_only=True, memory_limit=settings.duckdb_memory_limit)
            try:
                facts = run_facts(con, run_id)
            finally:
                con.close()
            written = render_reports(ledger, run_id, stage, settings=settings, formats=settings.formats,
                                     generated_at=generated_at)
            if per_owner:
                for owner in run_owners(ledger, run_id, settings=settings):
                    folder = stage / "owners" / owner_slug(owner)
                    files = render_reports(ledger, run_id, folder, settings=settings, formats=settings.formats,
                                           owner=owner, generated_at=generated_at)
                    manifest = write_manifest(folder, files, facts=facts, settings=settings,
                                              generated_at=generated_at, owner=owner)
                    written += [*files, folder / SUMS_NAME, manifest]
        snapshot = snapshot_dir or _saved_snapshot(target / "snapshot", facts)
        snapshot_files = _copy_snapshot(snapshot, stage / "snapshot") if snapshot and snapshot.is_dir() else []
        manifest = write_manifest(stage, [*written, *snapshot_files], facts=facts, settings=settings,
                                  generated_at=generated_at)
        replace_folder(stage, target)
    except BaseException:
        discard_folder(stage)
        raise
    return [target / p.relative_to(stage) for p in [*written, stage / SUMS_NAME, manifest]]


def _copy_snapshot(source: Path, into: Path) -> list[Path]:
    """Copy a snapshot folder's files (hard links where the file system allows) into a report being staged."""
    import os
    import shutil

    copied = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = into / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
        copied.append(dest)
    return copied


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


def describe_failure(error: BaseException) -> str:
    """What a failed run records as its error: the signal for an interruption, else the exception's type and
    first line."""
    from hotpatch_audit.errors import RunInterrupted

    if isinstance(error, KeyboardInterrupt):
        return "interrupted by SIGINT (Ctrl-C)"
    if isinstance(error, RunInterrupted):
        return f"interrupted by {error}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def fail_run(settings: Settings, ctx: RunContext, error: BaseException) -> None:
    """Mark the run failed (its rows dropped, its first error kept); the previous good data stays. When even that
    cannot be written (disk full, ledger gone), the run stays `running` and the next run marks it abandoned: the
    failure is logged here and the caller raises the original error."""
    from hotpatch_audit.ledger import fail_run as _fail

    try:
        with _writer(settings, f"run {ctx.run_id} (fail)") as con:
            _fail(con, ctx.run_id, describe_failure(error))
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        log.error("could not mark run %s failed: %s", ctx.run_id, exc)


def run_audit(
    settings: Settings, request: RunRequest, *, render: bool = True,
    on_stage: Callable[[str], None] | None = None, on_page: Callable[[str, int, int], None] | None = None,
    out_dir: Path | None = None, per_owner: bool = False, save_snapshot: bool = False,
) -> RunOutcome:
    """One audit end to end without Prefect: extract → load → audit → render (per owner too with per_owner).

    Everything is checked before the run is registered (plan_run), and the report folder too when it will be
    written; runs of the same scope and as-of take turns (run_turn). Any failure or interruption (Ctrl-C,
    SIGTERM as RunInterrupted) marks the run failed with its cause and re-raises. With save_snapshot, the
    extracted pages are kept as <report folder>/snapshot/ (a snapshot directory that `run --source snapshot`
    can read again) and listed in the folder's manifest.
    """
    from hotpatch_audit.files import check_target_folder

    reading = request.snapshot_dir or settings.snapshot_dir
    if save_snapshot and out_dir and reading and (out_dir / "snapshot").resolve() == Path(reading).resolve():
        raise ConfigError(f"--save-snapshot would overwrite the snapshot being read ({reading}); use another --out")
    ctx = plan_run(settings, request)
    target = out_dir or settings.path(settings.out_dir) / ctx.run_id
    if render:
        check_target_folder(target, "report")
        check_render_settings(settings)
    note = on_stage or (lambda _s: None)
    with run_turn(settings, ctx, on_wait=note):
        start_run(settings, request, ctx)
        try:
            note("extract")
            extracted = extract_stage(settings, ctx, on_page=on_page)
            note("load")
            load_stage(settings, ctx, extracted)
            note("audit")
            status, findings = audit_stage(settings, ctx, extracted.complete)
        except BaseException as exc:
            fail_run(settings, ctx, exc)
            raise
    outcome = RunOutcome(ctx.run_id, status, findings,
                         exit_code=EXIT_OK if status == "succeeded" else EXIT_INCOMPLETE)
    if extracted.errors:
        outcome.error = "; ".join(f"{k}: {v}" for k, v in extracted.errors.items())
    if status == "superseded":
        outcome.error = "; ".join(x for x in (outcome.error, run_note(settings, ctx.run_id)) if x)
    if render:
        note("render")
        outcome.report_paths = render_stage(settings, ctx.run_id, target,
                                            snapshot_dir=extracted.snapshot_dir if save_snapshot else None,
                                            per_owner=per_owner)
    return outcome


def check_scheduled_request(request: RunRequest) -> None:
    """A monthly run of record (the scheduled deployment) must read a real tenant: source arg and a scope named
    explicitly. Without this a deployment left without settings would audit the demo fleet as the month's run."""
    if not request.is_monthly:
        return
    if request.source != "arg":
        raise ConfigError(
            f"a monthly run needs source arg (Azure Resource Graph), not {request.source!r}: give the deployment "
            "the parameter source=arg or the worker HOTPATCH_AUDIT_SOURCE=arg, with the scope; audit the demo "
            "fleet or a snapshot with is_monthly=false (deployment monthly-audit/on-demand)")
    if not (request.subscriptions or request.management_groups or request.tenants):
        raise ConfigError(
            "a monthly run needs its scope named: subscriptions, management groups or tenants (parameters "
            "subscriptions / management_groups / tenants, or the worker's HOTPATCH_AUDIT_SUBSCRIPTIONS, "
            "HOTPATCH_AUDIT_MANAGEMENT_GROUPS or HOTPATCH_AUDIT_ARG_TENANTS); a whole tenant is named by its id")


def run_figures(settings: Settings, run_id: str) -> list[tuple[str, str]]:
    """The run's key figures and completeness as (figure, value) text pairs, for a flow's table artifact."""
    from hotpatch_audit.ledger import open_reader

    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit) as con:
        run = con.execute("SELECT status, source, scope, as_of, coalesce(note, error, '') FROM meta.runs "
                          "WHERE run_id = ?", [run_id]).fetchone()
        if run is None:
            raise ConfigError(f"no run {run_id} in the ledger")
        stats = con.execute("SELECT count(*), count(*) FILTER (WHERE complete), coalesce(sum(rows_received), 0), "
                            "string_agg(query_name, ', ' ORDER BY query_name) FILTER (WHERE NOT complete) "
                            "FROM meta.query_stats WHERE run_id = ?", [run_id]).fetchone()
        kpis = con.execute("SELECT kpi, unit, value FROM report.summary_kpis WHERE run_id = ? ORDER BY kpi_order",
                           [run_id]).fetchall()
    assert stats is not None
    status, source, scope, as_of, note = run
    rows = [("run", run_id), ("status", str(status)), ("source", str(source)), ("scope", str(scope)),
            ("as of (UTC)", f"{as_of:%Y-%m-%d %H:%M}"),
            ("queries complete", f"{stats[1]} of {stats[0]}"), ("rows received", f"{int(stats[2]):,}")]
    if stats[3]:
        rows.append(("incomplete queries", str(stats[3])))
    if note:
        rows.append(("note", str(note)[:500]))
    for kpi, unit, value in kpis:
        if value is None:
            text = "n/a"
        elif unit == "rate":
            text = f"{value:.1%}"
        elif unit == "minutes":
            text = f"{value / 60:,.1f} h"
        elif unit == "usd":
            text = f"USD {value:,.0f}"
        else:
            text = f"{value:,.0f}"
        rows.append((str(kpi).replace("_", " "), text))
    return rows


def check_render_settings(settings: Settings) -> None:
    """What rendering will need, checked before a run is registered: the time zone of the reports."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"time zone {settings.timezone!r} is not an IANA zone name (e.g. UTC, Asia/Tokyo)") from None


def run_note(settings: Settings, run_id: str) -> str | None:
    """The run's note from the ledger (e.g. that it was kept beside a more complete run)."""
    from hotpatch_audit.ledger import open_reader

    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit) as con:
        row = con.execute("SELECT note FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
    return str(row[0]) if row and row[0] else None


def open_findings_at_or_above(settings: Settings, run_id: str, severity: str) -> dict[str, int]:
    """The run's open findings (audit.open_findings: state open, waived ones excluded) at or above `severity`
    (critical > high > medium > low > info), counted per severity, most severe first; empty when there are none.
    What `--fail-on SEVERITY` gates on."""
    from hotpatch_audit.audit_meta import SEVERITIES
    from hotpatch_audit.ledger import open_reader

    if severity not in SEVERITIES:
        raise ConfigError(f"--fail-on {severity!r}: expected one of {', '.join(SEVERITIES)}")
    wanted = SEVERITIES[: SEVERITIES.index(severity) + 1]
    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit) as con:
        rows = dict(con.execute(
            "SELECT severity, count(*) FROM audit.open_findings WHERE run_id = ? AND list_contains(?, severity)"
            " GROUP BY severity", [run_id, list(wanted)]).fetchall())
    return {s: int(rows[s]) for s in wanted if rows.get(s)}
