"""Data sources: each answers the KQL files in queries/ with Resource-Graph-shaped pages.

This module holds what every source shares (Scope, Page, page_body, the Source protocol) and the
`snapshot` source, which replays saved pages. The `arg` source asks Azure Resource Graph through the SDK
(package hotpatch_audit.arg); the `demo` source serves a generated fleet from the local Resource Graph
emulator and reads it with the production `arg` client (package hotpatch_audit.demo, imported only by demo
runs). All three yield the same `Page` objects, so everything downstream (snapshot files, loading, audits)
is one code path; pipeline.make_source picks the source of a run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.errors import ConfigError, SnapshotError

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
SNAPSHOT_FORMAT = "hotpatch-audit-snapshot/1"
_SUBSCRIPTION_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MG_RE = re.compile(r"^[A-Za-z0-9_.()-]{1,90}$")


@dataclass(frozen=True)
class Scope:
    """What a run reads: the demo fleet, a snapshot's scope, subscriptions, management groups or a tenant."""

    kind: str
    ids: tuple[str, ...] = ()

    def key(self) -> str:
        """A stable text key; runs with the same key and as-of replace each other."""
        return f"{self.kind}:{','.join(self.ids)}" if self.ids else self.kind

    @classmethod
    def parse(cls, key: str) -> Scope:
        """Inverse of key()."""
        kind, _, rest = key.partition(":")
        return cls(kind, tuple(x for x in rest.split(",") if x))

    @classmethod
    def for_azure(cls, subscriptions: list[str], management_groups: list[str]) -> Scope:
        """Validate subscription ids (GUIDs) and management group names; none of them means the tenant."""
        if subscriptions and management_groups:
            raise ConfigError("give subscriptions or management groups, not both (Resource Graph refuses both)")
        for sub in subscriptions:
            if not _SUBSCRIPTION_RE.match(sub):
                raise ConfigError(f"not a subscription id (GUID): {sub!r}")
        for mg in management_groups:
            if not _MG_RE.match(mg):
                raise ConfigError(f"not a management group name: {mg!r}")
        if subscriptions:
            return cls("subscriptions", tuple(sorted(s.lower() for s in subscriptions)))
        if management_groups:
            return cls("management_groups", tuple(sorted(management_groups)))
        return cls("tenant")


@dataclass(frozen=True)
class Page:
    """One Resource Graph response body (objectArray), as bytes, with its counts."""

    body: bytes
    count: int
    total_records: int
    skip_token: str | None


def page_body(rows_json: list[str], total_records: int, skip_token: str | None) -> bytes:
    """Build a response body from rows already serialised as JSON objects (no dicts in between)."""
    head = {"totalRecords": total_records, "count": len(rows_json), "resultTruncated": "false"}
    if skip_token:
        head["$skipToken"] = skip_token
    text = json.dumps(head)[:-1] + ', "facets": [], "data": [' + ",".join(rows_json) + "]}"
    return text.encode("utf-8")


class Source(Protocol):
    """Anything that answers a KQL file with pages."""

    name: str
    scope: Scope

    def pages(self, spec: QuerySpec) -> Iterator[Page]:
        """Yield the query's result pages in order."""
        ...


class SnapshotSource:
    """Replays a snapshot directory (manifest.json + <query>/page-NNNNN.json) written by `extract --save`."""

    name = "snapshot"

    def __init__(self, directory: Path):
        self.directory = directory
        self.manifest = read_manifest(directory)
        self.scope = Scope.parse(str(self.manifest.get("scope", "snapshot")))

    @property
    def as_of(self) -> str | None:
        """The as-of time the snapshot was taken for."""
        value = self.manifest.get("as_of")
        return str(value) if value else None

    def query_info(self, name: str) -> dict[str, Any]:
        """The manifest entry of a query, or a clear error."""
        queries = self.manifest.get("queries", {})
        if name not in queries:
            raise SnapshotError(f"{self.directory / 'manifest.json'}: no entry for query {name!r}")
        info = queries[name]
        if not isinstance(info, dict):
            raise SnapshotError(f"{self.directory / 'manifest.json'}: entry for {name!r} is not an object")
        return info

    def pages(self, spec: QuerySpec) -> Iterator[Page]:
        """Yield the saved pages of a query as they were received."""
        info = self.query_info(spec.name)
        files = sorted((self.directory / spec.name).glob("page-*.json"))
        if len(files) != int(info.get("pages", -1)):
            raise SnapshotError(
                f"{self.directory / spec.name}: manifest says {info.get('pages')} pages, found {len(files)}"
            )
        for path in files:
            body = path.read_bytes()
            try:
                head = json.loads(body)
            except json.JSONDecodeError as exc:
                raise SnapshotError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
            if not isinstance(head, dict) or not isinstance(head.get("data"), list):
                raise SnapshotError(f"{path}: not a Resource Graph page (no data array)")
            yield Page(body, len(head["data"]), int(head.get("totalRecords", len(head["data"]))),
                       head.get("$skipToken"))


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check a snapshot's manifest.json."""
    path = directory / "manifest.json"
    if not directory.is_dir():
        raise SnapshotError(f"{directory}: snapshot directory does not exist")
    if not path.is_file():
        raise SnapshotError(f"{path}: missing (a snapshot needs its manifest)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path}: not a {SNAPSHOT_FORMAT} manifest")
    return manifest
