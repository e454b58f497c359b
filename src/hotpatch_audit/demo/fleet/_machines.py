"""Who is in the demo fleet: archetypes (the audited situations) and per-machine traits, from seed + index."""

# ruff: noqa: S311, E501  (seeded demo data, not cryptography; long literal rows)

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TENANT_ID = "4a1d6c2e-9b3f-4e7a-8d5c-1f0e2b3a4c5d"

# (name, slots per 100 machines, kind, os, hotpatch state, behaviour, guest-fact profile)
# kind: vm | arc. hotpatch state (arc): "licence/os" or "none"; (vm): "on" | "off".
# behaviour: normal dotnet missed baseline_missed wsus oob881 oob893 licexp lost newly frozen
# facts: random | none | good | vbs0 | vbs1 | nested_hv | nested_wsl | bios | gen1 | nohvci | wsus | stale_wu
ARCHETYPES: tuple[tuple[str, int, str, str, str, str, str], ...] = (
    ("vm_ae25_hotpatch", 9, "vm", "ws2025ae", "on", "normal", "random"),
    ("vm_ae22_hotpatch", 6, "vm", "ws2022ae", "on", "normal", "random"),
    ("vm_ae_dotnet_reboot", 1, "vm", "ws2025ae", "on", "dotnet", "random"),
    ("vm_ae_missed", 1, "vm", "ws2022ae", "on", "missed", "random"),
    ("vm_ae_wsus_confirmed", 1, "vm", "ws2025ae", "on", "wsus", "wsus"),
    ("vm_ae_oob_kb5070881", 1, "vm", "ws2025ae", "on", "oob881", "random"),
    ("vm_ae_hotpatch_off", 4, "vm", "ws2025ae", "off", "normal", "random"),
    ("vm_ae_not_platform", 2, "vm", "ws2022ae", "off", "normal", "none"),
    ("vm_ae_newly_enabled", 1, "vm", "ws2025ae", "on", "newly", "random"),
    ("vm_ae_enrollment_lost", 1, "vm", "ws2022ae", "on", "lost", "random"),
    ("vm_windows_standard", 6, "vm", "ws2022", "off", "normal", "random"),
    ("vm_gallery_image", 2, "vm", "gallery", "off", "normal", "none"),
    ("vm_linux", 4, "vm", "ubuntu", "off", "normal", "none"),
    ("arc_enabled", 14, "arc", "ws2025", "Enabled/Enabled", "normal", "random"),
    ("arc_enabled_dotnet_reboot", 2, "arc", "ws2025", "Enabled/Enabled", "dotnet", "good"),
    ("arc_enabled_missed", 2, "arc", "ws2025", "Enabled/Enabled", "missed", "good"),
    ("arc_enabled_baseline_missed", 1, "arc", "ws2025", "Enabled/Enabled", "baseline_missed", "good"),
    ("arc_enabled_wsus_confirmed", 2, "arc", "ws2025", "Enabled/Enabled", "wsus", "wsus"),
    ("arc_enabled_wsus_suspected", 1, "arc", "ws2025", "Enabled/Enabled", "wsus", "none"),
    ("arc_enabled_stale_usewuserver", 1, "arc", "ws2025", "Enabled/Enabled", "normal", "stale_wu"),
    ("arc_enabled_oob_kb5070881", 1, "arc", "ws2025", "Enabled/Enabled", "oob881", "good"),
    ("arc_enabled_oob_kb5070893", 1, "arc", "ws2025", "Enabled/Enabled", "oob893", "good"),
    ("arc_enabled_licence_expiry_2025_10", 1, "arc", "ws2025", "Enabled/Enabled", "licexp", "good"),
    ("arc_enrollment_lost", 1, "arc", "ws2025", "Enabled/Enabled", "lost", "good"),
    ("arc_newly_enabled", 2, "arc", "ws2025", "Enabled/Enabled", "newly", "good"),
    ("arc_enabled_no_guest_facts", 2, "arc", "ws2025", "Enabled/Enabled", "normal", "none"),
    ("arc_enabled_no_hvci", 1, "arc", "ws2025", "Enabled/Enabled", "normal", "nohvci"),
    ("arc_os_disabled", 2, "arc", "ws2025", "Enabled/Disabled", "normal", "random"),
    ("arc_os_status_missing", 1, "arc", "ws2025", "Enabled/", "normal", "random"),
    ("arc_pending_evaluation", 2, "arc", "ws2025", "Enabled/PendingEvaluation", "normal", "good"),
    ("arc_action_required", 2, "arc", "ws2025", "Enabled/ActionRequired", "normal", "vbs1"),
    ("arc_os_status_unknown", 1, "arc", "ws2025", "Enabled/Unknown", "normal", "random"),
    ("arc_canceled", 1, "arc", "ws2025", "Disabled/Disabled", "normal", "random"),
    ("arc_enabling", 1, "arc", "ws2025", "Enabling/PendingEvaluation", "normal", "good"),
    ("arc_disabling", 1, "arc", "ws2025", "Disabling/Enabled", "normal", "good"),
    ("arc_enrollment_failed", 1, "arc", "ws2025", "Failed/Disabled", "normal", "vbs0"),
    ("arc_not_enrolled_ready", 3, "arc", "ws2025", "none", "normal", "good"),
    ("arc_not_enrolled_vbs0", 2, "arc", "ws2025", "none", "normal", "vbs0"),
    ("arc_not_enrolled_vbs1", 1, "arc", "ws2025", "none", "normal", "vbs1"),
    ("arc_not_enrolled_nested_hyperv", 1, "arc", "ws2025", "none", "normal", "nested_hv"),
    ("arc_not_enrolled_nested_wsl2", 1, "arc", "ws2025", "none", "normal", "nested_wsl"),
    ("arc_not_enrolled_bios", 1, "arc", "ws2025", "none", "normal", "bios"),
    ("arc_not_enrolled_gen1", 1, "arc", "ws2025", "none", "normal", "gen1"),
    ("arc_not_enrolled_no_hvci", 1, "arc", "ws2025", "none", "normal", "nohvci"),
    ("arc_not_enrolled_no_guest_facts", 2, "arc", "ws2025", "none", "normal", "none"),
    ("arc_not_enrolled_old_build", 1, "arc", "ws2025", "none", "frozen", "good"),
    ("arc_not_enrolled_wsus", 1, "arc", "ws2025", "none", "wsus", "wsus"),
    ("arc_not_enrolled_expired_agent", 1, "arc", "ws2025", "none", "normal", "good"),
    ("arc_not_enrolled_agent_error", 1, "arc", "ws2025", "none", "normal", "good"),
    ("arc_not_enrolled_disconnected", 1, "arc", "ws2025", "none", "normal", "good"),
    ("arc_ws2022", 4, "arc", "ws2022", "none", "normal", "random"),
    ("arc_ws2019", 2, "arc", "ws2019", "none", "normal", "random"),
    ("arc_linux", 3, "arc", "linux", "none", "normal", "none"),
)
ARCHETYPE_NAMES = tuple(a[0] for a in ARCHETYPES)

