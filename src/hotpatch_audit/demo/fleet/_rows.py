"""Resource Graph rows (envelope + properties) for one machine, as plain dicts ready for JSON."""

# ruff: noqa: S311, E501  (seeded demo data, not cryptography; long literal rows)

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from ._calendar import Update
from ._machines import RESOURCE_GROUPS, SUBSCRIPTIONS, TENANT_ID, Machine, new_guid
from ._timeline import (
    SCHEDULES,
    History,
    Run,
    agent_status,
    arc_hotpatch_state,
    assessment_time,
    available_updates,
    vm_hotpatching,
)

Row = dict[str, Any]
_NS = uuid.UUID("6f1d2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b")
_UPDATE_IDS: dict[tuple[str, str], str] = {}
ARC_GA = datetime.fromisoformat("2025-07-16T00:00:00+00:00")
ARC_FREE = datetime.fromisoformat("2026-05-15T00:00:00+00:00")


def iso(t: datetime | None) -> str | None:
    # as_of and every derived time are whole seconds in UTC, so isoformat() is "YYYY-MM-DDTHH:MM:SS+00:00"
    return None if t is None else t.isoformat()[:19] + "Z"


def envelope(
    id_: str,
    name: str,
    type_: str,
    m: Machine | None,
    props: Any,
    *,
    sub: str | None = None,
    rg: str | None = None,
    location: str | None = None,
    tags: Any = None,
) -> Row:
    if m is not None:
        sub = SUBSCRIPTIONS[m.sub][0]
        rg = RESOURCE_GROUPS[m.sub][m.rg][0]
        location = m.location
    return {
        "id": id_,
        "name": name,
        "type": type_,
        "tenantId": TENANT_ID,
        "kind": "",
        "location": location,
        "resourceGroup": rg.lower() if rg else "",
        "subscriptionId": sub,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": props,
        "tags": tags,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def update_id(u: Update) -> str:
    key = (u.kb, u.title)
    hit = _UPDATE_IDS.get(key)
    if hit is None:
        hit = _UPDATE_IDS[key] = str(uuid.uuid5(_NS, f"{u.kb}|{u.title}"))
    return hit


def _classifications(u: Update) -> list[str]:
    return ["Definition"] if u.kind == "definition" else ["Security"]


def _reboot_behavior(u: Update) -> str:
    return "CanRequestReboot" if u.reboot else "NeverReboots"


def _severity(u: Update) -> str:
    return "Unspecified" if u.kind == "definition" else ("Important" if u.kind == "dotnet" else "Critical")


def _machine_type(m: Machine) -> str:
    return "microsoft.compute/virtualmachines" if m.kind == "vm" else "microsoft.hybridcompute/machines"


# --- resources -------------------------------------------------------------------------------------


def vm_row(m: Machine, h: History, as_of: datetime) -> Row:
    win = m.windows
    rng = random.Random(m.index * 7919 + 17)
    if m.os == "gallery":
        image: dict[str, Any] = {
            "id": f"/subscriptions/{SUBSCRIPTIONS[3][0]}/resourceGroups/rg-shared-infra/providers/"
            f"Microsoft.Compute/galleries/contosoGallery/images/ws2022-hardened/versions/1.4.{m.index % 9}"
        }
    elif m.os == "ubuntu":
        image = {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": m.image_sku,
            "version": "latest",
            "exactVersion": "22.04.202510010",
        }
    else:
        image = {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": m.image_sku,
            "version": "latest",
            "exactVersion": f"{26100 if '2025' in m.image_sku else 20348}.{6899 - m.index % 400}.251010",
        }
    scheduled = m.schedule is not None
    ps: dict[str, Any] = {
        "patchMode": m.patch_mode,
        "assessmentMode": "ImageDefault" if m.never_assessed else "AutomaticByPlatform",
    }
    if win:
        ps["enableHotpatching"] = vm_hotpatching(m, as_of)
    if m.patch_mode == "AutomaticByPlatform":
        ps["automaticByPlatformSettings"] = {
            "rebootSetting": "IfRequired",
            "bypassPlatformSafetyChecksOnUserSchedule": scheduled,
        }
    os_profile: dict[str, Any] = {
        "computerName": m.name[:15],
        "adminUsername": "azureadmin",
        "allowExtensionOperations": True,
    }
    if win:
        os_profile["windowsConfiguration"] = {
            "provisionVMAgent": m.provision_agent,
            "enableAutomaticUpdates": m.patch_mode != "Manual",
            "patchSettings": ps,
        }
    else:
        os_profile["linuxConfiguration"] = {
            "disablePasswordAuthentication": True,
            "provisionVMAgent": True,
            "patchSettings": ps,
        }
    props: dict[str, Any] = {
        "vmId": m.vm_id,
        "hardwareProfile": {
            "vmSize": rng.choice(("Standard_D4s_v5", "Standard_D2as_v5", "Standard_E8s_v5", "Standard_B2ms"))
        },
        "storageProfile": {
            "imageReference": image,
            "osDisk": {
                "osType": "Windows" if win else "Linux",
                "name": f"{m.name}_OsDisk_1",
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {"storageAccountType": "Premium_LRS"},
            },
            "dataDisks": [],
        },
        "osProfile": os_profile,
        "networkProfile": {
            "networkInterfaces": [
                {
                    "id": m.id.split("/providers/")[0]
                    + f"/providers/Microsoft.Network/networkInterfaces/{m.name}-nic"
                }
            ]
        },
        "provisioningState": "Succeeded",
        "timeCreated": iso(m.extra["created"]),
    }
    if m.os != "gallery" and m.index % 3:
        props["securityProfile"] = {
            "securityType": "TrustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    if m.index % 11:  # the extended instance view is a preview feature: absent on some rows
        os_name = {
            "ws2025ae": "Windows Server 2025 Datacenter Azure Edition",
            "ws2022ae": "Windows Server 2022 Datacenter Azure Edition",
            "ws2022": "Windows Server 2022 Datacenter",
            "ws2019": "Windows Server 2019 Datacenter",
            "gallery": "Windows Server 2022 Datacenter",
            "ubuntu": "ubuntu",
        }[m.os]
        iv: dict[str, Any] = {
            "computerName": m.name[:15],
            "osName": os_name,
            "osVersion": (f"10.0.{h.build}" if win and h.build else ("22.04" if not win else "")),
            "hyperVGeneration": "V1" if m.image_sku.endswith(("-datacenter", "2019-datacenter")) else "V2",
            "powerState": {"code": "PowerState/running", "displayStatus": "VM running"},
        }
        if m.index % 23 == 0:
            iv["powerState"] = {"code": "PowerState/deallocated", "displayStatus": "VM deallocated"}
        props["extended"] = {"instanceView": iv}
    return envelope(m.id, m.name, "microsoft.compute/virtualmachines", m, props, tags=m.tags)


_HARDWARE = {
    "vmware": ("VMware, Inc.", "VMware7,1", "VMware-56 4d 1a 2b"),
    "hyperv": ("Microsoft Corporation", "Virtual Machine", "0000-0003-1234-5678"),
    "dell": ("Dell Inc.", "PowerEdge R750", "7XK2Q93"),
    "hpe": ("HPE", "ProLiant DL380 Gen10 Plus", "CZJ2140ABC"),
}
_EDITION = {
    "ws2025": (
        "Windows Server 2025 Datacenter",
        "serverdatacenter",
        "Windows Server 2025 Standard",
        "serverstandard",
    ),
    "ws2022": (
        "Windows Server 2022 Datacenter",
        "serverdatacenter",
        "Windows Server 2022 Standard",
        "serverstandard",
    ),
    "ws2019": (
        "Windows Server 2019 Datacenter",
        "serverdatacenter",
        "Windows Server 2019 Standard",
        "serverstandard",
    ),
}


def arc_row(m: Machine, h: History, as_of: datetime) -> Row:
    win = m.windows
    status, changed = agent_status(m, as_of)
    manufacturer, model, serial = _HARDWARE[m.hardware]
    detected: dict[str, str] = {
        "cloudprovider": "N/A",
        "manufacturer": manufacturer,
        "model": model,
        "processorCount": "1" if m.hardware in ("vmware", "hyperv") else "2",
        "totalPhysicalMemoryInBytes": str(m.cores * 4 * 1024**3),
    }
    if m.index % 19:  # missing on some rows (older agents)
        detected["coreCount"] = str(m.cores)
        detected["logicalCoreCount"] = str(m.logical)
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "agentVersion": f"1.{m.extra['agent_minor']}.0{2900 + m.index % 90}.{1000 + m.index % 800}",
        "status": status,
        "lastStatusChange": iso(changed),
        "errorDetails": [
            {"code": "AGENT_ERROR", "message": "The himds service could not reach the Azure Arc service."}
        ]
        if status == "Error"
        else [],
        "displayName": m.display_name or m.name,
        "machineFqdn": f"{m.name.lower()}.corp.contoso.example",
        "dnsFqdn": f"{m.name.lower()}.corp.contoso.example",
        "domainName": "corp.contoso.example",
        "vmId": m.vm_id,
        "vmUuid": m.vm_id.upper(),
        "cloudMetadata": {"provider": "N/A"},
        "detectedProperties": detected,
        "agentConfiguration": {
            "proxyUrl": "",
            "incomingConnectionsPorts": [],
            "extensionsEnabled": "true",
            "guestConfigurationEnabled": "true",
            "configMode": "full",
        },
        "serviceStatuses": {
            "extensionService": {"status": "Running", "startupType": "Automatic"},
            "guestConfigurationService": {"status": "Running", "startupType": "Automatic"},
        },
    }
    if m.firmware:
        props["firmwareProfile"] = {"serialNumber": serial, "type": m.firmware}
    if not win:
        props.update(
            {
                "osName": "linux",
                "osType": "linux",
                "osVersion": "5.15.0-124-generic",
                "osSku": "Ubuntu 22.04.5 LTS",
                "osEdition": None,
                "osProfile": {
                    "computerName": m.name,
                    "linuxConfiguration": {
                        "patchSettings": {
                            "assessmentMode": "AutomaticByPlatform",
                            "patchMode": "AutomaticByPlatform",
                        }
                    },
                },
            }
        )
        return envelope(m.id, m.name, "microsoft.hybridcompute/machines", m, props, tags=m.tags)
    dc = m.index % 3 != 0
    sku, edition = (_EDITION[m.os][0], _EDITION[m.os][1]) if dc else (_EDITION[m.os][2], _EDITION[m.os][3])
    if m.mixed_case:
        edition = {"serverdatacenter": "ServerDatacenter", "serverstandard": "ServerStandard"}[edition]
    major = {"ws2025": "10.0.", "ws2022": "10.0.", "ws2019": "10.0."}[m.os]
    props.update(
        {
            "osName": "Windows" if m.mixed_case else "windows",
            "osType": "windows",
            "osVersion": major + (h.build or ""),
            "osSku": sku,
            "osEdition": edition,
        }
    )
    lic, os_status = arc_hotpatch_state(m, as_of)
    ps: dict[str, Any] = {
        "assessmentMode": "ImageDefault" if m.never_assessed else "AutomaticByPlatform",
        "patchMode": m.patch_mode,
    }
    if lic is not None:
        ps["enableHotpatching"] = lic in ("Enabled", "Enabling", "Failed")
    elif m.index % 2:
        ps["enableHotpatching"] = False
    st: dict[str, Any] = {}
    if os_status:
        st["hotpatchEnablementStatus"] = os_status
    if os_status == "ActionRequired":
        code = str(m.extra["error_code"])
        st["error"] = {
            "code": code,
            "message": "Virtualization-based security (VBS) is not running on the machine. "
            "Enable VBS and restart the machine, then retry hotpatch enablement.",
            "target": None,
            "details": [],
            "additionalInfo": [],
        }
    if st:
        ps["status"] = st
    props["osProfile"] = {"computerName": m.name, "windowsConfiguration": {"patchSettings": ps}}
    license_profile: dict[str, Any] = {
        "licenseStatus": "Licensed",
        "licenseChannel": "Volume:GVLK",
        "softwareAssurance": {"softwareAssuranceCustomer": m.index % 4 != 0},
    }
    if lic is not None:
        enrolled_at = (
            m.change_at if m.behaviour == "newly" and m.change_at else m.extra["created"] + timedelta(days=60)
        )
        feature: dict[str, Any] = {
            "name": "Hotpatch",
            "subscriptionStatus": lic,
            "enrollmentDate": iso(enrolled_at),
        }
        if lic == "Enabled" and as_of >= ARC_GA:
            feature["billingStartDate"] = iso(max(enrolled_at, ARC_GA))
            if as_of >= ARC_FREE:
                feature["billingEndDate"] = iso(ARC_FREE)
        if lic == "Disabled":
            feature["disenrollmentDate"] = iso(m.change_at or (m.extra["created"] + timedelta(days=200)))
        if lic == "Failed":
            feature["error"] = {
                "code": "LicenseActivationFailed",
                "message": "Hotpatch license activation failed. Check that VBS is running.",
            }
        license_profile["productProfile"] = {
            "productType": "WindowsServer",
            "subscriptionStatus": "Enabled",
            "productFeatures": [feature],
        }
    elif m.index % 4 == 1:
        license_profile["productProfile"] = {
            "productType": "WindowsServer",
            "subscriptionStatus": "Disabled",
            "productFeatures": [],
        }
    props["licenseProfile"] = license_profile
    return envelope(m.id, m.name, "microsoft.hybridcompute/machines", m, props, tags=m.tags)


# --- patch tables ------------------------------------------------------------------------------------


def _patch_props(u: Update, t: datetime, state: str | None) -> dict[str, Any]:
    p: dict[str, Any] = {"patchName": u.title, "kbId": u.kb, "classifications": _classifications(u)}
    if state is not None:
        p["installationState"] = state
    p.update(
        {
            "rebootRequired": u.reboot,
            "rebootBehavior": _reboot_behavior(u),
            "msrcSeverity": _severity(u),
            "patchId": update_id(u),
            "publishedDateTime": iso(
                datetime(u.released.year, u.released.month, u.released.day, 17, 0, tzinfo=t.tzinfo)
            ),
            "lastModifiedDateTime": iso(t),
        }
    )
    return p


def installation_rows(m: Machine, runs: list[Run]) -> list[Row]:
    rows: list[Row] = []
    base_type = _machine_type(m) + "/patchinstallationresults"
    for r in runs:
        run_id = f"{m.id}/patchInstallationResults/{r.guid}"
        counts = {
            s: sum(1 for _, st in r.patches if st == s)
            for s in ("Installed", "Failed", "Pending", "Excluded")
        }
        props = {
            "installationActivityId": r.guid,
            "status": r.status,
            "rebootStatus": r.reboot,
            "maintenanceWindowExceeded": r.window_exceeded,
            "installedPatchCount": counts["Installed"],
            "failedPatchCount": counts["Failed"],
            "pendingPatchCount": counts["Pending"],
            "excludedPatchCount": counts["Excluded"],
            "notSelectedPatchCount": (m.index + r.start.day) % 4,
            "patchServiceUsed": "WU_WSUS",
            "osType": "Windows",
            "startedBy": r.started_by,
            "startDateTime": iso(r.start),
            "lastModifiedDateTime": iso(r.end),
            "maintenanceRunId": r.maintenance_run_id,
            "errorDetails": None
            if r.error is None
            else {"code": r.error[0], "message": r.error[1], "details": []},
        }
        rows.append(envelope(run_id, r.guid, base_type, m, props))
        for u, st in r.patches:
            uid = update_id(u)
            rows.append(
                envelope(
                    f"{run_id}/softwarePatches/{uid}",
                    uid,
                    base_type + "/softwarepatches",
                    m,
                    _patch_props(u, r.end, st),
                )
            )
    return rows


def assessment_rows(m: Machine, h: History, as_of: datetime, seed: int) -> list[Row]:
    ta = assessment_time(m, as_of)
    if ta is None:
        return []
    rng = random.Random((seed << 40) | (m.index << 8) | (ta.toordinal() & 0xFF))
    guid = new_guid(rng)
    base_type = _machine_type(m) + "/patchassessmentresults"
    summary_id = f"{m.id}/patchAssessmentResults/latest"
    avail = available_updates(m, h, ta) if m.windows else []
    counts = {
        "security": sum(1 for u in avail if u.kind != "definition"),
        "critical": 0,
        "definition": 0,
        "updateRollup": 0,
        "featurePack": 0,
        "servicePack": 0,
        "tools": 0,
        "updates": rng.choice((0, 0, 0, 1)),
        "other": 0,
    }
    if not m.windows:
        counts["security"] = rng.randrange(0, 6)
        counts["other"] = rng.randrange(0, 20)
    start = ta - timedelta(minutes=rng.randrange(2, 9))
    status = "Succeeded" if rng.random() > 0.04 else "CompletedWithWarnings"
    props = {
        "assessmentActivityId": guid,
        "status": status,
        "rebootPending": bool(h.reboot_pending_since and h.reboot_pending_since <= ta),
        "patchServiceUsed": "WU_WSUS" if m.windows else "APT",
        "osType": "Windows" if m.windows else "Linux",
        "startDateTime": iso(start),
        "lastModifiedDateTime": iso(ta),
        "startedBy": "Platform",
        "errorDetails": None,
        "availablePatchCountByClassification": counts,
    }
    rows = [envelope(summary_id, guid, base_type, m, props)]
    for u in avail:
        uid = update_id(u)
        rows.append(
            envelope(
                f"{summary_id}/softwarePatches/{uid}",
                uid,
                base_type + "/softwarepatches",
                m,
                _patch_props(u, ta, None),
            )
        )
    return rows


# --- guest configuration ------------------------------------------------------------------------------

_VBS = {  # facts profile -> (VBS status, configured, running)
    "good": ("2", "1,2", "1,2"),
    "vbs0": ("0", "", ""),
    "vbs1": ("1", "2", ""),
    "nested_hv": ("1", "2", ""),
    "nested_wsl": ("1", "", ""),
    "bios": ("0", "", ""),
    "gen1": ("0", "", ""),
    "nohvci": ("2", "1", "1"),
}


def guest_row(m: Machine, as_of: datetime, seed: int) -> Row | None:
    if m.facts == "none" or not m.windows:
        return None
    checked = as_of - timedelta(minutes=int(m.extra["gc_fresh_minutes"]))
    if m.facts_stuck_at and m.facts_stuck_at < checked:
        checked = m.facts_stuck_at
    if checked < m.extra["created"]:
        return None
    rng = random.Random((seed << 40) | (m.index << 8) | 0x5A)
    vbs, configured, running = _VBS.get(m.facts, _VBS["good"])
    v = m.extra["wsus_variant"]
    if m.facts == "wsus":
        wu = (
            f"UseWUServer=1 WUServer=http://wsus01.corp.contoso.example:8530 "
            f"SetPolicyDrivenUpdateSourceForQualityUpdates={'1' if v % 2 else ''} "
            f"DoNotConnectToWindowsUpdateInternetLocations={'1' if v >= 2 else '0'}"
        )
    elif m.facts == "stale_wu":
        wu = (
            "UseWUServer=1 WUServer=http://wsus-old.corp.contoso.example:8530 "
            "SetPolicyDrivenUpdateSourceForQualityUpdates=0 DoNotConnectToWindowsUpdateInternetLocations=0"
        )
    else:
        wu = "UseWUServer=0 WUServer= SetPolicyDrivenUpdateSourceForQualityUpdates= DoNotConnectToWindowsUpdateInternetLocations=0"
    is_vm = m.hardware in ("vmware", "hyperv", "azure")
    gen = "1" if m.facts == "gen1" else ("2" if m.hardware in ("hyperv", "azure") else "")
    virt = (
        f"IsVirtualMachine={'1' if is_vm else '0'} HyperVGeneration={gen} "
        f"HyperVRole={'1' if m.facts == 'nested_hv' else '0'} Wsl2={'1' if m.facts == 'nested_wsl' else '0'}"
    )
    fw_type = "BIOS" if m.facts in ("bios", "gen1") else "UEFI"
    fw = f"FirmwareType={fw_type} SecureBoot={'1' if fw_type == 'UEFI' else '0'}"
    dg = f"VirtualizationBasedSecurityStatus={vbs} SecurityServicesConfigured={configured} SecurityServicesRunning={running}"
    ok = {
        "DeviceGuard": vbs == "2" and "2" in configured.split(","),
        "WindowsUpdatePolicy": "UseWUServer=1" not in wu or "ForQualityUpdates=0" in wu,
        "Virtualization": not (vbs != "2" and m.facts in ("nested_hv", "nested_wsl")),
        "Firmware": fw_type == "UEFI",
    }
    resources = [
        {
            "resourceId": rid,
            "complianceStatus": ok[rid],
            "reasons": [{"code": f"hotpatch-audit:{rid}", "phrase": phrase}],
            "properties": None,
        }
        for rid, phrase in (
            ("DeviceGuard", dg),
            ("WindowsUpdatePolicy", wu),
            ("Virtualization", virt),
            ("Firmware", fw),
        )
    ]
    compliant = all(ok.values())
    gid = f"{m.id}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/hotpatch-audit-guest"
    report_id = new_guid(rng)
    props = {
        "targetResourceId": m.id,
        "complianceStatus": "Compliant" if compliant else "NonCompliant",
        "lastComplianceStatusChecked": iso(checked),
        "latestReportId": f"{gid}/reports/{report_id}",
        "assignmentHash": uuid.UUID(int=rng.getrandbits(128)).hex.upper(),
        "provisioningState": "Succeeded",
        "guestConfiguration": {
            "name": "hotpatch-audit-guest",
            "version": "1.2.0",
            "contentUri": "https://contosoguestcfg.blob.core.windows.net/packages/hotpatch-audit-guest_1.2.0.zip",
            "contentHash": "5D1E6A0C4B7F" + str(m.index % 10),
            "assignmentType": "Audit",
            "configurationParameter": [],
        },
        "latestAssignmentReport": {
            "reportId": report_id,
            "complianceStatus": "Compliant" if compliant else "NonCompliant",
            "startTime": iso(checked - timedelta(seconds=40)),
            "endTime": iso(checked),
            "operationType": "Consistency",
            "resources": resources,
        },
    }
    return envelope(
        gid, "hotpatch-audit-guest", "microsoft.guestconfiguration/guestconfigurationassignments", m, props
    )


# --- static rows: subscriptions, resource groups, maintenance configurations --------------------------


def container_rows() -> list[Row]:
    rows: list[Row] = []
    for i, (sub, name, tags) in enumerate(SUBSCRIPTIONS):
        rows.append(
            envelope(
                f"/subscriptions/{sub}",
                name,
                "microsoft.resources/subscriptions",
                None,
                {
                    "subscriptionPolicies": {
                        "locationPlacementId": "Public_2014-09-01",
                        "quotaId": "EnterpriseAgreement_2014-09-01",
                        "spendingLimit": "Off",
                    },
                    "state": "Enabled",
                },
                sub=sub,
                location="",
                tags=tags or None,
            )
        )
        for rg, rg_tags in RESOURCE_GROUPS[i]:
            rows.append(
                envelope(
                    f"/subscriptions/{sub}/resourceGroups/{rg}",
                    rg,
                    "microsoft.resources/subscriptions/resourcegroups",
                    None,
                    {"provisioningState": "Succeeded"},
                    sub=sub,
                    rg=rg,
                    location="japaneast" if "tokyo" in rg.lower() else "westeurope",
                    tags=rg_tags,
                )
            )
    return rows


def schedule_id(i: int) -> str:
    s = SCHEDULES[i]
    sub = SUBSCRIPTIONS[s[1]][0]
    rg = RESOURCE_GROUPS[s[1]][3 if s[1] == 0 else 0][0]
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Maintenance/maintenanceConfigurations/{s[0]}"


def schedule_rows() -> list[Row]:
    rows: list[Row] = []
    for i, (name, sub_i, offset, tz, local, _utc, reboot, classes, exclude) in enumerate(SCHEDULES):
        sid = schedule_id(i)
        props = {
            "maintenanceScope": "InGuestPatch",
            "visibility": "Custom",
            "extensionProperties": {"InGuestPatchMode": "User"},
            "maintenanceWindow": {
                "startDateTime": f"2025-01-{14 + offset:02d} {local}",
                "duration": "03:55",
                "timeZone": tz,
                "expirationDateTime": None,
                "recurEvery": f"Month Second Tuesday Offset{offset}",
            },
            "installPatches": {
                "rebootSetting": reboot,
                "windowsParameters": {
                    "classificationsToInclude": list(classes),
                    "kbNumbersToInclude": [],
                    "kbNumbersToExclude": [],
                    "excludeKbsRequiringReboot": exclude,
                },
                "linuxParameters": {
                    "classificationsToInclude": ["Critical", "Security"],
                    "packageNameMasksToInclude": [],
                    "packageNameMasksToExclude": [],
                },
            },
        }
        rg = sid.split("/")[4]
        tags = {"owner": "platform-team@contoso.example"} if i % 2 == 0 else None
        rows.append(
            envelope(
                sid,
                name,
                "microsoft.maintenance/maintenanceconfigurations",
                None,
                props,
                sub=SUBSCRIPTIONS[sub_i][0],
                rg=rg,
                location="japaneast",
                tags=tags,
            )
        )
    # a dynamic-scope assignment (filter instead of a machine)
    sub = SUBSCRIPTIONS[1][0]
    rows.append(
        envelope(
            f"/subscriptions/{sub}/providers/Microsoft.Maintenance/configurationAssignments/dyn-dev-windows",
            "dyn-dev-windows",
            "microsoft.maintenance/configurationassignments",
            None,
            {
                "maintenanceConfigurationId": schedule_id(5),
                "resourceId": f"/subscriptions/{sub}",
                "filter": {
                    "resourceTypes": [
                        "microsoft.compute/virtualmachines",
                        "microsoft.hybridcompute/machines",
                    ],
                    "resourceGroups": [],
                    "osTypes": ["Windows"],
                    "locations": [],
                    "tagSettings": {"tags": {"env": ["dev"]}, "filterOperator": "Any"},
                },
            },
            sub=sub,
            location="global",
        )
    )
    return rows


def assignment_row(m: Machine) -> Row | None:
    if m.schedule is None:
        return None
    name = SCHEDULES[m.schedule][0]
    return envelope(
        f"{m.id}/providers/Microsoft.Maintenance/configurationAssignments/{name}",
        name,
        "microsoft.maintenance/configurationassignments",
        m,
        {"resourceId": m.id, "maintenanceConfigurationId": schedule_id(m.schedule)},
    )
