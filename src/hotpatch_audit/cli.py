"""The hotpatch-audit command line: run, demo, extract, report, query."""

from __future__ import annotations

import csv
import logging
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotpatch_audit import __version__
from hotpatch_audit.cli_calendar import calendar_app
from hotpatch_audit.cli_diff import diff as _diff
from hotpatch_audit.cli_facts import import_facts
from hotpatch_audit.config import Settings
from hotpatch_audit.console import EXIT_FAILED, VERBOSE, err, guard, out, settings_from
from hotpatch_audit.errors import ConfigError, LedgerError, RunInterrupted
from hotpatch_audit.pipeline import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    RunOutcome,
    RunRequest,
    latest_monthly_as_of,
    monthly_as_of_series,
    run_audit,
)


def _usage_error_in_one_line(self: Any, file: object = None) -> None:
    """click's usage errors (an unknown option, a value of the wrong type) as the guard prints every error: one
    line, exit code 2, pointing to the command's help."""
    command = self.ctx.command_path if self.ctx is not None else "hotpatch-audit"
    err.print("[red]usage error:[/red]", escape(f"{self.format_message()} (see: {command} --help)"))


# typer shows usage errors with UsageError.show (rich_markup_mode=None below): one line instead of three.
# Typer carries its own copy of click (typer._click); both classes are set, whichever this typer uses.
for _usage_error in {click.UsageError, getattr(getattr(typer, "_click", None), "exceptions", click).UsageError}:
    _usage_error.show = _usage_error_in_one_line

DEMO_DOWNTIME_COST_PER_HOUR = 250.0  # the demo's example cost of an hour of downtime (stated on page 1)

app = typer.Typer(
    help="Hotpatch compliance audits for Windows Server: reboot avoidance, missed hotpatches, "
    "WSUS misconfigurations and VBS blockers.\n\nExit codes: 0 success, 1 incomplete data, "
    "2 usage error, 3 failed run.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="Log progress and print the traceback of an unexpected error (it always goes to a log "
        "file under the work dir)")] = False,
) -> None:
    """Hotpatch compliance audits for Windows Server."""
    VERBOSE["on"] = verbose
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


LedgerOpt = Annotated[Path | None, typer.Option("--ledger", help="DuckDB ledger file [default: out/ledger.duckdb]")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Report folder [default: out/reports/<run id>]")]
FormatOpt = Annotated[
    list[str] | None, typer.Option("--format", help="html, pdf, csv, parquet (repeatable) [default: all]")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Report language: en or ja [default: en]")]
EndpointOpt = Annotated[str | None, typer.Option(help="Resource-Graph-compatible https endpoint (emulator, proxy)")]
CaOpt = Annotated[Path | None, typer.Option("--ca-bundle", help="CA bundle (PEM) to trust for --endpoint")]
CloudOpt = Annotated[str | None, typer.Option(help="Azure cloud: public, china or usgov [default: public]")]
TzOpt = Annotated[str | None, typer.Option("--tz", help="Show times in this zone, e.g. Asia/Tokyo [default: UTC]")]
PerOwnerOpt = Annotated[bool, typer.Option(
    "--per-owner", help="Also write one report per owner under <out>/owners/<owner>/ (plus the fleet report)")]


def _parse_as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"--as-of {value!r}: expected an ISO date or time, e.g. 2026-11-25T03:00Z") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]}"),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def _run_with_progress(settings: Settings, request: RunRequest, render: bool, label: str = "",
                       out_dir: Path | None = None, per_owner: bool = False,
                       save_snapshot: bool = False) -> RunOutcome:
    with _progress() as progress:
        task = progress.add_task(f"{label}starting", total=None, rows="")

        def on_stage(stage: str) -> None:
            progress.update(task, description=f"{label}{stage}", rows="")

        def on_page(query: str, rows: int, total: int) -> None:
            progress.update(task, description=f"{label}extract {query}", rows=f"{rows:,}/{total:,} rows")

        return run_audit(settings, request, render=render, on_stage=on_stage, on_page=on_page, out_dir=out_dir,
                         per_owner=per_owner, save_snapshot=save_snapshot)


def _report_outcome(outcome: RunOutcome) -> None:
    err.print(f"run {outcome.run_id}: {outcome.status}, {outcome.findings:,} findings")
    if outcome.error:
        err.print("[yellow]collection incomplete:[/yellow]", escape(str(outcome.error)))
    for path in outcome.report_paths:
        out.print(str(path))


