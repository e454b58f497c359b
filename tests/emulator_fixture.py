"""Pytest fixtures for the local Resource Graph emulator (PYTEST_DONT_REWRITE: a plugin module).

Use them with `pytest_plugins = ["tests.emulator_fixture"]` in a test module (or the root conftest).

`rg_fleet_db` (session): a 500-machine demo fleet DuckDB file as of 2026-11-25T03:00Z.
`rg_emulator` (function): an emulator on a free port with the quota on (15 requests per 1-second window,
Retry-After sent), no latency, no faults; stopped afterwards.
`rg_emulator_factory` (function): make more emulators with other settings (all stopped afterwards).
`make_client(emulator)`: the real azure-mgmt-resourcegraph client pointed at an emulator, retries off (its CA
bundle trusted unless `connection_verify=` says otherwise).
`StaticTokenCredential`: a TokenCredential for a fixed bearer token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

EMULATOR_TOKEN = "test-emulator-token"  # noqa: S105 (a fixed token for a local emulator)
FLEET_AS_OF = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
FLEET_MACHINES = 500


class StaticTokenCredential:
    """A TokenCredential handing out one fixed bearer token (what an emulator or proxy needs)."""

    def __init__(self, token: str = EMULATOR_TOKEN):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)


def make_client(emulator: Any, token: str | None = None, **kwargs: Any) -> Any:
    """ResourceGraphClient for an emulator: its CA bundle trusted, azure-core retries off (raw responses)."""
    from azure.mgmt.resourcegraph import ResourceGraphClient

    kwargs.setdefault("retry_total", 0)
    kwargs.setdefault("connection_verify", str(emulator.ca_bundle))
    return ResourceGraphClient(credential=StaticTokenCredential(token or emulator.token), base_url=emulator.url,
                               **kwargs)


def fleet_subscriptions(db_path: Path) -> list[str]:
    """Lower-case subscription ids present in a fleet file, sorted."""
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT lower(subscriptionId) FROM resources WHERE subscriptionId IS NOT NULL ORDER BY 1"
        ).fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="session")
def rg_fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo fleet (500 machines, as of 2026-11-25T03:00Z) as Resource Graph tables in DuckDB."""
    from hotpatch_audit.config import Settings
    from hotpatch_audit.demo.source import demo_fleet

    base = tmp_path_factory.mktemp("rg-fleet")
    settings = Settings(work_dir=base / "work", ledger_path=base / "ledger.duckdb", out_dir=base / "reports",
                        demo_machines=FLEET_MACHINES)
    return demo_fleet(settings, FLEET_AS_OF)


@pytest.fixture(scope="session")
def rg_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA + server certificate for every emulator of the session."""
    from hotpatch_audit.tlsutil import ensure_server_cert

    folder = tmp_path_factory.mktemp("rg-tls")
    ensure_server_cert(folder)
    return folder


@pytest.fixture
def rg_emulator_factory(rg_fleet_db: Path, rg_cert_dir: Path) -> Iterator[Callable[..., Any]]:
    """Start emulators with any settings; each is stopped when the test ends."""
    from hotpatch_audit.demo.emulator import ResourceGraphEmulator

    subs = fleet_subscriptions(rg_fleet_db)
    started: list[ResourceGraphEmulator] = []

    def make(**overrides: Any) -> ResourceGraphEmulator:
        options: dict[str, Any] = {
            "token": EMULATOR_TOKEN,
            "quota_per_window": 15,
            "window_seconds": 1.0,
            "quota_enabled": True,
            "retry_after": True,
            "latency_ms": 0,
            "management_groups": {"mg-all": subs, "mg-first": subs[:1], "mg-rest": subs[1:]},
            "cert_dir": rg_cert_dir,
            "query_now": FLEET_AS_OF,
        }
        options.update(overrides)
        db = options.pop("db_path", rg_fleet_db)
        emu = ResourceGraphEmulator(db, **options)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.faults.clear()
        emu.stop()


@pytest.fixture
def rg_emulator(rg_emulator_factory: Callable[..., Any]) -> Any:
    """An emulator with the quota on (15 per 1-second window, Retry-After sent), no latency, no faults."""
    return rg_emulator_factory()
