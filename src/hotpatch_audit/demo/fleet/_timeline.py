"""What happened to a machine over time: hotpatch status, agent state, installation runs, assessments."""

# ruff: noqa: S311, E501  (seeded demo data, not cryptography; long literal rows)

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ._calendar import (
    BASELINE_KINDS,
    HOTPATCH_TRACKS,
    Calendar,
    Update,
    definition_update,
    month_from_ordinal,
    month_key,
    month_ordinal,
    patch_tuesday,
)
from ._machines import Machine, new_guid

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
RETENTION_DAYS = 30  # installation results kept by Resource Graph
ASSESSMENT_KEEP_MAX_DAYS = 40

# Maintenance configurations: name, subscription index, recurEvery offset days after Patch Tuesday,
# time zone, local start, UTC hour of the start, rebootSetting, classifications, excludeKbsRequiringReboot.
SCHEDULES: tuple[tuple[str, int, int, str, str, int, str, tuple[str, ...], bool], ...] = (
    (
        "mc-hotpatch-only-tokyo",
        2,
        2,
        "Tokyo Standard Time",
        "02:00",
        17,
        "IfRequired",
        ("Critical", "Security"),
        True,
    ),
    (
        "mc-prod-wave1",
        0,
        4,
        "W. Europe Standard Time",
        "22:00",
        21,
        "IfRequired",
        ("Critical", "Security", "UpdateRollup", "Definition"),
        False,
    ),
    (
        "mc-prod-wave2",
        0,
        6,
        "Eastern Standard Time",
        "23:30",
        4,
        "IfRequired",
        ("Critical", "Security"),
        False,
    ),
    (
        "mc-arc-tokyo-monthly",
        2,
        3,
        "Tokyo Standard Time",
        "01:00",
        16,
        "IfRequired",
        ("Critical", "Security", "Updates"),
        False,
    ),
    (
        "mc-arc-frankfurt-noreboot",
        2,
        5,
        "W. Europe Standard Time",
        "03:00",
        2,
        "Never",
        ("Critical", "Security"),
        False,
    ),
    (
        "mc-dev-weekend",
        1,
        1,
        "UTC",
        "06:00",
        6,
        "IfRequired",
        ("Critical", "Security", "Updates", "Definition"),
        False,
    ),
)


@dataclass(slots=True)
class Run:
    """One Update Manager installation run and its per-update outcomes."""

    guid: str
    start: datetime
    end: datetime
    status: str
    reboot: str
    patches: list[tuple[Update, str]]
    started_by: str = "Platform"
    maintenance_run_id: str | None = None
    window_exceeded: bool = False
    error: tuple[str, str] | None = None


@dataclass(slots=True)
class History:
    """A machine's simulated history up to as_of (runs outside retention are dropped later)."""

    runs: list[Run] = field(default_factory=list)
    installed: dict[str, datetime] = field(default_factory=dict)  # kb -> first install time
    targets: list[tuple[Update, datetime]] = field(default_factory=list)  # (update it should have, due)
    build: str | None = None
    reboot_pending_since: datetime | None = None


def month_rng(seed: int, m: Machine, month: str, salt: int = 0) -> random.Random:
    return random.Random((seed << 48) | (m.index << 16) | (salt << 12) | (month_ordinal(month) & 0xFFF))


