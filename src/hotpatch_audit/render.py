"""Render one run of the ledger as audit.html, audit.pdf and findings.csv (read-only, from report.* views)."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from hotpatch_audit import __version__, charts
from hotpatch_audit.config import Settings
from hotpatch_audit.duck import connect

log = logging.getLogger(__name__)

Row = dict[str, Any]
Medium = Literal["html", "pdf"]

AUDITS: dict[str, str] = {
    "reboot_avoidance": "Reboot avoidance",
    "missed_hotpatches": "Missed hotpatches",
    "wsus_misconfigurations": "WSUS misconfigurations",
    "vbs_blockers": "VBS blockers",
}
REPORT_TITLE = "Windows Server hotpatch audit"
HTML_LIST_CAP = 2000  # rows per section list in audit.html; findings.csv always has all
OWNER_CAP = 20  # owners per owner table
FINDINGS_COLUMNS: tuple[str, ...] = (
    "finding_id",
    "run_id",
    "audit",
    "code",
    "machine_id",
    "machine_name",
    "machine_kind",
    "subscription_id",
    "resource_group",
    "owner",
    "track",
    "month",
    "status",
    "severity",
    "reason",
    "remediation",
    "evidence",
    "waiver_id",
)  # findings.csv column order: the findings shape of audits.md, then waiver_id; stable, new columns only append
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NO_OWNER = "(no owner tag)"  # the owner of machines without one, as the report views name it
PAGE_SIZES = {"A4": "A4", "Letter": "letter"}


class RenderError(Exception):
    """The report could not be rendered (unknown run, ledger without report views...)."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SectionContext:
    """One audit section: its counts and the findings it lists (already sorted and capped in SQL)."""

    audit: str = field(
        metadata=_help("Audit stem, e.g. vbs_blockers; names the template sections/<audit>.html.j2.")
    )
    title: str = field(metadata=_help("Section title, e.g. 'VBS blockers'."))
    overview: Row = field(metadata=_help("report.findings_overview row: findings by status and severity."))
    counts: list[Row] = field(metadata=_help("report.finding_counts rows: findings by code and status."))
    actions: list[Row] = field(metadata=_help("report.action_items rows (fail/warn, then unknown), capped."))
    actions_total: int = field(metadata=_help("All action rows of this audit in the run (before the cap)."))
    waived: list[Row] = field(metadata=_help("Waived findings, listed apart, capped."))
    waived_total: int = field(metadata=_help("All waived findings of this audit in the run."))
    cap: int = field(
        metadata=_help("Rows listed per list in this medium (pdf_top_n for PDF, 2,000 for HTML).")
    )
    extra: dict[str, Any] = field(
        metadata=_help("Audit-specific tables and charts (month table, funnel...).")
    )

    @property
    def actions_more(self) -> int:
        """Action rows not listed here (they are in findings.csv)."""
        return max(self.actions_total - len(self.actions), 0)

    @property
    def waived_more(self) -> int:
        """Waived rows not listed here."""
        return max(self.waived_total - len(self.waived), 0)


