"""Writing output files safely and checking them later: the one home for atomic writes, file SHA-256s and
the `sha256sum`-format SHA256SUMS file (reports, exports, snapshots and manifests all use these)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

SUMS_NAME = "SHA256SUMS"
_CHUNK = 1 << 20

T = TypeVar("T")


def atomic_write(path: Path, write: Callable[[Path], T]) -> T:
    """Write beside the target, then rename: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        result = write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """atomic_write of bytes already in memory (snapshot pages, manifests)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_sums(folder: Path, entries: Iterable[tuple[str, str]]) -> Path:
    """Write folder/SHA256SUMS (atomically) from (relative posix path, hex SHA-256) pairs, in the order given,
    so `cd folder && sha256sum -c SHA256SUMS` checks them."""
    text = "".join(f"{digest}  {rel}\n" for rel, digest in entries)
    path = folder / SUMS_NAME
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def read_sums(folder: Path) -> dict[str, str] | None:
    """The SHA256SUMS of a folder as {relative posix path: hex digest}, or None when it has none or it is not in
    the `sha256sum` format."""
    path = folder / SUMS_NAME
    if not path.is_file():
        return None
    entries: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        entries[rel.lstrip("*")] = digest
    return entries


def folder_files(folder: Path) -> list[str]:
    """Every file under folder (symlinks included, not followed), as sorted relative posix paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        found += [(base / f).relative_to(folder).as_posix() for f in files]
        found += [(base / d).relative_to(folder).as_posix() for d in dirs if (base / d).is_symlink()]
    return sorted(found)


def foreign_files(folder: Path) -> list[str]:
    """The files in an existing folder that hotpatch-audit did not write: everything not listed in the folder's
    SHA256SUMS (besides SHA256SUMS and manifest.json); every file when there is no SHA256SUMS. An empty or
    missing folder has none."""
    if not folder.exists():
        return []
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name]
    files = folder_files(folder)
    listed = read_sums(folder)
    if listed is None:
        return files
    own = set(listed) | {SUMS_NAME, "manifest.json"}
    return [f for f in files if f not in own]


def check_target_folder(folder: Path, what: str) -> None:
    """Refuse to write `what` (a report, a snapshot) into a folder holding anything hotpatch-audit did not write
    there: replacing the folder would destroy it. ConfigError names up to three such files."""
    from hotpatch_audit.errors import ConfigError

    foreign = foreign_files(folder)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(
            f"{folder} is not empty and is not a {what} folder written by hotpatch-audit (it holds {shown}); "
            f"the {what} replaces the whole folder, so choose a new or empty folder"
        )


def staging_folder(target: Path) -> Path:
    """A new, empty folder beside target to write into before replace_folder() moves it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = target.with_name(f".{target.name}.partial-{os.getpid()}-{os.urandom(3).hex()}")
    stage.mkdir()
    return stage


def replace_folder(stage: Path, target: Path) -> None:
    """Move a finished staging folder into place. An existing target (checked with check_target_folder) is renamed
    aside first and removed after the move, so target is always either the old folder or the new one, whole."""
    import shutil

    if not target.exists():
        os.replace(stage, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
    os.replace(target, old)
    try:
        os.replace(stage, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def discard_folder(stage: Path) -> None:
    """Remove a staging folder that will not be used (after a failure)."""
    import shutil

    shutil.rmtree(stage, ignore_errors=True)
