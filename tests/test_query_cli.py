"""`hotpatch-audit query`: read-only, no file system access unless --allow-file-access, inert and guarded output."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

from fixtures.report_ledger import FORMULA_NAME, RUN_ID, build_report_ledger
from hotpatch_audit.cli import app
from hotpatch_audit.exports import BIDI_CONTROLS

HOSTILE_NAME = "db-\u202etxt.exe\x00-01"
SHOWN_NAME = "db-<U+202E>txt.exe-01"
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f" + "".join(BIDI_CONTROLS) + "]")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The render fixture's ledger (a formula-like machine name) with db-01 renamed to HOSTILE_NAME."""
    path = tmp_path_factory.mktemp("query") / "ledger.duckdb"
    build_report_ledger(path)
    con = duckdb.connect(str(path))
    try:
        con.execute("update core.machines set machine_name = ? where machine_name = 'db-01'", [HOSTILE_NAME])
    finally:
        con.close()
    return path


def _query(ledger: Path, sql: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["query", sql, "--ledger", str(ledger), *args])


def test_the_ledger_queries_as_before(ledger: Path) -> None:
    result = _query(ledger, "select count(*) as n from audit.findings where run_id = $$" + RUN_ID + "$$", "-o", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "n" and int(lines[1]) > 0
    joined = _query(ledger, "select count(*) from core.machines m join audit.findings f using (run_id, machine_id)")
    assert joined.exit_code == 0, joined.output


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (select 1) TO '{tmp}/x.csv'",
        "COPY core.machines TO '{tmp}/x.parquet' (format parquet)",
        "EXPORT DATABASE '{tmp}/x'",
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/hostname')",
        "select * from glob('/etc/*')",
        "ATTACH '{tmp}/x.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "select * from 'https://example.com/x.csv'",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "select 1; COPY (select 1) TO '{tmp}/x.csv'",
    ],
)
def test_file_system_access_is_refused_as_a_usage_error(ledger: Path, tmp_path: Path, sql: str) -> None:
    result = _query(ledger, sql.format(tmp=tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("usage error: query ") and result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_refused_read_says_how_to_allow_it(ledger: Path) -> None:
    result = _query(ledger, "select * from read_csv('/etc/passwd')")
    assert result.exit_code == 2
    assert "query refused" in result.stderr and "--allow-file-access" in result.stderr
    assert "root:" not in result.output


def test_allow_file_access_keeps_todays_behaviour(ledger: Path, tmp_path: Path) -> None:
    target = tmp_path / "machines.csv"
    result = _query(ledger, f"COPY (select machine_name from core.machines) TO '{target}'", "--allow-file-access")
    assert result.exit_code == 0, result.output
    assert target.is_file()
    assert "--allow-file-access" in " ".join(CliRunner().invoke(app, ["query", "--help"]).output.split())


def test_the_ledger_stays_read_only(ledger: Path) -> None:
    for args in ((), ("--allow-file-access",)):
        result = _query(ledger, "delete from core.machines", *args)
        assert result.exit_code == 2 and "read-only" in result.stderr.lower(), result.output


def test_csv_output_is_inert_and_formula_guarded(ledger: Path) -> None:
    result = _query(ledger, "select machine_name, 1 as n, -1 as m from core.machines where run_id = $$" + RUN_ID
                    + "$$ order by machine_name", "-o", "csv")
    assert result.exit_code == 0, result.output
    assert not FORBIDDEN.search(result.stdout.replace("\r\n", "\n"))
    names = [line.split(",", 1)[0] for line in result.stdout.splitlines()[1:]]
    assert SHOWN_NAME in names
    guarded = "'" + FORMULA_NAME
    assert '"' + guarded.replace('"', '""') + '",1,-1' in result.stdout.splitlines()


def test_table_output_is_inert_and_not_read_as_markup(ledger: Path) -> None:
    result = _query(ledger, "select machine_name as name, '[/bold] [red]x' as tag from core.machines "
                    "where machine_name like 'db-%' and run_id = $$" + RUN_ID + "$$")
    assert result.exit_code == 0, result.output
    assert not FORBIDDEN.search(result.stdout)
    assert "<U+202E>" in result.stdout and "[/bold] [red]x" in result.stdout
