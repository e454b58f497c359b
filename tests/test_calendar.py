"""The release calendar data file is sound, and the validator catches each kind of bad row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from hotpatch_audit.analyze import apply_sql, calendar_version, validate_calendar

ROOT = Path(__file__).resolve().parents[1]
CALENDAR = ROOT / "data" / "release_calendar.csv"
HEADER = "track,month,kind,kb,os_build,release_date,applies_to,effect,months_lost,cause,source,source_url,verified,notes\n"
GOOD = (
    "ws2025,2025-10,baseline,KB5066835,26100.6899,2025-10-14,all,reboot,,,RI,https://x,true,\n"
    "ws2025,2025-11,hotpatch,KB5068966,26100.7092,2025-11-11,all,no_reboot,,,RI,https://x,true,\n"
)


def test_project_calendar_is_valid() -> None:
    assert validate_calendar(CALENDAR) == []


def test_calendar_version_is_short_sha() -> None:
    version = calendar_version(ROOT)
    assert len(version) == 12 and int(version, 16) >= 0


@pytest.mark.parametrize("bad_rows, message", [
    (GOOD + "ws2025,2025-11,hotpatch,KB5068966,26100.7092,2025-11-11,all,no_reboot,,,RI,https://x,true,\n", "duplicate"),
    ("ws2025,2025-10,baseline,KB5066835,26100.6899,2025-10-14,all,reboot,,,RI,https://x,true,\n"
     "ws2025,2025-11,hotpatch,KB5068966,26100.6000,2025-11-11,all,no_reboot,,,RI,https://x,true,\n", "not above its baseline"),
    (GOOD + "ws2025,2025-12,hotfix,KB1,,,all,,,,RI,https://x,false,\n", "unknown kind"),
    (GOOD + "ws2025,2025-12,hotpatch,KB5072014,26100.7392,2025-12-09,all,no_reboot,,,,,true,\n", "without source"),
])
def test_validator_catches(tmp_path: Path, bad_rows: str, message: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(HEADER + bad_rows, encoding="utf-8")
    problems = validate_calendar(path)
    assert any(message in p for p in problems), problems


def test_calendar_months_grid(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "l.duckdb"))
    apply_sql(con, ROOT)
    rows = con.execute(
        "select track, month, kind, kb, release_date, verified, rule_only from ref.calendar_months"
        " where month in ('2025-11', '2027-04', '2027-05') and track = 'ws2025' order by month").fetchall()
    assert rows[0][2:4] == ("hotpatch", "KB5068966") and rows[0][6] is False
    assert rows[1][2] == "baseline" and rows[1][6] is True and str(rows[1][4]) == "2027-04-13"
    assert rows[2][2] == "hotpatch" and rows[2][5] is False
    (count,) = con.execute("select count(*) from ref.calendar_months").fetchone()
    assert count == 2 * 48
    (expiry,) = con.execute(
        "select count(*) from ref.calendar where kind = 'licence_expiry' and applies_to = 'arc'"
        " and months_lost = '2025-11..2025-12'").fetchone()
    assert expiry == 1