@dataclass(frozen=True)
class ReportContext:
    """Everything the templates see; no template reads time, environment or files on its own."""

    medium: Medium = field(metadata=_help("'html' (self-contained page) or 'pdf' (WeasyPrint, print CSS)."))
    title: str = field(metadata=_help("Report title, the running header of the PDF."))
    run: Row = field(metadata=_help("The meta.runs row of the run (scope, as_of, source, versions, status)."))
    generated_at: datetime = field(metadata=_help("When the report was rendered (UTC, injected)."))
    tool_version: str = field(metadata=_help("hotpatch-audit version that rendered the report."))
    timezone: str = field(metadata=_help("IANA zone in which times are shown (settings.timezone)."))
    language: str = field(metadata=_help("Report language (settings.language); sets <html lang>."))
    page_size: str = field(metadata=_help("CSS @page size from settings.page_size (A4 or letter)."))
    css: Markup = field(
        metadata=_help("Inlined stylesheet text of the HTML report (our static assets only).")
    )
    stylesheets: list[str] = field(
        metadata=_help("Static stylesheet names the PDF links (fetched by the guarded fetcher).")
    )
    period: Row = field(
        metadata=_help("report.reboot_period row: period, rates, reboots and downtime avoided.")
    )
    scope: Row = field(
        metadata=_help("report.scope_summary row: machines in scope, Windows, Linux, enrolled.")
    )
    statuses: list[Row] = field(metadata=_help("report.hotpatch_status_counts rows."))
    overview: list[Row] = field(metadata=_help("report.findings_overview rows, one per audit."))
    coverage: Row = field(
        metadata=_help("report.coverage_summary row: run status, queries, machines with gaps.")
    )
    coverage_issues: list[Row] = field(metadata=_help("report.coverage_issues rows: machines per issue."))
    queries: list[Row] = field(
        metadata=_help("meta.query_stats rows of the run (file, sha256, pages, rows, complete).")
    )
    queries_incomplete: list[Row] = field(
        metadata=_help("meta.query_stats rows that are incomplete or failed.")
    )
    settings_used: list[Row] = field(metadata=_help("meta.settings rows of the run (key, value)."))
    sections: list[SectionContext] = field(metadata=_help("One SectionContext per audit, in report order."))
    changes: list[Row] = field(
        metadata=_help(
            "report.finding_changes_counts rows, one per audit: new, regressed, still_open, fixed, unknown, "
            "waived since previous_run_id (null: first monthly run, nothing to compare)."
        )
    )
    change_items: list[Row] = field(
        metadata=_help("report.finding_changes_items rows: new and regressed findings, capped.")
    )
    change_items_total: int = field(metadata=_help("All new and regressed findings of the run (before the cap)."))
    csv_name: str = field(metadata=_help("File name of the findings CSV the report points to."))
    owner: str | None = field(
        default=None,
        metadata=_help("The owner a per-owner report is scoped to (untrusted text, escaped); None: the fleet."),
    )
    waivers: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Waivers the run applied: file and sha256 (None: no waiver file), active, expiring (within "
                       "30 days), expired and unmatched (scope matched no machine) report.waivers rows."),
    )


# --- Jinja environment -------------------------------------------------------------------------


