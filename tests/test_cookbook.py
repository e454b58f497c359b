"""docs/cookbook.md: ten questions, each answered by one SQL query that runs read-only against a demo ledger and
returns what its question promises (checked against the audit tables it reads, or computed apart from them)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from hotpatch_audit.config import Settings
from hotpatch_audit.ledger import latest_run
from hotpatch_audit.pipeline import RunRequest, monthly_as_of_series, run_audit
from tests.conftest import AS_OF

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = ROOT / "docs" / "cookbook.md"
QUESTION = re.compile(r"^## (\d+)\. ([^\n]+)\n\n```sql\n(.*?)^```$", re.M | re.S)


def _questions() -> list[tuple[int, str, str]]:
    return [(int(n), title, sql) for n, title, sql in QUESTION.findall(COOKBOOK.read_text(encoding="utf-8"))]


QUESTIONS = {n: sql for n, _, sql in _questions()}


def test_ten_questions_each_one_sql_block_under_its_heading() -> None:
    text = COOKBOOK.read_text(encoding="utf-8")
    assert len(re.findall(r"^```sql$", text, re.M)) == 10
    assert [n for n, _, _ in _questions()] == list(range(1, 11))  # and every block sits right under its heading
    assert all(title.endswith("?") for _, title, _ in _questions())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Seven monthly runs (May to November 2026) of the 500-machine demo fleet with the demo's waivers, as
    `hotpatch-audit demo --months 7` builds them (without reports). The session's demo_history is too short for
    question 1: a run reads 30 days of installations, so May's hotpatch month is judged only with a run in May."""
    base = tmp_path_factory.mktemp("cookbook")
    settings = Settings(ledger_path=base / "ledger.duckdb", out_dir=base / "reports", work_dir=base / "work",
                        demo_machines=500, waivers_path=ROOT / "data" / "demo-waivers.yaml")
    run_ids = [run_audit(settings, RunRequest(source="demo", as_of=as_of), render=False).run_id
               for as_of in monthly_as_of_series(AS_OF, 7)]
    return settings.ledger_path, run_ids


@pytest.fixture(scope="module")
def ledger(history: tuple[Path, list[str]]) -> Path:
    return history[0]


