"""Model and audit stage: apply the SQL views, load the release calendar, materialize findings."""

from __future__ import annotations

import logging
import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import duckdb

from hotpatch_audit import audit_meta
from hotpatch_audit.calendar import (
    CALENDAR_COLUMNS,
    CALENDAR_FILE,
    EVENT_KINDS,
    RELEASE_KINDS,
    TRACKS,
    calendar_version,
    load_calendar,
    validate_calendar,
)
from hotpatch_audit.column_docs import apply_column_comments
from hotpatch_audit.duck import delete_rows, setting, sql_literal, variable
from hotpatch_audit.prices import load_prices
from hotpatch_audit.progress import step
from hotpatch_audit.waivers import WaiverFile, apply_waivers

# The calendar lives in hotpatch_audit.calendar; its names are re-exported here for existing imports.
__all__ = [
    "CALENDAR_COLUMNS",
    "CALENDAR_FILE",
    "EVENT_KINDS",
    "RELEASE_KINDS",
    "TRACKS",
    "calendar_version",
    "load_calendar",
    "validate_calendar",
    "MATERIALIZED",
    "SQL_FOLDERS",
    "apply_sql",
    "materialize_findings",
    "materialize_registers",
    "materialize_run",
]

log = logging.getLogger(__name__)

# applied in this order; latest (main.latest_*: the run of record per scope) reads the others
SQL_FOLDERS: tuple[str, ...] = ("core", "audit", "report", "latest")


def apply_sql(con: duckdb.DuckDBPyConnection, project_root: Path, calendar_override: Path | None = None) -> None:
    """Create schemas, ref data, core and audit views (and report views if present); idempotent."""
    sql_dir = project_root / "sql"
    con.execute((sql_dir / "00_schema.sql").read_text(encoding="utf-8"))
    con.execute((sql_dir / "10_ref.sql").read_text(encoding="utf-8"))
    load_calendar(con, project_root, calendar_override)
    load_prices(con, project_root)
    audit_meta.apply(con, project_root)  # ref.audits, ref.audit_codes, ref.messages and audit.message()
    # Materialized tables follow their live view's columns: rebuilt whenever definitions are applied.
    for name in (*MATERIALIZED, *REGISTERS_MATERIALIZED):
        # ledgers from before a table was stored hold a view of that name (core.machines, audit.open_actions): it
        # goes too
        schema, table = name.split(".")
        kind = con.execute(
            "select 'view' from duckdb_views() where schema_name = $1 and view_name = $2 "
            "union all select 'table' from duckdb_tables() where schema_name = $1 and table_name = $2",
            [schema, table],
        ).fetchone()
        if kind:
            con.execute(f"drop {kind[0]} {name}")
    for folder in SQL_FOLDERS:
        for path in sorted((sql_dir / folder).glob("*.sql")):
            if folder == "audit" and path.stem == "90_all_findings":
                audit_meta.create_every_audit(con, project_root)  # the union of the audit views the metadata names
            log.debug("applying %s", path)
            con.execute(path.read_text(encoding="utf-8"))
    for name in (*MATERIALIZED, *REGISTERS_MATERIALIZED):
        _compress_per_row_text(con, name)
    apply_column_comments(con, project_root)  # sql/columns/*.toml: what every column means


# What audit.findings is judged from, stored per run in this order (each may read the ones before it) from its
# live view (<name>_live). The core tables come first: the audits read them, most several times, and each read
# computed them again (core.machines 0.45 s, core.installed_patches 0.57 s at 100,000 machines, all columns).
MATERIALIZED = (
    "core.machines", "core.installations", "core.installed_patches",
    "audit.off_track_events", "audit.machine_months", "audit.track_updates", "audit.readiness", "audit.coverage",
)
REGISTERS_MATERIALIZED = ("audit.open_actions",)  # read from audit.findings once its rows and waivers are in
# Audits stored one part at a time (sql/audit/41_missed_hotpatches.sql, audit.in_part): the parts of the view,
# its union's branches, need their joins' memory at once when stored together: at 100,000 machines 2.5 GB, more
# than the 1 GB default on two threads; one part needs at most 1 GB (measured, see the macro).
PARTS: dict[str, tuple[str, ...]] = {"missed_hotpatches": ("months", "off_track", "baselines", "enrollment")}


