"""Run history only gets better: failed and incomplete runs are never another run's evidence, a less complete
re-run never replaces a complete run, failed runs keep their row and first error, runs of one scope and as-of
take turns, and a run keeps the calendar and prices it was judged with."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import SourceError
from hotpatch_audit.pipeline import RunRequest, run_audit
from tests.snapshots import arc_row, make_snapshot, reseal

NOV = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 28, 3, 0, tzinfo=UTC)


def _rows(settings: Settings, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _demo(settings: Settings, as_of: datetime, run_id: str):  # type: ignore[no-untyped-def]
    return run_audit(settings, RunRequest(source="demo", as_of=as_of, run_id=run_id), render=False)


def _failed_run_between(settings: Settings, as_of: datetime, run_id: str) -> None:
    """A run that fails after registering, as a wrong token or a bad endpoint does: every query fails."""
    broken = settings.model_copy(update={"arg_endpoint": "https://127.0.0.1:9", "arg_max_attempts": 1,
                                         "arg_max_retry_seconds": 1.0})
    with pytest.raises(SourceError):
        run_audit(broken, RunRequest(source="arg", as_of=as_of, run_id=run_id), render=False)


def _judgement(settings: Settings, run_id: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    outcomes = _rows(settings, "SELECT month, outcome, count(*) FROM audit.machine_months WHERE run_id = ?"
                               " GROUP BY ALL ORDER BY ALL", [run_id])
    findings = _rows(settings, "SELECT finding_id, status FROM audit.findings WHERE run_id = ? ORDER BY ALL",
                     [run_id])
    return outcomes, findings


def test_a_failed_run_changes_no_later_judgement(tmp_path: Path) -> None:
    """The same history with and without a failed run at 2026-10-30 judges November identically."""
    def settings(name: str) -> Settings:
        return Settings(ledger_path=tmp_path / name / "ledger.duckdb", work_dir=tmp_path / "work",
                        out_dir=tmp_path / name / "reports", demo_machines=80)

    clean, faulted = settings("clean"), settings("faulted")
    for s in (clean, faulted):
        _demo(s, OCT, "oct")
    _failed_run_between(faulted, datetime(2026, 10, 30, 3, tzinfo=UTC), "broken")
    for s in (clean, faulted):
        _demo(s, NOV, "nov")

    status = dict(_rows(faulted, "SELECT run_id, status FROM meta.runs"))
    assert status == {"oct": "succeeded", "broken": "failed", "nov": "succeeded"}
    outcomes, findings = _judgement(faulted, "nov")
    assert (outcomes, findings) == _judgement(clean, "nov")
    assert any(o[1] == "avoided" for o in outcomes), "the history must judge something for the test to mean it"
    error = _rows(faulted, "SELECT error FROM meta.runs WHERE run_id = 'broken'")[0][0]
    assert isinstance(error, str) and error.startswith("AuthError: ")


def _incomplete(snap: Path) -> Path:
    """The same snapshot with one query cut short: the manifest says so, as extract writes it."""
    manifest = json.loads((snap / "manifest.json").read_text())
    page = snap / "arc_machines" / "page-00001.json"
    body = json.loads(page.read_text())
    body["data"] = body["data"][:1]
    body["count"] = 1
    page.write_text(json.dumps(body))
    info = manifest["queries"]["arc_machines"]
    info.update(rows=1, complete=False, error="received 1 rows of 3 announced")
    (snap / "manifest.json").write_text(json.dumps(manifest))
    reseal(snap)
    return snap


def test_an_incomplete_rerun_never_replaces_a_complete_run(settings: Settings, tmp_path: Path) -> None:
    rows = {"arc_machines": [arc_row("a"), arc_row("b"), arc_row("c")]}
    good = make_snapshot(tmp_path / "good", rows)
    first = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=good, run_id="complete"), render=False)
    assert first.status == "succeeded"
    before = _judgement(settings, "complete")

    short = _incomplete(make_snapshot(tmp_path / "short", rows))
    again = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=short, run_id="short"), render=False)
    assert again.status == "superseded" and again.exit_code == 1
    assert again.error and "kept beside run complete" in again.error

    runs = {r[0]: r[1:] for r in _rows(settings, "SELECT run_id, status, superseded_by FROM meta.runs")}
    assert runs == {"complete": ("succeeded", None), "short": ("superseded", "complete")}
    assert _judgement(settings, "complete") == before
    assert _rows(settings, "SELECT count(*) FROM raw.arc_machines WHERE run_id = 'complete'") == [(3,)]
    # the incomplete run is kept beside it, rows and findings included, for whoever wants to look
    assert _rows(settings, "SELECT count(*) FROM raw.arc_machines WHERE run_id = 'short'") == [(1,)]

    from hotpatch_audit.ledger import latest_run, open_reader

    with open_reader(settings.ledger_path) as con:
        assert latest_run(con) == "complete"

    # a complete re-run does take the place of the incomplete one and of the earlier complete one
    third = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=good, run_id="again"), render=False)
    assert third.status == "succeeded"
    runs = {r[0]: r[1:] for r in _rows(settings, "SELECT run_id, status, superseded_by FROM meta.runs")}
    assert runs == {"complete": ("superseded", "again"), "short": ("superseded", "complete"),
                    "again": ("succeeded", None)}


def test_failed_runs_keep_their_row_and_first_error_after_a_good_rerun(settings: Settings, tmp_path: Path) -> None:
    _failed_run_between(settings, NOV, "broken")
    error = _rows(settings, "SELECT error FROM meta.runs WHERE run_id = 'broken'")[0][0]
    good = make_snapshot(tmp_path / "good", {"arc_machines": [arc_row("a")]},
                         scope="arg-scope-does-not-matter")
    run_audit(settings, RunRequest(source="snapshot", snapshot_dir=good, run_id="good"), render=False)
    # and the same scope and as-of: a successful rerun does not delete the failed run's row or error
    _demo(settings.model_copy(update={"demo_machines": 20}), NOV, "demo")
    rows = dict((r[0], r[1:]) for r in _rows(settings, "SELECT run_id, status, error FROM meta.runs"))
    assert rows["broken"] == ("failed", error)


def test_runs_of_one_scope_and_as_of_take_turns(settings: Settings, tmp_path: Path) -> None:
    """While one run of a scope and as-of is in progress, a second waits before it registers."""
    from hotpatch_audit.ledger import turn_lock
    from hotpatch_audit.pipeline import plan_run

    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a")]})
    request = RunRequest(source="snapshot", snapshot_dir=snap, run_id="second")
    ctx = plan_run(settings, request)
    key = f"{ctx.scope}|{ctx.as_of:%Y-%m-%dT%H:%M:%S}"
    done: list[str] = []
    with turn_lock(settings.ledger_path, key, timeout=5, holder="run first"):
        worker = threading.Thread(target=lambda: done.append(run_audit(settings, request, render=False).status))
        worker.start()
        time.sleep(2)
        assert not done
        assert not settings.ledger_path.exists() or _rows(settings, "SELECT count(*) FROM meta.runs") == [(0,)]
    worker.join(timeout=120)
    assert done == ["succeeded"]


def test_a_run_keeps_its_calendar_when_the_calendar_changes(settings: Settings, tmp_path: Path) -> None:
    """A later calendar (here a local override) re-judges nothing: the run's machine-months and its rendered
    calendar stay those of the calendar it was registered with."""
    from hotpatch_audit.ledger import open_writer

    _demo(settings, NOV, "nov")
    before = _judgement(settings, "nov")
    override = tmp_path / "calendar.csv"
    shipped = (settings.project_root / "data" / "release_calendar.csv").read_text(encoding="utf-8").splitlines()
    header, rows = shipped[0], [r for r in shipped[1:] if ",2026-11," in r and r.startswith("ws2025,")]
    assert rows, "the shipped calendar lists ws2025 2026-11"
    override.write_text(header + "\n" + rows[0].replace("2026-11,hotpatch", "2026-11,baseline", 1) + "\n",
                        encoding="utf-8")
    later = settings.model_copy(update={"calendar_override_path": override})
    with open_writer(later.ledger_path, later.project_root, calendar_override=override) as con:
        kinds = con.execute("SELECT kind FROM ref.calendar_months WHERE track = 'ws2025' AND month = '2026-11'"
                            ).fetchall()
        run_kind = con.execute("SELECT kind FROM core.run_calendar_months WHERE run_id = 'nov' AND track = 'ws2025'"
                               " AND month = '2026-11'").fetchall()
    assert kinds == [("baseline",)], "the override must change the current calendar for the test to mean it"
    assert run_kind == [("hotpatch",)]
    assert _judgement(later, "nov") == before
    stored = _rows(settings, "SELECT count(*) FROM meta.run_calendar WHERE run_id = 'nov'")[0][0]
    assert isinstance(stored, int) and stored > 0


def test_a_superseded_run_renders_saying_which_run_is_of_record(settings: Settings, tmp_path: Path) -> None:
    """The incomplete re-run kept beside a complete run can be rendered; its report and manifest say so."""
    from typer.testing import CliRunner

    from hotpatch_audit.cli import app

    rows = {"arc_machines": [arc_row("a"), arc_row("b"), arc_row("c")]}
    run_audit(settings, RunRequest(source="snapshot", snapshot_dir=make_snapshot(tmp_path / "good", rows),
                                   run_id="complete"), render=False)
    short = _incomplete(make_snapshot(tmp_path / "short", rows))
    run_audit(settings, RunRequest(source="snapshot", snapshot_dir=short, run_id="short"), render=False)
    out = tmp_path / "short-report"
    result = CliRunner().invoke(app, ["report", "short", "--ledger", str(settings.ledger_path), "--out", str(out),
                                      "--format", "html"])
    assert result.exit_code == 0, result.output
    html = (out / "audit.html").read_text(encoding="utf-8")
    assert "superseded" in html and "kept beside run complete" in html
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_status"] == "superseded" and manifest["run_superseded_by"] == "complete"


def test_a_swap_cut_between_its_two_renames_is_put_back_by_the_next_writer(tmp_path: Path) -> None:
    """Where no atomic exchange exists, a kill between 'target -> .old' and 'stage -> target' leaves the old
    report aside; the next write beside it moves it back, and removes a dead writer's half-written folder."""
    from hotpatch_audit.files import staging_folder

    reports = tmp_path / "reports"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    old = reports / f".good.old-{dead}-abcdef"
    old.mkdir(parents=True)
    (old / "audit.html").write_text("the filed report", encoding="utf-8")
    partial = reports / f".good.partial-{dead}-123456"
    partial.mkdir()
    (partial / "audit.html").write_text("half written", encoding="utf-8")
    stage = staging_folder(reports / "other")
    assert (reports / "good" / "audit.html").read_text(encoding="utf-8") == "the filed report"
    assert sorted(p.name for p in reports.iterdir()) == sorted(["good", stage.name])


def test_page_one_of_a_superseded_runs_report_names_the_run_of_record(settings: Settings, tmp_path: Path) -> None:
    from hotpatch_audit.pipeline import render_stage

    rows = {"arc_machines": [arc_row("a"), arc_row("b"), arc_row("c")]}
    run_audit(settings, RunRequest(source="snapshot", snapshot_dir=make_snapshot(tmp_path / "good", rows),
                                   run_id="complete"), render=False)
    run_audit(settings, RunRequest(source="snapshot", snapshot_dir=_incomplete(make_snapshot(tmp_path / "s", rows)),
                                   run_id="short"), render=False)
    html_only = settings.model_copy(update={"formats": ["html"]})
    render_stage(html_only, "short", tmp_path / "short")
    render_stage(html_only, "complete", tmp_path / "complete")
    cover = (tmp_path / "short" / "audit.html").read_text(encoding="utf-8").split('id="coverage"')[0]
    assert "Run of record" in cover and "complete (this run is kept beside it" in cover
    assert "Run of record" not in (tmp_path / "complete" / "audit.html").read_text(encoding="utf-8")
