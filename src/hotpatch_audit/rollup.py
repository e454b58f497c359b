"""The roll-up across tenants: one report over several tenants' report folders (docs/rollup.md).

A service provider audits each customer (tenant) into its own ledger and report folder. The roll-up reads
those folders only, never a ledger: each folder is first checked against its manifest.json
(hotpatch_audit.manifest.verify), then the tenants' Parquet exports are read together with DuckDB multi-file
reads (read_parquet([...], filename=true, union_by_name=true), each file's rows joined to its tenant by file
name). It writes rollup.html and rollup.pdf (the report templates, CSS, filters and languages of audit.html),
rollup.csv and rollup.parquet (one row per tenant, ROLLUP_COLUMNS), then SHA256SUMS and manifest.json, into a
staging folder that replaces the target whole (hotpatch_audit.files).

No tenant is ever shown as compliant on missing or stale data: a tenant is `compliant` only when its run
succeeded, no Windows machine has missing or stale data (its coverage exceptions), its as-of time is at most
stale_after_days old and it has no open action to fix. Tenant names, machine names and owners are untrusted
text: escaped and made inert in HTML and PDF, formula-guarded in the CSV.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from markupsafe import Markup

from hotpatch_audit import __version__, i18n
from hotpatch_audit.config import Settings, check_time_zone
from hotpatch_audit.duck import connect
from hotpatch_audit.errors import ConfigError, HotpatchAuditError, RenderError
from hotpatch_audit.exports import Column, csv_cell_sql, inert
from hotpatch_audit.files import (
    SUMS_NAME,
    atomic_write,
    check_target_folder,
    discard_folder,
    replace_folder,
    sha256_file,
    staging_folder,
)
from hotpatch_audit.i18n import N_
from hotpatch_audit.manifest import MANIFEST_FORMAT, MANIFEST_NAME, ManifestError, utc_stamp, verify, write_manifest
from hotpatch_audit.render import AUDITS, CODE_ACTIONS, _failure, _script, build_environment, layout_pdf

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("html", "pdf", "csv", "parquet")
FILE_NAMES = {"html": "rollup.html", "pdf": "rollup.pdf", "csv": "rollup.csv", "parquet": "rollup.parquet"}
# The tenants' exports the roll-up reads (docs/exports.md); a folder without one of them is refused.
NEEDED_EXPORTS: tuple[str, ...] = ("open_actions", "coverage_exceptions", "findings", "machine_months")
STALE_AFTER_DAYS = 35  # a tenant's as-of time older than this (a monthly run missed) is stale data
TOP_ACROSS = 15  # open actions listed under "Fix first across tenants"
REPORT_KIND = "rollup"  # manifest.json's "report" of a roll-up folder
TITLE = N_("Windows Server hotpatch audit: roll-up across tenants")
GLOB_CHARACTERS = "*?["  # DuckDB reads these in a file name as a pattern
MAX_NAME = 200
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
# The action in a few words where the code has no short action (the fix names a KB, in English in the
# exports): by root cause in reports not in English.
ROOT_CAUSE_ACTIONS: dict[str, str] = {
    "behind": N_("Install the latest update of the machine's hotpatch track"),
    "assessment": N_("Restore periodic patch assessment, so the machine can be judged"),
    "enrollment": N_("Re-enable hotpatch on the machine and find out why it was turned off"),
    "update_source": N_("Switch quality updates from WSUS to Windows Update (Group Policy)"),
}
OTHER_ACTION = N_("See the open actions in the tenant's report")

ROLLUP_COLUMNS: tuple[Column, ...] = (
    Column("tenant", "VARCHAR", "The tenant's name as given to the roll-up (untrusted text)."),
    Column("verdict", "VARCHAR", "action_needed (an open fail or warn action), incomplete_data (no open action, but "
           "the data is not complete: never compliant on missing or stale data) or compliant."),
    Column("data_complete", "BOOLEAN", "The run succeeded, no Windows machine has missing or stale data (as the "
           "tenant's coverage line says) and the as-of time is not stale."),
    Column("run_status", "VARCHAR", "The run's status in manifest.json: succeeded, incomplete (a query failed or "
           "returned fewer rows than announced) or superseded (not the run of record)."),
    Column("stale", "BOOLEAN", "The as-of time is more than stale_after_days (35) days before the roll-up."),
    Column("age_days", "INTEGER", "Whole days from the as-of time to the roll-up's generation time."),
    Column("as_of", "TIMESTAMP", "The run's as-of time (UTC), from manifest.json."),
    Column("scope", "VARCHAR", "The run's scope, from manifest.json."),
    Column("owner", "VARCHAR", "The owner a per-owner report folder is limited to; empty: the whole scope."),
    Column("run_id", "VARCHAR", "The tenant's run (its ledger's meta.runs)."),
    Column("windows_machines", "BIGINT", "Windows machines audited: distinct machines of machine_months.parquet "
           "(Linux machines are counted in the tenant's report only)."),
    Column("machines_with_gaps", "BIGINT", "Coverage exceptions: Windows machines with missing or stale data "
           "(rows of coverage_exceptions.parquet)."),
    Column("gaps_affecting_audits", "BIGINT", "Of them, machines whose gap left a finding unknown."),
    Column("unknown_findings", "BIGINT", "Findings judged unknown for missing or stale data (findings.parquet)."),
    Column("latest_hotpatch_month", "VARCHAR", "The latest hotpatch month of the period (YYYY-MM); empty: none."),
    Column("hotpatch_efficacy", "DOUBLE", "That month: avoided machine-months of machines enrolled at the start of "
           "the month, out of those with a known outcome (as on page 1 of audit.pdf); empty: none known."),
    Column("efficacy_avoided", "BIGINT", "The numerator of hotpatch_efficacy."),
    Column("efficacy_known", "BIGINT", "The denominator of hotpatch_efficacy."),
    Column("reboot_free_coverage", "DOUBLE", "That month: avoided out of every eligible machine-month with a known "
           "outcome, enrolled or not."),
    Column("reboots_avoided", "BIGINT", "Reboots avoided in that month (avoided machine-months)."),
    Column("open_actions", "BIGINT", "Open actions to fix (status fail or warn) of open_actions.parquet."),
    Column("critical", "BIGINT", "Of them, severity critical."),
    Column("high", "BIGINT", "Of them, severity high."),
    Column("medium", "BIGINT", "Of them, severity medium."),
    Column("low", "BIGINT", "Of them, severity low."),
    Column("overdue_actions", "BIGINT", "Of them, due before the as-of date (due_date earlier than as_of)."),
    Column("machines_to_fix", "BIGINT", "Machines with an open fail or warn action."),
    Column("unknown_actions", "BIGINT", "Open actions that wait for current data (status unknown)."),
    *(Column(f"{audit}_{status}", "BIGINT", f"Findings of {audit} with status {status}"
             + (" (open at the as-of time)." if status != "unknown" else "."))
      for audit in AUDITS for status in ("fail", "warn", "unknown")),
    Column("report_folder", "VARCHAR", "The tenant's report folder read (absolute path)."),
    Column("manifest_sha256", "VARCHAR", "SHA-256 of the tenant's manifest.json as read (it lists every file "
           "with its SHA-256)."),
)

Row = dict[str, Any]


@dataclass(frozen=True)
class TenantFolder:
    """One tenant's report folder, checked against its manifest.json."""

    name: str
    folder: Path  # resolved
    manifest: Mapping[str, Any]
    manifest_sha256: str
    files_checked: int
    as_of: datetime  # UTC, naive (as the ledger keeps times)

    def export(self, stem: str) -> Path:
        """The folder's Parquet export of that stem (open_actions...)."""
        return self.folder / f"{stem}.parquet"


