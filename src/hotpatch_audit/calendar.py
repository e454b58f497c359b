"""The release calendar: read, validate, merge with a local override, hash and load into ref.calendar."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from hotpatch_audit.duck import delete_rows
from hotpatch_audit.errors import ConfigError

CALENDAR_FILE = Path("data") / "release_calendar.csv"
CALENDAR_COLUMNS: tuple[str, ...] = (
    "track", "month", "kind", "kb", "os_build", "release_date", "applies_to", "effect",
    "months_lost", "cause", "source", "source_url", "verified", "notes",
)
RELEASE_KINDS = frozenset({"baseline", "hotpatch", "unplanned_baseline"})
EVENT_KINDS = frozenset({"oob_lcu", "oob_hotpatch", "licence_expiry"})
TRACKS = frozenset({"ws2025", "ws2022-azure-edition"})
TRACK_BUILDS = {"ws2025": 26100, "ws2022-azure-edition": 20348}  # the OS build number of each track
APPLIES_TO = frozenset({"all", "arc", "azure"})
RELEASE_EFFECTS = frozenset({"reboot", "no_reboot"})
EVENT_EFFECTS = frozenset({"off_track", "stays_on_track"})
YEARS = (2020, 2099)  # months and dates outside these years are typos
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_CELL_CHARS = 2000
MAX_PROBLEMS_SHOWN = 10
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_KB = re.compile(r"KB\d{6,8}", re.ASCII)
_BUILD = re.compile(r"(\d{1,6})\.(\d{1,6})", re.ASCII)
_MONTHS_LOST = re.compile(r"(\d{4}-\d{2})\.\.(\d{4}-\d{2})", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clip(text: str, limit: int = 40) -> str:
    """Text for a message: control characters escaped, cut to `limit` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(text: str) -> str:
    """repr() of a cell for a message, cut (a cell may be long)."""
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "…"


def join_problems(problems: list[str], limit: int = MAX_PROBLEMS_SHOWN) -> str:
    """Problems joined into one line (the CLI prints one line per error): the first `limit`, then a count."""
    shown = "; ".join(_clip(p, 400) for p in problems[:limit])
    more = len(problems) - limit
    return shown + (f"; and {more} more problem(s)" if more > 0 else "")


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
        what = " ".join(_clip(self.get(c)) for c in ("track", "month", "kind"))
        return f"{self.path}:{self.line} ({what})"

    @property
    def key(self) -> tuple[str, ...]:
        """Identity for duplicates and overrides: a release is one per (track, month); an event is per KB."""
        if self.get("kind") in RELEASE_KINDS:
            return self.get("track"), self.get("month")
        return self.get("track"), self.get("month"), self.get("kind"), self.get("kb").upper()


