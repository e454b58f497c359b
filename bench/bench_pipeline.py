"""Benchmark: seconds per stage and peak memory for demo fleets of 1,000 / 10,000 / 100,000 machines.

Each size runs in its own process (so peak RSS is that size's), one monthly run, cold ledger.
Usage: .venv/bin/python bench/bench_pipeline.py [--sizes 1000,10000] [--repeat 1]
Prints one table; never asserted in tests. Targets (2 cores): 10,000 machines end to end < 60 s;
100,000 < 5 min and < 2 GB; PDF < 60 s at any size; CSV exports together < 100 MB (`csv_mb`).
"""

from __future__ import annotations

import argparse
import json
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
    start = time.perf_counter()
    load_stage(s, ctx, extracted)
    t["load"] = time.perf_counter() - start
    start = time.perf_counter()
    audit_stage(s, ctx, extracted.complete)
    t["audit"] = time.perf_counter() - start
    for fmt in ("html", "pdf"):
        start = time.perf_counter()
        render_reports(s.ledger_path, "bench", tmp / "out", settings=s, formats=[fmt])
        t[f"render_{fmt}"] = time.perf_counter() - start
    start = time.perf_counter()
    written = render_reports(s.ledger_path, "bench", tmp / "out", settings=s, formats=["csv", "parquet"])
    t["exports"] = time.perf_counter() - start
    start = time.perf_counter()
    con = connect(s.ledger_path, read_only=True)
    facts = run_facts(con, "bench")
    con.close()
    files = [*written, tmp / "out" / "audit.html", tmp / "out" / "audit.pdf"]
    write_manifest(tmp / "out", files, facts=facts, settings=s, generated_at=datetime.now(UTC))
    t["manifest"] = time.perf_counter() - start
    t["total"] = sum(t.values())
    t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t["rows"] = float(sum(extracted.rows.values()))
    t["csv_mb"] = sum(p.stat().st_size for p in written if p.suffix == ".csv") / 1e6
    return t


def main() -> None:
    """Run each size in a subprocess and print medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child)))
        return
    cols = ["generate", "extract", "load", "audit", "render_html", "render_pdf", "exports", "manifest", "total",
            "peak_rss_mb", "rows", "csv_mb"]
    print(f"{'machines':>9} " + " ".join(f"{c:>12}" for c in cols))
    for size in [int(x) for x in args.sizes.split(",")]:
        results = []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                print(f"{size:>9} failed: {proc.stderr.strip().splitlines()[-1:]}")
                break
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if results:
            med = {c: statistics.median(r[c] for r in results) for c in cols}
            print(f"{size:>9} " + " ".join(f"{med[c]:>12.1f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