def _localtime_filter(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    def localtime(value: datetime | None) -> str:
        """A ledger time (UTC, naive or aware) shown in the reader's zone."""
        if value is None:
            return "—"
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        local = aware.astimezone(zone)
        offset = f"{local:%z}"
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"

    return localtime


def _num(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.1f} %"


def _words(value: str | None) -> str:
    return "" if value is None else str(value).replace("_", " ")


@lru_cache(maxsize=8)
def build_environment(timezone: str, templates_dir: Path) -> Environment:
    """The one Jinja environment of the reports: autoescape, StrictUndefined, filters registered here."""
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = _localtime_filter(ZoneInfo(timezone))
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["words"] = _words
    return env


# --- URL fetcher for WeasyPrint ----------------------------------------------------------------


def static_only_fetcher(static_dir: Path) -> Any:
    """A WeasyPrint URL fetcher that serves data: URIs and files under static_dir, and refuses the rest."""
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    root = static_dir.resolve()

    class RefusedURLError(FatalURLFetchingError):  # type: ignore[misc]
        """A template asked for something outside the report's own assets: stop the render."""

    class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                path = Path(url2pathname(urlsplit(url).path)).resolve()
                if path.is_relative_to(root) and path.is_file():
                    return super().fetch(url, headers)
            raise RefusedURLError(f"refused to fetch {url[:200]!r}: only report assets and data: URIs")

    return StaticOnlyFetcher(allowed_protocols=("file", "data"))


# --- reading the ledger ------------------------------------------------------------------------


def report_sql_files(project_root: Path) -> list[Path]:
    """sql/report/*.sql in the order they must be applied (file names sort after their dependencies)."""
    return sorted((project_root / "sql" / "report").glob("*.sql"))


def apply_report_views(con: duckdb.DuckDBPyConnection, project_root: Path) -> None:
    """Create or replace the report.* views on a writable ledger connection (idempotent)."""
    con.execute("create schema if not exists report")
    for path in report_sql_files(project_root):
        con.execute(path.read_text(encoding="utf-8"))


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[Row]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> Row:
    rows = _rows(con, sql, params)
    if not rows:
        raise RenderError(f"no row for {params!r} from: {sql.strip().splitlines()[0]}")
    return rows[0]


_ACTION_SQL = """
    select * from report.action_items
    where run_id = $1 and audit = $2 and list_kind = $3
    order by status_rank, severity_rank, month nulls last, machine_name, code, finding_id
    limit $4
"""


@dataclass(frozen=True)
class _RunData:
    """Everything read from the ledger for one run, before it is cut to one medium's caps."""

    run: Row
    period: Row
    scope: Row
    statuses: list[Row]
    overview: list[Row]
    coverage: Row
    coverage_issues: list[Row]
    queries: list[Row]
    queries_incomplete: list[Row]
    settings_used: list[Row]
    sections: list[SectionContext]
    changes: list[Row]
    change_items: list[Row]
    waivers: dict[str, Any] = field(default_factory=dict)


def _check_views(con: duckdb.DuckDBPyConnection, project_root: Path) -> None:
    have = {
        r[0]
        for r in con.execute("select view_name from duckdb_views() where schema_name = 'report'").fetchall()
    }
    want = {p.stem for p in report_sql_files(project_root)}
    if missing := sorted(want - have):
        raise RenderError(
            f"ledger lacks report views {missing}: apply sql/report/*.sql on a writable connection first"
        )


def _read_run(con: duckdb.DuckDBPyConnection, run_id: str, cap: int) -> _RunData:
    p = [run_id]
    runs = _rows(con, "select * from meta.runs where run_id = $1", p)
    if not runs:
        raise RenderError(f"run {run_id!r} is not in the ledger")
    overview = _rows(con, "select * from report.findings_overview where run_id = $1 order by audit_order", p)
    by_audit = {o["audit"]: o for o in overview}
    months = _rows(con, "select * from report.reboot_months where run_id = $1 order by month", p)
    funnel = _rows(con, "select * from report.readiness_funnel where run_id = $1 order by gate", p)
    extras: dict[str, dict[str, Any]] = {
        "reboot_avoidance": {
            "months": months,
            "chart": charts.reboot_outcomes_svg(months) if months else None,
            "cost": _rows(con, "select * from report.reboot_cost_by_month where run_id = $1 order by month", p),
            "owners": _rows(
                con,
                "select * from report.reboot_by_owner where run_id = $1 and owner_rank <= $2 "
                "order by owner_rank",
                [run_id, OWNER_CAP],
            ),
        },
        "vbs_blockers": {
            "funnel": funnel,
            "chart": charts.readiness_funnel_svg(funnel) if funnel and funnel[0]["machines_total"] else None,
            "owners": _rows(
                con,
                "select * from report.readiness_by_owner where run_id = $1 "
                "and owner_rank <= $2 order by owner_rank",
                [run_id, OWNER_CAP],
            ),
        },
    }
    sections = []
    for audit, title in AUDITS.items():
        o = by_audit[audit]
        sections.append(
            SectionContext(
                audit=audit,
                title=title,
                overview=o,
                counts=_rows(
                    con,
                    "select * from report.finding_counts where run_id = $1 and audit = $2 order by code",
                    [run_id, audit],
                ),
                actions=_rows(con, _ACTION_SQL, [run_id, audit, "action", cap]),
                actions_total=int(o["fail"] + o["warn"] + o["unknown"]),
                waived=_rows(con, _ACTION_SQL, [run_id, audit, "waived", cap]),
                waived_total=int(o["waived"]),
                cap=cap,
                extra=extras.get(audit, {}),
            )
        )
    return _RunData(
        run=runs[0],
        period=_one(con, "select * from report.reboot_period where run_id = $1", p),
        scope=_one(con, "select * from report.scope_summary where run_id = $1", p),
        statuses=_rows(
            con, "select * from report.hotpatch_status_counts where run_id = $1 order by status_order", p
        ),
        overview=overview,
        coverage=_one(con, "select * from report.coverage_summary where run_id = $1", p),
        coverage_issues=_rows(
            con, "select * from report.coverage_issues where run_id = $1 order by issue_order", p
        ),
        queries=_rows(con, "select * from meta.query_stats where run_id = $1 order by query_name", p),
        queries_incomplete=_rows(
            con,
            "select * from meta.query_stats where run_id = $1 "
            "and (not complete or error is not null) order by query_name",
            p,
        ),
        settings_used=_rows(con, "select key, value from meta.settings where run_id = $1 order by key", p),
        sections=sections,
        changes=_rows(con, "select * from report.finding_changes_counts where run_id = $1 order by audit_order", p),
        change_items=_rows(
            con,
            "select * from report.finding_changes_items where run_id = $1 and item_rank <= $2 order by item_rank",
            [run_id, cap],
        ),
        waivers=_read_waivers(con, run_id),
    )


def _read_waivers(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The run's waiver file (path, SHA-256 from meta.settings) and its waivers by state."""
    p = [run_id]
    file = {r["key"]: r["value"] for r in _rows(
        con, "select key, value from meta.settings where run_id = $1 and key in ('waivers_file', 'waivers_sha256')", p)}
    rows = _rows(con, "select * from report.waivers where run_id = $1 order by expires, waiver_id", p)
    return {
        "file": file.get("waivers_file"),
        "sha256": file.get("waivers_sha256"),
        "active": [r for r in rows if r["state"] == "active"],
        "expiring": _rows(
            con, "select * from report.waivers_expiring where run_id = $1 order by expires, waiver_id", p),
        "expired": [r for r in rows if r["state"] == "expired"],
        "unmatched": [r for r in rows if r["machines_matched"] == 0],
    }


# --- output --------------------------------------------------------------------------------------


def neutralise_cell(value: Any) -> Any:
    """Prefix a single quote to text a spreadsheet would read as a formula (= + - @ tab CR)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write beside the target, then rename: readers never see a half-written report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_csv(con: duckdb.DuckDBPyConnection, run_id: str, path: Path, owner: str | None = None) -> int:
    cols = ", ".join(f"cast({c} as varchar) as {c}" if c == "evidence" else c for c in FINDINGS_COLUMNS)
    cur = con.execute(
        f"""select {cols} from audit.findings where run_id = $1
                and ($2::varchar is null or coalesce(owner, '{NO_OWNER}') = $2)
            order by audit, case status when 'fail' then 0 when 'warn' then 1 when 'unknown' then 2
                                        when 'waived' then 3 else 4 end,
                     machine_name, code, month nulls last, finding_id""",
        [run_id, owner],
    )
    written = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FINDINGS_COLUMNS)
        while batch := cur.fetchmany(10_000):
            writer.writerows([neutralise_cell(v) for v in row] for row in batch)
            written += len(batch)
    log.info("findings.csv: %d rows", written)
    return written


def _context(
    data: _RunData, medium: Medium, cap: int, *, settings: Settings, generated_at: datetime, static_dir: Path,
    owner: str | None = None,
) -> ReportContext:
    sheets = ["report.css", "print.css"] if medium == "pdf" else ["report.css", "screen.css"]
    css = Markup("\n".join((static_dir / s).read_text(encoding="utf-8") for s in sheets))  # noqa: S704
    sections = [
        SectionContext(
            audit=s.audit,
            title=s.title,
            overview=s.overview,
            counts=s.counts,
            actions=s.actions[:cap],
            actions_total=s.actions_total,
            waived=s.waived[:cap],
            waived_total=s.waived_total,
            cap=cap,
            extra=s.extra,
        )
        for s in data.sections
    ]
    return ReportContext(
        medium=medium,
        title=REPORT_TITLE,
        run=data.run,
        generated_at=generated_at,
        tool_version=__version__,
        timezone=settings.timezone,
        language=settings.language,
        page_size=PAGE_SIZES[settings.page_size],
        css=css if medium == "html" else Markup(""),
        stylesheets=sheets if medium == "pdf" else [],
        period=data.period,
        scope=data.scope,
        statuses=data.statuses,
        overview=data.overview,
        coverage=data.coverage,
        coverage_issues=data.coverage_issues,
        queries=data.queries,
        queries_incomplete=data.queries_incomplete,
        settings_used=data.settings_used,
        sections=sections,
        changes=data.changes,
        change_items=data.change_items[:cap],
        change_items_total=int(data.change_items[0]["items_total"]) if data.change_items else 0,
        csv_name="findings.csv",
        owner=owner,
        waivers=data.waivers,
    )


def _render_html(env: Environment, ctx: ReportContext) -> str:
    return env.get_template("report.html.j2").render(report=ctx, audits=AUDITS)


def render_reports(
    ledger_path: Path,
    run_id: str,
    out_dir: Path,
    *,
    settings: Settings,
    formats: Sequence[str] = ("html", "pdf", "csv"),
    generated_at: datetime | None = None,
    owner: str | None = None,
) -> list[Path]:
    """Render audit.html, audit.pdf and findings.csv for one run from the ledger (opened read-only); return the paths written.

    With owner, every report view and the CSV are scoped to that owner's machines and findings (the
    report_owner variable the report views filter on; '(no owner tag)' selects machines without one).
    """  # noqa: E501
    unknown = set(formats) - {"html", "pdf", "csv"}
    if unknown:
        raise RenderError(f"unknown report formats {sorted(unknown)}")
    root = settings.project_root
    static_dir = root / "reports" / "static"
    env = build_environment(settings.timezone, root / "reports" / "templates")
    generated = generated_at or datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cap = max(HTML_LIST_CAP if "html" in formats else 0, settings.pdf_top_n if "pdf" in formats else 0, 1)
    con = connect(ledger_path, read_only=True, memory_limit=settings.duckdb_memory_limit)
    try:
        _check_views(con, root)
        con.execute("set variable report_owner = ?", [owner])
        with _timed("read ledger"):
            data = _read_run(con, run_id, cap)
        for fmt in formats:
            path = out_dir / {"html": "audit.html", "pdf": "audit.pdf", "csv": "findings.csv"}[fmt]
            with _timed(path.name):
                if fmt == "csv":
                    _atomic_write(path, lambda p: _write_csv(con, run_id, p, owner))
                else:
                    medium: Medium = "html" if fmt == "html" else "pdf"
                    cap_here = HTML_LIST_CAP if medium == "html" else settings.pdf_top_n
                    ctx = _context(
                        data,
                        medium,
                        cap_here,
                        settings=settings,
                        generated_at=generated,
                        static_dir=static_dir,
                        owner=owner,
                    )
                    _atomic_write(path, _writer(env, ctx, static_dir))
            written.append(path)
    finally:
        con.close()
    return written


def _writer(env: Environment, ctx: ReportContext, static_dir: Path) -> Callable[[Path], None]:
    """A function that writes ctx as HTML or, through WeasyPrint and the guarded fetcher, as PDF."""

    def write(path: Path) -> None:
        html = _render_html(env, ctx)
        if ctx.medium == "html":
            path.write_text(html, encoding="utf-8")
            return
        from weasyprint import HTML

        base_url = static_dir.resolve().as_uri() + "/"
        HTML(string=html, base_url=base_url, url_fetcher=static_only_fetcher(static_dir)).write_pdf(str(path))

    return write


class _timed:
    """Log how long a step took (figures only)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        log.info("%s: %.2f s", self.what, time.perf_counter() - self.start)


def context_fields_help() -> Iterator[tuple[str, str, str]]:
    """(dataclass, field, help) for every context field; a test keeps them documented."""
    for cls in (ReportContext, SectionContext):
        for f in fields(cls):
            yield cls.__name__, f.name, f.metadata.get("help", "")


def owner_slug(owner: str) -> str:
    """A safe folder name for an owner (untrusted text): lower-case [a-z0-9-] words, at most 48 characters,
    plus 8 hex digits of the owner's SHA-256 so different owners never share a folder."""
    words = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", owner).lower()).strip("-")[:48].strip("-")
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:8]
    return f"{words or 'owner'}-{digest}"


def run_owners(ledger_path: Path, run_id: str, *, settings: Settings) -> list[str]:
    """The owners of the run's machines (core.machines; '(no owner tag)' when none), sorted."""
    con = connect(ledger_path, read_only=True, memory_limit=settings.duckdb_memory_limit)
    try:
        rows = con.execute(
            f"select distinct coalesce(owner, '{NO_OWNER}') from core.machines where run_id = $1 order by 1",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]
