"""Seeded, deterministic demo fleet: Azure Resource Graph tables as Azure would show them at an as-of time.

Each machine's identity and traits come from (seed, index) alone; its state (hotpatch status, agent,
installation runs, assessment, guest facts) is a function of those traits and time, so runs at different
as-of dates tell one consistent story. Rows are written as NDJSON in batches and loaded with DuckDB's
read_json, so 100,000 machines never sit in Python lists at once.
"""

# ruff: noqa: S311, E501  (seeded demo data, not cryptography; long literal rows)

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import duckdb

from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.demo.argtables import ARG_TABLES, ENVELOPE_COLUMNS, create_arg_tables

from ._calendar import Calendar
from ._machines import ARCHETYPE_NAMES, ARCHETYPES, Machine, make_machine, slot_table
from ._rows import (
    arc_row,
    assessment_rows,
    assignment_row,
    container_rows,
    guest_row,
    installation_rows,
    schedule_rows,
    vm_row,
)
from ._timeline import SCHEDULES, retained_runs, simulate

__all__ = ["ARCHETYPE_NAMES", "ARCHETYPES", "generate_fleet", "fleet_machines"]

log = logging.getLogger(__name__)

BATCH_MACHINES = 5000
DEFAULT_CALENDAR = PROJECT_ROOT / "data" / "release_calendar.csv"

_dumps: Callable[[Any], bytes]
try:  # orjson is ~10x faster; both produce the same compact text for the values we write
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson comes with prefect

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def fleet_machines(machines: int, seed: int) -> Iterable[Machine]:
    """The fleet's machines (identity and traits only), for tests and tools."""
    slots = slot_table(seed)
    for i in range(machines):
        yield make_machine(seed, i, slots, len(SCHEDULES))


def _columns_sql() -> str:
    return "{" + ", ".join(f"'{name}': '{typ}'" for name, typ in ENVELOPE_COLUMNS) + "}"


def _load(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    cols = ", ".join(f'"{name}"' for name, _ in ENVELOPE_COLUMNS)
    con.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM read_json(?, format='newline_delimited', "
        f"columns={_columns_sql()}, maximum_object_size=16777216)",
        [str(path)],
    )


def _normalise_as_of(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        return as_of.replace(tzinfo=UTC)
    return as_of.astimezone(UTC)


def generate_fleet(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    machines: int = 500,
    seed: int = 20251014,
    calendar_path: Path | None = None,
) -> dict[str, int]:
    """Fill the Resource Graph tables (argtables.create_arg_tables) with the fleet's view of Azure at as_of; return row counts per table."""
    as_of = _normalise_as_of(as_of).replace(microsecond=0)
    cal = Calendar(calendar_path or DEFAULT_CALENDAR)
    create_arg_tables(con)
    counts = dict.fromkeys(ARG_TABLES, 0)
    slots = slot_table(seed)
    with tempfile.TemporaryDirectory(prefix="hotpatch-fleet-") as tmp:
        paths = {t: Path(tmp) / f"{t}.ndjson" for t in ARG_TABLES}
        files: dict[str, IO[bytes]] = {}

        def open_all() -> None:
            for t in ARG_TABLES:
                files[t] = paths[t].open("wb")

        def flush() -> None:
            for t in ARG_TABLES:
                files[t].close()
                if paths[t].stat().st_size:
                    _load(con, t, paths[t])

        def write(table: str, row: dict[str, Any]) -> None:
            files[table].write(_dumps(row) + b"\n")
            counts[table] += 1

        open_all()
        for row in container_rows():
            write("resourcecontainers", row)
        for row in schedule_rows():
            write(
                "resources" if row["type"].endswith("maintenanceconfigurations") else "maintenanceresources",
                row,
            )
        for i in range(machines):
            m = make_machine(seed, i, slots, len(SCHEDULES))
            h = simulate(cal, m, seed, as_of)
            write("resources", vm_row(m, h, as_of) if m.kind == "vm" else arc_row(m, h, as_of))
            for row in assessment_rows(m, h, as_of, seed):
                write("patchassessmentresources", row)
            for row in installation_rows(m, retained_runs(m, seed, as_of, h)):
                write("patchinstallationresources", row)
            assignment = assignment_row(m)
            if assignment:
                write("maintenanceresources", assignment)
            guest = guest_row(m, as_of, seed)
            if guest:
                write("guestconfigurationresources", guest)
            if (i + 1) % BATCH_MACHINES == 0:
                flush()
                open_all()
        flush()
    log.info("demo fleet: %d machines as of %s, rows %s", machines, as_of.isoformat(), counts)
    return counts
