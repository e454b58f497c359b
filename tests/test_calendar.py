"""The release calendar data file is sound, and the validator catches each kind of bad row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from hotpatch_audit.analyze import apply_sql, calendar_version, load_calendar, validate_calendar
from hotpatch_audit.calendar import calendar_rows
from hotpatch_audit.cli_calendar import calendar_app
from hotpatch_audit.errors import ConfigError

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


# --- validator messages name file, line and field ---------------------------------------------------

@pytest.mark.parametrize("bad_rows, message", [
    (GOOD + "ws2025,2025-11,unplanned_baseline,KB1,26100.7100,2025-11-20,all,reboot,,,RI,https://x,true,\n",
     ":4 (ws2025 2025-11 unplanned_baseline): duplicate month"),
    (GOOD + "ws2030,2025-12,hotpatch,KB1,,,all,,,,RI,https://x,false,\n", ":4 (ws2030 2025-12 hotpatch): field track"),
    (GOOD + "ws2025,2025-13,hotpatch,KB1,,,all,,,,RI,https://x,false,\n", "field month: '2025-13' is not YYYY-MM"),
    (GOOD + "ws2025,2025-12,hotpatch,KB1,,2025-12-32,all,,,,RI,https://x,false,\n", "field release_date"),
    (GOOD + "ws2025,2025-12,hotpatch,KB1,,,all,,,,RI,https://x,yes,\n", "field verified: must be true or false"),
    (GOOD + "ws2025,2025-12,hotfix,KB1,,,all,,,,RI,https://x,false,\n", ":4 (ws2025 2025-12 hotfix): field kind"),
    (GOOD + "ws2025,2025-12,hotpatch,KB1,26100.7000,,all,,,,,,true,\n", ":4 (ws2025 2025-12 hotpatch): field source"),
    (GOOD + "ws2025,2025-12,hotpatch,KB1,26100.6000,,all,,,,RI,https://x,true,\n", ":4 (ws2025 2025-12 hotpatch): field os_build"),
])
def test_validator_names_file_line_and_field(tmp_path: Path, bad_rows: str, message: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(HEADER + bad_rows, encoding="utf-8")
    problems = validate_calendar(path)
    assert any(p.startswith(str(path)) and message in p for p in problems), problems


def test_validator_checks_the_header(tmp_path: Path) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(HEADER.replace("verified", "checked") + GOOD, encoding="utf-8")
    problems = validate_calendar(path)
    assert f"{path}:1: missing column 'verified'" in problems and f"{path}:1: unknown column 'checked'" in problems


# --- the local override -----------------------------------------------------------------------------

NEW_MONTH = "ws2025,2026-12,hotpatch,KB5999999,26100.33600,2026-12-08,all,no_reboot,,,Update history,https://x,true,\n"
OCT_BASELINE = "ws2025,2026-10,baseline,KB5888888,26100.33500,2026-10-13,all,reboot,,,Update history,https://x,true,\n"


def _override(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "override.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def _ref_calendar(tmp_path: Path, override: Path | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "l.duckdb"))
    apply_sql(con, ROOT)
    load_calendar(con, ROOT, override)
    return con


def test_override_adds_a_month(tmp_path: Path) -> None:
    con = _ref_calendar(tmp_path, _override(tmp_path, NEW_MONTH))
    row = con.execute("select kb, os_build, verified, rule_only from ref.calendar_months"
                      " where track = 'ws2025' and month = '2026-12'").fetchone()
    assert row == ("KB5999999", "26100.33600", True, False)
    (count,) = con.execute("select count(*) from ref.calendar").fetchone() or (0,)
    assert count == len(calendar_rows(ROOT)) + 1


def test_override_replaces_a_rule_only_month(tmp_path: Path) -> None:
    con = _ref_calendar(tmp_path, _override(tmp_path, OCT_BASELINE))
    rows = con.execute("select kind, kb, verified from ref.calendar where track = 'ws2025' and month = '2026-10'"
                       " order by kind").fetchall()
    assert rows == [("baseline", "KB5888888", True)]
    (count,) = con.execute("select count(*) from ref.calendar").fetchone() or (0,)
    assert count == len(calendar_rows(ROOT))


def test_override_can_change_a_months_kind(tmp_path: Path) -> None:
    unplanned = "ws2025,2026-11,unplanned_baseline,KB5777777,26100.33550,2026-11-10,all,reboot,,,S,https://x,true,\n"
    rows = calendar_rows(ROOT, _override(tmp_path, unplanned))
    assert [(r.get("kind"), r.get("kb")) for r in rows if r.key == ("ws2025", "2026-11")] == \
        [("unplanned_baseline", "KB5777777")]


@pytest.mark.parametrize("rows, message", [
    ("ws2025,2026-12,hotfix,KB1,,,all,,,,RI,https://x,false,\n", "override.csv:2 (ws2025 2026-12 hotfix): field kind"),
    (NEW_MONTH + NEW_MONTH, "override.csv:3 (ws2025 2026-12 hotpatch): duplicate month"),
    # May 2026's hotpatch below the shipped April 2026 baseline (26100.32690): caught after the merge
    ("ws2025,2026-05,hotpatch,KB5087423,26100.100,2026-05-12,all,no_reboot,,,RI,https://x,true,\n",
     "override.csv:2 (ws2025 2026-05 hotpatch): field os_build: hotpatch build 26100.100 is not above its baseline"),
])
def test_bad_override_is_refused(tmp_path: Path, rows: str, message: str) -> None:
    with pytest.raises(ConfigError, match="calendar override .* refused") as info:
        calendar_rows(ROOT, _override(tmp_path, rows))
    assert message in str(info.value)


def test_missing_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        calendar_rows(ROOT, tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="cannot read"):
        calendar_version(ROOT, tmp_path / "nope.csv")


def test_version_covers_the_override(tmp_path: Path) -> None:
    assert calendar_version(ROOT, None) == calendar_version(ROOT)
    one = calendar_version(ROOT, _override(tmp_path, NEW_MONTH))
    two = calendar_version(ROOT, _override(tmp_path, OCT_BASELINE))
    assert len({calendar_version(ROOT), one, two}) == 3


# --- the CLI ----------------------------------------------------------------------------------------

def _cli(*args: str) -> Result:
    app = typer.Typer(rich_markup_mode=None)
    app.command("noop")(lambda: None)  # a group, as in the real CLI
    app.add_typer(calendar_app, name="calendar")
    return CliRunner().invoke(app, ["calendar", *args])


def test_cli_calendar_prints_version_and_rows() -> None:
    result = _cli()
    assert result.exit_code == 0, result.output
    assert f"calendar version {calendar_version(ROOT)}" in result.output
    csv_result = _cli("--output", "csv")
    assert csv_result.exit_code == 0
    assert "ws2025,2025-10,oob_lcu,KB5070881,26100.6905,2025-10-23,true," in csv_result.stdout
    assert "calendar version" not in csv_result.stdout  # on stderr, so the CSV stays clean


def test_cli_calendar_with_override(tmp_path: Path) -> None:
    path = _override(tmp_path, NEW_MONTH)
    result = _cli("--override", str(path), "-o", "csv")
    assert result.exit_code == 0
    assert "ws2025,2026-12,hotpatch,KB5999999" in result.stdout
    assert calendar_version(ROOT, path) in result.stderr


def test_cli_check_lists_months_to_verify(tmp_path: Path) -> None:
    result = _cli("check", "--months", "12", "--end", "2026-11", "-o", "csv")
    assert result.exit_code == 0, result.output
    listed = {tuple(line.split(",")[:4]) for line in result.stdout.splitlines()[1:]}
    assert ("ws2025", "2026-10", "baseline", "no KB") in listed
    assert ("ws2025", "2026-11", "hotpatch", "no KB") in listed
    assert ("ws2022-azure-edition", "2026-11", "hotpatch", "no KB") in listed
    assert not any(m[1] in ("2025-12", "2026-08") and m[0] == "ws2025" for m in listed)  # rows with a KB
    table = _cli("check", "--from", "2026-10", "--to", "2026-11")
    assert table.exit_code == 0 and "2026-10" in table.stdout and "Months to verify" in table.stdout
    # once the override gives October's KB, October drops off the list
    fixed = _cli("check", "--from", "2026-10", "--to", "2026-11", "-o", "csv",
                 "--override", str(_override(tmp_path, OCT_BASELINE)))
    assert "ws2025,2026-10" not in fixed.stdout and "ws2025,2026-11" in fixed.stdout


def test_cli_check_marks_months_without_a_row_rule_only() -> None:
    result = _cli("check", "--from", "2027-01", "--to", "2027-02", "-o", "csv")
    assert result.exit_code == 0
    assert "ws2025,2027-01,baseline,rule only," in result.stdout
    assert "ws2022-azure-edition,2027-02,hotpatch,rule only," in result.stdout


def test_cli_check_default_period_and_usage_errors(tmp_path: Path) -> None:
    assert _cli("check").exit_code == 0
    assert _cli("check", "--from", "2026-01", "--months", "3").exit_code == 2
    assert _cli("check", "--end", "2026-13").exit_code == 2
    assert _cli("check", "--from", "2026-11", "--to", "2026-01").exit_code == 2
    assert _cli("check", "-o", "yaml").exit_code == 2
    bad = _cli("--override", str(_override(tmp_path, "ws2025,2026-12,hotfix,,,,all,,,,,,false,\n")))
    assert bad.exit_code == 2 and "field kind" in bad.stderr


@pytest.mark.parametrize("args", [[], ["check"]])
def test_cli_calendar_help_has_an_example(args: list[str]) -> None:
    result = _cli(*args, "--help")
    assert result.exit_code == 0
    assert "Example: hotpatch-audit calendar" + (" check" if args else "") in " ".join(result.output.split())


# --- strictness: every cell is checked, the file itself too -----------------------------------------

ROW = "ws2025,2026-12,hotpatch,KB5999999,26100.33600,2026-12-08,all,no_reboot,,,Update history,https://x,true,\n"
OOB = "ws2025,2026-10,oob_lcu,KB5070773,26100.6901,2026-10-20,all,off_track,2026-11..2026-12,,RI,https://x,true,\n"


@pytest.mark.parametrize("rows, message", [
    (ROW.replace("KB5999999", "KB12"), "field kb: 'KB12' is not KB and 6 to 8 digits"),
    (ROW.replace("KB5999999", "5999999"), "field kb: '5999999' is not KB and 6 to 8 digits"),
    (ROW.replace("26100.33600", "26100"), "field os_build: '26100' is not build.ubr"),
    (ROW.replace("26100.33600", "26100.3\u00b2"), "field os_build: '26100.3\u00b2' is not build.ubr"),
    (ROW.replace("26100.33600", "20348.33600"), "field os_build: 20348.33600 is not a ws2025 build (26100.x)"),
    (ROW.replace("2026-12-08", "2026-02-30"), "field release_date: '2026-02-30' is not YYYY-MM-DD"),
    (ROW.replace("2026-12-08", "20261208"), "field release_date: '20261208' is not YYYY-MM-DD"),
    (ROW.replace("2026-12-08", "2026-11-10"), "field release_date: 2026-11-10 is not in the release's month 2026-12"),
    (OOB.replace("2026-10-20", "2027-01-05"), "field release_date: 2027-01-05 is neither in the event's month"),
    (ROW.replace("2026-12", "1926-12"), "field month: 1926-12 is outside 2020 to 2099"),
    (ROW.replace("2026-12,", "2026-12-08,", 1), "field month: '2026-12-08' is not YYYY-MM"),
    (ROW.replace(",all,", ",everyone,"), "field applies_to: 'everyone' is not one of all, arc, azure"),
    (ROW.replace("no_reboot", "off_track"), "field effect: 'off_track' is not one of no_reboot, reboot (for kind hotpatch)"),
    (OOB.replace("2026-11..2026-12", "2026-12..2026-11"), "field months_lost: '2026-12..2026-11' is not FIRST..LAST"),
    (OOB.replace("2026-11..2026-12", "2026-09..2026-12"), "field months_lost: 2026-09..2026-12 does not start after"),
    (ROW.replace("https://x", "javascript:alert(1)"), "field source_url: 'javascript:alert(1)' is not an http(s) URL"),
    (ROW.replace("\n", ",surplus\n"), ":2 (ws2025 2026-12 hotpatch): 15 fields, the header has 14"),
    (ROW.replace(",,Update history,https://x,true,", ""), ":2 (ws2025 2026-12 hotpatch): 9 fields, the header has 14"),
    (ROW.replace("Update history", "x" * 2001), "field source: longer than 2,000 characters"),
    (OOB + OOB.replace("KB5070773", "kb5070773"), "field kb: 'kb5070773'"),
])
def test_validator_checks_every_cell(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    problems = validate_calendar(path)
    assert any(p.startswith(f"{path}:") and message in p for p in problems), problems


@pytest.mark.parametrize("content, message", [
    ((HEADER + ROW.replace("Update history", "Mise \u00e0 jour")).encode("latin-1"), ":2: not UTF-8 text (byte 0xe0)"),
    (HEADER.replace("notes", "kb").encode(), ":1: column 'kb' appears 2 times"),
    (HEADER.replace("notes", "notes,comment").encode(), ":1: unknown column 'comment'"),
    (b"", ":1: no header line (expected the columns track,month,kind"),
    ((HEADER + 'ws2025,2026-12,"hotpatch\n').encode(), ": not valid CSV"),
])
def test_validator_checks_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_bytes(content)
    problems = validate_calendar(path)
    assert any(p.startswith(str(path)) and message in p for p in problems), problems


def test_the_shipped_file_is_what_the_strict_rules_expect() -> None:
    assert validate_calendar(CALENDAR) == []
    assert all(r.get("kb") == "" or r.get("kb").startswith("KB") for r in calendar_rows(ROOT))


def test_a_refused_override_is_one_line_naming_each_problem(tmp_path: Path) -> None:
    rows = "".join(ROW.replace("2026-12", f"2027-{m:02d}").replace("KB5999999", "KB1") for m in range(1, 13))
    with pytest.raises(ConfigError) as info:
        calendar_rows(ROOT, _override(tmp_path, rows))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"calendar override {tmp_path / 'override.csv'} refused: {tmp_path / 'override.csv'}:2 ")
    assert message.endswith("; and 2 more problem(s)")
    assert message.count("field kb") == 10
    newline = _override(tmp_path, ROW.replace("ws2025", '"ws\n2025"'))
    with pytest.raises(ConfigError, match=r"unknown track 'ws\\n2025'") as info:
        calendar_rows(ROOT, newline)
    assert "\n" not in str(info.value)
