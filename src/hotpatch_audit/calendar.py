"""The release calendar: read, validate, merge with a local override, hash and load into ref.calendar."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from hotpatch_audit.errors import ConfigError

CALENDAR_FILE = Path("data") / "release_calendar.csv"
CALENDAR_COLUMNS: tuple[str, ...] = (
    "track", "month", "kind", "kb", "os_build", "release_date", "applies_to", "effect",
    "months_lost", "cause", "source", "source_url", "verified", "notes",
)
RELEASE_KINDS = frozenset({"baseline", "hotpatch", "unplanned_baseline"})
EVENT_KINDS = frozenset({"oob_lcu", "oob_hotpatch", "licence_expiry"})
TRACKS = frozenset({"ws2025", "ws2022-azure-edition"})
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class CalendarRow:
    """One calendar row with the file and line it came from (for error messages)."""

    path: Path
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """The column's stripped text ('' when empty or missing)."""
        return self.values.get(column, "")

    @property
    def where(self) -> str:
        """`file:line (track month kind)` for messages."""
        return f"{self.path}:{self.line} ({self.get('track')} {self.get('month')} {self.get('kind')})"

    @property
    def key(self) -> tuple[str, ...]:
        """Identity for duplicates and overrides: a release is one per (track, month); an event is per KB."""
        if self.get("kind") in RELEASE_KINDS:
            return self.get("track"), self.get("month")
        return self.get("track"), self.get("month"), self.get("kind"), self.get("kb").upper()


def _build(os_build: str) -> tuple[int, int] | None:
    parts = os_build.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def read_calendar_rows(path: Path) -> tuple[list[CalendarRow], list[str]]:
    """The file's rows with their line numbers, and header problems (missing or unknown columns)."""
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        return [], [f"{path}: cannot read calendar file ({exc.strerror})"]
    with f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        problems = [f"{path}:1: missing column {c!r}" for c in CALENDAR_COLUMNS if c not in header]
        problems += [f"{path}:1: unknown column {c!r}" for c in header if c not in CALENDAR_COLUMNS]
        rows: list[CalendarRow] = []
        line = reader.line_num + 1
        for raw in reader:
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            rows.append(CalendarRow(path, line, values))
            line = reader.line_num + 1
    return rows, problems


def _row_problems(row: CalendarRow) -> list[str]:
    """Field-level problems of one row, each naming file, line and field."""
    where, problems = row.where, []
    if row.get("track") not in TRACKS:
        problems.append(f"{where}: field track: unknown track {row.get('track')!r}")
    if not _MONTH.fullmatch(row.get("month")):
        problems.append(f"{where}: field month: {row.get('month')!r} is not YYYY-MM")
    if row.get("kind") not in RELEASE_KINDS | EVENT_KINDS:
        problems.append(f"{where}: field kind: unknown kind {row.get('kind')!r}")
    if row.get("os_build") and _build(row.get("os_build")) is None:
        problems.append(f"{where}: field os_build: {row.get('os_build')!r} is not build.ubr")
    if row.get("release_date"):
        try:
            date.fromisoformat(row.get("release_date"))
        except ValueError:
            problems.append(f"{where}: field release_date: {row.get('release_date')!r} is not YYYY-MM-DD")
    verified = row.get("verified").lower()
    if verified not in ("true", "false"):
        problems.append(f"{where}: field verified: must be true or false, not {row.get('verified')!r}")
    if verified == "true" and not (row.get("source") and row.get("source_url")):
        problems.append(f"{where}: field source: verified row without source and source_url")
    return problems


def _set_problems(rows: list[CalendarRow]) -> list[str]:
    """Problems across rows: duplicate months or events, hotpatch builds not above their baseline."""
    problems: list[str] = []
    seen: dict[tuple[str, ...], CalendarRow] = {}
    for row in rows:
        first = seen.setdefault(row.key, row)
        if first is not row:
            what = "month (one release per track and month)" if len(row.key) == 2 else "event (track, month, kind, kb)"
            problems.append(f"{row.where}: duplicate {what}, first at {first.path}:{first.line}")
    # A hotpatch's build must be above its quarter's baseline build (same track).
    releases = sorted(
        (r for r in rows if r.get("kind") in RELEASE_KINDS), key=lambda r: (r.get("track"), r.get("month"))
    )
    baseline: dict[str, CalendarRow] = {}
    for r in releases:
        if r.get("kind") != "hotpatch":
            baseline[r.get("track")] = r
            continue
        base = baseline.get(r.get("track"))
        build, base_build = _build(r.get("os_build")), _build(base.get("os_build")) if base else None
        if base and build is not None and base_build is not None and build <= base_build:
            problems.append(
                f"{r.where}: field os_build: hotpatch build {r.get('os_build')} is not above its baseline "
                f"({base.get('month')}, {base.get('os_build')} at {base.path}:{base.line})"
            )
    return problems


