"""Faults never lose or corrupt evidence: kills, signals, torn WALs, damaged ledgers, full and read-only disks,
concurrent and faulted re-runs, and output folders that hold someone else's files.

One base ledger is built per module: a good snapshot run (a demo fleet of 40 machines extracted once as of
2026-11-25; a second snapshot as of 2026-10-28 feeds the faulted runs) and its report folder (html + csv). Every
case works on its own copy (the kill drivers start in the background, two at a time, when the module starts) and
checks afterwards that

- the good run is intact: its meta.runs row (succeeded) and its fingerprint (row counts in every raw.* and
  audit.* table and meta.query_stats, and a hash of its sorted finding ids and statuses) are as before;
- no partial rows: no raw.*/audit.* row of a run that is not succeeded, incomplete or superseded;
- the good report folder still passes `hotpatch-audit verify` and no `.*.partial-*` / `.*.old-*` folder is
  left beside it after a later successful render;
- the exit code is honest (3 for failures, 2 for usage, never 0 or 1) with one line on stderr; a killed process
  leaves its run running/loaded, the next run marks it failed ('abandoned'), and the kernel frees the locks;
- a fresh good run on the same ledger still succeeds (cases refused before the ledger is touched check instead
  that the ledger's bytes did not change; a ledger that is not DuckDB at all can only be restored).

Cases (40):
  13  kill -9 (tests/fault_driver.py): at the stage boundaries extract, load, audit, render; inside register,
      extract (3rd page), load (2nd query; before commit), audit (findings materialized; a same-as-of re-run
      that already deleted the good run's rows), render (first export written), and a re-render into the
      existing report folder (before its manifest; between moving the old folder aside and the new one in)
   3  SIGTERM, SIGINT and SIGHUP to `hotpatch-audit run` while it extracts (emulator with latency)
   6  WAL cut after a killed writer committed: untouched, at 0 and 1 bytes, at 1/3 and 2/3, one byte short
   3  main ledger file truncated to 4 KiB and 12 KiB, and random bytes instead of DuckDB
   3  full disk (tmpfs): under the ledger during a run; under the report folder during a re-render and during
      a run's render
   1  ledger on a read-only mount: query reads, run fails
   1  two `run` processes of the same snapshot at once
   2  faulted re-runs: an incomplete re-run of the good run's scope and as-of; a re-run whose source fails
   4  extract --save into the ledger's folder, a folder with notes, a snapshot folder with notes (all refused),
      and into the previous snapshot folder the tool wrote (replaced whole, its neighbours untouched)
   4  run --out / report --out into a folder with foreign files, report --out into the good report folder
      holding a foreign file, and report of a run that does not exist (all refused)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from hotpatch_audit.config import Settings
from hotpatch_audit.pipeline import RunOutcome, RunRequest, extract_stage, plan_run, run_audit
from tests.cli_process import LAUNCH
from tests.snapshots import arc_row, make_snapshot, reseal

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "fault_driver.py"
NOV = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 28, 3, 0, tzinfo=UTC)
SEP = "2026-09-23T03:00:00Z"
MACHINES = 40
TOKEN = "fault-suite-token"  # noqa: S105 (the local emulator's token)
GOOD_STATUSES = ("succeeded", "incomplete", "superseded")


# ---------------------------------------------------------------------------------------------------------------
# the base ledger, its copies and what is checked on them


@dataclass
class Case:
    """One fault's copy of the base: ledger, report folders, work dir."""

    root: Path
    ledger: Path
    reports: Path
    work: Path

    @property
    def report(self) -> Path:
        return self.reports / "good"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"ledger_path": self.ledger, "out_dir": self.reports, "work_dir": self.work,
                                  "formats": ["csv"], "lock_timeout_seconds": 20, "demo_machines": MACHINES}
        values.update(overrides)
        return Settings(**values)

    def env(self) -> dict[str, str]:
        return {"HOTPATCH_AUDIT_LEDGER_PATH": str(self.ledger), "HOTPATCH_AUDIT_WORK_DIR": str(self.work),
                "HOTPATCH_AUDIT_OUT_DIR": str(self.reports), "HOTPATCH_AUDIT_LOCK_TIMEOUT_SECONDS": "20",
                "HOTPATCH_AUDIT_DEMO_MACHINES": str(MACHINES)}


