"""`hotpatch-audit calendar`: show the release calendar a run uses, and the months still to verify."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hotpatch_audit.calendar import (
    CalendarRow,
    calendar_rows,
    calendar_version,
    month_range,
    months_to_verify,
)
from hotpatch_audit.config import Settings
from hotpatch_audit.console import Output, err, guard, out, settings_from, write_rows
from hotpatch_audit.errors import ConfigError

calendar_app = typer.Typer(add_completion=False, rich_markup_mode=None)  # help: the callback's docstring

OverrideOpt = Annotated[
    Path | None,
    typer.Option("--override", metavar="FILE", help="Calendar override CSV [default: setting calendar_override_path]"),
]
OutputOpt = Annotated[Output, typer.Option(
    "--output", "-o", help="table for people; csv or json (an array of objects) for tools")]
SHOWN = ("track", "month", "kind", "kb", "os_build", "release_date", "verified", "source")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _calendar(override: Path | None) -> tuple[Settings, Path | None]:
    from hotpatch_audit.pipeline import calendar_override

    settings = settings_from()
    return settings, settings.path(override) if override is not None else calendar_override(settings)


def _print(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], output: str, title: str) -> None:
    if output != "table":  # the CSV (formula-guarded, as every CSV of the tool) and JSON have the source whole
        write_rows(columns, rows, output)
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c, no_wrap=c != "source", overflow="fold")
    shortened = [tuple(v[:59] + "…" if c == "source" and v and len(v) > 60 else v
                       for c, v in zip(columns, row, strict=True)) for row in rows]
    write_rows(columns, shortened, "table", table=table)


@calendar_app.callback(invoke_without_command=True)
@guard
def calendar(ctx: typer.Context, override: OverrideOpt = None, output: OutputOpt = "table") -> None:
    """Print the release calendar a run will use (shipped file merged with the override) and its version.

    The version is a content hash of the calendar file and the override; runs record it.

    Example: hotpatch-audit calendar --output csv
    """
    if ctx.invoked_subcommand is not None:
        return
    settings, path = _calendar(override)
    rows: list[CalendarRow] = calendar_rows(settings.project_root, path)
    version = calendar_version(settings.project_root, path)
    (out if output == "table" else err).print(
        f"calendar version {version}" + (f" (with override {path})" if path else ""), highlight=False
    )
    _print(SHOWN, [tuple(r.get(c) for c in SHOWN) for r in rows], output, "Release calendar")


@calendar_app.command()
@guard
def check(
    start: Annotated[str | None, typer.Option("--from", metavar="YYYY-MM",
        help="First month, YYYY-MM (with --to)")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="YYYY-MM",
        help="Last month, YYYY-MM [default: current month]")] = None,
    months: Annotated[int | None, typer.Option(metavar="N",
        help="Months up to --end [default: setting period_months]")] = None,
    end: Annotated[str | None, typer.Option(metavar="YYYY-MM",
        help="Last month, YYYY-MM [default: current month]")] = None,
    override: OverrideOpt = None,
    output: OutputOpt = "table",
) -> None:
    """List the months of a reporting period that rest on the rule only or lack a KB, per track.

    "rule only": no calendar row, the kind follows the quarterly rule; "no KB": a row gives the kind
    (planned or secondary source) but no KB. These are what to verify next. Exit code 0 either way.

    Example: hotpatch-audit calendar check --months 12 --end 2026-11
    """
    if start and months is not None:
        raise ConfigError("give --from/--to or --months/--end, not both")
    if to and end:
        raise ConfigError("give --to or --end, not both")
    last = to or end or date.today().strftime("%Y-%m")
    for name, value in (("--from", start), ("--to/--end", last)):
        if value is not None and not _MONTH.fullmatch(value):
            raise ConfigError(f"{name} {value!r}: expected YYYY-MM")
    settings, path = _calendar(override)
    if start is None:
        count = months if months is not None else settings.period_months
        if not 1 <= count <= 120:
            raise ConfigError("--months must be between 1 and 120")
        y, m = divmod(int(last[:4]) * 12 + int(last[5:7]) - 1 - (count - 1), 12)
        start = f"{y:04d}-{m + 1:02d}"
    if start > last:
        raise ConfigError(f"--from {start} is after {last}")
    found = months_to_verify(calendar_rows(settings.project_root, path), month_range(start, last))
    rows = [(f.track, f.month, f.kind, f.status, f.source) for f in found]
    title = f"Months to verify, {start} to {last} (calendar {calendar_version(settings.project_root, path)})"
    _print(("track", "month", "kind", "status", "source"), rows, output, title)
    if not found:
        err.print(f"every month from {start} to {last} has a calendar row with a KB")
