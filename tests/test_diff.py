"""Month over month: audit.finding_changes, audit.finding_changes_between, diff.py, `hotpatch-audit diff`."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from fixtures.report_ledger import CONTRACT_DDL, PAST_RUN_ID, RUN_ID, build_report_ledger
from hotpatch_audit.cli_diff import diff as diff_command
from hotpatch_audit.config import PROJECT_ROOT, Settings
from hotpatch_audit.console import guard as _guard
from hotpatch_audit.diff import CHANGE_COLUMNS, diff_runs
from hotpatch_audit.errors import ConfigError
from hotpatch_audit.render import render_reports

SCOPE = "tenant t / 1 subscription"
R1, R2, ROD, R3 = "r1-2026-09", "r2-2026-10", "rod-2026-10-20", "r3-2026-11"
ROTHER = "rx-other-scope"
RUNS = (  # run_id, scope, as_of, is_monthly, status
    (R1, SCOPE, datetime(2026, 9, 23), True, "succeeded"),
    (R2, SCOPE, datetime(2026, 10, 28), True, "succeeded"),
    (ROD, SCOPE, datetime(2026, 11, 5), False, "succeeded"),  # on demand: not in month over month
    ("rfail", SCOPE, datetime(2026, 11, 10), True, "failed"),  # failed: never a previous run
    (R3, SCOPE, datetime(2026, 11, 25), True, "incomplete"),
    (ROTHER, "tenant other", datetime(2026, 11, 20), True, "succeeded"),
)
# finding key -> machine, audit, code, month, statuses in (R1, R2, ROD, R3); None = no row
FINDINGS: dict[str, tuple[str, str, str, str | None, tuple[str | None, ...]]] = {
    "still": ("m1", "missed_hotpatches", "missed", "2026-10", (None, "fail", None, "fail")),
    "new": ("m1", "vbs_blockers", "VBS_NOT_RUNNING", None, (None, None, None, "fail")),
    "new_after_on_demand": ("m1", "wsus_misconfigurations", "wsus_suspected", None, (None, None, "warn", "warn")),
    "regressed": ("m2", "missed_hotpatches", "missed", "2026-08", ("fail", "pass", None, "warn")),
    "regressed_absent": ("m2", "vbs_blockers", "VBS_UNKNOWN", None, ("warn", None, None, "warn")),
    "fixed_pass": ("m2", "missed_hotpatches", "missed", "2026-09", (None, "fail", None, "pass")),
    "fixed_absent": ("m3", "vbs_blockers", "VBS_NOT_ENABLED", None, (None, "fail", None, None)),
    "unknown_status": ("m3", "missed_hotpatches", "stale", "2026-10", (None, "fail", None, "unknown")),
    "machine_gone": ("m4", "vbs_blockers", "VBS_NOT_RUNNING", None, (None, "fail", None, None)),
    "data_gap": ("m5", "vbs_blockers", "VBS_NOT_RUNNING", None, (None, "fail", None, None)),
    "aged_out": ("m3", "reboot_avoidance", "avoidable_reboot", "2025-11", (None, "warn", None, None)),
    "waived": ("m1", "missed_hotpatches", "off_track", "2026-07", (None, "fail", None, "waived")),
    "enrollment_lost": ("m1", "missed_hotpatches", "enrollment_lost", None, (None, None, None, "fail")),
    "pass_only": ("m3", "missed_hotpatches", "missed", "2026-11", (None, None, None, "pass")),
}
EXPECTED = {  # change in R3 against R2
    "still": "still_open",
    "new": "new",
    "new_after_on_demand": "new",
    "regressed": "regressed",
    "regressed_absent": "regressed",
    "fixed_pass": "fixed",
    "fixed_absent": "fixed",
    "unknown_status": "unknown",
    "machine_gone": "unknown",
    "data_gap": "unknown",
    "aged_out": "unknown",
    "waived": "waived",
    "enrollment_lost": "new",
}
MACHINES_IN_SCOPE = {R1: ["m1", "m2", "m3", "m4", "m5"], R2: ["m1", "m2", "m3", "m4", "m5"],
                     ROD: ["m1", "m2", "m3", "m4", "m5"], R3: ["m1", "m2", "m3", "m5"], ROTHER: ["m1"]}


def _fid(key: str) -> str:
    machine, audit, code, month, _statuses = FINDINGS[key]
    return f"{audit}|{code}|{machine}|{month or ''}"


def build_diff_ledger(path: Path) -> None:
    """Hand-made runs and findings: one finding per change kind between R2 and R3."""
    con = duckdb.connect(str(path))
    try:
        con.execute((PROJECT_ROOT / "sql" / "00_schema.sql").read_text(encoding="utf-8"))
        con.execute(CONTRACT_DDL)
        for run_id, scope, as_of, monthly, status in RUNS:
            con.execute(
                "insert into meta.runs (run_id, scope, as_of, source, tool_version, started_at, status, is_monthly)"
                " values (?, ?, ?, 'demo', '0.1.0', ?, ?, ?)",
                [run_id, scope, as_of, as_of, status, monthly],
            )
        for run_id, machines in MACHINES_IN_SCOPE.items():
            for m in machines:
                con.execute(
                    "insert into audit.readiness (run_id, machine_id, machine_name) values (?, ?, ?)",
                    [run_id, m, f"srv-{m}"],
                )
        con.execute("insert into audit.coverage values (?, 'm5', 'srv-m5', 'no_guest_facts', null)", [R3])
        runs = [R1, R2, ROD, R3]
        for key, (machine, audit, code, month, statuses) in FINDINGS.items():
            for run_id, status in zip(runs, statuses, strict=True):
                if status is None:
                    continue
                con.execute(
                    "insert into audit.findings (finding_id, run_id, audit, code, machine_id, machine_name, owner,"
                    " month, status, severity, reason) values (?, ?, ?, ?, ?, ?, 'team-a', ?, ?, 'high', ?)",
                    [_fid(key), run_id, audit, code, machine, f"srv-{machine}", month, status,
                     f"srv-{machine}: {key} in {run_id}"],
                )
        con.execute((PROJECT_ROOT / "sql" / "audit" / "96_finding_changes.sql").read_text(encoding="utf-8"))
        # the registers give each open action its due date from the run's remediation windows
        con.execute((PROJECT_ROOT / "sql" / "core" / "00_run_settings.sql").read_text(encoding="utf-8"))
        con.execute((PROJECT_ROOT / "sql" / "audit" / "98_registers.sql").read_text(encoding="utf-8"))
    finally:
        con.close()


@pytest.fixture(scope="module")
def diff_con(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("diff") / "ledger.duckdb"
    build_diff_ledger(path)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _changes(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> dict[str, dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or ()]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    by_id = {r["finding_id"]: r for r in rows}
    assert len(by_id) == len(rows), "one row per finding"
    return {key: by_id[_fid(key)] for key in FINDINGS if _fid(key) in by_id}


def test_view_pairs_each_good_monthly_run_with_the_previous_one(diff_con: duckdb.DuckDBPyConnection) -> None:
    pairs = diff_con.execute(
        "select distinct run_id, previous_run_id from audit.finding_changes order by run_id"
    ).fetchall()
    assert pairs == [(R2, R1), (R3, R2)]  # not the on-demand, failed or other-scope runs; R1 has no previous
    cols = [d[0] for d in diff_con.execute("select * from audit.finding_changes limit 0").description or ()]
    # the diff's columns (its CSV), then the reason's message key and params (for a translated report)
    assert cols == [*CHANGE_COLUMNS, "reason_key", "params"]


def test_every_change_kind(diff_con: duckdb.DuckDBPyConnection) -> None:
    got = _changes(diff_con, "select * from audit.finding_changes where run_id = ?", [R3])
    assert {k: r["change"] for k, r in got.items()} == EXPECTED  # pass_only is not a change
    assert got["still"]["status_before"] == "fail" and got["still"]["status_now"] == "fail"
    assert got["regressed"]["status_before"] == "pass"
    assert got["fixed_absent"]["status_now"] is None
    assert got["machine_gone"]["change_detail"] == "machine no longer in this run's scope"
    assert "no_guest_facts" in got["data_gap"]["change_detail"]
    assert "left the reporting period" in got["aged_out"]["change_detail"]
    assert got["unknown_status"]["change_detail"].startswith("status unknown")
    assert got["regressed"]["first_open_as_of"] == datetime(2026, 9, 23)


def test_earlier_pair_in_the_view(diff_con: duckdb.DuckDBPyConnection) -> None:
    got = _changes(diff_con, "select * from audit.finding_changes where run_id = ?", [R2])
    assert got["regressed"]["change"] == "fixed"  # fail in R1, pass in R2
    assert got["regressed_absent"]["change"] == "fixed"  # absent in R2, machine in scope, no gaps
    assert got["still"]["change"] == "new"


def test_unknown_is_never_fixed(diff_con: duckdb.DuckDBPyConnection) -> None:
    got = _changes(diff_con, "select * from audit.finding_changes where run_id = ?", [R3])
    for key in ("unknown_status", "machine_gone", "data_gap", "aged_out"):
        assert got[key]["change"] == "unknown", key


def test_macro_compares_any_two_runs_of_a_scope(diff_con: duckdb.DuckDBPyConnection) -> None:
    got = _changes(diff_con, "select * from audit.finding_changes_between(?, ?)", [R1, R3])
    assert got["regressed"]["change"] == "still_open"  # open in R1 and R3
    assert got["still"]["change"] == "new"
    od = _changes(diff_con, "select * from audit.finding_changes_between(?, ?)", [ROD, R3])
    assert od["new_after_on_demand"]["change"] == "still_open"
    assert diff_con.execute("select count(*) from audit.finding_changes_between(?, ?)", [R3, ROTHER]).fetchone() == (0,)


def test_diff_runs_default_and_filters(diff_con: duckdb.DuckDBPyConnection) -> None:
    result = diff_runs(diff_con)  # latest good monthly run vs the previous good monthly run of its scope
    assert (result.run_a.run_id, result.run_b.run_id) == (R2, R3)
    explicit = diff_runs(diff_con, R2, R3, changes=("new", "regressed"))
    assert {r["change"] for r in explicit.rows} == {"new", "regressed"}
    counts = diff_runs(diff_con, R2, R3).counts()
    assert counts["vbs_blockers"]["unknown"] == 2 and counts["vbs_blockers"]["fixed"] == 1
    assert counts["missed_hotpatches"]["new"] == 1 and counts["missed_hotpatches"]["waived"] == 1


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (R2, ROTHER, "different scopes"),
        (R3, R2, "earlier"),
        (R2, "nope", "no run"),
        (R2, None, "both"),
        ("rfail", R3, "status failed"),
    ],
)
def test_diff_runs_refuses(diff_con: duckdb.DuckDBPyConnection, a: str, b: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        diff_runs(diff_con, a, b)
    with pytest.raises(ConfigError, match="unknown change"):
        diff_runs(diff_con, R2, R3, changes=("gone",))


# --- the demo history (real pipeline) and the CLI -------------------------------------------------

cli_app = typer.Typer()
cli_app.command("diff")(_guard(diff_command))
cli_app.command("noop")(lambda: None)  # two commands: the subcommand name is required, as in the real app


def test_demo_history_enrollment_lost_is_new_where_it_appears(demo_history: tuple[Any, list[str]]) -> None:
    settings, run_ids = demo_history
    assert isinstance(settings, Settings)
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        lost = con.execute(
            """select f.run_id, f.finding_id, c.change from audit.findings f
               join audit.finding_run_pairs p on p.run_id = f.run_id
               left join audit.finding_changes c on c.run_id = f.run_id and c.finding_id = f.finding_id
               where f.code = 'enrollment_lost' and f.status in ('fail', 'warn') and p.previous_run_id is not null
                 and not exists (select 1 from audit.findings o where o.run_id = p.previous_run_id
                                 and o.finding_id = f.finding_id and o.status in ('fail', 'warn'))"""
        ).fetchall()
        # the 150-machine demo has no enrollment loss in Sep-Nov 2026 (the hand-made ledger pins that case);
        # should one appear, it must be new where it first appears
        for _run, _finding, change in lost:
            assert change == "new"
        # the view agrees with the macro on the last pair
        last = con.execute(
            "select change, count(*) from audit.finding_changes where run_id = ? group by all order by 1", [run_ids[-1]]
        ).fetchall()
        macro = con.execute(
            "select change, count(*) from audit.finding_changes_between(?, ?) group by all order by 1",
            [run_ids[-2], run_ids[-1]],
        ).fetchall()
        assert last == macro and last
        assert con.execute(
            "select count(*) from audit.finding_changes where run_id = ?", [run_ids[0]]
        ).fetchone() == (0,)  # first monthly run: nothing to compare
    finally:
        con.close()


def test_cli_default_table_and_csv(demo_history: tuple[Any, list[str]]) -> None:
    settings, run_ids = demo_history
    assert isinstance(settings, Settings)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["diff", "--ledger", str(settings.ledger_path)])
    assert result.exit_code == 0, result.output
    assert "Changes per audit" in result.output
    result = runner.invoke(
        cli_app,
        ["diff", run_ids[0], run_ids[2], "--ledger", str(settings.ledger_path), "-o", "csv", "--change", "new"],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["change"] for r in rows} == {"new"}
    assert {r["run_id"] for r in rows} == {run_ids[2]} and {r["previous_run_id"] for r in rows} == {run_ids[0]}


def test_cli_refuses_different_scopes_with_usage_error(demo_history: tuple[Any, list[str]], tmp_path: Path) -> None:
    settings, run_ids = demo_history
    assert isinstance(settings, Settings)
    ledger = tmp_path / "ledger.duckdb"
    shutil.copy(settings.ledger_path, ledger)
    con = duckdb.connect(str(ledger))
    try:
        con.execute(
            "insert into meta.runs select * replace ('other-run' as run_id, 'another scope' as scope) "
            "from meta.runs where run_id = ?",
            [run_ids[-1]],
        )
    finally:
        con.close()
    result = CliRunner().invoke(cli_app, ["diff", run_ids[0], "other-run", "--ledger", str(ledger)])
    assert result.exit_code == 2
    assert "different scopes" in " ".join(result.output.split())
    result = CliRunner().invoke(cli_app, ["diff", "--help"])
    assert "Example: hotpatch-audit diff" in " ".join(result.output.split())


# --- the report section ---------------------------------------------------------------------------


def test_report_shows_changes_and_first_run_says_nothing_to_compare(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    out = tmp_path / "now"
    render_reports(ledger, RUN_ID, out, settings=Settings(), formats=("html",))
    html = " ".join((out / "audit.html").read_text(encoding="utf-8").split())
    assert "Changes since the previous monthly run" in html
    assert f"Compared with run <span class=\"run-id\">{PAST_RUN_ID}</span>" in html
    assert "New and regressed findings:" in html
    assert "nothing to compare" not in html
    past = tmp_path / "past"
    render_reports(ledger, PAST_RUN_ID, past, settings=Settings(), formats=("html",))
    assert "first monthly run of this scope: nothing to compare" in (past / "audit.html").read_text(encoding="utf-8")


def test_demo_history_standing_blocker_without_a_month_keeps_its_id(demo_history: tuple[Any, list[str]]) -> None:
    """A VBS or WSUS finding has no month: the same machine's same blocker in two monthly runs is one finding id,
    so the diff calls it still open, never fixed and new."""
    settings, run_ids = demo_history
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        pairs = con.execute(
            """select b.finding_id, a.finding_id, c.change
               from audit.findings b
               join audit.findings a on a.run_id = ? and a.audit = b.audit and a.code = b.code
                    and a.machine_id = b.machine_id and a.status in ('fail', 'warn')
               left join audit.finding_changes c on c.run_id = b.run_id and c.finding_id = b.finding_id
               where b.run_id = ? and b.month is null and b.status in ('fail', 'warn')
                 and b.audit in ('vbs_blockers', 'wsus_misconfigurations')""",
            [run_ids[-2], run_ids[-1]],
        ).fetchall()
        assert pairs, "the demo keeps some VBS/WSUS blockers open across its last two runs"
        assert all(new == old for new, old, _ in pairs)
        assert {change for _, _, change in pairs} == {"still_open"}
    finally:
        con.close()