@dataclass
class Base:
    root: Path
    work: Path
    ledger: Path
    report: Path
    snap_nov: Path
    snap_oct: Path
    snap_fresh: Path
    good: dict[str, Any]
    report_manifest: bytes
    emulator: Any
    drivers: dict[str, Future[subprocess.CompletedProcess[str]]] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)

    def case(self, root: Path, *, ledger_dir: Path | None = None, reports_dir: Path | None = None) -> Case:
        """A copy of the base ledger and of its report folder (reports/good)."""
        ledger = (ledger_dir or root / "ledger") / "ledger.duckdb"
        ledger.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.ledger, ledger)
        reports = reports_dir or root / "reports"
        shutil.copytree(self.report, reports / "good")
        return Case(root, ledger, reports, root / "work")


def fingerprint(ledger: Path, run_id: str = "good") -> dict[str, Any]:
    """A run's meta.runs row, its row count in every table with a run_id, and a hash of its findings."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        row = con.execute("SELECT run_id, scope, as_of, source, status, started_at, finished_at, superseded_by,"
                          " error FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
        counts = {f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}" WHERE run_id = ?',  # noqa: S608
                                          [run_id]).fetchone()
                  for s, t in _run_tables(con, ("raw", "audit", "meta"))}
        digest = con.execute(
            "SELECT md5(coalesce(string_agg(finding_id || ':' || status, ',' ORDER BY finding_id, status), ''))"
            " FROM audit.findings WHERE run_id = ?", [run_id]).fetchone()
    finally:
        con.close()
    return {"run": row, "counts": counts, "findings": digest}


def _run_tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    marks = ", ".join("?" for _ in schemas)
    return [(str(r[0]), str(r[1])) for r in con.execute(
        "SELECT c.table_schema, c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
        " USING (table_schema, table_name) WHERE c.column_name = 'run_id' AND t.table_type = 'BASE TABLE'"
        f" AND c.table_schema IN ({marks}) AND c.table_name NOT IN ('runs', 'settings', 'run_calendar',"
        " 'run_prices') ORDER BY 1, 2", list(schemas)).fetchall()]


def runs(ledger: Path) -> dict[str, tuple[Any, ...]]:
    """run_id -> (status, superseded_by, error, source) of every run."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return {r[0]: tuple(r[1:]) for r in con.execute(
            "SELECT run_id, status, superseded_by, error, source FROM meta.runs").fetchall()}
    finally:
        con.close()


def orphan_rows(ledger: Path, *, allow_loaded: bool = False) -> dict[str, int]:
    """raw.*/audit.* rows of runs that are not succeeded, incomplete or superseded (a loaded run's raw rows are
    whole, and allowed with allow_loaded until the next run marks it abandoned)."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        found = {}
        for s, t in _run_tables(con, ("raw", "audit")):
            ok = GOOD_STATUSES + (("loaded",) if allow_loaded and s == "raw" else ())
            marks = ", ".join("?" for _ in ok)
            n = con.execute(f'SELECT count(*) FROM "{s}"."{t}" WHERE run_id IS NOT NULL AND run_id NOT IN'  # noqa: S608
                            f" (SELECT run_id FROM meta.runs WHERE status IN ({marks}))", list(ok)).fetchone()
            if n and n[0]:
                found[f"{s}.{t}"] = int(n[0])
        return found
    finally:
        con.close()


def tree(folder: Path) -> dict[str, str]:
    """Every entry under folder (hidden ones too) with its SHA-256 ('dir' for folders)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def leftovers(folder: Path) -> list[str]:
    """Staging and set-aside folders of an interrupted write (.NAME.partial-*, .NAME.old-*) in folder."""
    return sorted(p.name for p in folder.glob(".*") if ".partial-" in p.name or ".old-" in p.name)


def assert_locks_free(ledger: Path) -> None:
    """The ledger lock and every turn lock can be taken at once: no dead process holds them."""
    locks = [ledger.with_name(ledger.name + ".lock"), *ledger.with_name(ledger.name + ".turns").glob("*.lock")]
    for lock in locks:
        if not lock.exists():
            continue
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: still held
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def assert_good_intact(base: Base, case: Case, *, report: Path | None = None, unchanged_report: bool = True) -> None:
    """The good run's row and fingerprint as before, no partial rows, and its report folder verifies."""
    assert fingerprint(case.ledger) == base.good, "the good run changed"
    assert orphan_rows(case.ledger) == {}
    folder = report or case.report
    code, out, err = cli(["verify", str(folder)])
    assert code == 0, (out, err)
    if unchanged_report:
        assert (folder / "manifest.json").read_bytes() == base.report_manifest


