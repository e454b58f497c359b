"""Finding reasons and remediations in the report language (one mapping, used only for non-English reports).

The audit views (sql/audit/4*.sql, 20_readiness.sql, waivers.py) write every reason and remediation in
English; findings.csv and English reports show that text untouched. For another language, each English
sentence is matched against the sentence patterns below. A pattern is the English sentence with named
placeholders (`%(machine)s`, `%(month)s`...); it is also the catalog msgid, so the translated msgstr is
the same sentence in the target language with the same placeholders. The SQL stays the only place that
judges a finding: these patterns only re-word its sentence.

Placeholder values are themselves translated when they are known phrases (PHRASES: calendar notes,
causes from data/release_calendar.csv, fallbacks like 'the monthly update'), except names and ids
(LITERAL_SLOTS). A sentence no pattern matches is shown in English; tests render the demo fleet in
Japanese and fail on any English sentence left, and check every finding code has its patterns.

Adding or rewording a sentence in SQL: add or update its pattern here, re-extract and translate
(docs/i18n.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from hotpatch_audit.i18n import N_, gettext

# Sentence patterns per finding code (reason, then remediation). Empty remediations stay empty.
REASONS: dict[str, tuple[str, ...]] = {
    # --- reboot_avoidance (sql/audit/40_reboot_avoidance.sql) ---
    "avoided": (N_("%(machine)s installed the %(month)s update without a reboot (%(kbs)s)."),),
    "expected_reboot": (
        N_("%(machine)s rebooted in %(month)s, a %(kind)s month, as planned."),
        N_("%(machine)s rebooted in %(month)s, a %(kind)s month, as planned (%(kbs)s)."),
    ),
    "unexpected_reboot": (
        N_("%(machine)s rebooted %(count)s time(s) in hotpatch month %(month)s while enrolled; cause: %(cause)s."),
    ),
    "avoidable_reboot": (
        N_(
            "%(machine)s is eligible for hotpatch but not enrolled (%(status)s) and rebooted in hotpatch month "
            "%(month)s for %(kbs)s; hotpatch would have avoided it."
        ),
    ),
    "no_install": (
        N_("%(machine)s installed no monthly quality update in %(month)s (%(kb)s still listed as available)."),
        N_("%(machine)s installed no monthly quality update in %(month)s (installation runs found none)."),
        N_(
            "%(machine)s installed no monthly quality update in %(month)s (the OS build stayed %(build)s in runs "
            "before and after the month)."
        ),
    ),
    "unknown": (N_("%(machine)s has no installation data covering %(month)s; the month is not judged."),),
    # --- missed_hotpatches (sql/audit/41_missed_hotpatches.sql) ---
    "missed": (
        N_(
            "%(machine)s has not installed the %(month)s hotpatch%(kb)s, %(days)s day(s) after the %(grace_end)s "
            "grace end; the latest assessment still lists it as available."
        ),
        N_(
            "%(machine)s has not installed the %(month)s hotpatch%(kb)s, %(days)s day(s) after the %(grace_end)s "
            "grace end; its installation failed and no later run installed it."
        ),
        N_(
            "%(machine)s has not installed the %(month)s hotpatch%(kb)s, %(days)s day(s) after the %(grace_end)s "
            "grace end; the installation history covering the month has no install of it."
        ),
        N_("%(machine)s installed the %(month)s hotpatch%(kb)s on %(date)s, %(days)s day(s) late."),
        N_(
            "%(machine)s installed the %(month)s hotpatch%(kb)s late: the OS build first shows it in run %(run)s "
            "(%(date)s), %(days)s day(s) after the grace end, with no installation record."
        ),
        N_("%(machine)s installed the %(month)s hotpatch%(kb)s in time."),
        N_("%(machine)s installed the %(month)s hotpatch%(kb)s in time (proved by the OS build in run %(run)s)."),
        N_("%(machine)s has not yet installed the %(month)s hotpatch; grace runs until %(grace_end)s."),
        N_(
            "%(machine)s did not install the %(month)s hotpatch%(kb)s by the %(grace_end)s grace end; %(closed_by)s "
            "(%(closed_month)s), a later cumulative update of the track installed on %(date)s, superseded it after "
            "%(days)s day(s) of exposure."
        ),
        N_(
            "%(machine)s has no evidence either way for the %(month)s hotpatch%(kb)s (no hotpatch-titled install, "
            "none listed as available, no failed install), so the %(month)s hotpatch is not judged."
        ),
        N_("%(machine)s has no installation data covering %(month)s, so the %(month)s hotpatch is not judged."),
    ),
    "stale": (
        N_("%(machine)s has no patch assessment, so the %(month)s hotpatch is not judged."),
        N_("%(machine)s has a stale patch assessment (%(date)s), so the %(month)s hotpatch is not judged."),
        N_("%(machine)s has no patch assessment, so the %(month)s baseline is not judged."),
        N_("%(machine)s has a stale patch assessment (%(date)s), so the %(month)s baseline is not judged."),
    ),
    "off_track": (
        N_(
            "%(machine)s left the hotpatch track in %(month)s by installing %(kbs)s, a cumulative update that is not "
            "the baseline or hotpatch; hotpatches cannot apply until the %(baseline)s baseline (months lost: "
            "%(lost)s)%(more)s; it returned to the track with %(closed_by)s (%(closed_month)s) on %(date)s, after "
            "%(days)s day(s)."
        ),
        N_(
            "%(machine)s left the hotpatch track in %(month)s by installing %(kbs)s, a cumulative update that is not "
            "the baseline or hotpatch; hotpatches cannot apply until the %(baseline)s baseline (months lost: "
            "%(lost)s)%(more)s."
        ),
        N_(
            "%(machine)s left the hotpatch track in %(month)s by installing %(kbs)s, a cumulative update that is not "
            "the baseline or hotpatch; hotpatches cannot apply until the next baseline (months lost: "
            "%(lost)s)%(more)s."
        ),
    ),
    "baseline_missed": (
        N_(
            "%(machine)s has not installed the %(month)s baseline %(kb)s, %(days)s day(s) after the %(grace_end)s "
            "grace end%(why)s, so that quarter's hotpatches cannot apply (months lost: %(lost)s)."
        ),
        N_(
            "%(machine)s installed the %(month)s baseline %(kb)s but the reboot is still pending after the grace "
            "period (reboot pending)."
        ),
        N_("%(machine)s installed the %(month)s baseline %(kb)s."),
        N_(
            "%(machine)s did not install the %(month)s baseline %(kb)s by the %(grace_end)s grace end; %(closed_by)s "
            "(%(closed_month)s), a later cumulative update of the track installed on %(date)s, superseded it after "
            "%(days)s day(s) of exposure."
        ),
        N_("%(machine)s installed the %(month)s baseline %(kb)s (proved by the OS build in run %(run)s)."),
        N_(
            "%(machine)s installed the %(month)s baseline %(kb)s (proved by %(proof)s, a hotpatch of the same "
            "quarter installed on %(date)s)."
        ),
        N_(
            "%(machine)s has no evidence either way for the %(month)s baseline%(kb)s (no Cumulative Update installed "
            "with a reboot, none listed as available, no failed install), so the %(month)s baseline is not judged."
        ),
        N_("%(machine)s has no installation data covering %(month)s, so the %(month)s baseline is not judged."),
    ),
    "enrollment_lost": (
        N_(
            "%(machine)s was Enabled for hotpatch in run %(run)s (%(date)s) and is now %(status)s; first seen not "
            "Enabled in run %(lost_run)s (%(lost_date)s)."
        ),
        N_(
            "%(machine)s was Enabled for hotpatch in run %(run)s (%(date)s) and is now %(status)s (%(error)s); first "
            "seen not Enabled in run %(lost_run)s (%(lost_date)s)."
        ),
    ),
    # --- wsus_misconfigurations (sql/audit/42_wsus_misconfigurations.sql) ---
    "wsus_confirmed": (
        N_(
            "%(machine)s gets quality updates from WSUS (UseWUServer=1, WUServer=%(server)s, %(policy)s), so it does "
            "not receive hotpatches (status %(status)s)."
        ),
    ),
    "wsus_unenrolled": (
        N_(
            "%(machine)s gets quality updates from WSUS (UseWUServer=1, WUServer=%(server)s, %(policy)s); this "
            "blocks enrolling it in hotpatch."
        ),
    ),
    "wsus_suspected": (
        N_(
            "%(machine)s is enrolled but in %(count)s hotpatch months (%(months)s) was offered or installed the "
            "standard cumulative update and never a hotpatch; this fits a WSUS update source (no guest facts to "
            "confirm)."
        ),
    ),
    # --- vbs_blockers (readiness gates 4-8, sql/audit/20_readiness.sql and 43_vbs_blockers.sql) ---
    "HYPERV_GEN1": (N_("%(machine)s is a Generation 1 Hyper-V guest; hotpatch needs Generation 2 (UEFI)."),),
    "FIRMWARE_NOT_UEFI": (N_("%(machine)s boots with BIOS firmware; VBS and hotpatch need UEFI with Secure Boot."),),
    "SECURE_BOOT_OFF": (N_("%(machine)s has Secure Boot off."),),
    "VBS_NOT_ENABLED": (
        N_("%(machine)s reports VirtualizationBasedSecurityStatus 0 (VBS not enabled)."),
        N_(
            "%(machine)s reports VirtualizationBasedSecurityStatus 0 (VBS not enabled); the next hotpatch will not "
            "apply."
        ),
    ),
    "VBS_NOT_RUNNING": (
        N_("%(machine)s reports VirtualizationBasedSecurityStatus 1 (enabled, not running)."),
        N_(
            "%(machine)s reports VirtualizationBasedSecurityStatus 1 (enabled, not running); the next hotpatch will "
            "not apply."
        ),
    ),
    "VBS_NESTED_VIRTUALIZATION": (
        N_(
            "%(machine)s is a VM with the Hyper-V role or WSL 2 and reports VBS enabled but not running (known "
            "nested-virtualization cause)."
        ),
    ),
    "HVCI_NOT_CONFIGURED": (
        N_("%(machine)s does not have memory integrity (HVCI) configured (SecurityServicesConfigured lacks 2)."),
    ),
    "VBS_UNKNOWN": (
        N_("%(machine)s has no fresh guest facts on VBS, so VBS cannot be verified."),
        N_("%(machine)s has no guest facts, but a hotpatch installed without a reboot, which shows VBS is running."),
    ),
    # --- waiver_expired (any audit; hotpatch_audit.waivers) ---
    "waiver_expired": (
        N_(
            "Waiver %(waiver)s (%(code)s, approved by %(approver)s) expired on %(date)s and matches no open finding in "
            "this run; remove it from the waiver file."
        ),
        N_(
            "%(machine)s was covered by waiver %(waiver)s (%(code)s, approved by %(approver)s) which expired on "
            "%(date)s; its %(code)s findings count again."
        ),
    ),
}

_VBS_ENABLE_FIX = N_(
    "Turn on VBS: Group Policy Computer Configuration > Administrative Templates > System > Device Guard > Turn On "
    "Virtualization Based Security (Enabled), or set "
    "HKLM\\System\\CurrentControlSet\\Control\\DeviceGuard\\EnableVirtualizationBasedSecurity = 1; reboot and "
    "confirm VirtualizationBasedSecurityStatus = 2."
)
_VBS_RUN_FIX = N_(
    "VBS is enabled but the hypervisor does not run it: turn on virtualization extensions (Intel VT-x / AMD-V) and "
    "IOMMU in the firmware, make sure the hypervisor launches (bcdedit /enum shows hypervisorlaunchtype Auto), and on "
    "a VM expose virtualization extensions from the host; reboot and confirm VirtualizationBasedSecurityStatus = 2."
)
_UEFI_FIX = N_("Rebuild or convert the machine to UEFI (Hyper-V Generation 2).")
_WSUS_FIX = N_(
    "In the Group Policy Computer Configuration > Administrative Templates > Windows Components > Windows Update > "
    "Manage updates offered from Windows Server Update Service > Specify source service for specific classes of "
    "Windows Updates, set Quality Updates to Windows Update (it writes "
    "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\SetPolicyDrivenUpdateSourceForQualityUpdates = 0)"
    "%(also)s. A domain GPO overrides local edits: change the GPO that sets UseWUServer/WUServer, then run gpupdate "
    "/force."
)
_ASSESS_FIX = N_("Enable periodic assessment so the machine is assessed at least weekly.")
_OFF_TRACK_FIXES = (
    N_(
        "Microsoft caused this (the Arc hotpatch licence expiry), not the machine's owner: apply Microsoft's licence "
        "workaround (feature override 4264695439) on Arc machines and install the %(baseline)s baseline to return to "
        "the hotpatch track."
    ),
    N_(
        "Microsoft caused this (the Arc hotpatch licence expiry), not the machine's owner: apply Microsoft's licence "
        "workaround (feature override 4264695439) on Arc machines and install the next baseline to return to the "
        "hotpatch track."
    ),
    N_(
        "Microsoft caused this (an update it offered to hotpatch machines), not the machine's schedule: install the "
        "%(baseline)s baseline to return to the hotpatch track."
    ),
    N_(
        "Microsoft caused this (an update it offered to hotpatch machines), not the machine's schedule: install the "
        "next baseline to return to the hotpatch track."
    ),
    N_(
        "Install the %(baseline)s baseline to return to the hotpatch track; apply Microsoft's licence workaround "
        "(feature override 4264695439) on Arc machines."
    ),
    N_(
        "Install the %(baseline)s baseline to return to the hotpatch track; exclude non-hotpatch cumulative updates "
        "from hotpatch machines' schedules."
    ),
    N_(
        "Install the next baseline to return to the hotpatch track; apply Microsoft's licence workaround (feature "
        "override 4264695439) on Arc machines."
    ),
    N_(
        "Install the next baseline to return to the hotpatch track; exclude non-hotpatch cumulative updates from "
        "hotpatch machines' schedules."
    ),
)

REMEDIATIONS: dict[str, tuple[str, ...]] = {
    "avoided": (),
    "expected_reboot": (),
    "unexpected_reboot": (
        N_(
            "Review the updates that rebooted the machine (%(cause)s); schedule .NET and non-security updates with the "
            "quarterly baseline, or return the machine to the hotpatch track at the next baseline."
        ),
    ),
    "avoidable_reboot": (
        N_(
            "Enable hotpatch for this machine (Arc: license Hotpatch; Azure: enableHotpatching with patchMode "
            "AutomaticByPlatform)."
        ),
    ),
    "no_install": (N_("Check the machine's maintenance schedule and update source; install the month's update."),),
    "unknown": (
        N_(
            "Make sure Update Manager installation results are collected every month (run the pipeline at least "
            "every 30 days)."
        ),
    ),
    "missed": (
        N_(
            "Install the latest update of the track, %(kb)s (%(month)s), through Update Manager (Windows Update "
            "source) and check the maintenance schedule."
        ),
        N_(
            "Install the latest update of the track (%(month)s) through Update Manager (Windows Update source) and "
            "check the maintenance schedule."
        ),
        N_("Install %(kb)s through Update Manager (Windows Update source) and check the maintenance schedule."),
        N_("Schedule hotpatch installs within the grace period after Patch Tuesday."),
        N_(
            "Make sure Update Manager installation results are collected every month, and add the month's hotpatch KB "
            "to the release calendar."
        ),
    ),
    "stale": (
        N_(
            "Enable periodic assessment (assessmentMode AutomaticByPlatform) so the machine is assessed at least "
            "weekly."
        ),
        _ASSESS_FIX,
    ),
    "off_track": _OFF_TRACK_FIXES,
    "baseline_missed": (
        N_("Install %(kb)s and reboot in the next maintenance window."),
        N_(
            "Install the current baseline, %(kb)s (%(month)s), and reboot in the next maintenance window; it carries "
            "the %(base_month)s baseline."
        ),
        N_("Reboot the machine to complete %(kb)s."),
        _ASSESS_FIX,
    ),
    "enrollment_lost": (
        N_("Re-enable hotpatch in the Arc Hotpatch blade and check the licence feature and VBS."),
        N_("Set enableHotpatching = true with patchMode AutomaticByPlatform on the VM."),
    ),
    "wsus_confirmed": (_WSUS_FIX,),
    "wsus_unenrolled": (_WSUS_FIX,),
    "wsus_suspected": (
        N_(
            "Deploy the hotpatch-audit-guest assignment to confirm the update source; if it is WSUS, set Quality "
            "Updates to Windows Update in the Group Policy Specify source service for specific classes of Windows "
            "Updates (SetPolicyDrivenUpdateSourceForQualityUpdates = 0), in the domain GPO that applies."
        ),
    ),
    "HYPERV_GEN1": (_UEFI_FIX,),
    "FIRMWARE_NOT_UEFI": (_UEFI_FIX,),
    "SECURE_BOOT_OFF": (N_("Turn on Secure Boot in the firmware."),),
    "VBS_NOT_ENABLED": (_VBS_ENABLE_FIX,),
    "VBS_NOT_RUNNING": (_VBS_RUN_FIX,),
    "VBS_NESTED_VIRTUALIZATION": (
        N_(
            "Remove the Hyper-V role or WSL 2 from this VM, or enable nested virtualization support on the host, then "
            "reboot."
        ),
    ),
    "HVCI_NOT_CONFIGURED": (N_("Turn on memory integrity (HypervisorEnforcedCodeIntegrity) and reboot."),),
    "VBS_UNKNOWN": (
        N_("Deploy the hotpatch-audit-guest Machine Configuration assignment (or import guest facts)."),
        N_("Deploy the hotpatch-audit-guest assignment to keep VBS evidence current."),
    ),
    "waiver_expired": (
        N_(
            "Fix the finding, or renew the waiver with a new expiry and approval in %(path)s (reviewed in a pull "
            "request)."
        ),
    ),
}

# Phrases that fill placeholders (and a few report values that come from SQL): known text is translated,
# anything else (KB numbers, months, Azure values) is kept as it is.
PHRASES: tuple[str, ...] = (
    # fallbacks inside reasons and remediations
    N_("hotpatch"),
    N_("baseline"),
    N_("unplanned baseline"),
    N_("the monthly update"),
    N_("the month's hotpatch"),
    N_("the cumulative update"),
    N_("none yet"),
    N_("a hotpatch"),
    N_("the %(month)s update"),
    N_("no non-hotpatch KB recorded"),
    N_("see evidence"),
    N_("none"),
    N_("%(kbs)s; off track since %(month)s (%(cause)s)"),
    N_(" (KB unknown: %(note)s)"),
    N_(" %(kb)s (%(note)s)"),
    N_("%(kb)s (%(note)s)"),
    N_(". Cause: %(cause)s"),
    N_(". Off-track updates up to the next baseline (no new finding): %(kbs)s"),
    N_(". Cause: %(cause)s. Off-track updates up to the next baseline (no new finding): %(kbs)s"),
    N_(" (the latest assessment still lists it as available)"),
    N_(" (its installation failed and no later run installed it)"),
    N_(
        " and disable Do not connect to any Windows Update Internet locations "
        "(DoNotConnectToWindowsUpdateInternetLocations = 0)"
    ),
    N_("no SetPolicyDrivenUpdateSourceForQualityUpdates"),
    N_("no SetPolicyDrivenUpdateSourceForQualityUpdates, %(rest)s"),
    # calendar notes (sql/audit/10_machine_months.sql)
    N_("calendar rule, not verified"),
    N_("calendar row without KB, not verified"),
    N_("calendar row, not verified"),
    N_("verified"),
    N_("%(note)s; recognised by title"),
    # causes quoted from data/release_calendar.csv (a test checks every cause there has a translation)
    N_("the October 2025 out-of-band update KB5070881, which Microsoft mis-offered to some hotpatch-enrolled machines"),
    N_("the October 2025 Arc hotpatch licence expiry (Microsoft feature-licensing issue after KB5066835)"),
    # month-over-month change details (sql/audit/96_finding_changes.sql)
    N_("open in both runs"),
    N_("open again; first open %(date)s, not open in the previous run"),
    N_("first time open in this scope"),
    N_("waived in this run"),
    N_("passes in this run"),
    N_("status unknown in this run (missing or stale data)"),
    N_("machine no longer in this run's scope"),
    N_("no finding in this run, but its data has gaps: %(issues)s"),
    N_("month %(month)s left the reporting period (starts %(start)s)"),
    N_("no longer found, machine in scope with complete data"),
    N_("closed by %(kb)s installed %(date)s"),
    N_("closed since the previous run"),
    N_("no longer open: a past month's outcome"),
    N_("no longer open: an opportunity, not a finding"),
    # coverage issue labels (sql/report/coverage_issues.sql)
    N_("No patch assessment"),
    N_("Patch assessment older than the stale limit"),
    N_("No guest facts (VBS, update source)"),
    N_("Guest facts older than the limit"),
    N_("No installation data"),
    N_("Hotpatch status unknown"),
    # readiness gate labels (sql/report/readiness_funnel.sql)
    N_("Eligible OS and edition"),
    N_("Build 26100.1742 or later (Arc)"),
    N_("Arc agent connected"),
    N_("UEFI, Secure Boot, Generation 2"),
    N_("VBS enabled"),
    N_("VBS running"),
    N_("Memory integrity (HVCI) configured"),
    N_("VBS verified by guest facts"),
    N_("Hotpatch enrollment"),
    N_("Update source is Windows Update"),
    N_("On the current baseline"),
)

# Placeholders holding names, ids, dates or Azure text: never translated.
LITERAL_SLOTS = frozenset(
    {
        "machine",
        "waiver",
        "approver",
        "code",
        "run",
        "date",
        "grace_end",
        "server",
        "path",
        "error",
        "month",
        "count",
        "days",
        "start",
        "closed_month",
        "base_month",
        "build",
        "lost_run",
        "lost_date",
    }
)

_SLOT = re.compile(r"%\((\w+)\)s")
# What a placeholder can hold when it is not free text: keeps sentences with several placeholders unambiguous.
_SLOT_REGEX = {
    "count": r"-?\d+",
    "days": r"-?\d+",
    "month": r"\d{4}-\d{2}",
    "closed_month": r"\d{4}-\d{2}",
    "base_month": r"\d{4}-\d{2}",
    "lost_date": r"\d{4}-\d{2}-\d{2}[0-9:.+ T-]*?",
    "run": r"\S+",
    "lost_run": r"\S+",
    "date": r"\d{4}-\d{2}-\d{2}[0-9:.+ T-]*?",
    "grace_end": r"\d{4}-\d{2}-\d{2}",
}


class _Pattern:
    """An English sentence pattern compiled to a regular expression (repeated placeholders must repeat)."""

    def __init__(self, msgid: str) -> None:
        self.msgid = msgid
        parts: list[str] = []
        seen: set[str] = set()
        pos = 0
        for m in _SLOT.finditer(msgid):
            parts.append(re.escape(msgid[pos : m.start()]))
            name = m.group(1)
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{_SLOT_REGEX.get(name, '.*?')})")
            seen.add(name)
            pos = m.end()
        parts.append(re.escape(msgid[pos:]))
        self.regex = re.compile("".join(parts), re.S)
        self.literal = len(_SLOT.sub("", msgid))  # more fixed text = more specific: tried first

    def render(self, text: str) -> str | None:
        m = self.regex.fullmatch(text)
        if m is None:
            return None
        values = {k: v if k in LITERAL_SLOTS else translate_phrase(v) for k, v in m.groupdict().items()}
        return gettext(self.msgid) % values


@cache
def _compiled(msgids: tuple[str, ...]) -> tuple[_Pattern, ...]:
    return tuple(sorted((_Pattern(p) for p in msgids), key=lambda p: -p.literal))


def _all(table: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for ps in table.values() for p in ps))


def _translate(text: str, candidates: Iterable[_Pattern]) -> str | None:
    for pattern in candidates:
        if (out := pattern.render(text)) is not None:
            return out
    return None


def translate_phrase(text: str) -> str:
    """A placeholder value or SQL label in the report language when it is a known phrase; otherwise unchanged."""
    if not text:
        return text
    found = _translate(text, _compiled(PHRASES))
    return text if found is None else found


def translate_sentence(code: str | None, text: str | None, table: Mapping[str, tuple[str, ...]]) -> str | None:
    """One reason or remediation in the report language: the code's patterns first, then every pattern."""
    if not text:
        return text
    found = _translate(text, _compiled(table.get(code or "", ())))
    if found is None:
        found = _translate(text, _compiled(_all(table)))
    return text if found is None else found


def translate_finding(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a finding row (report.action_items, finding_changes_items) with reason, remediation and
    change_detail in the current report language."""
    out = dict(row)
    code = row.get("code")
    if "reason" in out:
        out["reason"] = translate_sentence(code, out["reason"], REASONS)
    if "remediation" in out:
        out["remediation"] = translate_sentence(code, out["remediation"], REMEDIATIONS)
    if out.get("change_detail"):
        out["change_detail"] = translate_phrase(out["change_detail"])
    return out
