"""The latest_* views (sql/latest/): one run of record per scope, the newest good run as ledger.latest_run takes
it, never a superseded, failed or unfinished one; every other latest_* view holds that run's rows of its object,
with the object's columns and column comments, and works on a read-only ledger."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from hotpatch_audit.column_docs import apply_column_comments, load_inherited
from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, LedgerError
from hotpatch_audit.ledger import latest_run, open_reader
from hotpatch_audit.pipeline import RunRequest, run_audit
from tests._ledger_helpers import insert, new_ledger
from tests.snapshots import arc_row, make_snapshot
from tests.test_run_history import _incomplete

ROOT = Path(__file__).resolve().parents[1]
OCT, NOV, LATER = "2026-10-28T03:00:00Z", "2026-11-25T03:00:00Z", "2026-11-26T03:00:00Z"
SCOPE_A = "subscriptions:00000000-0000-0000-0000-00000000000a"
SCOPE_B = "subscriptions:00000000-0000-0000-0000-00000000000b"
# every latest_<object> view and the object whose rows it cuts to the run of record (the [inherit] tables also
# serve views of other schemas, such as audit.machine_months_detail)
SOURCES = {view: source for view, source in load_inherited(ROOT).items() if view.startswith("main.")}


def _latest(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("select scope, run_id from latest_runs").fetchall())


def test_every_latest_view_is_documented_and_passes_its_source_through() -> None:
    """Each latest_<object> view has its object's columns, in order, with their comments; latest_runs documents
    its own. So the [inherit] table names the right objects, and no column of the views is left unexplained."""
    con = new_ledger()
    views = {v for (v,) in con.execute("select 'main.' || view_name from duckdb_views() where schema_name = 'main'"
                                       " and not internal").fetchall()}
    assert views == {*SOURCES, "main.latest_runs"}
    assert all(v.startswith("main.latest_") for v in views)

    def columns(name: str) -> list[tuple[str, str, str | None]]:
        schema, table = name.split(".")
        return con.execute("select column_name, data_type, comment from duckdb_columns() where schema_name = ?"
                           " and table_name = ? and database_name = current_database() order by column_index",
                           [schema, table]).fetchall()

    for view, source in SOURCES.items():
        assert columns(view) == columns(source), view
    for column, _, comment in columns("main.latest_runs"):
        assert comment and comment.strip(), f"latest_runs.{column} has no comment"
    assert con.execute("select count(*) from duckdb_views() where schema_name = 'main' and not internal"
                       " and coalesce(trim(comment), '') = ''").fetchall() == [(0,)]


def _runs_ledger() -> duckdb.DuckDBPyConnection:
    """Runs of two scopes in every state, each with one finding, and a tie on as-of broken by start time."""
    con = new_ledger()
    runs = [  # run_id, scope, as_of, started_at, status
        ("a-oct", "A", "2026-10-28 03:00", "2026-10-28 04:00", "succeeded"),
        ("a-nov-first", "A", "2026-11-25 03:00", "2026-11-25 04:00", "superseded"),
        ("a-nov", "A", "2026-11-25 03:00", "2026-11-25 05:00", "succeeded"),
        ("a-dec-failed", "A", "2026-12-02 03:00", "2026-12-02 04:00", "failed"),
        ("a-dec-running", "A", "2026-12-03 03:00", "2026-12-03 04:00", "running"),
        ("a-dec-loaded", "A", "2026-12-04 03:00", "2026-12-04 04:00", "loaded"),
        ("b-oct", "B", "2026-10-28 03:00", "2026-10-28 04:00", "succeeded"),
        ("b-nov-short", "B", "2026-11-25 03:00", "2026-11-25 04:00", "incomplete"),
        ("c-early", "C", "2026-11-25 03:00", "2026-11-25 04:00", "succeeded"),
        ("c-late", "C", "2026-11-25 03:00", "2026-11-25 06:00", "succeeded"),
    ]
    for run_id, scope, as_of, started, status in runs:
        insert(con, "meta.runs", {"run_id": run_id, "scope": scope, "as_of": as_of, "source": "snapshot",
                                  "tool_version": "test", "started_at": started, "status": status})
        insert(con, "audit.findings", {"finding_id": "f-" + scope, "run_id": run_id, "audit": "missed_hotpatches",
                                       "code": "missed", "machine_id": "m-" + scope, "status": "fail",
                                       "severity": "high"})
    return con


def test_latest_runs_is_the_newest_good_run_of_each_scope() -> None:
    con = _runs_ledger()
    assert _latest(con) == {"A": "a-nov", "B": "b-nov-short", "C": "c-late"}
    statuses = {s for (s,) in con.execute("select status from latest_runs").fetchall()}
    assert statuses == {"succeeded", "incomplete"}
    # the same choice as ledger.latest_run (which `hotpatch-audit report` renders), scope by scope
    for scope, run_id in _latest(con).items():
        con.execute("create or replace temp table keep as select * from meta.runs")
        con.execute("delete from meta.runs where scope <> ?", [scope])
        assert latest_run(con) == run_id
        con.execute("delete from meta.runs")
        con.execute("insert into meta.runs select * from keep")
    assert sorted(con.execute("select run_id from latest_findings").fetchall()) == [
        ("a-nov",), ("b-nov-short",), ("c-late",)]


def _run(settings: Settings, snap: Path, run_id: str):  # type: ignore[no-untyped-def]
    return run_audit(settings, RunRequest(source="snapshot", snapshot_dir=snap, run_id=run_id), render=False)


def _failing(settings: Settings, snap: Path, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that registers and loads, then fails while it is judged: its row stays, status failed."""
    def broken(*_args: object, **_kwargs: object) -> None:
        raise LedgerError("disk full (test)")

    with monkeypatch.context() as patch:
        patch.setattr("hotpatch_audit.ledger.finish_run", broken)
        with pytest.raises(LedgerError):
            _run(settings, snap, run_id)