def _build(os_build: str) -> tuple[int, int] | None:
    match = _BUILD.fullmatch(os_build)
    return (int(match[1]), int(match[2])) if match else None


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """The file's text, or the problem reading it (missing, too large, not UTF-8)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"{path}: {size:,} bytes; a calendar file may hold at most {MAX_FILE_BYTES:,}"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{path}: cannot read calendar file ({exc.strerror})"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})"


def read_calendar_rows(path: Path) -> tuple[list[CalendarRow], list[str]]:
    """The file's rows with their line numbers, and file, header and CSV problems (missing, unknown or repeated
    columns, rows with more or fewer fields than the header)."""
    text, problem = _read_text(path)
    if text is None:
        return [], [problem or f"{path}: cannot read calendar file"]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    rows: list[CalendarRow] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            return [], [f"{path}:1: no header line (expected the columns {','.join(CALENDAR_COLUMNS)})"]
        if len(header) == 1 and ";" in header[0]:
            return [], [f"{path}:1: the header is one column {_show(header[0])}: separate the columns with commas"]
        missing = [c for c in CALENDAR_COLUMNS if c not in header]
        if missing:
            problems.append(f"{path}:1: missing column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(repr, missing))}")
        problems += [f"{path}:1: unknown column {_show(c)}" for c in dict.fromkeys(header) if c not in CALENDAR_COLUMNS]
        problems += [f"{path}:1: column {_show(c)} appears {header.count(c)} times"
                     for c in dict.fromkeys(header) if header.count(c) > 1]
        line = reader.line_num + 1
        for record in reader:
            if not any(cell.strip() for cell in record):
                line = reader.line_num + 1
                continue
            values = {k: v.strip() for k, v in zip(header, record, strict=False)}
            row = CalendarRow(path, line, values)
            if len(record) != len(header):
                problems.append(f"{row.where}: {len(record)} fields, the header has {len(header)}")
            if long := [k for k, v in values.items() if len(v) > MAX_CELL_CHARS]:
                problems.append(f"{row.where}: field {_clip(long[0])}: longer than {MAX_CELL_CHARS:,} characters")
            rows.append(row)
            line = reader.line_num + 1
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: not valid CSV ({exc})")
    return rows, problems


def _month_problem(month: str) -> str | None:
    if not _MONTH.fullmatch(month):
        return f"{_show(month)} is not YYYY-MM"
    if not YEARS[0] <= int(month[:4]) <= YEARS[1]:
        return f"{month} is outside {YEARS[0]} to {YEARS[1]}"
    return None


def _next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


def _row_problems(row: CalendarRow) -> list[str]:
    """Field-level problems of one row, each naming file, line and field."""
    where, problems = row.where, []
    track, month, kind = row.get("track"), row.get("month"), row.get("kind")
    if track not in TRACKS:
        problems.append(f"{where}: field track: unknown track {_show(track)} (one of {', '.join(sorted(TRACKS))})")
    if (bad_month := _month_problem(month)) is not None:
        problems.append(f"{where}: field month: {bad_month}")
    if kind not in RELEASE_KINDS | EVENT_KINDS:
        problems.append(f"{where}: field kind: unknown kind {_show(kind)} "
                        f"(one of {', '.join(sorted(RELEASE_KINDS | EVENT_KINDS))})")
    if row.get("kb") and not _KB.fullmatch(row.get("kb")):
        problems.append(f"{where}: field kb: {_show(row.get('kb'))} is not KB and 6 to 8 digits (e.g. KB5068966)")
    if row.get("os_build"):
        build = _build(row.get("os_build"))
        if build is None:
            problems.append(f"{where}: field os_build: {_show(row.get('os_build'))} is not build.ubr")
        elif track in TRACK_BUILDS and build[0] != TRACK_BUILDS[track]:
            problems.append(f"{where}: field os_build: {row.get('os_build')} is not a {track} build "
                            f"({TRACK_BUILDS[track]}.x)")
    if release_date := row.get("release_date"):
        try:
            day = date.fromisoformat(release_date) if _DATE.fullmatch(release_date) else None
        except ValueError:
            day = None
        if day is None:
            problems.append(f"{where}: field release_date: {_show(release_date)} is not YYYY-MM-DD")
        elif not YEARS[0] <= day.year <= YEARS[1]:
            problems.append(f"{where}: field release_date: {day} is outside {YEARS[0]} to {YEARS[1]}")
        elif _MONTH.fullmatch(month) and kind in RELEASE_KINDS and release_date[:7] != month:
            problems.append(f"{where}: field release_date: {day} is not in the release's month {month}")
        elif _MONTH.fullmatch(month) and kind in EVENT_KINDS and release_date[:7] not in (month, _next_month(month)):
            problems.append(f"{where}: field release_date: {day} is neither in the event's month {month} "
                            "nor the month after")
    if (applies := row.get("applies_to")) and applies not in APPLIES_TO:
        problems.append(f"{where}: field applies_to: {_show(applies)} is not one of {', '.join(sorted(APPLIES_TO))}")
    if effect := row.get("effect"):
        allowed = RELEASE_EFFECTS if kind in RELEASE_KINDS else EVENT_EFFECTS if kind in EVENT_KINDS else None
        if allowed is not None and effect not in allowed:
            problems.append(f"{where}: field effect: {_show(effect)} is not one of {', '.join(sorted(allowed))} "
                            f"(for kind {kind})")
    if lost := row.get("months_lost"):
        match = _MONTHS_LOST.fullmatch(lost)
        if match is None or _month_problem(match[1]) or _month_problem(match[2]) or match[1] > match[2]:
            problems.append(f"{where}: field months_lost: {_show(lost)} is not FIRST..LAST months (YYYY-MM..YYYY-MM)")
        elif _MONTH.fullmatch(month) and match[1] <= month:
            problems.append(f"{where}: field months_lost: {lost} does not start after the event's month {month}")
    if url := row.get("source_url"):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", url):
            problems.append(f"{where}: field source_url: {_show(url)} is not an http(s) URL")
    verified = row.get("verified").lower()
    if verified not in ("true", "false"):
        problems.append(f"{where}: field verified: must be true or false, not {_show(row.get('verified'))}")
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
        raise ConfigError(f"calendar override {override} refused: {join_problems(problems)}")
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
    delete_rows(con, "delete from ref.calendar")
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
