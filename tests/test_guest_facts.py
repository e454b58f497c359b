"""Guest facts from both routes: the importer (CSV / JSON / NDJSON), the phrase parser, one shape in core.guest_facts.

The collector's sample outputs in tests/fixtures/guest_facts are what collector/Get-HotpatchGuestFacts.ps1
writes (the script itself needs Windows and cannot run here); they must import cleanly and parse as phrases.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hotpatch_audit.config import Settings
from hotpatch_audit.guest_facts import COLUMNS, FactsFileError, import_facts_file, read_facts_file
from hotpatch_audit.ledger import finish_run, open_reader, open_writer, parse_guest_configuration_reports
from hotpatch_audit.pipeline import RunRequest, run_audit
from tests.snapshots import SUB, arc_row, make_snapshot

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "guest_facts"
AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ARC = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.HybridCompute/machines"
WEB = f"{ARC}/arc-web-01".lower()
SQL2 = f"{ARC}/arc-sql-02".lower()
VM3 = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-app-03".lower()


@pytest.fixture
def gf_settings(tmp_path: Path) -> Settings:
    values: dict[str, Any] = {"ledger_path": tmp_path / "ledger.duckdb", "out_dir": tmp_path / "reports",
                              "work_dir": tmp_path / "work", "lock_timeout_seconds": 10}
    return Settings(**values)


def _audited_ledger(settings: Settings, tmp_path: Path) -> str:
    """A ledger with one snapshot run: an enrolled Arc machine (arc-web-01) without guest facts."""
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("arc-web-01")]}, as_of="2026-11-25T03:00:00Z")
    outcome = run_audit(settings, RunRequest(source="snapshot", snapshot_dir=snap, as_of=AS_OF), render=False)
    assert outcome.status in ("succeeded", "incomplete"), outcome.error
    return outcome.run_id


def _rows(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with open_reader(settings.path(settings.ledger_path), timeout=10) as con:
        return con.execute(sql, params or []).fetchall()


def _ledger_digest(settings: Settings) -> str:
    return hashlib.sha256(settings.path(settings.ledger_path).read_bytes()).hexdigest()


def _vbs_codes(settings: Settings, run_id: str, machine: str) -> set[str]:
    return {r[0] for r in _rows(settings, "select code from audit.findings where run_id = ? and machine_id = ?"
                                          " and audit = 'vbs_blockers'", [run_id, machine])}


# --- the importer: formats --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["collector-sample.csv", "collector-sample.json", "collector-sample.ndjson"])
def test_collector_samples_validate(name: str) -> None:
    facts = read_facts_file(FIX / name)
    assert facts.rows, name
    web = next(r for r in facts.rows if r.machine_id == WEB)
    assert web.collected_at == datetime(2026, 11, 20, 6, 15)
    assert web.facts["vbs_status"] == 1
    assert web.facts["security_services_configured"] == "2"
    assert web.facts["security_services_running"] == ""
    assert web.facts["wu_server"] is None
    assert web.facts["firmware_type"] == "UEFI"


def test_csv_and_json_samples_hold_the_same_facts() -> None:
    csv_rows = read_facts_file(FIX / "collector-sample.csv").rows
    json_rows = read_facts_file(FIX / "collector-sample.json").rows
    assert [(r.machine_id, r.collected_at, r.facts) for r in csv_rows] == \
        [(r.machine_id, r.collected_at, r.facts) for r in json_rows]
    # the CSV header is exactly the documented column list
    header = (FIX / "collector-sample.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert [h.strip('"') for h in header.split(",")] == list(COLUMNS)


def test_good_csv_import_then_idempotent(gf_settings: Settings) -> None:
    first = import_facts_file(gf_settings, FIX / "collector-sample.csv")
    assert (first.rows, first.already_imported) == (3, False)
    again = import_facts_file(gf_settings, FIX / "collector-sample.csv")
    assert again.already_imported and again.rows == 0 and again.import_id == first.import_id
    rows = _rows(gf_settings, "select machine_id, line, vbs_status, hyperv_generation, wu_server, run_id"
                              " from raw.guest_facts where source = 'import' order by line")
    assert rows == [
        (WEB, 2, 1, None, None, None),
        (SQL2, 3, 2, 2, "http://wsus.contoso.local:8530", None),
        (VM3, 4, 0, 1, "https://wsus.contoso.local:8531", None),
    ]


def test_same_content_under_another_name_is_not_imported_twice(gf_settings: Settings, tmp_path: Path) -> None:
    import_facts_file(gf_settings, FIX / "collector-sample.json")
    copy = tmp_path / "copy.json"
    shutil.copy(FIX / "collector-sample.json", copy)
    assert import_facts_file(gf_settings, copy).already_imported


def test_good_json_and_ndjson_import(gf_settings: Settings) -> None:
    assert import_facts_file(gf_settings, FIX / "collector-sample.json").rows == 3
    assert import_facts_file(gf_settings, FIX / "collector-sample.ndjson").rows == 1
    assert _rows(gf_settings, "select count(*), count(distinct import_id) from raw.guest_facts where source = 'import'") == [(4, 2)]


# --- the importer: refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "line", "field"), [
    ("bad-vbs-status.csv", 3, "VirtualizationBasedSecurityStatus"),
    ("bad-machine-id.json", 3, "machine_id"),
    ("not-utc.ndjson", 2, "collected_at"),
    ("unknown-column.csv", 1, "Owner"),
])
def test_bad_file_names_file_line_field_and_leaves_ledger_untouched(
    gf_settings: Settings, tmp_path: Path, name: str, line: int, field: str
) -> None:
    import_facts_file(gf_settings, FIX / "collector-sample.ndjson")
    before = _ledger_digest(gf_settings)
    with pytest.raises(FactsFileError) as info:
        import_facts_file(gf_settings, FIX / name)
    assert str(info.value).startswith(f"{FIX / name}: line {line}: field {field}: ")
    assert _ledger_digest(gf_settings) == before
    assert _rows(gf_settings, "select count(*) from raw.guest_facts where source = 'import'") == [(1,)]


def test_unknown_column_is_refused_with_a_case_hint(tmp_path: Path) -> None:
    bad = tmp_path / "facts.json"
    bad.write_text(json.dumps([{"machine_id": f"{ARC}/a", "collected_at": "2026-11-20T06:15:00Z", "wsl2": 1}]))
    with pytest.raises(FactsFileError, match=r"line 1: field wsl2: unknown column \(did you mean Wsl2\?"):
        read_facts_file(bad)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("SecurityServicesConfigured", "1;2", "comma list of integers"),
    ("UseWUServer", "yes", "not one of 0, 1"),
    ("FirmwareType", "CSM", "not UEFI or BIOS"),
    ("HyperVGeneration", "3", "not one of 1, 2"),
    ("WUServer", "wsus.contoso.local", r"http\(s\) URL"),
    ("collected_at", "2026-11-20 06:15", "not UTC"),
    ("collected_at", "", "required"),
])
def test_typed_fields(tmp_path: Path, column: str, value: str, message: str) -> None:
    row = {"machine_id": f"{ARC}/a", "collected_at": "2026-11-20T06:15:00Z", column: value}
    bad = tmp_path / "facts.csv"
    bad.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(FactsFileError, match=rf"facts.csv: line 2: field {column}: .*{message}"):
        read_facts_file(bad)


def test_every_bad_row_is_listed_and_nothing_half_loaded(gf_settings: Settings, tmp_path: Path) -> None:
    lines = ["machine_id,collected_at,VirtualizationBasedSecurityStatus"]
    lines += [f"{ARC}/m{i},2026-11-20T06:15:00Z,{1 if i % 2 else 7}" for i in range(6)]
    bad = tmp_path / "facts.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(FactsFileError) as info:
        import_facts_file(gf_settings, bad)
    assert [p.split(": field")[0].rsplit(" ", 1)[1] for p in info.value.problems] == ["2", "4", "6"]
    assert not gf_settings.path(gf_settings.ledger_path).exists()


def test_duplicate_machine_and_time_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "facts.ndjson"
    row = json.dumps({"machine_id": f"{ARC}/a", "collected_at": "2026-11-20T06:15:00Z"})
    bad.write_text(row + "\n\n" + row + "\n")
    with pytest.raises(FactsFileError, match="line 3: field collected_at: the same machine and time as line 1"):
        read_facts_file(bad)


_ROW = {"machine_id": f"{ARC}/a", "collected_at": "2026-11-20T06:15:00Z", "VirtualizationBasedSecurityStatus": 1}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("nan.json", json.dumps([_ROW]).replace(": 1}", ": NaN}"), "line 1: NaN is not a JSON number"),
    ("inf.ndjson", json.dumps(_ROW).replace(": 1}", ": -Infinity}"), "line 1: -Infinity is not a JSON number"),
    ("dup.json", "[\n" + json.dumps(_ROW) + ",\n" + json.dumps(_ROW)[:-1] + ', "machine_id": "x"}]',
     "line 3: field machine_id: the key appears twice in one object"),
    ("deep.json", "[" * 50_000 + "]" * 50_000, "line 1: not valid JSON (nested too deeply)"),
    ("deep.ndjson", '{"a":' * 50_000 + "1" + "}" * 50_000, "line 1: not valid JSON (nested too deeply)"),
    ("digits.json", json.dumps([_ROW]).replace(": 1}", ": " + "1" * 5000 + "}"), "line 1: not valid JSON (Exceeds"),
    ("huge.json", json.dumps([_ROW | {"machine_id": f"{ARC}/" + "a" * 10_000_000}]),
     "line 1: field machine_id: 10,000,117 characters, at most 2,048"),
    ("huge.csv", f"machine_id,collected_at\n{ARC}/{'a' * 200_000},2026-11-20T06:15:00Z\n",
     "line 2: not valid CSV (field larger than field limit"),
    ("feb30.csv", f"machine_id,collected_at\n{ARC}/a,2026-02-30T06:15:00Z\n",
     "line 2: field collected_at: '2026-02-30T06:15:00Z' is not an ISO 8601 time"),
    ("future.csv", f"machine_id,collected_at\n{ARC}/a,2099-01-01T00:00:00Z\n",
     "line 2: field collected_at: '2099-01-01T00:00:00Z' is in the future"),
    ("epoch.csv", f"machine_id,collected_at\n{ARC}/a,1970-01-01T00:00:00Z\n",
     "line 2: field collected_at: '1970-01-01T00:00:00Z' is before 2000"),
    ("trailing.ndjson", json.dumps(_ROW) + " {}\n", "line 1: not valid JSON (text after the object"),
    ("newline-key.json", json.dumps([_ROW | {"Wsl\n2": 1}]), "line 1: field Wsl\\n2: unknown column"),
    ("empty.csv", "", "no rows"),
    ("header-only.csv", "machine_id,collected_at\n", "no rows"),
    ("empty.json", "[]", "no rows"),
])
def test_refusals_are_one_line_naming_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(FactsFileError) as info:
        read_facts_file(bad)
    assert str(info.value).startswith(f"{bad}: {message}"), str(info.value)[:300]
    assert "\n" not in str(info.value) and len(str(info.value)) < 2000


def test_a_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "facts.csv"
    bad.write_bytes(f"machine_id,collected_at\n{ARC}/caf\u00e9,2026-11-20T06:15:00Z\n".encode("latin-1"))
    with pytest.raises(FactsFileError, match=r"facts.csv: line 2: not UTF-8 text"):
        read_facts_file(bad)


def test_many_problems_are_one_line_and_all_kept(tmp_path: Path) -> None:
    lines = ["machine_id,collected_at,VirtualizationBasedSecurityStatus"]
    lines += [f"{ARC}/m{i},2026-11-20T06:15:00Z,7" for i in range(30)]
    bad = tmp_path / "facts.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(FactsFileError) as info:
        read_facts_file(bad)
    message = str(info.value)
    assert "\n" not in message and len(info.value.problems) == 30
    assert message.startswith(f"{bad}: line 2: field VirtualizationBasedSecurityStatus: '7' is not one of 0, 1, 2; "
                              "line 3: field VirtualizationBasedSecurityStatus")
    assert message.count(str(bad)) == 1 and message.endswith("; and 10 more problem(s)")


def test_cli_exit_codes(gf_settings: Settings) -> None:
    import typer

    from hotpatch_audit.cli_facts import import_facts

    app = typer.Typer()
    app.command("import-facts")(import_facts)
    app.command("noop")(lambda: None)  # keep a multi-command app, as the real CLI is
    ledger = str(gf_settings.ledger_path)
    ok = CliRunner().invoke(app, ["import-facts", str(FIX / "collector-sample.csv"), "--ledger", ledger])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, ["import-facts", str(FIX / "bad-vbs-status.csv"), "--ledger", ledger])
    assert bad.exit_code == 2
    assert "line 3: field VirtualizationBasedSecurityStatus" in " ".join(bad.output.split())
    missing = CliRunner().invoke(app, ["import-facts", "no-such-file.csv", "--ledger", ledger])
    assert missing.exit_code == 2
    check = CliRunner().invoke(app, ["import-facts", str(FIX / "collector-sample.json"), "--check"])
    assert check.exit_code == 0
    helptext = CliRunner().invoke(app, ["import-facts", "--help"])
    assert "Example: hotpatch-audit import-facts facts.csv" in " ".join(helptext.output.split())


# --- one shape: core.guest_facts ---------------------------------------------------------------------


def test_phrase_sample_parses_like_the_import(gf_settings: Settings) -> None:
    """The collector's -Phrases output, loaded as a Machine Configuration report, equals the imported row."""
    import_facts_file(gf_settings, FIX / "collector-sample.csv")
    resources = []
    for text in (FIX / "collector-sample-phrases.txt").read_text(encoding="utf-8-sig").splitlines():
        resource, phrase = text.split(": ", 1)
        resources.append({"resourceId": resource, "complianceStatus": "true", "reasons": [{"phrase": phrase}]})
    cols = ("vbs_status, services_configured, services_running, hvci_configured, hvci_running, use_wu_server,"
            " wu_server, quality_updates_source, no_wu_internet, is_virtual_machine, hyperv_generation, hyperv_role,"
            " wsl2, firmware_type, secure_boot, is_fresh")
    with open_writer(gf_settings.path(gf_settings.ledger_path), ROOT) as con:
        for run_id, source in (("r-import", None), ("r-mc", "machine_configuration")):
            con.execute("insert into meta.runs (run_id, scope, as_of, source, tool_version, started_at, status)"
                        " values (?, 's', '2026-11-25 03:00', 'test', 'test', '2026-11-25 03:00', 'succeeded')",
                        [run_id])
            if source:
                con.execute(
                    "insert into raw.guest_configuration_reports (run_id, id, name, machine_id, last_checked,"
                    " configuration_name, report_resources) values (?, ?, 'hotpatch-audit-guest', ?, ?,"
                    " 'hotpatch-audit-guest', ?)",
                    [run_id, f"{SQL2}/providers/microsoft.guestconfiguration/guestconfigurationassignments/"
                     "hotpatch-audit-guest", SQL2, "2026-11-21T00:00:00Z", json.dumps(resources)])
                parse_guest_configuration_reports(con, run_id)
        got = {r[0]: r[1:] for r in con.execute(
            f"select run_id, source, {cols} from core.guest_facts where machine_id = ?", [SQL2]).fetchall()}
    assert got["r-import"][0] == "import"
    assert got["r-mc"][0] == "machine_configuration"
    assert got["r-import"][1:] == got["r-mc"][1:]
    assert got["r-mc"][1:] == (2, ["1", "2"], ["1", "2"], True, True, 1, "http://wsus.contoso.local:8530", 1, 1,
                               1, 2, 0, 1, "UEFI", 1, True)