def test_after_real_runs_of_two_scopes_latest_names_the_run_of_record(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {"arc_machines": [arc_row("a"), arc_row("b")]}

    def snap(name: str, scope: str, as_of: str) -> Path:
        return make_snapshot(tmp_path / name, rows, scope=scope, as_of=as_of)

    _run(settings, snap("a-oct", SCOPE_A, OCT), "a-oct")
    _run(settings, snap("a-nov", SCOPE_A, NOV), "a-nov-first")
    _run(settings, snap("a-nov", SCOPE_A, NOV), "a-nov")  # an equally complete re-run: a-nov-first is superseded
    _failing(settings, snap("a-later", SCOPE_A, LATER), "a-later", monkeypatch)
    _run(settings, snap("b-oct", SCOPE_B, OCT), "b-oct")
    assert _run(settings, _incomplete(snap("b-nov", SCOPE_B, NOV)), "b-nov").status == "incomplete"

    with open_reader(settings.ledger_path) as con:  # read-only, as an analyst opens it
        status = dict(con.execute("select run_id, status from meta.runs").fetchall())
        assert status == {"a-oct": "succeeded", "a-nov-first": "superseded", "a-nov": "succeeded",
                          "a-later": "failed", "b-oct": "succeeded", "b-nov": "incomplete"}
        assert _latest(con) == {SCOPE_A: "a-nov", SCOPE_B: "b-nov"}
        latest = {"a-nov", "b-nov"}
        for view, source in SOURCES.items():
            got = con.execute(f"select run_id, count(*) from {view} group by all").fetchall()
            want = con.execute(f"select run_id, count(*) from {source} where run_id in ('a-nov', 'b-nov')"
                               " group by all").fetchall()
            assert sorted(got) == sorted(want), view
            assert {r for r, _ in got} <= latest, view
        assert {r for (r,) in con.execute("select distinct run_id from latest_findings").fetchall()} == latest
        # the changes of each latest run against the previous good monthly run of its scope
        assert set(con.execute("select distinct run_id, previous_run_id from latest_finding_changes").fetchall()) \
            <= {("a-nov", "a-oct"), ("b-nov", "b-oct")}

    result = CliRunner().invoke(app, ["query", "-o", "csv", "--ledger", str(settings.ledger_path),
                                      "select scope, run_id, status from latest_runs order by scope"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["scope,run_id,status", f"{SCOPE_A},a-nov,succeeded",
                                          f"{SCOPE_B},b-nov,incomplete"]


def _columns_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "sql" / "columns").mkdir(parents=True)
    (tmp_path / "sql" / "columns" / "docs.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_an_inherit_view_takes_its_sources_comments_unless_it_has_its_own(tmp_path: Path) -> None:
    root = _columns_dir(tmp_path, """
[common]
run_id = "The run."
note = "Common note."
["audit.things"]
size = "How big the thing is."
[inherit]
"main.latest_things" = "audit.things"
["main.latest_things"]
colour = "Only the latest things have a colour of their own."
""")
    con = duckdb.connect()
    con.execute("create schema audit")
    con.execute("create table audit.things (run_id varchar, size integer, colour varchar, note varchar, x integer)")
    con.execute("comment on column audit.things.colour is 'The colour, as the source says.'")
    con.execute("create view main.latest_things as select * from audit.things")
    apply_column_comments(con, root)
    comments = dict(con.execute("select column_name, comment from duckdb_columns() where table_name = 'latest_things'"
                                ).fetchall())
    assert comments == {"run_id": "The run.", "size": "How big the thing is.", "x": None, "note": "Common note.",
                        "colour": "Only the latest things have a colour of their own."}


def test_an_inherit_entry_must_name_one_object(tmp_path: Path) -> None:
    root = _columns_dir(tmp_path, '[inherit]\n"main.latest_things" = "things"\n')
    with pytest.raises(ConfigError, match=r"\[inherit\] main.latest_things must name one object"):
        load_inherited(root)


def test_the_views_need_no_schema_and_no_writer(demo_history: tuple[Settings, list[str]]) -> None:
    """A plain read-only DuckDB session (no hotpatch-audit code), in this DuckDB and in the 1.x command line,
    finds latest_* in its default schema, and the demo history's newest run is its run of record."""
    settings, run_ids = demo_history
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        assert con.execute("select run_id, status from latest_runs").fetchall() == [(run_ids[-1], "succeeded")]
        as_of = con.execute("select as_of from latest_runs").fetchall()[0][0]
    finally:
        con.close()
    assert as_of == datetime(2026, 11, 25, 3, 0, tzinfo=UTC).replace(tzinfo=None)

    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent))  # the duckdb-cli package: DuckDB 1.x
    if cli is None:
        pytest.skip("no duckdb command beside this interpreter (duckdb-cli is a dev dependency)")
    views = sorted(["main.latest_runs", *SOURCES])
    result = subprocess.run([cli, "-readonly", "-csv", "-noheader", str(settings.ledger_path),
                             "-c", " union all ".join(f"select '{v}', count(*) from {v}" for v in views)],
                            capture_output=True, text=True, timeout=120, check=False)
    if "database file with version number" in result.stderr:
        pytest.skip(f"this duckdb command cannot read the ledger's storage version: {result.stderr.strip()[:120]}")
    assert result.returncode == 0, result.stderr
    counts = dict(line.split(",") for line in result.stdout.split())
    assert sorted(counts) == views and counts["main.latest_runs"] == "1" and int(counts["main.latest_findings"]) > 0
