"""The demo fleet: Resource Graph shapes, determinism, retention, every audited situation, KQL over it."""
# ruff: noqa: E501  (SQL literals read best on one line)

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import duckdb_kql
import pytest

from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.demo.argtables import ARG_TABLES
from hotpatch_audit.demo.fleet import generate_fleet

NOV = datetime(
    2025, 11, 20, 6, 0, tzinfo=UTC
)  # KB5070881/KB5070893 runs and November off-track LCUs in range
JAN = datetime(2026, 1, 28, 6, 0, tzinfo=UTC)  # a baseline month
ARC = "microsoft.hybridcompute/machines"
VM = "microsoft.compute/virtualmachines"
PSJ = "$.osProfile.windowsConfiguration.patchSettings"


def _fleet(as_of: datetime, machines: int = 500, seed: int = 20251014) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    generate_fleet(con, as_of=as_of, machines=machines, seed=seed)
    return con


@pytest.fixture(scope="module")
def nov() -> duckdb.DuckDBPyConnection:
    return _fleet(NOV)


@pytest.fixture(scope="module")
def jan() -> duckdb.DuckDBPyConnection:
    return _fleet(JAN)


def count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def hotpatch_kbs() -> set[str]:
    with (PROJECT_ROOT / "data" / "release_calendar.csv").open(newline="") as fh:
        return {r["kb"].removeprefix("KB") for r in csv.DictReader(fh) if r["kind"] == "hotpatch" and r["kb"]}


# --- shapes -----------------------------------------------------------------------------------------


def test_returns_counts_per_table(nov: duckdb.DuckDBPyConnection) -> None:
    con = duckdb.connect()
    counts = generate_fleet(con, as_of=NOV, machines=50)
    assert set(counts) == set(ARG_TABLES)
    for table, n in counts.items():
        assert count(con, f"select count(*) from {table}") == n
    assert count(con, f"select count(*) from resources where type in ('{ARC}', '{VM}')") == 50


def test_types_lower_case_and_ids_arm_cased(nov: duckdb.DuckDBPyConnection) -> None:
    for table in ARG_TABLES:
        assert count(nov, f"select count(*) from {table} where type <> lower(type)") == 0
    assert (
        count(
            nov,
            f"select count(*) from resources where type = '{ARC}' and id not like '%/providers/Microsoft.HybridCompute/machines/%'",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) from resources where type = '{VM}' and id not like '%/resourceGroups/%/providers/Microsoft.Compute/virtualMachines/%'",
        )
        == 0
    )
    assert count(nov, "select count(*) from resources where json_type(properties) <> 'OBJECT'") == 0


def test_arc_rows_carry_patch_settings_and_licence(nov: duckdb.DuckDBPyConnection) -> None:
    windows_arc = (
        f"from resources where type = '{ARC}' and json_extract_string(properties, '$.osType') = 'windows'"
    )
    assert (
        count(
            nov,
            f"select count(*) {windows_arc} and json_extract(properties, '$.osProfile.windowsConfiguration.patchSettings.patchMode') is null",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) {windows_arc} and json_extract_string(properties, '$.osVersion') not like '10.0.%.%'",
        )
        == 0
    )
    features = f"""select count(*) {windows_arc}
        and json_extract_string(properties, '$.osProfile.windowsConfiguration.patchSettings.enableHotpatching') = 'true'
        and json_array_length(json_extract(properties, '$.licenseProfile.productProfile.productFeatures')) = 0"""
    assert count(nov, features) == 0
    detected = f"select count(*) from resources where type = '{ARC}' and json_type(json_extract(properties, '$.detectedProperties.coreCount')) <> 'VARCHAR'"
    assert count(nov, detected) == 0


