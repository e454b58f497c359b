"""The Prefect flows under Prefect's test harness: a demo audit end to end, a re-render, and failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State, TaskRun
from prefect.states import Failed
from prefect.testing.utilities import prefect_test_harness

from flows import tasks
from flows.monthly_audit import monthly_audit
from flows.on_demand_report import on_demand_report
from hotpatch_audit import pipeline
from hotpatch_audit.catalog import load_queries
from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.errors import AuthError, ConfigError, SnapshotError, SourceError
from hotpatch_audit.ledger import latest_run, open_reader

AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
MACHINES = 60
# The harness starts a server subprocess; on two busy cores that can take minutes, not Prefect's 30 s.
SERVER_STARTUP_TIMEOUT_S = 300


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API (SQLite) for the whole session, as Prefect's testing guide advises."""
    with prefect_test_harness(server_startup_timeout=SERVER_STARTUP_TIMEOUT_S):
        yield


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ledger, reports and scratch space of this module's runs (never the checkout's out/)."""
    base = tmp_path_factory.mktemp("flows")
    return {"ledger_path": base / "ledger.duckdb", "out_dir": base / "reports", "work_dir": base / "work"}


@pytest.fixture(scope="module")
def good_run(workspace: dict[str, Path]) -> State[Any]:
    """A demo audit through the flow, as the on-demand deployment runs it (a monthly run needs source arg)."""
    return monthly_audit(
        source="demo",
        is_monthly=False,
        as_of=AS_OF,
        demo_machines=MACHINES,
        formats=["html", "pdf", "csv"],
        return_state=True,
        **workspace,
    )


def ledger_runs(ledger: Path) -> dict[str, tuple[str, int]]:
    """run_id -> (status, findings in audit.findings) for every run in the ledger."""
    with open_reader(ledger, timeout=300) as con:
        rows = con.execute(
            "SELECT r.run_id, r.status, (SELECT count(*) FROM audit.findings f WHERE f.run_id = r.run_id)"
            " FROM meta.runs r"
        ).fetchall()
        return {str(run_id): (str(status), int(n)) for run_id, status, n in rows}


def latest(ledger: Path) -> str | None:
    with open_reader(ledger, timeout=300) as con:
        return latest_run(con)


def task_runs(state: State[Any]) -> list[TaskRun]:
    """The task runs of the flow run that ended in `state`."""
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def test_monthly_audit_flow_runs_every_stage(good_run: State[Any], workspace: dict[str, Path]) -> None:
    assert good_run.is_completed(), good_run.message
    outcome = good_run.result()
    assert isinstance(outcome, pipeline.RunOutcome)
    assert outcome.status == "succeeded"
    assert outcome.exit_code == pipeline.EXIT_OK

    runs = ledger_runs(workspace["ledger_path"])
    assert runs[outcome.run_id] == ("succeeded", outcome.findings)
    assert outcome.findings > 0

    names = sorted(p.name for p in outcome.report_paths)
    assert names == ["SHA256SUMS", "audit.html", "audit.pdf", "coverage_exceptions.csv", "exceptions.csv",
                     "manifest.json", "open_actions.csv"]
    assert outcome.report_paths[-1].name == "manifest.json"  # written last
    for path in outcome.report_paths:
        assert path.is_file() and path.stat().st_size > 0, path
        assert path.is_relative_to(workspace["out_dir"])

    by_name = {tr.name.removesuffix(f"-{outcome.run_id}"): tr for tr in task_runs(good_run)}
    assert {"extract", "load", "audit", "render"} <= set(by_name), sorted(by_name)
    for name in ("extract", "load", "audit", "render"):
        tr = by_name[name]
        assert tr.state is not None and tr.state.is_completed(), (name, tr.state)
        assert tr.name == f"{name}-{outcome.run_id}"
        # What the UI shows as the stage's timing.
        assert tr.start_time is not None and tr.end_time is not None and tr.end_time >= tr.start_time


def test_on_demand_report_rerenders_latest_run(
    good_run: State[Any], workspace: dict[str, Path], tmp_path: Path
) -> None:
    run_id = good_run.result().run_id
    before = ledger_runs(workspace["ledger_path"])

    state = on_demand_report(
        formats=["html", "csv"],
        language="ja",
        timezone="Asia/Tokyo",
        ledger_path=workspace["ledger_path"],
        out_dir=tmp_path,
        return_state=True,
    )

    assert state.is_completed(), state.message
    paths = state.result()
    assert sorted(p.name for p in paths) == [
        "SHA256SUMS", "audit.html", "coverage_exceptions.csv", "exceptions.csv", "manifest.json", "open_actions.csv"]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
        assert path.is_relative_to(tmp_path / run_id)
    names = {tr.name for tr in task_runs(state)}
    assert f"render-{run_id}" in names and any(n.startswith("pick-run") for n in names)
    assert ledger_runs(workspace["ledger_path"]) == before  # rendering is read-only


def test_on_demand_report_renders_the_run_asked_for(
    good_run: State[Any], workspace: dict[str, Path], tmp_path: Path
) -> None:
    run_id = good_run.result().run_id
    state = on_demand_report(
        run_id=run_id,
        formats=["csv"],
        ledger_path=workspace["ledger_path"],
        out_dir=tmp_path,
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert [p.name for p in state.result()] == ["open_actions.csv", "exceptions.csv", "coverage_exceptions.csv",
                                                "SHA256SUMS", "manifest.json"]
    assert not any(n.startswith("pick-run") for n in {tr.name for tr in task_runs(state)})


def test_missing_snapshot_fails_before_touching_the_ledger(
    good_run: State[Any], workspace: dict[str, Path]
) -> None:
    before = ledger_runs(workspace["ledger_path"])

    state = monthly_audit(
        source="snapshot",
        snapshot_dir=workspace["work_dir"] / "no-such-snapshot",
        is_monthly=False,
        return_state=True,
        **workspace,
    )

    assert state.is_failed()
    with pytest.raises(ConfigError, match="not a snapshot directory"):
        state.result()
    assert ledger_runs(workspace["ledger_path"]) == before
    assert latest(workspace["ledger_path"]) == good_run.result().run_id


def test_failed_extract_marks_the_run_failed_and_keeps_the_previous_run(
    good_run: State[Any], workspace: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = good_run.result()
    before = ledger_runs(workspace["ledger_path"])

    def broken_extract(settings: object, ctx: pipeline.RunContext, **_: object) -> pipeline.ExtractResult:
        raise SnapshotError(f"{ctx.work_dir}/snapshot/manifest.json: not valid JSON")

    # The task calls pipeline.extract_stage at run time, so this breaks the stage after start_run
    # registered the run: the flow must call fail_run and re-raise. Same scope and as-of as the good
    # run, so a wrong "replace earlier runs" would show too.
    monkeypatch.setattr(pipeline, "extract_stage", broken_extract)
    state = monthly_audit(source="demo", as_of=AS_OF, demo_machines=MACHINES, is_monthly=False, return_state=True,
                          **workspace)

    assert state.is_failed()
    after = ledger_runs(workspace["ledger_path"])
    new = set(after) - set(before)
    assert len(new) == 1
    assert after[new.pop()] == ("failed", 0)
    assert after[good.run_id] == before[good.run_id] == ("succeeded", good.findings)
    assert latest(workspace["ledger_path"]) == good.run_id
    extract_runs = [tr for tr in task_runs(state) if tr.name.startswith("extract-")]
    assert len(extract_runs) == 1 and extract_runs[0].run_count == 1  # not retried: a bad snapshot stays bad


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (SourceError("Resource Graph answered 503"), True),
        (TimeoutError("read timed out"), True),
        (SnapshotError("page-00001.json: not valid JSON"), False),
        (AuthError("Resource Graph authentication or authorization failed (HTTP 401): the static token was refused"),
         False),
        (ConfigError("unknown subscription"), False),
    ],
)
def test_extract_retries_only_transient_errors(error: Exception, retried: bool) -> None:
    assert tasks.extract.retry_condition_fn is not None
    assert tasks.extract.retry_condition_fn(tasks.extract, None, Failed(data=error)) is retried  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "a monthly run needs source arg"),  # a deployment left without settings: not the demo fleet
        ({"source": "demo"}, "a monthly run needs source arg"),
        ({"source": "arg"}, "a monthly run needs its scope named"),
    ],
)
def test_a_monthly_run_needs_a_production_source_and_scope(
    params: dict[str, str], message: str, workspace: dict[str, Path], good_run: State[Any]
) -> None:
    before = ledger_runs(workspace["ledger_path"])
    state = monthly_audit(**params, as_of=AS_OF, return_state=True, **workspace)  # type: ignore[arg-type]
    assert state.is_failed()
    with pytest.raises(ConfigError, match=message):
        state.result()
    assert ledger_runs(workspace["ledger_path"]) == before  # refused before a run was registered


def flow_run_logs(state: State[Any]) -> list[str]:
    """The messages the flow run's logs hold in the Prefect API (what the UI shows)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [entry.message for entry in logs]


