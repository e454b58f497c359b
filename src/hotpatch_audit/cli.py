"""The hotpatch-audit command line: run, demo, extract, report, query."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from hotpatch_audit import __version__
from hotpatch_audit.cli_calendar import calendar_app
from hotpatch_audit.cli_diff import diff as _diff
from hotpatch_audit.cli_facts import import_facts
from hotpatch_audit.config import ReportFormat, Settings
from hotpatch_audit.console import (
    CONSOLES,
    EXIT_FAILED,
    VERBOSE,
    Output,
    alerts,
    err,
    guard,
    out,
    settings_from,
    write_rows,
)
from hotpatch_audit.errors import ConfigError, LedgerError, RunInterrupted
from hotpatch_audit.pipeline import (
    EXIT_FINDINGS,
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
    message = self.format_message().replace("Value error, ", "")
    alerts.print("[red]usage error:[/red]", escape(f"{message} (see: {command} --help)"))


# typer shows usage errors with UsageError.show (rich_markup_mode=None below): one line instead of three.
# Typer carries its own copy of click (typer._click); both classes are set, whichever this typer uses.
for _usage_error in {click.UsageError, getattr(getattr(typer, "_click", None), "exceptions", click).UsageError}:
    _usage_error.show = _usage_error_in_one_line

DEMO_DOWNTIME_COST_PER_HOUR = 250.0  # the demo's example cost of an hour of downtime (stated on page 1)

EXIT_CODES = (f"Exit codes: {EXIT_OK} success; {EXIT_INCOMPLETE} incomplete data (a query failed or came back "
              f"short, a stale tenant); 2 usage error; {EXIT_FAILED} failed run; {EXIT_FINDINGS} open findings at "
              "or above --fail-on SEVERITY (wins over 1: the run is reported, then the gate trips).")

app = typer.Typer(
    help="Hotpatch compliance audits for Windows Server: reboot avoidance, missed hotpatches, "
    "WSUS misconfigurations and VBS blockers.\n\n" + EXIT_CODES + "\n\nEvery command takes -h/--help; "
    "docs: README.md, docs/cookbook.md (queries), docs/exports.md (file formats).",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"hotpatch-audit {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log each step and print the traceback of an unexpected error (it always goes to "
        "a log file under the work dir)")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print only results, warnings and errors: no progress or notes")] = False,
    no_color: Annotated[bool, typer.Option(
        "--no-color", help="No colour or styles in the output (also when NO_COLOR is set)")] = False,
    _version: Annotated[bool, typer.Option(
        "--version", "-V", help="Print the version and exit", is_eager=True, callback=_print_version)] = False,
) -> None:
    """Hotpatch compliance audits for Windows Server."""
    if verbose and quiet:
        raise typer.BadParameter("give --verbose or --quiet, not both", param_hint="--quiet")
    VERBOSE["on"] = verbose
    if no_color:
        for console in CONSOLES:
            console.no_color = True
            console._color_system = None  # noqa: SLF001 - rich's switch for no ANSI styles at all (bold too)
    err.quiet = quiet
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
    elif quiet:
        logging.getLogger().setLevel(logging.ERROR)


REPORT_FORMATS: tuple[str, ...] = get_args(ReportFormat)  # the formats setting's values
ROLLUP_FORMATS: tuple[str, ...] = ("html", "pdf", "csv", "parquet")  # as hotpatch_audit.rollup.FORMATS


def _format_option(choices: tuple[str, ...], default: str) -> Any:
    """A repeatable --format whose values may also be comma-separated (--format html,pdf), checked against
    `choices` with a one-line error; its metavar lists them."""

    def split(values: list[str] | None) -> list[str] | None:
        found = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
        bad = [v for v in found if v not in choices]
        if bad:
            raise typer.BadParameter(f"{bad[0]!r} is not one of {', '.join(repr(c) for c in choices)}.")
        return found or None

    return typer.Option("--format", metavar="[" + "|".join(choices) + "]", callback=split,
                        help=f"Files to write (repeatable, or comma-separated) [default: {default}]")


Language = Literal["en", "ja"]
Cloud = Literal["public", "china", "usgov"]
Severity = Literal["critical", "high", "medium", "low", "info"]


LedgerOpt = Annotated[Path | None, typer.Option("--ledger", metavar="FILE",
    help="DuckDB ledger file [default: out/ledger.duckdb]")]
OutOpt = Annotated[Path | None, typer.Option("--out", metavar="DIR",
    help="Report folder [default: out/reports/<run id>]")]
FormatOpt = Annotated[list[str] | None, _format_option(
    REPORT_FORMATS, "setting formats: " + ", ".join(Settings.model_fields["formats"].get_default(
        call_default_factory=True)) + "; jsonl and ocsf for a SIEM, docs/exports.md")]
LangOpt = Annotated[Language | None, typer.Option("--lang", help="Report language [default: en]")]
EndpointOpt = Annotated[str | None, typer.Option(metavar="URL",
    help="Resource-Graph-compatible https endpoint (emulator, proxy)")]
CaOpt = Annotated[Path | None, typer.Option("--ca-bundle", metavar="FILE",
    help="CA bundle (PEM) to trust for --endpoint")]
CloudOpt = Annotated[Cloud | None, typer.Option(help="Azure cloud [default: public]")]
TzOpt = Annotated[str | None, typer.Option("--tz", metavar="ZONE",
    help="Show times in this zone, e.g. Asia/Tokyo [default: UTC]")]
PerOwnerOpt = Annotated[bool, typer.Option(
    "--per-owner", help="Also write one report per owner under <out>/owners/<owner>/ (plus the fleet report)")]
FailOnOpt = Annotated[Severity | None, typer.Option(
    "--fail-on", metavar="SEVERITY", help=f"Exit {EXIT_FINDINGS} when the run has open findings (waived ones "
    "excluded) at this severity or above: critical, high, medium, low or info")]


def _gate(settings: Settings, run_id: str, fail_on: str | None, code: int) -> int:
    """The exit code with --fail-on applied: EXIT_FINDINGS when the run has open findings at or above it (and
    the run did not fail), naming how many of each severity."""
    if fail_on is None or code == EXIT_FAILED:
        return code
    from hotpatch_audit.pipeline import open_findings_at_or_above

    found = open_findings_at_or_above(settings, run_id, fail_on)
    if not found:
        err.print(f"--fail-on {fail_on}: no open findings at {fail_on} or above")
        return code
    counts = ", ".join(f"{n:,} {severity}" for severity, n in found.items())
    alerts.print(f"[red]--fail-on {fail_on}:[/red] {counts} open finding(s) at {fail_on} or above "
                 f"(exit {EXIT_FINDINGS})")
    return EXIT_FINDINGS


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


@contextlib.contextmanager
def _showing_progress(label: str = "") -> Iterator[tuple[Progress, TaskID]]:
    """Show the steps of the work inside: on a terminal a live line (stage, the query, table, report view or
    file at hand, and its rows), off one a line per step (queries extracted and loaded, tables judged, files
    written), nothing with --quiet."""
    from hotpatch_audit.progress import listening

    with _progress() as progress:
        task = progress.add_task(f"{label}starting", total=None, rows="")

        def on_step(stage: str, what: str, count: int | None, detail: bool) -> None:
            rows = "" if count is None else f"{count:,} rows"
            if err.is_terminal:
                progress.update(task, description=escape(f"{label}{stage} {what}"), rows=rows)
            elif not detail:
                err.print(escape(f"{label}{stage} {what}" + (f": {rows}" if rows else "")))

        with listening(on_step):
            yield progress, task


def _run_with_progress(settings: Settings, request: RunRequest, render: bool, label: str = "",
                       out_dir: Path | None = None, per_owner: bool = False,
                       save_snapshot: bool = False) -> RunOutcome:
    with _showing_progress(label) as (progress, task):

        def on_stage(stage: str) -> None:
            progress.update(task, description=f"{label}{stage}", rows="")

        def on_page(query: str, rows: int, total: int) -> None:
            progress.update(task, description=f"{label}extract {query}", rows=f"{rows:,}/{total:,} rows")

        return run_audit(settings, request, render=render, on_stage=on_stage, on_page=on_page, out_dir=out_dir,
                         per_owner=per_owner, save_snapshot=save_snapshot)


def _report_outcome(outcome: RunOutcome) -> None:
    err.print(f"run {outcome.run_id}: {outcome.status}, {outcome.findings:,} findings")
    if outcome.error:
        alerts.print("[yellow]collection incomplete:[/yellow]", escape(str(outcome.error)))
    for path in outcome.report_paths:
        out.print(str(path))


@app.command()
@guard
def run(
    source: Annotated[Literal["demo", "snapshot", "arg"], typer.Option(
        help="demo: the built-in fleet; snapshot: a saved extract; arg: Azure Resource Graph")] = "demo",
    subscription: Annotated[list[str] | None, typer.Option(metavar="GUID",
        help="Subscription id (repeatable; arg)")] = None,
    management_group: Annotated[list[str] | None, typer.Option(metavar="NAME",
        help="Management group (repeatable; arg)")] = None,
    snapshot: Annotated[Path | None, typer.Option(metavar="DIR", help="Snapshot directory (source snapshot)")] = None,
    tenant: Annotated[list[str] | None, typer.Option(metavar="GUID",
        help="Tenant to read whole (repeatable; arg)")] = None,
    endpoint: EndpointOpt = None, ca_bundle: CaOpt = None, cloud: CloudOpt = None,
    as_of: Annotated[str | None, typer.Option(metavar="TIME",
        help="As-of time, ISO 8601 UTC, e.g. 2026-11-25T03:00Z [default: now]")] = None,
    machines: Annotated[int | None, typer.Option(metavar="N", help="Demo fleet size [default: 500]")] = None,
    on_demand: Annotated[
        bool, typer.Option("--on-demand", help="Not a monthly run (kept out of month-over-month)")
    ] = False,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False,
    save_snapshot: Annotated[bool, typer.Option(
        "--save-snapshot", help="Keep the extracted pages as <out>/snapshot/ (listed in manifest.json)")] = False,
    fail_on: FailOnOpt = None,
) -> None:
    """Run one audit: extract → load → audit → render.

    Azure credentials come from DefaultAzureCredential (az login, managed or workload identity,
    AZURE_* service-principal variables); Reader at the scope is enough. For an emulator or a
    recording proxy, set HOTPATCH_AUDIT_ARG_TOKEN and pass --endpoint and --ca-bundle.

    Example: hotpatch-audit run --source demo --as-of 2026-11-25T03:00Z --tz Asia/Tokyo
    In a pipeline: hotpatch-audit -q run --source arg --subscription <guid> --format ocsf --fail-on high
    """
    settings = settings_from(ledger_path=ledger, formats=fmt, language=lang, timezone=tz,
                             demo_machines=machines, arg_endpoint=endpoint, arg_ca_bundle=ca_bundle, arg_cloud=cloud)
    request = RunRequest(source=source, subscriptions=tuple(subscription or ()),
                         management_groups=tuple(management_group or ()), tenants=tuple(tenant or ()),
                         as_of=_parse_as_of(as_of), snapshot_dir=snapshot, is_monthly=not on_demand)
    outcome = _run_with_progress(settings, request, render=True, out_dir=out_dir, per_owner=per_owner,
                                 save_snapshot=save_snapshot)
    _report_outcome(outcome)
    raise typer.Exit(_gate(settings, outcome.run_id, fail_on, outcome.exit_code))


@app.command()
@guard
def demo(
    months: Annotated[int, typer.Option(metavar="N", help="Monthly runs to build, oldest first")] = 14,
    machines: Annotated[int | None, typer.Option(metavar="N", help="Demo fleet size [default: 500]")] = None,
    end: Annotated[
        str | None, typer.Option(metavar="TIME", help="As-of date of the last run [default: latest monthly run date]")
    ] = None,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False, fail_on: FailOnOpt = None,
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
    settings = settings_from(ledger_path=ledger, formats=fmt, language=lang, timezone=tz,
                             demo_machines=machines)
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
    raise typer.Exit(_gate(settings, outcome.run_id, fail_on, worst))


@app.command()
@guard
def extract(
    save: Annotated[Path, typer.Option(metavar="DIR", help="Write the snapshot (pages + manifest.json) here")],
    source: Annotated[Literal["demo", "arg"], typer.Option(
        help="demo: the built-in fleet; arg: Azure Resource Graph")] = "demo",
    subscription: Annotated[list[str] | None, typer.Option(metavar="GUID", help="Subscription id (repeatable)")] = None,
    management_group: Annotated[list[str] | None, typer.Option(metavar="NAME",
        help="Management group (repeatable)")] = None,
    tenant: Annotated[list[str] | None, typer.Option(metavar="GUID",
        help="Tenant to read whole (repeatable; arg)")] = None,
    endpoint: EndpointOpt = None, ca_bundle: CaOpt = None, cloud: CloudOpt = None,
    as_of: Annotated[str | None, typer.Option(metavar="TIME",
        help="As-of time for the demo fleet [default: now]")] = None,
    machines: Annotated[int | None, typer.Option(metavar="N", help="Demo fleet size [default: 500]")] = None,
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
    run_id: Annotated[str | None, typer.Argument(metavar="[RUN_ID]",
        help="Run to render [default: latest good run]")] = None,
    ledger: LedgerOpt = None, out_dir: OutOpt = None, fmt: FormatOpt = None, lang: LangOpt = None, tz: TzOpt = None,
    per_owner: PerOwnerOpt = False, fail_on: FailOnOpt = None,
) -> None:
    """Re-render a past run's reports from the ledger (read-only; safe while an audit runs).

    With --fail-on, exits 4 when the rendered run has open findings at that severity or above: a pipeline can
    gate on the ledger's latest run without running an audit.

    Example: hotpatch-audit report --tz Asia/Tokyo --format pdf
    Example: hotpatch-audit report --format jsonl --format ocsf --out findings/ --fail-on high
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
        alerts.print(escape(f"note: run {rid} is not the run of record for its scope and as-of ({known[2]})"))
    with _showing_progress():
        paths = render_stage(settings, rid, out_dir, per_owner=per_owner)
    for p in paths:
        out.print(str(p))
    raise typer.Exit(_gate(settings, rid, fail_on, EXIT_OK))