@app.command()
@guard
def run(
    source: Annotated[str, typer.Option(help="demo, snapshot or arg")] = "demo",
    subscription: Annotated[list[str] | None, typer.Option(help="Subscription id (repeatable; arg)")] = None,
    management_group: Annotated[list[str] | None, typer.Option(help="Management group (repeatable; arg)")] = None,
    snapshot: Annotated[Path | None, typer.Option(help="Snapshot directory (source snapshot)")] = None,
    tenant: Annotated[list[str] | None, typer.Option(help="Tenant to read whole (repeatable; arg)")] = None,
    endpoint: EndpointOpt = None, ca_bundle: CaOpt = None, cloud: CloudOpt = None,
    as_of: Annotated[str | None, typer.Option(help="As-of time, ISO 8601 UTC [default: now]")] = None,
    machines: Annotated[int | None, typer.Option(help="Demo fleet size [default: 500]")] = None,
    on_demand: Annotated[
        bool, typer.Option("--on-demand", help="Not a monthly run (kept out of month-over-month)")
    ] = False,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False,
    save_snapshot: Annotated[bool, typer.Option(
        "--save-snapshot", help="Keep the extracted pages as <out>/snapshot/ (listed in manifest.json)")] = False,
) -> None:
    """Run one audit: extract → load → audit → render.

    Azure credentials come from DefaultAzureCredential (az login, managed or workload identity,
    AZURE_* service-principal variables); Reader at the scope is enough. For an emulator or a
    recording proxy, set HOTPATCH_AUDIT_ARG_TOKEN and pass --endpoint and --ca-bundle.

    Example: hotpatch-audit run --source demo --as-of 2026-11-25T03:00Z --tz Asia/Tokyo
    """
    settings = settings_from(ledger_path=ledger, formats=fmt, language=lang, timezone=tz, demo_machines=machines,
                         arg_endpoint=endpoint, arg_ca_bundle=ca_bundle, arg_cloud=cloud)
    request = RunRequest(source=source, subscriptions=tuple(subscription or ()),
                         management_groups=tuple(management_group or ()), tenants=tuple(tenant or ()),
                         as_of=_parse_as_of(as_of), snapshot_dir=snapshot, is_monthly=not on_demand)
    outcome = _run_with_progress(settings, request, render=True, out_dir=out_dir, per_owner=per_owner,
                                 save_snapshot=save_snapshot)
    _report_outcome(outcome)
    raise typer.Exit(outcome.exit_code)


@app.command()
@guard
def demo(
    months: Annotated[int, typer.Option(help="Monthly runs to build, oldest first")] = 14,
    machines: Annotated[int | None, typer.Option(help="Demo fleet size [default: 500]")] = None,
    end: Annotated[
        str | None, typer.Option(help="As-of date of the last run [default: latest monthly run date]")
    ] = None,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False,
) -> None:
    """Audit the built-in demo fleet month by month, as a monthly schedule would, and render the last run.

    The default 14 months end with the latest monthly run date (the Wednesday after Patch Tuesday
    plus 14 days' grace), so the history includes the October 2025 KB5070881 incident. Unless
    HOTPATCH_AUDIT_WAIVERS_PATH is set, the demo applies data/demo-waivers.yaml, and unless
    HOTPATCH_AUDIT_DOWNTIME_COST_PER_HOUR is set it prices avoided downtime at an example USD 250 an hour.

    Example: hotpatch-audit demo --months 12 --machines 500 --tz Asia/Tokyo
    """
    if months < 1 or months > 60:
        raise ConfigError("--months must be between 1 and 60")
    settings = settings_from(ledger_path=ledger, formats=fmt, language=lang, timezone=tz, demo_machines=machines)
    if settings.waivers_path is None:
        # The demo shows waivers at work: active, expiring soon, and expired (data/demo-waivers.yaml).
        settings = settings.model_copy(update={"waivers_path": settings.project_root / "data" / "demo-waivers.yaml"})
    if "downtime_cost_per_hour" not in settings.model_fields_set:
        # The demo prices the downtime it avoided at an example rate, stated on page 1 (set your own with
        # HOTPATCH_AUDIT_DOWNTIME_COST_PER_HOUR; a real run without it shows hours only).
        settings = settings.model_copy(update={"downtime_cost_per_hour": DEMO_DOWNTIME_COST_PER_HOUR})
    last = _parse_as_of(end) or latest_monthly_as_of(date.today())
    series = monthly_as_of_series(last, months)
    # What the last month's render needs is checked before the first month runs.
    from hotpatch_audit.files import check_target_folder
    from hotpatch_audit.pipeline import check_render_settings

    check_render_settings(settings)
    if out_dir is not None:
        check_target_folder(out_dir, "report")
    outcome = None
    worst = EXIT_OK
    for i, as_of in enumerate(series, start=1):
        label = f"[{i}/{len(series)}] {as_of:%Y-%m-%d} "
        outcome = _run_with_progress(settings, RunRequest(source="demo", as_of=as_of), render=i == len(series),
                                     label=label, out_dir=out_dir, per_owner=per_owner)
        err.print(f"{label}{outcome.status}, {outcome.findings:,} findings")
        worst = max(worst, outcome.exit_code)
    assert outcome is not None
    _report_outcome(outcome)
    err.print(f"ledger: {settings.path(settings.ledger_path)}")
    raise typer.Exit(worst)


