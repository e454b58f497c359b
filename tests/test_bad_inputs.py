"""The bad-input corpus (tests/bad_inputs/README.md) through the public CLI: every file is refused with exit code
2 or 3 and one line on stderr, never a traceback, and the ledger's runs are as they were."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from click.testing import CliRunner, Result

from hotpatch_audit.cli import app
from hotpatch_audit.config import Settings, check_memory_limit, check_time_zone
from hotpatch_audit.ledger import open_reader
from hotpatch_audit.pipeline import RunRequest, run_audit

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_inputs"
AS_OF = "2026-11-25T03:00Z"
RUN = ["run", "--source", "demo", "--as-of", AS_OF]
CATEGORIES = ("waivers", "calendars", "facts", "args", "settings")

# Corpus files whose check belongs to code being changed elsewhere (cli.py, pipeline.py): a strict xfail until
# it lands, then delete the line.
PENDING: dict[str, str] = {}


@dataclass
class Ledger:
    """The module's ledger with one good demo run, the environment every invocation starts from, the CLI as a
    click command (built once: typer builds it anew on every invoke), and the ledger's state as last seen."""

    path: Path
    env: dict[str, str | None]
    cli: click.Command
    state: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]
    stamp: tuple[tuple[int, int] | None, ...] = ()

    def invoke(self, args: list[str], env: dict[str, str | None]) -> Result:
        """The CLI in-process, as typer.testing.CliRunner runs it, on the prebuilt command."""
        return CliRunner().invoke(self.cli, args, env=env, prog_name="hotpatch-audit")

    def unchanged(self) -> bool:
        """Whether the ledger's runs and imported facts are as last seen (a change is remembered, so that one
        case failing does not fail every case after it). Files nobody wrote need not be opened."""
        stamp = tuple(_stamp(p) for p in (self.path, self.path.with_name(self.path.name + ".wal")))
        if stamp == self.stamp:
            return True
        before, self.state, self.stamp = self.state, _state(self.path), stamp
        return before == self.state


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


@dataclass(frozen=True)
class Case:
    """One corpus file and the exit code it must give."""

    category: str
    path: Path
    expect: int


def _cases() -> list[Case]:
    cases = []
    for category in CATEGORIES:
        folder = CORPUS / category
        expect = yaml.safe_load((folder / "expect.yaml").read_text(encoding="utf-8"))
        for path in sorted(folder.iterdir()):
            if path.name != "expect.yaml":
                cases.append(Case(category, path, int(expect.get("files", {}).get(path.name, expect["default"]))))
    return cases


def _params() -> Iterator[Any]:
    for case in _cases():
        key = f"{case.category}/{case.path.name}"
        marks = [pytest.mark.xfail(strict=True, reason=PENDING[key])] if key in PENDING else []
        yield pytest.param(case, id=key, marks=marks)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """A ledger holding one good run of a 30-machine demo fleet (not rendered: no case gets that far)."""
    base = tmp_path_factory.mktemp("bad-inputs")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HOTPATCH_AUDIT_")}
    env |= {"HOTPATCH_AUDIT_LEDGER_PATH": str(base / "ledger.duckdb"), "HOTPATCH_AUDIT_WORK_DIR": str(base / "work"),
            "HOTPATCH_AUDIT_OUT_DIR": str(base / "reports"), "HOTPATCH_AUDIT_FORMATS": '["html"]',
            "HOTPATCH_AUDIT_DEMO_MACHINES": "30"}
    settings = Settings(ledger_path=base / "ledger.duckdb", work_dir=base / "work", demo_machines=30)
    good = run_audit(settings, RunRequest(source="demo", as_of=datetime(2026, 11, 25, 3, tzinfo=UTC)), render=False)
    assert good.status == "succeeded", good
    return Ledger(base / "ledger.duckdb", env, typer.main.get_command(app), _state(base / "ledger.duckdb"))


