"""Every column of the ledger's core, audit and report objects says what it means (sql/columns/*.toml, applied
as COMMENT ON COLUMN by hotpatch_audit.column_docs), and a bad column-docs file is refused naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.analyze import apply_sql
from hotpatch_audit.column_docs import (
    COLUMN_DOCS_DIR,
    DOCUMENTED_SCHEMAS,
    load_column_docs,
    meaning_of,
    undocumented_columns,
)
from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.errors import ConfigError


@pytest.fixture(scope="module")
def ledger() -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty in-memory ledger with every definition (and column comment) applied."""
    con = duckdb.connect()
    apply_sql(con, PROJECT_ROOT)
    yield con
    con.close()


@pytest.mark.parametrize("schema", DOCUMENTED_SCHEMAS)
def test_every_column_has_a_comment(ledger: duckdb.DuckDBPyConnection, schema: str) -> None:
    missing = [c for c in undocumented_columns(ledger) if c.startswith(schema + ".")]
    assert not missing, (
        f"{len(missing)} column(s) of schema {schema} have no meaning in {COLUMN_DOCS_DIR}/*.toml "
        "(add them to the object's table, or to [common] in common.toml if they mean the same everywhere):\n"
        + "\n".join(missing)
    )


def test_every_documented_column_exists(ledger: duckdb.DuckDBPyConnection) -> None:
    """An entry for a core, audit or report object names a column it has (catches renamed or dropped columns)."""
    existing = {
        (f"{schema}.{table.removesuffix('_live')}", column)
        for schema, table, column in ledger.execute(
            "select schema_name, table_name, column_name from duckdb_columns()"
            " where not internal and database_name = current_database()"
        ).fetchall()
    }
    _, objects = load_column_docs(PROJECT_ROOT)
    stale = sorted(
        f"{name}.{column}"
        for name, columns in objects.items()
        if name.split(".", 1)[0] in DOCUMENTED_SCHEMAS
        for column in columns
        if (name, column) not in existing
    )
    assert not stale, "documented columns that do not exist:\n" + "\n".join(stale)


def test_comments_reach_the_ledger_and_docs(ledger: duckdb.DuckDBPyConnection) -> None:
    common, objects = load_column_docs(PROJECT_ROOT)
    comment = dict(
        ((t, c), m)
        for t, c, m in ledger.execute(
            "select table_name, column_name, comment from duckdb_columns() where schema_name = 'audit'"
            " and table_name in ('readiness', 'readiness_live', 'findings')"
        ).fetchall()
    )
    # the materialized table and its live view carry the same words
    assert comment[("readiness", "gate_os")] == comment[("readiness_live", "gate_os")]
    assert comment[("readiness", "gate_os")] == objects["audit.readiness"]["gate_os"]
    assert comment[("findings", "run_id")] == common["run_id"]


def _docs_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / COLUMN_DOCS_DIR
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_own_entry_wins_over_common_and_live_view_shares_the_table_entry(tmp_path: Path) -> None:
    root = _docs_tree(tmp_path, {
        "common.toml": '[common]\nstatus = "finding status"\nrun_id = "the run"\n',
        "core.toml": '["core.assessments"]\nstatus = """assessment\n   status"""\n',
        "audit.toml": '["audit.readiness_live"]\ngate_os = "gate 1"\n',
    })
    common, objects = load_column_docs(root)
    assert meaning_of(common, objects, "core", "assessments", "status") == "assessment status"
    assert meaning_of(common, objects, "core", "assessments", "run_id") == "the run"
    assert meaning_of(common, objects, "audit", "findings", "status") == "finding status"
    assert meaning_of(common, objects, "audit", "readiness", "gate_os") == "gate 1"
    assert meaning_of(common, objects, "audit", "readiness_live", "gate_os") == "gate 1"
    assert meaning_of(common, objects, "audit", "readiness", "nothing") is None


@pytest.mark.parametrize(
    ("files", "bad_file", "words"),
    [
        pytest.param({"audit.toml": '["audit.findings"]\nrun_id = 1\n'}, "audit.toml", "must map column names",
                     id="non-text value"),
        pytest.param({"audit.toml": '["audit.findings"]\nrun_id = ["a", "b"]\n'}, "audit.toml",
                     "must map column names", id="list value"),
        pytest.param({"core.toml": 'run_id = "not inside a table"\n'}, "core.toml", "must map column names",
                     id="top-level key"),
        pytest.param({"core.toml": '["core.machines"]\nowner = "a"\nowner = "b"\n'}, "core.toml",
                     "not valid TOML", id="duplicate key in one file"),
        pytest.param({"core.toml": '["core.machines"\nowner = "a"\n'}, "core.toml", "not valid TOML",
                     id="broken TOML"),
        pytest.param({"a.toml": '["core.machines"]\nowner = "a"\n', "b.toml": '["core.machines"]\nowner = "b"\n'},
                     "b.toml", "owner is documented twice", id="duplicate across files"),
        pytest.param({"audit.toml": '["audit.readiness"]\ngate_os = "a"\n\n["audit.readiness_live"]\ngate_os = "b"\n'},
                     "audit.toml", "gate_os is documented twice", id="table and its live view"),
        pytest.param({"common.toml": '[common]\nrun_id = "a"\n', "more.toml": '[common]\nrun_id = "b"\n'},
                     "more.toml", "run_id is documented twice", id="duplicate common entry"),
    ],
)
def test_a_bad_column_docs_file_is_refused_naming_it(tmp_path: Path, files: dict[str, str], bad_file: str,
                                                      words: str) -> None:
    root = _docs_tree(tmp_path, files)
    with pytest.raises(ConfigError) as err:
        load_column_docs(root)
    message = str(err.value)
    assert str(root / COLUMN_DOCS_DIR / bad_file) in message
    assert words in message