def test_freshest_route_wins_and_stale_counts_as_missing(gf_settings: Settings, tmp_path: Path) -> None:
    def facts(path: Path, collected: str, vbs: int) -> Path:
        path.write_text(json.dumps([{"machine_id": f"{ARC}/arc-web-01", "collected_at": collected,
                                     "VirtualizationBasedSecurityStatus": vbs}]))
        return path

    run_id = _audited_ledger(gf_settings, tmp_path)
    import_facts_file(gf_settings, facts(tmp_path / "old.json", "2026-09-01T00:00:00Z", 0))
    import_facts_file(gf_settings, facts(tmp_path / "future.json", "2026-12-01T00:00:00Z", 2))
    sql = "select source, vbs_status, collected_at, is_fresh from core.guest_facts where run_id = ? and machine_id = ?"
    # only facts collected by the run's as_of count; older than 30 days: kept but not fresh
    assert _rows(gf_settings, sql, [run_id, WEB]) == [("import", 0, datetime(2026, 9, 1), False)]
    with open_writer(gf_settings.path(gf_settings.ledger_path), ROOT) as con:
        finish_run(con, run_id, True)
    assert _vbs_codes(gf_settings, run_id, WEB) == {"VBS_UNKNOWN"}
    # a Machine Configuration report of the run that is newer wins over the import
    import_facts_file(gf_settings, facts(tmp_path / "recent.json", "2026-11-20T00:00:00Z", 1))
    assert _rows(gf_settings, sql, [run_id, WEB]) == [("import", 1, datetime(2026, 11, 20), True)]
    with open_writer(gf_settings.path(gf_settings.ledger_path), ROOT) as con:
        con.execute("insert into raw.guest_configuration_reports (run_id, id, name, machine_id, last_checked,"
                    " configuration_name, report_resources) values (?, 'x', 'hotpatch-audit-guest', ?,"
                    " '2026-11-24T00:00:00Z', 'hotpatch-audit-guest', ?)",
                    [run_id, WEB, json.dumps([{"reasons": [{"phrase": "VirtualizationBasedSecurityStatus=2"}]}])])
        parse_guest_configuration_reports(con, run_id)
    assert _rows(gf_settings, sql, [run_id, WEB]) == [("machine_configuration", 2, datetime(2026, 11, 24), True)]


