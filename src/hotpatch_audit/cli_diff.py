"""`hotpatch-audit diff`: month over month between two runs of one scope (registered in cli.py)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hotpatch_audit.console import Output, err, out, settings_from, write_rows
from hotpatch_audit.diff import CHANGE_COLUMNS, CHANGES, Diff, diff_runs

if TYPE_CHECKING:
    Change = StrEnum
else:  # the changes, shown as the --change choices
    Change = StrEnum("Change", {c: c for c in CHANGES})


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
    run_a: Annotated[str | None, typer.Argument(metavar="[RUN_A]",
        help="Earlier run [default: previous good monthly run]")] = None,
    run_b: Annotated[str | None, typer.Argument(metavar="[RUN_B]",
        help="Later run of the same scope [default: latest good monthly run]")]
    = None,
    ledger: Annotated[Path | None, typer.Option("--ledger", metavar="FILE",
        help="DuckDB ledger file [default: out/ledger.duckdb]")]
    = None,
    output: Annotated[Output, typer.Option(
        "--output", "-o", help="table for people; csv or json (an array of objects) for tools")] = "table",
    change: Annotated[
        list[Change] | None,
        typer.Option("--change", "--status", metavar="[" + "|".join(Change) + "]",
            help="Only these changes (repeatable)"),
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

    settings = settings_from(ledger_path=ledger)
    refresh_definitions(settings)  # the ledger may predate the month-over-month views
    with open_reader(settings.path(settings.ledger_path), timeout=settings.lock_timeout_seconds,
                     memory_limit=settings.duckdb_memory_limit, on_wait=err.print) as con:
        result = diff_runs(con, run_a, run_b, changes=tuple(c.value for c in change) if change else None)
    if output != "table":
        write_rows(CHANGE_COLUMNS, [[r[c] for c in CHANGE_COLUMNS] for r in result.rows], output)
        return
    _print_table(result)
