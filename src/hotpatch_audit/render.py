"""Render one run of the ledger as audit.html, audit.pdf and the exports (read-only, from report.* views)."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit
from urllib.request import url2pathname
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from hotpatch_audit import __version__, audit_meta, charts, i18n
from hotpatch_audit.concurrency import in_background
from hotpatch_audit.config import ReportFormat, Settings
from hotpatch_audit.duck import connect
from hotpatch_audit.errors import HotpatchAuditError, RenderError
from hotpatch_audit.exports import FINDINGS, FORMAT_EXPORTS, NO_OWNER, inert, write_export
from hotpatch_audit.exports import neutralise_cell as neutralise_cell  # its home is exports; kept importable here
from hotpatch_audit.files import atomic_write
from hotpatch_audit.finding_text import translate_finding, translate_phrase
from hotpatch_audit.manifest import utc_stamp
from hotpatch_audit.ocsf import FILE_NAME as OCSF_FILE_NAME
from hotpatch_audit.ocsf import write_findings_ocsf
from hotpatch_audit.prices import prices_version
from hotpatch_audit.progress import step

log = logging.getLogger(__name__)

Row = dict[str, Any]
Medium = Literal["html", "pdf"]

# English titles in report order, from each audit's metadata file (sql/audit/*.toml); reports show
# i18n.gettext(title).
AUDITS: dict[str, str] = audit_meta.load().titles()
SUMMARIES: dict[str, str] = {a.name: a.summary for a in audit_meta.load().audits}
CODE_ACTIONS: dict[tuple[str, str], str] = audit_meta.load().actions()  # short fixes for page 1
REPORT_TITLE = i18n.N_("Windows Server hotpatch audit")
HTML_LIST_CAP = 2000  # rows per section list in audit.html; open_actions.csv always has all
OWNER_CAP = 20  # owners per owner table
GROUP_HTML_CAP = 100  # findings per owner / subscription list in audit.html (never fewer than the PDF lists)
MACHINE_INDEX_CAP = HTML_LIST_CAP  # machines in the machine index of audit.html (most findings first)
# findings.csv column order: the findings shape of audits.md, then waiver_id; stable, new columns only append.
# The one definition (names, types, meanings) is hotpatch_audit.exports.FINDINGS.
FINDINGS_COLUMNS: tuple[str, ...] = FINDINGS.names
PAGE_SIZES = {"A4": "A4", "Letter": "letter"}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SectionContext:
    """One audit section: its counts and the findings it lists (already sorted and capped in SQL)."""

    audit: str = field(
        metadata=_help("Audit stem, e.g. vbs_blockers; names the template sections/<audit>.html.j2 (an audit "
                       "without one is shown by sections/_default.html.j2).")
    )
    title: str = field(metadata=_help("Section title, e.g. 'VBS blockers'."))
    summary: str = field(metadata=_help("The audit's one-line summary from its metadata file (English)."))
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
    rollup: list[Row] = field(
        default_factory=list,
        metadata=_help("report.action_fixes rows: the audit's open actions rolled up by cause and fix (F1, F2 ... "
                       "by fix_rank; code: the codes it fixes), each with machines, severity, overdue and first due "
                       "date."),
    )
    exceptions: list[Row] = field(
        default_factory=list,
        metadata=_help("report.exceptions_by_month rows of this audit: the period's exceptions counted by month."),
    )

    @property
    def actions_more(self) -> int:
        """Action rows not listed here (they are in open_actions.csv)."""
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
    csv_name: str = field(metadata=_help("File name of the open-actions CSV the lists point to (open_actions.csv)."))
    detail_name: str = field(
        default="findings.parquet",
        metadata=_help("File name of the complete findings with their evidence (findings.parquet)."),
    )
    owner: str | None = field(
        default=None,
        metadata=_help("The owner a per-owner report is scoped to (untrusted text, escaped); None: the fleet."),
    )
    waivers: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Waivers the run applied: file and sha256 (None: no waiver file), active, expiring (within "
                       "30 days), expired and unmatched (scope matched no machine) report.waivers rows."),
    )
    script: Markup = field(
        default=Markup(""),
        metadata=_help("Inlined script of the HTML report (reports/static/report.js: sort, filter, search, "
                       "machine deep links); empty in the PDF."),
    )
    machine_index: list[Row] = field(
        default_factory=list,
        metadata=_help("report.machine_index rows (machines with a finding that is not a pass, most first), "
                       "capped; the HTML report's machine index, target of the #m-... deep links."),
    )
    summary: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Executive summary: kpis (report.summary_kpis rows by kpi: value, previous_value, delta, "
                       "direction, assessment), open_findings (report.summary_open_findings rows, per audit and "
                       "'all'), previous_run_id and previous_as_of (None: no previous run to compare with)."),
    )
    groups: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Machines needing action per owner and per subscription: owner and subscription (the largest "
                       "OWNER_CAP groups: key, name, rank, items_total, machines, open, unknown and items, "
                       "report.action_items_by_group rows capped at pdf_group_top_n in the PDF, GROUP_HTML_CAP "
                       "in HTML; cap), owner_total and subscription_total, by_owner (report.findings_by_owner rows) "
                       "and by_owner_chart."),
    )
    author: str = field(
        default="hotpatch-audit",
        metadata=_help("Author of the report (settings.report_author): <meta name=author>, the PDF's /Author."),
    )
    glance: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Page 1, for the manager: top (report.top_actions, the ten machines to fix first), trend "
                       "(report.reboot_months rows of hotpatch months), cost_per_hour and currency "
                       "(settings downtime_cost_per_hour, currency_code) and windows (remediation days per "
                       "severity of the run, core.run_settings)."),
    )
    attestation: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("The auditor's attestation: months (report.attest_months), runs (report.attest_runs), "
                       "calendar (report.attest_calendar), coverage (report.attest_coverage_summary), "
                       "coverage_exceptions (report.attest_coverage_exceptions rows that affect an audit, "
                       "capped) and coverage_exceptions_total."),
    )
    register: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("The period's exceptions for the appendix: rows (report.exceptions_register, capped), "
                       "total and cap."),
    )
    prices_version: str | None = field(
        default=None,
        metadata=_help("Version of the price table the costs use (prices.prices_version: SHA-256 of "
                       "data/prices.csv, 12 hex digits)."),
    )

    @property
    def created(self) -> str:
        """generated_at as a W3C date-time in UTC: <meta name=dcterms.created>, the PDF's /CreationDate."""
        return utc_stamp(self.generated_at)


