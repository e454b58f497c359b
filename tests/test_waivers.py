"""Waivers: the file is validated with precise errors, and a real run records and applies it (docs/waivers.md)."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError
from hotpatch_audit.pipeline import RunRequest, run_audit
from hotpatch_audit.waivers import AUDIT_CODES, load_waivers
from tests.snapshots import SUB, arc_row, make_snapshot

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "id": "W1", "audit": "vbs_blockers", "code": "VBS_UNKNOWN", "scope": {"subscription_id": SUB},
    "justification": "Guest configuration rolls out in Q1.", "approver": "patch-board", "expires": "2027-01-31",
}


def _write(tmp_path: Path, waivers: object) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump(waivers), encoding="utf-8")
    return path


def test_a_valid_file_loads_with_its_hash_and_an_expired_waiver_is_not_an_error(tmp_path: Path) -> None:
    old = GOOD | {"id": "OLD", "expires": "2020-01-31", "months": ["2025-09"], "scope": {"tag": {"Team": "lab"}}}
    path = _write(tmp_path, {"waivers": [GOOD, old]})
    loaded = load_waivers(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [w.id for w in loaded.waivers] == ["W1", "OLD"]
    assert loaded.waivers[1].scope_kind == "tag" and loaded.waivers[1].scope_key == "Team"
    assert loaded.waivers[1].months == ("2025-09",)


@pytest.mark.parametrize(("change", "field", "waiver"), [
    ({"audit": "wsus"}, "field audit", "'W1' (#1)"),
    ({"code": "wsus_confirmed"}, "field code", "'W1' (#1)"),
    ({"code": "*"}, "field code", "'W1' (#1)"),
    ({"expires": "2026-02-30"}, "field expires", "'W1' (#1)"),
    ({"approver": None}, "field approver", "'W1' (#1)"),
    ({"scope": {"resource_group": "rg-only"}}, "field scope.resource_group", "'W1' (#1)"),
    ({"scope": {"machine_id": "a", "subscription_id": "b"}}, "field scope", "'W1' (#1)"),
    ({"months": ["2025-9"]}, "field months", "'W1' (#1)"),
    ({"expiry": "2027-01-01"}, "unknown field(s) expiry", "'W1' (#1)"),
    ({"id": None}, "field id", "#1"),
])
def test_validation_errors_name_the_file_the_waiver_and_the_field(
    tmp_path: Path, change: dict[str, object], field: str, waiver: str
) -> None:
    path = _write(tmp_path, [GOOD | change])
    with pytest.raises(ConfigError) as err:
        load_waivers(path)
    message = str(err.value)
    assert message.startswith(f"{path}: waiver {waiver}"), message
    assert field in message, message


def test_a_duplicate_id_names_both_waivers(tmp_path: Path) -> None:
    path = _write(tmp_path, [GOOD, GOOD | {"code": "VBS_NOT_RUNNING"}])
    with pytest.raises(ConfigError, match=re.escape(f"{path}: waiver 'W1' (#2): field id: duplicate id 'W1'")) as err:
        load_waivers(path)
    assert "#1" in str(err.value)


def test_every_listed_code_is_a_literal_of_the_audit_sql() -> None:
    sql = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "sql" / "audit").glob("*.sql")))
    for audit, codes in AUDIT_CODES.items():
        assert f"create or replace view audit.{audit} " in sql
        for code in codes:
            assert f"'{code}'" in sql, f"{audit}: code {code} does not occur in sql/audit"


def _findings(ledger: Path, run_id: str) -> dict[tuple[str, str, str], tuple[str, str | None, str]]:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        rows = con.execute(
            "select audit, code, machine_name, status, waiver_id, severity from audit.findings where run_id = ?",
            [run_id]).fetchall()
    finally:
        con.close()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


def test_a_real_run_records_applies_and_reports_its_waivers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b"), arc_row("c")]})
    a_id = arc_row("a")["id"]
    waivers = _write(tmp_path, [
        GOOD | {"id": "A-VBS", "scope": {"machine_id": a_id}, "expires": "2026-12-10"},
        GOOD | {"id": "B-OLD", "scope": {"machine_id": arc_row("b")["id"]}, "expires": "2026-10-31"},
        GOOD | {"id": "NOWHERE", "scope": {"resource_group": f"{SUB}/rg-gone"}},
        GOOD | {"id": "C-WSUS", "audit": "wsus_misconfigurations", "code": "wsus_suspected",
                "scope": {"tag": {"OWNER": "ops"}}},
    ])
    ledger = tmp_path / "ledger.duckdb"
    settings = Settings(ledger_path=ledger, work_dir=tmp_path / "w", waivers_path=waivers, formats=["html"])
    with caplog.at_level(logging.WARNING, logger="hotpatch_audit.waivers"):
        outcome = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=snap, run_id="r1",
                                                 as_of=datetime(2026, 11, 25, 3, tzinfo=UTC)), out_dir=tmp_path / "out")
    assert "waiver NOWHERE: its scope matches no machine" in caplog.text
    found = _findings(ledger, "r1")
    # active waiver: the finding keeps its row and severity, is waived with the id, never pass
    assert found[("vbs_blockers", "VBS_UNKNOWN", "a")][:2] == ("waived", "A-VBS")
    # expired waiver: waives nothing, and is a finding of its own
    assert found[("vbs_blockers", "VBS_UNKNOWN", "b")][:2] == ("warn", None)
    assert found[("vbs_blockers", "waiver_expired", "b")] == ("fail", "B-OLD", "medium")
    # literal matching: a WSUS waiver (tag scope matches c) does not waive c's VBS finding
    assert found[("vbs_blockers", "VBS_UNKNOWN", "c")][:2] == ("warn", None)
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        recorded = con.execute("select waiver_id, file_sha256 from meta.waivers where run_id = 'r1' order by 1").fetchall()
        state = dict(con.execute("select waiver_id, state from report.waivers where run_id = 'r1'").fetchall())
        expiring = con.execute("select waiver_id from report.waivers_expiring where run_id = 'r1'").fetchall()
    finally:
        con.close()
    sha = hashlib.sha256(waivers.read_bytes()).hexdigest()
    assert recorded == [(w, sha) for w in ("A-VBS", "B-OLD", "C-WSUS", "NOWHERE")]
    assert state == {"A-VBS": "active", "B-OLD": "expired", "C-WSUS": "active", "NOWHERE": "active"}
    assert expiring == [("A-VBS",)]
    html = next(p for p in outcome.report_paths if p.suffix == ".html").read_text(encoding="utf-8")
    section = html.split('<section id="waivers"', 1)[1].split("</section>", 1)[0]
    assert sha in section and "Expiring within 30 days" in section
    for text in ("A-VBS", "B-OLD", "NOWHERE", "Scopes that matched no machine"):
        assert text in section
    assert sha in html.split('id="appendix"', 1)[1]


def test_without_a_waiver_file_the_run_records_none(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a")]})
    ledger = tmp_path / "ledger.duckdb"
    outcome = run_audit(Settings(ledger_path=ledger, work_dir=tmp_path / "w", formats=["html"]),
                        RunRequest(source="snapshot", snapshot_dir=snap, run_id="r1"), out_dir=tmp_path / "out")
    assert "No waiver file was applied" in outcome.report_paths[0].read_text(encoding="utf-8")
    assert "waived" not in {s for s, _, _ in _findings(ledger, "r1").values()}


def test_a_bad_waiver_file_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    waivers = _write(tmp_path, [GOOD | {"audit": "nope"}])
    settings = Settings(ledger_path=tmp_path / "ledger.duckdb", work_dir=tmp_path / "w", waivers_path=waivers)
    with pytest.raises(ConfigError, match="field audit"):
        run_audit(settings, RunRequest(source="snapshot", snapshot_dir=make_snapshot(tmp_path / "snap", {})),
                  render=False)
    assert not (tmp_path / "ledger.duckdb").exists()
