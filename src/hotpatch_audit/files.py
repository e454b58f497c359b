"""Writing output files safely and checking them later: the one home for atomic writes, file SHA-256s and
the `sha256sum`-format SHA256SUMS file (reports, exports, snapshots and manifests all use these)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

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


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[0-9a-f]{6}$")


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs on this machine (a lock holder, a writer that left a folder).

    POSIX: signal 0 (nothing is sent). Windows: OpenProcess and GetExitCodeProcess, never os.kill, which
    there terminates the process whatever the signal."""
    if not pid:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = ctypes.c_void_p
        kernel32.OpenProcess.argtypes = (ctypes.c_ulong, ctypes.c_int, ctypes.c_ulong)
        kernel32.GetExitCodeProcess.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong))
        kernel32.CloseHandle.argtypes = (ctypes.c_void_p,)
        return windows_pid_alive(pid, kernel32, ctypes.get_last_error)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_STILL_ACTIVE = 259
_ERROR_ACCESS_DENIED = 5


def windows_pid_alive(pid: int, kernel32: Any, last_error: Callable[[], int]) -> bool:
    """pid_alive on Windows, given kernel32 (ctypes.WinDLL) and ctypes.get_last_error: a process that cannot be
    opened for lack of rights exists; one that opens runs until it has an exit code."""
    import ctypes

    if not 0 < pid <= 0xFFFFFFFF:
        return False
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return bool(last_error() == _ERROR_ACCESS_DENIED)  # else: no such process (ERROR_INVALID_PARAMETER)
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # cannot tell: treat it as running, as for a process of another user
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def recover_leftovers(parent: Path) -> list[str]:
    """Tidy what a killed writer left in parent: a folder it had moved aside (`.NAME.old-PID-*`) goes back
    to NAME when NAME is missing (the swap was cut between its two renames), every other leftover of a dead
    process (`.NAME.partial-PID-*`, a superfluous `.old`) is removed. Folders of live processes are left."""
    import shutil

    done: list[str] = []
    if not parent.is_dir():
        return done
    for entry in sorted(parent.iterdir()):
        match = _LEFTOVER.match(entry.name)
        if not match or not entry.is_dir() or pid_alive(int(match["pid"])):
            continue
        target = parent / match["name"]
        if match["kind"] == "old" and not target.exists():
            os.replace(entry, target)
            done.append(f"restored {target}")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry}")
    return done


def staging_folder(target: Path) -> Path:
    """A new, empty folder beside target to write into before replace_folder() moves it into place (after
    recovering what an earlier, killed writer left beside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_leftovers(target.parent)
    stage = target.with_name(f".{target.name}.partial-{os.getpid()}-{os.urandom(3).hex()}")
    stage.mkdir()
    return stage


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot; fall back
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def replace_folder(stage: Path, target: Path) -> None:
    """Move a finished staging folder into place. An existing target (checked with check_target_folder) is
    swapped with it in one atomic step where the system allows (Linux), else renamed aside first and moved
    back by the next writer if a kill cuts between the two renames (recover_leftovers); either way target is
    always the old folder or the new one, whole."""
    import shutil

    if not target.exists():
        os.replace(stage, target)
        return
    if _exchange(stage, target):
        shutil.rmtree(stage, ignore_errors=True)  # now holds the old folder
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
