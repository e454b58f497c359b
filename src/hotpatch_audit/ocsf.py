"""findings.ocsf.json: the run's findings as OCSF Compliance Finding events (class_uid 2003, category 2 Findings,
activity 1 Create: type_uid 200301), for a SIEM or a security data lake.

The file is what Prowler's `--output-formats json-ocsf` writes: one JSON array of events, here one event per line
inside it. The events follow OCSF schema OCSF_VERSION (the version py-ocsf-models, Prowler's models, targets),
with the cloud and datetime profiles (metadata.profiles): every event has `cloud`, and every epoch-millisecond
time (`time`, `finding_info.created_time`) its RFC 3339 `*_dt` twin. Attributes without a value are left out,
never written as null (OCSF's JSON schemas type them; null is not a string).

The events are built in DuckDB (one SELECT, the rows of the findings export: every finding of the run, pass
included, or one owner's) and streamed to the file; MAPPING documents every attribute and feeds docs/exports.md.
Display text (the reason and remediation sentences, machine, owner and subscription names) is made inert as in
the reports (exports.inert_sql: no C0 control, bidirectional controls shown as <U+202E>), since a SIEM shows it;
identifiers (finding and resource uids) stay as stored, so they join to the ledger and to Azure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from hotpatch_audit import __version__
from hotpatch_audit.duck import sql_literal
from hotpatch_audit.exports import export_filter_sql, inert_sql, iso_utc_sql
from hotpatch_audit.files import atomic_write

log = logging.getLogger(__name__)

FILE_NAME = "findings.ocsf.json"
OCSF_VERSION = "1.5.0"
PRODUCT = "hotpatch-audit"
CLASS_UID, CATEGORY_UID, ACTIVITY_ID = 2003, 2, 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_ID  # 200301: Compliance Finding: Create
STANDARD = "hotpatch-audit"  # compliance.standards: the audits of docs/audits.md
_BATCH = 10_000  # events fetched from DuckDB at a time: the file is streamed, never held whole

# Our severity -> OCSF severity_id and its caption (others: 99 Other, severity as stored).
SEVERITY: dict[str, tuple[int, str]] = {
    "critical": (5, "Critical"),
    "high": (4, "High"),
    "medium": (3, "Medium"),
    "low": (2, "Low"),
    "info": (1, "Informational"),
}
# Our status -> compliance.status_id and its caption. OCSF's Warning is "the compliance check did not yield a
# result due to missing information": our unknown. Our warn (installed late, WSUS suspected, a past reboot outcome)
# is not compliant, as in the auditor's register (audit.period_exceptions), so Fail like waived (a waiver accepts
# a failure); but an opportunity (avoidable_reboot, state opportunity) is no defect: 99 Other, status
# Opportunity. compliance.status_code keeps the status as stored.
COMPLIANCE_STATUS: dict[str, tuple[int, str]] = {
    "pass": (1, "Pass"),
    "unknown": (2, "Warning"),
    "fail": (3, "Fail"),
    "warn": (3, "Fail"),
    "waived": (3, "Fail"),
}
OPPORTUNITY = (99, "Opportunity")
# The finding's status_id (OCSF: "the normalized status of the Finding"), first rule that matches, from the status
# and the lifecycle state (docs/findings.md). In Progress (2) is never given: the tool does not know whether
# anyone is working on a finding.
FINDING_STATUS: tuple[tuple[str, int, str, str], ...] = (
    ("f.status = 'waived'", 3, "Suppressed", "waived: a waiver accepts it (unmapped.waiver_id)"),
    ("f.status = 'pass'", 4, "Resolved", "pass: compliant (state compliant)"),
    ("f.state = 'closed'", 4, "Resolved", "state closed: not compliant in its month, resolved since"),
    ("f.state in ('past', 'opportunity')", 5, "Archived",
     "state past or opportunity: a past month's reboot outcome, kept as a fact of the period, not an action"),
    ("f.state = 'open' or (f.state is null and f.status in ('fail', 'warn'))", 1, "New",
     "state open: present at the as-of time and fixable (the owner's list; stale data included)"),
    ("true", 0, "Unknown", "otherwise (state not_judged: unknown data)"),
)
# Azure resource type of each machine kind (resources[].type).
RESOURCE_TYPE = {"azure_vm": "Microsoft.Compute/virtualMachines", "arc": "Microsoft.HybridCompute/machines"}

# Every attribute written, with where its value comes from (docs/exports.md). A test checks the events against it.
MAPPING: tuple[tuple[str, str], ...] = (
    ("activity_id", "1 (Create); `activity_name` Create: each run reports every finding afresh"),
    ("category_uid", f"{CATEGORY_UID} (Findings); `category_name` Findings"),
    ("class_uid", f"{CLASS_UID} (Compliance Finding); `class_name` Compliance Finding"),
    ("type_uid", f"{TYPE_UID} (class_uid × 100 + activity_id); `type_name` Compliance Finding: Create"),
    ("time", "the run's as-of time (`meta.runs.as_of`), epoch milliseconds; `time_dt` the same in RFC 3339 UTC; "
     "`timezone_offset` 0"),
    ("severity_id", "severity: " + ", ".join(f"{k} {v[0]}" for k, v in SEVERITY.items())
     + "; `severity` its caption (" + ", ".join(v[1] for v in SEVERITY.values()) + ")"),
    ("status_id", "the finding's status: "
     + "; ".join(f"{n} {caption} for {words}" for _, n, caption, words in FINDING_STATUS)
     + "; `status` its caption"),
    ("status_code", "status as stored: fail, warn, pass, unknown or waived (as Prowler's PASS/FAIL)"),
    ("status_detail", "the lifecycle: state, and for a closed finding closed_reason and closed_by, for a waived one "
     "the waiver"),
    ("message", "reason, the finding's sentence (inert text)"),
    ("metadata.version", f"{OCSF_VERSION}, the OCSF schema version"),
    ("metadata.product", f"`name` and `uid` {PRODUCT}, `vendor_name` {PRODUCT}, `version` the tool's version"),
    ("metadata.profiles", "cloud, datetime"),
    ("metadata.event_code", "code, the finding code"),
    ("metadata.uid", "run_id:finding_id, this event (a file loaded twice loads the same uids)"),
    ("metadata.correlation_uid", "run_id: every event of the run"),
    ("finding_info.uid", "finding_id: the same finding keeps it from run to run (track it by this)"),
    ("finding_info.title", "reason (inert text)"),
    ("finding_info.desc", "what the finding code means (`ref.audit_codes.summary`)"),
    ("finding_info.types", "[audit]"),
    ("finding_info.created_time", "the run's as-of time, epoch milliseconds; `created_time_dt` RFC 3339"),
    ("compliance.standards", f"[{STANDARD}]"),
    ("compliance.requirements", "[audit/code], e.g. missed_hotpatches/missed"),
    ("compliance.control", "the audit's title (`ref.audits.title`), e.g. Missed hotpatches"),
    ("compliance.status_id", "status: " + ", ".join(f"{k} {v[0]}" for k, v in COMPLIANCE_STATUS.items())
     + f", but an opportunity (avoidable_reboot: no defect) {OPPORTUNITY[0]} Other; `status` its caption (Pass, "
     f"Warning: no result for missing data, Fail, {OPPORTUNITY[1]}); `status_code` status as stored"),
    ("remediation.desc", "remediation (inert text); no `remediation` when it is empty (pass and closed findings)"),
    ("resources", "one: the machine. `uid` machine_id (the Azure resource id, lower-cased), `name` machine_name "
     "(inert text), `type` " + " or ".join(RESOURCE_TYPE.values()) + " (machine_kind), `region` its Azure "
     "location when known, `group.name` resource_group, `owner.name` owner (inert text)"),
    ("cloud", "`provider` Azure, `region` the machine's location when known, `account`: `uid` subscription_id, "
     "`name` the subscription's name when known (inert text), `type_id` 13, `type` Azure Subscription"),
    ("evidences", "[{`data`: evidence}], the facts behind the finding as JSON, nulls kept"),
    ("unmapped", "the findings columns OCSF has no place for: run_id, audit, code, machine_kind, track, month, state, "
     "closed_reason, closed_by, closed_at (RFC 3339), exposure_days, waiver_id (those with a value)"),
)


def _case(column: str, table: dict[str, tuple[int, str]], part: int, other: str) -> str:
    whens = " ".join(f"when {sql_literal(k)} then {sql_literal(str(v[part])) if part else v[part]}"
                     for k, v in table.items())
    return f"case {column} {whens} else {other} end"


def _finding_status(part: int) -> str:
    whens = " ".join(
        f"when {cond} then "
        + (str(n) if part == 0 else sql_literal(caption))
        for cond, n, caption, _ in FINDING_STATUS
    )
    return f"case {whens} end"


def _resource_type() -> str:
    whens = " ".join(f"when {sql_literal(k)} then {sql_literal(v)}" for k, v in RESOURCE_TYPE.items())
    return f"case f.machine_kind {whens} else f.machine_kind end"


def _no_nulls(struct_sql: str) -> str:
    """JSON of a struct without its null attributes, at every depth but inside arrays (RFC 7396 merge patch
    into {}: a null in the patch removes the key)."""
    return f"json_merge_patch('{{}}', to_json({struct_sql}))"


def ocsf_select() -> str:
    """The SELECT of one JSON text per event (column event): the findings of getvariable('export_run_id'), one
    owner's with getvariable('export_owner') (as the exports)."""
    as_of_ms = "epoch_ms(r.as_of)"
    as_of_dt = iso_utc_sql("r.as_of")
    severity_id = _case("f.severity", SEVERITY, 0, "99")
    severity = _case("f.severity", SEVERITY, 1, "f.severity")
    compliance_id = (f"case when f.state = 'opportunity' then {OPPORTUNITY[0]} else "
                     f"{_case('f.status', COMPLIANCE_STATUS, 0, '0')} end")
    compliance_caption = (f"case when f.state = 'opportunity' then {sql_literal(OPPORTUNITY[1])} else "
                          f"{_case('f.status', COMPLIANCE_STATUS, 1, sql_literal('Unknown'))} end")
    title = inert_sql("coalesce(f.reason, f.audit || '/' || f.code)")  # every finding has a reason sentence
    status_detail = (
        "case when f.status = 'waived' then 'waived: waiver ' || coalesce(f.waiver_id, '(unknown)')"
        " when f.state = 'closed' then concat_ws(' ', 'closed:', f.closed_reason, 'by ' || f.closed_by)"
        " else f.state end"
    )
    resource = _no_nulls(
        "{'uid': f.machine_id, 'name': " + inert_sql("f.machine_name") + ", 'type': " + _resource_type()
        + ", 'region': m.location, 'group': case when f.resource_group is null then null"
        " else {'name': f.resource_group} end, 'owner': case when f.owner is null then null"
        " else {'name': " + inert_sql("f.owner") + "} end}"
    )
    event = _no_nulls(
        "{"
        f"'activity_id': {ACTIVITY_ID}, 'activity_name': 'Create', "
        f"'category_uid': {CATEGORY_UID}, 'category_name': 'Findings', "
        f"'class_uid': {CLASS_UID}, 'class_name': 'Compliance Finding', "
        f"'type_uid': {TYPE_UID}, 'type_name': 'Compliance Finding: Create', "
        f"'time': {as_of_ms}, 'time_dt': {as_of_dt}, 'timezone_offset': 0, "
        f"'severity_id': {severity_id}, 'severity': {severity}, "
        f"'status_id': {_finding_status(0)}, 'status': {_finding_status(1)}, 'status_code': f.status, "
        f"'status_detail': {status_detail}, "
        f"'message': {title}, "
        "'metadata': {"
        f"'version': {sql_literal(OCSF_VERSION)}, "
        f"'product': {{'name': {sql_literal(PRODUCT)}, 'uid': {sql_literal(PRODUCT)}, "
        f"'vendor_name': {sql_literal(PRODUCT)}, "
        f"'version': {sql_literal(__version__)}}}, "
        "'profiles': ['cloud', 'datetime'], 'event_code': f.code, 'uid': f.run_id || ':' || f.finding_id, "
        "'correlation_uid': f.run_id}, "
        "'finding_info': {"
        f"'uid': f.finding_id, 'title': {title}, 'desc': c.summary, 'types': [f.audit], "
        f"'created_time': {as_of_ms}, 'created_time_dt': {as_of_dt}}}, "
        "'compliance': {"
        f"'standards': [{sql_literal(STANDARD)}], 'requirements': [f.audit || '/' || f.code], "
        "'control': a.title, "
        f"'status_id': {compliance_id}, 'status': {compliance_caption}, 'status_code': f.status}}, "
        "'remediation': case when coalesce(f.remediation, '') = '' then null "
        f"else {{'desc': {inert_sql('f.remediation')}}} end, "
        f"'resources': [{resource}], "
        "'cloud': {'provider': 'Azure', 'region': m.location, 'account': case when f.subscription_id is null "
        f"then null else {{'uid': f.subscription_id, 'name': {inert_sql('m.subscription_name')}, 'type_id': 13, "
        "'type': 'Azure Subscription'} end}, "
        "'evidences': case when f.evidence is null then null else [{'data': f.evidence}] end, "
        "'unmapped': {'run_id': f.run_id, 'audit': f.audit, 'code': f.code, 'machine_kind': f.machine_kind, "
        "'track': nullif(f.track, ''), 'month': nullif(f.month, ''), 'state': f.state, "
        "'closed_reason': f.closed_reason, 'closed_by': f.closed_by, "
        f"'closed_at': {iso_utc_sql('f.closed_at')}, 'exposure_days': f.exposure_days, 'waiver_id': f.waiver_id}}"
        "}"
    )
    return (
        f"select cast({event} as varchar) as event from audit.findings f"
        " join meta.runs r on r.run_id = f.run_id"
        " left join (select machine_id, any_value(location) as location,"
        " any_value(subscription_name) as subscription_name from core.machines"
        " where run_id = getvariable('export_run_id') group by machine_id) m on m.machine_id = f.machine_id"
        " left join ref.audit_codes c on c.audit = f.audit and c.code = f.code"
        " left join ref.audits a on a.audit = f.audit"
        f" where {export_filter_sql('f.')}"
    )


