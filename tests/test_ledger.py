"""The ledger: atomic, idempotent loads; clear errors on malformed snapshots; previous data kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, SnapshotError
from hotpatch_audit.ledger import open_writer
from hotpatch_audit.pipeline import RunRequest, run_audit
from tests.snapshots import arc_row, make_snapshot, reseal

AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def _runs(settings: Settings) -> list[tuple[str, str]]:
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        return con.execute("SELECT run_id, status FROM meta.runs ORDER BY started_at").fetchall()
    finally:
        con.close()


def _count(settings: Settings, sql: str) -> int:
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def _run(settings: Settings, snap: Path, run_id: str, as_of: datetime = AS_OF):  # type: ignore[no-untyped-def]
    return run_audit(settings, RunRequest(source="snapshot", snapshot_dir=snap, as_of=as_of, run_id=run_id),
                     render=False)


def test_snapshot_loads_every_row_with_its_run_id(settings: Settings, tmp_path: Path) -> None:
    rows = [arc_row(f"srv{i:04d}") for i in range(2500)]
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": rows})
    assert len(list((snap / "arc_machines").glob("page-*.json"))) == 3
    outcome = _run(settings, snap, "r1")
    assert outcome.status == "succeeded"
    assert _count(settings, "SELECT count(*) FROM raw.arc_machines WHERE run_id = 'r1'") == 2500
    assert _count(settings, "SELECT count(DISTINCT id) FROM raw.arc_machines") == 2500
    assert _count(settings, "SELECT rows_received FROM meta.query_stats WHERE query_name = 'arc_machines'") == 2500


def test_rerun_of_same_scope_and_as_of_replaces_it(settings: Settings, tmp_path: Path) -> None:
    """An equally complete re-run takes the earlier run's place: its rows go, its meta.runs row stays, superseded."""
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]})
    _run(settings, snap, "first")
    _run(settings, snap, "second")
    assert _runs(settings) == [("first", "superseded"), ("second", "succeeded")]
    assert _count(settings, "SELECT count(*) FROM raw.arc_machines") == 2
    assert _count(settings, "SELECT count(*) FROM meta.query_stats WHERE run_id = 'first'") == 0
    assert _count(settings, "SELECT count(*) FROM meta.runs WHERE run_id = 'first' AND superseded_by = 'second'") == 1


def test_different_as_of_keeps_both_runs(settings: Settings, tmp_path: Path) -> None:
    oct_snap = make_snapshot(tmp_path / "oct", {"arc_machines": [arc_row("a")]}, as_of="2026-10-28T03:00:00Z")
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a")]})
    _run(settings, oct_snap, "oct", datetime(2026, 10, 28, 3, tzinfo=UTC))
    _run(settings, snap, "nov")
    assert sorted(r[0] for r in _runs(settings)) == ["nov", "oct"]
    assert _count(settings, "SELECT count(*) FROM raw.arc_machines") == 2


def _good_then(settings: Settings, tmp_path: Path, break_it) -> tuple[Path, Exception]:  # type: ignore[no-untyped-def]
    good = make_snapshot(tmp_path / "good", {"arc_machines": [arc_row("a"), arc_row("b")]})
    _run(settings, good, "good")
    bad = make_snapshot(tmp_path / "bad", {"arc_machines": [arc_row("c"), arc_row("d")],
                                            "azure_vms": [{"id": "/subscriptions/x/vm1", "name": "vm1"}]})
    break_it(bad)
    reseal(bad)  # checksums match the broken page: the check under test, not the checksum, must catch it
    with pytest.raises(SnapshotError) as info:
        _run(settings, bad, "bad")
    return bad, info.value


def _assert_previous_intact(settings: Settings) -> None:
    runs = dict(_runs(settings))
    assert runs["good"] == "succeeded"
    assert "bad" not in runs  # refused before it was registered
    assert _count(settings, "SELECT count(*) FROM raw.arc_machines WHERE run_id = 'good'") == 2
    for table in ("arc_machines", "azure_vms", "resource_containers"):
        assert _count(settings, f"SELECT count(*) FROM raw.{table} WHERE run_id = 'bad'") == 0
    assert _count(settings, "SELECT count(*) FROM meta.query_stats WHERE run_id = 'bad'") == 0


def test_invalid_json_page_names_the_file_and_keeps_previous_run(settings: Settings, tmp_path: Path) -> None:
    def corrupt(snap: Path) -> None:
        (snap / "azure_vms" / "page-00001.json").write_text('{"totalRecords": 1, "data": [{"id": "x",')

    bad, error = _good_then(settings, tmp_path, corrupt)
    assert "azure_vms/page-00001.json" in str(error)
    assert "not valid JSON" in str(error)
    _assert_previous_intact(settings)


