"""What every CLI module shares: the consoles, the guard that maps errors to exit codes, settings."""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, HotpatchAuditError, RunInterrupted

EXIT_USAGE, EXIT_FAILED = 2, 3  # as in hotpatch_audit.pipeline (0 ok, 1 incomplete)

# Messages carry paths and Azure text: never wrapped mid-word (soft_wrap), never highlighted. Callers
# pass untrusted text through rich.markup.escape so it is never read as markup.
err = Console(stderr=True, soft_wrap=True, highlight=False)  # notes and progress: silenced by --quiet
alerts = Console(stderr=True, soft_wrap=True, highlight=False)  # errors and warnings: always shown
out = Console()
CONSOLES = (err, alerts, out)

OUTPUTS = ("table", "csv", "json")  # -o of query, diff and calendar
Output = Literal["table", "csv", "json"]


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], output: str, *, title: str | None = None,
               table: Table | None = None) -> None:
    """Rows as the -o option asks, on stdout: csv (text inert and formula-guarded, as every CSV the tool writes;
    numbers stay numbers), json (an array of objects, one per row: numbers, true/false and null as JSON, times
    ISO 8601, other values as text; every non-ASCII character escaped, so no control or bidirectional character
    reaches the terminal and the text round-trips exactly), or a table (text inert and markup-escaped; `table`
    brings its own column layout)."""
    from hotpatch_audit.exports import csv_cell, inert

    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow([csv_cell(str(c)) for c in columns])
        writer.writerows([_csv_value(v, csv_cell) for v in row] for row in rows)
        return
    if output == "json":
        records = [dict(zip(columns, (_json_value(v) for v in row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, ensure_ascii=True, indent=1) + "\n")
        return
    if table is None:
        table = Table(*(escape(inert(str(c))) for c in columns), title=title)
    for row in rows:
        table.add_row(*("" if v is None else escape(inert(str(v))) for v in row))
    out.print(table)


def _csv_value(value: Any, csv_cell: Callable[[Any], Any]) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, int | float | Decimal) else csv_cell(str(value))


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# Set by the CLI's --verbose: unexpected errors then print their traceback too (it always goes to a log file).
VERBOSE = {"on": False}


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map errors to exit codes with one clear line, never a traceback on the terminal: usage errors exit 2,
    every other failure 3 (the run, if one was in progress, is marked failed with its cause). The traceback of
    an unexpected error goes to a log file the line names (and to stderr with --verbose)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ConfigError as exc:
            alerts.print("[red]usage error:[/red]", escape(one_line(exc)))
            raise typer.Exit(EXIT_USAGE) from None
        except HotpatchAuditError as exc:
            alerts.print("[red]error:[/red]", escape(one_line(exc)))
            raise typer.Exit(EXIT_FAILED) from None
        except (KeyboardInterrupt, RunInterrupted) as exc:
            signal_name = str(exc) if isinstance(exc, RunInterrupted) else "SIGINT (Ctrl-C)"
            alerts.print("[red]interrupted:[/red]", escape(f"{signal_name}; a run in progress was marked failed, "
                                                        "earlier runs and reports are as they were"))
            raise typer.Exit(EXIT_FAILED) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, traceback to a file
            alerts.print("[red]error:[/red]", escape(f"{describe(exc)}{_traceback_note(exc)}"))
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper


def one_line(exc: BaseException, limit: int = 600) -> str:
    """An error's message on one line (newlines folded), cut at `limit` characters."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: BaseException) -> str:
    """One line for an error no module turned into a HotpatchAuditError: the file system's and DuckDB's own
    words, with what to do where that is clear."""
    import duckdb

    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = {28: " (the disk is full: free space, then run again)",
                30: " (a read-only file system: point --ledger/--out at a writable place)",
                13: " (permission denied)"}.get(exc.errno or 0, "")
        return f"{where}{exc.strerror or one_line(exc)}{hint}"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return (f"DuckDB ran out of memory: {one_line(exc, 300)} (raise HOTPATCH_AUDIT_DUCKDB_MEMORY_LIMIT, "
                "or check the input for oversized values)")
    if isinstance(exc, duckdb.Error):
        full = "No space left on device" in str(exc)
        return f"DuckDB: {one_line(exc, 400)}" + (" (the disk is full: free space, then run again)" if full else "")
    return f"unexpected {type(exc).__name__}: {one_line(exc, 400)}"


def _traceback_note(exc: BaseException) -> str:
    """Write the traceback to a log file (and stderr with --verbose); return where it went."""
    import tempfile
    import traceback
    from datetime import UTC, datetime
    from pathlib import Path

    text = "".join(traceback.format_exception(exc))
    if VERBOSE["on"]:
        sys.stderr.write(text)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
    for folder in (_log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"hotpatch-audit-error-{stamp}.log"
            path.write_text(text, encoding="utf-8")
            return f" (traceback in {path})"
        except OSError:
            continue
    return " (the traceback could not be written: use --verbose)"


def _log_folder() -> Any:
    from pathlib import Path

    try:
        settings = Settings(**{})
        return settings.path(settings.work_dir) / "logs"
    except Exception:  # noqa: BLE001 - a broken setting must not hide the error being reported
        return Path(Settings.model_fields["work_dir"].default) / "logs"  # the work_dir default


def settings_from(**overrides: Any) -> Settings:
    """Settings with the options a user gave (None and [] mean: not given); a bad value is a usage error whose one
    line names the setting, what it must be and the value given."""
    from pydantic import ValidationError

    values = {k: v for k, v in overrides.items() if v is not None and v != []}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None
    except ValueError as exc:
        raise ConfigError(one_line(exc)) from exc


def validation_message(exc: Any) -> str:
    """A pydantic ValidationError of Settings as one line: `setting (HOTPATCH_AUDIT_X): what is wrong (got v)`."""
    parts = []
    for error in exc.errors()[:3]:
        name = ".".join(str(x) for x in error.get("loc", ()) if not isinstance(x, int)) or "settings"
        given = error.get("input")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        # our own validators quote the value already; pydantic's type errors do not
        quoted = error.get("type") == "value_error" or given is None or isinstance(given, dict)
        got = "" if quoted else f" (got {str(given)[:60]!r})"
        parts.append(f"setting {name} (HOTPATCH_AUDIT_{name.upper()}): {message}{got}")
    return "; ".join(parts)
