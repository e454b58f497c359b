"""The command line as a pipeline author and an analyst expect it: --version, -h, completion, --quiet/--verbose,
--no-color, choices shown with a one-line error, --fail-on SEVERITY with its own exit code, query -o json|csv
from an argument, a file or stdin, the formula guard on every CSV, and a line per step off a terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pytest
import typer
from typer.testing import CliRunner, Result

from hotpatch_audit import __version__
from hotpatch_audit.cli import app
from hotpatch_audit.pipeline import EXIT_FINDINGS

SEVERITIES = ("critical", "high", "medium", "low", "info")
EXE = str(Path(sys.executable).parent / "hotpatch-audit")


def _invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def _commands() -> list[tuple[str, click.Command]]:
    """Every command of the tool, by its path (calendar check included)."""
    root = typer.main.get_command(app)
    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, cmd: click.Command) -> None:
        found.append((prefix, cmd))
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(f"{prefix} {name}".strip(), sub)

    walk("", root)
    return found


def test_version_in_the_usual_places() -> None:
    for args in (["--version"], ["-V"]):
        result = _invoke(*args)
        assert result.exit_code == 0 and result.stdout.strip() == f"hotpatch-audit {__version__}"
    assert _invoke("version").stdout.strip() == __version__


@pytest.mark.parametrize("path", [p for p, _ in _commands()])
def test_every_command_answers_h_and_reads_as_a_cli(path: str) -> None:
    result = _invoke(*path.split(), "-h")
    assert result.exit_code == 0, result.output
    assert result.stdout == _invoke(*path.split(), "--help").stdout
    text = result.stdout
    assert text.startswith("Usage: ")
    # option values named for what they are (FILE, DIR, GUID, [a|b]), never a Python type
    assert "<list[" not in text and "<str>" not in text and "<int>" not in text and "<path>" not in text, text
    if path and path != "version":
        assert "Example: hotpatch-audit" in text, f"{path} --help shows no example"


def test_the_top_help_names_every_exit_code() -> None:
    text = " ".join(_invoke("-h").stdout.split())
    for code, words in ((0, "success"), (1, "incomplete"), (2, "usage error"), (3, "failed run"),
                        (EXIT_FINDINGS, "--fail-on")):
        assert f"{code} {words}" in text or f"{code} open findings" in text, (code, text)


def test_enumerated_options_show_their_choices_and_refuse_others_in_one_line() -> None:
    shown = " ".join(_invoke("run", "-h").stdout.split())
    for choices in ("[html|pdf|csv|parquet|jsonl|ocsf]", "<demo|snapshot|arg>", "<en|ja>", "<public|china|usgov>"):
        assert choices in shown, choices
    assert "<table|csv|json>" in " ".join(_invoke("query", "-h").stdout.split())
    for args in (["run", "--format", "docx"], ["run", "--lang", "fr"], ["run", "--fail-on", "severe"],
                 ["query", "-o", "xml", "select 1"], ["diff", "--change", "moved"], ["calendar", "-o", "yaml"]):
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("usage error: Invalid value for") and result.stderr.count("\n") == 1, \
            result.stderr
        assert "Traceback" not in result.output


def test_shell_completion_is_offered() -> None:
    top = _invoke("-h").stdout
    assert "--install-completion" in top and "--show-completion" in top
    script = subprocess.run([EXE, "--show-completion", "bash"], capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0, script.stderr
    assert "_HOTPATCH_AUDIT_COMPLETE" in script.stdout and "complete " in script.stdout


def test_verbose_and_quiet_exclude_each_other() -> None:
    result = _invoke("--verbose", "--quiet", "calendar")
    assert result.exit_code == 2 and result.stderr.startswith("usage error:")


def test_no_color_takes_the_colour_out() -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    coloured = subprocess.run([EXE, "calendar"], capture_output=True, text=True, env=env, timeout=60, check=False)
    plain = subprocess.run([EXE, "--no-color", "calendar"], capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert coloured.returncode == plain.returncode == 0
    assert "\x1b[" in coloured.stdout  # the check can fail: with FORCE_COLOR the table is styled
    assert "\x1b[" not in plain.stdout and "ws2025" in plain.stdout


# --- query -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger(demo_history: tuple[object, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings, _ = demo_history
    copy = tmp_path_factory.mktemp("cli") / "ledger.duckdb"
    shutil.copy(settings.path(settings.ledger_path), copy)  # type: ignore[attr-defined]
    return copy


ROUND_TRIP_SQL = """-- a comment first: read as SQL, never as an option
select machine_name, machine_kind, r.as_of, hotpatch_enrollment_date, 1.5::decimal(5, 2) as ratio,
       [1, 2] as list, {'a': 1} as struct, null as nothing, true as flag,
       'x' || chr(8238) || 'y' || chr(1) as hostile