def test_imported_facts_feed_the_vbs_audit(gf_settings: Settings, tmp_path: Path) -> None:
    run_id = _audited_ledger(gf_settings, tmp_path)
    assert _vbs_codes(gf_settings, run_id, WEB) == {"VBS_UNKNOWN"}
    import_facts_file(gf_settings, FIX / "collector-sample.csv")  # arc-web-01: VBS enabled, not running
    # findings stay as judged until the run is audited again
    assert _vbs_codes(gf_settings, run_id, WEB) == {"VBS_UNKNOWN"}
    with open_writer(gf_settings.path(gf_settings.ledger_path), ROOT) as con:
        finish_run(con, run_id, True)
    assert _vbs_codes(gf_settings, run_id, WEB) == {"VBS_NOT_RUNNING"}
    # a new run of the same scope and as-of picks them up as well
    again = run_audit(gf_settings, RunRequest(source="snapshot", snapshot_dir=tmp_path / "snap", as_of=AS_OF),
                      render=False)
    assert _vbs_codes(gf_settings, again.run_id, WEB) == {"VBS_NOT_RUNNING"}


def test_raw_import_table_survives_runs(gf_settings: Settings, tmp_path: Path) -> None:
    """The ledger's per-run clean-up of raw tables never deletes imported facts."""
    import_facts_file(gf_settings, FIX / "collector-sample.csv")
    _audited_ledger(gf_settings, tmp_path)
    _audited_ledger(gf_settings, tmp_path)
    assert _rows(gf_settings, "select count(*) from raw.guest_facts where source = 'import'") == [(3,)]