def test_unexpected_field_shape_names_file_and_row(settings: Settings, tmp_path: Path) -> None:
    """A field that should be a scalar arrives as an object: the error names file, row and field."""
    def reshape(snap: Path) -> None:
        page = snap / "arc_machines" / "page-00001.json"
        body = json.loads(page.read_text())
        body["data"][1]["os_version"] = {"major": 10}
        page.write_text(json.dumps(body))

    _bad, error = _good_then(settings, tmp_path, reshape)
    assert "arc_machines/page-00001.json: row 2: field os_version is object" in str(error)
    _assert_previous_intact(settings)


def test_row_without_id_is_refused(settings: Settings, tmp_path: Path) -> None:
    def drop_id(snap: Path) -> None:
        page = snap / "azure_vms" / "page-00001.json"
        body = json.loads(page.read_text())
        del body["data"][0]["id"]
        page.write_text(json.dumps(body))

    _bad, error = _good_then(settings, tmp_path, drop_id)
    assert "azure_vms/page-00001.json: row 1: the row has no id" in str(error)
    _assert_previous_intact(settings)


def test_missing_page_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    def lose_page(snap: Path) -> None:
        (snap / "azure_vms" / "page-00001.json").unlink()

    _bad, error = _good_then(settings, tmp_path, lose_page)
    assert "azure_vms" in str(error) and "page files" in str(error)
    _assert_previous_intact(settings)


def test_missing_manifest_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", {})
    (snap / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="not a snapshot directory \\(no manifest.json there\\)"):
        _run(settings, snap, "r")


def test_half_finished_run_is_marked_failed_by_the_next_run(settings: Settings, tmp_path: Path) -> None:
    """A run whose process died after registering stays 'running' until the next run marks it failed."""
    from hotpatch_audit.ledger import open_writer, register_run

    with open_writer(settings.ledger_path, settings.project_root) as con:
        register_run(con, run_id="dead", scope="s", as_of=AS_OF, source="demo", tool_version="t",
                     calendar_version="c", is_monthly=True, settings={})
        con.execute("UPDATE meta.runs SET pid = 999999999 WHERE run_id = 'dead'")
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a")]})
    _run(settings, snap, "alive")
    runs = dict(_runs(settings))
    assert runs["dead"] == "failed"
    assert runs["alive"] == "succeeded"


def test_every_load_checks_row_shapes_and_loads_a_repeated_id_once(settings: Settings, tmp_path: Path) -> None:
    """Pages from any source (not only snapshots) are checked in DuckDB before insert (ledger.row_checks): a
    number where the query projects text, text where it projects JSON, an oversized field; and a row Resource
    Graph sent twice (ids differing only in case) is loaded once."""
    from hotpatch_audit.ledger import load_query_pages, open_writer

    def page(name: str, rows: list[dict[str, object]]) -> Path:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"totalRecords": len(rows), "count": len(rows), "data": rows}))
        return path

    good, twin = arc_row("a"), arc_row("b")
    bad = {
        "number": ({**good, "os_version": 10}, "field os_version is number, expected text"),
        "json-as-text": ({**good, "tags": "owner=ops"}, "field tags is text, expected an object or array"),
        "huge": ({**good, "name": "x" * 40_000}, "field name is 40000 characters long"),
        "no-id": ({**good, "id": 7}, "the row has no id"),
    }
    with open_writer(settings.ledger_path, settings.project_root) as con:
        for name, (row, message) in bad.items():
            con.execute("BEGIN")
            with pytest.raises(SnapshotError, match=message):
                load_query_pages(con, "r", "arc_machines", [page(name, [row])], 1)
            con.execute("ROLLBACK")
        con.execute("BEGIN")
        repeated = [good, twin, {**twin, "id": twin["id"].upper()}]
        loaded = load_query_pages(con, "r", "arc_machines", [page("twice", repeated)], 3)
        con.execute("COMMIT")
        assert loaded == 2
        assert con.execute("SELECT count(*) FROM raw.arc_machines WHERE run_id = 'r'").fetchone() == (2,)