@app.command()
@guard
def extract(
    save: Annotated[Path, typer.Option(help="Write the snapshot (pages + manifest.json) here")],
    source: Annotated[str, typer.Option(help="demo or arg")] = "demo",
    subscription: Annotated[list[str] | None, typer.Option(help="Subscription id (repeatable)")] = None,
    management_group: Annotated[list[str] | None, typer.Option(help="Management group (repeatable)")] = None,
    tenant: Annotated[list[str] | None, typer.Option(help="Tenant to read whole (repeatable; arg)")] = None,
    endpoint: EndpointOpt = None, ca_bundle: CaOpt = None, cloud: CloudOpt = None,
    as_of: Annotated[str | None, typer.Option(help="As-of time for the demo fleet [default: now]")] = None,
    machines: Annotated[int | None, typer.Option(help="Demo fleet size [default: 500]")] = None,
) -> None:
    """Extract only: save every query's pages to a snapshot directory, without touching the ledger.

    The directory must be new, empty, or a snapshot written by this tool (it is replaced whole, only once the
    new snapshot is complete). It holds SHA256SUMS: check it where it is read with hotpatch-audit verify DIR;
    run --source snapshot checks it too before reading.

    Example: hotpatch-audit extract --source demo --save ./snapshot-2026-11
    """
    from hotpatch_audit.files import check_target_folder
    from hotpatch_audit.pipeline import RunContext, _scope_for, extract_stage
    from hotpatch_audit.snapshot_check import check_as_of

    if source not in ("demo", "arg"):
        raise ConfigError(f"--source {source!r}: extract reads demo or arg (a snapshot is already extracted)")
    settings = settings_from(demo_machines=machines, arg_endpoint=endpoint, arg_ca_bundle=ca_bundle, arg_cloud=cloud)
    request = RunRequest(source=source, subscriptions=tuple(subscription or ()),
                         management_groups=tuple(management_group or ()), tenants=tuple(tenant or ()),
                         as_of=_parse_as_of(as_of))
    when = request.as_of or datetime.now(UTC).replace(microsecond=0)
    check_as_of(when, "--as-of", error=ConfigError)
    check_target_folder(save, "snapshot")  # never replaces a folder the tool did not write
    ctx = RunContext("extract", source, _scope_for(settings, request).key(), when, None, settings.work_dir)
    extracted = extract_stage(settings, ctx, save_dir=save)
    for name, rows in extracted.rows.items():
        note = f" INCOMPLETE: {extracted.errors[name]}" if name in extracted.errors else ""
        err.print(escape(f"{name}: {rows:,} rows{note}"))
    out.print(str(save))
    raise typer.Exit(EXIT_OK if extracted.complete else EXIT_INCOMPLETE)


@app.command()
@guard
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run to render [default: latest good run]")] = None,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False,
) -> None:
    """Re-render a past run's reports from the ledger (read-only; safe while an audit runs).

    Example: hotpatch-audit report --tz Asia/Tokyo --format pdf
    """
    from hotpatch_audit.ledger import latest_run, open_reader
    from hotpatch_audit.pipeline import render_stage

    settings = settings_from(ledger_path=ledger, formats=fmt, language=lang, timezone=tz)
    path = settings.path(settings.ledger_path)
    with open_reader(path, timeout=settings.lock_timeout_seconds, on_wait=err.print,
                     memory_limit=settings.duckdb_memory_limit) as con:
        rid = run_id or latest_run(con)
        if rid is None:
            raise LedgerError(f"{path}: no succeeded run to render")
        known = con.execute("SELECT status, superseded_by, note,"
                            " run_id IN (SELECT run_id FROM audit.findings) FROM meta.runs WHERE run_id = ?",
                            [rid]).fetchone()
    if known is None:
        raise ConfigError(f"no run {rid!r} in {path}")
    if known[0] in ("failed", "running", "loaded") or (known[0] == "superseded" and not known[3]):
        why = f": {known[2]}" if known[2] else ""
        raise ConfigError(f"run {rid} is {known[0]}{why}; nothing to render"
                          + (f" (render {known[1]} instead)" if known[1] else ""))
    if known[0] == "superseded":
        err.print(escape(f"note: run {rid} is not the run of record for its scope and as-of ({known[2]})"))
    for p in render_stage(settings, rid, out_dir, per_owner=per_owner):
        out.print(str(p))


