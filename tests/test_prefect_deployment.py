"""prefect.yaml against a real Prefect server: deploy, run a deployment on a process worker, read its state.

The slow test starts `prefect server start` (SQLite and PREFECT_HOME in tmp), runs `prefect deploy --all`
from the repository root, triggers `monthly-audit/on-demand` on a small demo fleet with the ledger and
reports in tmp, and lets `prefect worker start --run-once` execute it. The fast tests check the YAML.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.schemas.schedules import RRuleSchedule

from hotpatch_audit.pipeline import monthly_run_date

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "hotpatch-audit"
# Minutes, not seconds: on two busy cores the server alone can take a minute to come up.
SERVER_START_TIMEOUT_S = 300
CLI_TIMEOUT_S = 300
FLOW_RUN_TIMEOUT_S = 900


def prefect_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return data


def deployment(name: str) -> dict[str, Any]:
    return next(d for d in prefect_yaml()["deployments"] if d["name"] == name)


# -- prefect.yaml, without a server ------------------------------------------------------------------


def test_monthly_schedule_fires_on_the_library_s_monthly_run_date() -> None:
    [schedule] = deployment("monthly")["schedules"]
    assert schedule["timezone"] == "UTC"
    rrule = RRuleSchedule(**schedule).to_rrule()
    fires = list(rrule.xafter(datetime(2025, 1, 1, tzinfo=UTC), count=60))
    assert [f.date() for f in fires] == [monthly_run_date(f.year, f.month) for f in fires]
    assert {(f.hour, f.minute) for f in fires} == {(3, 0)}
    assert fires[:2] == [datetime(2025, 1, 29, 3, 0, tzinfo=UTC), datetime(2025, 2, 26, 3, 0, tzinfo=UTC)]
    assert date(2026, 11, 25) in {f.date() for f in rrule.xafter(datetime(2026, 11, 1, tzinfo=UTC), count=1)}


def test_deployments_share_one_process_pool_and_name_real_entrypoints() -> None:
    data = prefect_yaml()
    assert data["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}]
    names = {d["name"] for d in data["deployments"]}
    assert names == {"monthly", "on-demand", "monthly-tenants", "re-render"}
    for d in data["deployments"]:
        assert d["work_pool"]["name"] == POOL
        path, _, function = d["entrypoint"].partition(":")
        assert f"def {function}(" in (ROOT / path).read_text(encoding="utf-8")
    assert deployment("monthly")["parameters"]["is_monthly"] is True
    tenants = deployment("monthly-tenants")
    assert tenants["parameters"]["is_monthly"] is True and tenants["schedules"] == deployment("monthly")["schedules"]
    on_demand = deployment("on-demand")["parameters"]
    assert on_demand["is_monthly"] is False
    assert {"subscriptions", "management_groups", "as_of", "formats", "language"} <= set(on_demand)
    assert not re.search(r"secret|password|token|credential|api_key", json.dumps(data).lower())


# -- a real server, deploy and a process worker ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process and its children (its own process group), then kill what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail(path: Path, lines: int = 60) -> str:
    return (
        "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        if path.exists()
        else ""
    )


@contextlib.contextmanager
def prefect_server(base: Path) -> Iterator[dict[str, str]]:
    """A local `prefect server start` with everything under `base`; yields the environment that talks to it
    (no HOTPATCH_AUDIT_* from the outer environment: each run gets what the test gives it)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOTPATCH_AUDIT_")},
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{base / 'prefect.db'}",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_PROMPT": "false",
        # Runs come from `deployment run`; the scheduler would only add work for the monthly schedule.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "hotpatch_audit",
        # A long-running worker polls its pool every 2 s instead of 10.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        # `{{ $PWD }}` in prefect.yaml is read by `prefect deploy`; a shell sets it, Popen does not.
        "PWD": str(ROOT),
    }
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prefect server exited with {process.returncode}:\n{tail(log)}")
            try:
                return httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the Prefect server's /api/health", healthy, SERVER_START_TIMEOUT_S)
        yield env
    finally:
        stop(process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A local Prefect server in tmp for one test."""
    with prefect_server(tmp_path) as env:
        yield env


def prefect(env: dict[str, str], *args: str) -> str:
    """Run a prefect CLI command from the repository root; fail with its output if it fails."""
    done = subprocess.run(
        [PREFECT, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"prefect {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the sum of the waits below, in case each one takes its full time
def test_deploy_and_run_on_a_process_worker(server: dict[str, str], tmp_path: Path) -> None:
    env, api = server, server["PREFECT_API_URL"]
    yaml_before = hashlib.sha256((ROOT / "prefect.yaml").read_bytes()).hexdigest()

    prefect(env, "work-pool", "create", POOL, "--type", "process")
    prefect(env, "--no-prompt", "deploy", "--all")
    assert hashlib.sha256((ROOT / "prefect.yaml").read_bytes()).hexdigest() == yaml_before

    deployed = httpx.get(f"{api}/deployments/name/monthly-audit/on-demand", timeout=60).json()
    assert deployed["work_pool_name"] == POOL
    assert deployed["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert deployed["job_variables"]["working_dir"] == str(ROOT)
    monthly = httpx.get(f"{api}/deployments/name/monthly-audit/monthly", timeout=60).json()
    [schedule] = monthly["schedules"]
    assert "FREQ=MONTHLY;BYDAY=WE;BYMONTHDAY=23," in schedule["schedule"]["rrule"]
    assert schedule["schedule"]["timezone"] == "UTC" and schedule["active"]
    assert httpx.get(f"{api}/deployments/name/on-demand-report/re-render", timeout=60).status_code == 200

    params = {
        "source": "demo",
        "demo_machines": 60,
        "as_of": "2026-11-25T03:00:00Z",
        "formats": ["html", "csv"],
        "ledger_path": str(tmp_path / "ledger.duckdb"),
        "out_dir": str(tmp_path / "reports"),
        "work_dir": str(tmp_path / "work"),
    }
    output = prefect(env, "deployment", "run", "monthly-audit/on-demand", "--params", json.dumps(params))
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    assert match, output
    flow_run_id = match.group(1)

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", POOL, "--type", "process", "--run-once", "--limit", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def final_state() -> dict[str, Any] | None:
            state: dict[str, Any] = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=60).json()["state"]
            if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return state
            if worker.poll() is not None and state["type"] == "SCHEDULED":
                pytest.fail(f"the worker exited without picking up the run:\n{tail(worker_log)}")
            return None

        state = wait_for("the flow run to finish", final_state, FLOW_RUN_TIMEOUT_S, interval=2)
        assert state["type"] == "COMPLETED", f"{state}\n{tail(worker_log)}"
    finally:
        stop(worker)

    task_runs = httpx.post(
        f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}, timeout=60
    ).json()
    assert {t["name"].split("-run-")[0] for t in task_runs} == {"extract", "load", "audit", "render"}
    assert all(t["state"]["type"] == "COMPLETED" for t in task_runs)

    reports = sorted(p.name for p in (tmp_path / "reports").rglob("*") if p.is_file())
    assert "open_actions.csv" in reports and any(name.endswith(".html") for name in reports), reports
    logs = httpx.post(
        f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}}, timeout=60
    ).json()
    assert any(entry["name"].startswith("hotpatch_audit") for entry in logs), "library log not forwarded"
