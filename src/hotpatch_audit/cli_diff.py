"""`hotpatch-audit diff`: month over month between two runs of one scope (registered in cli.py)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hotpatch_audit.console import err, out, settings_from
from hotpatch_audit.diff import CHANGE_COLUMNS, CHANGES, Diff, diff_runs
from hotpatch_audit.errors import ConfigError


def _csv_cell(value: Any) -> Any:
    from hotpatch_audit.exports import csv_cell

    return "" if value is None else csv_cell(value if isinstance(value, (int, float)) else str(value))


def _print_table(result: Diff) -> None:
    a, b = result.run_a, result.run_b
    err.print(f"scope {b.scope}: {a.run_id} ({a.as_of}) -> {b.run_id} ({b.as_of})")
    summary = Table("audit", *CHANGES, title="Changes per audit")
    for audit, counts in result.counts().items():
        summary.add_row(audit, *(f"{counts[c]:,}" for c in CHANGES))
    out.print(summary)
    rows = Table("change", "audit", "code", "machine", "owner", "month", "before", "now", "severity", "detail")
    for r in result.rows:
        rows.add_row(*(
            "" if r[k] is None else str(r[k])
            for k in ("change", "audit", "code", "machine_name", "owner", "month", "status_before", "status_now",
                      "severity", "change_detail")
        ))
    out.print(rows)


def diff(
    run_a: Annotated[str | None, typer.Argument(help="Earlier run [default: previous good monthly run]")] = None,
    run_b: Annotated[str | None, typer.Argument(help="Later run of the same scope [default: latest good monthly run]")]
    = None,
    ledger: Annotated[Path | None, typer.Option("--ledger", help="DuckDB ledger file [default: out/ledger.duckdb]")]
    = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or csv")] = "table",
    change: Annotated[
        list[str] | None,
        typer.Option("--change", "--status", help="Only these changes (repeatable): " + ", ".join(CHANGES)),
    ] = None,
) -> None:
    """Month over month: findings new, regressed, still open, fixed, unknown or waived between two runs.

    RUN_A is the earlier run, RUN_B the later one, of the same scope. New = open (fail or warn) in
    RUN_B and never open before; regressed = open again after it was fixed; fixed needs a pass or a
    machine still in scope with complete data (missing data is unknown, never fixed). Without runs:
    the latest good monthly run against the previous good monthly run of its scope.

    Example: hotpatch-audit diff
    """
    from hotpatch_audit.ledger import open_reader
    from hotpatch_audit.pipeline import refresh_definitions

    if output not in ("table", "csv"):
        raise ConfigError("--output must be table or csv")
    settings = settings_from(ledger_path=ledger)
    refresh_definitions(settings)  # the ledger may predate the month-over-month views
    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit, on_wait=err.print) as con:
        result = diff_runs(con, run_a, run_b, changes=tuple(change) if change else None)
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CHANGE_COLUMNS)
        writer.writerows([_csv_cell(r[c]) for c in CHANGE_COLUMNS] for r in result.rows)
        return
    _print_table(result)