# --- Jinja environment -------------------------------------------------------------------------


def _localtime_filter(zone: ZoneInfo, language: str = "en") -> Callable[[datetime | None], str]:
    def localtime(value: datetime | None) -> str:
        """A ledger time (UTC, naive or aware) shown in the reader's zone and the report's language."""
        return i18n.format_time(value, zone, language)

    return localtime


def _words(value: str | None) -> str:
    return "" if value is None else str(value).replace("_", " ")


_LONG_TOKEN = re.compile(r"\S{12,}")
_SEPARATOR = re.compile(r"(?<=[\\/_.:>=-])")


def breakable(text: Any) -> Markup:
    """Text (escaped, made inert) whose long tokens (registry paths, resource ids, codes) may break after their
    separators (backslash, slash, underscore, dot, colon, >, =, -) instead of mid-word: <wbr> in the markup,
    nothing added to the text a reader copies."""
    if text is None:
        return Markup("")
    escaped = str(Markup.escape(inert(str(text))))

    def split(match: re.Match[str]) -> str:
        token = match.group(0)
        if "&" in token:  # an escaped entity must stay whole: break only outside it
            return re.sub(r"(?<=[\\/_.:=-])(?![^&;]*;)", "<wbr>", token)
        return _SEPARATOR.sub("<wbr>", token)

    return Markup(_LONG_TOKEN.sub(split, escaped))  # noqa: S704 - escaped above, only <wbr> added


