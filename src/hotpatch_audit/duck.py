"""The one place DuckDB connections are opened: UTC, a memory limit, spilling to disk beyond it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = "1GB"
# Files are written in DuckDB's v1.3.0 storage format, which every DuckDB from 1.3 (May 2025) on reads: the
# command line and drivers analysts install (duckdb-cli 1.5, DBeaver, R, notebooks) as well as the DuckDB 2 this
# tool runs. DuckDB's own default would be its newest format, which 1.x refuses. v1.3.0 rather than v1.0.0 for its
# DICT_FSST string compression: the ledger is mostly text (findings' sentences and evidence JSON, resource ids), and
# at 100,000 machines writing 970,932 reboot-avoidance findings took 27 % less CPU (7.96 s instead of 10.84 s) in
# 19 % fewer blocks; the whole audit stage about 8 % less (CPU 39.9 s instead of 43.2 s, wall 22.2 s instead of
# 24.1 s: medians of three runs each, alternating, on one loaded ledger). This format stores a view without the
# `[not] materialized` hints of its CTEs (v1.5.0 keeps them): a hint holds only in the session that created the view,
# so the SQL never relies on one (sql/audit/10_machine_months.sql, slots).
STORAGE_VERSION = "v1.3.0"
# DuckDB's own default for max_vacuum_tasks: how many row-group merges a checkpoint may run. A writable ledger
# connection starts with none (connect) and gets them back once it deleted rows (delete_rows, allow_vacuum).
VACUUM_TASKS = 100


def sql_literal(text: str) -> str:
    """Text as a quoted SQL string literal (single quotes doubled), for statements that cannot take a parameter
    (ATTACH, COPY ... TO, COMMENT ON, macro bodies)."""
    return "'" + text.replace("'", "''") + "'"


def connect(path: Path | str = ":memory:", *, read_only: bool = False,
            memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the project's session settings; a new file is written in STORAGE_VERSION.

    DuckDB's own default takes 80% of RAM; a bounded limit keeps a 100,000-machine run within budget
    and makes large joins and sorts spill to a temporary directory next to the file instead.

    A writable file is opened without DuckDB's vacuum: every statement that appends rows leaves a part-filled row
    group per thread, and each checkpoint would merge them, rewriting (decompressing and compressing again) rows
    that nothing deleted. After a 100,000-machine run that was 4.8 to 5.3 s (three runs), spent at the closes of
    the next two writers, whichever came next. The row groups stay as written, a few more per run. A connection
    that deletes rows (delete_rows) turns the vacuum back on, so the space of deleted rows is still reclaimed, the
    part-filled groups merged with it.
    """
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
    if str(path) != ":memory:":
        config["temp_directory"] = str(Path(str(path) + ".tmp"))
        if not read_only:
            config["storage_compatibility_version"] = STORAGE_VERSION  # for a new file (see STORAGE_VERSION)
            config["max_vacuum_tasks"] = 0
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def delete_rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None) -> int:
    """Run one DELETE statement; return the rows it removed. When it removed any, the connection's checkpoints
    vacuum again (allow_vacuum): every DELETE on the ledger goes through here."""
    (count,) = con.execute(sql, list(params or ())).fetchone() or (0,)
    if count:
        allow_vacuum(con)
    return int(count)


def allow_vacuum(con: duckdb.DuckDBPyConnection) -> None:
    """Let this connection's checkpoints vacuum (DuckDB's default; connect opens a writable file without): rows
    were deleted, and their space is reclaimed at the next checkpoint (the commit's, or the close's)."""
    con.execute(f"set max_vacuum_tasks = {VACUUM_TASKS}")


def spare_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Session settings for a second attempt after DuckDB ran out of memory: one thread (each thread holds its
    own hash tables and buffers) and no insertion order. Slower, about half the peak memory."""
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = false")


@contextmanager
def setting(con: duckdb.DuckDBPyConnection, name: str, value: int | bool) -> Iterator[None]:
    """A DuckDB session setting changed for the block and given back after. After an error that aborted the
    transaction DuckDB takes no SET: the setting then stays until the caller closes the connection, and the error
    goes on unchanged."""
    (before,) = con.execute("select current_setting(?)", [name]).fetchone() or (None,)
    con.execute(f"set {name} = {sql_value(value)}")
    try:
        yield
    finally:
        try:
            con.execute(f"set {name} = {sql_value(before)}")
        except duckdb.Error as exc:  # never hide the error that ended the transaction
            log.debug("%s not restored: %s", name, exc)


@contextmanager
def variable(con: duckdb.DuckDBPyConnection, name: str, value: str) -> Iterator[None]:
    """A DuckDB session variable (getvariable) set for the block and reset after; like `setting`, a reset that
    DuckDB refuses after an aborted transaction never hides the error that aborted it."""
    con.execute(f"set variable {name} = ?", [value])
    try:
        yield
    finally:
        try:
            con.execute(f"reset variable {name}")
        except duckdb.Error as exc:  # never hide the error that ended the transaction
            log.debug("variable %s not reset: %s", name, exc)


def sql_value(value: object) -> str:
    """A setting's value as SQL: true/false, a number, or a quoted text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return sql_literal(str(value))
