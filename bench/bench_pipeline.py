"""Benchmark: seconds per stage and peak memory for demo fleets of 1,000 / 10,000 / 100,000 machines.

Each size runs in its own process (so peak RSS is that size's), one monthly run, cold ledger.
Usage: .venv/bin/python bench/bench_pipeline.py [--sizes 1000,10000] [--repeat 1]
Prints one table; never asserted in tests. Targets (2 cores): 10,000 machines end to end < 60 s;
100,000 < 5 min and < 2 GB; PDF < 60 s at any size; CSV exports together < 100 MB (`csv_mb`).
`plain_read` is DuckDB's own read_json of the same pages into text columns, timed in the same run, and
`load_ratio` load / plain_read; `write_floor` is DuckDB's own write of the rows the audit stage stored (already
computed, copied from the ledger into a new file by the same DDL), timed in the same run, `audit_rows` their count
and `audit_ratio` audit / write_floor: the audit cannot be faster than writing what it stores. `render` is one
render call with HTML, PDF, CSV and Parquet, as a run makes it, with its parts `render_read` (the ledger read HTML
and PDF share), `render_html`, `render_pdf` and `exports` (the exports are written beside HTML and PDF, on a second
thread, once the read is done: the parts overlap, and `render` is the wall time of the whole call); `budget` is
load + audit + render (goal at 100,000: < 60 s, < 1.5 GB); `rows_per_machine` the Resource Graph rows extracted per
machine (goal: at most 5); `oom_retries` the stages that ran out of DuckDB memory and ran again on one thread (their
time includes the failed attempt). `next_writer` is what the run leaves for the next writer of the ledger: a small write
and the checkpoint at its close, right after the run (DuckDB's vacuum would merge the row groups the stages left
part-filled; ledger writers run without it unless they deleted rows, see duck.connect). Not in `budget`.
`load_cpu`, `audit_cpu` and `render_cpu` are the CPU seconds of each budget stage (user + system, every thread of
the process: DuckDB's and the render's); `cpu_floor` is their sum divided by the cores, the budget's wall time if
every core were busy the whole time. When `budget` is near `cpu_floor`, only less work makes it faster, not more
parallelism.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def one(size: int) -> dict[str, float]:
    """Run every stage once for `size` machines; return seconds per stage and peak RSS in MB."""
    sys.path.insert(0, str(ROOT / "src"))
    from hotpatch_audit.config import Settings
    from hotpatch_audit.demo.source import demo_fleet
    from hotpatch_audit.duck import connect
    from hotpatch_audit.manifest import run_facts, write_manifest
    from hotpatch_audit.pipeline import (
        RunRequest,
        audit_stage,
        extract_stage,
        load_stage,
        start_run,
    )
    from hotpatch_audit.render import render_reports

    retries: list[str] = []  # stages DuckDB ran out of memory in, run again on one thread (pipeline._within_memory)

    class _Retries(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "ran out of memory" in record.getMessage():
                retries.append(record.getMessage().split(":")[1].split()[0])

    logging.getLogger("hotpatch_audit.pipeline").addHandler(_Retries(logging.WARNING))
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{size}-"))
    s = Settings(ledger_path=tmp / "ledger.duckdb", out_dir=tmp / "out", work_dir=tmp / "work", demo_machines=size)
    t: dict[str, float] = {}
    start = time.perf_counter()
    demo_fleet(s, AS_OF)
    t["generate"] = time.perf_counter() - start
    ctx = start_run(s, RunRequest(source="demo", as_of=AS_OF, run_id="bench"))
    for stage, fn in (("extract", lambda: extract_stage(s, ctx)),):
        start = time.perf_counter()
        extracted = fn()
        t[stage] = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    load_stage(s, ctx, extracted)
    t["load"] = time.perf_counter() - start
    t["load_cpu"] = time.process_time() - cpu
    t["plain_read"] = plain_read(extracted.snapshot_dir, tmp / "plain.duckdb", s.duckdb_memory_limit)
    t["load_ratio"] = t["load"] / t["plain_read"]
    start, cpu = time.perf_counter(), time.process_time()
    audit_stage(s, ctx, extracted.complete)
    t["audit"] = time.perf_counter() - start
    t["audit_cpu"] = time.process_time() - cpu
    t["write_floor"], t["audit_rows"] = write_floor(s.ledger_path, tmp / "floor.duckdb", "bench", s.duckdb_memory_limit)
    t["audit_ratio"] = t["audit"] / t["write_floor"]
    # One render call with every format, as the pipeline's render stage makes it: HTML and PDF share one read of
    # the ledger (render_read). Its parts come from render's own log of each step ("<file>: <seconds> s").
    steps: dict[str, float] = {}

    class _Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            what, _, secs = record.getMessage().rpartition(": ")
            if secs.endswith(" s"):
                steps[what] = steps.get(what, 0.0) + float(secs[:-2])

    render_log = logging.getLogger("hotpatch_audit.render")
    handler, level = _Steps(logging.INFO), render_log.level
    render_log.addHandler(handler)
    render_log.setLevel(logging.INFO)
    start, cpu = time.perf_counter(), time.process_time()
    written = render_reports(s.ledger_path, "bench", tmp / "out", settings=s, formats=["html", "pdf", "csv", "parquet"])
    t["render"] = time.perf_counter() - start
    t["render_cpu"] = time.process_time() - cpu
    render_log.removeHandler(handler)
    render_log.setLevel(level)
    t["render_read"] = steps.pop("read ledger", 0.0)
    t["render_html"] = steps.pop("audit.html", 0.0)
    t["render_pdf"] = steps.pop("audit.pdf", 0.0)
    t["exports"] = sum(steps.values())
    written = [p for p in written if p.suffix in (".csv", ".parquet")]
    start = time.perf_counter()
    con = connect(s.ledger_path, read_only=True)
    facts = run_facts(con, "bench")
    con.close()
    files = [*written, tmp / "out" / "audit.html", tmp / "out" / "audit.pdf"]
    write_manifest(tmp / "out", files, facts=facts, settings=s, generated_at=datetime.now(UTC))
    t["manifest"] = time.perf_counter() - start
    # What the run left for the next writer of the ledger: a small write and the checkpoint at its close (DuckDB's
    # vacuum, if the run's stages left it merging work; duck.connect opens writers without it).
    start = time.perf_counter()
    con = connect(s.ledger_path)
    con.execute("create table main.bench_probe as select 1")
    con.close()
    t["next_writer"] = time.perf_counter() - start
    t["total"] = sum(t[stage] for stage in ("generate", "extract", "load", "audit", "render", "manifest"))
    t["budget"] = t["load"] + t["audit"] + t["render"]
    t["cpu_floor"] = (t["load_cpu"] + t["audit_cpu"] + t["render_cpu"]) / (os.cpu_count() or 1)
    t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t["rows"] = float(sum(extracted.rows.values()))
    t["rows_per_machine"] = t["rows"] / size
    t["csv_mb"] = sum(p.stat().st_size for p in written if p.suffix == ".csv") / 1e6
    t["oom_retries"] = float(len(retries))
    if retries:
        print(f"{size}: ran out of memory in {', '.join(retries)}; run again on one thread", file=sys.stderr)
    return t


def plain_read(snapshot_dir: Path, target: Path, memory_limit: str) -> float:
    """Seconds DuckDB itself takes to read the same pages into text columns of a database file: one read_json
    per query of every page, each raw table's columns as VARCHAR (JSON columns as JSON), with the ledger's
    memory limit and insertion order dropped (without that the read itself runs out of memory at 1 GB), until the
    database is closed (its checkpoint written), as the load stage is timed."""
    from hotpatch_audit.config import PROJECT_ROOT
    from hotpatch_audit.duck import connect
    from hotpatch_audit.ledger import raw_schema

    schema = raw_schema(PROJECT_ROOT)
    con = connect(target, memory_limit=memory_limit)
    con.execute("SET preserve_insertion_order = false")
    start = time.perf_counter()
    for folder in sorted(p for p in snapshot_dir.iterdir() if p.is_dir()):
        pages = sorted(str(f) for f in folder.glob("page-*.json"))
        if not pages or folder.name not in schema:
            continue
        fields = ", ".join(f'"{n}" {"JSON" if t == "JSON" else "VARCHAR"}' for n, t in [("id", "VARCHAR"),
                           *[(n, t) for n, t in schema[folder.name] if n != "id"]])
        con.execute(f"CREATE TABLE {folder.name} AS SELECT unnest(r) FROM (SELECT unnest(data) AS r FROM "
                    f"read_json(?, columns = {{'data': 'STRUCT({fields})[]'}}))", [pages])
    con.close()  # the checkpoint on close is part of the read, as it is of the load stage
    return time.perf_counter() - start


def write_floor(ledger: Path, target: Path, run_id: str, memory_limit: str) -> tuple[float, float]:
    """Seconds DuckDB itself takes to write the rows the audit stage stored for the run, already computed, and
    their count: every table the stage writes (analyze.MATERIALIZED, REGISTERS_MATERIALIZED and audit.findings)
    is created in a new database file by the ledger's own DDL (its compression included) and filled from the
    ledger by INSERT ... SELECT, with the ledger's memory limit and insertion order dropped, until the file is
    closed (its checkpoint written). The audit stage judges and writes the same rows, so on the same host it cannot
    be faster than this; `audit_ratio` is audit / write_floor."""
    from hotpatch_audit.analyze import MATERIALIZED, REGISTERS_MATERIALIZED
    from hotpatch_audit.duck import connect, sql_literal

    tables = [*MATERIALIZED, *REGISTERS_MATERIALIZED, "audit.findings"]
    con = connect(target, memory_limit=memory_limit)
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"ATTACH {sql_literal(str(ledger))} AS ledger (READ_ONLY)")
    ddl = dict(con.execute("SELECT schema_name || '.' || table_name, sql FROM duckdb_tables()"
                           " WHERE database_name = 'ledger'").fetchall())
    for schema in sorted({table.split(".")[0] for table in tables}):
        con.execute(f"CREATE SCHEMA {schema}")
    for table in tables:
        con.execute(ddl[table])  # "CREATE TABLE <schema>.<name>(...)": in the new file, the default database
    start = time.perf_counter()
    rows = 0
    for table in tables:
        stored = con.execute(f"INSERT INTO {table} SELECT * FROM ledger.{table} WHERE run_id = ?",
                             [run_id]).fetchone()
        rows += int(stored[0]) if stored else 0
    con.execute("DETACH ledger")
    con.close()
    return time.perf_counter() - start, float(rows)


def main() -> None:
    """Run each size in a subprocess (--repeat times) and print each run and the median."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child)))
        return
    cols = ["generate", "extract", "load", "plain_read", "load_ratio", "audit", "write_floor", "audit_ratio",
            "audit_rows", "render", "render_read",
            "render_html", "render_pdf", "exports", "manifest", "next_writer", "budget", "total", "load_cpu",
            "audit_cpu", "render_cpu", "cpu_floor", "peak_rss_mb", "rows", "rows_per_machine", "csv_mb", "oom_retries"]
    print(f"{'machines':>9} {'run':>6} " + " ".join(f"{c:>12}" for c in cols))
    for size in [int(x) for x in args.sizes.split(",")]:
        results = []
        for k in range(args.repeat):
            proc = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                print(f"{size:>9} failed: {proc.stderr.strip().splitlines()[-1:]}")
                break
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            if args.repeat > 1:  # each run, then their median
                print(f"{size:>9} {k + 1:>6} " + " ".join(f"{results[-1][c]:>12.1f}" for c in cols), flush=True)
        if results:
            med = {c: statistics.median(r[c] for r in results) for c in cols}
            print(f"{size:>9} {'median':>6} " + " ".join(f"{med[c]:>12.1f}" for c in cols), flush=True)

if __name__ == "__main__":
    main()