@dataclass(frozen=True)
class RollupContext:
    """Everything the roll-up template sees (rollup.html.j2; the page frame base.html.j2 reads the same names as
    in ReportContext)."""

    medium: str = field(metadata={"help": "'html' or 'pdf'."})
    title: str = field(metadata={"help": "Report title."})
    generated_at: datetime = field(metadata={"help": "When the roll-up was rendered (UTC)."})
    tool_version: str = field(metadata={"help": "hotpatch-audit version that rendered it."})
    timezone: str = field(metadata={"help": "IANA zone in which times are shown."})
    language: str = field(metadata={"help": "Report language."})
    page_size: str = field(metadata={"help": "CSS @page size (landscape: the tenants table is wide)."})
    css: Markup = field(metadata={"help": "Inlined stylesheet of the HTML."})
    stylesheets: list[str] = field(metadata={"help": "Static stylesheets the PDF links."})
    script: Markup = field(metadata={"help": "Inlined report.js of the HTML (sorting, filters)."})
    author: str = field(metadata={"help": "settings.report_author."})
    tenants: list[Row] = field(metadata={"help": "One row per tenant (ROLLUP_COLUMNS), in the order given."})
    totals: Row = field(metadata={"help": "The tenants' totals (sums; efficacy pooled)."})
    top: list[Row] = field(metadata={"help": "The most urgent open actions across tenants."})
    top_total: int = field(metadata={"help": "Every open fail or warn action across tenants."})
    sources: list[Row] = field(metadata={"help": "Per tenant: folder, run, manifest, files checked."})
    stale_after_days: int = field(metadata={"help": "Days after which a tenant's as-of time is stale."})

    @property
    def created(self) -> str:
        """generated_at as W3C date-time in UTC (the PDF's /CreationDate)."""
        return utc_stamp(self.generated_at)


