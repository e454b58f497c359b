"""The findings for a SIEM: findings.jsonl (JSON Lines, the findings export's rows and columns) and
findings.ocsf.json (OCSF Compliance Finding events, a JSON array as Prowler's json-ocsf), in the fleet and the
per-owner folders, listed in manifest.json and SHA256SUMS; untrusted text comes out as valid JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fixtures.report_ledger import RUN_ID, build_report_ledger
from hotpatch_audit import __version__
from hotpatch_audit.config import ReportFormat, Settings
from hotpatch_audit.exports import BIDI_CONTROLS, FINDINGS, NO_OWNER
from hotpatch_audit.manifest import verify
from hotpatch_audit.ocsf import (
    COMPLIANCE_STATUS,
    FILE_NAME,
    MAPPING,
    OCSF_VERSION,
    SEVERITY,
)
from hotpatch_audit.render import owner_slug, render_reports, run_owners

# What the OCSF schema requires, from the ocsf/ocsf-schema repository at tag 1.5.0 (the version we write):
# attributes with "requirement": "required" in
#   events/base_event.json: activity_id, category_uid, class_uid, metadata, severity_id, time, type_uid
#   events/findings/finding.json: finding_info
#   events/findings/compliance_finding.json: compliance
#   profiles/cloud.json (applied: metadata.profiles lists cloud): cloud
#   objects/metadata.json: product, version; objects/finding_info.json: uid; objects/remediation.json: desc;
#   objects/cloud.json: provider
REQUIRED: dict[str, tuple[str, ...]] = {
    "": ("activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid",
         "finding_info", "compliance", "cloud"),
    "metadata": ("product", "version"),
    "finding_info": ("uid",),
    "remediation": ("desc",),
    "cloud": ("provider",),
}
# ... and the "at_least_one" constraints of the objects we write: objects/_entity.json (name or uid), inherited by
# product.json, _resource.json -> resource_details.json, group.json and account.json; objects/user.json (account,
# name or uid); objects/evidences.json (one of its evidence attributes; we write data).
AT_LEAST_ONE: dict[str, tuple[str, ...]] = {
    "metadata.product": ("name", "uid"),
    "resources[]": ("name", "uid"),
    "resources[].group": ("name", "uid"),
    "resources[].owner": ("account", "name", "uid"),
    "cloud.account": ("name", "uid"),
    "evidences[]": ("data",),
}
# Enumerations (dictionary.json, the class and object files of 1.5.0), the values an event may hold.
ENUMS: dict[str, set[int]] = {
    "severity_id": {0, 1, 2, 3, 4, 5, 6, 99},
    "status_id": {0, 1, 2, 3, 4, 5, 99},  # events/findings/finding.json + dictionary (0 Unknown, 99 Other)
    "compliance.status_id": {0, 1, 2, 3, 99},  # objects/compliance.json + dictionary
    "activity_id": {0, 1, 2, 3, 99},
}
# datetime_t in dictionary.json (RFC 3339)
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?([Zz]|[\+-]\d{2}:\d{2})?$")
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f" + "".join(BIDI_CONTROLS) + "]")


@dataclass(frozen=True)
class Rendered:
    settings: Settings
    run_id: str
    out: Path


@pytest.fixture(scope="module")
def siem(demo_history: tuple[Settings, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The demo's last run rendered as the SIEM formats only (and Parquet, to compare), one folder per owner."""
    from hotpatch_audit.pipeline import render_stage

    settings, run_ids = demo_history
    s = settings.model_copy(update={"formats": ["parquet", "jsonl", "ocsf"]})
    out = tmp_path_factory.mktemp("siem") / "reports"
    render_stage(s, run_ids[-1], out, per_owner=True)
    return Rendered(s, run_ids[-1], out)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]  # strict: a raw control character in a string fails


def _ocsf(path: Path) -> list[dict[str, Any]]:
    events = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(events, list)
    return events


def _ledger_findings(settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    con = duckdb.connect(str(settings.path(settings.ledger_path)), read_only=True)
    try:
        cur = con.execute(f"select {', '.join(FINDINGS.names)} from audit.findings where run_id = ?", [run_id])
        names = [d[0] for d in cur.description or ()]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {r["finding_id"]: r for r in rows}


def _as_json(value: Any, column_type: str) -> Any:
    """A ledger value as findings.jsonl writes it."""
    if value is None:
        return None
    if column_type == "TIMESTAMP":
        return value.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if value.microsecond else "") + "Z")
    if column_type == "JSON":
        return json.loads(value)
    return value


