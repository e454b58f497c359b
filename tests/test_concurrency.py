"""Two processes on one ledger: writers take turns with a message, readers wait and read; nothing breaks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from tests.snapshots import arc_row, make_snapshot

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hotpatch_audit.cli"]

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hotpatch_audit.ledger import open_writer
    ledger, release = Path(sys.argv[1]), Path(sys.argv[2])
    with open_writer(ledger, Path(sys.argv[3]), holder="test holder"):
        print("locked", flush=True)
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    print("released", flush=True)
""")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HOTPATCH_AUDIT_LEDGER_PATH"] = str(tmp_path / "ledger.duckdb")
    env["HOTPATCH_AUDIT_WORK_DIR"] = str(tmp_path / "work")
    env["HOTPATCH_AUDIT_OUT_DIR"] = str(tmp_path / "reports")
    return env


def _hold_lock(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    release = tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "ledger.duckdb"), str(release), str(ROOT)],
                              stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder, release


def _run_snapshot(tmp_path: Path, snap: Path, as_of: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", "--source", "snapshot", "--snapshot", str(snap), "--as-of", as_of,
                           "--format", "csv"], capture_output=True, text=True, env=_env(tmp_path), timeout=300)


def test_reader_waits_for_a_writer_with_a_message_then_reads(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("a"), arc_row("b")]}, as_of="2026-10-28T03:00:00Z")
    assert _run_snapshot(tmp_path, snap, "2026-10-28T03:00Z").returncode == 0

    holder, release = _hold_lock(tmp_path)
    reader = subprocess.Popen([*CLI, "query", "select count(*) as n from raw.arc_machines", "-o", "csv"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    time.sleep(3)
    assert reader.poll() is None, "the reader must wait while the writer holds the ledger"
    release.touch()
    out, err = reader.communicate(timeout=120)
    holder.wait(timeout=60)
    assert reader.returncode == 0, err
    assert "waiting for the ledger" in err and "test holder" in err
    assert out.splitlines() == ["n", "2"]


def test_two_writers_take_turns_and_both_runs_land(tmp_path: Path) -> None:
    machines = {"arc_machines": [arc_row(f"m{i}") for i in range(3000)]}
    oct_snap = make_snapshot(tmp_path / "oct", machines, as_of="2026-10-28T03:00:00Z")
    snap = make_snapshot(tmp_path / "snap", machines)
    holder, release = _hold_lock(tmp_path)
    env = _env(tmp_path)
    first = subprocess.Popen([*CLI, "run", "--source", "snapshot", "--snapshot", str(oct_snap), "--as-of",
                              "2026-10-28T03:00Z", "--format", "csv"], stderr=subprocess.PIPE, text=True, env=env)
    second = subprocess.Popen([*CLI, "run", "--source", "snapshot", "--snapshot", str(snap), "--as-of",
                               "2026-11-25T03:00Z", "--format", "csv"], stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3)
    assert first.poll() is None and second.poll() is None
    release.touch()
    _, err1 = first.communicate(timeout=300)
    _, err2 = second.communicate(timeout=300)
    holder.wait(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for the ledger" in err1 + err2

    con = duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT status, count(*) FROM meta.runs GROUP BY status").fetchall()
        assert runs == [("succeeded", 2)]
        per_run = con.execute("SELECT count(*) FROM raw.arc_machines GROUP BY run_id").fetchall()
        assert per_run == [(3000,), (3000,)]
    finally:
        con.close()
