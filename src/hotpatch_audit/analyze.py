"""Model and audit stage: apply the SQL views, load the release calendar, materialize findings."""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

CALENDAR_FILE = Path("data") / "release_calendar.csv"
CALENDAR_COLUMNS: tuple[str, ...] = (
    "track", "month", "kind", "kb", "os_build", "release_date", "applies_to", "effect",
    "months_lost", "cause", "source", "source_url", "verified", "notes",
)
RELEASE_KINDS = frozenset({"baseline", "hotpatch", "unplanned_baseline"})
EVENT_KINDS = frozenset({"oob_lcu", "oob_hotpatch", "licence_expiry"})
TRACKS = frozenset({"ws2025", "ws2022-azure-edition"})
SQL_FOLDERS: tuple[str, ...] = ("core", "audit", "report")


def calendar_version(project_root: Path) -> str:
    """SHA-256 of the calendar data file(s), first 12 hex characters."""
    digest = hashlib.sha256()
    for path in sorted((project_root / "data").glob("release_calendar*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _read_calendar(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in csv.DictReader(f)]


def _build(os_build: str) -> tuple[int, int] | None:
    parts = os_build.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def validate_calendar(path: Path) -> list[str]:
    """Problems in a release calendar file (empty list when it is sound)."""
    problems: list[str] = []
    rows = _read_calendar(path)
    seen: set[tuple[str, str, str, str]] = set()
    for n, row in enumerate(rows, start=2):
        where = f"line {n} ({row.get('track')} {row.get('month')} {row.get('kind')})"
        kind = row.get("kind", "")
        if kind not in RELEASE_KINDS | EVENT_KINDS:
            problems.append(f"{where}: unknown kind {kind!r}")
        if row.get("track", "") not in TRACKS:
            problems.append(f"{where}: unknown track {row.get('track')!r}")
        key = (row.get("track", ""), row.get("month", ""), kind, row.get("kb", "").upper())
        if key in seen:
            problems.append(f"{where}: duplicate (track, month, kind, kb)")
        seen.add(key)
        verified = row.get("verified", "").lower()
        if verified not in ("true", "false"):
            problems.append(f"{where}: verified must be true or false")
        if verified == "true" and not (row.get("source") and row.get("source_url")):
            problems.append(f"{where}: verified row without source and source_url")
        if row.get("os_build") and _build(row["os_build"]) is None:
            problems.append(f"{where}: os_build {row['os_build']!r} is not build.ubr")
    # A hotpatch's build must be above its quarter's baseline build (same track).
    releases = sorted(
        (r for r in rows if r.get("kind") in RELEASE_KINDS), key=lambda r: (r.get("track", ""), r.get("month", ""))
    )
    baseline: dict[str, tuple[str, tuple[int, int] | None]] = {}
    for r in releases:
        track, build = r.get("track", ""), _build(r.get("os_build", ""))
        if r["kind"] in ("baseline", "unplanned_baseline"):
            baseline[track] = (r["month"], build)
        elif track in baseline and build is not None:
            base_month, base_build = baseline[track]
            if base_build is not None and build <= base_build:
                problems.append(
                    f"{track} {r['month']} hotpatch build {r['os_build']} is not above its baseline "
                    f"({base_month}, {base_build[0]}.{base_build[1]})"
                )
    return problems


def load_calendar(con: duckdb.DuckDBPyConnection, project_root: Path) -> int:
    """Replace ref.calendar with the rows of data/release_calendar.csv; return the row count."""
    rows = _read_calendar(project_root / CALENDAR_FILE)
    values = [
        tuple(
            (r.get(c, "").lower() == "true") if c == "verified" else (r.get(c) or None)
            for c in CALENDAR_COLUMNS
        )
        for r in rows
    ]
    con.execute("delete from ref.calendar")
    placeholders = ", ".join("?" for _ in CALENDAR_COLUMNS)
    if values:
        con.executemany(
            f"insert into ref.calendar ({', '.join(CALENDAR_COLUMNS)}) values ({placeholders})", values
        )
    return len(values)


def apply_sql(con: duckdb.DuckDBPyConnection, project_root: Path) -> None:
    """Create schemas, ref data, core and audit views (and report views if present); idempotent."""
    sql_dir = project_root / "sql"
    con.execute((sql_dir / "00_schema.sql").read_text(encoding="utf-8"))
    con.execute((sql_dir / "10_ref.sql").read_text(encoding="utf-8"))
    load_calendar(con, project_root)
    # Materialized tables follow their live view's columns: rebuilt whenever definitions are applied.
    for name in MATERIALIZED:
        con.execute(f"drop table if exists audit.{name}")
    for folder in SQL_FOLDERS:
        for path in sorted((sql_dir / folder).glob("*.sql")):
            log.debug("applying %s", path)
            con.execute(path.read_text(encoding="utf-8"))


MATERIALIZED = ("machine_months", "readiness", "coverage")


def materialize_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Store one run's rows of the heavy intermediate views (audit.<name>_live -> audit.<name>)."""
    for name in MATERIALIZED:
        con.execute(f"delete from audit.{name} where run_id = ?", [run_id])
        con.execute(f"insert into audit.{name} by name select * from audit.{name}_live where run_id = ?", [run_id])


def materialize_findings(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Materialize the run's intermediate views, then replace its audit.findings rows; return the count."""
    # No transaction of its own: the caller (ledger/pipeline) may already hold one around the run.
    materialize_run(con, run_id)
    con.execute("delete from audit.findings where run_id = ?", [run_id])
    con.execute("insert into audit.findings by name select * from audit.all_findings where run_id = ?", [run_id])
    (count,) = con.execute("select count(*) from audit.findings where run_id = ?", [run_id]).fetchone() or (0,)
    log.info("materialized %d findings for run %s", count, run_id)
    return int(count)
