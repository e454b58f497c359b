"""manifest.json and SHA256SUMS beside a run's reports, and `hotpatch-audit verify` that rechecks them.

The manifest says what was rendered (run, scope, as-of, calendar, price table and waiver file versions)
and lists every output file of the folder with its size and SHA-256: reports, exports, the per-owner
folders and a snapshot saved with the run. It is written last, atomically, so a folder with a manifest
is complete. SHA256SUMS lists the same files in the `sha256sum` format, so
`cd <folder> && sha256sum -c SHA256SUMS` checks them without this tool (it does not cover manifest.json,
which lists SHA256SUMS in turn). A snapshot directory (extract --save, run --save-snapshot) carries its own
SHA256SUMS (pages and its manifest.json), which verify() checks too. verify() is strict: every other file of
the folder must be listed, the list must not be empty, and SHA256SUMS must agree with manifest.json.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb

from hotpatch_audit import __version__
from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, HotpatchAuditError
from hotpatch_audit.files import SUMS_NAME, atomic_write, sha256_file, write_sums
from hotpatch_audit.prices import prices_version

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "hotpatch-audit-report-manifest/1"


class ManifestError(HotpatchAuditError):
    """A manifest is unreadable or not a hotpatch-audit manifest."""


def _kind(rel: PurePosixPath) -> str:
    """What a listed file is: pdf, html, csv, parquet, jsonl, ocsf (findings.ocsf.json), checksums, manifest or
    snapshot (a page or its manifest)."""
    if "snapshot" in rel.parts[:-1]:
        return "snapshot"
    if rel.name == SUMS_NAME:
        return "checksums"
    if rel.name == MANIFEST_NAME:
        return "manifest"
    if rel.name.endswith(".ocsf.json"):
        return "ocsf"
    return rel.suffix.lstrip(".") or "file"


def utc_stamp(ts: datetime) -> str:
    """A time as the manifest and the PDF's /CreationDate write it: W3C date-time in UTC, whole seconds
    (a naive time is UTC, as in the ledger)."""
    aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return f"{aware.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def run_facts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """What the manifest records about the run, from meta.runs and meta.settings (waiver file and hash)."""
    row = con.execute(
        "select run_id, scope, source, as_of, status, tool_version, calendar_version, superseded_by, note"
        " from meta.runs where run_id = ?",
        [run_id],
    ).fetchone()
    if row is None:
        raise ManifestError(f"run {run_id!r} is not in the ledger")
    waivers = dict(
        con.execute(
            "select key, value from meta.settings where run_id = ?"
            " and key in ('waivers_file', 'waivers_sha256', 'prices_version')",
            [run_id],
        ).fetchall()
    )
    return {
        "run_id": row[0],
        "scope": row[1],
        "source": row[2],
        "as_of": utc_stamp(row[3]),
        "run_status": row[4],
        "run_tool_version": row[5],
        "calendar_version": row[6],
        "waiver_file": waivers.get("waivers_file"),
        "waiver_file_sha256": waivers.get("waivers_sha256"),
        "run_superseded_by": row[7],
        "run_note": row[8],
        "run_price_table_version": waivers.get("prices_version"),
    }


def _relative(folder: Path, path: Path) -> PurePosixPath:
    try:
        return PurePosixPath(path.resolve().relative_to(folder.resolve()).as_posix())
    except ValueError as exc:
        raise ManifestError(f"{path} is not inside {folder}: a manifest lists only its folder's files") from exc


def write_manifest(
    folder: Path,
    files: Iterable[Path],
    *,
    facts: dict[str, Any],
    settings: Settings,
    generated_at: datetime,
    owner: str | None = None,
) -> Path:
    """Write SHA256SUMS, then manifest.json (last, atomically) for the given files of folder; return its path."""
    entries: dict[PurePosixPath, Path] = {}
    for path in files:
        rel = _relative(folder, path)
        if rel.name not in (MANIFEST_NAME, SUMS_NAME) or len(rel.parts) > 1:
            entries[rel] = path
    listed = []
    for rel in sorted(entries):
        path = entries[rel]
        listed.append({"path": str(rel), "kind": _kind(rel), "size": path.stat().st_size, "sha256": sha256_file(path)})
    sums = write_sums(folder, ((str(e["path"]), str(e["sha256"])) for e in listed))
    listed.append({"path": SUMS_NAME, "kind": "checksums", "size": sums.stat().st_size, "sha256": sha256_file(sums)})
    manifest = {
        "format": MANIFEST_FORMAT,
        "tool_version": __version__,
        **facts,
        "generated_at": utc_stamp(generated_at),
        "language": settings.language,
        "timezone": settings.timezone,
        "owner": owner,
        # the price table the run was registered with; runs from before it was recorded: this checkout's
        "price_table_version": facts.get("run_price_table_version") or prices_version(settings.project_root),
        "files": listed,
    }
    path = folder / MANIFEST_NAME
    data = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(data, encoding="utf-8"))
    log.info("%s: %d files", path, len(listed))
    return path


@dataclass
class Verification:
    """The result of verify(): the manifest checked, files checked and every problem found."""

    manifest: Path
    run_id: str | None
    checked: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what is wrong)

    @property
    def ok(self) -> bool:
        """True when every listed file is there with its recorded size and SHA-256, and nothing else is wrong."""
        return not self.problems


def _manifest_path(target: Path) -> Path:
    path = target / MANIFEST_NAME if target.is_dir() else target
    if not path.is_file():
        raise ConfigError(f"{path}: no such manifest (give a report folder or its {MANIFEST_NAME})")
    return path


def _sums_entries(folder: Path) -> list[tuple[str, str]] | None:
    """(relative path, SHA-256) of every line of folder/SHA256SUMS, in file order; None when there is none."""
    sums = folder / SUMS_NAME
    if not sums.is_file():
        return None
    entries: list[tuple[str, str]] = []
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{sums}: not readable ({exc})") from exc
    for n, line in enumerate(lines, start=1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ManifestError(f"{sums}:{n}: not a sha256sum line")
        entries.append((rel, digest))
    return entries


def _folder_files(folder: Path) -> list[str]:
    """Every file under folder as sorted relative posix paths: hidden ones too, symlinks (to directories as
    well) not followed."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        found += [(base / f).relative_to(folder).as_posix() for f in files]
        found += [(base / d).relative_to(folder).as_posix() for d in dirs if (base / d).is_symlink()]
    return sorted(found)


