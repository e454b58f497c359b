"""What every column of the ledger's core, audit, report and main objects means: sql/columns/*.toml, applied as
COMMENT ON COLUMN each time the definitions are applied, so `duckdb_columns().comment`, docs/schema.md
(hotpatch_audit.docgen) and an analyst's DBeaver all show the same words.

Each file holds one TOML table per object, `["audit.readiness"]`, mapping its columns to their meaning, and
common.toml a `[common]` table for the columns that mean the same wherever they appear (run_id, machine_id...).
An object's own entry wins over the common one; a materialized table (`audit.readiness`) takes the entries of
its live view (`audit.readiness_live`) and the other way round, so one entry documents both. An `[inherit]` table
maps a view that passes another object's columns through (`"main.latest_findings" = "audit.findings"`) to that
object: the view's columns without an entry of their own take the object's column comments.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from hotpatch_audit.duck import sql_literal
from hotpatch_audit.errors import ConfigError

COLUMN_DOCS_DIR = Path("sql") / "columns"
DOCUMENTED_SCHEMAS = ("core", "audit", "report", "main")
INHERIT = "inherit"


def _tables(project_root: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """(file, table name, its text values) of every table of sql/columns/*.toml."""
    for path in sorted((project_root / COLUMN_DOCS_DIR).glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for name, columns in data.items():
            if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
                raise ConfigError(f"{path}: [{name}] must map column names to their meaning (text)")
            yield path, name, columns


def load_column_docs(project_root: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(common meanings, per-object meanings keyed 'schema.object') from sql/columns/*.toml."""
    common: dict[str, str] = {}
    objects: dict[str, dict[str, str]] = {}
    for path, name, columns in _tables(project_root):
        if name == INHERIT:
            continue
        target = common if name == "common" else objects.setdefault(name.removesuffix("_live"), {})
        for column, meaning in columns.items():
            if column in target:
                raise ConfigError(f"{path}: [{name}] {column} is documented twice")
            target[column] = " ".join(meaning.split())
    return common, objects


def load_inherited(project_root: Path) -> dict[str, str]:
    """The [inherit] tables of sql/columns/*.toml: 'schema.view' -> the 'schema.object' it passes columns through
    from."""
    inherited: dict[str, str] = {}
    for path, name, views in _tables(project_root):
        if name != INHERIT:
            continue
        for view, source in views.items():
            if view in inherited or source.count(".") != 1:
                raise ConfigError(f"{path}: [{INHERIT}] {view} must name one object, as schema.object, once")
            inherited[view] = source
    return inherited


def _columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    schemas = ", ".join(f"'{s}'" for s in DOCUMENTED_SCHEMAS)
    return con.execute(
        f"SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE NOT internal"
        f" AND database_name = current_database() AND schema_name IN ({schemas}) ORDER BY ALL"
    ).fetchall()


def meaning_of(common: dict[str, str], objects: dict[str, dict[str, str]], schema: str, table: str,
               column: str) -> str | None:
    """The documented meaning of one column, or None."""
    own = objects.get(f"{schema}.{table.removesuffix('_live')}", {})
    return own.get(column) or common.get(column)


def apply_column_comments(con: duckdb.DuckDBPyConnection, project_root: Path) -> None:
    """COMMENT ON COLUMN for every documented column of the core, audit, report and main objects; then the
    [inherit] views take their source's comments for the columns they have no entry of their own for."""
    common, objects = load_column_docs(project_root)
    inherited = load_inherited(project_root)
    passed_through: list[tuple[str, str, str]] = []
    for schema, table, column in _columns(con):
        if f"{schema}.{table}" in inherited and column not in objects.get(f"{schema}.{table}", {}):
            passed_through.append((schema, table, column))  # once its source's comments are in place
        else:
            _comment(con, schema, table, column, meaning_of(common, objects, schema, table, column))
    if passed_through:
        comments = {(f"{s}.{t}", c): m for s, t, c, m in con.execute(
            "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal"
            " AND database_name = current_database() AND coalesce(trim(comment), '') <> ''").fetchall()}
        for schema, table, column in passed_through:
            source = inherited[f"{schema}.{table}"]
            _comment(con, schema, table, column, comments.get((source, column)) or common.get(column))


def _comment(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str, meaning: str | None) -> None:
    if meaning:
        con.execute(f'COMMENT ON COLUMN {schema}."{table}"."{column}" IS {sql_literal(meaning)}')


def undocumented_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """schema.object.column of every core, audit, report and main column without a comment."""
    schemas = ", ".join(f"'{s}'" for s in DOCUMENTED_SCHEMAS)
    return [".".join(r) for r in con.execute(
        f"SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE NOT internal"
        f" AND database_name = current_database() AND schema_name IN ({schemas})"
        " AND coalesce(trim(comment), '') = '' ORDER BY ALL"
    ).fetchall()]
