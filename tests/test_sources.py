"""Sources answer the same KQL with Resource-Graph-shaped pages; a saved snapshot replays exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import PROJECT_ROOT, Settings
from hotpatch_audit.demo.source import fleet_version
from hotpatch_audit.errors import ConfigError
from hotpatch_audit.pipeline import RunRequest, run_audit
from hotpatch_audit.sources import Scope

AS_OF = "2026-11-25T03:00:00Z"
# the demo's scope: fleet size, seed and the generator's version (an upgraded fleet starts its own history)
DEMO_80 = f"demo:machines=80,seed=20251014,fleet={fleet_version(PROJECT_ROOT)}"


def test_demo_pages_are_resource_graph_shaped_and_complete(demo_history: tuple[Settings, list[str]]) -> None:
    settings, run_ids = demo_history
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        stats = con.execute("SELECT query_name, pages, rows_received, total_records, complete FROM meta.query_stats"
                            " WHERE run_id = ?", [run_ids[-1]]).fetchall()
    finally:
        con.close()
    assert len(stats) == len(load_queries(PROJECT_ROOT))
    for name, pages, rows, total, complete in stats:
        assert complete and rows == total, name
        assert pages == max(1, math.ceil(rows / 1000)), name
    snap = settings.work_dir / run_ids[-1] / "snapshot"
    first = json.loads((snap / "installed_patches" / "page-00001.json").read_text())
    assert set(first) >= {"totalRecords", "count", "resultTruncated", "data"}
    assert first["count"] == len(first["data"]) > 0
    assert first["data"][0]["id"].count("/softwarePatches/") == 1


def test_demo_source_pages_at_1000_rows_through_emulator_and_sdk(tmp_path: Path) -> None:
    """2,500 Arc machines come back as pages of 1,000, 1,000 and 500, in id order, none lost or repeated."""
    from hotpatch_audit.catalog import load_queries
    from hotpatch_audit.demo.argtables import create_arg_tables
    from hotpatch_audit.demo.source import EmulatedDemoSource

    db = tmp_path / "arg.duckdb"
    con = duckdb.connect(str(db))
    create_arg_tables(con)
    con.execute(
        "INSERT INTO resources (id, name, type, subscriptionId, resourceGroup, properties)"
        " SELECT '/subscriptions/s/resourceGroups/RG/providers/Microsoft.HybridCompute/machines/m'"
        " || lpad(i::VARCHAR, 5, '0'),"
        " 'm' || i, 'microsoft.hybridcompute/machines', 's', 'rg', '{\"status\": \"Connected\"}'::JSON"
        " FROM range(2500) t(i)")
    con.close()
    spec = next(s for s in load_queries(Path(__file__).resolve().parents[1]) if s.name == "arc_machines")
    source = EmulatedDemoSource(db, Scope("demo"), as_of=datetime(2026, 11, 25, 3, tzinfo=UTC),
                                cert_dir=tmp_path / "tls")
    try:
        pages = list(source.pages(spec))
    finally:
        source.close()
    assert [p.count for p in pages] == [1000, 1000, 500]
    assert [p.skip_token is not None for p in pages] == [True, True, False]
    ids = [row["id"] for p in pages for row in json.loads(p.body)["data"]]
    assert len(ids) == len(set(ids)) == 2500 and ids == sorted(ids)
    assert {json.loads(p.body)["totalRecords"] for p in pages} == {2500}


def test_demo_fleet_is_generated_again_after_an_upgrade(tmp_path: Path) -> None:
    """The generated fleet file is reused while the generator and its calendar are unchanged; once the calendar
    (or the generator) changes, as after an upgrade, the fleet is generated again and the stale file removed, so
    a demo never audits last version's fleet."""
    from hotpatch_audit.demo.source import demo_fleet

    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    calendar = root / "data" / "release_calendar.csv"
    calendar.write_bytes((PROJECT_ROOT / "data" / "release_calendar.csv").read_bytes())
    settings = Settings(project_root=root, work_dir=tmp_path / "work", demo_machines=30)
    as_of = datetime(2026, 11, 25, 3, tzinfo=UTC)
    legacy = tmp_path / "work" / "demo-fleet" / "fleet-30-20251014-20261125T030000.duckdb"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"a fleet file named as before versions")
    first = demo_fleet(settings, as_of)
    assert not legacy.exists()
    written = first.stat().st_mtime_ns
    assert demo_fleet(settings, as_of) == first and first.stat().st_mtime_ns == written  # reused
    with calendar.open("a") as fh:
        fh.write("\n")  # any change to the calendar's bytes
    second = demo_fleet(settings, as_of)
    assert second != first and second.exists() and not first.exists()
    con = duckdb.connect(str(second), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM resources WHERE type = 'microsoft.hybridcompute/machines'"
                          " OR type = 'microsoft.compute/virtualmachines'").fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == 30


