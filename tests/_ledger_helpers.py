"""Hand-made ledgers for owner and cost tests: schema applied, rows inserted by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from hotpatch_audit.analyze import MATERIALIZED, _store, apply_sql

ROOT = Path(__file__).resolve().parents[1]


def new_ledger(path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A ledger with every definition of sql/ applied."""
    con = duckdb.connect(str(path))
    apply_sql(con, ROOT)
    return con


def add_run(con: duckdb.DuckDBPyConnection, run_id: str, as_of: str, settings: dict[str, str]) -> None:
    """A succeeded run with its settings."""
    con.execute(
        "insert into meta.runs (run_id, scope, as_of, source, tool_version, started_at, status) "
        "values (?, 'test', ?, 'snapshot', 'test', ?, 'succeeded')",
        [run_id, as_of, as_of],
    )
    for k, v in settings.items():
        con.execute("insert into meta.settings values (?, ?, ?)", [run_id, k, v])


def insert(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    """Insert one row by column name."""
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"insert into {table} ({cols}) values ({marks})", list(row.values()))


def store_core(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Store the run's core tables (core.machines ...) from their live views, as judging the run does first
    (analyze.materialize_run), for a test that writes the audit tables by hand."""
    _store(con, run_id, tuple(name for name in MATERIALIZED if name.startswith("core.")))
