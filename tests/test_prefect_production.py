"""hotpatch-audit as it runs in production: a real Prefect server, the deployments of prefect.yaml, a process
worker, and Resource Graph played by the local emulator with its real quota (15 requests per 5 s per identity).

One server, one worker and one emulator serve the whole module (starting a server takes a minute on two busy
cores). Each flow run is created through the API with its own job variables (the worker's environment for that
run: the emulator's endpoint, CA bundle and token, as a worker would carry them), then the worker runs it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from pypdf import PdfReader

from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import PROJECT_ROOT
from tests.emulator_fixture import FLEET_AS_OF, fleet_subscriptions
from tests.test_prefect_deployment import (
    FLOW_RUN_TIMEOUT_S,
    POOL,
    PREFECT,
    ROOT,
    prefect,
    prefect_server,
    stop,
    tail,
    wait_for,
)

pytestmark = pytest.mark.slow
QUOTA, WINDOW_S = 15, 5.0  # Resource Graph's documented quota per identity
TOKEN = "production-test-token"  # noqa: S105 - the emulator's token, not a secret


@pytest.fixture(scope="module")
def emulator(rg_fleet_db: Path, rg_cert_dir: Path) -> Iterator[Any]:
    """The Resource Graph stand-in with the quota on, as a tenant's identity meets it."""
    from hotpatch_audit.demo.emulator import ResourceGraphEmulator

    emu = ResourceGraphEmulator(rg_fleet_db, token=TOKEN, quota_per_window=QUOTA, window_seconds=WINDOW_S,
                                quota_enabled=True, cert_dir=rg_cert_dir, query_now=FLEET_AS_OF)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Prefect server with the deployments of prefect.yaml and a process worker polling its pool."""
    base = tmp_path_factory.mktemp("production")
    with prefect_server(base) as env:
        prefect(env, "work-pool", "create", POOL, "--type", "process")
        prefect(env, "--no-prompt", "deploy", "--all")
        with (base / "worker.log").open("wb") as out:
            worker = subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", POOL, "--type", "process", "--limit", "2"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield {"env": env, "api": env["PREFECT_API_URL"], "base": base}
        finally:
            stop(worker)


def arg_env(emulator: Any, token: str = TOKEN, **extra: str) -> dict[str, str]:
    """What a worker reading Resource Graph carries in its environment (here: pointing at the emulator)."""
    return {"HOTPATCH_AUDIT_ARG_ENDPOINT": emulator.url, "HOTPATCH_AUDIT_ARG_CA_BUNDLE": str(emulator.ca_bundle),
            "HOTPATCH_AUDIT_ARG_TOKEN": token, **extra}


def run_deployment(production: dict[str, Any], name: str, parameters: dict[str, Any], env: dict[str, str],
                   scheduled: datetime | None = None) -> dict[str, Any]:
    """Create a flow run of a deployment (job variables: `env`), let the worker run it, return the flow run."""
    api = production["api"]
    deployment = httpx.get(f"{api}/deployments/name/{name}", timeout=60).json()
    body: dict[str, Any] = {"parameters": parameters, "job_variables": {"env": env}}
    if scheduled is not None:
        body["state"] = {"type": "SCHEDULED", "state_details": {"scheduled_time": scheduled.isoformat()}}
    for _ in range(10):  # a local SQLite server answers 503 while another run writes; the client retries too
        created = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json=body, timeout=60)
        if created.status_code != 503:
            break
        time.sleep(3)
    assert created.status_code == 201, created.text
    flow_run_id = created.json()["id"]

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=60).json()
        return run if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    run = wait_for(f"flow run of {name}", finished, FLOW_RUN_TIMEOUT_S, interval=2)
    assert isinstance(run, dict)
    return run


def logs_of(production: dict[str, Any], flow_run_ids: list[str]) -> list[str]:
    """Every log message of the flow runs, as the UI shows them."""
    out: list[str] = []
    while True:
        page = httpx.post(f"{production['api']}/logs/filter", timeout=60, json={
            "logs": {"flow_run_id": {"any_": flow_run_ids}}, "offset": len(out), "limit": 200}).json()
        out += [entry["message"] for entry in page]
        if len(page) < 200:
            return out


def task_runs_of(production: dict[str, Any], flow_run_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = httpx.post(f"{production['api']}/task_runs/filter", timeout=60, json={
        "flow_runs": {"id": {"any_": [flow_run_id]}}}).json()
    return runs


def paths(base: Path, name: str) -> dict[str, str]:
    return {"ledger_path": str(base / name / "ledger.duckdb"), "out_dir": str(base / name / "reports"),
            "work_dir": str(base / name / "work")}


def max_in_window(times: list[float], window: float) -> int:
    """The most requests seen in any `window` seconds (a sliding window over the request log)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_monthly_deployment_without_a_source_fails_and_says_why(
    production: dict[str, Any], tmp_path: Path
) -> None:
    run = run_deployment(production, "monthly-audit/monthly", paths(tmp_path, "m"), env={})
    assert run["state"]["type"] == "FAILED"
    assert "a monthly run needs source arg" in run["state"]["message"], run["state"]
    assert not (tmp_path / "m" / "ledger.duckdb").exists()  # refused before anything was registered