def test_upgraded_demo_fleet_starts_its_own_history(tmp_path: Path) -> None:
    """An upgrade that changes the demo fleet must not make the re-run demo compete with the old fleet's runs of
    the same as-of (a fleet with fewer rows lost to them: every run came out superseded, exit 1, "collection
    incomplete"). The generator's version is part of the demo's scope: both runs stand, each the run of record of
    its own scope."""
    import shutil

    root = tmp_path / "project"
    for part in ("queries", "sql", "data"):
        shutil.copytree(PROJECT_ROOT / part, root / part)
    settings = Settings(project_root=root, work_dir=tmp_path / "work", ledger_path=tmp_path / "ledger.duckdb",
                        out_dir=tmp_path / "out", demo_machines=30)
    as_of = datetime(2026, 11, 25, 3, tzinfo=UTC)
    before = run_audit(settings, RunRequest(source="demo", as_of=as_of), render=False)
    with (root / "data" / "release_calendar.csv").open("a") as fh:
        fh.write("\n")  # the upgrade: any change to what the fleet is generated from
    after = run_audit(settings, RunRequest(source="demo", as_of=as_of), render=False)
    assert (before.status, after.status) == ("succeeded", "succeeded")
    con = duckdb.connect(str(settings.ledger_path), read_only=True)
    try:
        runs = dict(con.execute("SELECT run_id, (status, scope) FROM meta.runs").fetchall())
    finally:
        con.close()
    assert runs[before.run_id][0] == runs[after.run_id][0] == "succeeded"
    assert runs[before.run_id][1] != runs[after.run_id][1]
    assert all(scope.startswith("demo:machines=30,seed=20251014,fleet=") for _, scope in runs.values())


def test_saved_snapshot_replays_to_the_same_rows(tmp_path: Path) -> None:
    """extract --save, then run --source snapshot: the ledger holds exactly what a demo run would."""
    env_settings = dict(HOTPATCH_AUDIT_WORK_DIR=str(tmp_path / "work"), HOTPATCH_AUDIT_DEMO_MACHINES="80")
    import os

    env = {**os.environ, **env_settings}
    saved = subprocess.run([sys.executable, "-m", "hotpatch_audit.cli", "extract", "--source", "demo", "--as-of", AS_OF,
                            "--save", str(tmp_path / "snap")], capture_output=True, text=True, env=env, timeout=300)
    assert saved.returncode == 0, saved.stderr
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert manifest["scope"] == DEMO_80 and manifest["as_of"] == AS_OF

    demo = Settings(ledger_path=tmp_path / "demo.duckdb", work_dir=tmp_path / "work", demo_machines=80)
    replay = Settings(ledger_path=tmp_path / "replay.duckdb", work_dir=tmp_path / "work2", demo_machines=80)
    as_of = datetime(2026, 11, 25, 3, tzinfo=UTC)
    run_audit(demo, RunRequest(source="demo", as_of=as_of, run_id="r"), render=False)
    out = run_audit(replay, RunRequest(source="snapshot", snapshot_dir=tmp_path / "snap", run_id="r"), render=False)
    assert out.status == "succeeded"
    for table in ("arc_machines", "installed_patches", "guest_configuration_reports"):
        a = duckdb.connect(str(demo.ledger_path), read_only=True)
        b = duckdb.connect(str(replay.ledger_path), read_only=True)
        try:
            rows_a = a.execute(f"SELECT * EXCLUDE (run_id) FROM raw.{table} ORDER BY id").fetchall()
            rows_b = b.execute(f"SELECT * EXCLUDE (run_id) FROM raw.{table} ORDER BY id").fetchall()
            scope_b = b.execute("SELECT scope, strftime(as_of, '%Y-%m-%dT%H:%M:%SZ') FROM meta.runs").fetchone()
            findings_a = a.execute("SELECT count(*) FROM audit.findings").fetchone()
            findings_b = b.execute("SELECT count(*) FROM audit.findings").fetchone()
        finally:
            a.close()
            b.close()
        assert rows_a == rows_b and rows_a, table
        assert scope_b == (DEMO_80, AS_OF)
        assert findings_a == findings_b


@pytest.mark.parametrize("subs, mgs, message", [
    (["not-a-guid"], [], "not a subscription id"),
    (["00000000-0000-0000-0000-000000000001"], ["mg1"], "not both"),
    ([], ["bad name!"], "not a management group"),
])
def test_azure_scope_values_are_validated(subs: list[str], mgs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Scope.for_azure(subs, mgs)


def test_azure_scope_key_is_stable() -> None:
    a = Scope.for_azure(["00000000-0000-0000-0000-00000000000B", "00000000-0000-0000-0000-00000000000a"], [])
    assert a.key() == "subscriptions:00000000-0000-0000-0000-00000000000a,00000000-0000-0000-0000-00000000000b"
    assert Scope.parse(a.key()) == a
    assert Scope.for_azure([], []).key() == "tenant"
