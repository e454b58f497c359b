"""Check a snapshot directory before a run reads it: its SHA256SUMS, its manifest, and every page's rows against
the field types the raw tables declare. Any problem is a SnapshotError naming the file (and row), raised before a
run is registered, so a bad snapshot never becomes a run nor replaces one.

What is refused: a missing, extra, changed or unlisted file (SHA256SUMS must list every file but itself, and the
manifest); a manifest that is not the tool's, with an as-of time in the future or before the calendar starts, a
query missing or unknown to this checkout, page or row counts that disagree with the pages; a page that is not
UTF-8 JSON (NaN and Infinity are not JSON; duplicate keys; nesting deeper than MAX_DEPTH); a row that is not an
object, has no text id, a field the query does not project, text where JSON is declared or the reverse, a field
longer than the ledger takes; the same id twice in a query that the manifest calls complete.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.errors import SnapshotError
from hotpatch_audit.files import SUMS_NAME, folder_files, read_sums, sha256_file
from hotpatch_audit.sources import SNAPSHOT_FORMAT
from hotpatch_audit.strictjson import depth, no_constant, unique_object

MAX_DEPTH = 64
# Before this, the release calendar has no months to judge against (sql/core/02_run_calendar.sql's grid).
EARLIEST_AS_OF = datetime(2024, 1, 1, tzinfo=UTC)
_PAGE_RE = re.compile(r"^page-(\d{5})\.json$")


def strict_json(data: bytes, where: str) -> Any:
    """Parse UTF-8 JSON strictly: no NaN or Infinity, no duplicate keys, no nesting deeper than MAX_DEPTH."""

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_object)
    except RecursionError:
        raise SnapshotError(f"{where}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise SnapshotError(f"{where}: not valid JSON ({exc})") from None
    if depth(value) > MAX_DEPTH:
        raise SnapshotError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
    return value


def parse_as_of(value: object, where: str, *, now: datetime | None = None, skew_seconds: int = 600) -> datetime:
    """An as-of time from a manifest or an option: ISO 8601, UTC when no zone is given, not in the future beyond
    `skew_seconds` and not before the calendar's first month."""
    if not isinstance(value, str) or not value:
        raise SnapshotError(f"{where}: as_of is missing or not text")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SnapshotError(f"{where}: as_of {value[:40]!r} is not an ISO 8601 time") from None
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    check_as_of(ts, where, now=now, skew_seconds=skew_seconds, error=SnapshotError)
    return ts


def check_as_of(ts: datetime, where: str, *, now: datetime | None = None, skew_seconds: int = 600,
                error: type[Exception] = SnapshotError) -> None:
    """Refuse an as-of time in the future (beyond a small clock skew) or before the calendar starts."""
    current = now or datetime.now(UTC)
    if (ts - current).total_seconds() > skew_seconds:
        raise error(f"{where}: as-of {ts:%Y-%m-%dT%H:%M}Z is in the future (now {current:%Y-%m-%dT%H:%M}Z); an audit "
                    f"can only be as of a time that has passed")
    if ts < EARLIEST_AS_OF:
        raise error(f"{where}: as-of {ts:%Y-%m-%d} is before {EARLIEST_AS_OF:%Y-%m-%d}, where the release calendar "
                    "starts")


def verify_sums(directory: Path) -> None:
    """Every file of the snapshot against its SHA256SUMS: none missing, none changed, none unlisted."""
    listed = read_sums(directory)
    if listed is None:
        raise SnapshotError(f"{directory / SUMS_NAME}: missing or not in the sha256sum format; a snapshot is read only "
                            "with the checksums it was written with")
    if not listed:
        raise SnapshotError(f"{directory / SUMS_NAME}: lists no file")
    for rel in listed:
        if rel.startswith("/") or "\\" in rel or ".." in rel.split("/"):
            raise SnapshotError(f"{directory / SUMS_NAME}: lists a path outside the snapshot: {rel[:80]!r}")
    if "manifest.json" not in listed:
        raise SnapshotError(f"{directory / SUMS_NAME}: does not list manifest.json")
    present = set(folder_files(directory)) - {SUMS_NAME}
    extra = sorted(present - set(listed))
    if extra:
        raise SnapshotError(f"{directory}: {len(extra)} file(s) not listed in {SUMS_NAME}, e.g. {extra[0]}")
    missing = sorted(set(listed) - present)
    if missing:
        raise SnapshotError(f"{directory}: {len(missing)} listed file(s) missing, e.g. {missing[0]}")
    for rel, digest in listed.items():
        path = directory / rel
        if path.is_symlink() or not path.is_file():
            raise SnapshotError(f"{path}: not a regular file")
        if sha256_file(path) != digest:
            raise SnapshotError(f"{path}: changed since the snapshot was written (SHA-256 differs from {SUMS_NAME})")


