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


class _Dumper(yaml.SafeDumper):
    """Writes shared objects out in full: waiver files refuse aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _write(tmp_path: Path, waivers: object) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.dump(waivers, Dumper=_Dumper), encoding="utf-8")
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
    ({"audit": "wsus"}, "field audit", "'W1' (#1, line 1)"),
    ({"code": "wsus_confirmed"}, "field code", "'W1' (#1, line 1)"),
    ({"code": "*"}, "field code", "'W1' (#1, line 1)"),
    ({"expires": "2026-02-30"}, "field expires", "'W1' (#1, line 1)"),
    ({"approver": None}, "field approver", "'W1' (#1, line 1)"),
    ({"scope": {"resource_group": "rg-only"}}, "field scope.resource_group", "'W1' (#1, line 1)"),
    ({"scope": {"machine_id": "a", "subscription_id": "b"}}, "field scope", "'W1' (#1, line 1)"),
    ({"months": ["2025-9"]}, "field months", "'W1' (#1, line 1)"),
    ({"months": ["2025-09", "2025-09"]}, "field months: a month is listed twice", "'W1' (#1, line 1)"),
    ({"expiry": "2027-01-01"}, "unknown field(s) expiry", "'W1' (#1, line 1)"),
    ({"id": None}, "field id", "(#1, line 1)"),
    # wrong types and values a typo or a copy-paste produces
    ({"audit": ["vbs_blockers"]}, "field audit: unknown audit ['vbs_blockers']", "'W1' (#1, line 1)"),
    ({"code": {"VBS_UNKNOWN": 1}}, "field code", "'W1' (#1, line 1)"),
    ({"id": 42}, "field id is missing or not text", "42 (#1, line 1)"),
    ({"justification": "   "}, "fields justification and approver must be non-empty text", "'W1' (#1, line 1)"),
    ({"approver": ["alice", "bob"]}, "fields justification and approver", "'W1' (#1, line 1)"),
    ({"approver": "alice\x1b[2J"}, "field approver: 'alice\\x1b[2J' holds control characters", "'W1' (#1, line 1)"),
    ({"id": "W" * 101}, "field id: 101 characters, at most 100", "'WWWW"),
    ({"expires": 20270131}, "field expires: 20270131 is not a date", "'W1' (#1, line 1)"),
    ({"expires": "20270131"}, "field expires: '20270131' is not a date", "'W1' (#1, line 1)"),
    ({"expires": "31.01.2027"}, "field expires: '31.01.2027' is not a date", "'W1' (#1, line 1)"),
    ({"expires": "2999-12-31"}, "field expires: 2999-12-31 is outside 2000-01-01 to 2099-12-31", "'W1' (#1, line 1)"),
    ({"expires": datetime(2027, 1, 31, 10, 0)}, "field expires: 2027-01-31 10:00:00 is a time", "'W1' (#1, line 1)"),
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
    with pytest.raises(ConfigError, match=re.escape(f"{path}: waiver 'W1' (#2, line 9): field id: duplicate id 'W1'")) as err:
        load_waivers(path)
    assert "#1" in str(err.value)


GOOD_YAML = """waivers:
  - id: W1
    audit: vbs_blockers
    code: VBS_UNKNOWN
    scope: {subscription_id: 00000000-0000-0000-0000-000000000001}
    justification: Guest configuration rolls out in Q1.
    approver: patch-board
    expires: 2027-01-31
"""


@pytest.mark.parametrize(("text", "message"), [
    # PyYAML keeps the last of two equal keys: a second `code:` or `expires:` would pass review unseen
    (GOOD_YAML + "    expires: 2099-12-31\n", ":9: duplicate key 'expires' (first on line 8)"),
    ("waivers: [{id: a, id: b}]\n", ":1: duplicate key 'id' (first on line 1)"),
    ("waivers: []\nwaivers: []\n", ":2: duplicate key 'waivers'"),
    # PyYAML raises a bare ValueError for an impossible date
    (GOOD_YAML.replace("2027-01-31", "2026-02-30"), ":8: '2026-02-30' is not a date (YYYY-MM-DD)"),
    (GOOD_YAML.replace("2027-01-31", "!!timestamp soon"), ":8: 'soon' is not a date"),
    # aliases (billion laughs) and merge keys
    ("a: &a [x, x, x]\nb: &b [*a, *a, *a]\nwaivers: []\n", ":2: alias *a: anchors and aliases are not allowed"),
    (GOOD_YAML + "    <<: {months: ['2026-01']}\n", ":9: merge keys (<<) are not allowed"),
    ("[" * 100 + "]" * 100, ":1: nested deeper than 10 levels"),
    # not the shape the format describes
    ("just a sentence\n", ": expected a list of waivers (or a mapping with the key waivers), not str"),
    ("{id: W1}\n", ": expected a list of waivers (or a mapping with the key waivers), not dict"),
    (GOOD_YAML + "owner: me\n", ": unknown top-level key(s) 'owner'"),
    (GOOD_YAML + "---\n" + GOOD_YAML, ":9: not valid YAML (expected a single document in the stream"),
    ("waivers:\n  - id: [\n", ":3: not valid YAML (while parsing a flow node"),
    ("waivers:\n\t- id: W1\n", ":2: not valid YAML ("),
    (GOOD_YAML.replace("2027-01-31", "!!python/object/apply:os.system [true]"), ":8: not valid YAML (could not determine a constructor"),
    ("waivers:\n  - W1\n", ": waiver (#1, line 2): expected a mapping"),
])
def test_yaml_the_format_refuses_is_named_by_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_waivers(path)
    assert str(err.value).startswith(f"{path}{message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_the_file_itself_must_be_readable_utf8_and_small(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(GOOD_YAML.replace("patch-board", "Jos\u00e9").encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"{latin}:7: not UTF-8 text (byte 0xe9)")):
        load_waivers(latin)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# padding\n" * 600_000)
    with pytest.raises(ConfigError, match="a waiver file may hold at most 5,242,880"):
        load_waivers(huge)
    with pytest.raises(ConfigError, match="cannot read the waiver file"):
        load_waivers(tmp_path)


def test_an_empty_file_holds_no_waivers(tmp_path: Path) -> None:
    for text in ("", "# none yet\n", "waivers:\n", "waivers: []\n", "[]\n"):
        path = tmp_path / "waivers.yaml"
        path.write_text(text, encoding="utf-8")
        assert load_waivers(path).waivers == ()


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
