"""Benchmark: audit.html and audit.pdf render times for demo fleets of 1,000 / 10,000 / 100,000 machines.

Each size runs in its own process: it builds a ledger of `--months` monthly demo runs (default 2, so the
summary has a previous run to compare with and the trends have two points; building is timed apart), then
renders the last run `--repeat` times per format (default 3) with render_reports, as `hotpatch-audit report`
does: each render reads the ledger (report views, charts) and writes the file. Prints the median and the
fastest render per format, the file sizes and the PDF's page count; never asserted in tests.

Usage: .venv/bin/python bench/bench_render.py [--sizes 1000,10000] [--months 2] [--repeat 3]
Targets (2 cores): PDF < 60 s at any size. 100,000 machines take minutes to build (about 3 min per run).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
GENERATED_AT = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # fixed: same ledger, same report bytes


def one(size: int, months: int, repeat: int) -> dict[str, float]:
    """Build `months` monthly runs of `size` machines, then time `repeat` renders of each format."""
    sys.path.insert(0, str(ROOT / "src"))
    import pypdf

    from hotpatch_audit.config import Settings
    from hotpatch_audit.pipeline import RunRequest, monthly_as_of_series, run_audit
    from hotpatch_audit.render import render_reports

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-render-{size}-"))
    try:
        s = Settings(ledger_path=tmp / "ledger.duckdb", out_dir=tmp / "out", work_dir=tmp / "work", demo_machines=size)
        start = time.perf_counter()
        run_id = ""
        for as_of in monthly_as_of_series(AS_OF, months):
            run_id = run_audit(s, RunRequest(source="demo", as_of=as_of), render=False).run_id
        result: dict[str, float] = {"build": time.perf_counter() - start}
        for fmt in ("html", "pdf"):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                (path,) = render_reports(
                    s.ledger_path, run_id, tmp / "out", settings=s, formats=[fmt], generated_at=GENERATED_AT
                )
                times.append(time.perf_counter() - start)
            result[f"{fmt}_median"] = statistics.median(times)
            result[f"{fmt}_min"] = min(times)
            result[f"{fmt}_mb"] = path.stat().st_size / 1e6
        result["pdf_pages"] = float(len(pypdf.PdfReader(tmp / "out" / "audit.pdf").pages))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Run each size in a subprocess and print one line per size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--months", type=int, default=2, help="monthly runs in the ledger (the last is rendered)")
    parser.add_argument("--repeat", type=int, default=3, help="renders per format (median and fastest printed)")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.months, args.repeat)))
        return
    cols = [
        "build",
        "html_median",
        "html_min",
        "html_mb",
        "pdf_median",
        "pdf_min",
        "pdf_mb",
        "pdf_pages",
        "peak_rss_mb",
    ]
    print(f"{args.months} monthly runs per ledger, {args.repeat} renders per format; seconds unless named")
    print(f"{'machines':>9} " + " ".join(f"{c:>11}" for c in cols), flush=True)
    for size in [int(x) for x in args.sizes.split(",")]:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(size),
                "--months",
                str(args.months),
                "--repeat",
                str(args.repeat),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{size:>9} failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{size:>9} " + " ".join(f"{r[c]:>11.1f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