def test_open_actions_are_stored_per_run_and_an_older_ledgers_view_is_replaced(
    settings: Settings, tmp_path: Path
) -> None:
    """The owner's list is stored when a run is judged (the report and exports read it many times) and holds
    exactly what its live definition computes; a ledger from before, where audit.open_actions was a view, gets the
    table with every judged run's actions when it is next opened."""
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row(f"srv{i}") for i in range(3)]})
    _run(settings, snap, "r1")
    compare = ("select count(*) from (select * exclude (finding_ids) from audit.open_actions where run_id = 'r1'"
               " except all select * exclude (finding_ids) from audit.open_actions_live where run_id = 'r1')")
    stored = _count(settings, "select count(*) from audit.open_actions where run_id = 'r1'")
    assert stored > 0
    assert _count(settings, compare) == 0
    assert _count(settings, "select count(*) from audit.open_actions_live where run_id = 'r1'") == stored
    with open_writer(settings.ledger_path, ROOT) as con:
        con.execute("drop table audit.open_actions")
        con.execute("create view audit.open_actions as select * from audit.open_actions_live")
        con.execute("update meta.schema_state set fingerprint = 'older'")
    with open_writer(settings.ledger_path, ROOT):
        pass
    assert _count(settings, "select count(*) from duckdb_tables() where schema_name = 'audit'"
                            " and table_name = 'open_actions'") == 1
    assert _count(settings, "select count(*) from audit.open_actions where run_id = 'r1'") == stored
    assert _count(settings, compare) == 0


def test_a_stage_out_of_memory_runs_again_on_one_thread(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A load or audit transaction that DuckDB cannot fit in the memory limit is rolled back and run once more
    with spare_memory's settings (one thread, no insertion order); a second failure is the run's failure."""
    from hotpatch_audit.pipeline import _within_memory

    attempts: list[tuple[int, bool]] = []  # each attempt's connection settings

    def work(con: duckdb.DuckDBPyConnection) -> tuple[int, bool]:
        row = con.execute("select current_setting('threads'), current_setting('preserve_insertion_order')").fetchone()
        assert row is not None
        attempts.append((int(row[0]), bool(row[1])))
        if len(attempts) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB")
        return attempts[-1]

    with caplog.at_level("WARNING", logger="hotpatch_audit.pipeline"):
        assert _within_memory(settings, "r1", "audit", work) == (1, False)
    assert len(attempts) == 2 and attempts[0] != (1, False)  # the first attempt had the session's own settings
    assert "run r1: audit ran out of memory at the 1GB limit" in caplog.text and "on one thread" in caplog.text

    def never_fits(con: duckdb.DuckDBPyConnection) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: still too big")

    with pytest.raises(duckdb.OutOfMemoryException, match="still too big"):
        _within_memory(settings, "r2", "load", never_fits)


def test_judging_a_run_stores_the_core_and_audit_tables_as_their_live_views_compute_them(settings: Settings,
                                                                                      tmp_path: Path) -> None:
    """analyze.materialize_run: every stored table (core.machines ..., audit.machine_months ...) holds exactly the
    rows its live view computes for the run, keeps its description, and stores its per-row text with zstd
    (analyze.ZSTD_COLUMNS)."""
    from hotpatch_audit.analyze import MATERIALIZED, REGISTERS_MATERIALIZED, ZSTD_COLUMNS

    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]})
    _run(settings, snap, "r1")
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        assert con.execute("select count(*) from core.machines where run_id = 'r1'").fetchone() == (2,)
        for name in (*MATERIALIZED, *REGISTERS_MATERIALIZED):
            schema, table = name.split(".")
            kind, comment = con.execute("select 'table', comment from duckdb_tables() where schema_name = ?"
                                        " and table_name = ?", [schema, table]).fetchone() or (None, None)
            assert kind == "table" and comment and comment.startswith(("Stored per run", "Materialized per run")), name
            columns = ", ".join(f'cast("{c}" as varchar)' for (c,) in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? and table_name = ? order by column_index",
                [schema, table]).fetchall())
            stored = con.execute(f"select {columns} from {name} where run_id = 'r1' order by all").fetchall()
            live = con.execute(f"select {columns} from {name}_live where run_id = 'r1' order by all").fetchall()
            assert stored == live, name
        zstd = con.execute("select distinct column_name from pragma_storage_info('core.machines')"
                           " where compression = 'ZSTD' and segment_type <> 'VALIDITY' order by 1").fetchall()
        assert {"machine_id", "tags"} <= set(ZSTD_COLUMNS)
        assert zstd == [("machine_id",), ("tags",)]
    finally:
        con.close()


def test_judging_a_run_stores_every_part_and_leaves_the_session_as_it_was(settings: Settings, tmp_path: Path) -> None:
    """materialize_findings drops insertion order and stores missed_hotpatches one part at a time (analyze.PARTS,
    the session variable audit.in_part reads): together the parts are exactly the view's rows, every part the
    SQL has is stored, and the caller's connection gets its settings back with no part left selected. (After a
    failure the transaction is aborted and cannot take a SET: the pipeline then closes the connection.)"""
    import re

    from hotpatch_audit.analyze import PARTS, materialize_findings
    from hotpatch_audit.audit_meta import load

    assert {a.name for a in load().audits} >= set(PARTS)
    for name, parts in PARTS.items():
        sql = (settings.project_root / "sql" / "audit").glob(f"*_{name}.sql")
        assert set(re.findall(r"audit\.in_part\('(\w+)'\)", next(sql).read_text(encoding="utf-8"))) == set(parts)
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]})
    _run(settings, snap, "r1")
    with open_writer(settings.ledger_path, settings.project_root) as con:
        con.execute("set threads = 3")
        con.execute("BEGIN")
        assert materialize_findings(con, "r1") > 0
        con.execute("COMMIT")
        settings_now = con.execute("select current_setting('threads'), current_setting('preserve_insertion_order')")
        assert settings_now.fetchone() == (3, True)
        assert con.execute("select getvariable('hotpatch_audit_part')").fetchone() == (None,)
        columns = "finding_id, code, status, state, severity, reason, remediation, cast(evidence as varchar)"
        stored = con.execute(f"select {columns} from audit.findings where run_id = 'r1' and audit = 'missed_hotpatches'"
                             " order by all").fetchall()
        whole = con.execute(f"select {columns} from audit.missed_hotpatches where run_id = 'r1' order by all").fetchall()
        assert stored == whole
        assert len(stored) > 0


def test_a_writer_vacuums_only_after_it_deleted_rows(settings: Settings, tmp_path: Path) -> None:
    """Ledger writers run without DuckDB's vacuum (duck.connect): an audit appends statement by statement, and the
    vacuum would only merge the part-filled row groups, rewriting rows nothing deleted (seconds at 100,000
    machines, paid by whichever writer came next). A DELETE that removes rows turns it back on (duck.delete_rows),
    for the rest of that connection: the deleted rows' space is reclaimed at its checkpoint."""
    from hotpatch_audit.duck import VACUUM_TASKS, connect, delete_rows

    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]})
    _run(settings, snap, "r1")
    vacuum = "select current_setting('max_vacuum_tasks')"
    with open_writer(settings.ledger_path, settings.project_root) as con:
        assert con.execute(vacuum).fetchone() == (0,)
        assert delete_rows(con, "delete from raw.arc_machines where run_id = 'nothing'") == 0
        assert con.execute(vacuum).fetchone() == (0,)
    # the reclaim itself, on a table of four row groups (a pipeline test's tables fit in one, never merged)
    path = tmp_path / "vacuum.duckdb"
    blocks = "select used_blocks from pragma_database_size()"
    con = connect(path)
    con.execute("create table t as select i, md5(i::varchar) as s from range(4 * 122880) r(i)")
    con.execute("checkpoint")
    (before,) = con.execute(blocks).fetchone() or (0,)
    assert delete_rows(con, "delete from t where i % 4 <> 0") == 3 * 122880
    assert con.execute(vacuum).fetchone() == (VACUUM_TASKS,)
    con.execute("checkpoint")
    (after,) = con.execute(blocks).fetchone() or (0,)
    con.close()
    assert after < before * 0.6


