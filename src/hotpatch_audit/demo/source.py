"""The `demo` source: the generated demo fleet, served by the local Resource Graph emulator and read by the
production `arg` client, so the built-in demo runs the code path a tenant does (KQL over HTTPS, the SDK,
paging, completeness). pipeline.make_source imports this module only for demo runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from hotpatch_audit.arg import ArgOptions, ArgSource
from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.config import Settings
from hotpatch_audit.demo.argtables import create_arg_tables
from hotpatch_audit.demo.emulator import ResourceGraphEmulator
from hotpatch_audit.demo.fleet import generate_fleet
from hotpatch_audit.duck import connect
from hotpatch_audit.sources import Page, Scope


class EmulatedDemoSource:
    """The demo fleet served by the local Resource Graph emulator and read by the production `arg` client.

    The quota is off (the demo stays fast); the manifest still says source demo with the demo's scope.
    """

    name = "demo"

    def __init__(self, db_path: Path, scope: Scope, *, as_of: datetime, cert_dir: Path, max_workers: int = 4,
                 memory_limit: str = "1GB"):
        self.scope = scope
        self._emulator = ResourceGraphEmulator(db_path, quota_enabled=False, cert_dir=cert_dir, query_now=as_of,
                                               memory_limit=memory_limit)
        url = self._emulator.start()
        options = ArgOptions(endpoint=url, ca_bundle=self._emulator.ca_bundle, static_token=self._emulator.token,
                             max_workers=max_workers)
        self._arg = ArgSource(Scope("tenant"), options=options)
        self.max_workers = self._arg.max_workers

    def pages(self, spec: QuerySpec) -> Iterator[Page]:
        """Every page of one query, through the emulator."""
        return self._arg.pages(spec)

    def close(self) -> None:
        """Stop the client and the emulator."""
        self._arg.close()
        self._emulator.stop()


def demo_fleet(settings: Settings, as_of: datetime) -> Path:
    """The demo fleet's Resource Graph tables as of `as_of`, generated once into a DuckDB file."""
    fleet_dir = settings.path(settings.work_dir) / "demo-fleet"
    fleet_dir.mkdir(parents=True, exist_ok=True)
    path = fleet_dir / f"fleet-{settings.demo_machines}-{settings.demo_seed}-{as_of:%Y%m%dT%H%M%S}.duckdb"
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    con = connect(tmp, memory_limit=settings.duckdb_memory_limit)
    try:
        create_arg_tables(con)
        generate_fleet(con, as_of=as_of, machines=settings.demo_machines, seed=settings.demo_seed,
                       calendar_path=settings.project_root / "data" / "release_calendar.csv")
    finally:
        con.close()
    tmp.replace(path)
    return path