def _state(ledger: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every run (all columns, so statuses too) and the imported guest facts, as the ledger holds them."""
    with open_reader(ledger, timeout=30) as con:
        runs = con.execute("select * from meta.runs order by all").fetchall()
        facts = con.execute("select import_id, count(*) from raw.guest_facts group by all order by all").fetchall()
    return runs, facts


def _decode(value: str, tmp: Path) -> str:
    value = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), value)
    return value.replace("{tmp}", str(tmp))


def _invocation(case: Case, ledger: Ledger, tmp: Path) -> tuple[list[str], dict[str, str | None]]:
    """The command line and environment that feed the case's file to the CLI (README.md)."""
    env = dict(ledger.env)
    if case.category == "waivers":
        return RUN, env | {"HOTPATCH_AUDIT_WAIVERS_PATH": str(case.path)}
    if case.category == "calendars":
        return RUN, env | {"HOTPATCH_AUDIT_CALENDAR_OVERRIDE_PATH": str(case.path)}
    if case.category == "facts":
        return ["import-facts", str(case.path)], env
    text = case.path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if case.category == "args":
        args = shlex.split(" ".join(lines))
        return [a.replace("{tmp}", str(tmp)).replace("{ledger}", str(ledger.path)) for a in args], env
    for line in lines:
        name, sep, value = line.partition("=")
        assert sep and name.startswith("HOTPATCH_AUDIT_"), f"{case.path}: not NAME=VALUE: {line!r}"
        env[name.strip()] = _decode(value, tmp)
    return RUN, env


def _refused(result: Result, expect: int) -> None:
    """Exit code `expect`, one non-empty line on stderr, no traceback anywhere."""
    where = f"exit {result.exit_code}, stderr {result.stderr!r}, stdout {result.stdout[-300:]!r}"
    assert result.exit_code == expect, f"expected exit {expect}: {where}, exception {result.exception!r}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr: {where}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, where


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_is_refused_in_one_line_and_changes_no_run(
    case: Case, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative defaults (out/, ...) land here, never in the checkout
    args, env = _invocation(case, ledger, tmp_path)
    result = ledger.invoke(args, env)
    unchanged = ledger.unchanged()
    _refused(result, case.expect)
    assert unchanged, "the ledger's runs or imported facts changed"


# --- inputs too large to keep in git ----------------------------------------------------------------

ARC = ("/subscriptions/5d9e1f3a-7c2b-4e8d-a6f0-4c8b2e6d0a9f/resourceGroups/rg-arc-legacy/providers/"
       "Microsoft.HybridCompute/machines/")


def _huge_waivers(path: Path) -> None:
    good = (CORPUS / "waivers" / "duplicate-id.yaml").read_text(encoding="utf-8").split("  - id:")[:2]
    path.write_text("# padding\n" * 600_000 + "  - id:".join(good), encoding="utf-8")


def _huge_machine_name(path: Path) -> None:
    row = {"machine_id": ARC + "arc-" + "x" * 10_000_000, "collected_at": "2026-11-20T06:15:00Z", "Wsl2": 0}
    path.write_text(json.dumps([row]), encoding="utf-8")


def _long_csv_machine_name(path: Path) -> None:
    path.write_text(f"machine_id,collected_at\n{ARC}{'x' * 200_000},2026-11-20T06:15:00Z\n", encoding="utf-8")


def _huge_calendar(path: Path) -> None:
    row = "ws2025,2026-12,hotpatch,KB5999999,26100.33600,2026-12-08,all,no_reboot,,,Update history,https://x,false,"
    header = (CORPUS / "calendars" / "kb-too-short.csv").read_text(encoding="utf-8").splitlines()[0]
    path.write_text(header + "\n" + (row + "x" * 1000 + "\n") * 6000, encoding="utf-8")


GENERATED: dict[str, tuple[str, Callable[[Path], None]]] = {
    "waivers/six-megabytes.yaml": ("waivers", _huge_waivers),
    "calendars/six-megabytes.csv": ("calendars", _huge_calendar),
    "facts/ten-megabyte-machine-name.json": ("facts", _huge_machine_name),
    "facts/200-kilobyte-csv-field.csv": ("facts", _long_csv_machine_name),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_large_input_is_refused(
    name: str, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    category, make = GENERATED[name]
    path = tmp_path / Path(name).name
    make(path)
    args, env = _invocation(Case(category, path, 2), ledger, tmp_path)
    result = ledger.invoke(args, env)
    unchanged = ledger.unchanged()
    _refused(result, 2)
    assert len(result.stderr) < 2_000, "the message echoes the oversized value"
    assert unchanged, "the ledger's runs or imported facts changed"


# --- the corpus itself ------------------------------------------------------------------------------


def test_the_corpus_is_large_and_documented() -> None:
    counts = {c: sum(1 for case in _cases() if case.category == c) for c in CATEGORIES}
    assert sum(counts.values()) >= 90 and min(counts.values()) >= 15, counts
    assert set(PENDING) <= {f"{c.category}/{c.path.name}" for c in _cases()}, "PENDING names a file that is gone"
    for category in CATEGORIES:
        expect = yaml.safe_load((CORPUS / category / "expect.yaml").read_text(encoding="utf-8"))
        assert expect["default"] in (2, 3) and set(expect.get("files") or {}) <= {
            p.name for p in (CORPUS / category).iterdir()}, category
    for case in _cases():
        if case.category in ("args", "settings"):
            first = case.path.read_text(encoding="utf-8").splitlines()[0]
            assert first.startswith("# "), f"{case.path}: the first line says what is wrong"


# --- settings checked where they are read -----------------------------------------------------------


@pytest.mark.parametrize(("values", "setting"), [
    ({"grace_days": -1}, "grace_days"),
    ({"assessment_stale_days": 367}, "assessment_stale_days"),
    ({"period_months": 121}, "period_months"),
    ({"arg_read_timeout": 0}, "arg_read_timeout"),
    ({"arg_max_retry_seconds": float("inf")}, "arg_max_retry_seconds"),
    ({"lock_timeout_seconds": -5}, "lock_timeout_seconds"),
    ({"timezone": "Asia/Tokio"}, "timezone"),
    ({"timezone": "Asia/../Etc/UTC"}, "timezone"),
    ({"duckdb_memory_limit": "1 GB RAM"}, "duckdb_memory_limit"),
    ({"duckdb_memory_limit": "0%"}, "duckdb_memory_limit"),
    ({"owner_tag": ""}, "owner_tag"),
    ({"owner_tag": "owner\n"}, "owner_tag"),
    ({"report_author": "Team\u009b31m"}, "report_author"),
    ({"ledger_path": "out/ledger\x00.duckdb"}, "ledger_path"),
    ({"waivers_path": ""}, "waivers_path"),
    ({"arg_endpoint": "https://rg.example/?token=x"}, "arg_endpoint"),
    ({"arg_endpoint": "ftp://rg.example"}, "arg_endpoint"),
])
def test_settings_refuse_bad_values(values: dict[str, Any], setting: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        Settings(**values)
    assert [e["loc"][0] for e in info.value.errors()] == [setting]


@pytest.mark.parametrize("values", [
    {"grace_days": 0, "pending_max_days": 0, "downtime_minutes_per_reboot": 0},
    {"timezone": "Asia/Tokyo"}, {"timezone": "UTC"}, {"timezone": "America/Argentina/Buenos_Aires"},
    {"duckdb_memory_limit": "512MB"}, {"duckdb_memory_limit": "1.5GiB"}, {"duckdb_memory_limit": "80%"},
    {"duckdb_memory_limit": "4 gb"}, {"owner_tag": "Cost Center"}, {"report_author": "Équipe patch (Paris)"},
    {"arg_endpoint": "https://127.0.0.1:8443"},
])
def test_settings_accept_good_values(values: dict[str, Any]) -> None:
    Settings(**values)


def test_time_zone_and_memory_checks_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"'Mars/Olympus' is not an IANA time zone name"):
        check_time_zone("Mars/Olympus")
    with pytest.raises(ValueError, match=r"'lots' is not a DuckDB memory size"):
        check_memory_limit("lots")
    with pytest.raises(ValueError, match=r"'10MB' is too little memory"):
        check_memory_limit("10MB")