@app.command()
@guard
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the ledger (read-only)")],
    ledger: LedgerOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or csv")] = "table",
    allow_file_access: Annotated[bool, typer.Option(
        "--allow-file-access", help="Let the SQL read and write other files and load extensions (COPY ... TO, "
        "read_csv, ATTACH, INSTALL, http URLs); off by default")] = False,
) -> None:
    """Ad-hoc SQL against the DuckDB ledger, opened read-only and without access to other files.

    The SQL sees the ledger only: statements that write or read files (COPY ... TO, read_csv,
    ATTACH, EXPORT DATABASE, INSTALL or LOAD of extensions, http URLs) or change settings are
    refused as a usage error (exit code 2) unless --allow-file-access is given. Text is printed
    inert: control characters removed, bidirectional controls shown as <U+202E>; with -o csv a cell
    that starts like a formula gets a leading ' (as in findings.csv).

    Example: hotpatch-audit query "select audit, status, count(*) from audit.findings group by all"
    """
    from decimal import Decimal

    from hotpatch_audit.exports import csv_cell, inert
    from hotpatch_audit.ledger import open_reader

    if output not in ("table", "csv"):
        raise ConfigError("--output must be table or csv")
    settings = settings_from(ledger_path=ledger)
    import duckdb

    def one_line(exc: Exception) -> str:
        return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)

    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit,
                     on_wait=err.print) as con:
        if not allow_file_access:
            # on the read-only connection: no file but the ledger, and the SQL cannot switch it back on
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.PermissionException as exc:
            raise ConfigError(f"query refused: {one_line(exc)} (file access is off: pass --allow-file-access "
                              "to read or write files)") from exc
        except duckdb.Error as exc:
            raise ConfigError(f"query failed: {one_line(exc)}") from exc
    if output == "csv":
        # as the CSV exports: inert text, formula guard (numbers stay numbers)
        writer = csv.writer(sys.stdout)
        writer.writerow([csv_cell(c) for c in columns])
        writer.writerows([v if v is None or isinstance(v, int | float | Decimal) else csv_cell(str(v)) for v in row]
                         for row in rows)
        return
    table = Table(*(escape(inert(c)) for c in columns))
    for row in rows:
        table.add_row(*("" if v is None else escape(inert(str(v))) for v in row))
    out.print(table)


@app.command()
@guard
def emulator(
    machines: Annotated[int | None, typer.Option(help="Demo fleet size to serve [default: 500]")] = None,
    as_of: Annotated[str | None, typer.Option(help="The fleet's as-of time [default: latest monthly run date]")] = None,
    db: Annotated[Path | None, typer.Option(help="Serve this DuckDB file of Resource Graph tables instead")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port)")] = 8443,
    token: Annotated[str, typer.Option(help="Bearer token the emulator accepts")] = "emulator-token",  # noqa: S107
    quota: Annotated[int, typer.Option(help="Requests per identity per 5 s window (0 = no quota)")] = 15,
    retry_after: Annotated[bool, typer.Option(help="Send Retry-After with 429 responses")] = True,
    latency_ms: Annotated[float, typer.Option(help="Added latency per request, in ms")] = 0,
    cert_dir: Annotated[Path | None, typer.Option(help="Where the TLS certificate and CA bundle go")] = None,
) -> None:
    """Serve a local Azure Resource Graph emulator over HTTPS (the demo fleet, or a DuckDB file).

    Point the arg source at it with --endpoint URL --ca-bundle FILE and the static token.

    Example: hotpatch-audit emulator --machines 20000 --port 8443 --latency-ms 200
    """
    from hotpatch_audit.demo.emulator import serve
    from hotpatch_audit.demo.source import demo_fleet

    settings = settings_from(demo_machines=machines)
    when = _parse_as_of(as_of) or latest_monthly_as_of(date.today())
    path = db or demo_fleet(settings, when)
    if not path.exists():
        raise ConfigError(f"--db {path}: no such file")
    serve(path, port=port, token=token, quota=quota or None, retry_after=retry_after, latency_ms=latency_ms,
          cert_dir=cert_dir or settings.path(settings.work_dir) / "emulator-tls", query_now=when, out=sys.stderr)


