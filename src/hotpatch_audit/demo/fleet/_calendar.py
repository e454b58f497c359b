"""The release calendar as the demo fleet sees it: one monthly release per track, OOB events, synthetic fills."""

# ruff: noqa: S311, E501  (seeded demo data, not cryptography; long literal rows)

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

# Tracks of the hotpatch lines (calendar) and the standard-only OS families the fleet also runs.
HOTPATCH_TRACKS = ("ws2025", "ws2022-azure-edition")
_FAMILY_INDEX = {"ws2025": 0, "ws2022-azure-edition": 1, "ws2022": 2, "ws2019": 3}
_OS_VERSION_TEXT = {
    "ws2025": "Microsoft server operating system version 24H2",
    "ws2022-azure-edition": "Microsoft server operating system version 21H2",
    "ws2022": "Microsoft server operating system version 21H2",
    "ws2019": "Windows Server 2019 (1809)",
}
_HOTPATCH_PRODUCT = {
    "ws2025": "Windows Server 2025 Datacenter: Azure Edition",
    "ws2022-azure-edition": "Windows Server 2022 Datacenter: Azure Edition",
}
BASELINE_KINDS = ("baseline", "unplanned_baseline")
MONTHLY_KINDS = ("hotpatch", *BASELINE_KINDS)

# Synthetic KB ranges (clearly outside what Microsoft had shipped when the calendar was written).
SYNTHETIC_HOTPATCH_KB = 5190000
SYNTHETIC_LCU_KB = 5192000
SYNTHETIC_DOTNET_KB = 5197000
# A standard LCU's build sits this many revisions above the same month's hotpatch build (synthetic).
_LCU_BUILD_STEP = 81


@dataclass(frozen=True, slots=True)
class Update:
    """One Microsoft update as Update Manager lists it."""

    kb: str  # digits only, as Resource Graph rows carry kbId
    title: str
    kind: str  # hotpatch | baseline | unplanned_baseline | lcu | oob_lcu | oob_hotpatch | dotnet | definition
    released: date
    build: str | None  # "26100.7092" or None when unknown
    reboot: bool  # needs a reboot when installed

    @property
    def quality(self) -> bool:
        """A quality (OS cumulative or hotpatch) update, as opposed to .NET or definitions."""
        return self.kind not in ("dotnet", "definition")


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def month_ordinal(month: str) -> int:
    """Months since 2020-01 (0-based), a small stable number per month."""
    y, m = int(month[:4]), int(month[5:7])
    return (y - 2020) * 12 + (m - 1)


def month_from_ordinal(n: int) -> str:
    return f"{2020 + n // 12:04d}-{n % 12 + 1:02d}"