SUBSCRIPTIONS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "3f2b8c4e-1a7d-4e5f-9b0c-2d6e8f1a3b5c",
        "Contoso Production",
        {"owner": "platform-team@contoso.example", "env": "prod"},
    ),
    (
        "8a1c5e7f-3b9d-4f2a-8c6e-0b4d2f8a6c1e",
        "Contoso Non-Production",
        {"Owner": "dev-leads@contoso.example", "env": "dev"},
    ),
    (
        "5d9e1f3a-7c2b-4e8d-a6f0-4c8b2e6d0a9f",
        "Contoso Hybrid (Arc)",
        {"owner": "datacenter-ops@contoso.example"},
    ),
    ("b7e3a9c1-5f4d-4b6e-9a2c-8e0f6d4b2a7c", "Contoso Shared Services", {}),
)
# Resource groups per subscription index: (name as created, tags or None)
RESOURCE_GROUPS: tuple[tuple[tuple[str, dict[str, str] | None], ...], ...] = (
    (
        ("rg-prod-web", {"owner": "web-team@contoso.example"}),
        ("RG-Prod-SQL", {"Owner": "dba@contoso.example"}),
        ("rg-prod-app", None),
        ("rg-patching", {"owner": "platform-team@contoso.example"}),
    ),
    (
        ("rg-dev-web", {"owner": "web-team@contoso.example"}),
        ("rg-test-Batch", None),
        ("rg-dev-tools", {"owner": ""}),
    ),
    (
        ("rg-arc-tokyo-dc1", {"owner": "tokyo-dc@contoso.example", "site": "TKY1"}),
        ("RG-Arc-Frankfurt", {"owner": "fra-ops@contoso.example"}),
        ("rg-arc-branch-offices", {"owner": "<img src=x onerror=alert(1)>"}),
        ("rg-arc-legacy", None),
    ),
    (("rg-shared-infra", {"owner": '=HYPERLINK("http://evil.example","click")'}), ("rg-shared-mgmt", None)),
)
VM_SUBS = (0, 0, 0, 1, 1, 3)
ARC_SUBS = (2, 2, 2, 2, 3)
LOCATIONS_VM = ("japaneast", "westeurope", "eastus2", "japanwest")
LOCATIONS_ARC = ("japaneast", "germanywestcentral", "eastus")
HOSTILE_TEXT = (
    "<script>alert(1)</script>",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    '@evil "quoted" & <b>bold</b>',
    "-2+3 ' OR 1=1 --",
)
OWNERS = (
    "web-team@contoso.example",
    "dba@contoso.example",
    "ops@contoso.example",
    "finance-it@contoso.example",
    "tokyo-dc@contoso.example",
    "app-support@contoso.example",
)