@app.command()
@guard
def verify(
    target: Annotated[Path, typer.Argument(help="Report folder or its manifest.json, or a saved snapshot directory")],
) -> None:
    """Check a report folder against its manifest.json: every listed file there, with its size and SHA-256,
    SHA256SUMS listing the same files with the same SHA-256s, and no other file in the folder.

    A snapshot directory (extract --save, run --save-snapshot) is checked against its SHA256SUMS, which
    must list every other file of the directory.

    Exit codes: 0 every file matches; 3 a file is missing, changed or listed nowhere, the two lists
    disagree, a path leaves the folder, the list is empty, or the manifest is unreadable (one line per
    problem); 2 no manifest at that path. Without this tool: cd DIR && sha256sum -c SHA256SUMS

    Example: hotpatch-audit verify out/reports/run-20261125T0300Z-1a2b3c4d
    """
    from hotpatch_audit.exports import inert
    from hotpatch_audit.manifest import verify as _verify

    result = _verify(target)
    for rel, problem in result.problems:
        # file names are untrusted too: one line each, no control characters, undecodable bytes as \x..
        line = inert(f"{rel}: {problem}").replace("\n", " ").encode("utf-8", "backslashreplace").decode("utf-8")
        err.print("[red]mismatch:[/red]", escape(line))
    if not result.ok:
        n = len(result.problems)
        err.print(escape(f"{n} problem{'' if n == 1 else 's'} found checking {result.checked} files of "
                         f"{result.manifest}"))
        raise typer.Exit(EXIT_FAILED)
    out.print(escape(f"all {result.checked} files match {result.manifest}"))


@app.command()
@guard
def rollup(
    tenant: Annotated[list[str], typer.Option(help="NAME=DIR: a tenant and its report folder (repeatable)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Roll-up folder (replaced whole)")],
    fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
) -> None:
    """Roll several tenants' report folders up into one report: rollup.html, rollup.pdf, rollup.csv and
    rollup.parquet (one row per tenant), with SHA256SUMS and manifest.json (docs/rollup.md).

    Reads each folder's Parquet exports, never a ledger, after checking the folder against its manifest.json.
    Exit codes: 0 written; 1 written, but a tenant's run did not succeed or its as-of time is stale; 2 a
    folder is missing or not a report folder with Parquet exports, or a bad option; 3 a folder does not
    match its manifest.json (nothing is written).

    Example: hotpatch-audit rollup --tenant contoso=out/contoso --tenant fabrikam=out/fabrikam --out out/rollup
    """
    from hotpatch_audit.rollup import parse_tenant_options, tenants_behind
    from hotpatch_audit.rollup import rollup as _rollup

    formats = [f.strip() for value in fmt or [] for f in value.split(",") if f.strip()]
    settings = settings_from(formats=formats, language=lang, timezone=tz)
    paths = _rollup(parse_tenant_options(tenant), out_dir, formats=settings.formats, language=settings.language,
                    timezone=settings.timezone, settings=settings)
    for path in paths:
        out.print(escape(str(path)), soft_wrap=True)
    behind = tenants_behind(paths[-1])
    if behind:
        err.print("[yellow]incomplete:[/yellow]", escape(f"{len(behind)} tenant(s) with a run that did not succeed "
                                                         f"or a stale as-of time: {', '.join(behind)}"))
    raise typer.Exit(EXIT_INCOMPLETE if behind else EXIT_OK)


app.add_typer(calendar_app, name="calendar")
app.command("diff")(guard(_diff))
app.command("import-facts")(import_facts)


@app.command()
def version() -> None:
    """Print the tool version.

    Example: hotpatch-audit version
    """
    out.print(__version__)


def _stop_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM (and SIGHUP) stop the process like Ctrl-C does: the run in progress is marked failed, naming it."""
    raise RunInterrupted(signal.Signals(signum).name)


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("SIGTERM", "SIGHUP"):  # Windows has no SIGHUP
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop_on_signal)
    app()


if __name__ == "__main__":
    main()
