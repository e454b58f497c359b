"""The ledger opens in the DuckDB command line analysts install (the duckdb-cli package, DuckDB 1.5), not only in
the DuckDB this tool runs: it is written in storage v1.3.0, and a ledger an earlier version wrote in another format
(DuckDB 2's own, or v1.0.0) is converted, losing nothing, on the next write."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.duck import STORAGE_VERSION
from hotpatch_audit.ledger import open_writer, storage_version


def _duckdb_cli() -> str:
    """The duckdb-cli package's command (a dev dependency), beside this interpreter."""
    found = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    assert found, "the duckdb-cli package is a dev dependency: its `duckdb` command belongs in the venv"
    return found


# every finding's id, sentence and evidence of one run, in one digest
TEXT_DIGEST = ("select md5(string_agg(concat_ws('|', finding_id, reason, evidence), chr(10) order by finding_id))"
               " from audit.findings where run_id = ?")


def _cli(ledger: Path, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_duckdb_cli(), "-readonly", "-csv", "-noheader", str(ledger), "-c", sql],
                          capture_output=True, text=True, timeout=120, check=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def test_the_cli_is_duckdb_1x() -> None:
    version = subprocess.run([_duckdb_cli(), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1."), version


def test_a_demo_ledger_opens_in_the_duckdb_1x_cli(demo_history: tuple[object, list[str]], tmp_path: Path) -> None:
    settings, run_ids = demo_history
    ledger = _copy(settings.path(settings.ledger_path), tmp_path / "ledger.duckdb")  # type: ignore[attr-defined]
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        assert storage_version(con) == f"{STORAGE_VERSION}+"
        findings = con.execute("select count(*) from audit.findings where run_id = ?", [run_ids[-1]]).fetchone()
        text = con.execute(TEXT_DIGEST, [run_ids[-1]]).fetchone()
        zstd = con.execute("select distinct column_name from pragma_storage_info('audit.findings')"
                           " where compression = 'ZSTD' order by 1").fetchall()
        views = con.execute("select schema_name || '.' || view_name from duckdb_views() where not internal"
                            " and schema_name in ('core', 'audit', 'report') order by 1").fetchall()
        missed = con.execute("select count(*) from audit.missed_hotpatches").fetchone()
    finally:
        con.close()
    result = _cli(ledger, f"select count(*) from audit.findings where run_id = '{run_ids[-1]}'")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == findings[0] > 0  # type: ignore[index]
    # the columns stored with zstd (sql/audit/95_findings.sql) read back the same text in DuckDB 1.x
    assert zstd == [("evidence",), ("finding_id",), ("machine_id",), ("reason",)]
    result = _cli(ledger, TEXT_DIGEST.replace("?", f"'{run_ids[-1]}'"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == text[0]  # type: ignore[index]
    # the live audit views render their sentences with the message macros: they must bind in DuckDB 1.x too
    result = _cli(ledger, "select count(*) from audit.missed_hotpatches")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == missed[0]  # type: ignore[index]
    # every view of the ledger binds and runs in the 1.x CLI
    failing = []
    for (view,) in views:
        result = _cli(ledger, f"select count(*) from {view}")
        if result.returncode != 0:
            failing.append(f"{view}: {result.stderr.strip()[:200]}")
    assert not failing, failing


@pytest.mark.parametrize("earlier", ["latest", "v1.0.0"], ids=["duckdb-2-format", "v1.0.0"])
def test_a_ledger_in_an_earlier_format_is_converted_on_the_next_write(demo_history: tuple[object, list[str]],
                                                                      tmp_path: Path, earlier: str) -> None:
    settings, _ = demo_history
    original = settings.path(settings.ledger_path)  # type: ignore[attr-defined]
    # what an earlier hotpatch-audit wrote: DuckDB 2's own (newest) storage format, or v1.0.0
    ledger = tmp_path / "ledger.duckdb"
    con = duckdb.connect()
    con.execute(f"attach '{original}' as src (read_only)")
    con.execute(f"attach '{ledger}' as dst (storage_version '{earlier}')")
    if earlier == "v1.0.0":
        # v1.0.0 has no zstd, and a hotpatch-audit that wrote it did not declare any (sql/audit/95_findings.sql,
        # analyze.ZSTD_COLUMNS): the copy's tables are declared as they were then
        con.execute("copy from database src to memory")
        con.execute("use memory")
        declared = con.execute("select schema_name || '.' || table_name, table_name, sql from duckdb_tables()"
                               " where database_name = 'memory' and sql like '%USING COMPRESSION ZSTD%'").fetchall()
        assert {"audit.findings", "audit.machine_months", "core.machines"} <= {name for name, _, _ in declared}
        for name, table, ddl in declared:
            con.execute(f"alter table {name} rename to {table}_now")
            con.execute(ddl.replace(" USING COMPRESSION ZSTD", ""))
            con.execute(f"insert into {name} select * from {name}_now")
            con.execute(f"drop table {name}_now")
        con.execute("copy from database memory to dst")
    else:
        con.execute("copy from database src to dst")
    con.close()
    if earlier == "latest":
        assert _cli(ledger, "select 1").returncode != 0  # DuckDB 1.x refuses it

    def fingerprint(path: Path) -> list[tuple[object, ...]]:
        c = duckdb.connect(str(path), read_only=True)
        try:
            tables = c.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
            return [(s, t, *c.execute(f'select count(*), bit_xor(hash(x)) from "{s}"."{t}" x').fetchone())
                    for s, t in tables]
        finally:
            c.close()

    before = fingerprint(ledger)
    notes: list[str] = []
    with open_writer(ledger, PROJECT_ROOT, on_wait=notes.append) as c:
        assert storage_version(c) == f"{STORAGE_VERSION}+"
    assert any("converting" in n and STORAGE_VERSION in n for n in notes), notes
    after = fingerprint(ledger)
    # every evidence table is the same, row for row (the derived tables may be rebuilt with the definitions)
    # (meta.schema_state records when definitions were last applied: they may be re-applied on this open)
    kept = {(s, t): rest for s, t, *rest in before if s in ("meta", "raw") and t != "schema_state"}
    now = {(s, t): rest for s, t, *rest in after}
    assert len(kept) > 10 and [k for k, v in kept.items() if now.get(k) != v] == []
    assert _cli(ledger, "select count(*) from meta.runs").returncode == 0
    assert not ledger.with_name(ledger.name + ".convert").exists()


def test_a_failed_conversion_leaves_the_ledger_as_it_was(demo_history: tuple[object, list[str]],
                                                          tmp_path: Path) -> None:
    settings, _ = demo_history
    newer = tmp_path / "ledger.duckdb"
    con = duckdb.connect()
    con.execute(f"attach '{settings.path(settings.ledger_path)}' as src (read_only)")  # type: ignore[attr-defined]
    con.execute(f"attach '{newer}' as dst (storage_version 'latest')")
    con.execute("copy from database src to dst")
    con.close()
    data = newer.read_bytes()
    blocker = newer.with_name(newer.name + ".convert")
    blocker.mkdir()  # the copy cannot be written
    (blocker / "x").write_text("in the way")
    with pytest.raises(Exception), open_writer(newer, PROJECT_ROOT):  # noqa: B017, PT011 - what matters is below
        pass
    assert newer.read_bytes() == data