def _deletes_run_with_execute(package: Path) -> list[str]:
    """Where the package runs a DELETE statement with a plain `.execute(...)` (its SQL text a literal)."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "execute" and node.args):
                continue
            sql = node.args[0]
            parts = sql.values if isinstance(sql, ast.JoinedStr) else [sql]
            text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
            if text.lstrip().lower().startswith("delete"):
                found.append(f"{path.relative_to(package)}:{node.lineno}")
    return found


def test_every_delete_on_the_ledger_lets_its_connection_vacuum() -> None:
    """Writers run without the vacuum until they delete rows: a DELETE run with a plain con.execute would leave its
    rows' space unreclaimed. Every DELETE in the package goes through duck.delete_rows."""
    assert _deletes_run_with_execute(ROOT / "src" / "hotpatch_audit") == []


def test_an_error_while_storing_a_part_reaches_the_caller_unchanged() -> None:
    """A part's statement that fails aborts the transaction, and DuckDB then refuses to reset the part variable:
    the caller still sees the statement's own error (an out-of-memory error is what the pipeline retries on)."""
    from hotpatch_audit.analyze import _part

    con = duckdb.connect()
    con.execute("BEGIN")
    with pytest.raises(duckdb.CatalogException, match="nowhere"), _part(con, "months"):
        con.execute("select * from nowhere")
    con.execute("ROLLBACK")
    con.close()
