"""The demo end to end, as a patch owner runs it: a history of monthly runs, reports read back."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
from pypdf import PdfReader

from hotpatch_audit.config import Settings
from tests.snapshots import arc_row, make_snapshot, reseal

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["Reboot avoidance", "Missed hotpatches", "WSUS misconfigurations", "VBS blockers"]


def _reports(demo_history: tuple[Settings, list[str]]) -> dict[str, Path]:
    settings, run_ids = demo_history
    folder = settings.out_dir / run_ids[-1]
    return {p.name: p for p in folder.iterdir()}


def test_demo_history_builds_one_run_per_month(demo_history: tuple[Settings, list[str]]) -> None:
    settings, run_ids = demo_history
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status, strftime(as_of, '%Y-%m-%d') FROM meta.runs ORDER BY as_of").fetchall()
        assert [r[0] for r in runs] == run_ids
        assert [r[2] for r in runs] == ["2026-09-23", "2026-10-28", "2026-11-25"]
        assert {r[1] for r in runs} == {"succeeded"}
        # installation history grows beyond Azure's 30 days: the last run sees months older runs collected
        months = con.execute(
            "SELECT count(DISTINCT month) FROM core.installations WHERE run_id = ?", [run_ids[-1]]).fetchone()[0]
        assert months >= 3
    finally:
        con.close()


def test_pdf_reads_back_with_four_audits_and_plausible_figures(demo_history: tuple[Settings, list[str]]) -> None:
    settings, run_ids = demo_history
    reader = PdfReader(str(_reports(demo_history)["audit.pdf"]))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for title in SECTIONS:
        assert title in text
    assert run_ids[-1] in text
    assert re.search(r"Page 1 of \d+", text)
    # Figures the summary prints come from the ledger; check they are the ledger's and non-zero.
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        avoided = con.execute("SELECT reboots_avoided FROM report.reboot_period WHERE run_id = ?",
                              [run_ids[-1]]).fetchone()[0]
        per_audit = dict(con.execute("SELECT audit, count(*) FROM audit.findings WHERE run_id = ? AND status IN"
                                     " ('fail', 'warn') GROUP BY audit", [run_ids[-1]]).fetchall())
        windows = con.execute("SELECT windows_machines FROM report.scope_summary WHERE run_id = ?",
                              [run_ids[-1]]).fetchone()[0]
    finally:
        con.close()
    assert 0 < avoided < windows * 12
    assert set(per_audit) == {"reboot_avoidance", "missed_hotpatches", "wsus_misconfigurations", "vbs_blockers"}
    assert all(n > 0 for n in per_audit.values())
    assert f"{avoided:,}" in text


def test_html_is_offline_and_demo_hostile_tags_are_inert(demo_history: tuple[Settings, list[str]]) -> None:
    settings, run_ids = demo_history
    html = _reports(demo_history)["audit.html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)
    assert "<script>alert" not in html
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        owners = [r[0] for r in con.execute(
            "SELECT DISTINCT owner FROM audit.findings WHERE run_id = ? AND owner LIKE '%<%'", [run_ids[-1]]).fetchall()]
    finally:
        con.close()
    assert owners, "the demo fleet carries hostile tag text"


def test_exports_hold_the_registers_and_every_finding(demo_history: tuple[Settings, list[str]]) -> None:
    """open_actions.csv is audit.open_actions, exceptions.csv audit.period_exceptions, findings.parquet every
    finding with its evidence; no open action names a superseded update, no machine has two for one cause."""
    settings, run_ids = demo_history
    files = _reports(demo_history)
    with files["open_actions.csv"].open(newline="", encoding="utf-8") as fh:
        actions = list(csv.DictReader(fh))
    with files["exceptions.csv"].open(newline="", encoding="utf-8") as fh:
        exceptions = list(csv.DictReader(fh))
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        n_actions, n_exceptions, n_findings, parquet = con.execute(
            "SELECT (SELECT count(*) FROM audit.open_actions WHERE run_id = $1),"
            " (SELECT count(*) FROM audit.period_exceptions WHERE run_id = $1),"
            " (SELECT count(*) FROM audit.findings WHERE run_id = $1),"
            " (SELECT count(*) FROM read_parquet($2))",
            [run_ids[-1], str(files["findings.parquet"])]).fetchone()
        # an open miss on a machine that later installed a cumulative update of its track would be superseded
        superseded = con.execute(
            "SELECT count(*) FROM audit.findings f JOIN audit.track_updates u ON u.run_id = f.run_id"
            " AND u.machine_id = f.machine_id AND u.release_month > f.month"
            " WHERE f.run_id = $1 AND f.state = 'open' AND f.code IN ('missed', 'baseline_missed')",
            [run_ids[-1]]).fetchone()
        fixes = con.execute(
            "SELECT a.remediation, c.current_kb FROM audit.open_actions a JOIN audit.track_current c"
            " ON c.run_id = a.run_id AND c.track = a.track WHERE a.run_id = $1 AND a.root_cause = 'behind'"
            " AND a.code = 'missed'", [run_ids[-1]]).fetchall()
        closed = con.execute(
            "SELECT closed_by FROM audit.findings WHERE run_id = $1 AND state = 'closed'", [run_ids[-1]]).fetchall()
    finally:
        con.close()
    assert superseded == (0,)
    assert len(actions) == n_actions > 0 and len(exceptions) == n_exceptions > 0 and parquet == n_findings
    assert len({(r["machine_id"], r["root_cause"]) for r in actions}) == len(actions)
    assert {r["status"] for r in exceptions} <= {"fail", "warn", "waived"}
    assert {r["state"] for r in exceptions} >= {"open", "closed"}  # the demo history has machines that caught up
    closed_kbs = {kb for (kb,) in closed if kb}
    assert closed_kbs
    for remediation, current_kb in fixes:  # a miss's fix names the update current at the as-of time
        assert current_kb is None or current_kb in remediation
    assert all(not r["machine_name"].startswith(("=", "+", "-", "@")) for r in actions + exceptions)
    assert "findings.csv" not in files  # complete detail is Parquet unless csv_detail is set


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotpatch_audit.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_exit_codes_distinguish_usage_incomplete_and_failure(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.duckdb")
    bad_date = _cli("run", "--source", "demo", "--as-of", "yesterday", "--ledger", ledger)
    assert bad_date.returncode == 2 and "usage error" in bad_date.stderr
    bad_scope = _cli("run", "--source", "arg", "--subscription", "not-a-guid", "--ledger", ledger)
    assert bad_scope.returncode == 2 and "not a subscription id" in bad_scope.stderr

    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]})
    page = snap / "arc_machines" / "page-00001.json"
    body = json.loads(page.read_text())
    body["totalRecords"] = 1000  # the source announced more rows than it delivered
    page.write_text(json.dumps(body))
    reseal(snap)  # as a collector would have sealed it: the checksums hold, the data is short
    out = tmp_path / "rep"
    incomplete = _cli("run", "--source", "snapshot", "--snapshot", str(snap), "--ledger", ledger, "--out", str(out),
                      "--format", "html")
    assert incomplete.returncode == 1, incomplete.stderr
    assert "collection incomplete" in incomplete.stderr and "arc_machines" in incomplete.stderr
    assert "Coverage is incomplete" in (out / "audit.html").read_text(encoding="utf-8")

    (snap / "manifest.json").write_text("{not json")
    failed = _cli("run", "--source", "snapshot", "--snapshot", str(snap), "--ledger", ledger)
    assert failed.returncode in (2, 3) and "manifest.json" in failed.stderr


def test_query_command_reads_the_ledger(demo_history: tuple[Settings, list[str]]) -> None:
    settings, _ = demo_history
    result = _cli("query", "select count(*) as runs from meta.runs", "-o", "csv", "--ledger", str(settings.ledger_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["runs", "3"]
    refused = _cli("query", "delete from meta.runs", "--ledger", str(settings.ledger_path))
    assert refused.returncode == 2 and "read-only" in refused.stderr.lower()


def test_cli_demo_report_shows_waivers_changes_owners_and_cost(tmp_path: Path) -> None:
    """The demo as a user runs it: waivers applied, month-over-month, an owner on every finding, cost by month."""
    import os

    env = {**os.environ, "HOTPATCH_AUDIT_WORK_DIR": str(tmp_path / "work"), "HOTPATCH_AUDIT_CSV_DETAIL": "true"}
    env.pop("HOTPATCH_AUDIT_WAIVERS_PATH", None)
    env.pop("HOTPATCH_AUDIT_DOWNTIME_COST_PER_HOUR", None)
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "hotpatch_audit.cli", "demo", "--months", "3", "--machines", "500", "--end",
         "2026-11-25T03:00Z", "--ledger", str(tmp_path / "l.duckdb"), "--out", str(out), "--format", "html",
         "--format", "csv"], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode in (0, 1), result.stderr
    html = (out / "audit.html").read_text(encoding="utf-8")
    for text in ("Waivers", "DEMO-WSUS-LEGACY", "DEMO-GEN1-LEGACY", "Changes since the previous monthly run",
                 "Cost and value by month", "$1.50", "$0.00"):
        assert text in html, text
    # page 1 prices the avoided downtime at the demo's example rate, and says so
    page1 = html.split('id="attestation"', 1)[0]
    assert "at $250 per hour of downtime" in page1 and 'data-kpi="downtime_avoided_ytd"' in page1
    with (out / "findings.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["owner"] for r in rows)
    assert any(r["status"] == "waived" and r["waiver_id"] == "DEMO-WSUS-LEGACY" for r in rows)
    assert any(r["code"] == "waiver_expired" for r in rows)
