"""A local calendar override reaches real runs: ref.calendar and the run's calendar version use it."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from hotpatch_audit.config import Settings
from hotpatch_audit.pipeline import RunRequest, run_audit
from tests.snapshots import make_snapshot

ROOT = Path(__file__).resolve().parents[1]


def test_override_adds_a_month_to_the_runs_calendar(tmp_path: Path) -> None:
    with (ROOT / "data" / "release_calendar.csv").open(newline="", encoding="utf-8") as fh:
        columns = next(csv.reader(fh))
    override = tmp_path / "calendar.local.csv"
    with override.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerow({c: "" for c in columns} | {
            "track": "ws2025", "month": "2026-11", "kind": "hotpatch", "kb": "KB5999001", "os_build": "26100.33600",
            "release_date": "2026-11-10", "source": "local test", "verified": "false"})
    snap = make_snapshot(tmp_path / "snap", {})
    as_of = datetime(2026, 11, 25, 3, tzinfo=UTC)
    plain = Settings(ledger_path=tmp_path / "a.duckdb", work_dir=tmp_path / "w")
    local = Settings(ledger_path=tmp_path / "b.duckdb", work_dir=tmp_path / "w", calendar_override_path=override)
    run_audit(plain, RunRequest(source="snapshot", snapshot_dir=snap, as_of=as_of, run_id="a"), render=False)
    run_audit(local, RunRequest(source="snapshot", snapshot_dir=snap, as_of=as_of, run_id="b"), render=False)
    versions = []
    for path, expect_kb in ((tmp_path / "a.duckdb", None), (tmp_path / "b.duckdb", "KB5999001")):
        con = duckdb.connect(str(path), read_only=True)
        try:
            kb = con.execute("SELECT kb FROM ref.calendar_months WHERE track = 'ws2025' AND month = '2026-11'").fetchone()
            versions.append(con.execute("SELECT calendar_version FROM meta.runs").fetchone()[0])
        finally:
            con.close()
        assert (kb[0] or None) == expect_kb
    assert versions[0] != versions[1]