# Columns of the stored tables whose text nearly every row has its own (ARM ids, sentences naming the machine, JSON
# objects), stored with zstd like audit.findings' (sql/audit/95_findings.sql): DuckDB's default string compression
# spends the most CPU there for the least gain. At 100,000 machines, writing each table took 10 to 30 % less time
# (audit.machine_months 1.64 s instead of 1.89 s, audit.readiness 0.87 instead of 1.02, core.installations 0.36
# instead of 0.51; medians of three) and the tables half the space (machine_months 33 MB instead of 54 MB).
ZSTD_COLUMNS = ("machine_id", "installation_id", "reason", "evidence", "tags")


def _compress_per_row_text(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Create the stored table `name` again (empty, as apply_sql just made it from its live view) with its
    ZSTD_COLUMNS stored with zstd, keeping its comment."""
    schema, table = name.split(".")
    found = con.execute("select sql, comment from duckdb_tables() where schema_name = $1 and table_name = $2",
                        [schema, table]).fetchone()
    if found is None:
        return
    ddl, comment = found
    columns = "|".join(ZSTD_COLUMNS)
    compressed = re.sub(rf'(?<=[(,] )("?(?:{columns})"? (?:VARCHAR|JSON))(?=[,)])', r"\1 USING COMPRESSION zstd", ddl)
    if compressed == ddl:
        return
    con.execute(f"drop table {name}")
    con.execute(compressed)
    if comment:
        con.execute(f"comment on table {name} is {sql_literal(comment)}")


def _store(con: duckdb.DuckDBPyConnection, run_id: str, names: tuple[str, ...]) -> None:
    for name in names:
        delete_rows(con, f"delete from {name} where run_id = ?", [run_id])
        stored = con.execute(f"insert into {name} by name select * from {name}_live where run_id = ?",
                             [run_id]).fetchone()
        step("judge", name, int(stored[0]) if stored else None)


def materialize_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Store one run's rows of the core tables and the heavy intermediate views (<name>_live -> <name>)."""
    _store(con, run_id, MATERIALIZED)


def materialize_registers(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Store one run's rows of the registers computed from its findings (audit.open_actions_live ->
    audit.open_actions)."""
    _store(con, run_id, REGISTERS_MATERIALIZED)


def _part(con: duckdb.DuckDBPyConnection, part: str | None) -> AbstractContextManager[None]:
    """Within: an audit view that has parts (PARTS) gives only `part` (None: every part). An error in the block
    reaches the caller unchanged (an out-of-memory error must reach pipeline._within_memory); the variable then
    stays until the caller closes the connection, as the pipeline does."""
    return nullcontext() if part is None else variable(con, "hotpatch_audit_part", part)


def materialize_findings(con: duckdb.DuckDBPyConnection, run_id: str, waivers: WaiverFile | None = None) -> int:
    """Materialize the run's intermediate views, then replace its audit.findings rows (waivers applied); return
    the count."""
    # No transaction of its own: the caller (ledger/pipeline) may already hold one around the run.
    # The stored rows have no meaningful order (every reader sorts): without keeping insertion order DuckDB needs
    # less memory and time (at 100,000 machines 35 s instead of 45 s).
    with setting(con, "preserve_insertion_order", False):
        materialize_run(con, run_id)
        delete_rows(con, "delete from audit.findings where run_id = ?", [run_id])
        # one audit at a time: each holds only its own joins in memory (all four at once need about twice the
        # memory; at 100,000 machines more than the 1 GB default), and each is read from its own view (binding
        # audit.all_findings, all four views, took 1.5 s per audit at 100,000 machines)
        for (name,) in con.execute("select audit from ref.audits order by audit_order").fetchall():
            insert = ("insert into audit.findings by name select * from"
                      f" audit.settled_findings({sql_literal('audit.' + name)}) where run_id = ?")
            stored = 0
            for part in PARTS.get(name, (None,)):
                with _part(con, part):
                    stored += int((con.execute(insert, [run_id]).fetchone() or (0,))[0])
            step("judge", f"audit.{name}", stored)
        apply_waivers(con, run_id, waivers)
        materialize_registers(con, run_id)
    (count,) = con.execute("select count(*) from audit.findings where run_id = ?", [run_id]).fetchone() or (0,)
    step("judge", "audit.findings", int(count))
    return int(count)