def test_a_late_run_is_dated_by_its_schedule_and_its_thread_logs_reach_prefect(
    production: dict[str, Any], emulator: Any, rg_fleet_db: Path, tmp_path: Path
) -> None:
    scheduled = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # the worker starts it days later
    subs = fleet_subscriptions(rg_fleet_db)
    params = {"source": "arg", "subscriptions": subs, "formats": ["html", "csv"], **paths(tmp_path, "late")}
    run = run_deployment(production, "monthly-audit/on-demand", params, arg_env(emulator), scheduled=scheduled)
    assert run["state"]["type"] == "COMPLETED", (run["state"], tail(production["base"] / "worker.log"))

    con = duckdb.connect(str(tmp_path / "late" / "ledger.duckdb"), read_only=True)
    try:
        [(as_of, status)] = con.execute("SELECT as_of, status FROM meta.runs").fetchall()
    finally:
        con.close()
    assert status == "succeeded" and as_of == scheduled.replace(tzinfo=None)

    messages = logs_of(production, [run["id"]])
    # "query <name>: N pages ..." is written on the extract's worker threads, one per query
    per_query = [m for m in messages if m.startswith("query ") and "complete=True" in m]
    assert len(per_query) == len(load_queries(PROJECT_ROOT)), messages


def test_a_refused_credential_fails_at_once_without_retries(
    production: dict[str, Any], emulator: Any, rg_fleet_db: Path, tmp_path: Path
) -> None:
    before = len(emulator.request_log())
    params = {"source": "arg", "subscriptions": fleet_subscriptions(rg_fleet_db), "is_monthly": True,
              **paths(tmp_path, "bad")}
    run = run_deployment(production, "monthly-audit/on-demand", params, arg_env(emulator, token="wrong-token"))  # noqa: S106
    assert run["state"]["type"] == "FAILED"
    message = run["state"]["message"]
    assert "authentication or authorization failed" in message and "static token" in message, message
    [extract] = [t for t in task_runs_of(production, run["id"]) if t["name"].startswith("extract")]
    assert extract["run_count"] == 1 and extract["state"]["type"] == "FAILED"  # no retry of a refused token
    refused = emulator.request_log()[before:]
    assert refused and all(status == 401 for _, _, status in refused)
    assert len(refused) <= 10  # at most one request per query: nothing retried a 401
    print(f"refused credential: flow run took {run['total_run_time']:.1f} s")


def test_three_tenants_fan_out_under_one_shared_rate_limit(
    production: dict[str, Any], emulator: Any, rg_fleet_db: Path, tmp_path: Path
) -> None:
    subs = fleet_subscriptions(rg_fleet_db)
    tenants = [{"name": "alpha", "subscriptions": subs[:1]}, {"name": "beta", "subscriptions": subs[1:2]},
               {"name": "gamma", "subscriptions": subs[2:], "language": "ja", "timezone": "Asia/Tokyo"}]
    base = tmp_path / "tenants"
    emulator.reset()
    started = datetime.now(UTC).timestamp()
    # One subscription per request: many requests, so three runs at once would pass the quota unless they share
    # the limit.
    env = arg_env(emulator, HOTPATCH_AUDIT_ARG_BATCH_SIZE="1")
    run = run_deployment(production, "tenants-audit/monthly-tenants",
                         {"tenants": tenants, "tenants_file": None, "base_dir": str(base),
                          "as_of": FLEET_AS_OF.isoformat(), "formats": ["html", "pdf", "csv", "parquet"]}, env)
    assert run["state"]["type"] == "COMPLETED", (run["state"], tail(production["base"] / "worker.log"))

    children = httpx.post(f"{production['api']}/flow_runs/filter", timeout=60, json={
        "flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}}}).json()
    assert sorted(c["name"] for c in children) == ["alpha-2026-11-25", "beta-2026-11-25", "gamma-2026-11-25"]
    assert all(c["state"]["type"] == "COMPLETED" for c in children)

    for tenant in tenants:
        con = duckdb.connect(str(base / tenant["name"] / "ledger.duckdb"), read_only=True)
        try:
            [(scope, status)] = con.execute("SELECT scope, status FROM meta.runs").fetchall()
        finally:
            con.close()
        assert status == "succeeded" and scope == "subscriptions:" + ",".join(tenant["subscriptions"])

    [rollup] = list((base / "rollup").iterdir())
    assert {"rollup.html", "rollup.pdf", "manifest.json"} <= {p.name for p in rollup.iterdir()}
    text = "\n".join(page.extract_text() for page in PdfReader(rollup / "rollup.pdf").pages)
    assert all(t["name"] in text for t in tenants)

    log = [entry for entry in emulator.request_log() if entry[0] >= started]
    assert len(log) > 2 * QUOTA  # more than two quota windows of requests: unshared, three runs would burst past it
    busiest = max_in_window([t for t, _, _ in log], WINDOW_S)
    print(f"tenants: {len(log)} requests, at most {busiest} in any {WINDOW_S:g} s, took {run['total_run_time']:.0f} s")
    assert busiest <= QUOTA
    assert not [s for _, _, s in log if s == 429]
    artifacts = httpx.post(f"{production['api']}/artifacts/filter", timeout=60, json={
        "artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    [table] = [a for a in artifacts if a["key"] == "tenants-audit"]
    assert [row["status"] for row in json.loads(table["data"])] == ["succeeded"] * 3
