"""Shared fixtures: settings under tmp_path, quiet offline Prefect, a small demo ledger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Prefect must never phone home or write outside the checkout during tests.
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)

pytest_plugins = ["tests.emulator_fixture"]  # rg_fleet_db, rg_emulator, rg_emulator_factory


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings writing everything under tmp_path, with a small demo fleet."""
    from hotpatch_audit.config import Settings

    return Settings(
        ledger_path=tmp_path / "ledger.duckdb",
        out_dir=tmp_path / "reports",
        work_dir=tmp_path / "work",
        demo_machines=120,
    )


@pytest.fixture(scope="session")
def demo_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, list[str]]]:
    """A ledger holding three monthly demo runs (Sep–Nov 2026) of 150 machines, built once per session."""
    from hotpatch_audit.config import Settings
    from hotpatch_audit.pipeline import RunRequest, monthly_as_of_series, run_audit

    base = tmp_path_factory.mktemp("demo-history")
    s = Settings(ledger_path=base / "ledger.duckdb", out_dir=base / "reports", work_dir=base / "work",
                 demo_machines=150)
    run_ids = []
    series = monthly_as_of_series(AS_OF, 3)
    for i, as_of in enumerate(series):
        outcome = run_audit(s, RunRequest(source="demo", as_of=as_of), render=i == len(series) - 1)
        run_ids.append(outcome.run_id)
    yield s, run_ids