def test_machine_configuration_reports_land_parsed_in_the_one_raw_table(gf_settings: Settings, tmp_path: Path) -> None:
    """A run's Machine Configuration report is parsed at load into raw.guest_facts beside imported rows,
    and leaves with its run when a rerun replaces it."""
    import_facts_file(gf_settings, FIX / "collector-sample.csv")
    report = {
        "id": f"{WEB}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/hotpatch-audit-guest",
        "name": "hotpatch-audit-guest", "machine_id": WEB, "configuration_name": "hotpatch-audit-guest",
        "last_checked": "2026-11-24T00:00:00Z", "compliance_status": "Compliant",
        "report_resources": [{"resourceId": "vbs", "reasons": [
            {"phrase": "VirtualizationBasedSecurityStatus=2; SecurityServicesConfigured=2; SecurityServicesRunning=2"},
            {"phrase": "FirmwareType=UEFI SecureBoot=1 UseWUServer=0"}]}],
    }
    snap = make_snapshot(tmp_path / "snap", {"arc_machines": [arc_row("arc-web-01")],
                                             "guest_configuration_reports": [report]})
    first = run_audit(gf_settings, RunRequest(source="snapshot", snapshot_dir=snap, as_of=AS_OF), render=False)
    sql = ("select run_id, source, machine_id, collected_at, vbs_status, security_services_running, firmware_type,"
           " secure_boot, use_wu_server from raw.guest_facts order by source, machine_id")
    rows = _rows(gf_settings, sql)
    assert [r[1] for r in rows] == ["import", "import", "import", "machine_configuration"]
    assert all(r[0] is None for r in rows[:3])
    assert rows[3] == (first.run_id, "machine_configuration", WEB, datetime(2026, 11, 24), 2, "2", "UEFI", 1, 0)
    assert _vbs_codes(gf_settings, first.run_id, WEB) == set()  # VBS running, HVCI on: no blocker
    again = run_audit(gf_settings, RunRequest(source="snapshot", snapshot_dir=snap, as_of=AS_OF), render=False)
    rows = _rows(gf_settings, sql)
    assert [r[0] for r in rows if r[1] == "machine_configuration"] == [again.run_id]
    assert len(rows) == 4


