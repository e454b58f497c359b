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
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from hotpatch_audit import audit_meta
from hotpatch_audit.duck import delete_rows
from hotpatch_audit.errors import ConfigError

log = logging.getLogger(__name__)

# The codes each audit view can emit: the one list is each audit's metadata file (sql/audit/*.toml).
AUDIT_CODES: dict[str, frozenset[str]] = audit_meta.load().codes()
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


MAX_FILE_BYTES = 5 * 1024 * 1024  # a waiver file is reviewed by people: anything larger is a mistake
MAX_DEPTH = 10  # the format nests four levels (waivers, waiver, scope, tag); deeper is not a waiver file
EXPIRES_RANGE = (date(2000, 1, 1), date(2099, 12, 31))
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_TEXT = {"id": 100, "approver": 200, "justification": 5000}


def _show(value: object, limit: int = 60) -> str:
    """repr() of a value for a message, cut to `limit` characters (a file may hold megabytes in one field)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Refused(Exception):
    """A YAML construct the waiver format refuses, with the line it is on."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing what PyYAML silently accepts: duplicate keys (it keeps the last), aliases (billion
    laughs), deep nesting, and impossible dates (it raises a bare ValueError for 2026-02-30)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(event.start_mark.line + 1, f"alias *{getattr(event, 'anchor', '')}: anchors and aliases "
                           "are not allowed; write each waiver out in full")
        if self._depth >= MAX_DEPTH:
            raise _Refused(self.peek_event().start_mark.line + 1,  # type: ignore[no-untyped-call]
                            f"nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(line, "merge keys (<<) are not allowed; write each waiver out in full")
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: the base class refuses it with its own message
                continue
            if first is not None:
                raise _Refused(line, f"duplicate key {_show(key)} (first on line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, TypeError, AttributeError):
        raise _Refused(node.start_mark.line + 1, f"{_show(node.value)} is not a date (YYYY-MM-DD)") from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _item_lines(node: yaml.Node | None) -> list[int]:
    """The line each waiver starts on (the items of the top-level list, or of the `waivers:` list)."""
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "waivers"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _parse_yaml(path: Path, text: str) -> tuple[Any, list[int]]:
    """The document and its waivers' lines; ConfigError naming file and line for anything refused."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), _item_lines(node)
    except _Refused as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: not valid YAML ({what})") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    finally:
        loader.dispose()


def _text(value: Any, name: str = "", where: str = "") -> str | None:
    """Stripped non-empty text, else None; with a name, text too long or with control characters is refused."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if name in _MAX_TEXT and len(text) > _MAX_TEXT[name]:
        raise ConfigError(f"{where}: field {name}: {len(text):,} characters, at most {_MAX_TEXT[name]:,}")
    if name and name != "justification" and _CONTROL.search(text):
        raise ConfigError(f"{where}: field {name}: {_show(text)} holds control characters")
    return text


def _expires(value: Any, where: str) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: field expires: {_show(value)} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        raise ConfigError(f"{where}: field expires: {value.isoformat(sep=' ')} is a time; give a date (YYYY-MM-DD)")
    if not isinstance(value, date):
        raise ConfigError(f"{where}: field expires: {_show(value)} is not a date (YYYY-MM-DD)")
    low, high = EXPIRES_RANGE
    if not low <= value <= high:
        raise ConfigError(f"{where}: field expires: {value} is outside {low} to {high}")
    return value


def _parse_one(raw: Any, where: str) -> Waiver:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with id, audit, code, scope, justification, approver, expires")
    if unknown := sorted(set(map(str, raw)) - _FIELDS):
        shown = ", ".join(_show(u, 40).strip("'\"") for u in unknown)
        raise ConfigError(f"{where}: unknown field(s) {shown} (allowed: {', '.join(sorted(_FIELDS))})")
    for name in ("audit", "code", "scope", "justification", "approver", "expires"):
        if raw.get(name) in (None, ""):
            raise ConfigError(f"{where}: field {name} is missing")
    waiver_id = _text(raw.get("id"), "id", where)
    if waiver_id is None:
        raise ConfigError(f"{where}: field id is missing or not text")
    audit = raw["audit"]
    if not isinstance(audit, str) or audit not in AUDIT_CODES:
        raise ConfigError(f"{where}: field audit: unknown audit {_show(audit)} (one of {', '.join(AUDIT_CODES)})")
    code = raw["code"]
    if not isinstance(code, str) or code not in AUDIT_CODES[audit]:
        raise ConfigError(
            f"{where}: field code: {_show(code)} is not a code audit {audit} emits "
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
        key, value = _text(tag_key, "scope.tag", where), _text(tag_value, "scope.tag", where)
        if key is None or value is None:
            raise ConfigError(f"{where}: field scope.tag: key and value must be non-empty text")
    else:
        value = _text(value, f"scope.{kind}", where)
        if value is None:
            raise ConfigError(f"{where}: field scope.{kind}: must be non-empty text")
        if kind == "resource_group" and (value.count("/") != 1 or "" in value.split("/")):
            raise ConfigError(f"{where}: field scope.resource_group: write it as <subscription_id>/<resource_group>")
    months: tuple[str, ...] | None = None
    if raw.get("months") is not None:
        got = raw["months"]
        if not isinstance(got, list) or not got or not all(isinstance(m, str) and _MONTH.match(m) for m in got):
            raise ConfigError(f"{where}: field months: a non-empty list of YYYY-MM texts (quote them in YAML)")
        if len(set(got)) != len(got):
            raise ConfigError(f"{where}: field months: a month is listed twice")
        months = tuple(got)
    expires = _expires(raw["expires"], where)
    justification = _text(raw["justification"], "justification", where)
    approver = _text(raw["approver"], "approver", where)
    if justification is None or approver is None:
        raise ConfigError(f"{where}: fields justification and approver must be non-empty text")
    return Waiver(id=waiver_id, audit=audit, code=code, scope_kind=kind, scope_key=key, scope_value=value,
                  months=months, justification=justification, approver=approver, expires=expires)


def load_waivers(path: Path) -> WaiverFile:
    """Read and validate a waiver file; ConfigError names the file, the waiver (id and position) and the field,
    or the file and line for YAML the format refuses (duplicate keys, aliases, impossible dates).

    An expired waiver is not an error here: the audit turns it into a `waiver_expired` finding.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; a waiver file may hold at most {MAX_FILE_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the waiver file ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    doc, lines = _parse_yaml(path, text)
    if isinstance(doc, dict) and "waivers" in doc:
        if extra := sorted(map(str, set(doc) - {"waivers"})):
            raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(_show(e, 40) for e in extra)}: "
                              "the file holds a list of waivers or a mapping with the single key waivers")
        doc = doc["waivers"]
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise ConfigError(f"{path}: expected a list of waivers (or a mapping with the key waivers), "
                          f"not {type(doc).__name__}")
    waivers: list[Waiver] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(doc, start=1):
        rid = raw.get("id") if isinstance(raw, dict) else None
        pos = f"#{index}, line {lines[index - 1]}" if index <= len(lines) else f"#{index}"
        where = f"{path}: waiver {_show(rid)} ({pos})" if rid not in (None, "") else f"{path}: waiver ({pos})"
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
    null::varchar as month, 'fail' as status, 'open' as state, 'medium' as severity,
    audit.message(reason_key, params) as reason,
    audit.message('waiver_expired.fix', params) as remediation,
    reason_key, 'waiver_expired.fix' as remediation_key, params,
    to_json({'run_id': run_id, 'source': 'waiver file', 'waiver_id': waiver_id, 'waived_code': code,
        'scope': scope_kind || coalesce(' ' || scope_key || '=', ' ') || scope_value, 'approver': approver,
        'expires': expires, 'justification': justification, 'file': file_path, 'sha256': file_sha256}) as evidence,
    waiver_id
from (
    select *,
        case when machine_id like 'waiver:%' then 'waiver_expired.unmatched' else 'waiver_expired' end as reason_key,
        map {'machine': machine_name, 'waiver': waiver_id, 'code': code, 'approver': approver,
             'date': cast(expires as varchar), 'path': file_path} as params
    from expired_rows
)
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
    delete_rows(con, "delete from meta.waivers where run_id = ?", [run_id])
    delete_rows(con, "delete from meta.settings where run_id = ? and key in ('waivers_file', 'waivers_sha256')",
                [run_id])
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