def test_log_lines_written_on_extract_threads_reach_the_flow_run(good_run: State[Any]) -> None:
    messages = flow_run_logs(good_run)
    # "query <name>: N pages, ..." is logged by each query's worker thread (arg_max_workers = 4)
    for spec in load_queries(PROJECT_ROOT):
        assert any(m.startswith(f"query {spec.name}: ") and "complete=True" in m for m in messages), spec.name
        # and one line per step of each stage (hotpatch_audit.progress), with its rows
        assert any(m.startswith(f"load {spec.name}: ") for m in messages), spec.name
    steps = ("judge audit.machine_months: ", "judge audit.findings: ", "render audit.html", "render audit.pdf",
             "render open_actions.csv: ")
    for _ in range(30):  # the last lines reach the API in the log handler's next batch, shortly after the run
        if all(any(m.startswith(step) for m in messages) for step in steps):
            break
        time.sleep(1)
        messages = flow_run_logs(good_run)
    for step in steps:
        assert any(m.startswith(step) for m in messages), (step, [m for m in messages if m.startswith("render")])


def test_the_run_publishes_its_figures_and_a_link_to_its_report(good_run: State[Any]) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    outcome = good_run.result()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[good_run.state_details.flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    table = by_key["audit-figures"]
    assert table.type == "table"
    figures = {row["figure"]: row["value"] for row in json.loads(str(table.data))}
    assert figures["run"] == outcome.run_id and figures["status"] == "succeeded"
    queries = len(load_queries(PROJECT_ROOT))
    assert figures["queries complete"] == f"{queries} of {queries}"
    assert figures["machines in scope"] == str(MACHINES)
    report = next(p for p in outcome.report_paths if p.name == "audit.html")
    assert report.resolve().as_uri() in str(by_key["audit-report"].data)


def test_a_failed_run_is_posted_to_the_webhook(
    workspace: dict[str, Path], good_run: State[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HOTPATCH_AUDIT_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        state = monthly_audit(source="demo", as_of=AS_OF, return_state=True, **workspace)
    finally:
        server.shutdown()
        server.server_close()
    assert state.is_failed()
    [payload] = received
    assert payload["state"] == "FAILED" and payload["flow"] == "monthly-audit"
    assert "a monthly run needs source arg" in payload["message"] and payload["text"].startswith("hotpatch-audit:")
