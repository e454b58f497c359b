"""Waivers: accepted exceptions, reviewed in a pull request as a YAML file (docs/waivers.md).

`load_waivers` validates the file (errors name the file, the waiver and the field); `apply_waivers` runs
inside the run's transaction (analyze.materialize_findings): it records the waivers in meta.waivers,
marks the run's matching findings `waived` with the waiver's id, and turns each expired waiver into a
`waiver_expired` finding. Audit and code match literally: a WSUS waiver never waives a VBS finding.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml

from hotpatch_audit.errors import ConfigError

log = logging.getLogger(__name__)

# The codes each audit view (sql/audit/4*.sql) can emit; a test keeps this list in step with the SQL.
AUDIT_CODES: dict[str, frozenset[str]] = {
    "reboot_avoidance": frozenset(
        {"avoided", "expected_reboot", "unexpected_reboot", "avoidable_reboot", "no_install", "unknown"}
    ),
    "missed_hotpatches": frozenset({"missed", "stale", "off_track", "baseline_missed", "enrollment_lost"}),
    "wsus_misconfigurations": frozenset({"wsus_confirmed", "wsus_unenrolled", "wsus_suspected"}),
    "vbs_blockers": frozenset({
        "HYPERV_GEN1", "FIRMWARE_NOT_UEFI", "SECURE_BOOT_OFF", "VBS_NOT_ENABLED", "VBS_NOT_RUNNING",
        "VBS_NESTED_VIRTUALIZATION", "HVCI_NOT_CONFIGURED", "VBS_UNKNOWN",
    }),
}
EXPIRED_CODE = "waiver_expired"
SCOPE_KINDS = ("machine_id", "resource_group", "subscription_id", "tag")
EXPIRING_DAYS = 30
_FIELDS = {"id", "audit", "code", "scope", "months", "justification", "approver", "expires"}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Waiver:
    """One accepted exception."""

    id: str
    audit: str
    code: str
    scope_kind: str
    scope_value: str
    justification: str
    approver: str
    expires: date
    scope_key: str | None = None
    months: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WaiverFile:
    """A validated waiver file: where it is, its SHA-256 and its waivers."""

    path: Path
    sha256: str
    waivers: tuple[Waiver, ...]


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_one(raw: Any, where: str) -> Waiver:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with id, audit, code, scope, justification, approver, expires")
    if unknown := sorted(set(map(str, raw)) - _FIELDS):
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_FIELDS))})")
    for name in ("audit", "code", "scope", "justification", "approver", "expires"):
        if raw.get(name) in (None, ""):
            raise ConfigError(f"{where}: field {name} is missing")
    waiver_id = _text(raw.get("id"))
    if waiver_id is None:
        raise ConfigError(f"{where}: field id is missing or not text")
    audit = raw["audit"]
    if audit not in AUDIT_CODES:
        raise ConfigError(f"{where}: field audit: unknown audit {audit!r} (one of {', '.join(AUDIT_CODES)})")
    code = raw["code"]
    if code not in AUDIT_CODES[audit]:
        raise ConfigError(
            f"{where}: field code: {code!r} is not a code audit {audit} emits "
            f"(one of {', '.join(sorted(AUDIT_CODES[audit]))}; codes match literally, no wildcards)"
        )
    scope = raw["scope"]
    if not isinstance(scope, dict) or len(scope) != 1 or next(iter(scope)) not in SCOPE_KINDS:
        raise ConfigError(f"{where}: field scope: give exactly one of {', '.join(SCOPE_KINDS)}")
    kind, value = next(iter(scope.items()))
    key: str | None = None
    if kind == "tag":
        if not isinstance(value, dict) or len(value) != 1:
            raise ConfigError(f"{where}: field scope.tag: give one tag as {{key: value}}")
        tag_key, tag_value = next(iter(value.items()))
        key, value = _text(tag_key), _text(tag_value)
        if key is None or value is None:
            raise ConfigError(f"{where}: field scope.tag: key and value must be non-empty text")
    else:
        value = _text(value)
        if value is None:
            raise ConfigError(f"{where}: field scope.{kind}: must be non-empty text")
        if kind == "resource_group" and (value.count("/") != 1 or "" in value.split("/")):
            raise ConfigError(f"{where}: field scope.resource_group: write it as <subscription_id>/<resource_group>")
    months: tuple[str, ...] | None = None
    if raw.get("months") is not None:
        got = raw["months"]
        if not isinstance(got, list) or not got or not all(isinstance(m, str) and _MONTH.match(m) for m in got):
            raise ConfigError(f"{where}: field months: a non-empty list of YYYY-MM texts (quote them in YAML)")
        months = tuple(got)
    expires = raw["expires"]
    if isinstance(expires, str):
        try:
            expires = date.fromisoformat(expires.strip())
        except ValueError:
            raise ConfigError(f"{where}: field expires: {expires!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(expires, date) or hasattr(expires, "hour"):
        raise ConfigError(f"{where}: field expires: {expires!r} is not a date (YYYY-MM-DD)")
    justification, approver = _text(raw["justification"]), _text(raw["approver"])
    if justification is None or approver is None:
        raise ConfigError(f"{where}: fields justification and approver must be non-empty text")
    return Waiver(id=waiver_id, audit=audit, code=code, scope_kind=kind, scope_key=key, scope_value=value,
                  months=months, justification=justification, approver=approver, expires=expires)


def load_waivers(path: Path) -> WaiverFile:
    """Read and validate a waiver file; ConfigError names the file, the waiver (id and position) and the field.

    An expired waiver is not an error here: the audit turns it into a `waiver_expired` finding.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the waiver file ({exc.strerror})") from exc
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if isinstance(doc, dict) and set(doc) == {"waivers"}:
        doc = doc["waivers"]
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise ConfigError(f"{path}: expected a list of waivers (or a mapping with the key waivers)")
    waivers: list[Waiver] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(doc, start=1):
        rid = raw.get("id") if isinstance(raw, dict) else None
        where = f"{path}: waiver {rid!r} (#{index})" if rid not in (None, "") else f"{path}: waiver #{index}"
        waiver = _parse_one(raw, where)
        if waiver.id in seen:
            raise ConfigError(
                f"{where}: field id: duplicate id {waiver.id!r} (first used by waiver #{seen[waiver.id]})"
            )
        seen[waiver.id] = index
        waivers.append(waiver)
    return WaiverFile(path=path, sha256=hashlib.sha256(data).hexdigest(), waivers=tuple(waivers))