def _as_of_ms(settings: Settings, run_id: str) -> int:
    con = duckdb.connect(str(settings.path(settings.ledger_path)), read_only=True)
    try:
        (as_of,) = con.execute("select as_of from meta.runs where run_id = ?", [run_id]).fetchone() or (None,)
    finally:
        con.close()
    return int(as_of.replace(tzinfo=UTC).timestamp() * 1000)


def test_settings_accept_the_siem_formats() -> None:
    assert {"jsonl", "ocsf"} <= set(ReportFormat.__args__)  # type: ignore[attr-defined]
    assert Settings(formats=["jsonl", "ocsf"]).formats == ["jsonl", "ocsf"]
    assert Settings().formats == ["html", "pdf", "csv", "parquet"]  # not by default


def test_jsonl_round_trips_the_ledgers_findings(siem: Rendered) -> None:
    rows = _jsonl(siem.out / "findings.jsonl")
    ledger = _ledger_findings(siem.settings, siem.run_id)
    assert len(rows) == len(ledger) > 0  # every finding of the run, pass included
    assert {r["status"] for r in rows} >= {"pass", "fail", "warn", "unknown"}
    types = {c.name: c.type for c in FINDINGS.columns}
    for row in rows:
        assert list(row) == list(FINDINGS.names)  # the findings export's columns, in its order
        stored = ledger[row["finding_id"]]
        assert row == {name: _as_json(stored[name], types[name]) for name in FINDINGS.names}
    closed = [r for r in rows if r["closed_at"]]
    assert closed and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", r["closed_at"]) for r in closed)
    assert all(isinstance(r["evidence"], dict) for r in rows)  # nested JSON, not JSON text


def _walk_nulls(value: Any, path: str) -> list[str]:
    """Paths of null values outside evidences[].data (the evidence JSON keeps its nulls, as stored)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        if path.endswith("evidences[]"):
            return []
        return [p for k, v in value.items() for p in _walk_nulls(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for v in value for p in _walk_nulls(v, f"{path}[]")]
    return []


def _objects(event: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The objects at a dotted path of an event (resources[] is every resource)."""
    found: list[Any] = [event]
    for part in path.split("."):
        key, many = part.removesuffix("[]"), part.endswith("[]")
        found = [o[key] for o in found if isinstance(o, dict) and key in o]
        if many:
            found = [item for items in found for item in items]
    return found


def check_ocsf_event(event: dict[str, Any]) -> None:
    """One event against the class's required attributes, constraints, enumerations and types (OCSF 1.5.0)."""
    for path, required in REQUIRED.items():
        for obj in _objects(event, path) if path else [event]:
            missing = [name for name in required if name not in obj]
            assert not missing, f"{path or 'event'} lacks {missing}"
    for path, names in AT_LEAST_ONE.items():
        for obj in _objects(event, path):
            assert any(obj.get(n) for n in names), f"{path} needs one of {names}"
    assert not _walk_nulls(event, ""), "attributes without a value are left out"
    assert (event["class_uid"], event["category_uid"], event["activity_id"], event["type_uid"]) == (2003, 2, 1, 200301)
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    assert event["class_name"] == "Compliance Finding" and event["category_name"] == "Findings"
    for path, allowed in ENUMS.items():
        parent, _, name = path.rpartition(".")
        value = (_objects(event, parent)[0] if parent else event)[name]
        assert isinstance(value, int) and value in allowed, path
    meta = event["metadata"]
    assert meta["version"] == OCSF_VERSION
    assert meta["product"] == {"name": "hotpatch-audit", "uid": "hotpatch-audit", "vendor_name": "hotpatch-audit",
                               "version": __version__}
    assert meta["profiles"] == ["cloud", "datetime"]
    # timestamp_t: epoch milliseconds; the datetime profile's *_dt twins: RFC 3339
    for ms, dt in ((event["time"], event["time_dt"]),
                   (event["finding_info"]["created_time"], event["finding_info"]["created_time_dt"])):
        assert isinstance(ms, int) and DATETIME.match(dt)
        assert datetime.fromisoformat(dt.replace("Z", "+00:00")).timestamp() * 1000 == ms
    info, compliance = event["finding_info"], event["compliance"]
    assert isinstance(info["uid"], str) and isinstance(info["title"], str) and info["types"]
    assert compliance["standards"] == ["hotpatch-audit"] and len(compliance["requirements"]) == 1
    assert isinstance(compliance["status"], str) and isinstance(compliance["status_code"], str)
    assert event["cloud"]["provider"] == "Azure" and event["cloud"]["account"]["type_id"] == 13
    (resource,) = event["resources"]
    assert isinstance(resource["uid"], str) and isinstance(resource["name"], str)