def _inside(folder: Path, rel: str) -> bool:
    """True when rel names a path inside folder (not empty, not absolute, no escape by .. or a symlink)."""
    if not rel or PurePosixPath(rel).is_absolute():
        return False
    try:
        return (folder / rel).resolve().is_relative_to(folder)
    except (OSError, ValueError, RuntimeError):  # a NUL in the path, a symlink loop
        return False


def _check_file(result: Verification, folder: Path, rel: str, entry: dict[str, Any]) -> None:
    """One listed file: inside the folder, present, with the recorded size (when recorded) and SHA-256."""
    result.checked += 1
    if not _inside(folder, rel):
        result.problems.append((rel or "?", "unsafe path: outside the manifest's folder"))
        return
    file = (folder / rel).resolve()
    if not file.is_file():
        result.problems.append((rel, "missing"))
    elif "size" in entry and file.stat().st_size != entry.get("size"):
        result.problems.append((rel, f"changed: {file.stat().st_size:,} bytes, manifest says {entry.get('size')}"))
    elif sha256_file(file) != entry.get("sha256"):
        result.problems.append((rel, "changed: SHA-256 differs"))


def _cross_check(result: Verification, folder: Path, listed: dict[str, str], sums: list[tuple[str, str]]) -> None:
    """SHA256SUMS against manifest.json: the same files (but SHA256SUMS itself) with the same SHA-256s."""
    in_sums = {posixpath.normpath(rel): digest for rel, digest in sums}
    for rel, digest in sums:
        key = posixpath.normpath(rel)
        if not _inside(folder, rel):
            result.problems.append((rel or "?", f"unsafe path in {SUMS_NAME}: outside the manifest's folder"))
        elif key not in listed:
            result.problems.append((rel, f"listed in {SUMS_NAME} but not in {result.manifest.name}"))
        elif listed[key] != digest:
            result.problems.append((rel, f"changed: SHA-256 in {SUMS_NAME} differs from {result.manifest.name}"))
    for key in listed:
        if key not in in_sums and key != SUMS_NAME:
            result.problems.append((key, f"listed in {result.manifest.name} but not in {SUMS_NAME}"))


def verify(target: Path) -> Verification:
    """Recompute the size and SHA-256 of every file a manifest lists (target: the folder or the manifest), check
    SHA256SUMS lists the same files with the same SHA-256s, and that the folder holds nothing else (but the
    manifest and SHA256SUMS); an empty list is a problem too.

    A saved snapshot directory (its manifest.json in the snapshot format) is checked against its SHA256SUMS,
    which must list every other file of the directory.
    """
    from hotpatch_audit.sources import SNAPSHOT_FORMAT

    path = _manifest_path(target)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable manifest ({exc})") from exc
    kind = manifest.get("format") if isinstance(manifest, dict) else None
    folder = path.parent.resolve()
    sums = _sums_entries(folder)
    if kind == SNAPSHOT_FORMAT:
        if sums is None:
            raise ManifestError(
                f"{path.parent}: a snapshot without {SUMS_NAME} (saved by an older version): nothing to check"
            )
        files: Any = [{"path": rel, "sha256": digest} for rel, digest in sums]
        nowhere = f"not listed: in the folder but not in {SUMS_NAME}"
    elif kind == MANIFEST_FORMAT:
        files = manifest.get("files")
        nowhere = f"not listed: in the folder but in neither {path.name} nor {SUMS_NAME}"
    else:
        raise ManifestError(f"{path}: not a hotpatch-audit report manifest (format {MANIFEST_FORMAT})")
    if not isinstance(files, list):
        raise ManifestError(f"{path}: no file list")
    result = Verification(path, manifest.get("run_id"))
    own = {path.name, SUMS_NAME}
    listed: dict[str, str] = {}  # normalised relative path -> SHA-256 as listed
    for entry in files:
        rel = str(entry.get("path", "")) if isinstance(entry, dict) else ""
        _check_file(result, folder, rel, entry if isinstance(entry, dict) else {})
        if rel:
            listed[posixpath.normpath(rel)] = str(entry.get("sha256"))
    if not set(listed) - own:
        result.problems.append((SUMS_NAME if kind == SNAPSHOT_FORMAT else path.name, "lists no files"))
    if kind == MANIFEST_FORMAT and sums is not None:
        _cross_check(result, folder, listed, sums)
    known = own | set(listed) | {posixpath.normpath(rel) for rel, _ in sums or ()}
    result.problems += [(rel, nowhere) for rel in _folder_files(folder) if rel not in known]
    return result
