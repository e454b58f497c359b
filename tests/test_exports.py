"""The analyst exports: findings and machine-months as CSV and Parquet, from the one definition in exports.py."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fixtures.report_ledger import FORMULA_NAME, RUN_ID, build_report_ledger
from hotpatch_audit.config import Settings
from hotpatch_audit.exports import EXPORTS, FINDINGS, MACHINE_MONTHS, NO_OWNER, exports_markdown, formula_guard_sql
from hotpatch_audit.render import FINDINGS_COLUMNS, neutralise_cell, owner_slug, render_reports, run_owners

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Exported:
    settings: Settings
    run_id: str
    out: Path


@pytest.fixture(scope="module")
def exported(demo_history: tuple[Settings, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The demo's last run exported (CSV and Parquet only: no PDF to wait for), with one folder per owner."""
    from hotpatch_audit.pipeline import render_stage

    settings, run_ids = demo_history
    s = settings.model_copy(update={"formats": ["csv", "parquet"], "csv_detail": True})
    out = tmp_path_factory.mktemp("exports") / "reports"
    render_stage(s, run_ids[-1], out, per_owner=True)
    return Exported(s, run_ids[-1], out)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _parquet(path: Path) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    con = duckdb.connect()
    try:
        cur = con.execute("select * from read_parquet(?)", [str(path)])
        names = [d[0] for d in cur.description or ()]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        types = con.execute(
            "select column_name, column_type from (describe select * from read_parquet(?))", [str(path)]
        ).fetchall()
    finally:
        con.close()
    return [(str(n), str(t)) for n, t in types], rows


def _ledger_count(settings: Settings, table: str, run_id: str) -> int:
    con = duckdb.connect(str(settings.path(settings.ledger_path)), read_only=True)
    try:
        (n,) = con.execute(f"select count(*) from {table} where run_id = ?", [run_id]).fetchone() or (0,)
    finally:
        con.close()
    return int(n)


@pytest.mark.parametrize("export", EXPORTS, ids=lambda e: e.stem)
def test_parquet_has_the_documented_columns_and_as_many_rows_as_csv_and_ledger(exported: Exported, export: Any) -> None:
    types, rows = _parquet(exported.out / export.file_name("parquet"))
    assert types == [(c.name, c.type) for c in export.columns]
    csv_rows = _csv(exported.out / export.file_name("csv"))
    assert list(csv_rows[0]) == list(export.names)
    in_ledger = _ledger_count(exported.settings, export.table, exported.run_id)
    assert in_ledger > 0
    assert len(rows) == len(csv_rows) == in_ledger
    assert {r["run_id"] for r in rows} == {exported.run_id}
    # same rows (in the same order where the Parquet is sorted too): the CSV is the Parquet as text
    keys_csv, keys_parquet = [r[export.names[0]] for r in csv_rows], [str(r[export.names[0]]) for r in rows]
    if export.ordered("parquet"):
        assert keys_csv == keys_parquet
    else:
        assert sorted(keys_csv) == sorted(keys_parquet)


def test_findings_csv_keeps_its_column_order() -> None:
    assert FINDINGS.names == FINDINGS_COLUMNS
    assert FINDINGS.names[:17] == (
        "finding_id",
        "run_id",
        "audit",
        "code",
        "machine_id",
        "machine_name",
        "machine_kind",
        "subscription_id",
        "resource_group",
        "owner",
        "track",
        "month",
        "status",
        "severity",
        "reason",
        "remediation",
        "evidence",
    )
    assert MACHINE_MONTHS.names[:3] == ("run_id", "machine_id", "machine_name")


def test_machine_months_parquet_keeps_types_and_json(exported: Exported) -> None:
    _, rows = _parquet(exported.out / "machine_months.parquet")
    outcomes = {r["outcome"] for r in rows}
    assert outcomes <= {
        "avoided",
        "expected_reboot",
        "unexpected_reboot",
        "avoidable_reboot",
        "no_install",
        "unknown",
        "not_applicable",
    }
    assert "avoided" in outcomes
    assert all(isinstance(r["reboot_count"], int) for r in rows)
    dated = [r for r in rows if r["release_date"] is not None]
    assert dated and all(r["grace_end"] > r["release_date"] for r in dated)
    assert all(r["evidence"].startswith("{") for r in rows)  # JSON object text