def test_ocsf_events_have_the_required_attributes_and_map_the_ledger(siem: Rendered) -> None:
    events = _ocsf(siem.out / FILE_NAME)
    ledger = _ledger_findings(siem.settings, siem.run_id)
    assert len(events) == len(ledger) > 0
    as_of_ms = _as_of_ms(siem.settings, siem.run_id)
    seen: Counter[tuple[str, int]] = Counter()
    for event in events:
        check_ocsf_event(event)
        f = ledger[event["finding_info"]["uid"]]
        assert event["time"] == as_of_ms
        assert (event["severity_id"], event["severity"]) == SEVERITY[f["severity"]]
        seen[(f["severity"], event["severity_id"])] += 1
        expected = (99, "Opportunity") if f["state"] == "opportunity" else COMPLIANCE_STATUS[f["status"]]
        assert (event["compliance"]["status_id"], event["compliance"]["status"]) == expected
        assert event["status_code"] == event["compliance"]["status_code"] == f["status"]
        assert event["compliance"]["requirements"] == [f"{f['audit']}/{f['code']}"]
        assert event["message"] == event["finding_info"]["title"] == f["reason"]  # demo names are plain text
        assert event["metadata"]["event_code"] == f["code"]
        assert event["metadata"]["uid"] == f"{siem.run_id}:{f['finding_id']}"
        assert ("remediation" in event) == bool(f["remediation"])
        (resource,) = event["resources"]
        assert (resource["uid"], resource["name"], resource["group"]["name"], resource["owner"]["name"]) == (
            f["machine_id"], f["machine_name"], f["resource_group"], f["owner"])
        assert resource["region"] == event["cloud"]["region"]  # the machine's Azure location (the demo has one)
        assert event["cloud"]["account"]["uid"] == f["subscription_id"]
        assert event["evidences"] == [{"data": json.loads(f["evidence"])}]  # nulls kept, as stored
        assert event["unmapped"]["state"] == f["state"] and event["unmapped"]["run_id"] == siem.run_id
    # every severity of the run mapped (critical 5 ... info 1)
    assert {sev for sev, _ in seen} == {f["severity"] for f in ledger.values()} >= {"critical", "high", "info"}
    # the finding's status follows the lifecycle
    by_state = {(e["unmapped"]["state"], e["status_code"], e["status_id"], e["status"]) for e in events}
    for state, status, status_id, caption in by_state:
        want = {"open": (1, "New"), "closed": (4, "Resolved"), "compliant": (4, "Resolved"), "past": (5, "Archived"),
                "opportunity": (5, "Archived"), "not_judged": (0, "Unknown")}[state]
        assert (status_id, caption) == want, (state, status)
    assert {s for s, *_ in by_state} >= {"open", "closed", "compliant", "not_judged"}


def test_every_attribute_written_is_documented(siem: Rendered) -> None:
    """MAPPING (docs/exports.md) names every attribute written, its siblings (`time_dt`...) in its text; and each
    attribute it names is written."""
    events = _ocsf(siem.out / FILE_NAME)
    written = {k for e in events for k in e} | {
        f"{top}.{k}" for e in events for top in ("metadata", "finding_info", "compliance", "remediation")
        for k in e.get(top, {})}
    paths = {path for path, _ in MAPPING}
    siblings = {(path.rpartition(".")[0], name) for path, text in MAPPING for name in re.findall(r"`([a-z_]+)`", text)}
    for path in written:
        parent, _, name = path.rpartition(".")
        documented_inside = any(p.startswith(f"{path}.") for p in paths)  # metadata: its attributes are
        assert path in paths or parent in paths or (parent, name) in siblings or documented_inside, path
    assert paths <= written