def fresh_run(base: Base, case: Case, *, render: bool = False, **overrides: Any) -> RunOutcome:
    """A new good run on the case's ledger (its own scope and as-of: it replaces nothing)."""
    outcome = run_audit(case.settings(**overrides), RunRequest(source="snapshot", snapshot_dir=base.snap_fresh,
                                                               run_id="fresh"), render=render)
    assert outcome.status == "succeeded" and outcome.exit_code == 0, outcome
    assert runs(case.ledger)["fresh"][0] == "succeeded"
    if render:
        assert outcome.report_paths and cli(["verify", str(outcome.report_paths[-1].parent)])[0] == 0
    return outcome


class _StderrLog(logging.Handler):
    """What the real CLI's logging.basicConfig(WARNING) prints on stderr, written to the current sys.stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def cli(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """`hotpatch-audit ARGS` in this process: exit code, stdout and the non-empty stderr lines (log warnings
    included, as the real CLI prints them). An exception the CLI did not handle fails the test here."""
    handler = _StderrLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        result = CliRunner().invoke(app, ["--quiet", *args], env=env)  # errors only: the one line checked
    finally:
        root.removeHandler(handler)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"hotpatch-audit {' '.join(args[:3])}: unhandled {result.exception!r}") \
            from result.exception
    return result.exit_code, result.stdout, [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_failure(code: int, err: list[str], *, expected: int = 3, names: tuple[str, ...] = ()) -> str:
    """Exit `expected`, exactly one line on stderr, no traceback; the line names one of `names` (if given)."""
    assert code == expected, (code, err)
    assert len(err) == 1, f"expected one line on stderr, got {len(err)}: {err}"
    line = err[0]
    assert "Traceback" not in line
    if names:
        assert any(n in line for n in names), f"{line!r} names none of {names}"
    return line


def _subprocess_env(case: Case) -> dict[str, str]:
    env = dict(os.environ)
    env.update(case.env())
    env["MPLBACKEND"] = "Agg"
    return env


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at mount (root may mount; a failure to mount fails the test)."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True,
                   capture_output=True, text=True)
    try:
        yield mount
    finally:
        done = subprocess.run(["umount", str(mount)], capture_output=True, text=True)
        if done.returncode != 0:  # still busy: detach it anyway, then fail
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
            raise AssertionError(f"umount {mount}: {done.stderr.strip()}")


def fill(mount: Path, leave: int) -> Path:
    """A filler file leaving about `leave` bytes free on the mount."""
    st = os.statvfs(mount)
    size = st.f_bavail * st.f_frsize - leave
    assert size > 0, f"{mount} has only {st.f_bavail * st.f_frsize} bytes free"
    filler = mount / "filler"
    with filler.open("wb") as f:
        chunk = b"\0" * (1 << 20)
        while size > 0:
            size -= f.write(chunk[:size])
    return filler


# ---------------------------------------------------------------------------------------------------------------
# kill -9: one driver subprocess per point, started in the background when the module starts

KILLS: dict[str, dict[str, Any]] = {
    # point: the snapshot the killed run reads, whether it renders, the killed run's status afterwards
    "register": {"snap": "oct", "status": None},
    "stage:extract": {"snap": "oct", "status": "running"},
    "extract-page": {"snap": "oct", "status": "running"},
    "stage:load": {"snap": "oct", "status": "running"},
    "load-query": {"snap": "oct", "status": "running"},
    "load-commit": {"snap": "oct", "status": "running"},
    "stage:audit": {"snap": "oct", "status": "loaded"},
    "audit-findings": {"snap": "oct", "status": "loaded"},
    "audit-supersede": {"snap": "nov", "status": "loaded"},
    "stage:render": {"snap": "oct", "status": "succeeded", "render": True},
    "render-files": {"snap": "oct", "status": "succeeded", "render": True},
    "render-manifest": {"rerender": True},
    "render-swap": {"rerender": True},
}


def _start_driver(pool: ThreadPoolExecutor, base: Base, point: str, case: Case,
                  spec: dict[str, Any]) -> Future[subprocess.CompletedProcess[str]]:
    args = {"ledger": str(case.ledger), "work_dir": str(case.work), "out_dir": str(case.reports),
            "snapshot": str(base.snap_nov if spec.get("snap") == "nov" else base.snap_oct),
            "run_id": "killed", "point": point, "formats": ["html", "csv"], "render": bool(spec.get("render")),
            "rerender": "good" if spec.get("rerender") else None, "report_dir": str(case.report)}
    command = [sys.executable, str(DRIVER), json.dumps(args)]
    return pool.submit(subprocess.run, command, capture_output=True, text=True, env=_subprocess_env(case),
                       timeout=300)


# ---------------------------------------------------------------------------------------------------------------
# the module's base


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    from hotpatch_audit.demo.emulator import ResourceGraphEmulator
    from hotpatch_audit.demo.source import demo_fleet

    root = tmp_path_factory.mktemp("faults")
    settings = Settings(ledger_path=root / "base" / "ledger.duckdb", out_dir=root / "base" / "reports",
                        work_dir=root / "work", demo_machines=MACHINES, formats=["html", "csv"],
                        lock_timeout_seconds=30)
    snaps = {}
    for name, as_of in (("nov", NOV), ("oct", OCT)):
        ctx = plan_run(settings, RunRequest(source="demo", as_of=as_of, run_id=f"extract-{name}"))
        extract_stage(settings, ctx, save_dir=root / f"snap-{name}")
        snaps[name] = root / f"snap-{name}"
    fresh = make_snapshot(root / "snap-fresh", {"arc_machines": [arc_row(f"fresh-{i}") for i in range(3)]}, as_of=SEP)
    report = root / "base" / "reports" / "good"
    outcome = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=snaps["nov"], run_id="good"),
                        out_dir=report)
    assert outcome.status == "succeeded", outcome
    ledger = settings.ledger_path
    assert not ledger.with_name(ledger.name + ".wal").exists()
    good = fingerprint(ledger)
    assert good["counts"]["audit.findings"][0] > 0 and good["counts"]["raw.arc_machines"][0] > 0

    emulator = ResourceGraphEmulator(demo_fleet(settings, NOV), token=TOKEN, quota_enabled=False, latency_ms=700,
                                     latency_jitter_ms=0, cert_dir=root / "work" / "emulator-tls", query_now=NOV)
    emulator.start()
    b = Base(root, root / "work", ledger, report, snaps["nov"], snaps["oct"], fresh, good,
             (report / "manifest.json").read_bytes(), emulator)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        for point, spec in [*KILLS.items(), ("wal", {"snap": "oct"})]:
            case = b.case(root / "kill" / point.replace(":", "-"))
            b.cases[point] = case
            b.drivers[point] = _start_driver(pool, b, point, case, spec)
        yield b
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        emulator.stop()


def _driver_result(base: Base, point: str) -> tuple[Case, subprocess.CompletedProcess[str]]:
    done = base.drivers[point].result(timeout=600)
    return base.cases[point], done


# ---------------------------------------------------------------------------------------------------------------
# 1. kill -9


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILLS))
def test_kill_9(base: Base, point: str) -> None:
    spec = KILLS[point]
    renders = bool(spec.get("render") or spec.get("rerender"))
    case, done = _driver_result(base, point)
    assert done.returncode == -signal.SIGKILL, f"the driver was not killed at {point}: {done.stderr[-2000:]}"
    assert_locks_free(case.ledger)
    before = runs(case.ledger)
    assert before["good"][0] == "succeeded"
    if spec.get("rerender"):
        assert set(before) == {"good"}
    elif spec["status"] is None:
        assert "killed" not in before, before
    else:
        assert before["killed"][0] == spec["status"], before
    assert fingerprint(case.ledger) == base.good, "the good run changed"
    assert orphan_rows(case.ledger, allow_loaded=True) == {}
    # the good report is the old one, whole: it verifies and nothing of the new render is mixed in
    problems = []
    code, out, err = cli(["verify", str(case.report)])
    if code != 0:
        problems.append(f"right after the kill, verify of the good report exits {code}: {err}; beside it: "
                        f"{sorted(p.name for p in case.reports.iterdir())}")
    elif point != "render-swap" and (case.report / "manifest.json").read_bytes() != base.report_manifest:
        # killed after the atomic swap, the report is the new one, whole (it verifies); before it, the old one
        problems.append("right after the kill, the good report is not the old one")

    # the next run marks the killed run failed (abandoned); where the fault was in a render, it renders too
    fresh_run(base, case, render=renders)
    after = runs(case.ledger)
    if spec.get("status") in ("running", "loaded"):
        assert after["killed"][0] == "failed" and str(after["killed"][2]).startswith("abandoned"), after["killed"]
    elif spec.get("status") == "succeeded":
        assert after["killed"][0] == "succeeded"
    assert fingerprint(case.ledger) == base.good, "the good run changed"
    assert orphan_rows(case.ledger) == {}
    assert_locks_free(case.ledger)
    code, out, err = cli(["verify", str(case.report)])
    if code != 0:
        problems.append(f"after a later successful run, verify of the good report still exits {code}: {err}")
    if leftovers(case.reports):
        problems.append(f"after a later successful render, left beside the report: {leftovers(case.reports)}")
    assert not problems, f"kill -9 at {point}: " + "; ".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# 2. SIGTERM, SIGINT, SIGHUP mid-extract


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_mid_run(base: Base, tmp_path: Path, sig: signal.Signals) -> None:
    case = base.case(tmp_path)
    env = _subprocess_env(case)
    env["HOTPATCH_AUDIT_ARG_TOKEN"] = TOKEN
    command = [sys.executable, "-c", LAUNCH, "--quiet", "run", "--source", "arg", "--endpoint", str(base.emulator.url),
               "--ca-bundle", str(base.emulator.ca_bundle), "--as-of", "2026-11-25T03:00Z", "--format", "csv",
               "--out", str(case.reports / "interrupted")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(case.work.glob("*/.snapshot.partial-*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started extracting"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert_one_line_failure(proc.returncode, lines, names=(sig.name,))
    interrupted = {k: v for k, v in runs(case.ledger).items() if v[3] == "arg"}
    assert len(interrupted) == 1, interrupted
    [(status, _, error, _)] = interrupted.values()
    assert status == "failed" and error is not None and error.startswith(f"interrupted by {sig.name}"), error
    assert not (case.reports / "interrupted").exists()
    assert_locks_free(case.ledger)
    assert_good_intact(base, case)
    fresh_run(base, case)
    assert_good_intact(base, case)
    assert leftovers(case.reports) == []


# ---------------------------------------------------------------------------------------------------------------
# 3. torn WAL, damaged ledger files

WAL_CUTS = ["untouched", "0", "1", "1/3", "2/3", "minus-1"]


@pytest.mark.parametrize("cut", WAL_CUTS)
def test_wal_cut(base: Base, tmp_path: Path, cut: str) -> None:
    source, done = _driver_result(base, "wal")
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    wal = source.ledger.with_name(source.ledger.name + ".wal")
    assert wal.is_file() and wal.stat().st_size > 1000, "the killed writer left no WAL"
    case = Case(tmp_path, tmp_path / "ledger" / "ledger.duckdb", tmp_path / "reports", tmp_path / "work")
    case.ledger.parent.mkdir(parents=True)
    shutil.copy2(source.ledger, case.ledger)
    shutil.copytree(base.report, case.report)
    size = wal.stat().st_size
    keep = {"untouched": size, "0": 0, "1": 1, "1/3": size // 3, "2/3": 2 * size // 3, "minus-1": size - 1}[cut]
    data = wal.read_bytes()[:keep]
    case.ledger.with_name(case.ledger.name + ".wal").write_bytes(data)

    code, out, err = cli(["query", "select run_id, status from meta.runs order by run_id", "-o", "csv",
                          "--ledger", str(case.ledger)], env=case.env())
    if code == 0:
        rows = dict(line.split(",", 1) for line in out.splitlines()[1:])
        assert rows.get("good") == "succeeded", out
        if cut == "untouched":
            assert rows.get("killed") == "succeeded", "the last commit before the kill is lost"
    else:
        assert_one_line_failure(code, err, names=(str(case.ledger),))

    code, out, err = cli(["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh), "--format", "csv",
                          "--out", str(case.reports / "fresh"), "--ledger", str(case.ledger)], env=case.env())
    if code != 0:
        assert_one_line_failure(code, err, names=(str(case.ledger),))
        return
    after = runs(case.ledger)
    assert after["good"][0] == "succeeded"
    assert after.get("killed", ("failed",))[0] in (("succeeded",) if cut == "untouched" else ("failed", "succeeded"))
    assert_good_intact(base, case)
    assert leftovers(case.reports) == []


@pytest.mark.parametrize("damage", ["truncated-4k", "truncated-12k", "not-duckdb"])
def test_damaged_ledger_file(base: Base, tmp_path: Path, damage: str) -> None:
    case = base.case(tmp_path)
    data = case.ledger.read_bytes()
    damaged = {"truncated-4k": data[:4096], "truncated-12k": data[:12288],
               "not-duckdb": os.urandom(1 << 18)}[damage]
    case.ledger.write_bytes(damaged)
    for args in (["query", "select count(*) from meta.runs"],
                 ["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh), "--format", "csv",
                  "--out", str(case.reports / "fresh")]):
        code, _, err = cli([*args, "--ledger", str(case.ledger)], env=case.env())
        assert_one_line_failure(code, err, names=(str(case.ledger),))
        assert case.ledger.read_bytes() == damaged, f"{args[0]} changed the damaged ledger"
        assert not case.ledger.with_name(case.ledger.name + ".wal").exists()
    assert not (case.reports / "fresh").exists()
    assert cli(["verify", str(case.report)])[0] == 0


# ---------------------------------------------------------------------------------------------------------------
# 4. full disk

DISK_FULL = ("No space left on device", "disk is full")


@pytest.mark.slow
def test_disk_full_under_the_ledger(base: Base, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "48M") as disk:
        case = base.case(tmp_path, ledger_dir=disk)
        filler = fill(disk, 64 * 1024)
        code, _, err = cli(["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh), "--format", "csv",
                            "--out", str(case.reports / "new")], env=case.env())
        assert code == 3, err
        failed = {k: v for k, v in runs(case.ledger).items() if k != "good"}
        for status, _, error, _ in failed.values():
            assert status in ("failed", "running"), failed
            if status == "failed":
                assert any(d in str(error) for d in DISK_FULL), error
                assert "rollback" not in str(error).lower(), error
        assert_good_intact(base, case)
        assert not (case.reports / "new").exists()

        filler.unlink()
        fresh_run(base, case, render=True)
        assert all(v[0] == "failed" for k, v in runs(case.ledger).items() if k in failed)
        assert_good_intact(base, case)
        assert leftovers(case.reports) == []
    line = assert_one_line_failure(code, err, names=DISK_FULL)
    assert "rollback" not in line.lower()


@pytest.mark.slow
def test_disk_full_under_the_report_rerender(base: Base, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "16M") as disk:
        case = base.case(tmp_path, reports_dir=disk)
        filler = fill(disk, 256 * 1024)
        render = ["report", "good", "--out", str(case.report), "--format", "html", "--format", "csv"]
        code, _, err = cli(render, env=case.env())
        assert_one_line_failure(code, err, names=DISK_FULL)
        assert_good_intact(base, case)
        assert leftovers(disk) == []

        filler.unlink()
        code, out, err = cli(render, env=case.env())
        assert code == 0, err
        assert_good_intact(base, case, unchanged_report=False)
        assert leftovers(disk) == []


@pytest.mark.slow
def test_disk_full_during_a_runs_render(base: Base, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "16M") as disk:
        case = base.case(tmp_path, reports_dir=disk)
        filler = fill(disk, 256 * 1024)
        code, _, err = cli(["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh), "--format", "html",
                            "--format", "csv", "--out", str(disk / "new")], env=case.env())
        assert_one_line_failure(code, err, names=DISK_FULL)
        assert not (disk / "new").exists()
        assert leftovers(disk) == []
        assert_good_intact(base, case)

        filler.unlink()
        (new,) = [k for k in runs(case.ledger) if k != "good"]
        code, _, err = cli(["report", new, "--out", str(disk / "new"), "--format", "csv"], env=case.env())
        assert code == 0, err
        assert cli(["verify", str(disk / "new")])[0] == 0
        fresh_run(base, case, render=True)
        assert_good_intact(base, case)
        assert leftovers(disk) == []


# ---------------------------------------------------------------------------------------------------------------
# 5. read-only ledger


def test_read_only_ledger(base: Base, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "64M") as mount:
        case = base.case(tmp_path, ledger_dir=mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
        try:
            before = case.ledger.read_bytes()
            code, out, err = cli(["query", "select run_id, status from meta.runs", "-o", "csv"], env=case.env())
            assert code == 0, err
            assert out.splitlines() == ["run_id,status", "good,succeeded"]
            code, _, err = cli(["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh), "--format", "csv",
                                "--out", str(case.reports / "new")], env=case.env())
            assert_one_line_failure(code, err, names=("read-only", "Read-only"))
            assert case.ledger.read_bytes() == before
            assert not (case.reports / "new").exists()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True, capture_output=True)
        assert_good_intact(base, case)
        fresh_run(base, case)
        assert_good_intact(base, case)


# ---------------------------------------------------------------------------------------------------------------
# 6. two runs of the same snapshot at once


@pytest.mark.slow
def test_concurrent_runs_of_one_scope_and_as_of(base: Base, tmp_path: Path) -> None:
    case = base.case(tmp_path)
    env = _subprocess_env(case)
    procs = [subprocess.Popen([sys.executable, "-c", LAUNCH, "run", "--source", "snapshot", "--snapshot",
                               str(base.snap_oct), "--format", "csv", "--out", str(case.reports / name)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in ("first", "second")]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    rows = {k: v for k, v in runs(case.ledger).items() if k != "good"}
    record = [k for k, v in rows.items() if v[0] == "succeeded"]
    assert len(record) == 1 and len(rows) == 2, rows
    (other,) = set(rows) - set(record)
    assert rows[other][:2] == ("superseded", record[0]), rows
    manifest = json.loads((base.snap_oct / "manifest.json").read_text())
    counts = fingerprint(case.ledger, record[0])["counts"]
    for name, info in manifest["queries"].items():
        if f"raw.{name}" in counts:
            assert counts[f"raw.{name}"][0] == info["rows"], name
    assert fingerprint(case.ledger, other)["counts"]["audit.findings"][0] == 0
    assert_good_intact(base, case)
    assert leftovers(case.reports) == []
    fresh_run(base, case)
    assert_good_intact(base, case)


# ---------------------------------------------------------------------------------------------------------------
# 7. faulted re-runs of the good run's scope and as-of


def _cut_short(source: Path, dest: Path) -> Path:
    """The snapshot with its largest query cut to one row: the manifest says incomplete, as extract writes it."""
    shutil.copytree(source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    name = max(manifest["queries"], key=lambda q: manifest["queries"][q]["rows"])
    info = manifest["queries"][name]
    assert info["rows"] >= 2 and info["pages"] == 1
    page = dest / name / "page-00001.json"
    body = json.loads(page.read_text())
    body["data"] = body["data"][:1]
    body["count"] = 1
    page.write_text(json.dumps(body))
    info.update(rows=1, complete=False, error=f"received 1 rows of {info['total_records']} announced")
    (dest / "manifest.json").write_text(json.dumps(manifest))
    reseal(dest)
    return dest


def test_incomplete_rerun_keeps_the_good_run_of_record(base: Base, tmp_path: Path) -> None:
    case = base.case(tmp_path)
    short = _cut_short(base.snap_nov, tmp_path / "short")
    code, _, err = cli(["run", "--source", "snapshot", "--snapshot", str(short), "--format", "csv",
                        "--out", str(case.reports / "short")], env=case.env())
    assert code == 1, err
    rows = runs(case.ledger)
    (short_id,) = set(rows) - {"good"}
    assert rows[short_id][:2] == ("superseded", "good"), rows
    assert rows["good"][0] == "succeeded"
    assert_good_intact(base, case)
    fresh_run(base, case)
    assert_good_intact(base, case)
    assert leftovers(case.reports) == []


def test_rerun_whose_source_fails(base: Base, tmp_path: Path) -> None:
    case = base.case(tmp_path)
    env = {**case.env(), "HOTPATCH_AUDIT_ARG_TOKEN": "x", "HOTPATCH_AUDIT_ARG_MAX_ATTEMPTS": "1",
           "HOTPATCH_AUDIT_ARG_MAX_RETRY_SECONDS": "1"}
    code, _, err = cli(["run", "--source", "arg", "--endpoint", "https://127.0.0.1:9", "--as-of", "2026-11-25T03:00Z",
                        "--format", "csv", "--out", str(case.reports / "broken")], env=env)
    # every query's failure is logged on its own line: the last line is the run's error
    assert code == 3 and err and err[-1].startswith("error: every query failed"), (code, err)
    assert not any("Traceback" in line for line in err)
    rows = runs(case.ledger)
    (broken,) = set(rows) - {"good"}
    status, _, error, _ = rows[broken]
    assert status == "failed" and str(error).startswith("SourceError: "), rows[broken]
    assert not (case.reports / "broken").exists()
    assert_good_intact(base, case)
    fresh_run(base, case)
    assert runs(case.ledger)[broken] == rows[broken], "a later good run changed the failed run's row"
    assert_good_intact(base, case)


# ---------------------------------------------------------------------------------------------------------------
# 8. extract --save into folders holding other files


@pytest.mark.parametrize("target", ["ledger-folder", "notes-folder", "snapshot-with-notes"])
def test_extract_refuses_a_folder_with_foreign_files(base: Base, tmp_path: Path, target: str) -> None:
    case = base.case(tmp_path)
    folder = {"ledger-folder": case.ledger.parent, "notes-folder": tmp_path / "notes",
              "snapshot-with-notes": tmp_path / "snapshot"}[target]
    if target == "notes-folder":
        folder.mkdir()
        (folder / "notes.txt").write_text("my notes\n")
        (folder / "sub").mkdir()
        (folder / "sub" / "data.csv").write_text("a,b\n")
    elif target == "snapshot-with-notes":
        shutil.copytree(base.snap_oct, folder)
        (folder / "notes.txt").write_text("my notes\n")
    before, beside = tree(folder), sorted(p.name for p in folder.parent.iterdir())
    ledger_bytes = case.ledger.read_bytes()
    code, _, err = cli(["extract", "--source", "demo", "--machines", str(MACHINES), "--as-of", "2026-11-25T03:00Z",
                        "--save", str(folder)], env={**case.env(), "HOTPATCH_AUDIT_WORK_DIR": str(base.work)})
    assert_one_line_failure(code, err, expected=2, names=(str(folder),))
    assert tree(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == beside
    assert case.ledger.read_bytes() == ledger_bytes


def test_extract_replaces_its_own_snapshot_whole(base: Base, tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    shutil.copytree(base.snap_oct, folder)
    (tmp_path / "neighbour.txt").write_text("stays\n")
    code, out, err = cli(["extract", "--source", "demo", "--machines", str(MACHINES), "--as-of", "2026-11-25T03:00Z",
                          "--save", str(folder)], env={"HOTPATCH_AUDIT_WORK_DIR": str(base.work)})
    assert code == 0, err
    assert json.loads((folder / "manifest.json").read_text())["as_of"] == "2026-11-25T03:00:00Z"
    code, out, err = cli(["verify", str(folder)])
    assert code == 0, (out, err)  # nothing of the old snapshot left over: every file is the new one's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neighbour.txt", "snapshot"]


# ---------------------------------------------------------------------------------------------------------------
# 9. run --out / report --out into folders holding other files


@pytest.mark.parametrize("command", ["run", "report", "report-into-good", "report-unknown-run"])
def test_out_refuses_a_folder_with_foreign_files(base: Base, tmp_path: Path, command: str) -> None:
    case = base.case(tmp_path)
    folder = case.report if command == "report-into-good" else tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    before, beside = tree(folder), sorted(p.name for p in folder.parent.iterdir())
    ledger_bytes = case.ledger.read_bytes()
    args = {"run": ["run", "--source", "snapshot", "--snapshot", str(base.snap_fresh)],
            "report": ["report", "good"], "report-into-good": ["report", "good"],
            "report-unknown-run": ["report", "no-such-run"]}[command]
    code, _, err = cli([*args, "--format", "csv", "--out", str(folder)], env=case.env())
    names = ("no-such-run",) if command == "report-unknown-run" else (str(folder),)
    assert_one_line_failure(code, err, expected=2, names=names)
    assert tree(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == beside
    assert case.ledger.read_bytes() == ledger_bytes
    if command == "report-into-good":
        (folder / "notes.txt").unlink()
    assert_good_intact(base, case)
