"""Cost and value: the price table is validated data, and each month is priced at the price in force."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hotpatch_audit.errors import ConfigError
from hotpatch_audit.prices import PRICE_COLUMNS, PRICES_FILE, read_prices
from tests._ledger_helpers import ROOT, add_run, insert, new_ledger, store_core

HEADER = ",".join(PRICE_COLUMNS)


def test_shipped_price_table_is_valid_and_dated() -> None:
    rows = read_prices(ROOT / PRICES_FILE)
    arc = sorted((r for r in rows if r.product == "arc_hotpatch"), key=lambda r: r.valid_from)
    assert [(str(r.valid_from), str(r.valid_to), r.price) for r in arc] == [
        ("2024-01-01", "2025-06-30", Decimal("0")),
        ("2025-07-01", "2026-05-18", Decimal("1.50")),
        ("2026-05-19", "None", Decimal("0")),
    ]
    assert "July 16" in arc[1].source and "July 1 " in arc[1].source
    assert all(r.price == 0 for r in rows if r.product == "azure_edition")
    assert all(r.source for r in rows)


@pytest.mark.parametrize(("body", "message"), [
    ("arc_hotpatch,ws2025,1.5,2025-07-01,2026-05-18,false,s,,\narc_hotpatch,ws2025,0,2026-05-18,,false,s,,",
     "overlaps"),
    ("arc_hotpatch,ws2025,0,2026-05-19,,false,s,,\narc_hotpatch,ws2025,1.5,2025-07-01,,false,s,,", "overlaps"),
    ("arc_hotpatch,ws2025,1.5,2025-07-01,,true,,,", "verified row needs a source"),
    ("arc_hotpatch,ws2025,-1,2025-07-01,,false,s,,", ">= 0"),
    ("arc_hotpatch,ws2025,1.5,2025-07-01,2025-06-01,false,s,,", "before valid_from"),
    ("intune,ws2025,1.5,2025-07-01,,false,s,,", "product"),
    ("arc_hotpatch,ws2025,1.5,July 2025,,false,s,,", "valid_from"),
])
def test_price_table_validation_rejects(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"{HEADER}\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_prices(path)


def test_same_product_other_track_may_share_dates(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"{HEADER}\nazure_edition,ws2025,0,2024-01-01,,true,s,,\n"
                    "azure_edition,ws2022-azure-edition,0,2024-01-01,,true,s,,\n", encoding="utf-8")
    assert len(read_prices(path)) == 2


MONTHS = [f"{y}-{m:02d}" for y, m in [(2025, 6), (2025, 7), (2025, 8), *((2025, m) for m in range(9, 13)),
                                       *((2026, m) for m in range(1, 7))]]


def test_cost_by_month_uses_the_price_in_force_each_month() -> None:
    con = new_ledger()
    add_run(con, "r1", "2026-06-25 03:00:00", {"period_months": "13", "downtime_minutes_per_reboot": "20"})
    sub = "00000000-0000-0000-0000-000000000001"
    machines = {"arc-8": "8", "arc-nocores": None}
    for name, cores in machines.items():
        insert(con, "raw.arc_machines", {
            "run_id": "r1", "id": f"/subscriptions/{sub}/resourcegroups/rg/providers/microsoft.hybridcompute/machines/{name}",
            "name": name, "subscription_id": sub, "resource_group": "rg", "os_type": "windows",
            "os_version": "10.0.26100.4349", "core_count": cores, "tags": json.dumps({"owner": "ops"})})
    insert(con, "raw.azure_vms", {
        "run_id": "r1", "id": f"/subscriptions/{sub}/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm",
        "name": "vm", "subscription_id": sub, "resource_group": "rg", "os_type": "Windows"})
    store_core(con, "r1")
    for month in MONTHS:
        for name, kind in [("arc-8", "arc"), ("arc-nocores", "arc"), ("vm", "azure_vm")]:
            provider = "microsoft.hybridcompute/machines" if kind == "arc" else "microsoft.compute/virtualmachines"
            insert(con, "audit.machine_months", {
                "run_id": "r1", "machine_id": f"/subscriptions/{sub}/resourcegroups/rg/providers/{provider}/{name}",
                "machine_name": name, "machine_kind": kind, "owner": "ops", "track": "ws2025", "month": month,
                "kind": "hotpatch", "outcome": "avoided" if month != "2025-09" else "expected_reboot",
                "reboot_count": 0, "enrolled_at_start": name != "vm" or month >= "2026-01"})
    rows = {r[0]: r[1:] for r in con.execute(
        "select month, arc_price_per_core_usd, machines_enrolled, cores_billed, machines_without_cores, "
        "licence_cost_usd, reboots_avoided, downtime_avoided_minutes, cost_per_avoided_reboot_usd "
        "from report.reboot_cost_by_month where run_id = 'r1' order by month").fetchall()}
    assert list(rows) == MONTHS  # every month of the 13-month period
    assert rows["2025-06"] == (Decimal("0"), 2, 0, 0, Decimal("0.00"), 3, 60, Decimal("0.00"))  # preview: free
    assert rows["2025-07"][1:5] == (2, 8, 1, Decimal("12.00"))  # GA: 8 cores x $1.50, one machine without cores
    assert rows["2025-08"] == (Decimal("1.5"), 2, 8, 1, Decimal("12.00"), 3, 60, Decimal("4.00"))
    assert rows["2025-09"][5:] == (0, 0, None)  # no reboot avoided: no cost per avoided reboot
    assert rows["2026-01"][1:5] == (3, 8, 1, Decimal("12.00"))  # the Azure Edition VM is free
    assert rows["2026-05"][4] == Decimal("12.00")  # price on 1 May 2026: $1.50, not prorated
    assert rows["2026-06"] == (Decimal("0"), 3, 0, 0, Decimal("0.00"), 3, 60, Decimal("0.00"))  # free since 19 May
    costs = {r[4] for r in rows.values()}
    assert costs == {Decimal("0.00"), Decimal("12.00")}  # never one constant across the period


def test_cost_by_month_counts_logical_cores_when_set() -> None:
    con = new_ledger()
    add_run(con, "r1", "2025-08-25 03:00:00", {"period_months": "1", "billing_cores": "logical"})
    mid = "/subscriptions/s/resourcegroups/rg/providers/microsoft.hybridcompute/machines/a"
    insert(con, "raw.arc_machines", {"run_id": "r1", "id": mid, "name": "a", "os_type": "windows",
                                     "core_count": "8", "logical_core_count": "16"})
    store_core(con, "r1")
    insert(con, "audit.machine_months", {"run_id": "r1", "machine_id": mid, "machine_name": "a", "machine_kind": "arc",
                                         "owner": "o", "track": "ws2025", "month": "2025-08", "kind": "hotpatch",
                                         "outcome": "avoided", "reboot_count": 0, "enrolled_at_start": True})
    assert con.execute("select cores_billed, licence_cost_usd from report.reboot_cost_by_month").fetchone() == (
        16, Decimal("24.00"))