# --- checking the tenants' folders ----------------------------------------------------------------


def _shown(text: str, limit: int = 80) -> str:
    """Untrusted text (a tenant name, a path) for a one-line error message."""
    clean = inert(str(text)).replace("\n", " ").replace("\t", " ")
    return repr(clean if len(clean) <= limit else clean[: limit - 1] + "…")


def check_folder(name: str, folder: Path) -> TenantFolder:
    """One tenant's report folder: present, a finished hotpatch-audit report folder (its manifest.json there,
    every file matching it), with the Parquet exports the roll-up reads. ConfigError for a folder that is
    missing, is not a report folder or lacks an export; ManifestError for one that does not match its
    manifest (changed, missing or extra files). Each message names the tenant and the folder."""
    who = f"tenant {_shown(name)}: {_shown(str(folder), 200)}"
    if not folder.exists():
        raise ConfigError(f"{who}: no such folder")
    if not folder.is_dir():
        raise ConfigError(f"{who}: not a folder (give the tenant's report folder)")
    resolved = folder.resolve()
    if any(c in str(resolved) for c in GLOB_CHARACTERS):
        raise ConfigError(f"{who}: the path holds one of {GLOB_CHARACTERS}, which DuckDB would read as a file "
                          "pattern; rename the folder or link it under another name")
    if not (resolved / MANIFEST_NAME).is_file():
        raise ConfigError(f"{who}: no {MANIFEST_NAME}, so not a finished report folder (a report writes it "
                          "last: a half-written or foreign folder); render the tenant's report again")
    try:
        result = verify(resolved)
        manifest = json.loads((resolved / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (HotpatchAuditError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{who}: {exc}") from exc
    if not result.ok:
        shown = "; ".join(f"{rel}: {problem}" for rel, problem in result.problems[:3])
        more = f" and {len(result.problems) - 3} more" if len(result.problems) > 3 else ""
        raise ManifestError(f"{who} does not match its {MANIFEST_NAME} ({shown}{more}): refused; check it with "
                            f"hotpatch-audit verify {_shown(str(folder), 200)}")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"{who}: a snapshot, not a report folder")
    if manifest.get("report") == REPORT_KIND:
        raise ConfigError(f"{who}: a roll-up, not a tenant's report folder")
    missing = [key for key in ("run_id", "scope", "as_of", "run_status") if not isinstance(manifest.get(key), str)]
    if missing:
        raise ConfigError(f"{who}: {MANIFEST_NAME} lacks {', '.join(missing)}")
    listed = {str(f.get("path")) for f in manifest.get("files", []) if isinstance(f, dict)}
    lacking = [f"{stem}.parquet" for stem in NEEDED_EXPORTS if f"{stem}.parquet" not in listed]
    if lacking:
        raise ConfigError(f"{who}: lacks {', '.join(lacking)}; the roll-up reads the tenant's Parquet exports: "
                          "render its report with --format parquet (hotpatch-audit report --format parquet ...)")
    try:
        as_of = datetime.fromisoformat(str(manifest["as_of"]).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{who}: {MANIFEST_NAME} has no readable as_of ({_shown(manifest['as_of'])})") from None
    as_of = (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)
    return TenantFolder(name=name, folder=resolved, manifest=manifest,
                        manifest_sha256=sha256_file(resolved / MANIFEST_NAME), files_checked=result.checked,
                        as_of=as_of)


def check_folders(report_dirs: Mapping[str, Path]) -> list[TenantFolder]:
    """Every tenant's folder checked (check_folder), in the order given; then no name, folder or run given twice.
    All problems are reported at once: ManifestError when a folder does not match its manifest, else
    ConfigError."""
    if not report_dirs:
        raise ConfigError("no tenants: give at least one tenant and its report folder (--tenant NAME=DIR)")
    names: dict[str, str] = {}
    for name in report_dirs:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a tenant name is empty")
        if len(name) > MAX_NAME:
            raise ConfigError(f"tenant name {_shown(name)} is longer than {MAX_NAME} characters")
        if name.casefold() in names:
            raise ConfigError(f"tenant {_shown(name)} is given twice (as {_shown(names[name.casefold()])})")
        names[name.casefold()] = name
    checked: list[TenantFolder] = []
    problems: list[HotpatchAuditError] = []
    for name, folder in report_dirs.items():
        try:
            checked.append(check_folder(name, Path(folder)))
        except (ConfigError, ManifestError) as exc:
            problems.append(exc)
    if problems:
        text = "; ".join(str(p) for p in problems)
        if len(problems) > 1:
            text = f"{len(problems)} tenant folders refused: {text}"
        raise (ManifestError if any(isinstance(p, ManifestError) for p in problems) else ConfigError)(text)
    for kind, keys in (("report folder", [str(t.folder) for t in checked]),
                       ("run", [str(t.manifest["run_id"]) for t in checked])):
        seen: dict[str, str] = {}
        for t, key in zip(checked, keys, strict=True):
            if key in seen:
                raise ConfigError(f"tenants {_shown(seen[key])} and {_shown(t.name)} have the same {kind} "
                                  f"({_shown(key, 200)}): each would be counted twice")
            seen[key] = t.name
    return checked


def check_output(out_dir: Path, tenants: Sequence[TenantFolder]) -> None:
    """The roll-up folder must not be, hold or sit inside a tenant's folder (it is replaced whole), and must be
    new, empty or written by hotpatch-audit (files.check_target_folder)."""
    out = out_dir.resolve()
    for t in tenants:
        if out == t.folder or t.folder in out.parents or out in t.folder.parents:
            raise ConfigError(f"--out {_shown(str(out_dir), 200)} overlaps the report folder of tenant "
                              f"{_shown(t.name)}: the roll-up replaces its folder whole, so choose another one")
    check_target_folder(out_dir, "roll-up")


# --- reading the exports --------------------------------------------------------------------------


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """A DuckDB error while reading the tenants' exports as one RenderError naming what was read."""
    try:
        yield
    except duckdb.Error as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise RenderError(f"cannot read the tenants' {what}: {first[:300]}") from exc


def _multi(stem: str, columns: str, where: str = "") -> str:
    """SQL reading one export of every tenant at once (the file list in variable files_<stem>), each row with
    its tenant's ordinal (tenant_ord) by file name."""
    return (f"select f.tenant_ord, {columns} from read_parquet(getvariable('files_{stem}'), filename = true, "
            f"union_by_name = true) as x join rollup_file as f on f.path = x.filename and f.export = '{stem}'"
            + (f" where {where}" if where else ""))


_SEVERITY_RANK = "case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 " \
                 "else 4 end"


def _tenant_sql() -> str:
    """One row per tenant with every column of ROLLUP_COLUMNS (table rollup_tenants)."""
    audits = ",\n".join(
        f"coalesce(fd.{a}_{s}, 0) as {a}_{s}" for a in AUDITS for s in ("fail", "warn", "unknown"))
    per_audit = ",\n".join(
        f"count(*) filter (where audit = '{a}' and status = '{s}'"
        + (" and coalesce(state, 'open') = 'open'" if s != "unknown" else "") + f") as {a}_{s}"
        for a in AUDITS for s in ("fail", "warn", "unknown"))
    severities = ",\n".join(
        f"count(*) filter (where status in ('fail', 'warn') and severity = '{s}') as {s}" for s in SEVERITIES)
    mm = _multi("machine_months", "x.machine_id, x.month, x.kind, x.enrolled_at_start, x.outcome")
    return f"""
with mm as (
    select mm.* from ({mm}) as mm join rollup_tenant as t using (tenant_ord)
    where mm.month <= strftime(t.as_of, '%Y-%m')
),
machines as (select tenant_ord, count(distinct machine_id) as windows_machines from mm group by tenant_ord),
latest as (select tenant_ord, max(month) as month from mm where kind = 'hotpatch' group by tenant_ord),
reboot as (
    select l.tenant_ord, any_value(l.month) as latest_hotpatch_month,
        count(*) filter (where outcome = 'avoided') as reboots_avoided,
        count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome = 'avoided') as efficacy_avoided,
        count(*) filter (where kind = 'hotpatch' and enrolled_at_start
            and outcome not in ('unknown', 'not_applicable')) as efficacy_known,
        count(*) filter (where kind = 'hotpatch' and outcome = 'avoided') as rate_avoided,
        count(*) filter (where kind = 'hotpatch' and outcome not in ('unknown', 'not_applicable')) as rate_known
    from latest as l join mm on mm.tenant_ord = l.tenant_ord and mm.month = l.month
    group by l.tenant_ord
),
actions as (
    select a.tenant_ord,
        count(*) filter (where status in ('fail', 'warn')) as open_actions,
        {severities},
        count(*) filter (where status in ('fail', 'warn') and due_date < cast(t.as_of as date)) as overdue_actions,
        count(distinct machine_id) filter (where status in ('fail', 'warn')) as machines_to_fix,
        count(*) filter (where status not in ('fail', 'warn')) as unknown_actions
    from rollup_action as a join rollup_tenant as t using (tenant_ord)
    group by a.tenant_ord
),
gaps as (
    select tenant_ord, count(*) as machines_with_gaps,
        count(*) filter (where coalesce(audits_affected, '') <> '') as gaps_affecting_audits
    from ({_multi("coverage_exceptions", "x.audits_affected")}) group by tenant_ord
),
fd as (
    select tenant_ord, count(*) filter (where status = 'unknown') as unknown_findings,
        {per_audit}
    from ({_multi("findings", "x.audit, x.status, x.state")}) group by tenant_ord
),
base as (
    select t.*,
        cast(floor(epoch(getvariable('generated_at') - t.as_of) / 86400) as integer) as age_days,
        coalesce(machines.windows_machines, 0) as windows_machines,
        coalesce(gaps.machines_with_gaps, 0) as machines_with_gaps,
        coalesce(gaps.gaps_affecting_audits, 0) as gaps_affecting_audits,
        coalesce(fd.unknown_findings, 0) as unknown_findings,
        reboot.latest_hotpatch_month,
        reboot.efficacy_avoided / nullif(reboot.efficacy_known, 0) as hotpatch_efficacy,
        coalesce(reboot.efficacy_avoided, 0) as efficacy_avoided,
        coalesce(reboot.efficacy_known, 0) as efficacy_known,
        reboot.rate_avoided / nullif(reboot.rate_known, 0) as reboot_free_coverage,
        coalesce(reboot.reboots_avoided, 0) as reboots_avoided,
        coalesce(actions.open_actions, 0) as open_actions,
        {", ".join(f"coalesce(actions.{s}, 0) as {s}" for s in SEVERITIES)},
        coalesce(actions.overdue_actions, 0) as overdue_actions,
        coalesce(actions.machines_to_fix, 0) as machines_to_fix,
        coalesce(actions.unknown_actions, 0) as unknown_actions,
        {audits}
    from rollup_tenant as t
    left join machines using (tenant_ord)
    left join reboot using (tenant_ord)
    left join actions using (tenant_ord)
    left join gaps using (tenant_ord)
    left join fd using (tenant_ord)
),
judged as (
    select *, age_days > getvariable('stale_after_days') as stale from base
),
complete as (
    select *, run_status = 'succeeded' and machines_with_gaps = 0 and not stale as data_complete
    from judged
)
select tenant_ord,
    {", ".join(c.name if c.name != "verdict" else
               "case when open_actions > 0 then 'action_needed' when not data_complete then 'incomplete_data' "
               "else 'compliant' end as verdict" for c in ROLLUP_COLUMNS)}
from complete
order by tenant_ord
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _load(con: duckdb.DuckDBPyConnection, tenants: Sequence[TenantFolder], generated_at: datetime,
          stale_after_days: int) -> None:
    """The tenants (rollup_tenant), their files (rollup_file), their open actions (rollup_action) and one row
    per tenant (rollup_tenants) in temporary tables."""
    con.execute("create temp table rollup_tenant (tenant_ord integer, tenant varchar, report_folder varchar, "
                "run_id varchar, scope varchar, owner varchar, as_of timestamp, run_status varchar, "
                "manifest_sha256 varchar)")
    con.executemany("insert into rollup_tenant values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        [i, t.name, str(t.folder), t.manifest["run_id"], t.manifest["scope"], t.manifest.get("owner"), t.as_of,
         t.manifest["run_status"], t.manifest_sha256] for i, t in enumerate(tenants)])
    con.execute("create temp table rollup_file (tenant_ord integer, export varchar, path varchar)")
    con.executemany("insert into rollup_file values (?, ?, ?)",
                    [[i, stem, str(t.export(stem))] for i, t in enumerate(tenants) for stem in NEEDED_EXPORTS])
    for stem in NEEDED_EXPORTS:
        con.execute(f"set variable files_{stem} = ?", [[str(t.export(stem)) for t in tenants]])
    con.execute("set variable generated_at = ?", [generated_at.astimezone(UTC).replace(tzinfo=None)])
    con.execute("set variable stale_after_days = ?", [stale_after_days])
    with _reading("open_actions.parquet"):
        con.execute("create temp table rollup_action as " + _multi(
            "open_actions", "x.action_id, x.audit, x.code, x.root_cause, x.machine_id, x.machine_name, x.owner, "
            "x.status, x.severity, x.days_overdue, x.remediation, x.due_date"))
    with _reading("exports"):
        con.execute("create temp table rollup_tenants as " + _tenant_sql())


def _totals(con: duckdb.DuckDBPyConnection) -> Row:
    """The fleet row: sums over tenants; efficacy pooled over each tenant's latest hotpatch month."""
    sums = ", ".join(f"sum({c}) as {c}" for c in (
        "windows_machines", "machines_with_gaps", "gaps_affecting_audits", "unknown_findings", "efficacy_avoided",
        "efficacy_known", "reboots_avoided", "open_actions", *SEVERITIES, "overdue_actions", "machines_to_fix",
        "unknown_actions", *(f"{a}_{s}" for a in AUDITS for s in ("fail", "warn", "unknown"))))
    (row,) = _rows(con, f"""
        select count(*) as tenants, count(*) filter (where data_complete) as complete,
            count(*) filter (where verdict = 'compliant') as compliant,
            count(*) filter (where verdict = 'action_needed') as action_needed,
            count(*) filter (where verdict = 'incomplete_data') as incomplete_data,
            count(*) filter (where run_status <> 'succeeded') as runs_not_succeeded,
            count(*) filter (where stale) as stale, count(*) filter (where machines_with_gaps > 0) as with_gaps,
            min(as_of) as first_as_of, max(as_of) as last_as_of,
            min(latest_hotpatch_month) as first_month, max(latest_hotpatch_month) as last_month,
            sum(efficacy_avoided) / nullif(sum(efficacy_known), 0) as hotpatch_efficacy,
            {sums}
        from rollup_tenants""")
    return row


def _top(con: duckdb.DuckDBPyConnection, top_n: int, language: str) -> tuple[list[Row], int]:
    """The top_n open actions to fix (fail or warn) across tenants, by severity, then due date, then days overdue;
    each with its tenant, the tenant's as-of time and the action in a few words."""
    rows = _rows(con, f"""
        select t.tenant, t.as_of, a.*, {_SEVERITY_RANK} as severity_rank
        from rollup_action as a join rollup_tenant as t using (tenant_ord)
        where a.status in ('fail', 'warn')
        order by severity_rank, a.due_date nulls last, a.days_overdue desc nulls last, t.tenant_ord,
            a.machine_name, a.action_id
        limit ?""", [top_n])
    (total,) = con.execute("select count(*) from rollup_action where status in ('fail', 'warn')").fetchone() or (0,)
    for r in rows:
        short = CODE_ACTIONS.get((r["audit"], r["code"]), "")
        if not short and language != i18n.SOURCE_LANGUAGE:
            short = ROOT_CAUSE_ACTIONS.get(r["root_cause"], OTHER_ACTION)
        r["short_action"] = short
    return rows, int(total)


def _write_table(con: duckdb.DuckDBPyConnection, fmt: str, path: Path) -> None:
    """rollup.csv (inert text, formula guard, as the exports) or rollup.parquet (zstd) from rollup_tenants."""
    if fmt == "csv":
        cols = ", ".join(csv_cell_sql(f"cast({c.name} as varchar)") + f" as {c.name}" if c.type == "VARCHAR"
                         else c.name for c in ROLLUP_COLUMNS)
        options = "format csv, header true"
    else:
        cols = ", ".join(f"cast({c.name} as {c.type}) as {c.name}" for c in ROLLUP_COLUMNS)
        options = "format parquet, compression zstd"

    def copy(tmp: Path) -> None:
        literal = "'" + str(tmp).replace("'", "''") + "'"
        con.execute(f"copy (select {cols} from rollup_tenants order by tenant_ord) to {literal} ({options})")

    atomic_write(path, copy)


# --- rendering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RollupData:
    """What the roll-up shows, read from the tenants' exports."""

    tenants: list[Row]
    totals: Row
    top: list[Row]
    top_total: int
    sources: list[Row]


def _per_audit(row: Row) -> dict[str, dict[str, int]]:
    return {a: {s: int(row[f"{a}_{s}"] or 0) for s in ("fail", "warn", "unknown")} for a in AUDITS}


def _read(con: duckdb.DuckDBPyConnection, tenants: Sequence[TenantFolder], top_n: int, language: str) -> _RollupData:
    rows = [{**r, "audits": _per_audit(r)} for r in _rows(con, "select * from rollup_tenants order by tenant_ord")]
    totals = _totals(con)
    top, top_total = _top(con, top_n, language)
    sources = [{"tenant": t.name, "folder": str(t.folder), "run_id": t.manifest["run_id"],
                "generated_at": _parse_time(t.manifest.get("generated_at")),
                "tool_version": t.manifest.get("tool_version"), "files_checked": t.files_checked,
                "manifest_sha256": t.manifest_sha256} for t in tenants]
    return _RollupData(tenants=rows, totals={**totals, "audits": _per_audit(totals)}, top=top, top_total=top_total,
                       sources=sources)


def _html(medium: str, data: _RollupData, *, settings: Settings, generated_at: datetime,
          stale_after_days: int) -> str:
    """The roll-up's HTML in one medium: rollup.html, or what WeasyPrint lays out for rollup.pdf."""
    static_dir = settings.project_root / "reports" / "static"
    sheets = ["report.css", "print.css"] if medium == "pdf" else ["report.css", "screen.css"]
    css = Markup("\n".join((static_dir / s).read_text(encoding="utf-8") for s in sheets))  # noqa: S704 - our CSS
    ctx = RollupContext(
        medium=medium, title=i18n.gettext(TITLE), generated_at=generated_at, tool_version=__version__,
        timezone=settings.timezone, language=settings.language,
        page_size=f"{'A4' if settings.page_size == 'A4' else 'letter'} landscape",
        css=css if medium == "html" else Markup(""), stylesheets=sheets if medium == "pdf" else [],
        script=_script(static_dir) if medium == "html" else Markup(""), author=settings.report_author,
        tenants=data.tenants, totals=data.totals, top=data.top, top_total=data.top_total, sources=data.sources,
        stale_after_days=stale_after_days,
    )
    env = build_environment(settings.timezone, settings.project_root / "reports" / "templates", settings.language)
    audits = {audit: i18n.gettext(title) for audit, title in AUDITS.items()}
    return env.get_template("rollup.html.j2").render(report=ctx, audits=audits)


def _write(fmt: str, path: Path, con: duckdb.DuckDBPyConnection, data: _RollupData, *, settings: Settings,
           generated_at: datetime, stale_after_days: int) -> Path:
    """Write one format of the roll-up to path (atomically); return path."""
    with _failure(f"write {path.name}"):
        if fmt in ("csv", "parquet"):
            _write_table(con, fmt, path)
        else:
            html = _html(fmt, data, settings=settings, generated_at=generated_at, stale_after_days=stale_after_days)
            if fmt == "html":
                atomic_write(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))
            else:
                document = layout_pdf(html, settings.project_root / "reports" / "static")
                atomic_write(path, lambda tmp: document.write_pdf(str(tmp)))
    log.info("%s written", path.name)
    return path


def _facts(tenants: Sequence[TenantFolder], data: _RollupData, stale_after_days: int) -> dict[str, Any]:
    """What manifest.json records about a roll-up: its kind, and each tenant's folder, run, manifest and verdict."""
    return {
        "report": REPORT_KIND, "run_id": None, "scope": f"rollup of {len(tenants)} tenants",
        "stale_after_days": stale_after_days,
        "tenants": [{"tenant": t.name, "report_folder": str(t.folder), "run_id": t.manifest["run_id"],
                     "scope": t.manifest["scope"], "as_of": t.manifest["as_of"],
                     "run_status": t.manifest["run_status"], "manifest_sha256": t.manifest_sha256,
                     "verdict": row["verdict"], "data_complete": bool(row["data_complete"]),
                     "stale": bool(row["stale"])}
                    for t, row in zip(tenants, data.tenants, strict=True)],
    }


def _settings(formats: Sequence[str], language: str, timezone: str, settings: Settings | None,
              stale_after_days: int, top_n: int) -> Settings:
    """The options checked (ConfigError), as settings in the roll-up's language and time zone."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ConfigError(f"unknown roll-up formats {unknown}: give html, pdf, csv or parquet")
    if language not in i18n.LANGUAGES:
        raise ConfigError(f"language {_shown(language)}: one of {', '.join(i18n.LANGUAGES)}")
    try:
        check_time_zone(timezone)
    except ValueError as exc:
        raise ConfigError(f"time zone: {exc}") from None
    if stale_after_days < 0 or top_n < 1:
        raise ConfigError("stale_after_days must be 0 or more and top_n 1 or more")
    return (settings or Settings(**{})).model_copy(update={"language": language, "timezone": timezone})


def _utc(when: datetime | None) -> datetime:
    """The roll-up's time: when (naive: UTC), default now, in UTC, whole seconds."""
    when = when or datetime.now(UTC)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


@contextmanager
def _loaded(tenants: Sequence[TenantFolder], settings: Settings, generated_at: datetime,
            stale_after_days: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection holding the tenants' rows (_load); closed on leaving."""
    con = connect(memory_limit=settings.duckdb_memory_limit)
    try:
        _load(con, tenants, generated_at, stale_after_days)
        yield con
    finally:
        con.close()


def rollup(
    report_dirs: Mapping[str, Path],
    out_dir: Path,
    *,
    formats: Sequence[str] = FORMATS,
    language: str = "en",
    timezone: str = "UTC",
    settings: Settings | None = None,
    generated_at: datetime | None = None,
    stale_after_days: int = STALE_AFTER_DAYS,
    top_n: int = TOP_ACROSS,
) -> list[Path]:
    """Roll the tenants' report folders (tenant name -> folder) up into out_dir: rollup.html, rollup.pdf,
    rollup.csv and rollup.parquet (those of formats), then SHA256SUMS and manifest.json; return the paths
    written, manifest.json last.

    Every folder is checked first (check_folders): a missing folder, or one that is not a finished report
    folder with the Parquet exports, is a ConfigError; one that does not match its manifest.json a ManifestError;
    both name the tenant and the folder, and nothing is written. out_dir is replaced whole (or not at all).
    settings (default: from the environment) give the page size, author, project root and DuckDB memory limit;
    language and timezone override its. generated_at (default now) dates the roll-up and decides which tenants
    are stale (as-of time more than stale_after_days before it); top_n actions are listed under "Fix first
    across tenants"."""
    settings = _settings(formats, language, timezone, settings, stale_after_days, top_n)
    generated = _utc(generated_at)
    tenants = check_folders(report_dirs)
    check_output(out_dir, tenants)
    with _loaded(tenants, settings, generated, stale_after_days) as con, i18n.use_language(language):
        data = _read(con, tenants, top_n, language)
        stage = staging_folder(out_dir)
        try:
            written = [_write(fmt, stage / FILE_NAMES[fmt], con, data, settings=settings, generated_at=generated,
                              stale_after_days=stale_after_days) for fmt in FORMATS if fmt in formats]
            manifest = write_manifest(stage, written, facts=_facts(tenants, data, stale_after_days),
                                      settings=settings, generated_at=generated)
            replace_folder(stage, out_dir)
        except BaseException:
            discard_folder(stage)
            raise
    return [out_dir / p.name for p in [*written, stage / SUMS_NAME, manifest]]


def rollup_report_html(
    report_dirs: Mapping[str, Path],
    *,
    medium: str = "pdf",
    language: str = "en",
    timezone: str = "UTC",
    settings: Settings | None = None,
    generated_at: datetime | None = None,
    stale_after_days: int = STALE_AFTER_DAYS,
    top_n: int = TOP_ACROSS,
) -> str:
    """The roll-up's HTML in one medium exactly as rollup() writes rollup.html ('html') or hands WeasyPrint for
    rollup.pdf ('pdf'; pass it to render.layout_pdf to lay it out), writing nothing: for tests and tools that
    inspect the layout."""
    settings = _settings([medium], language, timezone, settings, stale_after_days, top_n)
    generated = _utc(generated_at)
    tenants = check_folders(report_dirs)
    with _loaded(tenants, settings, generated, stale_after_days) as con, i18n.use_language(language):
        data = _read(con, tenants, top_n, language)
        return _html(medium, data, settings=settings, generated_at=generated, stale_after_days=stale_after_days)


def tenants_behind(manifest: Path) -> list[str]:
    """The tenants of a roll-up (its manifest.json) whose run did not succeed or whose as-of time is stale: what
    makes `hotpatch-audit rollup` exit 1. Names are made inert for a terminal."""
    facts = json.loads(manifest.read_text(encoding="utf-8"))
    return [_shown(t["tenant"]) for t in facts.get("tenants", [])
            if t.get("run_status") != "succeeded" or t.get("stale")]


def _parse_time(text: Any) -> datetime | None:
    """A manifest time (W3C, UTC) as a naive UTC datetime; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)


def parse_tenant_options(values: Sequence[str]) -> dict[str, Path]:
    """--tenant NAME=DIR options as {name: folder}; a value without '=' or with an empty name or folder, or a name
    given twice, is a ConfigError."""
    tenants: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise ConfigError(f"--tenant {_shown(value)}: expected NAME=DIR, e.g. --tenant contoso=out/contoso/report")
        if name in tenants:
            raise ConfigError(f"--tenant {_shown(name)} is given twice")
        tenants[name] = Path(folder)
    return tenants