def write_findings_ocsf(
    con: duckdb.DuckDBPyConnection, path: Path, run_id: str, owner: str | None = None
) -> int:
    """Write one run's findings (one owner's with owner) to path as a JSON array of OCSF Compliance Finding
    events, one per line, atomically; return how many."""
    con.execute("set variable export_run_id = ?", [run_id])
    con.execute("set variable export_owner = ?", [owner])
    select = ocsf_select()

    def write(tmp: Path) -> int:
        written = 0
        con.execute("set preserve_insertion_order = false")  # no order to keep: DuckDB builds events in parallel
        try:
            cur = con.execute(select)
            with tmp.open("w", encoding="utf-8", newline="\n") as f:
                f.write("[")
                while batch := cur.fetchmany(_BATCH):
                    f.write(("\n" if not written else ",\n") + ",\n".join(row[0] for row in batch))
                    written += len(batch)
                f.write("\n]\n")
        finally:
            con.execute("reset preserve_insertion_order")
        return written

    written = atomic_write(path, write)
    log.info("%s: %d events", path.name, written)
    return written


def ocsf_markdown() -> list[str]:
    """The findings.ocsf.json section of docs/exports.md, from MAPPING."""
    lines = [
        f"## `{FILE_NAME}`",
        "",
        f"The findings as OCSF **Compliance Finding** events (`class_uid` {CLASS_UID}, category {CATEGORY_UID} "
        "Findings,",
        f"`type_uid` {TYPE_UID}: Create), OCSF schema **{OCSF_VERSION}** (the version of py-ocsf-models, the models",
        "Prowler writes with), for a SIEM or a security data lake. The file is what Prowler's",
        "`--output-formats json-ocsf` writes: one JSON array (UTF-8) of events, one event per line inside it, in no",
        "particular order. Its rows are those of `findings.jsonl` (every finding of the run, pass included: see",
        "above); `--format ocsf` writes it, not by default.",
        "",
        "Every event has the attributes the schema requires of the class (`activity_id`, `category_uid`,",
        "`class_uid`, `type_uid`, `severity_id`, `time`, `metadata` with `product` and `version`, `finding_info`",
        "with `uid`, `compliance`) and of its profiles: `cloud` (with `provider`) and `datetime` (`time_dt`",
        "beside `time`). OCSF times are epoch milliseconds (UTC). Attributes without a value are left out, never",
        "`null`. Display text (the reason and remediation sentences, machine, owner and subscription names) is",
        "inert as in the CSV (no C0 control, bidirectional controls shown as `<U+202E>`): a SIEM shows it.",
        "Identifiers (`finding_info.uid`, `resources[].uid`) are as stored, so they join to the ledger and to",
        "Azure; `evidences[].data` is the evidence JSON as stored.",
        "",
        "Status: `status_id` is the finding's, for the SIEM's queue (New only for what the owner must fix now;",
        "In Progress is never given: the tool does not know who works on what); `compliance.status_id` is the",
        "check's result (OCSF's Warning means no result for missing data: our unknown). `status_code` and",
        "`compliance.status_code` keep the status as stored.",
        "",
        "| attribute | value |",
        "|---|---|",
    ]
    lines += [f"| `{path}` | {value.replace('|', chr(92) + '|')} |" for path, value in MAPPING]
    lines += [
        "",
        "One filter each, with `jq`: the open list `jq -c '.[] | select(.status_id == 1)' findings.ocsf.json`;",
        "the failures `jq -c '.[] | select(.compliance.status_id == 3)' findings.ocsf.json`.",
        "",
    ]
    return lines
