"""Table-driven audit cases: tests/cases/<audit>/*.yaml run through a real DuckDB ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import yaml

from hotpatch_audit.analyze import apply_sql, materialize_findings
from hotpatch_audit.ledger import parse_guest_configuration_reports, raw_schema

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests" / "cases").glob("*/*.yaml"))
RAW_COLUMNS = raw_schema(ROOT)
STATUSES = {"fail", "warn", "pass", "unknown", "waived"}
SEVERITIES = {"critical", "high", "medium", "low", "info"}
OUTCOMES = {"avoided", "expected_reboot", "unexpected_reboot", "avoidable_reboot", "no_install", "unknown", "not_applicable"}
MACHINE_TABLES = {"arc_machines": "Microsoft.HybridCompute/machines", "azure_vms": "Microsoft.Compute/virtualMachines"}


def _machine_ids(raw: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for table, provider in MACHINE_TABLES.items():
        for row in raw.get(table, []):
            sub, rg = row.get("subscription_id", "sub1"), row.get("resource_group", "rg1")
            ids[row["name"]] = row.get("id") or f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{row['name']}"
    return ids


def _expand(table: str, row: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    row = dict(row)
    row.setdefault("subscription_id", "sub1")
    row.setdefault("resource_group", "rg1")
    if table in MACHINE_TABLES:
        row["id"] = ids[row["name"]]
        return row
    machine = row.pop("machine", None)
    mid = ids.get(machine, "") if machine else row.get("machine_id", "")
    if table != "resource_containers":
        row.setdefault("machine_id", mid.lower())
    if table == "patch_installations":
        row.setdefault("id", f"{mid}/patchInstallationResults/{row.get('name', 'run')}")
    elif table == "installed_patches":
        inst = f"{mid}/patchInstallationResults/{row.pop('installation')}"
        row.setdefault("installation_id", inst.lower())
        row.setdefault("id", f"{inst}/softwarePatches/{row.get('kb_id', row.get('patch_name'))}")
    elif table == "patch_assessments":
        row.setdefault("id", f"{mid}/patchAssessmentResults/latest")
    elif table == "available_patches":
        row.setdefault("id", f"{mid}/patchAssessmentResults/latest/softwarePatches/{row.get('kb_id')}")
    elif table == "guest_configuration_reports":
        phrases = row.pop("phrases", [])
        row.setdefault("id", f"{mid}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/hotpatch-audit-guest")
        row.setdefault("name", "hotpatch-audit-guest")
        row.setdefault("configuration_name", "hotpatch-audit-guest")
        row.setdefault("report_resources", [{"resourceId": f"r{i}", "reasons": [{"phrase": p}]} for i, p in enumerate(phrases)])
    return row


def _as_projected(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A case row as Resource Graph returns it: the KQL's tostring() makes every non-JSON column text, so a YAML
    true or 5 becomes "true" or "5" (what the ledger held for them before snapshots were type-checked)."""
    types = dict(RAW_COLUMNS[table])
    out = {}
    for key, value in row.items():
        if types.get(key, "VARCHAR") != "JSON" and isinstance(value, bool):
            value = "true" if value else "false"
        elif types.get(key, "VARCHAR") != "JSON" and isinstance(value, int | float):
            value = str(value)
        out[key] = value
    return out