def test_per_owner_exports_hold_only_that_owners_rows(exported: Exported) -> None:
    owners = run_owners(
        exported.settings.path(exported.settings.ledger_path), exported.run_id, settings=exported.settings
    )
    assert len(owners) > 1
    for export in EXPORTS:
        _, fleet = _parquet(exported.out / export.file_name("parquet"))
        total = 0
        for owner in owners:
            folder = exported.out / "owners" / owner_slug(owner)
            _, rows = _parquet(folder / export.file_name("parquet"))
            csv_rows = _csv(folder / export.file_name("csv"))
            assert {r["owner"] or NO_OWNER for r in rows} <= {owner}
            assert len(csv_rows) == len(rows) == sum(1 for r in fleet if (r["owner"] or NO_OWNER) == owner)
            total += len(rows)
        assert total == len(fleet), export.stem
    # each owner folder has its own manifest; the fleet's lists every owner's files too
    from hotpatch_audit.manifest import verify

    fleet_listed = {f["path"] for f in json.loads((exported.out / "manifest.json").read_text("utf-8"))["files"]}
    for owner in owners:
        folder = exported.out / "owners" / owner_slug(owner)
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        assert manifest["owner"] == owner and manifest["run_id"] == exported.run_id
        assert verify(folder).ok
        rel = folder.relative_to(exported.out).as_posix()
        assert {f"{rel}/{f['path']}" for f in manifest["files"]} | {f"{rel}/manifest.json"} <= fleet_listed
    assert verify(exported.out).ok


def test_csv_defuses_formulas_and_parquet_keeps_the_raw_value(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    paths = render_reports(ledger, RUN_ID, tmp_path / "out", settings=Settings(csv_detail=True),
                           formats=("csv", "parquet"))
    assert [p.name for p in paths] == [
        "open_actions.csv",
        "exceptions.csv",
        "coverage_exceptions.csv",
        "findings.csv",
        "machine_months.csv",
        "open_actions.parquet",
        "exceptions.parquet",
        "coverage_exceptions.parquet",
        "findings.parquet",
        "machine_months.parquet",
    ]
    for export in EXPORTS:
        text_rows = _csv(tmp_path / "out" / export.file_name("csv"))
        names = {r["machine_name"] for r in text_rows}
        _, rows = _parquet(tmp_path / "out" / export.file_name("parquet"))
        assert FORMULA_NAME not in names
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in text_rows for v in r.values())
        # the formula-named machine is in every export it has rows in, defused in the CSV, raw in the Parquet
        assert (FORMULA_NAME in {r["machine_name"] for r in rows}) == ("'" + FORMULA_NAME in names)
        if export.detail:
            assert "'" + FORMULA_NAME in names


def test_default_csv_exports_are_the_registers_with_non_pass_rows_only(tmp_path: Path) -> None:
    """Without csv_detail the CSV exports are open_actions.csv and exceptions.csv (no pass rows) and
    coverage_exceptions.csv; the complete detail is in the Parquet files, which hold every finding, pass included."""
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    paths = render_reports(ledger, RUN_ID, tmp_path / "out", settings=Settings(), formats=("csv", "parquet"))
    assert [p.name for p in paths if p.suffix == ".csv"] == ["open_actions.csv", "exceptions.csv",
                                                             "coverage_exceptions.csv"]
    actions = _csv(tmp_path / "out" / "open_actions.csv")
    exceptions = _csv(tmp_path / "out" / "exceptions.csv")
    assert actions and {r["status"] for r in actions} <= {"fail", "warn", "unknown"}
    assert {r["status"] for r in exceptions} <= {"fail", "warn", "waived"}
    # one action per machine and root cause
    assert len({(r["machine_id"], r["root_cause"]) for r in actions}) == len(actions)
    _, findings = _parquet(tmp_path / "out" / "findings.parquet")
    assert "pass" in {r["status"] for r in findings}
    assert not (tmp_path / "out" / "findings.csv").exists()


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "web-01", "", "a=b", None])
def test_sql_formula_guard_matches_neutralise_cell(value: str | None) -> None:
    con = duckdb.connect()
    try:
        (got,) = con.execute(f"select {formula_guard_sql('$1::varchar')}", [value]).fetchone() or (None,)
    finally:
        con.close()
    assert got == neutralise_cell(value)


def test_exports_doc_is_current() -> None:
    text = (ROOT / "docs" / "exports.md").read_text(encoding="utf-8")
    assert text == exports_markdown(), "run: python -m hotpatch_audit.docgen"
    for export in EXPORTS:
        for c in export.columns:
            assert c.meaning and f"| `{c.name}` | {c.type} |" in text
