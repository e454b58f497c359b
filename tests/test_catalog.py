"""The query catalog: every KQL file is well-formed, runs under duckdb-kql, and feeds its raw table."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import duckdb_kql
import pytest

from hotpatch_audit import audit_meta
from hotpatch_audit.analyze import apply_sql
from hotpatch_audit.catalog import RETIRED_QUERIES, QuerySpec, header, load_queries, validate_query
from hotpatch_audit.demo.argtables import create_arg_tables
from hotpatch_audit.errors import QueryError

ROOT = Path(__file__).resolve().parents[1]
SPECS = load_queries(ROOT)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_header_names_the_raw_table_it_loads(spec: QuerySpec) -> None:
    head = header(spec.text)
    assert head["NAME"] == spec.name
    assert head["LOADS"].split()[0] == f"raw.{spec.name}"
    assert head["OUTPUT"].startswith("one row per")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_kql_runs_in_duckdb_kql_and_matches_raw_table(spec: QuerySpec, tmp_path: Path) -> None:
    """The projection equals the raw table's columns, in order (what Resource Graph returns is what we store)."""
    arg = duckdb_kql.connect()
    create_arg_tables(arg)
    rel = duckdb_kql.kql(arg, spec.text)
    kql_columns = [d[0] for d in rel.description]
    assert kql_columns[0] == "id"

    ledger = duckdb.connect(str(tmp_path / "l.duckdb"))
    apply_sql(ledger, ROOT)
    raw = [r[0] for r in ledger.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='raw' AND table_name=?"
        " ORDER BY ordinal_position", [spec.name]).fetchall()]
    assert raw == ["run_id", *kql_columns]


def test_every_raw_table_has_a_query(tmp_path: Path) -> None:
    ledger = duckdb.connect(str(tmp_path / "l.duckdb"))
    apply_sql(ledger, ROOT)
    tables = {r[0] for r in ledger.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='raw'").fetchall()}
    # guest_facts is filled at load (parsed Machine Configuration reports) and by import-facts, not by a KQL query;
    # a retired query's table stays for the older runs
    assert tables - {"guest_facts"} - RETIRED_QUERIES == {s.name for s in SPECS}
    assert not RETIRED_QUERIES & {s.name for s in SPECS}


@pytest.mark.parametrize("bad, message", [
    ("resources | project id, name | take 10 | order by id asc", "take/limit"),
    ("resources | project name, id | order by id asc", "start with id"),
    ("resources | project id, name", "order by id"),
])
def test_paging_breaking_shapes_are_refused(bad: str, message: str) -> None:
    text = "// Azure Resource Graph query\n// NAME: x\n// OUTPUT: one row per x\n// LOADS: raw.x\n" + bad
    spec = QuerySpec("x", Path("x.kql"), text, "0")
    with pytest.raises(QueryError, match=message):
        validate_query(spec)


def test_missing_header_is_refused() -> None:
    spec = QuerySpec("x", Path("x.kql"), "resources | project id | order by id asc", "0")
    with pytest.raises(QueryError, match="header lacks"):
        validate_query(spec)


AUDITS = [a.name for a in audit_meta.load().audits]


def _audit_sql_stems() -> set[str]:
    """Stems of the audit views that emit findings (files are numbered for order: 40_reboot_avoidance.sql)."""
    stems = set()
    for path in (ROOT / "sql" / "audit").glob("*.sql"):
        stem = path.stem.split("_", 1)[1]
        if f"create or replace view audit.{stem}" in path.read_text(encoding="utf-8").lower() and stem in AUDITS:
            stems.add(stem)
    return stems


def test_the_four_audits_of_the_spec_have_metadata() -> None:
    assert AUDITS == ["reboot_avoidance", "missed_hotpatches", "wsus_misconfigurations", "vbs_blockers"]


@pytest.mark.parametrize("stem", AUDITS)
def test_each_audit_has_view_metadata_and_cases(stem: str) -> None:
    """An audit is its SQL view and the metadata file beside it (same stem), proven by cases; the section
    template is optional (sections/_default.html.j2 shows an audit without one)."""
    assert stem in _audit_sql_stems()
    meta = next(a for a in audit_meta.load().audits if a.name == stem)
    assert meta.path.with_suffix(".sql").read_text(encoding="utf-8").lower().count(f"create or replace view audit.{stem}")
    assert list((ROOT / "tests" / "cases" / stem).glob("*.yaml"))


def test_no_orphan_section_template() -> None:
    templates = {p.name.removesuffix(".html.j2") for p in (ROOT / "reports/templates/sections").glob("*.html.j2")}
    assert templates - {"_default"} <= set(AUDITS)
    assert "_default" in templates


def test_guest_configuration_query_fetches_only_the_hotpatch_audit_assignment() -> None:
    """A machine's other Machine Configuration assignments (security baselines, policy packages) are never paged
    through: the ledger reads only hotpatch-audit-guest, matched by name or by its configuration's name."""
    spec = next(s for s in SPECS if s.name == "guest_configuration_reports")
    arg = duckdb_kql.connect()
    create_arg_tables(arg)
    machine = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/srv-01"
    rows = [("hotpatch-audit-guest", "hotpatch-audit-guest"), ("AzureWindowsBaseline", "AzureWindowsBaseline"),
            ("renamed-assignment", "HotPatch-Audit-Guest"), ("WindowsDefenderExploitGuard", None)]
    for name, configuration in rows:
        props = {"complianceStatus": "Compliant"} | ({"guestConfiguration": {"name": configuration}}
                                                        if configuration else {})
        arg.execute("insert into guestconfigurationresources (id, name, type, properties) values (?, ?, ?, ?)",
                    [f"{machine}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}", name,
                     "microsoft.guestconfiguration/guestconfigurationassignments", json.dumps(props)])
    got = sorted(r[0] for r in duckdb_kql.kql(arg, spec.text).fetchall())
    assert [g.rsplit("/", 1)[1] for g in got] == ["hotpatch-audit-guest", "renamed-assignment"]
