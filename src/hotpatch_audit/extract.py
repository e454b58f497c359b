"""Extract: run every KQL file through a source and stream its pages to a snapshot directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotpatch_audit import __version__
from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.concurrency import run_concurrently
from hotpatch_audit.errors import AuthError, HotpatchAuditError, SkipTokenExpiredError, SnapshotError
from hotpatch_audit.files import (
    SUMS_NAME,
    atomic_write_bytes,
    check_target_folder,
    discard_folder,
    replace_folder,
    sha256_file,
    staging_folder,
    write_sums,
)
from hotpatch_audit.progress import step
from hotpatch_audit.sources import SNAPSHOT_FORMAT, Source

log = logging.getLogger(__name__)

# An expired skip token restarts its query from the first page at most this many times.
MAX_QUERY_RESTARTS = 3


@dataclass
class QueryResult:
    """What one query returned: pages and rows received, totalRecords, completeness, error."""

    name: str
    file: str
    sha256: str
    pages: int = 0
    rows: int = 0
    total_records: int | None = None
    complete: bool = False
    error: str | None = None
    started_at: str = ""
    finished_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The manifest entry."""
        return dict(self.__dict__)


@dataclass
class Snapshot:
    """A snapshot directory and the results of its queries."""

    directory: Path
    queries: dict[str, QueryResult] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every query returned every row it announced."""
        return all(q.complete for q in self.queries.values())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def extract_to_snapshot(
    source: Source,
    specs: list[QuerySpec],
    directory: Path,
    *,
    as_of: datetime,
    project_root: Path,
    on_page: Callable[[str, int, int], None] | None = None,
) -> Snapshot:
    """Run each query through `source`, writing pages as they arrive; a failing query is recorded, not raised.

    `on_page` may be called from several threads (sources with `max_workers` run queries concurrently).

    The pages go to a new folder beside `directory`, which takes the place of `directory` only when the
    manifest and SHA256SUMS are written: a half-finished extract never leaves a folder that looks complete,
    and an existing `directory` is replaced only when it is empty or a snapshot this tool wrote (anything
    else is refused before a query runs). A query whose skip token expires mid-way is read again from its
    first page, its pages so far discarded, at most MAX_QUERY_RESTARTS times.
    """
    check_target_folder(directory, "snapshot")
    stage = staging_folder(directory)
    try:
        snap = _extract_into(source, specs, stage, as_of=as_of, project_root=project_root, on_page=on_page)
        replace_folder(stage, directory)
    except BaseException:
        discard_folder(stage)
        raise
    snap.directory = directory
    return snap


def _extract_into(
    source: Source, specs: list[QuerySpec], directory: Path, *, as_of: datetime, project_root: Path,
    on_page: Callable[[str, int, int], None] | None,
) -> Snapshot:
    snap = Snapshot(directory)

    def read_pages(spec: QuerySpec, qdir: Path, result: QueryResult) -> None:
        for page in source.pages(spec):
            result.pages += 1
            result.rows += page.count
            result.total_records = page.total_records
            atomic_write_bytes(qdir / f"page-{result.pages:05d}.json", page.body)
            if on_page:
                on_page(spec.name, result.rows, page.total_records)

    def one(spec: QuerySpec) -> QueryResult:
        qdir = directory / spec.name
        qdir.mkdir()
        result = QueryResult(spec.name, spec.relpath(project_root), spec.sha256, started_at=_now())
        restarts = 0
        try:
            while True:
                try:
                    read_pages(spec, qdir, result)
                    break
                except SkipTokenExpiredError as exc:
                    restarts += 1
                    if restarts > MAX_QUERY_RESTARTS:
                        raise SkipTokenExpiredError(
                            f"{exc} (the query was restarted from its first page {MAX_QUERY_RESTARTS} times)"
                        ) from exc
                    log.warning("query %s: %s; reading it again from the first page (restart %d of %d)",
                                spec.name, exc, restarts, MAX_QUERY_RESTARTS)
                    for page_file in qdir.glob("page-*.json"):
                        page_file.unlink()
                    result.pages = result.rows = 0
                    result.total_records = None
            if result.pages == 0:
                result.error = "the source returned no page at all"
            elif result.rows != result.total_records:
                result.error = f"received {result.rows} rows of {result.total_records} announced"
            else:
                result.complete = True
            step("extract", spec.name, result.rows)
        except (SnapshotError, AuthError):
            # A malformed saved snapshot is bad input, and a refused credential fails every query alike: not a
            # collection gap, so the run fails at once (the flow's extract task does not retry either).
            raise
        except HotpatchAuditError as exc:
            result.error = str(exc)
            # recorded in the manifest and meta.query_stats, and summed up by the caller (CLI: one line)
            log.info("query %s failed: %s", spec.name, exc)
        result.finished_at = _now()
        log.info("query %s: %d pages, %d rows, complete=%s", spec.name, result.pages, result.rows,
                 result.complete)
        return result

    # Independent queries run concurrently where the source allows it (arg: one shared quota).
    results = run_concurrently(specs, one, max_workers=int(getattr(source, "max_workers", 1)))
    snap.queries = {spec.name: results[spec.name] for spec in specs}
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "source": source.name,
        "scope": source.scope.key(),
        "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_at": _now(),
        "tool_version": __version__,
        "queries": {name: q.as_dict() for name, q in snap.queries.items()},
    }
    atomic_write_bytes(directory / "manifest.json", json.dumps(manifest, indent=2).encode("utf-8"))
    _write_sums(directory)
    return snap


def _write_sums(directory: Path) -> None:
    """SHA256SUMS of every page and manifest.json, so a carried snapshot can be checked before it is read
    (`hotpatch-audit verify DIR` or `cd DIR && sha256sum -c SHA256SUMS`)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != SUMS_NAME)
    write_sums(directory, ((p.relative_to(directory).as_posix(), sha256_file(p)) for p in files))


def snapshot_from_manifest(directory: Path, manifest: dict[str, Any]) -> Snapshot:
    """Rebuild a Snapshot object from a directory's manifest (for loading saved snapshots)."""
    snap = Snapshot(directory)
    for name, info in manifest.get("queries", {}).items():
        fields = {k: info.get(k) for k in QueryResult.__dataclass_fields__ if k in info}
        fields["name"] = name
        snap.queries[name] = QueryResult(**{**{"file": "", "sha256": ""}, **fields})
    return snap