def test_installation_rows_documented_keys_and_values(nov: duckdb.DuckDBPyConnection) -> None:
    runs = "from patchinstallationresources where type like '%/patchinstallationresults'"
    keys = (
        "status",
        "rebootStatus",
        "maintenanceWindowExceeded",
        "installedPatchCount",
        "failedPatchCount",
        "pendingPatchCount",
        "excludedPatchCount",
        "notSelectedPatchCount",
        "installationActivityId",
        "patchServiceUsed",
        "startDateTime",
        "lastModifiedDateTime",
        "startedBy",
        "osType",
        "errorDetails",
        "maintenanceRunId",
    )
    for key in keys:
        assert count(nov, f"select count(*) {runs} and not json_exists(properties, '$.{key}')") == 0, key
    assert count(nov, f"select count(*) {runs} and id not like '%/patchInstallationResults/' || name") == 0
    assert (
        count(
            nov,
            f"""select count(*) {runs} and json_extract_string(properties, '$.rebootStatus') not in
                           ('NotNeeded', 'Required', 'Started', 'Failed', 'Completed', 'Unknown')""",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"""select count(*) {runs} and json_extract_string(properties, '$.status') not in
                           ('NotStarted', 'InProgress', 'Failed', 'Succeeded', 'CompletedWithWarnings', 'Unknown')""",
        )
        == 0
    )
    patches = "from patchinstallationresources where type like '%/softwarepatches'"
    assert count(nov, f"select count(*) {patches}") > 0
    assert (
        count(
            nov, f"select count(*) {patches} and id not like '%/patchInstallationResults/%/softwarePatches/%'"
        )
        == 0
    )
    assert (
        count(
            nov,
            f"""select count(*) {patches} and json_extract_string(properties, '$.installationState') not in
                           ('Installed', 'Failed', 'Pending', 'NotSelected', 'Excluded')""",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) {patches} and not regexp_full_match(json_extract_string(properties, '$.kbId'), '[0-9]+')",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) {patches} and json_type(json_extract(properties, '$.classifications')) <> 'ARRAY'",
        )
        == 0
    )


def test_assessment_rows(nov: duckdb.DuckDBPyConnection) -> None:
    summaries = "from patchassessmentresources where type like '%/patchassessmentresults'"
    assert count(nov, f"select count(*) {summaries} and id not like '%/patchAssessmentResults/latest'") == 0
    assert (
        count(
            nov,
            f"select count(*) {summaries} and json_extract(properties, '$.availablePatchCountByClassification.security') is null",
        )
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) {summaries} and json_extract_string(properties, '$.osType') = 'Windows' and json_extract_string(properties, '$.patchServiceUsed') <> 'WU_WSUS'",
        )
        == 0
    )
    patches = "from patchassessmentresources where type like '%/softwarepatches'"
    assert (
        count(
            nov,
            f"select count(*) {patches} and id not like '%/patchAssessmentResults/latest/softwarePatches/%'",
        )
        == 0
    )


def test_guest_configuration_rows(nov: duckdb.DuckDBPyConnection) -> None:
    gc = "from guestconfigurationresources"
    assert count(nov, f"select count(*) {gc}") > 0
    assert (
        count(
            nov,
            f"""select count(*) {gc} where name <> 'hotpatch-audit-guest'
        or id not like '%/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/hotpatch-audit-guest'
        or json_extract_string(properties, '$.guestConfiguration.name') <> 'hotpatch-audit-guest'
        or json_extract_string(properties, '$.lastComplianceStatusChecked') is null""",
        )
        == 0
    )
    # every report has the four documented resources with key=value phrases
    assert (
        count(
            nov,
            f"select count(*) {gc} where json_array_length(json_extract(properties, '$.latestAssignmentReport.resources')) <> 4",
        )
        == 0
    )


# --- determinism and retention -------------------------------------------------------------------


def _digest(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        con.execute(f"select md5(string_agg(to_json(t)::varchar, '\n' order by id)) from {t} t").fetchone()[0]  # type: ignore[index]
        for t in ARG_TABLES
    ]


def test_deterministic() -> None:
    a, b = _fleet(NOV, machines=120), _fleet(NOV, machines=120)
    assert _digest(a) == _digest(b)
    assert _digest(_fleet(NOV, machines=120, seed=7)) != _digest(a)


def test_adding_machines_keeps_existing_ones(nov: duckdb.DuckDBPyConnection) -> None:
    small = _fleet(NOV, machines=60)
    q = "select to_json(r)::varchar from resources r where id in (select id from resources where type in ('{ARC}', '{VM}')) order by id"
    ids = [
        r[0] for r in small.execute(f"select id from resources where type in ('{ARC}', '{VM}')").fetchall()
    ]
    sel = "select to_json(r)::varchar from resources r where id in (select unnest(?)) order by id"
    assert small.execute(sel, [ids]).fetchall() == nov.execute(sel, [ids]).fetchall()
    del q


