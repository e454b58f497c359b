"""Owners: the owner rule with a configurable tag, an owner on every finding, --per-owner reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from hotpatch_audit.render import neutralise_cell, owner_slug, render_reports
from tests._ledger_helpers import add_run, insert, new_ledger

SUB = "00000000-0000-0000-0000-000000000001"


def _arc(name: str, rg: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "run_id": "r1", "id": f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines/{name}",
        "name": name, "type": "microsoft.hybridcompute/machines", "subscription_id": SUB, "resource_group": rg,
        "os_type": "windows", "os_name": "Windows Server 2025 Datacenter", "os_version": "10.0.26100.4349",
        "core_count": "8", "tags": json.dumps(tags),
    }


@pytest.mark.parametrize("sub_tags", [{"COSTCENTER": "sub-cc"}, {}])
def test_owner_resolution_order_with_a_custom_case_insensitive_tag(sub_tags: dict[str, str]) -> None:
    con = new_ledger()
    add_run(con, "r1", "2026-11-25 03:00:00", {"owner_tag": "CostCenter"})
    insert(con, "raw.resource_containers", {
        "run_id": "r1", "id": f"/subscriptions/{SUB}", "name": "Prod Subscription",
        "type": "microsoft.resources/subscriptions", "subscription_id": SUB, "tags": json.dumps(sub_tags)})
    insert(con, "raw.resource_containers", {
        "run_id": "r1", "id": f"/subscriptions/{SUB}/resourceGroups/RG-A", "name": "RG-A",
        "type": "microsoft.resources/subscriptions/resourceGroups", "subscription_id": SUB, "resource_group": "RG-A",
        "tags": json.dumps({"costcenter": "rg-cc", "owner": "not-this-tag"})})
    insert(con, "raw.arc_machines", _arc("m-own", "RG-A", {"costCenter": "machine-cc", "owner": "ignored"}))
    insert(con, "raw.arc_machines", _arc("m-rg", "RG-A", {"owner": "ignored"}))
    insert(con, "raw.arc_machines", _arc("m-sub", "RG-B", {}))
    owners = dict(con.execute("select machine_name, owner from core.machines_live where run_id = 'r1'").fetchall())
    fallback = "sub-cc" if sub_tags else "Prod Subscription"
    assert owners == {"m-own": "machine-cc", "m-rg": "rg-cc", "m-sub": fallback}


def test_default_owner_tag_is_owner_and_stored_per_run() -> None:
    from hotpatch_audit.config import Settings

    assert Settings().owner_tag == "owner"
    assert Settings(owner_tag="CostCenter").audit_rules()["owner_tag"] == "CostCenter"
    con = new_ledger()
    add_run(con, "r1", "2026-11-25 03:00:00", {})
    assert con.execute("select owner_tag from core.run_settings").fetchone() == ("owner",)


def test_owner_slug_is_safe_for_hostile_names() -> None:
    for hostile in ("../../etc", "<script>alert(1)</script>", "/", "..", "", "a/b", "a b", "東京"):
        slug = owner_slug(hostile)
        assert slug == Path(slug).name and ".." not in slug and "/" not in slug and "<" not in slug
        assert slug.replace("-", "").isalnum() and slug.isascii()
    assert owner_slug("../../etc").startswith("etc-")
    assert owner_slug("a/b") != owner_slug("a b")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_demo_findings_all_have_an_owner_and_per_owner_reports_split_them(
    demo_history: tuple[Any, list[str]], tmp_path: Path
) -> None:
    import duckdb

    from hotpatch_audit.pipeline import render_stage

    settings, run_ids = demo_history
    run_id = run_ids[-1]
    ledger = settings.path(settings.ledger_path)
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        nulls, total = con.execute(
            "select count(*) filter (where owner is null or owner = ''), count(*) from audit.findings where run_id = ?",
            [run_id]).fetchone() or (0, 0)
        owners = [r[0] for r in con.execute(
            "select distinct owner from core.machines where run_id = ? order by 1", [run_id]).fetchall()]
    finally:
        con.close()
    assert total > 0 and nulls == 0
    s = settings.model_copy(update={"formats": ["html", "csv"], "csv_detail": True})
    out = tmp_path / "reports"
    paths = render_stage(s, run_id, out, per_owner=True)
    assert out / "audit.html" in paths and out / "findings.csv" in paths
    folders = sorted(p.name for p in (out / "owners").iterdir())
    assert folders == sorted(owner_slug(o) for o in owners)
    fleet = _csv_rows(out / "findings.csv")
    split = 0
    for owner in owners:
        folder = out / "owners" / owner_slug(owner)
        assert folder.resolve().is_relative_to((out / "owners").resolve())
        rows = _csv_rows(folder / "findings.csv")
        cell = neutralise_cell(owner)  # the CSV defuses formula-like owners
        assert {r["owner"] for r in rows} <= {cell}
        assert len(rows) == sum(1 for r in fleet if r["owner"] == cell)
        split += len(rows)
        html = (folder / "audit.html").read_text(encoding="utf-8")
        # the page's one script is the report's own (report.js); owner text never adds one
        assert "(this owner's machines only)" in html and html.count("<script") == 1 and "<script>alert" not in html
    assert split == len(fleet) == total


def test_hostile_owner_is_escaped_and_scopes_to_nothing(demo_history: tuple[Any, list[str]], tmp_path: Path) -> None:
    settings, run_ids = demo_history
    hostile = "<script>alert('x')</script>../../etc"
    paths = render_reports(settings.path(settings.ledger_path), run_ids[-1], tmp_path / owner_slug(hostile),
                           settings=settings, formats=("html", "csv"), owner=hostile)
    html = paths[0].read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
    assert _csv_rows(paths[1]) == []
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in paths)