def test_ledger_from_before_the_one_raw_table_is_migrated(gf_settings: Settings, tmp_path: Path) -> None:
    """An older ledger kept imports in raw.imported_guest_facts and parsed reports only in a view: opening it
    moves the imports into raw.guest_facts, parses every run's reports, and drops the old table."""
    run_id = _audited_ledger(gf_settings, tmp_path)
    ledger = gf_settings.path(gf_settings.ledger_path)
    with open_writer(ledger, ROOT) as con:
        con.execute("create table raw.imported_guest_facts (run_id varchar, import_id varchar, source_file varchar,"
                    " line integer, machine_id varchar, collected_at timestamp, vbs_status integer,"
                    " security_services_configured varchar, security_services_running varchar, use_wu_server integer,"
                    " wu_server varchar, quality_updates_source integer, no_wu_internet integer,"
                    " is_virtual_machine integer, hyperv_generation integer, hyperv_role integer, wsl2 integer,"
                    " firmware_type varchar, secure_boot integer, imported_at timestamp)")
        con.execute("insert into raw.imported_guest_facts (import_id, source_file, line, machine_id, collected_at,"
                    " vbs_status, security_services_configured, imported_at) values"
                    " ('abc', 'old.csv', 2, ?, '2026-11-20 06:15', 1, '2', '2026-11-21 00:00')", [WEB])
        con.execute("insert into raw.guest_configuration_reports (run_id, id, name, machine_id, last_checked,"
                    " configuration_name, report_resources) values (?, 'x', 'hotpatch-audit-guest', ?,"
                    " '2026-11-19T00:00:00Z', 'hotpatch-audit-guest', ?)",
                    [run_id, WEB, json.dumps([{"reasons": [{"phrase": "VirtualizationBasedSecurityStatus=0"}]}])])
        con.execute("delete from raw.guest_facts")
        con.execute("update meta.schema_state set fingerprint = 'older'")
    with open_writer(ledger, ROOT):
        pass
    rows = _rows(gf_settings, "select source, run_id, report_id, vbs_status, phrases, loaded_at from raw.guest_facts"
                              " order by source")
    assert rows[0] == ("import", None, "import:old.csv:2", 1,
                       "VirtualizationBasedSecurityStatus=1 SecurityServicesConfigured=2", datetime(2026, 11, 21))
    assert rows[1][:4] == ("machine_configuration", run_id, "x", 0)
    assert _rows(gf_settings, "select count(*) from information_schema.tables where table_name ="
                              " 'imported_guest_facts'") == [(0,)]
    # the import (collected 2026-11-20) is fresher than the report (2026-11-19) and wins for the run
    assert _rows(gf_settings, "select source, vbs_status from core.guest_facts where run_id = ?", [run_id]) == [
        ("import", 1)]