def _int(info: dict[str, Any], key: str, where: str, *, optional: bool = False) -> int | None:
    value = info.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SnapshotError(f"{where}: {key} must be a whole number >= 0, not {value!r:.40}")
    return value


def verify_snapshot(
    directory: Path, specs: list[QuerySpec], columns: dict[str, list[tuple[str, str]]], *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check a snapshot whole (see the module's docstring); return its manifest."""
    if not directory.is_dir():
        raise SnapshotError(f"{directory}: snapshot directory does not exist")
    verify_sums(directory)
    where = str(directory / "manifest.json")
    manifest = strict_json((directory / "manifest.json").read_bytes(), where)
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{where}: not a {SNAPSHOT_FORMAT} manifest")
    parse_as_of(manifest.get("as_of"), where, now=now)
    if not isinstance(manifest.get("scope"), str) or not manifest["scope"]:
        raise SnapshotError(f"{where}: scope is missing or not text")
    queries = manifest.get("queries")
    if not isinstance(queries, dict):
        raise SnapshotError(f"{where}: queries is not an object")
    wanted = {spec.name for spec in specs}
    if set(queries) - wanted:
        raise SnapshotError(f"{where}: unknown query {sorted(set(queries) - wanted)[0]!r} (not in queries/)")
    if wanted - set(queries):
        raise SnapshotError(f"{where}: no entry for query {sorted(wanted - set(queries))[0]!r}")
    for name in sorted(queries):
        _verify_query(directory, name, queries[name], columns[name], where)
    return manifest


def _verify_query(directory: Path, name: str, info: Any, columns: list[tuple[str, str]], where: str) -> None:
    here = f"{where}: query {name}"
    if not isinstance(info, dict):
        raise SnapshotError(f"{here}: entry is not an object")
    pages = _int(info, "pages", here)
    rows = _int(info, "rows", here)
    total = _int(info, "total_records", here, optional=True)
    complete = info.get("complete")
    if not isinstance(complete, bool):
        raise SnapshotError(f"{here}: complete must be true or false")
    if complete and total != rows:
        raise SnapshotError(f"{here}: marked complete but holds {rows} of {total} rows")
    qdir = directory / name
    files = sorted(qdir.iterdir()) if qdir.is_dir() else []
    expected = [f"page-{i:05d}.json" for i in range(1, (pages or 0) + 1)]
    if [f.name for f in files] != expected:
        raise SnapshotError(f"{qdir}: expected {pages} page files page-00001.json.., found {len(files)}")
    types = dict(columns)
    seen: set[str] = set()
    counted = 0
    for path in files:
        body = strict_json(path.read_bytes(), str(path))
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise SnapshotError(f"{path}: not a Resource Graph page (no data array)")
        data = body["data"]
        if "count" in body and body["count"] != len(data):
            raise SnapshotError(f"{path}: count says {body['count']!r:.20} but the page holds {len(data)} rows")
        for i, row in enumerate(data, start=1):
            problem = _row_problem(row, types)
            if problem:
                raise SnapshotError(f"{path}: row {i}: {problem}")
            rid = row["id"].lower()
            if rid in seen and complete:
                raise SnapshotError(f"{path}: row {i}: id repeats a row already read, yet the manifest calls the "
                                    "query complete")
            seen.add(rid)
        counted += len(data)
    if counted != rows:
        raise SnapshotError(f"{here}: manifest says {rows} rows, the pages hold {counted}")


def json_kind(value: Any) -> str:
    """The kind of a parsed JSON value, in the words ledger.row_checks uses: null, boolean, number, text, object,
    array."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "object" if isinstance(value, dict) else "array"


def _row_problem(row: Any, types: dict[str, str]) -> str | None:
    from hotpatch_audit.ledger import MAX_FIELD_CHARS, MAX_JSON_FIELD_CHARS

    if not isinstance(row, dict):
        return "the row is not an object"
    rid = row.get("id")
    if not isinstance(rid, str) or not rid:
        return "the row has no id"
    for key, value in row.items():
        typ = types.get(key)
        if typ is None:
            return f"field {key[:60]!r} is not a column of the query"
        if value is None:
            continue
        if typ == "JSON":
            if not isinstance(value, dict | list):
                return f"field {key} is {json_kind(value)}, expected an object or array"
            if len(json.dumps(value)) > MAX_JSON_FIELD_CHARS:
                return f"field {key} is longer than {MAX_JSON_FIELD_CHARS:,} characters"
        elif not isinstance(value, str):
            return f"field {key} is {json_kind(value)}, expected text"
        elif len(value) > MAX_FIELD_CHARS:
            return f"field {key} is {len(value):,} characters long (at most {MAX_FIELD_CHARS:,})"
    return None