def test_runs_stable_across_as_of() -> None:
    """A run seen by two as-of dates is the same row (same GUID, same values)."""
    a, b = _fleet(datetime(2025, 11, 20, tzinfo=UTC), 80), _fleet(datetime(2025, 12, 1, tzinfo=UTC), 80)
    q = """select id, properties::varchar from patchinstallationresources
           where json_extract_string(properties, '$.startDateTime') between '2025-11-02' and '2025-11-19' order by id"""
    rows_a = a.execute(q).fetchall()
    assert rows_a and rows_a == b.execute(q).fetchall()


def test_retention(nov: duckdb.DuckDBPyConnection) -> None:
    lo = (NOV - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hi = NOV.strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = "from patchinstallationresources where type like '%/patchinstallationresults'"
    assert (
        count(nov, f"select count(*) {runs} and json_extract_string(properties, '$.startDateTime') < '{lo}'")
        == 0
    )
    assert (
        count(
            nov,
            f"select count(*) {runs} and json_extract_string(properties, '$.lastModifiedDateTime') > '{hi}'",
        )
        == 0
    )
    per_machine = """select max(n) from (select split_part(id, '/patchAssessmentResults', 1) m, count(*) n
                     from patchassessmentresources where type like '%/patchassessmentresults' group by m)"""
    assert count(nov, per_machine) == 1
    # assessments older than 40 days are gone
    assert (
        count(
            nov,
            f"""select count(*) from patchassessmentresources where type like '%/patchassessmentresults'
        and json_extract_string(properties, '$.lastModifiedDateTime') < '{(NOV - timedelta(days=41)).strftime("%Y-%m-%d")}'""",
        )
        == 0
    )


# --- situations -------------------------------------------------------------------------------------


def _feature(status: str | None) -> str:
    path = "json_extract(properties, '$.licenseProfile.productProfile.productFeatures')"
    if status is None:
        return f"coalesce(json_array_length({path}), 0) = 0"
    return f'{path}::varchar like \'%"name":"Hotpatch","subscriptionStatus":"{status}"%\''


def _os_status(status: str | None) -> str:
    path = "json_extract_string(properties, '$.osProfile.windowsConfiguration.patchSettings.status.hotpatchEnablementStatus')"
    return f"{path} is null" if status is None else f"{path} = '{status}'"


ARC_SITUATIONS = {
    "enabled": f"{_feature('Enabled')} and {_os_status('Enabled')}",
    "os_disabled": f"{_feature('Enabled')} and {_os_status('Disabled')}",
    "os_status_missing": f"{_feature('Enabled')} and {_os_status(None)}",
    "pending_evaluation": f"{_feature('Enabled')} and {_os_status('PendingEvaluation')}",
    "action_required": f"{_feature('Enabled')} and {_os_status('ActionRequired')} and "
    "json_extract_string(properties, '$.osProfile.windowsConfiguration.patchSettings.status.error.code') is not null",
    "os_unknown": f"{_feature('Enabled')} and {_os_status('Unknown')}",
    "canceled": _feature("Disabled"),
    "enabling": _feature("Enabling"),
    "disabling": _feature("Disabling"),
    "failed": _feature("Failed"),
    "not_enrolled_ws2025": f"{_feature(None)} and json_extract_string(properties, '$.osVersion') like '10.0.26100.%'",
    "not_available_ws2022": "json_extract_string(properties, '$.osVersion') like '10.0.20348.%'",
    "not_available_ws2019": "json_extract_string(properties, '$.osVersion') like '10.0.17763.%'",
    "linux": "json_extract_string(properties, '$.osType') = 'linux'",
    "below_1742": "json_extract_string(properties, '$.osVersion') like '10.0.26100.%' and "
    "cast(split_part(json_extract_string(properties, '$.osVersion'), '.', 4) as int) < 1742",
    "connected": "json_extract_string(properties, '$.status') = 'Connected'",
    "disconnected": "json_extract_string(properties, '$.status') = 'Disconnected'",
    "expired": "json_extract_string(properties, '$.status') = 'Expired'",
    "agent_error": "json_extract_string(properties, '$.status') = 'Error'",
    "uefi": "json_extract_string(properties, '$.firmwareProfile.type') = 'UEFI'",
    "bios": "json_extract_string(properties, '$.firmwareProfile.type') = 'BIOS'",
    "no_firmware_profile": "json_extract(properties, '$.firmwareProfile') is null",
    "hyperv_guest": "json_extract_string(properties, '$.detectedProperties.model') = 'Virtual Machine'",
    "vmware": "json_extract_string(properties, '$.detectedProperties.manufacturer') = 'VMware, Inc.'",
    "physical": "json_extract_string(properties, '$.detectedProperties.manufacturer') in ('Dell Inc.', 'HPE')",
    "no_core_count": "json_extract(properties, '$.detectedProperties.coreCount') is null",
    "mixed_case_edition": "json_extract_string(properties, '$.osEdition') <> lower(json_extract_string(properties, '$.osEdition'))",
    "hostile_display_name": "json_extract_string(properties, '$.displayName') like '%<%' or json_extract_string(properties, '$.displayName') like '=%'",
}


@pytest.mark.parametrize("situation", sorted(ARC_SITUATIONS))
def test_arc_situation_present(nov: duckdb.DuckDBPyConnection, situation: str) -> None:
    assert (
        count(nov, f"select count(*) from resources where type = '{ARC}' and ({ARC_SITUATIONS[situation]})")
        > 0
    )


VM_SITUATIONS = {
    "azure_edition_hotpatch_on": f"json_extract_string(properties, '$.storageProfile.imageReference.sku') like '%azure-edition%' "
    f"and json_extract_string(properties, '{PSJ}.enableHotpatching') = 'true'",
    "azure_edition_hotpatch_off": f"json_extract_string(properties, '$.storageProfile.imageReference.sku') like '%azure-edition%' "
    f"and json_extract_string(properties, '{PSJ}.enableHotpatching') = 'false'",
    "ws2022_hotpatch_sku": "json_extract_string(properties, '$.storageProfile.imageReference.sku') = '2022-datacenter-azure-edition-hotpatch'",
    "automatic_by_os": f"json_extract_string(properties, '{PSJ}.patchMode') = 'AutomaticByOS'",
    "manual": f"json_extract_string(properties, '{PSJ}.patchMode') = 'Manual'",
    "non_azure_edition": "json_extract_string(properties, '$.storageProfile.imageReference.sku') in ('2022-datacenter', '2019-datacenter', "
    "'2022-datacenter-g2', '2019-datacenter-gensecond')",
    "gallery_image": "json_extract_string(properties, '$.storageProfile.imageReference.id') like '%/galleries/%'",
    "linux": "json_extract_string(properties, '$.storageProfile.osDisk.osType') = 'Linux'",
    "no_extended_instance_view": "json_extract(properties, '$.extended') is null",
    "no_tags": "tags is null",
    "hostile_tag": "json_extract_string(tags, '$.owner') like '%<script>%' or json_extract_string(tags, '$.owner') like '=%' or json_extract_string(tags, '$.owner') like '+%'",
    "capital_owner_tag": "json_extract_string(tags, '$.Owner') is not null",
}


@pytest.mark.parametrize("situation", sorted(VM_SITUATIONS))
def test_vm_situation_present(nov: duckdb.DuckDBPyConnection, situation: str) -> None:
    assert (
        count(nov, f"select count(*) from resources where type = '{VM}' and ({VM_SITUATIONS[situation]})") > 0
    )


def _phrase(key: str, value: str) -> str:
    return f"json_extract(properties, '$.latestAssignmentReport.resources')::varchar similar to '.*[\" ]{key}={value}[ \"].*'"


GUEST_SITUATIONS = {
    "vbs0": _phrase("VirtualizationBasedSecurityStatus", "0"),
    "vbs1": _phrase("VirtualizationBasedSecurityStatus", "1"),
    "vbs2": _phrase("VirtualizationBasedSecurityStatus", "2"),
    "hyperv_role": _phrase("HyperVRole", "1") + " and " + _phrase("VirtualizationBasedSecurityStatus", "1"),
    "wsl2": _phrase("Wsl2", "1") + " and " + _phrase("VirtualizationBasedSecurityStatus", "1"),
    "bios": _phrase("FirmwareType", "BIOS"),
    "gen1": _phrase("HyperVGeneration", "1"),
    "hvci_missing": _phrase("VirtualizationBasedSecurityStatus", "2")
    + " and "
    + _phrase("SecurityServicesConfigured", "1"),
    "wsus_confirmed": _phrase("UseWUServer", "1")
    + " and not "
    + _phrase("SetPolicyDrivenUpdateSourceForQualityUpdates", "0"),
    "wsus_policy_1": _phrase("SetPolicyDrivenUpdateSourceForQualityUpdates", "1")
    + " and "
    + _phrase("UseWUServer", "1"),
    "wsus_policy_empty": _phrase("SetPolicyDrivenUpdateSourceForQualityUpdates", "")
    + " and "
    + _phrase("UseWUServer", "1"),
    "wsus_no_internet": _phrase("DoNotConnectToWindowsUpdateInternetLocations", "1"),
    "stale_usewuserver": _phrase("UseWUServer", "1")
    + " and "
    + _phrase("SetPolicyDrivenUpdateSourceForQualityUpdates", "0"),
    "old_report": f"json_extract_string(properties, '$.lastComplianceStatusChecked') < '{(NOV - timedelta(days=30)).strftime('%Y-%m-%d')}'",
}


@pytest.mark.parametrize("situation", sorted(GUEST_SITUATIONS))
def test_guest_situation_present(nov: duckdb.DuckDBPyConnection, situation: str) -> None:
    assert (
        count(nov, f"select count(*) from guestconfigurationresources where {GUEST_SITUATIONS[situation]}")
        > 0
    )


def test_machines_without_guest_facts(nov: duckdb.DuckDBPyConnection) -> None:
    assert (
        count(
            nov,
            f"""select count(*) from resources r where type = '{ARC}' and json_extract_string(properties, '$.osType') = 'windows'
        and not exists (select 1 from guestconfigurationresources g where starts_with(g.id, r.id || '/'))""",
        )
        > 0
    )


RUN_PATCH = """from patchinstallationresources p
    join patchinstallationresources r on r.id = split_part(p.id, '/softwarePatches/', 1)
    where p.type like '%/softwarepatches'"""
# installation runs (r) that installed nothing but Defender definition updates
DEFINITION_ONLY_RUNS = """from patchinstallationresources r where r.type like '%/patchinstallationresults'
        and not exists (select 1 from patchinstallationresources p where starts_with(p.id, r.id || '/softwarePatches/')
                        and json_extract(p.properties, '$.classifications')::varchar not like '%Definition%')"""


def test_install_situations_november(nov: duckdb.DuckDBPyConnection) -> None:
    kbs = ", ".join(f"'{k}'" for k in hotpatch_kbs())
    hp_no_reboot = f"""select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.kbId') in ({kbs})
        and json_extract_string(p.properties, '$.installationState') = 'Installed' and json_extract_string(r.properties, '$.rebootStatus') = 'NotNeeded'"""
    assert count(nov, hp_no_reboot) > 0
    dotnet = f"""select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.patchName') like '%.NET Framework%'
        and json_extract_string(r.properties, '$.rebootStatus') in ('Completed', 'Required')"""
    assert count(nov, dotnet) > 0
    standard_lcu_reboot = f"""select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.patchName') like '2025-11 Cumulative Update%'
        and json_extract_string(r.properties, '$.rebootStatus') = 'Completed'"""
    assert count(nov, standard_lcu_reboot) > 0
    for kb in ("5070881", "5070893"):
        assert (
            count(
                nov, f"select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.kbId') = '{kb}'"
            )
            > 0
        ), kb
    assert count(nov, f"select count(*) {DEFINITION_ONLY_RUNS}") > 0
    failed = "select count(*) from patchinstallationresources where type like '%/patchinstallationresults' and json_extract_string(properties, '$.status') = 'Failed'"
    assert count(nov, failed) > 0
    excluded = f"select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.installationState') = 'Excluded'"
    assert count(nov, excluded) > 0
    # hotpatch missed: listed as available in the latest assessment, rebootBehavior NeverReboots
    missing_hp = f"""select count(*) from patchassessmentresources where type like '%/softwarepatches'
        and json_extract_string(properties, '$.kbId') in ({kbs}) and json_extract_string(properties, '$.rebootBehavior') = 'NeverReboots'"""
    assert count(nov, missing_hp) > 0
    # the quarter's baseline (KB5066835) still listed as available: baseline missed
    assert (
        count(
            nov,
            "select count(*) from patchassessmentresources where json_extract_string(properties, '$.kbId') = '5066835'",
        )
        > 0
    )


def test_definition_only_runs_come_from_a_schedule_that_takes_definitions(nov: duckdb.DuckDBPyConnection) -> None:
    """Microsoft: automatic VM guest patching installs only Critical and Security updates, never Definition
    updates, and machines patched by the OS, by hand or by the image default record no Update Manager runs. So a
    Defender-only run needs a maintenance configuration assigned to the machine whose classifications include
    Definition, on a machine Update Manager patches."""
    machine = "lower(split_part(r.id, '/patchInstallationResults/', 1))"
    takes_definitions = f"""exists (select 1 from maintenanceresources a join resources c
            on lower(json_extract_string(a.properties, '$.maintenanceConfigurationId')) = lower(c.id)
        where a.type = 'microsoft.maintenance/configurationassignments'
          and lower(json_extract_string(a.properties, '$.resourceId')) = {machine}
          and json_extract(c.properties, '$.installPatches.windowsParameters.classificationsToInclude')::varchar
              like '%"Definition"%')"""
    patched_elsewhere = f"""exists (select 1 from resources m where lower(m.id) = {machine}
        and json_extract_string(m.properties, '{PSJ}.patchMode') in ('AutomaticByOS', 'Manual', 'ImageDefault'))"""
    assert count(nov, f"select count(*) {DEFINITION_ONLY_RUNS}") > 0  # the situation is still in the fleet
    assert count(nov, f"select count(*) {DEFINITION_ONLY_RUNS} and not {takes_definitions}") == 0
    assert count(nov, f"select count(*) {DEFINITION_ONLY_RUNS} and {patched_elsewhere}") == 0


def test_install_situations_baseline_month(jan: duckdb.DuckDBPyConnection) -> None:
    baseline = f"""select count(*) {RUN_PATCH} and json_extract_string(p.properties, '$.kbId') = '5073379'
        and json_extract_string(r.properties, '$.rebootStatus') = 'STATUS'"""
    assert count(jan, baseline.replace("STATUS", "Completed")) > 0
    assert count(jan, baseline.replace("STATUS", "Required")) > 0


def test_assessment_situations(nov: duckdb.DuckDBPyConnection) -> None:
    summaries = "from patchassessmentresources where type like '%/patchassessmentresults'"
    fresh = (NOV - timedelta(days=2)).strftime("%Y-%m-%d")
    stale = (NOV - timedelta(days=8)).strftime("%Y-%m-%d")
    assert (
        count(
            nov,
            f"select count(*) {summaries} and json_extract_string(properties, '$.lastModifiedDateTime') >= '{fresh}'",
        )
        > 0
    )
    assert (
        count(
            nov,
            f"select count(*) {summaries} and json_extract_string(properties, '$.lastModifiedDateTime') < '{stale}'",
        )
        > 0
    )
    never = f"""select count(*) from resources r where type in ('{ARC}', '{VM}') and not exists
        (select 1 from patchassessmentresources a where starts_with(a.id, r.id || '/patchAssessmentResults/'))"""
    assert count(nov, never) > 0


def test_maintenance(nov: duckdb.DuckDBPyConnection) -> None:
    configs = "from resources where type = 'microsoft.maintenance/maintenanceconfigurations'"
    assert count(nov, f"select count(*) {configs}") >= 4
    assert (
        count(
            nov,
            f"select count(*) {configs} and json_extract_string(properties, '$.installPatches.windowsParameters.excludeKbsRequiringReboot') = 'true'",
        )
        > 0
    )
    assert (
        count(
            nov,
            f"select count(*) {configs} and not regexp_full_match(json_extract_string(properties, '$.maintenanceWindow.startDateTime'), '\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d')",
        )
        == 0
    )
    assigned = """select count(*) from maintenanceresources a join resources c
        on lower(json_extract_string(a.properties, '$.maintenanceConfigurationId')) = lower(c.id)
        where a.type = 'microsoft.maintenance/configurationassignments'"""
    assert count(nov, assigned) > 0
    assert (
        count(
            nov,
            "select count(*) from maintenanceresources where json_extract(properties, '$.filter') is not null",
        )
        > 0
    )


def test_containers(nov: duckdb.DuckDBPyConnection) -> None:
    subs = count(
        nov, "select count(*) from resourcecontainers where type = 'microsoft.resources/subscriptions'"
    )
    assert 3 <= subs <= 6
    assert (
        count(
            nov,
            "select count(*) from resourcecontainers where type = 'microsoft.resources/subscriptions/resourcegroups' and json_extract_string(tags, '$.owner') is not null",
        )
        > 0
    )
    orphans = """select count(*) from resources r where not exists (select 1 from resourcecontainers c
                 where c.type = 'microsoft.resources/subscriptions' and c.subscriptionId = r.subscriptionId)"""
    assert count(nov, orphans) == 0


def test_arc_os_version_follows_installed_build(nov: duckdb.DuckDBPyConnection) -> None:
    """An Arc machine whose last install was a calendar hotpatch reports that hotpatch's build."""
    builds = {}
    with (PROJECT_ROOT / "data" / "release_calendar.csv").open(newline="") as fh:
        builds = {
            r["kb"].removeprefix("KB"): r["os_build"] for r in csv.DictReader(fh) if r["kb"] and r["os_build"]
        }
    rows = nov.execute(f"""
        with last as (
            select split_part(p.id, '/patchInstallationResults', 1) mid, json_extract_string(p.properties, '$.kbId') kb,
                   row_number() over (partition by mid order by json_extract_string(r.properties, '$.lastModifiedDateTime') desc) rn
            {RUN_PATCH} and p.type like '{ARC}%' and json_extract_string(p.properties, '$.installationState') = 'Installed'
              and json_extract(p.properties, '$.classifications')::varchar like '%Security%'
              and json_extract_string(p.properties, '$.patchName') not like '%.NET%')
        select json_extract_string(m.properties, '$.osVersion'), last.kb from last join resources m on m.id = last.mid where rn = 1""").fetchall()
    checked = [(v, kb) for v, kb in rows if kb in builds]
    assert checked
    assert all(v == "10.0." + builds[kb] for v, kb in checked)


def test_enrollment_changes_over_time() -> None:
    """Some machines become Enabled, at least one loses its enrollment (same machine, later as-of)."""
    early, late = _fleet(datetime(2025, 3, 1, tzinfo=UTC)), _fleet(datetime(2026, 10, 1, tzinfo=UTC))
    q = f"select id from resources where type = '{ARC}' and " + "{}"
    enabled_early = {
        r[0] for r in early.execute(q.format(f"{_feature('Enabled')} and {_os_status('Enabled')}")).fetchall()
    }
    canceled_late = {r[0] for r in late.execute(q.format(_feature("Disabled"))).fetchall()}
    enabled_late = {
        r[0] for r in late.execute(q.format(f"{_feature('Enabled')} and {_os_status('Enabled')}")).fetchall()
    }
    not_enrolled_early = {r[0] for r in early.execute(q.format(_feature(None))).fetchall()}
    assert enabled_early & canceled_late, "enrollment lost"
    assert not_enrolled_early & enabled_late, "newly enrolled"


def test_wsus_suspected_gets_standard_lcu_over_months() -> None:
    """Enrolled machines without guest facts that install the standard LCU, never the hotpatch, in two months."""
    seen: list[set[str]] = []
    for as_of in (datetime(2026, 2, 27, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC)):
        con = _fleet(as_of)
        rows = con.execute(f"""select split_part(p.id, '/patchInstallationResults', 1) {RUN_PATCH}
            and json_extract_string(p.properties, '$.patchName') like '%Cumulative Update for Microsoft server operating system%'
            and json_extract_string(p.properties, '$.installationState') = 'Installed'
            and split_part(p.id, '/patchInstallationResults', 1) in (
                select id from resources where {_feature("Enabled")} and {_os_status("Enabled")})
            and not exists (select 1 from guestconfigurationresources g where starts_with(g.id, split_part(p.id, '/patchInstallationResults', 1) || '/'))
        """).fetchall()
        seen.append({r[0] for r in rows})
    assert seen[0] & seen[1]


# --- the project's KQL over the tables ------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "queries").glob("*.kql")), ids=lambda p: Path(p).stem)
def test_queries_run_and_return_rows(nov: duckdb.DuckDBPyConnection, path: Path) -> None:
    rows = duckdb_kql.kql(nov, path.read_text()).fetchall()
    assert rows, path.name