def new_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def day0(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@dataclass(slots=True)
class Machine:
    """A machine's identity and stable traits (never depends on as_of)."""

    index: int
    archetype: str
    kind: str
    os: str
    hp_state: str
    behaviour: str
    facts: str
    sub: int
    rg: int
    name: str
    location: str
    id: str = ""
    vm_id: str = ""
    owner_tag: str | None = None
    tags: dict[str, str] | None = None
    display_name: str | None = None
    # hardware: vmware | hyperv | dell | hpe
    hardware: str = "vmware"
    firmware: str | None = "UEFI"
    cores: int = 4
    logical: int = 8
    image_sku: str = ""
    patch_mode: str = "AutomaticByPlatform"
    provision_agent: bool = True
    schedule: int | None = None  # index into maintenance configurations
    offset_days: int = 3
    hour: int = 1
    # agent / data freshness traits (absolute times, so the story is the same at every as_of)
    offline_since: datetime | None = None  # permanent disconnect (Expired after 45 days)
    agent_error: bool = False
    offline_cycle: tuple[int, int, int] | None = (
        None  # periodic disconnect: (period days, outage days, phase)
    )
    assess_phase: int | None = None  # periodic assessment outage in a 61-day cycle
    assess_keep_days: int = 40
    never_assessed: bool = False
    facts_stuck_at: datetime | None = None
    defender_weekday: int | None = None  # weekly Defender-only run, only where its schedule takes Definition (_timeline.takes_definitions)
    change_at: datetime | None = None  # enrollment change (newly enabled / lost)
    mixed_case: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def windows(self) -> bool:
        return self.os not in ("ubuntu", "linux")

    @property
    def family(self) -> str:
        """OS family of the machine's updates: a hotpatch track or a standard family."""
        return {
            "ws2025ae": "ws2025",
            "ws2025": "ws2025",
            "ws2022ae": "ws2022-azure-edition",
            "ws2022": "ws2022",
            "gallery": "ws2022",
            "ws2019": "ws2019",
        }.get(self.os, "linux")

    @property
    def eligible(self) -> bool:
        """Hotpatch-capable OS/image (Not Enrolled rather than Not Available when off)."""
        return self.os in ("ws2025ae", "ws2022ae", "ws2025") and self.behaviour != "frozen"


def slot_table(seed: int) -> list[int]:
    """Archetype index per slot, shuffled once by the seed so archetypes interleave across indexes."""
    slots = [i for i, a in enumerate(ARCHETYPES) for _ in range(a[1])]
    random.Random(seed).shuffle(slots)
    return slots


def make_machine(seed: int, index: int, slots: list[int], n_schedules: int) -> Machine:
    """Identity and traits of machine `index`: a function of (seed, index) only."""
    rng = random.Random((seed << 32) | index)
    a = ARCHETYPES[slots[index % len(slots)]]
    name_, _, kind, os_, hp, beh, facts = a
    if facts == "random":
        r = rng.random()
        if kind == "arc":
            facts = "none" if r < 0.2 else ("vbs1" if r < 0.24 else "good")
        else:
            facts = "good" if r < 0.3 else "none"
    sub = rng.choice(VM_SUBS if kind == "vm" else ARC_SUBS)
    rg = rng.randrange(len(RESOURCE_GROUPS[sub]))
    if kind == "vm":
        prefix = {"ubuntu": "vm-lnx", "gallery": "vm-img"}.get(
            os_, rng.choice(("vm-web", "vm-app", "vm-sql", "vm-dc"))
        )
        name = f"{prefix}-{index:05d}"
        location = rng.choice(LOCATIONS_VM)
    else:
        prefix = {"linux": "lnx"}.get(os_, rng.choice(("SRV-TKY", "srv-fra", "WS-BR", "sql")))
        name = f"{prefix}{index:05d}"
        location = rng.choice(LOCATIONS_ARC)
    m = Machine(index, name_, kind, os_, hp, beh, facts, sub, rg, name, location)
    sub_id = SUBSCRIPTIONS[sub][0]
    rg_name = RESOURCE_GROUPS[sub][rg][0]
    provider = "Microsoft.Compute/virtualMachines" if kind == "vm" else "Microsoft.HybridCompute/machines"
    m.id = f"/subscriptions/{sub_id}/resourceGroups/{rg_name}/providers/{provider}/{name}"
    m.vm_id = new_guid(rng)
    # tags: mostly an owner, sometimes none, sometimes "Owner", sometimes hostile text
    r = rng.random()
    if r < 0.15:
        m.tags = None
    elif r < 0.2:
        m.tags = {"Owner": rng.choice(OWNERS), "CostCenter": str(rng.randrange(1000, 9999))}
    elif r < 0.23:
        m.tags = {"owner": rng.choice(HOSTILE_TEXT), "note": rng.choice(HOSTILE_TEXT)}
    elif r < 0.3:
        m.tags = {"env": rng.choice(("prod", "dev")), "app": rng.choice(("erp", "web", "batch"))}
    else:
        m.tags = {"owner": rng.choice(OWNERS), "env": rng.choice(("prod", "prod", "dev"))}
    m.mixed_case = rng.random() < 0.1
    # hardware and firmware
    if facts in ("nested_hv", "nested_wsl", "gen1"):
        m.hardware = "hyperv"
    elif facts == "vbs1" and kind == "arc" and name_ == "arc_not_enrolled_vbs1":
        m.hardware = "dell"
    else:
        m.hardware = rng.choices(("vmware", "hyperv", "dell", "hpe"), (40, 25, 20, 15))[0]
    if kind == "vm":
        m.hardware = "azure"
    m.firmware = "BIOS" if facts in ("bios", "gen1") else ("UEFI" if rng.random() > 0.05 else None)
    m.cores = (
        rng.choice((2, 4, 4, 8, 8, 16, 32)) if m.hardware in ("dell", "hpe") else rng.choice((2, 4, 4, 8))
    )
    m.logical = m.cores * (2 if m.hardware in ("dell", "hpe") else 1)
    # patch orchestration and schedule
    if kind == "vm":
        if os_ == "ws2025ae":
            m.image_sku = rng.choice(
                (
                    "2025-datacenter-azure-edition",
                    "2025-datacenter-azure-edition-core",
                    "2025-datacenter-azure-edition-smalldisk",
                    "2025-datacenter-azure-edition-core-smalldisk",
                )
            )
        elif os_ == "ws2022ae":
            m.image_sku = rng.choice(
                (
                    "2022-datacenter-azure-edition-hotpatch",
                    "2022-datacenter-azure-edition-core",
                    "2022-datacenter-azure-edition-hotpatch-smalldisk",
                )
            )
        elif os_ == "ws2022":
            m.image_sku = rng.choice(
                ("2022-datacenter", "2019-datacenter", "2022-datacenter-g2", "2019-datacenter-gensecond")
            )
            if m.image_sku.startswith("2019"):
                m.os = "ws2019"
        elif os_ == "ubuntu":
            m.image_sku = rng.choice(("22_04-lts-gen2", "server"))
    if name_ == "vm_ae_not_platform":
        m.patch_mode = rng.choice(("AutomaticByOS", "Manual"))
        m.never_assessed = m.patch_mode == "Manual"
    elif os_ in ("ws2022", "gallery") and rng.random() < 0.3:
        m.patch_mode = "AutomaticByOS"
    elif kind == "arc" and hp == "none" and rng.random() < 0.15:
        m.patch_mode = rng.choice(("AutomaticByOS", "Manual", "ImageDefault"))
    if os_ == "ubuntu":
        m.patch_mode = "ImageDefault" if rng.random() < 0.5 else "AutomaticByPlatform"
    m.provision_agent = not (kind == "vm" and m.patch_mode == "Manual" and rng.random() < 0.5)
    if beh == "baseline_missed":
        m.schedule = 0  # the hotpatch-only schedule (excludeKbsRequiringReboot = true)
    elif m.windows and rng.random() < 0.7:
        m.schedule = rng.choices(range(1, n_schedules), (30, 25, 25, 8, 12)[: n_schedules - 1])[0]
    m.offset_days = rng.randrange(1, 12)
    m.hour = rng.randrange(0, 24)
    # agent state (Arc) and data freshness
    if kind == "arc":
        if name_ == "arc_not_enrolled_expired_agent" or rng.random() < 0.02:
            m.offline_since = day0(2024, 9, 1) + timedelta(days=rng.randrange(0, 240))
        elif name_ == "arc_not_enrolled_agent_error" or rng.random() < 0.01:
            m.agent_error = True
        elif name_ == "arc_not_enrolled_disconnected":
            m.offline_cycle = (40, 30, rng.randrange(40))  # mostly disconnected, never long enough to expire
        elif rng.random() < 0.04:
            m.offline_cycle = (97, 30, rng.randrange(97))
        if rng.random() < 0.05 and facts != "none":
            m.facts_stuck_at = day0(2024, 10, 1) + timedelta(days=rng.randrange(0, 540))
        d = rng.randrange(0, 10**6)
        m.display_name = rng.choice(HOSTILE_TEXT) if d % 50 == 0 else name.lower()
    if beh == "frozen":
        m.never_assessed = True
        m.patch_mode = "Manual"
    elif rng.random() < 0.03:
        m.never_assessed = True
    if rng.random() < 0.08:
        m.assess_phase = rng.randrange(61)
        m.assess_keep_days = rng.choice((12, 40))
    if m.windows and rng.random() < 0.25:
        m.defender_weekday = rng.randrange(7)
    if beh in ("newly", "lost"):
        m.change_at = day0(2025, 2, 1) + timedelta(days=rng.randrange(0, 640), hours=rng.randrange(24))
    m.extra["error_code"] = rng.choice(("VBS_NOT_RUNNING", "HotpatchPrerequisitesNotMet"))
    m.extra["gc_fresh_minutes"] = rng.randrange(5, 60 * 20)
    m.extra["assess_minutes"] = rng.randrange(30, 60 * 30)
    m.extra["wsus_variant"] = rng.randrange(4)
    m.extra["missed_variant"] = rng.randrange(2)
    m.extra["agent_minor"] = rng.randrange(40, 60)
    m.extra["created"] = day0(2024, 1, 1) + timedelta(days=rng.randrange(0, 300))
    return m