def _read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """The ledger as `hotpatch-audit query` opens it: read-only, no file but the ledger."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _answer(path: Path, n: int) -> list[dict[str, Any]]:
    con = _read_only(path)
    try:
        cur = con.execute(QUESTIONS[n])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def _rows(path: Path, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def latest(ledger: Path) -> str:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        found = latest_run(con)
    finally:
        con.close()
    assert found
    return found


@pytest.mark.parametrize("n", range(1, 11))
def test_every_query_answers_on_the_demo(ledger: Path, n: int) -> None:
    """The demo fleet has every case the questions ask about: missed hotpatches, WSUS, VBS blockers, waivers,
    data gaps, changes since the previous run."""
    assert _answer(ledger, n), f"question {n} returned no rows on the demo ledger"


def test_q1_missed_in_each_of_the_last_three_hotpatch_months(ledger: Path, latest: str) -> None:
    """Computed apart: the calendar's due hotpatch months per track from the run's month grid, then the machines
    with a failed `missed` finding in all three."""
    grid = _rows(ledger, "select track, month, kind, is_due from core.run_months where run_id = ?", [latest])
    months: dict[str, list[str]] = defaultdict(list)
    for track, month, kind, is_due in grid:
        if kind == "hotpatch" and is_due:
            months[track].append(month)
    last3 = {track: sorted(ms)[-3:] for track, ms in months.items()}
    assert last3["ws2025"] == ["2026-05", "2026-08", "2026-11"], "ws2025's 2026-06 and -09 were unplanned baselines"
    assert last3["ws2022-azure-edition"] == ["2026-06", "2026-08", "2026-11"]
    misses: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for machine_id, track, month in _rows(
        ledger, "select machine_id, track, month from audit.findings where run_id = ? and audit = 'missed_hotpatches'"
                " and code = 'missed' and status = 'fail'", [latest]):
        misses[machine_id].add((track, month))
    expected = {m for m, got in misses.items() for track in {t for t, _ in got}
                if {(track, month) for month in last3[track]} <= got}

    answer = _answer(ledger, 1)
    assert {r["machine_id"] for r in answer} == expected
    assert expected, "the demo has machines that missed three hotpatch months running"
    for r in answer:
        assert r["months_missed"] == ", ".join(last3[r["track"]])
    # a machine with two of the three is not listed
    assert any(len({(t, m) for t, m in got if m in last3[t]}) == 2 for got in misses.values())


def test_q2_reboots_avoided_per_month(ledger: Path, latest: str) -> None:
    answer = _answer(ledger, 2)
    outcomes = dict(_rows(ledger, "select outcome, count(*) from audit.machine_months where run_id = ? group by all",
                          [latest]))
    assert sum(r["reboots_avoided"] for r in answer) == outcomes["avoided"] > 0
    assert len(answer) == 12  # the reporting period
    for r in answer:
        if "hotpatch" not in r["kinds"]:
            assert r["reboots_avoided"] == 0 and r["downtime_hours_avoided"] == 0, r  # a baseline needs its reboot
        else:
            assert abs(r["downtime_hours_avoided"] - r["reboots_avoided"] * 15 / 60) <= 0.05, r


def test_q3_open_actions_by_owner_and_due_date(ledger: Path, latest: str) -> None:
    answer = _answer(ledger, 3)
    actions = _rows(ledger, "select owner, due_date, due_date < cast(r.as_of as date) from audit.open_actions"
                            " join meta.runs r using (run_id) where run_id = ?", [latest])
    assert sum(r["actions"] for r in answer) == len(actions)
    by_key = defaultdict(int)
    for owner, due, overdue in actions:
        by_key[(owner, due, overdue)] += 1
    assert {(r["owner"], r["due_date"], r["overdue"]): r["actions"] for r in answer} == by_key
    assert {r["overdue"] for r in answer} == {True, False}


def test_q4_vbs_blockers_and_why(ledger: Path, latest: str) -> None:
    answer = _answer(ledger, 4)
    vbs_codes = {"HYPERV_GEN1", "FIRMWARE_NOT_UEFI", "SECURE_BOOT_OFF", "VBS_NOT_ENABLED", "VBS_NOT_RUNNING",
                 "VBS_NESTED_VIRTUALIZATION", "HVCI_NOT_CONFIGURED", "VBS_UNKNOWN", "waiver_expired"}
    assert {r["blocker"] for r in answer} <= vbs_codes
    assert {r["status"] for r in answer} <= {"fail", "warn", "waived"} and "fail" in {r["status"] for r in answer}
    assert all(r["reason"] and r["reason"].startswith(r["machine_name"]) for r in answer if r["blocker"] != "waiver_expired")
    expected = _rows(ledger, "select count(*) from audit.findings where run_id = ? and audit = 'vbs_blockers'"
                             " and status in ('fail', 'warn', 'waived')", [latest])[0][0]
    assert len(answer) == expected
    assert [r["status"] for r in answer] == sorted((r["status"] for r in answer), key=["fail", "warn", "waived"].index)


def test_q5_wsus_machines(ledger: Path) -> None:
    answer = _answer(ledger, 5)
    assert {r["code"] for r in answer} <= {"wsus_confirmed", "wsus_unenrolled", "wsus_suspected"}
    confirmed = [r for r in answer if r["code"] in ("wsus_confirmed", "wsus_unenrolled")]
    assert confirmed and all(r["wsus_server"] and r["evidence_from"] == "guest facts" for r in confirmed)
    assert all(r["wsus_server"] is None for r in answer if r["code"] == "wsus_suspected")
    assert any(r["status"] == "waived" and r["waiver_id"] for r in answer), "the demo waives the legacy WSUS hosts"


def test_q6_machines_not_judged(ledger: Path, latest: str) -> None:
    answer = _answer(ledger, 6)
    unknown = dict(_rows(ledger, "select machine_id, count(*) from audit.findings where run_id = ? and status = 'unknown'"
                                 " group by all", [latest]))
    names = dict(_rows(ledger, "select machine_id, machine_name from core.machines where run_id = ?", [latest]))
    assert sorted((r["machine_name"], r["unknown_findings"]) for r in answer) == sorted(
        (names[m], n) for m, n in unknown.items())
    assert any(r["data_gaps"] != "(no data gap)" for r in answer)


def test_q7_changes_since_last_month(ledger: Path, history: tuple[Path, list[str]]) -> None:
    _, run_ids = history
    answer = _answer(ledger, 7)
    previous = _rows(ledger, "select as_of from meta.runs where run_id = ?", [run_ids[-2]])[0][0]
    assert {r["compared_with"] for r in answer} == {previous}
    assert {r["change"] for r in answer} <= {"new", "regressed", "still_open", "fixed", "waived", "unknown"}
    assert {"new", "still_open"} <= {r["change"] for r in answer}


def test_q8_waivers_expiring_soon(ledger: Path) -> None:
    answer = _answer(ledger, 8)
    assert [r["waiver_id"] for r in answer] == ["DEMO-NESTED-INFRA"]  # expires 2026-12-15, 20 days after the run
    assert all(0 <= r["days_left"] <= 30 for r in answer)


def test_q9_readiness_funnel(ledger: Path, latest: str) -> None:
    answer = _answer(ledger, 9)
    assert [r["gate"] for r in answer] == list(range(1, 12))
    machines = _rows(ledger, "select first_failing_gate, count(*) from audit.readiness where run_id = ? group by all",
                     [latest])
    total = sum(n for _, n in machines)
    assert answer[0]["machines_reaching"] == total
    assert sum(r["machines_stopped"] for r in answer) + answer[-1]["machines_passing"] == total
    for r in answer:
        stopped = sum(int(part.rsplit(" ", 1)[1]) for part in (r["stopped_by"] or "").split(", ") if part)
        assert stopped == r["machines_stopped"], r


def test_q10_one_findings_history(ledger: Path, history: tuple[Path, list[str]]) -> None:
    _, run_ids = history
    answer = _answer(ledger, 10)
    assert [r["run_id"] for r in answer] == run_ids  # every good run of the scope, oldest first
    assert answer[-1]["status"] == "fail" and answer[-1]["state"] == "open"
    assert len({r["machine_name"] for r in answer if r["machine_name"]}) == 1


def test_the_queries_run_through_hotpatch_audit_query(ledger: Path) -> None:
    """As the page shows them: `hotpatch-audit query "..."`, read-only, no file access."""
    runner = CliRunner()
    for n, sql in QUESTIONS.items():
        result = runner.invoke(app, ["query", "-o", "csv", "--ledger", str(ledger), sql])
        assert result.exit_code == 0, (n, result.output)
        assert len(list(csv.reader(io.StringIO(result.output)))) == len(_answer(ledger, n)) + 1, n


def test_the_queries_run_in_the_duckdb_command_line(ledger: Path) -> None:
    """As the page shows them: `duckdb -readonly ledger.duckdb` (the duckdb-cli package, DuckDB 1.x)."""
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("no duckdb command beside this interpreter (duckdb-cli is a dev dependency)")
    for n, sql in QUESTIONS.items():
        result = subprocess.run([cli, "-readonly", "-csv", str(ledger), "-c", sql], capture_output=True, text=True,
                                timeout=120, check=False)
        if "database file with version number" in result.stderr:
            pytest.skip(f"this duckdb command cannot read the ledger's storage version: {result.stderr.strip()[:120]}")
        assert result.returncode == 0, (n, result.stderr)
        assert len(list(csv.reader(io.StringIO(result.stdout)))) == len(_answer(ledger, n)) + 1, n


def test_q1_counts_each_tracks_own_due_hotpatch_months() -> None:
    """Hand-made: ws2025's June is an unplanned baseline and December is still within grace, where
    ws2022-azure-edition's June is a hotpatch month; a late install (warn) is not a miss."""
    from tests._ledger_helpers import add_run, insert, new_ledger

    con = new_ledger()
    add_run(con, "r", "2026-12-10 03:00", {})
    months = {"ws2025": [("2026-05", "hotpatch", True), ("2026-06", "unplanned_baseline", True),
                         ("2026-08", "hotpatch", True), ("2026-11", "hotpatch", True), ("2026-12", "hotpatch", False)],
              "ws2022-azure-edition": [("2026-05", "hotpatch", True), ("2026-06", "hotpatch", True),
                                       ("2026-08", "hotpatch", True), ("2026-11", "hotpatch", True)]}
    misses = {"m-all": ("ws2025", ["2026-05", "2026-08", "2026-11", "2026-12"]),
              "m-baseline": ("ws2025", ["2026-06", "2026-08", "2026-11"]),  # June was no hotpatch month
              "m-late": ("ws2025", ["2026-05", "2026-08"]),                  # November installed late: warn
              "m-2022": ("ws2022-azure-edition", ["2026-06", "2026-08", "2026-11"]),
              "m-2022-may": ("ws2022-azure-edition", ["2026-05", "2026-08", "2026-11"])}
    for machine, (track, missed) in misses.items():
        for month, kind, due in months[track]:
            insert(con, "audit.machine_months", {"run_id": "r", "machine_id": machine, "track": track, "month": month,
                                                 "kind": kind, "is_due": due, "outcome": "unknown"})
            status = "fail" if month in missed else "warn" if machine == "m-late" and month == "2026-11" else "pass"
            insert(con, "audit.findings", {"finding_id": f"{machine}-{month}", "run_id": "r", "machine_id": machine,
                                           "machine_name": machine, "audit": "missed_hotpatches", "track": track,
                                           "code": "missed", "month": month, "status": status, "severity": "high"})
    rows = con.execute(QUESTIONS[1]).fetchall()
    assert sorted((r[0], r[3]) for r in rows) == [("m-2022", "2026-06, 2026-08, 2026-11"),
                                                  ("m-all", "2026-05, 2026-08, 2026-11")]