def load_case(con: duckdb.DuckDBPyConnection, case: dict[str, Any]) -> list[str]:
    """Insert a case's runs, settings and raw rows; return the run ids in order."""
    runs = case["runs"]
    raw = case.get("raw", {})
    ids = _machine_ids(raw)
    for run in runs:
        con.execute(
            "insert into meta.runs (run_id, scope, as_of, source, tool_version, started_at, status)"
            " values (?, ?, ?, 'test', 'test', ?, 'succeeded')",
            [run["run_id"], run.get("scope", "test"), str(run["as_of"]), str(run["as_of"])],
        )
        for key, value in (run.get("settings") or {}).items():
            con.execute("insert into meta.settings values (?, ?, ?)", [run["run_id"], key, str(value)])
    for table, rows in raw.items():
        cols = {r[0]: r[1] for r in con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = 'raw' and table_name = ?",
            [table]).fetchall()}
        for row in rows:
            full = _expand(table, row, ids)
            for run_id in ([full.pop("run_id")] if "run_id" in full else [r["run_id"] for r in runs]):
                values = {"run_id": run_id}
                for k, v in full.items():
                    assert k in cols, f"{table} has no column {k}"
                    values[k] = json.dumps(v) if cols[k] == "JSON" else (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                names = ", ".join(values)
                con.execute(f"insert into raw.{table} ({names}) values ({', '.join('?' for _ in values)})", list(values.values()))
    for run in runs:  # as ledger.load_snapshot does when it loads a run
        parse_guest_configuration_reports(con, run["run_id"])
    return [r["run_id"] for r in runs]


EXACT_KEYS = ("audit", "code", "status", "machine", "month")


def _check_case_shape(path: Path, case: dict[str, Any]) -> None:
    """Every case file says in one line what it proves, and every expectation names the exact finding."""
    proves = case.get("proves")
    assert isinstance(proves, str) and proves.strip() and "\n" not in proves.strip(), f"{path.name}: needs a one-line `proves:`"
    assert case.get("expect"), f"{path.name}: needs at least one `expect:` finding"
    for want in case["expect"]:
        missing = [k for k in EXACT_KEYS if k not in want]
        assert not missing, f"{path.name}: expectation {want} lacks {missing} (use month: null for findings without a month)"


def _matches(row: dict[str, Any], want: dict[str, Any]) -> bool:
    """Exact match per key; `reason_contains` / `evidence_contains` match a substring of that column."""
    return all(str(v) in str(row.get(k[: -len("_contains")])) if k.endswith("_contains") else str(row.get(k)) == str(v)
               for k, v in want.items())


def run_case_through_pipeline(ledger: Path, case: dict[str, Any], work: Path) -> list[str]:
    """Each run of a case as the CLI runs it: rows -> snapshot pages -> extract -> load -> audit."""
    from datetime import UTC, datetime

    from hotpatch_audit.config import Settings
    from hotpatch_audit.pipeline import RunRequest, audit_stage, extract_stage, load_stage, start_run
    from tests.snapshots import make_snapshot

    raw = case.get("raw", {})
    ids = _machine_ids(raw)
    waiver_file = None
    if "waivers" in case:
        waiver_file = work / "waivers.yaml"
        waiver_file.write_text(yaml.safe_dump(case["waivers"]), encoding="utf-8")
    run_ids = []
    for run in case["runs"]:
        run_id = run["run_id"]
        as_of = run["as_of"] if isinstance(run["as_of"], datetime) else datetime.fromisoformat(str(run["as_of"]))
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        rows: dict[str, list[dict[str, Any]]] = {}
        for table, table_rows in raw.items():
            for row in table_rows:
                full = _expand(table, row, ids)
                if full.pop("run_id", run_id) == run_id:
                    full.setdefault("id", f"/subscriptions/{full['subscription_id']}/resourceGroups/{full['resource_group']}"
                                          f"/{table}/{len(rows.get(table, []))}")
                    rows.setdefault(table, []).append(_as_projected(table, full))
        snap = make_snapshot(work / f"snap-{run_id}", rows, as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             scope=run.get("scope", "test"))
        settings = Settings(ledger_path=ledger, work_dir=work / "work", waivers_path=waiver_file,
                            **(run.get("settings") or {}))
        unknown = set(run.get("settings") or {}) - set(Settings.model_fields)
        assert not unknown, f"case settings unknown to Settings: {unknown}"
        ctx = start_run(settings, RunRequest(source="snapshot", snapshot_dir=snap, as_of=as_of, run_id=run_id))
        extracted = extract_stage(settings, ctx)
        load_stage(settings, ctx, extracted)
        audit_stage(settings, ctx, extracted.complete)
        run_ids.append(run_id)
    return run_ids


def _run_case(ledger: Path, case: dict[str, Any], work: Path) -> None:
    run_ids = run_case_through_pipeline(ledger, case, work)
    con = duckdb.connect(str(ledger), read_only=True)
    cur = con.execute("select f.*, f.machine_name as machine from audit.findings f")
    names = [d[0] for d in cur.description]
    findings = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert {f["status"] for f in findings} <= STATUSES
    assert {f["severity"] for f in findings} <= SEVERITIES
    # only a non-compliant (fail or warn) finding can be closed: a compliant or unjudged one carries no closure
    closed_yet_not_non_compliant = [(f["code"], f["machine"], f["month"], f["status"], f["closed_by"]) for f in findings
                                    if f["status"] not in ("fail", "warn") and (f["closed_at"] or f["closed_by"]
                                                                              or f["closed_reason"])]
    assert not closed_yet_not_non_compliant
    default_run = run_ids[-1]
    for want in case.get("expect", []):
        want = {"run_id": default_run, **want}
        hits = [f for f in findings if _matches(f, want)]
        assert hits, f"expected {want}; got {[(f['run_id'], f['audit'], f['code'], f['machine'], f['month'], f['status'], f['severity']) for f in findings if f['machine'] == want.get('machine')]}"
    for unwanted in case.get("absent", []):
        unwanted = {"run_id": default_run, **unwanted}
        hits = [f for f in findings if _matches(f, unwanted)]
        assert not hits, f"unexpected {[(f['code'], f['month'], f['status'], f['reason']) for f in hits]}"
    cur = con.execute("select *, machine_name as machine from audit.machine_months")
    names = [d[0] for d in cur.description]
    months = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert {m["outcome"] for m in months} <= OUTCOMES
    for want in case.get("expect_months", []):
        want = {"run_id": default_run, **want}
        assert [m for m in months if _matches(m, want)], f"expected {want}; got {[(m['month'], m['outcome'], m['cause_kbs']) for m in months if m['machine'] == want.get('machine') and m['run_id'] == want['run_id']]}"
    cur = con.execute("select *, machine_name as machine from audit.readiness")
    names = [d[0] for d in cur.description]
    ready = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for want in case.get("expect_readiness", []):
        want = {"run_id": default_run, **want}
        assert [r for r in ready if _matches(r, want)], f"expected {want}; got {[(r['machine'], r['first_failing_gate'], r['gate_code']) for r in ready]}"
    cur = con.execute("select *, machine_name as machine from audit.open_actions")
    names = [d[0] for d in cur.description]
    actions = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for want in case.get("expect_actions", []):
        want = {"run_id": default_run, **want}
        assert [a for a in actions if _matches(a, want)], f"expected action {want}; got {[(a['machine'], a['root_cause'], a['code'], a['months'], a['remediation']) for a in actions if a['run_id'] == want['run_id']]}"
    for unwanted in case.get("absent_actions", []):
        unwanted = {"run_id": default_run, **unwanted}
        hits = [a for a in actions if _matches(a, unwanted)]
        assert not hits, f"unexpected actions {[(a['root_cause'], a['code'], a['months'], a['remediation']) for a in hits]}"
    if case.get("one_action_per_cause", True):
        keys = [(a["run_id"], a["machine_id"], a["root_cause"]) for a in actions]
        assert len(keys) == len(set(keys)), "a machine has two open actions for one root cause"
    cur = con.execute("select *, machine_name as machine from core.machines")
    names = [d[0] for d in cur.description]
    machines = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for want in case.get("expect_machines", []):
        want = {"run_id": default_run, **want}
        assert [m for m in machines if _matches(m, want)], f"expected {want}; got {[(m['machine'], m['hotpatch_status'], m['owner']) for m in machines]}"


def test_findings_status_set_is_closed(tmp_path: Path) -> None:
    """Every case together: audit.findings only holds the closed status and severity sets."""
    con = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    apply_sql(con, ROOT)
    apply_sql(con, ROOT)  # idempotent
    case = yaml.safe_load((ROOT / "tests" / "cases" / "missed_hotpatches" / "missed_and_grace.yaml").read_text())
    for run_id in load_case(con, case):
        materialize_findings(con, run_id)
        materialize_findings(con, run_id)  # delete + insert, no duplicates
    bad = con.execute(
        "select count(*) from audit.findings where status not in ('fail','warn','pass','unknown','waived')"
        " or severity not in ('critical','high','medium','low','info') or reason is null or finding_id is null").fetchone()
    assert bad == (0,)
    dup = con.execute("select count(*) - count(distinct (run_id, finding_id)) from audit.findings").fetchone()
    assert dup == (0,)