def first_sentence(text: str | None, limit: int = 160) -> str:
    """The first sentence of a fix (page 1 lists one line per machine; the section has the whole text),
    cut at a word with an ellipsis when longer than limit characters."""
    if not text:
        return ""
    match = re.search(r"(?<=[.。])\s", text)
    head = text[: match.start()] if match else text
    if len(head) > limit:
        head = head[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return head


_CSS_COUNTERS = {"run": "string(run-id)", "page": "counter(page)", "pages": "counter(pages)"}


def _footer_css(text: str) -> Markup:
    """A translated page-footer text ('Page %(page)s of %(pages)s') as a CSS content value with counters."""
    parts = re.split(r"%\((\w+)\)s", str(text))
    css = []
    for i, part in enumerate(parts):
        if i % 2:
            css.append(_CSS_COUNTERS[part])
        elif part:
            css.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return Markup(" ".join(css))  # noqa: S704 - our catalog's text, quoted for CSS


def _inert_output(value: Any) -> Any:
    """Jinja's finalize: every value a template prints is made inert (exports.inert) before it is escaped, so
    Azure text cannot carry NUL or bidirectional controls into the page; markup (our CSS, script, charts and
    `_()` with escaped arguments) is cleaned the same way, the visible form escaped."""
    if hasattr(value, "__html__"):
        return Markup(inert(str(value.__html__()), "&lt;U+{:04X}&gt;"))  # noqa: S704 - markup stays markup
    if isinstance(value, str):
        return inert(value)
    return value


@lru_cache(maxsize=8)
def build_environment(timezone: str, templates_dir: Path, language: str = "en") -> Environment:
    """The one Jinja environment of the reports: autoescape, StrictUndefined, every printed value made inert
    (_inert_output), filters registered here, and jinja2.ext.i18n with the language's catalog (`_()` and
    `{% trans %}` in templates; hotpatch_audit.i18n)."""
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_inert_output,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = _localtime_filter(ZoneInfo(timezone), language)
    env.filters["localday"] = lambda value: i18n.format_day(value, ZoneInfo(timezone))
    env.filters["num"] = lambda value: i18n.format_number(value, language)
    env.filters["pct"] = lambda value: i18n.format_percent(value, language)
    env.filters["phrase"] = lambda value: value if language == i18n.SOURCE_LANGUAGE else translate_phrase(value)
    env.globals["footer_css"] = _footer_css
    # the space between sentences and clauses; Japanese sets none (its punctuation carries the break)
    env.globals["sentence_gap"] = "" if language == "ja" else " "
    env.filters["money"] = lambda value, currency, cents=False: i18n.format_money(value, currency, language, cents)
    env.filters["first_sentence"] = first_sentence
    env.filters["wbr"] = breakable
    env.filters["words"] = _words
    env.filters["anchor"] = machine_anchor
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
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    read = _READS.search(sql)
    if read:  # the report's sections are read view by view: shown live on a terminal
        step("render", f"read {read.group(1)}", len(rows), detail=True)
    return rows


_READS = re.compile(r"from\s+((?:report|audit|meta|core)\.\w+)", re.IGNORECASE)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> Row:
    rows = _rows(con, sql, params)
    if not rows:
        raise RenderError(f"no row for {params!r} from: {sql.strip().splitlines()[0]}")
    return rows[0]


_ACTION_SQL = """
    select * from report.action_items
    where run_id = $1 and audit = $2 and list_kind = $3
    order by status_rank, due_date nulls last, severity_rank, days_overdue desc nulls last, machine_name, code,
        finding_id
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
    machine_index: list[Row] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Any] = field(default_factory=dict)
    glance: dict[str, Any] = field(default_factory=dict)
    attestation: dict[str, Any] = field(default_factory=dict)
    register: dict[str, Any] = field(default_factory=dict)


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


def _read_run(con: duckdb.DuckDBPyConnection, run_id: str, cap: int, group_cap: int | None = None) -> _RunData:
    p = [run_id]
    runs = _rows(con, "select * from meta.runs where run_id = $1", p)
    if not runs:
        raise RenderError(f"run {run_id!r} is not in the ledger")
    overview = _rows(con, "select * from report.findings_overview where run_id = $1 order by audit_order", p)
    by_audit = {o["audit"]: o for o in overview}
    months = _rows(con, "select * from report.reboot_months where run_id = $1 order by month", p)
    funnel = _rows(con, "select * from report.readiness_funnel where run_id = $1 order by gate", p)
    blockers = _rows(con, "select * from report.readiness_blockers where run_id = $1 order by blocker_order", p)
    trend = _rows(con, "select * from report.trend_enrollment where run_id = $1 order by month", p)
    extras: dict[str, dict[str, Any]] = {
        "reboot_avoidance": {
            "months": months,
            "chart": charts.reboots_avoided_taken_svg(months) if months else None,
            "rate_chart": charts.reboot_free_rate_svg(months)
            if any(m["reboot_free_rate"] is not None for m in months) else None,
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
            "blockers": blockers,
            "blockers_chart": charts.blockers_svg(blockers) if blockers else None,
            "trend": trend,
            "trend_chart": charts.enrollment_trend_svg(trend) if trend else None,
            "owners": _rows(
                con,
                "select * from report.readiness_by_owner where run_id = $1 "
                "and owner_rank <= $2 order by owner_rank",
                [run_id, OWNER_CAP],
            ),
        },
    }
    rollups = _rows(con, "select * from report.action_fixes where run_id = $1 order by audit, fix_rank", p)
    exceptions = _rows(con, "select * from report.exceptions_by_month where run_id = $1 order by audit, month", p)
    sections = []
    for audit, title in AUDITS.items():
        o = by_audit[audit]
        sections.append(
            SectionContext(
                audit=audit,
                title=title,
                summary=SUMMARIES.get(audit, ""),
                overview=o,
                counts=_rows(
                    con,
                    "select * from report.finding_counts where run_id = $1 and audit = $2 order by code",
                    [run_id, audit],
                ),
                actions=_rows(con, _ACTION_SQL, [run_id, audit, "action", cap]),
                actions_total=int(o["actions"]),
                waived=_rows(con, _ACTION_SQL, [run_id, audit, "waived", cap]),
                waived_total=int(o["waived"]),
                cap=cap,
                extra=extras.get(audit, {}),
                rollup=[r for r in rollups if r["audit"] == audit],
                exceptions=[e for e in exceptions if e["audit"] == audit],
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
        summary=_read_summary(con, run_id),
        groups=_read_groups(con, run_id, cap if group_cap is None else group_cap),
        machine_index=_rows(
            con,
            "select * from report.machine_index where run_id = $1 and machine_rank <= $2 order by machine_rank",
            [run_id, MACHINE_INDEX_CAP],
        ),
        glance=_read_glance(con, run_id, months),
        attestation=_read_attestation(con, run_id, cap),
        register=_read_register(con, run_id, max(cap, PDF_REGISTER_LINES)),
    )


TOP_ACTIONS = 10  # machines to fix first, on page 1
PDF_CHANGE_ITEMS = 10  # new and regressed findings listed in the PDF's summary (audit.html and `diff` have all)
PDF_REGISTER_LINES = 300  # lines of the period's register in the PDF appendix (about 6 pages; exceptions.csv: all)


def _register_cap(medium: Medium) -> int:
    """Lines of the period's register a medium lists: the PDF's appendix PDF_REGISTER_LINES, audit.html
    HTML_LIST_CAP."""
    return PDF_REGISTER_LINES if medium == "pdf" else HTML_LIST_CAP


COVERAGE_LIST_CAP = 100  # coverage exceptions listed in the PDF's attestation (coverage_exceptions.csv has all)


def _medium_cap(medium: Medium, settings: Settings) -> int:
    """Rows listed per section list in a medium: HTML_LIST_CAP in audit.html, pdf_top_n in the PDF."""
    return HTML_LIST_CAP if medium == "html" else settings.pdf_top_n


def _medium_actions(rows: list[Row], medium: Medium) -> list[Row]:
    """The action rows a medium lists: audit.html every one; the PDF those to fix (fail or warn). Actions that
    only wait for current data (unknown) are counted in the audit's roll-up and listed in open_actions.csv."""
    return rows if medium == "html" else [r for r in rows if r["status"] in ("fail", "warn")]


def _read_glance(con: duckdb.DuckDBPyConnection, run_id: str, months: list[Row]) -> dict[str, Any]:
    """Page 1: the machines to fix first, the rates' trend over the period's hotpatch months, and the run's
    remediation windows."""
    windows = _one(con, "select remediation_days_critical as critical, remediation_days_high as high, "
                        "remediation_days_medium as medium, remediation_days_low as low, "
                        "remediation_days_info as info from core.run_settings where run_id = $1", [run_id])
    top = _rows(con, "select * from report.top_actions where run_id = $1 and machine_rank <= $2 "
                     "order by machine_rank", [run_id, TOP_ACTIONS])
    return {
        # each machine's one action in a few words: the code's short action, else (KB-specific fixes such as
        # "Install KB... and reboot") the first sentence of its remediation
        "top": [{**t, "short_action": CODE_ACTIONS.get((t["audit"], t["code"]), "")} for t in top],
        "trend": [m for m in months if m["efficacy_rate"] is not None or m["reboot_free_rate"] is not None],
        "windows": windows,
    }


def _read_attestation(con: duckdb.DuckDBPyConnection, run_id: str, cap: int) -> dict[str, Any]:
    """The auditor's attestation: per-month compliance, the runs of the period, the calendar rows used and the
    coverage exceptions by audit affected."""
    p = [run_id]
    exceptions = _rows(
        con, "select * from report.attest_coverage_exceptions where run_id = $1 and audits_affected <> '' "
             "order by audits_affected, machine_name, machine_id limit $2", [run_id, min(cap, COVERAGE_LIST_CAP)])
    (total,) = con.execute("select count(*) from report.attest_coverage_exceptions where run_id = $1 "
                           "and audits_affected <> ''", p).fetchone() or (0,)
    return {
        "months": _rows(con, "select * from report.attest_months where run_id = $1 order by month", p),
        "runs": _rows(con, "select * from report.attest_runs where run_id = $1 and status <> 'superseded' "
                           "order by as_of, period_run_id", p),
        "superseded": int((con.execute("select count(*) from report.attest_runs where run_id = $1 "
                                       "and status = 'superseded'", p).fetchone() or (0,))[0]),
        "calendar": _rows(con, "select * from report.attest_calendar where run_id = $1 "
                               "order by month, track, release_date nulls first, kind", p),
        "coverage": _rows(con, "select * from report.attest_coverage_summary where run_id = $1 "
                               "order by audit_order", p),
        "coverage_exceptions": exceptions,
        "coverage_exceptions_total": int(total),
    }


def _read_register(con: duckdb.DuckDBPyConnection, run_id: str, cap: int) -> dict[str, Any]:
    """The period's exceptions for the appendix, one row per machine and code, the first cap of them."""
    rows = _rows(con, "select * from report.exceptions_register where run_id = $1 and register_rank <= $2 "
                      "order by register_rank", [run_id, cap])
    (total,) = con.execute("select count(*) from report.exceptions_register where run_id = $1",
                           [run_id]).fetchone() or (0,)
    return {"rows": rows, "total": int(total)}


def _read_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The executive summary: key figures and open findings with their change since the previous run."""
    p = [run_id]
    kpis = _rows(con, "select * from report.summary_kpis where run_id = $1 order by kpi_order", p)
    return {
        "kpis": {k["kpi"]: k for k in kpis},
        "open_findings": _rows(
            con, "select * from report.summary_open_findings where run_id = $1 order by audit_order", p),
        "previous_run_id": kpis[0]["previous_run_id"] if kpis else None,
        "previous_as_of": kpis[0]["previous_as_of"] if kpis else None,
    }


def _read_groups(con: duckdb.DuckDBPyConnection, run_id: str, cap: int) -> dict[str, Any]:
    """Machines needing action per owner and per subscription (report.action_items_by_group), the largest
    OWNER_CAP groups of each kind with up to cap findings each, and findings by owner with its chart."""
    rows = _rows(
        con,
        "select * from report.action_items_by_group where run_id = $1 and group_rank <= $2 and item_rank <= $3 "
        "order by group_kind, group_rank, item_rank",
        [run_id, OWNER_CAP, cap],
    )
    groups: dict[str, Any] = {"owner": [], "subscription": [], "owner_total": 0, "subscription_total": 0}
    for r in rows:
        kind = r["group_kind"]
        if not groups[kind] or groups[kind][-1]["key"] != r["group_key"]:
            groups[f"{kind}_total"] = int(r["groups_total"])
            groups[kind].append({
                "key": r["group_key"], "name": r["group_name"], "rank": int(r["group_rank"]),
                "items_total": int(r["group_items"]), "machines": int(r["group_machines"]),
                "open": int(r["group_open"]), "unknown": int(r["group_unknown"]), "items": [],
            })
        groups[kind][-1]["items"].append(r)
    owners = _rows(
        con,
        "select * from report.findings_by_owner where run_id = $1 and owner_rank <= $2 order by owner_rank",
        [run_id, OWNER_CAP],
    )
    groups["by_owner"] = owners
    # the chart draws owner names as glyphs: inert first, so a bidi control shows as <U+...> there too
    drawn = [{**o, "owner": inert(o["owner"]) if isinstance(o["owner"], str) else o["owner"]} for o in owners]
    groups["by_owner_chart"] = charts.findings_by_owner_svg(drawn) if owners else None
    return groups


def _group_cap(medium: Medium, settings: Settings) -> int:
    """Findings listed per owner and per subscription: pdf_group_top_n (at most pdf_top_n) in the PDF,
    GROUP_HTML_CAP (at least as many as the PDF) in audit.html."""
    pdf = min(settings.pdf_group_top_n, settings.pdf_top_n)
    return pdf if medium == "pdf" else max(GROUP_HTML_CAP, pdf)


def _cut_groups(groups: dict[str, Any], cap: int, language: str) -> dict[str, Any]:
    """The groups with at most cap findings each (in the report language)."""
    out = {**groups, "cap": cap}
    for kind in ("owner", "subscription"):
        out[kind] = [{**g, "items": _localised(g["items"][:cap], language)} for g in groups.get(kind, [])]
    return out


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


def _context(
    data: _RunData, medium: Medium, cap: int, *, settings: Settings, generated_at: datetime, static_dir: Path,
    owner: str | None = None,
) -> ReportContext:
    sheets = ["report.css", "print.css"] if medium == "pdf" else ["report.css", "screen.css"]
    css = Markup("\n".join((static_dir / s).read_text(encoding="utf-8") for s in sheets))  # noqa: S704
    sections = [
        SectionContext(
            audit=s.audit,
            title=i18n.gettext(s.title),
            summary=s.summary,
            overview=s.overview,
            counts=s.counts,
            actions=_localised(_medium_actions(s.actions, medium)[:cap], settings.language),
            actions_total=s.actions_total if medium == "html" else int(s.overview["actions_open"]),
            waived=_localised(s.waived[:cap], settings.language),
            waived_total=s.waived_total,
            cap=cap,
            extra=s.extra,
            rollup=_localised(s.rollup, settings.language),
            exceptions=s.exceptions,
        )
        for s in data.sections
    ]
    return ReportContext(
        medium=medium,
        title=i18n.gettext(REPORT_TITLE),
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
        change_items=_localised(data.change_items[:cap if medium == "html" else PDF_CHANGE_ITEMS], settings.language),
        change_items_total=int(data.change_items[0]["items_total"]) if data.change_items else 0,
        csv_name="open_actions.csv",
        owner=owner,
        waivers=data.waivers,
        script=_script(static_dir) if medium == "html" else Markup(""),
        machine_index=data.machine_index if medium == "html" else [],
        summary=data.summary,
        groups=_cut_groups(data.groups, _group_cap(medium, settings), settings.language),
        author=settings.report_author,
        glance={**data.glance, "top": _localised(data.glance.get("top", []), settings.language),
                "cost_per_hour": settings.downtime_cost_per_hour, "currency": settings.currency_code},
        attestation=data.attestation,
        register={**data.register, "rows": data.register.get("rows", [])[:_register_cap(medium)],
                  "cap": _register_cap(medium)},
        # the price table the run was registered with (meta.settings prices_version), else this checkout's
        prices_version=next((str(r["value"]) for r in data.settings_used if r["key"] == "prices_version"),
                            prices_version(settings.project_root)),
    )


def _script(static_dir: Path) -> Markup:
    """reports/static/report.js, to inline into audit.html (our own file; refused if it could end the element)."""
    js = (static_dir / "report.js").read_text(encoding="utf-8")
    if re.search(r"</script|<!--", js, re.I):
        raise RenderError("reports/static/report.js must not contain '</script' or '<!--'")
    return Markup(js)  # noqa: S704


def machine_anchor(machine_id: str | None) -> str:
    """The id of a machine in audit.html (its deep link is audit.html#<id>): 'm-' and the first 12 hex digits
    of the SHA-256 of the lower-cased Azure resource id (resource ids are case-insensitive)."""
    return "m-" + hashlib.sha256(str(machine_id or "").lower().encode("utf-8")).hexdigest()[:12]


def _localised(rows: list[Row], language: str) -> list[Row]:
    """Finding rows with reason, remediation and change detail in the report language (English: as stored)."""
    if language == i18n.SOURCE_LANGUAGE:
        return rows
    return [translate_finding(r) for r in rows]


def _render_html(env: Environment, ctx: ReportContext) -> str:
    audits = {audit: i18n.gettext(title) for audit, title in AUDITS.items()}
    return env.get_template("report.html.j2").render(report=ctx, audits=audits)


_R = TypeVar("_R")


def _in_report_language(render: Callable[..., _R]) -> Callable[..., _R]:
    """Run a render inside i18n.use_language(settings.language): `_()` in charts and context is that language."""

    @wraps(render)
    def wrapper(*args: Any, settings: Settings, **kwargs: Any) -> _R:
        with i18n.use_language(settings.language):
            return render(*args, settings=settings, **kwargs)

    return wrapper


@_in_report_language


def render_reports(
    ledger_path: Path,
    run_id: str,
    out_dir: Path,
    *,
    settings: Settings,
    formats: Sequence[str] = ("html", "pdf", "csv", "parquet"),
    generated_at: datetime | None = None,
    owner: str | None = None,
) -> list[Path]:
    """Render audit.html, audit.pdf and the exports (the registers, findings and machine_months as .csv and
    .parquet, see hotpatch_audit.exports; the findings as findings.jsonl and findings.ocsf.json with the formats
    jsonl and ocsf, hotpatch_audit.ocsf) for one run from the ledger (opened read-only); return the paths written.

    With owner, every report view and the exports are scoped to that owner's machines and findings (the
    report_owner variable the report views filter on; '(no owner tag)' selects machines without one).
    generated_at (default: now, whole seconds) is the report's date, also the PDF's CreationDate.
    """
    unknown = set(formats) - set(get_args(ReportFormat))
    if unknown:
        raise RenderError(f"unknown report formats {sorted(unknown)}")
    root = settings.project_root
    env = build_environment(settings.timezone, root / "reports" / "templates", settings.language)
    generated = generated_at or datetime.now(UTC).replace(microsecond=0)
    with _failure(f"write {out_dir}"):
        out_dir.mkdir(parents=True, exist_ok=True)
    cap = max(HTML_LIST_CAP if "html" in formats else 0, settings.pdf_top_n if "pdf" in formats else 0, 1)
    with _failure(f"read {ledger_path}"):
        con = connect(ledger_path, read_only=True, memory_limit=settings.duckdb_memory_limit)
    written: dict[str, list[Path]] = {}
    try:
        with _failure(f"read run {run_id} from {ledger_path}"):
            _check_views(con, root)
            con.execute("set variable report_owner = ?", [owner])
            if not con.execute("select 1 from meta.runs where run_id = ?", [run_id]).fetchone():
                raise RenderError(f"run {run_id!r} is not in the ledger")
        tables = [fmt for fmt in formats if fmt == "ocsf" or fmt in FORMAT_EXPORTS]
        documents = [fmt for fmt in formats if fmt not in tables]
        data = None
        if documents:  # HTML and PDF share one read of the ledger; the exports read their tables themselves
            with _failure(f"read run {run_id} from {ledger_path}"), _timed("read ledger"):
                group_cap = max(_group_cap("html", settings) if "html" in documents else 0,
                                _group_cap("pdf", settings))
                data = _read_run(con, run_id, cap, group_cap)
        # The exports are DuckDB's work alone (COPY), the documents mostly Python's on one core (Jinja2,
        # WeasyPrint): the exports run beside them, once the ledger read (DuckDB on every core) is done, on their own
        # connection to the database (a cursor) in a second thread, which DuckDB releases the GIL for. At 100,000
        # machines the render took 21.0 s instead of 23.7 (bench_pipeline, medians of three runs).
        cursor = con.cursor()
        with in_background(lambda: _write_tables(cursor, tables, out_dir, run_id, owner, settings),
                           "exports") as exports:
            if data is not None:
                written.update(_write_documents(data, documents, out_dir, owner, env, generated, settings))
            written.update(exports.result())  # the exports' error, if any, is raised here
    finally:
        con.close()
    return [path for fmt in formats for path in written[fmt]]


def _write_documents(
    data: _RunData, formats: list[str], out_dir: Path, owner: str | None, env: Environment, generated: datetime,
    settings: Settings,
) -> dict[str, list[Path]]:
    """audit.html and audit.pdf of render_reports, from the run's data read once."""
    static_dir = settings.project_root / "reports" / "static"
    written: dict[str, list[Path]] = {}
    for fmt in formats:
        path = out_dir / {"html": "audit.html", "pdf": "audit.pdf"}[fmt]
        with _timed(path.name, owner), _failure(f"write {path}"):
            medium: Medium = "html" if fmt == "html" else "pdf"
            ctx = _context(data, medium, _medium_cap(medium, settings), settings=settings, generated_at=generated,
                           static_dir=static_dir, owner=owner)
            atomic_write(path, _writer(env, ctx, static_dir))
        written[fmt] = [path]
    return written


def _write_tables(
    con: duckdb.DuckDBPyConnection, formats: list[str], out_dir: Path, run_id: str, owner: str | None,
    settings: Settings,
) -> dict[str, list[Path]]:
    """The exports and OCSF events of render_reports, on `con` (a cursor of its own, closed here): the analyst
    exports (docs/exports.md: registers, findings and machine-months, DuckDB COPY) and the findings as OCSF
    Compliance Finding events, for a SIEM."""
    written: dict[str, list[Path]] = {}
    try:
        con.execute("set variable report_owner = ?", [owner])  # the report views an export reads filter on it
        for fmt in formats:
            written[fmt] = []
            if fmt == "ocsf":
                path = out_dir / OCSF_FILE_NAME
                with _timed(path.name, owner) as timed, _failure(f"write {path}"):
                    timed.count = write_findings_ocsf(con, path, run_id, owner)
                written[fmt].append(path)
            elif fmt in FORMAT_EXPORTS:
                for export in FORMAT_EXPORTS[fmt]:
                    if fmt == "csv" and export.detail and not settings.csv_detail:
                        continue  # the complete detail is in Parquet; CSV on request (csv_detail)
                    path = out_dir / export.file_name(fmt)
                    with _timed(path.name, owner) as timed, _failure(f"write {path}"):
                        timed.count = write_export(con, export, fmt, path, run_id, owner)
                    written[fmt].append(path)
    finally:
        con.close()
    return written


@contextmanager
def _failure(what: str) -> Iterator[None]:
    """Any failure inside (DuckDB, template, WeasyPrint, file system...) as one RenderError 'cannot <what>: ...'
    naming the file (the CLI prints it as one line, exit code 3); the original error is its __cause__."""
    try:
        yield
    except HotpatchAuditError:
        raise
    except Exception as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = f"{type(exc).__name__}: {lines[0].strip()[:300]}" if lines else type(exc).__name__
        log.debug("cannot %s", what, exc_info=True)
        raise RenderError(f"cannot {what}: {detail}") from exc


def _writer(env: Environment, ctx: ReportContext, static_dir: Path) -> Callable[[Path], None]:
    """A function that writes ctx as HTML or, through WeasyPrint and the guarded fetcher, as PDF."""

    def write(path: Path) -> None:
        html = _render_html(env, ctx)
        if ctx.medium == "html":
            path.write_text(html, encoding="utf-8")
            return
        layout_pdf(html, static_dir).write_pdf(str(path))

    return write


def layout_pdf(html: str, static_dir: Path) -> Any:
    """The PDF medium's HTML laid out by WeasyPrint (a weasyprint Document: pages and their box trees), with the
    report's static assets and the guarded fetcher: what audit.pdf is written from."""
    from weasyprint import HTML

    base_url = static_dir.resolve().as_uri() + "/"
    return HTML(string=html, base_url=base_url, url_fetcher=static_only_fetcher(static_dir)).render()


@_in_report_language
def report_html(
    ledger_path: Path, run_id: str, *, settings: Settings, medium: Medium = "pdf",
    generated_at: datetime | None = None, owner: str | None = None,
) -> str:
    """The HTML of one run's report in one medium, exactly as render_reports writes audit.html or hands WeasyPrint
    for audit.pdf (pass it to layout_pdf to lay it out): for tests and tools that inspect the layout."""
    root = settings.project_root
    static_dir = root / "reports" / "static"
    env = build_environment(settings.timezone, root / "reports" / "templates", settings.language)
    cap = _medium_cap(medium, settings)
    con = connect(ledger_path, read_only=True, memory_limit=settings.duckdb_memory_limit)
    try:
        _check_views(con, root)
        con.execute("set variable report_owner = ?", [owner])
        data = _read_run(con, run_id, cap, _group_cap(medium, settings))
    finally:
        con.close()
    ctx = _context(data, medium, cap, settings=settings,
                   generated_at=generated_at or datetime.now(UTC).replace(microsecond=0), static_dir=static_dir,
                   owner=owner)
    return _render_html(env, ctx)


class _timed:
    """Log how long a step took (figures only) and report it done (hotpatch_audit.progress) with its count of
    rows when the block sets one; an owner's report files are detail steps (no line each off a terminal)."""

    def __init__(self, what: str, owner: str | None = None) -> None:
        self.what = what
        self.owner = owner
        self.count: int | None = None

    def __enter__(self) -> _timed:
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        log.info("%s: %.2f s", self.what, time.perf_counter() - self.start)
        if kind is None:
            what = self.what if self.owner is None else f"{self.what} ({inert(self.owner)})"
            step("render", what, self.count, detail=self.owner is not None)


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