def at(d: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


# --- status over time ---------------------------------------------------------------------------


def arc_hotpatch_state(m: Machine, t: datetime) -> tuple[str | None, str | None]:
    """(licence feature subscriptionStatus or None, OS hotpatchEnablementStatus or None) at time t."""
    if m.kind != "arc" or m.hp_state == "none":
        return None, None
    if m.behaviour == "newly" and m.change_at:
        if t < m.change_at:
            return None, None
        if t < m.change_at + timedelta(days=1):
            return "Enabling", "PendingEvaluation"
        return "Enabled", "Enabled"
    if m.behaviour == "lost" and m.change_at and t >= m.change_at:
        return "Disabled", "Disabled"
    lic, _, os_ = m.hp_state.partition("/")
    return lic, (os_ or None)


def vm_hotpatching(m: Machine, t: datetime) -> bool:
    if m.kind != "vm" or m.hp_state != "on":
        return False
    if m.behaviour == "newly" and m.change_at and t < m.change_at:
        return False
    return not (m.behaviour == "lost" and m.change_at and t >= m.change_at)


def enrolled(m: Machine, t: datetime) -> bool:
    if m.kind == "vm":
        return m.eligible and vm_hotpatching(m, t) and m.patch_mode == "AutomaticByPlatform"
    return arc_hotpatch_state(m, t) == ("Enabled", "Enabled")


def offline_start(m: Machine, t: datetime) -> datetime | None:
    """Start of the agent outage that covers t, or None when the machine is connected at t."""
    if m.offline_since and t >= m.offline_since:
        return m.offline_since
    if m.offline_cycle:
        period, length, phase = m.offline_cycle
        day = (t - EPOCH).days
        pos = (day + phase) % period
        if pos < length:
            return EPOCH + timedelta(days=day - pos, hours=(phase * 7) % 24)
    return None


def agent_status(m: Machine, t: datetime) -> tuple[str, datetime]:
    off = offline_start(m, t)
    if off and off <= t:
        return ("Expired" if t - off > timedelta(days=45) else "Disconnected"), off
    if m.agent_error:
        return "Error", t - timedelta(days=3 + m.index % 9)
    if m.offline_cycle:
        period, length, phase = m.offline_cycle
        day = (t - EPOCH).days
        back = (day + phase) % period - length
        return "Connected", EPOCH + timedelta(days=day - back, hours=(phase * 5) % 24)
    return "Connected", m.extra["created"]


# --- monthly installation behaviour -------------------------------------------------------------


def _run_start(m: Machine, released: date, month: str) -> tuple[datetime, str | None]:
    """When the machine's monthly run starts, and the schedule it belongs to."""
    if m.schedule is not None:
        s = SCHEDULES[m.schedule]
        day = patch_tuesday(month) + timedelta(days=s[2])
        return at(day, s[5], 0) + timedelta(minutes=m.index % 7), s[0]
    return at(released + timedelta(days=m.offset_days), m.hour, (m.index * 7) % 60), None


def _make_run(
    rng: random.Random,
    m: Machine,
    seed: int,
    start: datetime,
    patches: list[tuple[Update, str]],
    schedule: str | None,
    *,
    failed: bool = False,
    started_by: str = "Platform",
) -> Run:
    guid = new_guid(rng)
    installed_reboot = any(u.reboot for u, st in patches if st == "Installed")
    reboot = "NotNeeded"
    if installed_reboot:
        setting = "IfRequired"
        if m.schedule is not None:
            setting = SCHEDULES[m.schedule][6]
        reboot = "Required" if setting == "Never" or rng.random() < 0.04 else "Completed"
    minutes = rng.randrange(6, 45) + (rng.randrange(4, 15) if reboot == "Completed" else 0)
    status = "Failed" if failed else ("Succeeded" if all(st != "Failed" for _, st in patches) else "Failed")
    error = None
    if status == "Failed":
        error = rng.choice(
            (
                ("InstallationFailed", "Failed to install 1 of 1 patches. Error 0x800f0922."),
                (
                    "DownloadFailed",
                    "Failed to download updates: 0x80244022 (WU_E_PT_HTTP_STATUS_SERVICE_UNAVAIL).",
                ),
            )
        )
    mrun = None
    if schedule is not None:
        mrun = str(new_guid(random.Random((seed << 20) ^ hash_month(start) ^ (m.schedule or 0))))
    return Run(
        guid,
        start,
        start + timedelta(minutes=minutes),
        status,
        reboot,
        patches,
        started_by,
        mrun,
        minutes > 230,
        error,
    )


def hash_month(t: datetime) -> int:
    return (t.year * 12 + t.month) << 4


def _family_build(family: str, month: str) -> str:
    """Synthetic builds for the standard-only families (calendar does not list them)."""
    n = month_ordinal(month)
    return f"20348.{2000 + n * 61}" if family == "ws2022" else f"17763.{4800 + n * 57}"


def _initial_build(cal: Calendar, m: Machine, month: str) -> str | None:
    if m.behaviour == "frozen":
        return "26100.1457"
    if m.family not in HOTPATCH_TRACKS:
        return _family_build(m.family, month)
    n = month_ordinal(month)
    for back in range(1, 24):
        mo = month_from_ordinal(n - back)
        upd = (
            cal.standard_lcu(m.family, mo)
            if m.behaviour == "wsus" or not m.eligible
            else cal.monthly(m.family, mo)
        )
        if upd.build:
            return upd.build
    return "26100.1742" if m.family == "ws2025" else "20348.2227"


def simulate(cal: Calendar, m: Machine, seed: int, as_of: datetime) -> History:
    """Months from the quarter's baseline before the retention window up to as_of; runs may end after as_of."""
    h = History()
    if not m.windows:
        return _simulate_linux(m, seed, as_of, h)
    window_start = as_of - timedelta(days=RETENTION_DAYS + 45)
    first = month_ordinal(month_key(window_start))
    first -= first % 3  # start on a planned baseline month: state (on/off track) resets there
    last = month_ordinal(month_key(as_of))
    h.build = _initial_build(cal, m, month_from_ordinal(first))
    if m.behaviour == "frozen":
        return h
    on_track = m.behaviour != "baseline_missed"
    for n in range(first, last + 1):
        month = month_from_ordinal(n)
        rng = month_rng(seed, m, month)
        track = m.family if m.family in HOTPATCH_TRACKS else None
        monthly = cal.monthly(track, month) if track else None
        lcu = cal.standard_lcu(m.family, month)
        released = monthly.released if monthly else lcu.released
        start, schedule = _run_start(m, released, month)
        if m.patch_mode in ("AutomaticByOS", "ImageDefault") or (
            m.patch_mode == "Manual" and rng.random() < 0.5
        ):
            continue  # updates installed outside Update Manager: no runs recorded
        if offline_start(m, start):
            continue  # agent offline: nothing installed, nothing reported
        started_by = "User" if m.patch_mode == "Manual" else "Platform"
        is_enrolled = enrolled(m, start)
        kind = monthly.kind if monthly else "lcu"
        patches: list[tuple[Update, str]]
        if monthly and kind in BASELINE_KINDS:
            target = monthly
            if m.behaviour == "baseline_missed":
                patches = [(monthly, "Excluded")]  # schedule excludes KBs that require a reboot
            else:
                patches = [(monthly, "Installed")]
                on_track = True
        elif (
            monthly
            and is_enrolled
            and on_track
            and m.behaviour != "wsus"
            and not (m.behaviour == "licexp" and m.kind == "arc" and month in ("2025-11", "2025-12"))
        ):
            target = monthly
            if m.behaviour == "missed":
                if m.extra["missed_variant"] == 0:
                    patches = [(monthly, "Failed")]
                else:
                    h.targets.append((target, at(released)))
                    continue  # no quality run this month (machine was not patched; at most Defender runs)
            else:
                patches = [(monthly, "Installed")]
                if m.behaviour == "dotnet" or rng.random() < 0.04:
                    patches.append((cal.dotnet(m.family, month), "Installed"))
        elif m.behaviour == "baseline_missed":
            target = lcu
            patches = [(lcu, "Excluded")]  # off the track: only the LCU applies, and it needs a reboot
        else:
            target = lcu
            patches = [(lcu, "Installed")]
        h.targets.append((target, at(released)))
        if rng.random() < 0.03 and all(st == "Installed" for _, st in patches):
            # a failed first attempt, retried the next day
            failed = [(u, "Failed") for u, _ in patches[:1]]
            h.runs.append(
                _make_run(rng, m, seed, start, failed, schedule, failed=True, started_by=started_by)
            )
            start = start + timedelta(days=1)
        run = _make_run(rng, m, seed, start, patches, schedule, started_by=started_by)
        h.runs.append(run)
        # the October 2025 out-of-band case (ws2025 only)
        if month == "2025-10" and m.family == "ws2025" and m.behaviour in ("oob881", "oob893"):
            kb = "5070881" if m.behaviour == "oob881" else "5070893"
            upd = cal.oob("ws2025", month, kb)
            if upd:
                oob_start = at(upd.released + timedelta(days=m.index % 5), 2 + m.index % 6)
                h.runs.append(
                    _make_run(rng, m, seed, oob_start, [(upd, "Installed")], None, started_by="User")
                )
                if upd.kind == "oob_lcu":
                    on_track = False
    h.runs.sort(key=lambda r: r.start)
    for r in h.runs:
        if r.end > as_of:
            continue
        for u, st in r.patches:
            if st == "Installed" and u.kb not in h.installed:
                h.installed[u.kb] = r.end
                if u.quality and u.build:
                    h.build = u.build
        if r.reboot == "Required":
            h.reboot_pending_since = r.end
        elif r.reboot == "Completed":
            h.reboot_pending_since = None
    return h


def _simulate_linux(m: Machine, seed: int, as_of: datetime, h: History) -> History:
    return h


def takes_definitions(m: Machine) -> bool:
    """Whether Update Manager installs Defender definitions on this machine: only through a maintenance
    configuration whose classifications include Definition. Microsoft: "Definition updates and other patches not
    classified as Critical or Security won't be installed through automatic VM guest patching"
    (azure-compute-docs, articles/virtual-machines/automatic-vm-guest-patching.md); machines patched by the OS,
    by hand or by the image's default record no Update Manager runs at all (see simulate)."""
    return (
        m.schedule is not None
        and "Definition" in SCHEDULES[m.schedule][7]
        and m.patch_mode not in ("AutomaticByOS", "ImageDefault", "Manual")
    )


def defender_runs(m: Machine, seed: int, as_of: datetime) -> list[Run]:
    """Weekly definition-only runs (Defender signatures), not quality updates, on machines whose maintenance
    configuration takes Definition updates."""
    if m.defender_weekday is None or not takes_definitions(m):
        return []
    runs: list[Run] = []
    start_day = (as_of - timedelta(days=RETENTION_DAYS)).date()
    for i in range(RETENTION_DAYS + 1):
        d = start_day + timedelta(days=i)
        if d.weekday() != m.defender_weekday:
            continue
        rng = random.Random((seed << 48) | (m.index << 20) | (d.toordinal() & 0xFFFFF))
        upd = definition_update(d, rng.randrange(1, 400))
        start = at(d, m.hour, 30)
        runs.append(
            Run(
                new_guid(rng),
                start,
                start + timedelta(minutes=rng.randrange(2, 6)),
                "Succeeded",
                "NotNeeded",
                [(upd, "Installed")],
                "Platform",
            )
        )
    return runs


def retained_runs(m: Machine, seed: int, as_of: datetime, h: History) -> list[Run]:
    """Runs Resource Graph still holds at as_of: started within 30 days, finished, machine online then."""
    lo = as_of - timedelta(days=RETENTION_DAYS)
    out = []
    for r in h.runs + defender_runs(m, seed, as_of):
        if r.start < lo or r.end > as_of:
            continue
        if offline_start(m, r.start):
            continue
        out.append(r)
    out.sort(key=lambda r: r.start)
    return out


def assessment_time(m: Machine, as_of: datetime) -> datetime | None:
    """lastModifiedDateTime of the latest assessment Resource Graph still holds at as_of, or None."""
    if m.never_assessed:
        return None
    ta = as_of - timedelta(minutes=int(m.extra["assess_minutes"]))
    off = offline_start(m, as_of)
    if off:
        ta = min(ta, off - timedelta(minutes=int(m.extra["assess_minutes"]) % 600))
    if m.assess_phase is not None:
        day = (as_of - EPOCH).days
        pos = (day + m.assess_phase) % 61
        if pos < 35:
            ta = min(ta, as_of - timedelta(days=pos, minutes=int(m.extra["assess_minutes"])))
            if pos > m.assess_keep_days:
                return None
    if as_of - ta > timedelta(days=ASSESSMENT_KEEP_MAX_DAYS):
        return None
    return ta


def available_updates(m: Machine, h: History, ta: datetime) -> list[Update]:
    """Updates the assessment at ta lists as missing: the latest due target not installed by then."""
    due = [(u, d) for u, d in h.targets if d <= ta]
    if not due:
        return []
    out: list[Update] = []
    latest = due[-1][0]
    if h.installed.get(latest.kb, ta + timedelta(seconds=1)) > ta:
        out.append(latest)
    if m.behaviour == "baseline_missed":
        baselines = [u for u, _ in due if u.kind in BASELINE_KINDS]
        if baselines and baselines[-1].kb != latest.kb:
            out.append(baselines[-1])
    return out
