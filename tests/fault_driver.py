"""Run one audit (or one re-render) and SIGKILL this very process at a chosen point (tests/test_faults.py).

Usage: python tests/fault_driver.py '<json>' with the keys
  ledger, work_dir, out_dir    where the run writes
  snapshot                     the snapshot directory the run reads
  run_id                       the run's id
  point                        where to die (below)
  formats                      report formats (default ["csv"])
  render                       render the run's report (default false)
  rerender, report_dir         instead of a run: re-render run `rerender` into the existing folder report_dir

Points: stage:<extract|load|audit|render> (at the stage boundary run_audit announces), register (inside the
transaction registering the run), extract-page (after the 3rd page file of the extract), load-query (after the
2nd query is inserted, inside the load transaction), load-commit (after the guest facts are parsed, just
before the load commits), audit-findings (after the findings are materialized, inside finish_run's
transaction), audit-supersede (after a rival run's rows were deleted, inside finish_run's transaction),
render-files (after the first export file of the report), render-manifest (just before the manifest of a
re-render is written), render-swap (right after the new report was swapped in, before the old one is removed),
wal (checkpoints off, then dead right after finish_run commits: the ledger keeps its .wal).

The process ends by SIGKILL (exit status -9) at the point; it exits 0 only when the point was never reached.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def die() -> None:
    """SIGKILL this process: no finally block, no atexit, no DuckDB checkpoint, nothing flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wrap(module: Any, name: str, *, when: str = "after", calls: int = 1,
         only: Callable[..., bool] | None = None) -> None:
    """Replace module.name by a wrapper that dies before or after its `calls`-th call (counting only calls for
    which only(*args, **kwargs) is true)."""
    original = getattr(module, name)
    seen = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counted = only is None or only(*args, **kwargs)
        if counted:
            seen[0] += 1
        hit = counted and seen[0] == calls
        if hit and when == "before":
            die()
        result = original(*args, **kwargs)
        if hit:
            die()
        return result

    setattr(module, name, wrapper)


def no_checkpoints() -> None:
    """Every ledger connection keeps its commits in the WAL (no automatic checkpoint, none on close)."""
    import hotpatch_audit.duck as duck
    import hotpatch_audit.ledger as ledger

    original = duck.connect

    def connect(path: Any = ":memory:", **kwargs: Any) -> Any:
        con = original(path, **kwargs)
        if str(path) != ":memory:" and not kwargs.get("read_only"):
            con.execute("SET checkpoint_threshold = '1TB'")
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
        return con

    duck.connect = connect  # type: ignore[assignment]
    ledger.connect = connect  # type: ignore[assignment]


def main() -> None:
    args = json.loads(sys.argv[1])
    import hotpatch_audit.analyze as analyze
    import hotpatch_audit.extract as extract
    import hotpatch_audit.ledger as ledger
    import hotpatch_audit.manifest as manifest
    from hotpatch_audit.config import Settings
    from hotpatch_audit.pipeline import RunRequest, render_stage, run_audit

    settings = Settings(ledger_path=Path(args["ledger"]), work_dir=Path(args["work_dir"]),
                        out_dir=Path(args["out_dir"]), formats=args.get("formats", ["csv"]),
                        lock_timeout_seconds=30)
    point: str = args["point"]
    stage_kill = point.split(":", 1)[1] if point.startswith("stage:") else None

    def on_stage(stage: str) -> None:
        if stage == stage_kill:
            die()

    def for_a_run(*a: Any, **_k: Any) -> bool:
        return len(a) > 1 and a[1] is not None  # parse_guest_configuration_reports(con, run_id)

    if point == "register":
        wrap(ledger, "_naive_utc", when="before")
    elif point == "extract-page":
        wrap(extract, "atomic_write_bytes", calls=3)
    elif point == "load-query":
        wrap(ledger, "load_query_pages", calls=2)
    elif point == "load-commit":
        wrap(ledger, "parse_guest_configuration_reports", only=for_a_run)
    elif point == "audit-findings":
        wrap(analyze, "materialize_findings")
    elif point == "audit-supersede":
        wrap(ledger, "_delete_run_rows")
    elif point == "render-files":
        import hotpatch_audit.render as render

        wrap(render, "write_export")
    elif point == "render-manifest":
        wrap(manifest, "write_manifest", when="before")
    elif point == "render-swap":
        import hotpatch_audit.files as files

        # right after the atomic swap (renameat2 RENAME_EXCHANGE), before the old folder is removed
        wrap(files, "_exchange")
    elif point == "wal":
        no_checkpoints()
        wrap(ledger, "finish_run")
    elif stage_kill is None:
        raise SystemExit(f"unknown point {point!r}")

    if args.get("rerender"):
        render_stage(settings, args["rerender"], Path(args["report_dir"]))
    else:
        run_audit(settings, RunRequest(source="snapshot", snapshot_dir=Path(args["snapshot"]), run_id=args["run_id"]),
                  render=bool(args.get("render")), on_stage=on_stage)
    print(f"point {point} was never reached", file=sys.stderr)


if __name__ == "__main__":
    main()