def test_siem_files_are_in_the_manifest_and_verify(siem: Rendered) -> None:
    manifest = json.loads((siem.out / "manifest.json").read_text("utf-8"))
    kinds = {f["path"]: f["kind"] for f in manifest["files"]}
    assert kinds["findings.jsonl"] == "jsonl" and kinds[FILE_NAME] == "ocsf"
    sums = (siem.out / "SHA256SUMS").read_text("utf-8")
    assert "  findings.jsonl\n" in sums and f"  {FILE_NAME}\n" in sums
    assert verify(siem.out).ok
    cli = Path(sys.executable).with_name("hotpatch-audit")
    result = subprocess.run([str(cli), "verify", str(siem.out)], capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stderr


def test_per_owner_folders_hold_that_owners_findings(siem: Rendered) -> None:
    owners = run_owners(siem.settings.path(siem.settings.ledger_path), siem.run_id, settings=siem.settings)
    assert len(owners) > 1
    fleet_rows, fleet_events = _jsonl(siem.out / "findings.jsonl"), _ocsf(siem.out / FILE_NAME)
    total = 0
    for owner in owners:
        folder = siem.out / "owners" / owner_slug(owner)
        rows, events = _jsonl(folder / "findings.jsonl"), _ocsf(folder / FILE_NAME)
        assert {r["owner"] or NO_OWNER for r in rows} <= {owner}
        assert sorted(r["finding_id"] for r in rows) == sorted(e["finding_info"]["uid"] for e in events)
        assert len(rows) == sum(1 for r in fleet_rows if (r["owner"] or NO_OWNER) == owner)
        kinds = {f["path"]: f["kind"] for f in json.loads((folder / "manifest.json").read_text("utf-8"))["files"]}
        assert kinds["findings.jsonl"] == "jsonl" and kinds[FILE_NAME] == "ocsf"
        assert verify(folder).ok
        total += len(rows)
    assert total == len(fleet_rows) == len(fleet_events)


# Untrusted text: the render fixture's db-01 renamed with a right-to-left override and a NUL, owned by a name with
# bidi isolates and an escape sequence (as tests/test_text_safety.py does).
HOSTILE_NAME = "db-\u202etxt.exe\x00-01"
SHOWN_NAME = "db-<U+202E>txt.exe-01"
HOSTILE_OWNER = "team-\u2067db\x1b[31m\u2069"
SHOWN_OWNER = "team-<U+2067>db[31m<U+2069>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hotpatch_audit.analyze import materialize_registers

    base = tmp_path_factory.mktemp("hostile-siem")
    ledger = base / "ledger.duckdb"
    build_report_ledger(ledger)
    con = duckdb.connect(str(ledger))
    try:
        for table in ("core.machines", "audit.findings"):
            con.execute(f"update {table} set machine_name = ? where machine_name = 'db-01'", [HOSTILE_NAME])
            con.execute(f"update {table} set owner = ? where machine_name = ?", [HOSTILE_OWNER, HOSTILE_NAME])
        con.execute("update audit.findings set reason = replace(reason, 'db-01', ?) where machine_name = ?",
                    [HOSTILE_NAME, HOSTILE_NAME])
        materialize_registers(con, RUN_ID)
    finally:
        con.close()
    out = base / "out"
    formats: list[ReportFormat] = ["jsonl", "ocsf"]
    paths = render_reports(ledger, RUN_ID, out, settings=Settings(), formats=formats)
    assert [p.name for p in paths] == ["findings.jsonl", FILE_NAME]
    return out


def test_jsonl_keeps_hostile_text_as_stored_and_valid(hostile: Path) -> None:
    raw = (hostile / "findings.jsonl").read_bytes()
    assert b"\x00" not in raw and b"\x1b" not in raw  # C0 controls are JSON-escaped (\u0000)
    rows = _jsonl(hostile / "findings.jsonl")
    mine = [r for r in rows if r["machine_name"] == HOSTILE_NAME]
    assert mine and {r["owner"] for r in mine} == {HOSTILE_OWNER}  # as stored, like the Parquet file
    assert any(r["reason"].startswith(HOSTILE_NAME) for r in mine)


def test_ocsf_shows_hostile_text_inert(hostile: Path) -> None:
    text = (hostile / FILE_NAME).read_text(encoding="utf-8")
    events = _ocsf(hostile / FILE_NAME)
    assert not FORBIDDEN.search(text)  # no raw control anywhere, bidi controls included
    for event in events:
        check_ocsf_event(event)

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    assert not [s for e in events for s in strings(e) if FORBIDDEN.search(s)]
    mine = [e for e in events if e["resources"][0]["name"] == SHOWN_NAME]
    assert mine and {e["resources"][0]["owner"]["name"] for e in mine} == {SHOWN_OWNER}
    assert any(e["message"].startswith(f"{SHOWN_NAME} takes quality updates from WSUS") for e in mine)


def test_ocsf_suppresses_waived_findings(hostile: Path) -> None:
    waived = [e for e in _ocsf(hostile / FILE_NAME) if e["status_code"] == "waived"]
    assert waived
    for event in waived:
        assert (event["status_id"], event["status"]) == (3, "Suppressed")
        assert (event["compliance"]["status_id"], event["compliance"]["status"]) == (3, "Fail")
        assert event["status_detail"].startswith("waived: waiver ")
