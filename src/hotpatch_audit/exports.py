"""The analyst exports of a run (DuckDB COPY): the two registers, open_actions (the owner's list) and
exceptions (the auditor's register), as CSV and Parquet; the complete findings and machine-months as
Parquet, and as CSV only on request (setting csv_detail); the findings as JSON Lines for a SIEM on request (format
jsonl; their OCSF events, format ocsf, are hotpatch_audit.ocsf).

One definition per export (its columns with type and meaning) drives the files and docs/exports.md
(written by `python -m hotpatch_audit.docgen`; a test keeps it current). Column lists are stable: new
columns are only ever appended. CSV cells that a spreadsheet would read as a formula get a leading
single quote (FORMULA_PREFIXES); Parquet keeps every value as stored, with the documented types.

It is also the one home of untrusted-text safety for every output: inert() (and inert_sql(), its SQL twin)
drops NUL and the other C0 controls but tab and newline, and shows the bidirectional controls visibly
(`<U+202E>`) so a machine name cannot reorder the sentence around it; csv_cell() / csv_cell_sql() add the
formula guard. The reports apply inert() to every rendered value; the CSV exports and `query -o csv`, csv_cell().
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from hotpatch_audit.duck import sql_literal
from hotpatch_audit.files import atomic_write

log = logging.getLogger(__name__)

ExportFormat = Literal["csv", "parquet", "jsonl"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Bidirectional controls (marks, embeddings, overrides, isolates): shown as <U+XXXX>, never obeyed.
BIDI_CONTROLS = (
    "\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
)
VISIBLE = "<U+{:04X}>"  # what a bidi control is shown as
_DROPPED_CLASS = r"[\x00-\x08\x0b-\x1f]"  # C0 controls but tab and newline (Python re and DuckDB's RE2 alike)
_DROPPED = re.compile(_DROPPED_CLASS)
_BIDI = re.compile("[" + "".join(BIDI_CONTROLS) + "]")
NO_OWNER = "(no owner tag)"  # the owner of machines without one, as the report views name it


@dataclass(frozen=True)
class Column:
    """One exported column: its name, its DuckDB type in the Parquet file, and what it means."""

    name: str
    type: str
    meaning: str


@dataclass(frozen=True)
class Export:
    """One export: the ledger table it reads (one run's rows), its columns in file order, its row order."""

    stem: str
    table: str
    description: str
    columns: tuple[Column, ...]
    order_by: str
    sorted_as: str  # order_by in words, for docs/exports.md
    # complete detail: CSV only with the csv_detail setting; its Parquet (always written) is not sorted, since
    # sorting a million wide rows would be most of the export stage's time
    detail: bool = False

    def ordered(self, fmt: ExportFormat) -> bool:
        """Whether the file is sorted by order_by: every CSV and the registers' Parquet; the detail Parquet and
        JSON Lines files are in no particular order, for analysts who sort in their query."""
        return fmt == "csv" or not self.detail

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in file order."""
        return tuple(c.name for c in self.columns)

    def file_name(self, fmt: ExportFormat) -> str:
        """findings.csv, machine_months.parquet, findings.jsonl..."""
        return f"{self.stem}.{fmt}"


_STATUS_ORDER = (
    "case status when 'fail' then 0 when 'warn' then 1 when 'unknown' then 2 when 'waived' then 3 else 4 end"
)

# The machine's identity, in the same words in every export that has one row per machine (and month).
MACHINE_COLUMNS: tuple[Column, ...] = (
    Column("machine_id", "VARCHAR", "Azure resource id of the machine, lower-cased."),
    Column("machine_name", "VARCHAR", "Machine name as Azure reports it (untrusted text)."),
    Column("machine_kind", "VARCHAR", "azure_vm or arc."),
    Column("subscription_id", "VARCHAR", "Subscription of the machine."),
    Column("resource_group", "VARCHAR", "Resource group of the machine, lower-cased."),
)

OWNER_AS_IN_FINDINGS = Column("owner", "VARCHAR", "Owner of the machine, as in findings.")

FINDINGS = Export(
    stem="findings",
    table="audit.findings",
    description="Every finding of the run, pass included (the report lists only the open actions): the findings "
    "shape of docs/audits.md, then waiver_id and the lifecycle (docs/findings.md). One row per audit, code, "
    "machine and month. Parquet always; CSV only with the csv_detail setting; JSON Lines with the format jsonl.",
    columns=(
        Column(
            "finding_id",
            "VARCHAR",
            "MD5 of audit, code, machine_id and month: the same finding keeps its id "
            "from run to run, so runs compare by a join.",
        ),
        Column("run_id", "VARCHAR", "The run that judged the finding (meta.runs)."),
        Column("audit", "VARCHAR", "reboot_avoidance, missed_hotpatches, wsus_misconfigurations or vbs_blockers."),
        Column(
            "code",
            "VARCHAR",
            "The finding code within its audit (docs/audits.md), e.g. missed, off_track, wsus_suspected.",
        ),
        *MACHINE_COLUMNS,
        Column(
            "owner",
            "VARCHAR",
            "Owner: the owner tag (setting owner_tag) of the machine, else of its resource "
            "group, else of its subscription; else the subscription name, else its id.",
        ),
        Column("track", "VARCHAR", "Hotpatch release track (ws2022, ws2025...); empty when the OS has none."),
        Column("month", "VARCHAR", "Patch month YYYY-MM the finding is about; empty for month-less findings."),
        Column("status", "VARCHAR", "fail, warn, unknown (data missing), waived or pass."),
        Column("severity", "VARCHAR", "critical, high, medium, low or info (docs/audits.md: status and severity)."),
        Column("reason", "VARCHAR", "Why the machine got this status, in one sentence."),
        Column("remediation", "VARCHAR", "What to do about it."),
        Column(
            "evidence", "JSON", "The facts behind the finding (fields and run ids), as a JSON object; text in the CSV."
        ),
        Column(
            "waiver_id",
            "VARCHAR",
            "The waiver that waived the finding (status waived), or the expired "
            "waiver a waiver_expired finding reports; empty otherwise.",
        ),
        Column(
            "state",
            "VARCHAR",
            "Lifecycle (docs/findings.md): open (present at the as-of time, fixable), closed (resolved since), "
            "past (a past month's reboot-avoidance outcome), opportunity (avoidable_reboot), compliant (pass), "
            "not_judged (unknown).",
        ),
        Column(
            "closed_reason",
            "VARCHAR",
            "Why a closed finding closed: superseded (a later cumulative update of the track), installed_late, "
            "returned (back on the track with the next baseline).",
        ),
        Column("closed_by", "VARCHAR", "The KB that closed it."),
        Column("closed_at", "TIMESTAMP", "When that KB was installed (UTC)."),
        Column(
            "exposure_days",
            "INTEGER",
            "Days exposed: from the grace end (or the off-track event) to closed_at, or to the as-of time while open.",
        ),
    ),
    order_by=f"audit, {_STATUS_ORDER}, machine_name, code, month nulls last, finding_id",
    sorted_as="audit, status (fail, warn, unknown, waived, pass), machine name, code, month",
    detail=True,
)

MACHINE_MONTHS = Export(
    stem="machine_months",
    table="audit.machine_months_detail",
    description="The reboot-avoidance grain: every Windows machine-month of the run's period with its one "
    "outcome, the month's release, the reboots and the KBs that caused them.",
    columns=(
        Column("run_id", "VARCHAR", "The run (meta.runs)."),
        *MACHINE_COLUMNS,
        OWNER_AS_IN_FINDINGS,
        Column("track", "VARCHAR", "Hotpatch release track; empty when the OS has none (outcome not_applicable)."),
        Column("month", "VARCHAR", "Patch month YYYY-MM."),
        Column(
            "kind",
            "VARCHAR",
            "The month's release kind on the track: hotpatch, baseline or unplanned_baseline (release calendar).",
        ),
        Column(
            "month_kb", "VARCHAR", "The month's KB on the track (release calendar); empty when the calendar has none."
        ),
        Column("release_date", "DATE", "Release date of the month's update (Patch Tuesday or out of band)."),
        Column("grace_end", "DATE", "release_date plus grace_days: after it a missing update counts as missed."),
        Column(
            "status_at_start",
            "VARCHAR",
            "Hotpatch enrolment status of the machine at the start of the month (from the run nearest that date).",
        ),
        Column("enrolled_at_start", "BOOLEAN", "True when status_at_start was Enabled."),
        Column(
            "outcome",
            "VARCHAR",
            "avoided, expected_reboot, unexpected_reboot, avoidable_reboot, no_install, "
            "unknown or not_applicable (docs/audits.md, reboot avoidance).",
        ),
        Column("reboot_count", "BIGINT", "Patch installations of the month that rebooted the machine."),
        Column(
            "cause_kbs",
            "VARCHAR",
            "KBs that caused the month's reboots (and the off-track event, if any); empty when there was no reboot.",
        ),
        Column("installed_kbs", "VARCHAR", "Quality updates installed in the month, comma-separated."),
        Column(
            "calendar_note",
            "VARCHAR",
            "How sure the calendar row is: verified, calendar row not verified, or calendar rule not verified.",
        ),
        Column(
            "evidence",
            "JSON",
            "The facts behind the outcome (status run, installations, KBs, assessment), "
            "as a JSON object; text in the CSV.",
        ),
    ),
    order_by="machine_name, machine_id, month",
    sorted_as="machine name, month",
    detail=True,
)

OPEN_ACTIONS = Export(
    stem="open_actions",
    table="audit.open_actions",
    description="Open now, the owner's list: one action per machine and root cause at the run's as-of time "
    "(audit.open_actions), with the months it explains and the fix, which names only an update that is "
    "current. Waived findings are not actions.",
    columns=(
        Column("action_id", "VARCHAR", "MD5 of the root cause and machine_id: stable from run to run."),
        Column("run_id", "VARCHAR", "The run (meta.runs)."),
        Column("root_cause", "VARCHAR", "behind, update_source, vbs, assessment, enrollment, or a finding code."),
        Column("audit", "VARCHAR", "The audit of the finding that speaks for the action."),
        Column("code", "VARCHAR", "Its code."),
        *MACHINE_COLUMNS,
        OWNER_AS_IN_FINDINGS,
        Column("track", "VARCHAR", "Hotpatch release track."),
        Column("months", "VARCHAR", "Every month the action explains, comma-separated; empty for month-less causes."),
        Column("status", "VARCHAR", "fail when any grouped finding fails, else warn (unknown for stale data)."),
        Column("severity", "VARCHAR", "The highest severity of the grouped findings."),
        Column("days_overdue", "INTEGER", "The longest exposure of the grouped findings, in days."),
        Column("reason", "VARCHAR", "Why, in one sentence (the lead finding's)."),
        Column("remediation", "VARCHAR", "What to do: one fix for the whole cause."),
        Column("codes", "VARCHAR", "The codes of the open findings it groups."),
        Column("findings", "BIGINT", "How many open findings it groups (finding_ids in the ledger)."),
        Column("opened_on", "DATE", "When the remediation clock started: the due date (grace end) of its longest "
               "exposure, else the first run in which one of its findings was open."),
        Column("remediation_days", "INTEGER", "The remediation window of its severity (settings "
               "remediation_days_critical ... remediation_days_info)."),
        Column("due_date", "DATE", "opened_on + remediation_days: fix it by this date; past the run's as-of date "
               "it is overdue."),
    ),
    order_by="due_date, case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 "
    "when 'low' then 3 else 4 end, days_overdue desc nulls last, machine_name, root_cause",
    sorted_as="due date (earliest first), severity (critical first), days overdue (longest first), machine name",
)

EXCEPTIONS = Export(
    stem="exceptions",
    table="audit.period_exceptions",
    description="The period's exceptions, the auditor's register: every machine-month of the period that was not "
    "compliant (fail, warn or waived), open or closed, with its exposure in days and what closed it "
    "(audit.period_exceptions). Opportunities and unknown months are not exceptions. The sentence (reason) and "
    "evidence of each row are in findings.parquet by finding_id: without them the CSV stays small (about 60 MB at "
    "100,000 machines).",
    columns=(
        Column("finding_id", "VARCHAR", "The finding (audit.findings), stable from run to run."),
        Column("run_id", "VARCHAR", "The run (meta.runs)."),
        Column("audit", "VARCHAR", "reboot_avoidance or missed_hotpatches (the month-bound audits)."),
        Column("code", "VARCHAR", "The finding code."),
        Column("machine_id", "VARCHAR", "Azure resource id of the machine, lower-cased."),
        Column("machine_name", "VARCHAR", "Machine name as Azure reports it (untrusted text)."),
        OWNER_AS_IN_FINDINGS,
        Column("month", "VARCHAR", "The patch month YYYY-MM."),
        Column("status", "VARCHAR", "fail, warn or waived."),
        Column("severity", "VARCHAR", "critical, high, medium, low or info."),
        Column("state", "VARCHAR", "open, closed, past (a past month's outcome) or waived."),
        Column("closed_reason", "VARCHAR", "superseded, installed_late or returned; empty while open."),
        Column("closed_by", "VARCHAR", "The KB that closed it."),
        Column("closed_at", "TIMESTAMP", "When that KB was installed (UTC)."),
        Column("exposure_days", "INTEGER", "Days from the grace end (or the off-track event) to closed_at, or to the "
               "as-of time while open; empty for past reboot outcomes."),
        Column("waiver_id", "VARCHAR", "The waiver that covers it (state waived)."),
    ),
    order_by="month, audit, code, machine_name, finding_id",
    sorted_as="month, audit, code, machine name",
)

COVERAGE_EXCEPTIONS = Export(
    stem="coverage_exceptions",
    table="report.attest_coverage_exceptions",
    description="The coverage exceptions of the auditor's attestation: every Windows machine with missing or stale "
    "data in the run (audit.coverage), its issues, and the audits it left unknown "
    "(report.attest_coverage_exceptions). A machine with a gap that changed no verdict has no audit listed.",
    columns=(
        Column("run_id", "VARCHAR", "The run (meta.runs)."),
        *MACHINE_COLUMNS,
        OWNER_AS_IN_FINDINGS,
        Column("issues", "VARCHAR", "no_assessment, stale_assessment, no_guest_facts, stale_guest_facts, "
               "no_installation_data, hotpatch_status_unknown (comma-separated)."),
        Column("audits_affected", "VARCHAR", "The audits in which the machine has a finding judged unknown "
               "(comma-separated); empty: the gap changed no verdict."),
        Column("unknown_findings", "BIGINT", "How many of its findings are unknown."),
        Column("detail", "VARCHAR", "What is missing or stale, with the data's time."),
    ),
    order_by="audits_affected = '', machine_name, machine_id",
    sorted_as="machines whose gap affects an audit first, then machine name",
)

EXPORTS: tuple[Export, ...] = (OPEN_ACTIONS, EXCEPTIONS, COVERAGE_EXCEPTIONS, FINDINGS, MACHINE_MONTHS)
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")
# The exports each format writes: CSV and Parquet every export, JSON Lines the findings (for a SIEM or data lake;
# findings.ocsf.json, the same rows as OCSF events, is hotpatch_audit.ocsf).
FORMAT_EXPORTS: dict[ExportFormat, tuple[Export, ...]] = {"csv": EXPORTS, "parquet": EXPORTS, "jsonl": (FINDINGS,)}


def inert(text: str, visible: str = VISIBLE) -> str:
    """Untrusted text (Azure names, tags, errors) that cannot act on what surrounds it: NUL and the other C0
    controls but tab and newline removed, each bidirectional control replaced by visible formatted with its
    code point ('&lt;U+{:04X}&gt;' for text that is already HTML)."""
    return _BIDI.sub(lambda m: visible.format(ord(m.group())), _DROPPED.sub("", text))


def inert_sql(expr: str) -> str:
    """SQL for inert() of a VARCHAR expression (the CSV exports clean inside the COPY); the replacements run only
    on the rare values that hold a control character."""
    out = f"regexp_replace({expr}, {sql_literal(_DROPPED_CLASS)}, '', 'g')"
    for ch in BIDI_CONTROLS:
        out = f"replace({out}, chr({ord(ch)}), {sql_literal(VISIBLE.format(ord(ch)))})"
    any_control = _DROPPED_CLASS[:-1] + "".join(f"\\x{{{ord(ch):04X}}}" for ch in BIDI_CONTROLS) + "]"  # RE2
    return f"case when regexp_matches({expr}, {sql_literal(any_control)}) then {out} else {expr} end"


def neutralise_cell(value: Any) -> Any:
    """Prefix a single quote to text a spreadsheet would read as a formula (= + - @ tab CR)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def formula_guard_sql(expr: str) -> str:
    """SQL that prefixes a single quote to text starting like a formula (the CSV guard; see neutralise_cell)."""
    firsts = ", ".join(sql_literal(p) for p in FORMULA_PREFIXES)
    return f"case when left({expr}, 1) in ({firsts}) then '''' || {expr} else {expr} end"


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell of ours: text made inert, then formula-guarded (cleaned first, so a leading NUL
    cannot hide an '='); other values unchanged."""
    return neutralise_cell(inert(value)) if isinstance(value, str) else value


def csv_cell_sql(expr: str) -> str:
    """SQL for csv_cell() of a VARCHAR expression."""
    return formula_guard_sql(inert_sql(expr))


def iso_utc_sql(expr: str) -> str:
    """SQL for a TIMESTAMP (naive UTC, as the ledger stores times) as ISO 8601 / RFC 3339 text in UTC:
    2026-08-14T16:05:00Z, with microseconds only when it has them; NULL stays NULL."""
    return (f"strftime({expr}, '%Y-%m-%dT%H:%M:%S') || case when epoch_us({expr}) % 1000000 = 0 then '' "
            f"else strftime({expr}, '.%f') end || 'Z'")


def export_filter_sql(alias: str = "") -> str:
    """The WHERE of every export: the run in getvariable('export_run_id'), the owner in getvariable('export_owner')
    (NULL: every owner; NO_OWNER: the machines without one)."""
    return (
        f"{alias}run_id = getvariable('export_run_id')"
        f" and (getvariable('export_owner') is null or coalesce({alias}owner, {sql_literal(NO_OWNER)}) ="
        " getvariable('export_owner'))"
    )


def export_select(export: Export, fmt: ExportFormat) -> str:
    """The SELECT of one export (the run and owner of export_filter_sql); CSV cells are inert text with the formula
    guard (csv_cell_sql), Parquet keeps the documented types and the values as stored, and so does JSON Lines,
    but for its times (ISO 8601 text in UTC: JSON has no time type) and its JSON columns (nested JSON)."""
    cols = []
    for c in export.columns:
        if fmt == "csv" and c.type in ("VARCHAR", "JSON"):
            cols.append(f"{csv_cell_sql(f'cast({c.name} as varchar)')} as {c.name}")
        elif fmt == "jsonl" and c.type == "TIMESTAMP":
            cols.append(f"{iso_utc_sql(c.name)} as {c.name}")
        else:
            cols.append(f"cast({c.name} as {c.type}) as {c.name}")
    return (
        f"select {', '.join(cols)} from {export.table} where {export_filter_sql()}"
        + (f" order by {export.order_by}" if export.ordered(fmt) else "")
    )


def write_export(
    con: duckdb.DuckDBPyConnection,
    export: Export,
    fmt: ExportFormat,
    path: Path,
    run_id: str,
    owner: str | None = None,
) -> int:
    """COPY one run's rows (one owner's with owner) of an export to path, atomically; return the row count."""
    con.execute("set variable export_run_id = ?", [run_id])
    con.execute("set variable export_owner = ?", [owner])
    options = {"csv": "format csv, header true", "parquet": "format parquet, compression zstd",
               "jsonl": "format json"}[fmt]

    def copy(tmp: Path) -> int:
        # An unsorted detail file need not keep the table's order: DuckDB then writes it in parallel (about half
        # the time at 100,000 machines) and holds less in memory. A sorted export is sorted either way.
        con.execute("set preserve_insertion_order = false")
        try:
            row = con.execute(f"copy ({export_select(export, fmt)}) to {sql_literal(str(tmp))} ({options})").fetchone()
        finally:
            con.execute("reset preserve_insertion_order")
        return int(row[0]) if row else 0

    written = atomic_write(path, copy)
    log.info("%s: %d rows", path.name, written)
    return written


def _prefix_words() -> str:
    names = {"\t": "a tab", "\r": "a carriage return"}
    words = [names.get(p, f"`{p}`") for p in FORMULA_PREFIXES]
    return ", ".join(words[:-1]) + " or " + words[-1]


def exports_markdown() -> str:
    """docs/exports.md: every export and column, from EXPORTS; the OCSF events from hotpatch_audit.ocsf."""
    from hotpatch_audit.ocsf import ocsf_markdown  # ocsf builds on this module

    lines = [
        "# Exports",
        "",
        "Generated from `src/hotpatch_audit/exports.py` by `python -m hotpatch_audit.docgen`; do not edit.",
        "",
        "Every report folder holds the run's rows for analysts, written with DuckDB `COPY`, in two formats",
        "(`--format csv`, `--format parquet`; both by default). For a SIEM or a security data lake, two more",
        "formats write the findings, not by default: `--format jsonl` (`findings.jsonl`) and `--format ocsf`",
        "(`findings.ocsf.json`, [OCSF events](#findingsocsfjson)). Per-owner folders (`--per-owner`) hold the",
        "same files with only that owner's rows.",
        "",
        "- **CSV** (UTF-8, header row, comma-separated, RFC 4180 quoting, empty cell for NULL): every cell is",
        "  text, made inert as in the reports: NUL and the other C0 control characters but tab and newline are",
        "  removed, and the bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) are",
        "  written visibly as `<U+202E>` so a machine name cannot reorder the text around it. Then a cell",
        f"  that starts with {_prefix_words()} gets a leading `'` so a",
        "  spreadsheet never runs it as a formula. JSON columns are their JSON text.",
        "- **Parquet** (zstd): the values as stored in the ledger, with the types below (DuckDB names): typed",
        "  analyst data, untrusted text included byte for byte (control characters too), so clean it before",
        "  you display it. Read it with `duckdb -c \"select * from 'findings.parquet'\"`, pandas or Polars.",
        "- **JSON Lines** (`findings.jsonl`, UTF-8, one JSON object per line, DuckDB `COPY ... (FORMAT json)`):",
        "  the rows and columns of `findings.parquet`, keys in column order, values as stored like the Parquet",
        "  file (untrusted text byte for byte, JSON-escaped, so every line parses: clean it before you display",
        "  it), NULL as `null`, the JSON column (`evidence`) as nested JSON, times (`closed_at`) as ISO 8601",
        "  text in UTC (`2026-08-14T16:05:00Z`). In no particular order. Read it with",
        "  `duckdb -c \"select * from 'findings.jsonl'\"`, `jq`, or a SIEM's JSON Lines input.",
        "",
        "**Which rows the SIEM formats carry.** Both carry every finding of the run, pass and unknown included:",
        "the rows of `findings.parquet`. A SIEM tracks a finding by its id (`finding_id`, OCSF",
        "`finding_info.uid`), stable from run to run: it needs the pass and closed rows to close what an",
        "earlier run reported (Prowler's OCSF output likewise has every check result, PASS included), and the",
        "auditor needs what passed and what could not be judged, not only the failures. The owner's open list",
        "is one filter away: `state` open (OCSF `status_id` 1, New); the non-compliant rows: `status` fail, warn",
        "or waived, opportunities aside (OCSF `compliance.status_id` 3, Fail). A finding that describes the",
        "machine now (WSUS, VBS, enrollment) has no row once fixed ([findings.md](findings.md)): a SIEM closes",
        "it when the next run's file lacks its id, or reads `hotpatch-audit diff`. Sizes: about 1.4 KB a JSON",
        "Lines row and 2.7 KB an OCSF event (the Parquet file: about 50 bytes a row); gzip makes them 20 and",
        "30 times smaller.",
        "",
        "Column lists are stable: new columns are only appended. Every file is listed with its size and",
        "SHA-256 in the folder's `manifest.json` (see the README, *Outputs*).",
        "",
    ]
    for export in EXPORTS:
        names = [f"`{export.file_name(fmt)}`" for fmt, exports in FORMAT_EXPORTS.items() if export in exports]
        lines += [
            f"## {', '.join(names)}",
            "",
            f"{export.description} Read from `{export.table}` (the run's rows; the per-owner files: the owner's).",
            "",
            f"Rows sorted by {export.sorted_as}"
            + (" in the CSV; the Parquet file is in no particular order (sort in your query)."
               if export.detail else "."),
            "",
            "| # | column | type | meaning |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {i} | `{c.name}` | {c.type} | {c.meaning.replace('|', chr(92) + '|')} |"
            for i, c in enumerate(export.columns, 1)
        ]
        lines.append("")
    lines += ocsf_markdown()
    return "\n".join(lines)