def validate_calendar(path: Path) -> list[str]:
    """Problems in a release calendar file (empty list when it is sound), each naming file, line and field."""
    rows, problems = read_calendar_rows(path)
    for row in rows:
        problems += _row_problems(row)
    return problems + _set_problems(rows)


def merge_calendar(shipped: list[CalendarRow], override: list[CalendarRow]) -> list[CalendarRow]:
    """Shipped rows with override rows replacing those of the same key in place; new keys appended."""
    replacements = {r.key: r for r in override}
    merged = [replacements.pop(r.key, r) for r in shipped]
    return merged + [r for r in override if r.key in replacements]


def calendar_rows(project_root: Path, override: Path | None = None) -> list[CalendarRow]:
    """The rows a run uses: the shipped file, merged with the override file when given.

    Raises ConfigError naming file, line and field when the override (or the merge) is not sound.
    """
    rows, _ = read_calendar_rows(project_root / CALENDAR_FILE)
    if override is None:
        return rows
    problems = validate_calendar(override)
    if not problems:
        rows = merge_calendar(rows, read_calendar_rows(override)[0])
        problems = _set_problems(rows)
    if problems:
        raise ConfigError(f"calendar override {override} refused:\n  " + "\n  ".join(problems))
    return rows


def calendar_version(project_root: Path, override: Path | None = None) -> str:
    """SHA-256 of the calendar data file(s) and the override file, if any; first 12 hex characters."""
    digest = hashlib.sha256()
    for path in sorted((project_root / "data").glob("release_calendar*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    if override is not None:
        try:
            content = override.read_bytes()
        except OSError as exc:
            raise ConfigError(f"calendar override {override}: cannot read ({exc.strerror})") from exc
        digest.update(b"override\0")
        digest.update(content)
    return digest.hexdigest()[:12]


def load_calendar(con: duckdb.DuckDBPyConnection, project_root: Path, override: Path | None = None) -> int:
    """Replace ref.calendar with the calendar's rows (shipped file merged with the override); return the count."""
    values = [
        tuple(
            (r.get(c).lower() == "true") if c == "verified" else (r.get(c) or None)
            for c in CALENDAR_COLUMNS
        )
        for r in calendar_rows(project_root, override)
    ]
    con.execute("delete from ref.calendar")
    placeholders = ", ".join("?" for _ in CALENDAR_COLUMNS)
    if values:
        con.executemany(
            f"insert into ref.calendar ({', '.join(CALENDAR_COLUMNS)}) values ({placeholders})", values
        )
    return len(values)


def rule_kind(month: str) -> str:
    """The default rule's kind: baseline in January, April, July and October, else hotpatch."""
    return "baseline" if int(month[5:7]) in (1, 4, 7, 10) else "hotpatch"


@dataclass(frozen=True)
class MonthToVerify:
    """A (track, month) of a period whose calendar entry rests on the rule only or lacks a KB."""

    track: str
    month: str
    kind: str
    status: str  # "rule only" (no row: the quarterly rule) or "no KB" (kind only)
    source: str


def months_to_verify(rows: list[CalendarRow], months: list[str]) -> list[MonthToVerify]:
    """Per track and month of `months`: entries without a calendar row or without a KB, track by track."""
    releases = {r.key: r for r in rows if r.get("kind") in RELEASE_KINDS}
    found: list[MonthToVerify] = []
    for track in sorted(TRACKS, reverse=True):  # ws2025 first
        for month in months:
            row = releases.get((track, month))
            if row is None:
                found.append(MonthToVerify(track, month, rule_kind(month), "rule only", ""))
            elif not row.get("kb"):
                found.append(MonthToVerify(track, month, row.get("kind"), "no KB", row.get("source")))
    return found


def month_range(start: str, end: str) -> list[str]:
    """Months from start to end inclusive, as YYYY-MM."""
    y, m = int(start[:4]), int(start[5:7])
    out: list[str] = []
    while f"{y:04d}-{m:02d}" <= end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
