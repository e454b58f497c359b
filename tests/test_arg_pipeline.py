"""The arg source end to end: the CLI reads the emulator over HTTPS with the real SDK, under faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pytest
from duckdb_kql.engine import schema

from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import Settings
from hotpatch_audit.demo.emulator import ResourceGraphEmulator
from hotpatch_audit.demo.source import demo_fleet
from hotpatch_audit.duck import connect

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def _expected_counts(db: Path) -> dict[str, int]:
    """What the emulator holds for each query, counted straight from its tables (no HTTP)."""
    con = connect(db, read_only=True)
    try:
        out = {}
        for spec in load_queries(ROOT):
            sql = str(duckdb_kql.to_sql(spec.text, schema=schema(con), query_now=AS_OF))
            out[spec.name] = int(con.execute(f"SELECT count(*) FROM ({sql}) q").fetchone()[0])  # noqa: S608
        return out
    finally:
        con.close()


def _cli_run(emu: ResourceGraphEmulator, tmp_path: Path, as_of: str,
             *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTPATCH_AUDIT_ARG_TOKEN": emu.token,
           "HOTPATCH_AUDIT_LEDGER_PATH": str(tmp_path / "l.duckdb"),
           "HOTPATCH_AUDIT_WORK_DIR": str(tmp_path / "work"), "HOTPATCH_AUDIT_ARG_MAX_RETRY_SECONDS": "60"}
    return subprocess.run(
        [sys.executable, "-m", "hotpatch_audit.cli", "run", "--source", "arg", "--endpoint", emu.url, "--ca-bundle",
         str(emu.ca_bundle), "--as-of", as_of, "--out", str(tmp_path / "out"), "--format", "csv", *extra],
        capture_output=True, text=True, env=env, timeout=900)


def _ledger_counts(tmp_path: Path, run_id: str | None = None) -> tuple[dict[str, int], dict[str, int]]:
    con = duckdb.connect(str(tmp_path / "l.duckdb"), read_only=True)
    try:
        rid = run_id or con.execute("SELECT run_id FROM meta.runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        counts, distinct = {}, {}
        for spec in load_queries(ROOT):
            counts[spec.name], distinct[spec.name] = con.execute(
                f"SELECT count(*), count(DISTINCT id) FROM raw.{spec.name} WHERE run_id = ?", [rid]).fetchone()
        return counts, distinct
    finally:
        con.close()


def _run_under_faults(emu: ResourceGraphEmulator, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    emu.faults.add("503", count=3)
    emu.faults.add("drop", count=2, page=2)
    emu.faults.add("throttle", count=4, resets_after=1)
    emu.faults.add("malformed", count=1, variant="json")
    emu.faults.add("slow", count=2, delay=1.5)
    return _cli_run(emu, tmp_path, "2026-11-25T03:00Z")


def test_cli_reads_every_row_once_under_faults(rg_fleet_db: Path, tmp_path: Path) -> None:
    expected = _expected_counts(rg_fleet_db)
    with ResourceGraphEmulator(rg_fleet_db, quota_per_window=15, window_seconds=1.0,
                               cert_dir=tmp_path / "tls", query_now=AS_OF) as emu:
        result = _run_under_faults(emu, tmp_path)
        faults = emu.stats.faults_served
    assert result.returncode == 0, result.stderr
    counts, distinct = _ledger_counts(tmp_path)
    assert counts == expected and distinct == expected
    assert faults >= 10
    assert emu.token not in result.stderr + result.stdout


def test_unrecoverable_failure_marks_run_incomplete_and_keeps_previous_run(rg_fleet_db: Path,
                                                                           tmp_path: Path) -> None:
    with ResourceGraphEmulator(rg_fleet_db, quota_enabled=False, cert_dir=tmp_path / "tls", query_now=AS_OF) as emu:
        good = _cli_run(emu, tmp_path, "2026-10-28T03:00Z")
        assert good.returncode == 0, good.stderr
        emu.faults.add("500", count=None, match="patchinstallationresources")
        bad = _cli_run(emu, tmp_path, "2026-11-25T03:00Z")
    assert bad.returncode == 1, bad.stderr
    assert "collection incomplete" in bad.stderr and "HTTP 500" in bad.stderr
    con = duckdb.connect(str(tmp_path / "l.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT strftime(as_of, '%m'), status FROM meta.runs ORDER BY as_of").fetchall()
        failed = con.execute("SELECT query_name, complete, q.error FROM meta.query_stats q JOIN meta.runs r USING (run_id)"
                             " WHERE NOT complete AND strftime(r.as_of, '%m') = '11'").fetchall()
        previous = con.execute("SELECT count(*) FROM raw.arc_machines JOIN meta.runs USING (run_id)"
                               " WHERE strftime(as_of, '%m') = '10'").fetchone()[0]
    finally:
        con.close()
    assert runs == [("10", "succeeded"), ("11", "incomplete")]
    assert {q[0] for q in failed} == {"patch_installations", "installed_patches"}
    assert all("500" in q[2] for q in failed)
    assert previous > 0


def test_auth_failure_fails_the_run_with_a_clear_message(rg_fleet_db: Path, tmp_path: Path) -> None:
    with ResourceGraphEmulator(rg_fleet_db, quota_enabled=False, cert_dir=tmp_path / "tls", query_now=AS_OF,
                               token="the-right-token") as emu:  # noqa: S106
        env_token = emu.token
        emu.token = "wrong-token"  # the CLI is given a token the emulator refuses  # noqa: S105
        result = _cli_run(emu, tmp_path, "2026-11-25T03:00Z")
        emu.token = env_token
    assert result.returncode == 3
    assert "authentication or authorization failed" in result.stderr and "static token" in result.stderr and "refused" in result.stderr.lower()
    assert "wrong-token" not in result.stderr


@pytest.mark.slow
def test_20000_machines_every_row_under_faults(tmp_path: Path) -> None:
    """The issue's acceptance run: a 20,000-machine fleet, quota on, faults injected, no row lost or duplicated."""
    settings = Settings(work_dir=tmp_path / "fleet", demo_machines=20_000)
    db = demo_fleet(settings, AS_OF)
    expected = _expected_counts(db)
    with ResourceGraphEmulator(db, quota_per_window=15, window_seconds=5.0, cert_dir=tmp_path / "tls",
                               query_now=AS_OF, latency_ms=50) as emu:
        result = _run_under_faults(emu, tmp_path)
        served: dict[str, Any] = {"requests": emu.stats.requests, "throttled": emu.stats.throttled}
    assert result.returncode == 0, result.stderr
    counts, distinct = _ledger_counts(tmp_path)
    assert counts == expected and distinct == expected
    assert sum(expected.values()) > 80_000  # about 4.5 rows a machine: a run of some hundred 1,000-row pages
    print(json.dumps({"rows": sum(counts.values()), "emulator": served}))
