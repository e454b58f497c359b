"""The `demo` source: the generated demo fleet, served by the local Resource Graph emulator and read by the
production `arg` client, so the built-in demo runs the code path a tenant does (KQL over HTTPS, the SDK,
paging, completeness). pipeline.make_source imports this module only for demo runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from hotpatch_audit.arg import ArgOptions, ArgSource
from hotpatch_audit.calendar import CALENDAR_FILE, calendar_version
from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.config import Settings
from hotpatch_audit.demo import argtables
from hotpatch_audit.demo import fleet as fleet_package
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


def fleet_version(project_root: Path) -> str:
    """SHA-256 of the fleet generator's code and the release calendar's version (calendar.calendar_version);
    first 12 hex characters. A generated fleet file is reused only while both are unchanged, so an upgrade never
    audits a stale fleet."""
    digest = hashlib.sha256()
    for path in [*sorted(Path(fleet_package.__file__).parent.glob("*.py")), Path(argtables.__file__)]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(calendar_version(project_root).encode())
    return digest.hexdigest()[:12]


def demo_fleet(settings: Settings, as_of: datetime) -> Path:
    """The demo fleet's Resource Graph tables as of `as_of`, generated once into a DuckDB file (in work_dir's
    demo-fleet/, named by size, seed, as-of and fleet_version; files of an older version are removed)."""
    fleet_dir = settings.path(settings.work_dir) / "demo-fleet"
    fleet_dir.mkdir(parents=True, exist_ok=True)
    stem = f"fleet-{settings.demo_machines}-{settings.demo_seed}-{as_of:%Y%m%dT%H%M%S}"
    path = fleet_dir / f"{stem}-{fleet_version(settings.project_root)}.duckdb"
    if path.exists():
        return path
    for stale in [fleet_dir / f"{stem}.duckdb", *fleet_dir.glob(f"{stem}-*.duckdb")]:
        if stale != path:  # another process may have just written this version
            stale.unlink(missing_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    con = connect(tmp, memory_limit=settings.duckdb_memory_limit)
    try:
        create_arg_tables(con)
        generate_fleet(con, as_of=as_of, machines=settings.demo_machines, seed=settings.demo_seed,
                       calendar_path=settings.project_root / CALENDAR_FILE)
    finally:
        con.close()
    tmp.replace(path)
    return path
