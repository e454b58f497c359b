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