from core.machines m join meta.runs r using (run_id) order by r.as_of desc, machine_id limit 25"""


def test_query_json_round_trips(ledger: Path) -> None:
    result = _invoke("query", "--ledger", str(ledger), "-o", "json", ROUND_TRIP_SQL)
    assert result.exit_code == 0, result.output
    assert result.stdout.isascii()  # no control or bidirectional character reaches the terminal as such
    records = json.loads(result.stdout)
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        cur = con.execute(ROUND_TRIP_SQL)
        names = [d[0] for d in cur.description]
        expected = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    assert len(records) == len(expected) == 25
    for got, want in zip(records, expected, strict=True):
        assert list(got) == names
        assert got["machine_name"] == want["machine_name"] and got["hostile"] == want["hostile"]
        assert got["as_of"] == want["as_of"].isoformat()
        assert got["ratio"] == 1.5 and got["list"] == [1, 2] and got["struct"] == {"a": 1}
        assert got["nothing"] is None and got["flag"] is True


def test_query_reads_a_file_or_stdin(ledger: Path, tmp_path: Path) -> None:
    sql = "-- how many runs\nselect count(*) as runs from meta.runs"
    path = tmp_path / "q.sql"
    path.write_text(sql, encoding="utf-8")
    via_file = _invoke("query", "--ledger", str(ledger), "-o", "csv", "-f", str(path))
    via_dash = _invoke("query", "--ledger", str(ledger), "-o", "csv", "-f", "-", stdin=sql)
    via_pipe = _invoke("query", "--ledger", str(ledger), "-o", "csv", stdin=sql)
    outputs = {r.stdout for r in (via_file, via_dash, via_pipe)}
    assert all(r.exit_code == 0 for r in (via_file, via_dash, via_pipe)), [r.output for r in (via_file, via_pipe)]
    assert outputs == {"runs\r\n3\r\n"} or outputs == {"runs\n3\n"}, outputs
    both = _invoke("query", "--ledger", str(ledger), "-f", str(path), "select 1")
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = _invoke("query", "--ledger", str(ledger), "-f", str(tmp_path / "nope.sql"))
    assert missing.exit_code == 2 and "nope.sql" in missing.stderr
    empty = _invoke("query", "--ledger", str(ledger), stdin="  \n")
    assert empty.exit_code == 2 and "empty" in empty.stderr


def test_every_csv_the_cli_writes_is_formula_guarded(ledger: Path, tmp_path: Path) -> None:
    hostile = '=HYPERLINK("http://evil.example","x")'
    query = _invoke("query", "--ledger", str(ledger), "-o", "csv", f"select '{hostile.replace(chr(39), '')}' as v")
    assert query.exit_code == 0 and next(csv.reader(io.StringIO(query.stdout.splitlines()[1])))[0].startswith("'=")
    # the calendar: an override row whose source text starts like a formula
    from hotpatch_audit.calendar import CALENDAR_COLUMNS

    override = tmp_path / "override.csv"
    row = {c: "" for c in CALENDAR_COLUMNS} | {"track": "ws2025", "month": "2027-02", "kind": "hotpatch",
                                                "verified": "false", "source": hostile}
    with override.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CALENDAR_COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    result = _invoke("calendar", "--override", str(override), "-o", "csv")
    assert result.exit_code == 0, result.output
    cells = [c for r in csv.reader(io.StringIO(result.stdout)) for c in r]
    assert "'" + hostile in cells and hostile not in cells
    as_json = _invoke("calendar", "--override", str(override), "-o", "json")
    assert hostile in [r["source"] for r in json.loads(as_json.stdout)]  # JSON carries the text as it is


# --- --fail-on ---------------------------------------------------------------------------------------------


def _open_at_or_above(ledger: Path, run_id: str, severity: str) -> int:
    """Independently of the CLI: open (state open, not waived) findings of the run at or above severity."""
    wanted = list(SEVERITIES[: SEVERITIES.index(severity) + 1])
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        row = con.execute("select count(*) from audit.findings where run_id = ? and state = 'open' and status in "
                          "('fail', 'warn', 'unknown') and list_contains(?, severity)", [run_id, wanted]).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def test_fail_on_gates_on_open_findings_at_or_above(ledger: Path, demo_history: tuple[object, list[str]],
                                                    tmp_path: Path) -> None:
    _, run_ids = demo_history
    seen = set()
    for severity in SEVERITIES:
        result = _invoke("report", run_ids[-1], "--ledger", str(ledger), "--format", "csv",
                         "--out", str(tmp_path / severity), "--fail-on", severity)
        expected = EXIT_FINDINGS if _open_at_or_above(ledger, run_ids[-1], severity) else 0
        assert result.exit_code == expected, (severity, result.output)
        seen.add(result.exit_code)
        if expected:
            assert f"--fail-on {severity}:" in result.stderr and f"(exit {EXIT_FINDINGS})" in result.stderr
    assert EXIT_FINDINGS in seen
    # the same run once its critical and high findings are gone: the gate stays shut
    con = duckdb.connect(str(ledger))
    try:
        con.execute("delete from audit.findings where run_id = ? and severity in ('critical', 'high')",
                    [run_ids[-1]])
    finally:
        con.close()
    assert _open_at_or_above(ledger, run_ids[-1], "high") == 0
    result = _invoke("report", run_ids[-1], "--ledger", str(ledger), "--format", "csv", "--out",
                     str(tmp_path / "after"), "--fail-on", "high")
    assert result.exit_code == 0, result.output
    assert "no open findings at high or above" in result.stderr


def test_fail_on_high_on_the_demo_exits_with_the_documented_code(tmp_path: Path) -> None:
    result = _invoke("demo", "--months", "1", "--machines", "120", "--ledger", str(tmp_path / "l.duckdb"),
                     "--out", str(tmp_path / "out"), "--format", "csv", "--fail-on", "high")
    assert result.exit_code == EXIT_FINDINGS, result.output
    assert f"{EXIT_FINDINGS} open findings at or above --fail-on" in " ".join(_invoke("-h").stdout.split())
    # off a terminal: one line per step, with counts
    lines = result.stderr.splitlines()
    for prefix in ("extract azure_vms: ", "load azure_vms: ", "judge audit.findings: ", "render open_actions.csv"):
        assert any(prefix in line for line in lines), (prefix, result.stderr)
    quiet = _invoke("-q", "demo", "--months", "1", "--machines", "120", "--ledger", str(tmp_path / "q.duckdb"),
                    "--out", str(tmp_path / "q"), "--format", "csv", "--fail-on", "high")
    assert quiet.exit_code == EXIT_FINDINGS
    assert "load azure_vms" not in quiet.stderr and "--fail-on high:" in quiet.stderr  # the gate still says why