_EXPIRED_SQL = """
insert into audit.findings by name
with run as (
    select run_id, cast(as_of as date) as as_of_date from meta.runs where run_id = $run_id
),
expired as (
    select w.* from meta.waivers w join run using (run_id) where w.expires < run.as_of_date
),
hits as (
    select distinct m.run_id, m.waiver_id, f.machine_id
    from audit.waiver_finding_matches m
    join audit.findings f using (run_id, finding_id)
    where m.run_id = $run_id and not m.active
),
expired_rows as (
    select w.*, mc.machine_id, mc.machine_name, mc.machine_kind, mc.subscription_id as m_subscription_id,
        mc.resource_group as m_resource_group, mc.owner, mc.track
    from expired w
    join hits h on h.run_id = w.run_id and h.waiver_id = w.waiver_id
    join core.machines mc on mc.run_id = h.run_id and mc.machine_id = h.machine_id
    union all by name
    -- No machine left to name: the placeholder row belongs to the waiver's approver, who must act on it.
    select w.*, 'waiver:' || w.waiver_id as machine_id, 'Waiver ' || w.waiver_id as machine_name,
        w.approver as owner
    from expired w
    where not exists (select 1 from hits h where h.run_id = w.run_id and h.waiver_id = w.waiver_id)
)
select
    md5(audit || '|' || $code || '|' || machine_id || '|' || waiver_id) as finding_id,
    run_id, audit, $code as code, machine_id, machine_name, machine_kind,
    m_subscription_id as subscription_id, m_resource_group as resource_group, owner, track,
    null::varchar as month, 'fail' as status, 'medium' as severity,
    case when machine_id like 'waiver:%'
        then machine_name || ' (' || code || ', approved by ' || approver || ') expired on ' || cast(expires as varchar)
             || ' and matches no open finding in this run; remove it from the waiver file.'
        else machine_name || ' was covered by waiver ' || waiver_id || ' (' || code || ', approved by ' || approver
             || ') which expired on ' || cast(expires as varchar) || '; its ' || code || ' findings count again.'
    end as reason,
    'Fix the finding, or renew the waiver with a new expiry and approval in ' || file_path
        || ' (reviewed in a pull request).' as remediation,
    json_object('run_id', run_id, 'source', 'waiver file', 'waiver_id', waiver_id, 'waived_code', code,
        'scope', scope_kind || coalesce(' ' || scope_key || '=', ' ') || scope_value, 'approver', approver,
        'expires', expires, 'justification', justification, 'file', file_path, 'sha256', file_sha256) as evidence,
    waiver_id
from expired_rows
"""