def patch_tuesday(month: str) -> date:
    """Second Tuesday of the month."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    return first + timedelta(days=(1 - first.weekday()) % 7 + 7)


def _hotpatch_title(track: str, month: str, kb: str) -> str:
    return f"{month} Security Hotpatch for {_HOTPATCH_PRODUCT[track]} for x64-based Systems (KB{kb})"


def _lcu_title(family: str, month: str, kb: str) -> str:
    return f"{month} Cumulative Update for {_OS_VERSION_TEXT[family]} for x64-based Systems (KB{kb})"


def _bump(build: str | None, step: int) -> str | None:
    if not build:
        return None
    major, ubr = build.split(".")
    return f"{major}.{int(ubr) + step}"


class Calendar:
    """Read-only view of data/release_calendar.csv with the default rule for months without a row."""

    def __init__(self, path: Path) -> None:
        self._rows: dict[tuple[str, str], dict[str, str]] = {}
        self._oob: dict[tuple[str, str], list[dict[str, str]]] = {}
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (row["track"], row["month"])
                if row["kind"].startswith("oob_"):
                    self._oob.setdefault(key, []).append(row)
                elif row["kind"] in MONTHLY_KINDS:
                    self._rows[key] = row
                # other kinds are calendar events (e.g. licence_expiry): the fleet models them by archetype
        self._cache: dict[tuple[str, str, str], Update] = {}

    def kind(self, track: str, month: str) -> str:
        row = self._rows.get((track, month))
        if row:
            return row["kind"]
        return "baseline" if int(month[5:7]) in (1, 4, 7, 10) else "hotpatch"

    def monthly(self, track: str, month: str) -> Update:
        """The month's release on a hotpatch track: the hotpatch, or the (planned or unplanned) baseline."""
        key = ("m", track, month)
        hit = self._cache.get(key)
        if hit:
            return hit
        row = self._rows.get((track, month), {})
        kind = self.kind(track, month)
        kb = (row.get("kb") or "").upper().removeprefix("KB")
        if not kb:
            base = SYNTHETIC_HOTPATCH_KB if kind == "hotpatch" else SYNTHETIC_LCU_KB
            kb = str(base + _FAMILY_INDEX[track] * 1000 + month_ordinal(month) % 1000)
        released = (
            date.fromisoformat(row["release_date"]) if row.get("release_date") else patch_tuesday(month)
        )
        build = row.get("os_build") or None
        title = _hotpatch_title(track, month, kb) if kind == "hotpatch" else _lcu_title(track, month, kb)
        upd = Update(kb, title, kind, released, build, kind != "hotpatch")
        self._cache[key] = upd
        return upd

    def standard_lcu(self, family: str, month: str) -> Update:
        """The month's ordinary cumulative update (reboot). On a hotpatch track's baseline month it is the baseline."""
        key = ("s", family, month)
        hit = self._cache.get(key)
        if hit:
            return hit
        if family in HOTPATCH_TRACKS and self.kind(family, month) in BASELINE_KINDS:
            upd = self.monthly(family, month)
        else:
            track = family if family in HOTPATCH_TRACKS else None
            kb = str(SYNTHETIC_LCU_KB + _FAMILY_INDEX[family] * 1000 + month_ordinal(month) % 1000)
            build = _bump(self.monthly(track, month).build, _LCU_BUILD_STEP) if track else None
            upd = Update(kb, _lcu_title(family, month, kb), "lcu", patch_tuesday(month), build, True)
        self._cache[key] = upd
        return upd

    def oob(self, track: str, month: str, kb: str) -> Update | None:
        """An out-of-band release of the calendar (e.g. KB5070881, KB5070893 in 2025-10)."""
        for row in self._oob.get((track, month), []):
            if row["kb"].upper().removeprefix("KB") == kb:
                released = (
                    date.fromisoformat(row["release_date"])
                    if row.get("release_date")
                    else patch_tuesday(month)
                )
                if row["kind"] == "oob_lcu":
                    title = _lcu_title(track, month, kb)
                else:
                    title = f"{month} Security Update for {_OS_VERSION_TEXT[track]} for x64-based Systems (KB{kb})"
                return Update(kb, title, row["kind"], released, row.get("os_build") or None, True)
        return None

    def dotnet(self, family: str, month: str) -> Update:
        """A .NET Framework cumulative update of the month (synthetic KB; asks for a reboot)."""
        kb = str(SYNTHETIC_DOTNET_KB + _FAMILY_INDEX[family] * 200 + month_ordinal(month) % 200)
        title = (
            f"{month} Cumulative Update for .NET Framework 3.5 and 4.8.1 for "
            f"{_OS_VERSION_TEXT[family]} for x64 (KB{kb})"
        )
        return Update(kb, title, "dotnet", patch_tuesday(month), None, True)


def definition_update(day: date, minor: int) -> Update:
    """A Microsoft Defender security intelligence update (definition only, no reboot)."""
    version = f"1.{400 + (day.toordinal() - 738000) // 30}.{minor}.0"
    title = (
        f"Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 "
        f"(Version {version}) - Current Channel (Broad)"
    )
    return Update("2267602", title, "definition", day, None, False)