@app.command(context_settings={"ignore_unknown_options": True})
@guard
def query(
    sql: Annotated[str | None, typer.Argument(metavar="[SQL]", 
        help="SQL to run against the ledger (read-only); or give -f FILE, or pipe it on stdin")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", metavar="FILE", help="Read the SQL from this file ('-' = stdin)", allow_dash=True)] = None,
    ledger: LedgerOpt = None,
    output: Annotated[Output, typer.Option(
        "--output", "-o", help="table for people; csv or json (an array of objects) for tools")] = "table",
    allow_file_access: Annotated[bool, typer.Option(
        "--allow-file-access", help="Let the SQL read and write other files and load extensions (COPY ... TO, "
        "read_csv, ATTACH, INSTALL, http URLs); off by default")] = False,
) -> None:
    """Ad-hoc SQL against the DuckDB ledger, opened read-only and without access to other files.

    The SQL comes as the argument, from a file (-f FILE), or on stdin (-f -, or piped with no argument);
    SQL that starts with a -- comment works in all three. The last statement's rows are printed.
    docs/cookbook.md has ten questions answered this way; docs/schema.md says what every column means;
    the latest_* views hold the newest good run of each scope.

    The SQL sees the ledger only: statements that write or read files (COPY ... TO, read_csv,
    ATTACH, EXPORT DATABASE, INSTALL or LOAD of extensions, http URLs) or change settings are
    refused as a usage error (exit code 2) unless --allow-file-access is given. Text is printed
    inert: control characters removed, bidirectional controls shown as <U+202E>; with -o csv a cell
    that starts like a formula gets a leading ' (as in every CSV the tool writes); -o json escapes every
    non-ASCII character and round-trips the values exactly (times as ISO 8601 text).

    Example: hotpatch-audit query "select audit, status, count(*) from audit.findings group by all"
    Example: hotpatch-audit query -o json -f question.sql | jq '.[0]'
    """
    from hotpatch_audit.ledger import open_reader

    text = _query_text(sql, file)
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
            cur = con.execute(text)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.PermissionException as exc:
            raise ConfigError(f"query refused: {one_line(exc)} (file access is off: pass --allow-file-access "
                              "to read or write files)") from exc
        except duckdb.Error as exc:
            raise ConfigError(f"query failed: {one_line(exc)}") from exc
    write_rows(columns, rows, output)


def _query_text(sql: str | None, file: Path | None) -> str:
    """The SQL of `query`: the argument, the file (- for stdin), or piped stdin; exactly one of them."""
    if sql is not None and file is not None:
        raise ConfigError("give the SQL as an argument or with -f FILE, not both")
    if file is not None and str(file) != "-":
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"-f {file}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"-f {file}: not UTF-8 text ({exc.reason})") from exc
    elif file is not None or (sql is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif sql is None:
        raise ConfigError("no SQL: give it as an argument, with -f FILE, or on stdin")
    else:
        text = sql
    if not text.strip():
        raise ConfigError("the SQL is empty")
    return text


@app.command()
@guard
def emulator(
    machines: Annotated[int | None, typer.Option(help="Demo fleet size to serve [default: 500]")] = None,
    as_of: Annotated[str | None, typer.Option(metavar="TIME",
        help="The fleet's as-of time [default: latest monthly run date]")] = None,
    db: Annotated[Path | None, typer.Option(metavar="FILE",
        help="Serve this DuckDB file of Resource Graph tables instead")] = None,
    port: Annotated[int, typer.Option(metavar="PORT", help="Port on 127.0.0.1 (0 = any free port)")] = 8443,
    token: Annotated[str, typer.Option(metavar="TOKEN",
        help="Bearer token the emulator accepts")] = "emulator-token",  # noqa: S107
    quota: Annotated[int, typer.Option(metavar="N", help="Requests per identity per 5 s window (0 = no quota)")] = 15,
    retry_after: Annotated[bool, typer.Option(help="Send Retry-After with 429 responses")] = True,
    latency_ms: Annotated[float, typer.Option(metavar="MS", help="Added latency per request, in ms")] = 0,
    cert_dir: Annotated[Path | None, typer.Option(metavar="DIR",
        help="Where the TLS certificate and CA bundle go")] = None,
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
    target: Annotated[Path, typer.Argument(metavar="DIR",
        help="Report folder or its manifest.json, or a saved snapshot directory")],
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
        alerts.print("[red]mismatch:[/red]", escape(line))
    if not result.ok:
        n = len(result.problems)
        alerts.print(escape(f"{n} problem{'' if n == 1 else 's'} found checking {result.checked} files of "
                         f"{result.manifest}"))
        raise typer.Exit(EXIT_FAILED)
    out.print(escape(f"all {result.checked} files match {result.manifest}"))


@app.command()
@guard
def rollup(
    tenant: Annotated[list[str], typer.Option(metavar="NAME=DIR",
        help="NAME=DIR: a tenant and its report folder (repeatable)")],
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="Roll-up folder (replaced whole)")],
    fmt: Annotated[list[str] | None, _format_option(ROLLUP_FORMATS, "all four")] = None,
    lang: LangOpt = None, tz: TzOpt = None,
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

    settings = settings_from(formats=fmt, language=lang, timezone=tz)
    paths = _rollup(parse_tenant_options(tenant), out_dir, formats=settings.formats, language=settings.language,
                    timezone=settings.timezone, settings=settings)
    for path in paths:
        out.print(escape(str(path)), soft_wrap=True)
    behind = tenants_behind(paths[-1])
    if behind:
        alerts.print("[yellow]incomplete:[/yellow]", escape(f"{len(behind)} tenant(s) with a run that did not succeed "
                                                         f"or a stale as-of time: {', '.join(behind)}"))
    raise typer.Exit(EXIT_INCOMPLETE if behind else EXIT_OK)


app.add_typer(calendar_app, name="calendar")
app.command("diff")(guard(_diff))
app.command("import-facts")(import_facts)


@app.command()
def version() -> None:
    """Print the tool version (as hotpatch-audit --version does).

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
