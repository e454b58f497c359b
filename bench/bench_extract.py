"""Benchmark: extraction throughput of the arg source against the local Resource Graph emulator.

The emulator serves a demo fleet (default 20,000 machines) with a realistic latency (150–250 ms) and
Resource Graph's quota (15 requests per 5 s per identity). Every query in queries/ runs concurrently,
round after round, for at least --seconds. Prints rows/s, pages/s, the fraction of the quota ceiling
(15 pages / 5 s × 1,000 rows = 3,000 rows/s per identity), 429s, and whether every row arrived
(counts per query against the emulator's own SQL counts, and duplicate ids). Never asserted in tests.
Targets: >= 90% of the ceiling, < 1% of requests answered 429.

Usage: .venv/bin/python bench/bench_extract.py [--machines 20000] [--seconds 60] [--workers 4]
       [--latency-ms 200] [--quota 15] [--window 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"  # noqa: S105 (a fixed token for a local emulator)
AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def main() -> None:
    """Generate (or reuse) the fleet, start the emulator, extract until the time is up, print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--quota", type=int, default=15)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "out" / "bench-extract")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    from hotpatch_audit.arg import ArgOptions, ArgSource
    from hotpatch_audit.catalog import QuerySpec, load_queries
    from hotpatch_audit.concurrency import run_concurrently
    from hotpatch_audit.config import Settings
    from hotpatch_audit.demo.emulator import ResourceGraphEmulator
    from hotpatch_audit.demo.source import demo_fleet
    from hotpatch_audit.sources import Scope

    t0 = time.perf_counter()
    settings = Settings(work_dir=args.work_dir, ledger_path=args.work_dir / "unused.duckdb",
                        out_dir=args.work_dir / "reports", demo_machines=args.machines)
    db = demo_fleet(settings, AS_OF)
    print(f"fleet: {args.machines} machines ({time.perf_counter() - t0:.1f} s to generate or reuse)")
    specs = load_queries(ROOT)

    with tempfile.TemporaryDirectory(prefix="bench-extract-tls-") as certs, ResourceGraphEmulator(
        db, token=TOKEN, quota_per_window=args.quota, window_seconds=args.window,
        latency_ms=args.latency_ms, latency_jitter_ms=args.latency_ms * 0.25, cert_dir=Path(certs),
        query_now=AS_OF,
    ) as emu:
        assert emu.engine is not None
        expected = {s.name: emu.engine.execute(s.text, None).total for s in specs}
        emu.reset()
        options = ArgOptions(endpoint=emu.url, ca_bundle=emu.ca_bundle, static_token=TOKEN,
                             max_workers=args.workers)
        lock = threading.Lock()
        got: dict[str, list[int]] = {s.name: [] for s in specs}
        dupes: dict[str, int] = {s.name: 0 for s in specs}
        pages = rows = 0

        def work(spec: QuerySpec) -> None:
            nonlocal pages, rows
            n = 0
            ids: set[str] = set()
            d = 0
            for page in src.pages(spec):
                data = json.loads(page.body)["data"]
                for r in data:
                    if r["id"] in ids:
                        d += 1
                    ids.add(r["id"])
                n += len(data)
                with lock:
                    pages += 1
                    rows += len(data)
            with lock:
                got[spec.name].append(n)
                dupes[spec.name] += d

        src = ArgSource(Scope("tenant"), options=options)
        start = time.perf_counter()
        rounds = 0
        with src:
            while time.perf_counter() - start < args.seconds:
                run_concurrently(specs, work, max_workers=args.workers)
                rounds += 1
        elapsed = time.perf_counter() - start
        stats = emu.stats

    ceiling_pages = args.quota / args.window
    ceiling_rows = ceiling_pages * 1000
    requests = stats.requests
    print(f"run: {rounds} rounds of {len(specs)} queries in {elapsed:.1f} s, {args.workers} workers, "
          f"latency {args.latency_ms:g} ms ±25%, quota {args.quota}/{args.window:g} s")
    print(f"rows/s        {rows / elapsed:10.1f}   ({rows / elapsed / ceiling_rows:.1%} of the "
          f"{ceiling_rows:,.0f} rows/s ceiling)")
    print(f"pages/s       {pages / elapsed:10.2f}   ({pages / elapsed / ceiling_pages:.1%} of the "
          f"{ceiling_pages:g} pages/s ceiling; partial last pages make rows/s lower)")
    print(f"requests      {requests:10d}   429: {stats.throttled} ({stats.throttled / max(1, requests):.2%}); "
          f"client retries {src.stats.retries}, client throttle waits {src.stats.throttle_wait_seconds:.1f} s")
    pacer = src.pacer(None).stats
    print(f"pacer         waits {pacer.waits}, waited {pacer.waited_seconds:.1f} s, "
          f"margin {src.pacer(None).margin:.2f} s")
    ok = True
    for s in specs:
        counts = got[s.name]
        good = all(c == expected[s.name] for c in counts) and dupes[s.name] == 0
        ok &= good
        print(f"  {s.name:28s} expected {expected[s.name]:8d}  received {counts}  duplicates {dupes[s.name]}"
              f"  {'ok' if good else 'MISMATCH'}")
    print("every row arrived exactly once" if ok else "ROWS LOST OR DUPLICATED")


if __name__ == "__main__":
    main()