_WAIVE_SQL = """
update audit.findings set status = 'waived', waiver_id = pick.waiver_id
from (
    select finding_id, first(waiver_id order by expires desc, waiver_id) as waiver_id
    from audit.waiver_finding_matches
    where run_id = $run_id and active
    group by finding_id
) pick
where audit.findings.run_id = $run_id and audit.findings.finding_id = pick.finding_id
    and audit.findings.status <> 'pass'
"""


def apply_waivers(con: duckdb.DuckDBPyConnection, run_id: str, waivers: WaiverFile | None) -> int:
    """Record the run's waivers and apply them to its findings (call inside the run's transaction).

    Returns the number of findings waived. Without a waiver file the run records none.
    """
    con.execute("delete from meta.waivers where run_id = ?", [run_id])
    con.execute("delete from meta.settings where run_id = ? and key in ('waivers_file', 'waivers_sha256')", [run_id])
    if waivers is None:
        return 0
    if waivers.waivers:
        con.executemany(
            "insert into meta.waivers values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?)",
            [[run_id, w.id, w.audit, w.code, w.scope_kind, w.scope_key, w.scope_value,
              list(w.months) if w.months else None, w.justification, w.approver, w.expires,
              str(waivers.path), waivers.sha256] for w in waivers.waivers],
        )
        con.execute(
            "update meta.waivers w set machines_matched = (select count(*) from audit.waiver_machines m"
            " where m.run_id = w.run_id and m.waiver_id = w.waiver_id) where w.run_id = ?", [run_id])
    con.executemany("insert into meta.settings values (?, ?, ?)",
                    [[run_id, "waivers_file", str(waivers.path)], [run_id, "waivers_sha256", waivers.sha256]])
    for (waiver_id,) in con.execute(
        "select waiver_id from meta.waivers where run_id = ? and machines_matched = 0 order by waiver_id", [run_id]
    ).fetchall():
        log.warning("%s: waiver %s: its scope matches no machine in run %s", waivers.path, waiver_id, run_id)
    con.execute(_WAIVE_SQL, {"run_id": run_id})
    (waived,) = con.execute(
        "select count(*) from audit.findings where run_id = ? and status = 'waived'", [run_id]
    ).fetchone() or (0,)
    con.execute(_EXPIRED_SQL, {"run_id": run_id, "code": EXPIRED_CODE})
    log.info("waivers: %d in %s (sha256 %s), %d findings waived", len(waivers.waivers), waivers.path,
             waivers.sha256[:12], waived)
    return int(waived)
