"""The package imports and locks without POSIX-only pieces (so it can run on Windows), and finds its definitions.

Windows has no fcntl, resource, pwd, grp or termios, no SIGHUP/SIGKILL, no os.getuid/killpg/fork, and there
os.kill(pid, 0) terminates the process. These tests run on Linux: they make those modules unimportable for the
project's own code, scan its source for the missing names, and drive the Windows branches with fakes.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import hotpatch_audit
from hotpatch_audit.config import CHECKOUT_ROOT, PACKAGED_RESOURCES, PROJECT_ROOT, RESOURCE_DIRS, Settings
from hotpatch_audit.errors import LedgerBusyError
from hotpatch_audit.files import pid_alive, windows_pid_alive
from hotpatch_audit.ledger import ledger_lock

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(hotpatch_audit.__file__).resolve().parent
POSIX_ONLY_MODULES = ("fcntl", "resource", "pwd", "grp", "termios")
# Names the Windows builds of os and signal do not have.
MISSING_ON_WINDOWS = {
    "os": {"getuid", "geteuid", "getgid", "getegid", "getgroups", "killpg", "fork", "forkpty", "setsid", "getpgid",
           "setpgid", "getpgrp", "setpgrp", "getsid", "uname", "sync", "chown", "lchown", "fchown", "getloadavg",
           "sched_getaffinity", "wait3", "wait4", "WNOHANG", "O_NOFOLLOW", "O_NONBLOCK", "mkfifo", "nice"},
    "signal": {"SIGHUP", "SIGKILL", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE", "SIGCONT",
               "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "alarm", "pause", "setitimer", "siginterrupt",
               "pthread_kill", "pthread_sigmask", "sigwait"},
}


def project_sources() -> list[Path]:
    """Every Python file of the package (wherever its modules have moved) and of flows/."""
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "flows").glob("*.py")])


def module_name(path: Path) -> str:
    base, package = (PACKAGE, "hotpatch_audit") if path.is_relative_to(PACKAGE) else (ROOT / "flows", "flows")
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


# Imports every module in a fresh interpreter where an import of a POSIX-only module by the project's own code
# fails as it would on Windows (as if sys.modules[name] were None for it). Third-party packages keep theirs:
# they choose msvcrt or fcntl by os.name (portalocker), so blocking them here would fail for a reason Windows
# does not have.
IMPORT_ALL = textwrap.dedent("""
    import builtins, importlib, json, sys
    blocked, ours, modules = set(sys.argv[1].split(",")), {"hotpatch_audit", "flows"}, sys.argv[2].split(",")
    real_import = builtins.__import__

    def windows_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = str((globals or {}).get("__name__") or "")
        if level == 0 and name.partition(".")[0] in blocked and importer.partition(".")[0] in ours:
            raise ModuleNotFoundError(f"import of {name} halted; None in sys.modules", name=name)
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = windows_import
    failed = {}
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            failed[module] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(failed))
""")


def test_every_module_imports_without_posix_only_modules() -> None:
    modules = sorted({module_name(p) for p in project_sources()} - {"hotpatch_audit.__main__"})
    assert "hotpatch_audit.ledger" in modules and "flows.monthly_audit" in modules
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, ",".join(POSIX_ONLY_MODULES), ",".join(modules)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "{}", done.stdout[-3000:]


def test_the_blocker_catches_a_posix_only_import(tmp_path: Path) -> None:
    """The check above would notice: a module of ours importing fcntl fails under it."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "flows" / "posix_only.py").write_text("import fcntl\n")
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, "fcntl", "flows.posix_only"], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert "import of fcntl halted" in done.stdout, done.stdout + done.stderr


def posix_only_uses(source: str) -> list[str]:
    """Imports of POSIX-only modules and uses of os / signal names Windows lacks, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.partition(".")[0] in POSIX_ONLY_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.partition(".")[0] in POSIX_ONLY_MODULES:
                found.append(f"{node.lineno}: from {node.module} import ...")
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name in MISSING_ON_WINDOWS.get(node.module, ())]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.attr in MISSING_ON_WINDOWS.get(node.value.id, ())):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_posix_only_names_in_the_source() -> None:
    """Also inside functions (the import check above only runs module level): use hasattr/getattr or a
    sys.platform branch where a name exists on POSIX only."""
    offenders = {str(p.relative_to(ROOT)): uses for p in project_sources()
                 if (uses := posix_only_uses(p.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_source_scan_finds_what_windows_lacks() -> None:
    code = "import fcntl\nimport os, signal\nfrom os import getuid\nos.killpg(1, signal.SIGKILL)\nos.kill(1, 0)\n"
    assert posix_only_uses(code) == ["1: import fcntl", "3: from os import getuid", "4: os.killpg",
                                     "4: signal.SIGKILL"]


def test_cli_starts_where_signal_has_no_sighup() -> None:
    script = ("import signal, sys; del signal.SIGHUP; sys.argv = ['hotpatch-audit', 'version']; "
              "from hotpatch_audit.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == hotpatch_audit.__version__


# -- pid_alive: never os.kill on Windows ----------------------------------------------------------------------


def test_pid_alive_on_this_system() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    assert not pid_alive(child.pid)


class FakeKernel32:
    """OpenProcess / GetExitCodeProcess / CloseHandle as Windows answers them, for one process table."""

    def __init__(self, processes: dict[int, int | None], denied: frozenset[int] = frozenset()) -> None:
        self.processes, self.denied, self.error, self.closed = processes, denied, 0, 0

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:  # noqa: N802 (the Win32 name)
        assert access == 0x1000 and inherit is False
        if pid in self.denied:
            self.error = 5  # ERROR_ACCESS_DENIED
            return 0
        if pid not in self.processes:
            self.error = 87  # ERROR_INVALID_PARAMETER: no such process
            return 0
        return pid + 10_000

    def GetExitCodeProcess(self, handle: int, code: Any) -> int:  # noqa: N802
        exit_code = self.processes[handle - 10_000]
        code._obj.value = 259 if exit_code is None else exit_code  # STILL_ACTIVE while running
        return 1

    def CloseHandle(self, handle: int) -> int:  # noqa: N802
        self.closed += 1
        return 1


def test_windows_pid_alive_asks_the_process_table_without_signalling() -> None:
    kernel32 = FakeKernel32({100: None, 200: 0, 300: 1}, denied=frozenset({400}))
    alive = {pid: windows_pid_alive(pid, kernel32, lambda: kernel32.error) for pid in (100, 200, 300, 400, 500)}
    assert alive == {100: True, 200: False, 300: False, 400: True, 500: False}
    assert kernel32.closed == 3  # every handle opened is closed
    assert not windows_pid_alive(2**40, kernel32, lambda: kernel32.error)


# -- the ledger lock (portalocker): readers share, a writer excludes ------------------------------------------


def test_readers_share_the_lock_and_a_writer_excludes_them(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    with (ledger_lock(ledger, exclusive=False, timeout=1), ledger_lock(ledger, exclusive=False, timeout=1),
          pytest.raises(LedgerBusyError), ledger_lock(ledger, exclusive=True, timeout=0.5)):
        pass
    notes: list[str] = []
    with (ledger_lock(ledger, exclusive=True, timeout=1, holder="test writer"),
          pytest.raises(LedgerBusyError, match="test writer"),
          ledger_lock(ledger, exclusive=False, timeout=0.5, on_wait=notes.append)):
        pass
    assert notes and "waiting for the ledger" in notes[0]
    with ledger_lock(ledger, exclusive=True, timeout=1):  # released: free again
        pass


# -- where the definitions come from --------------------------------------------------------------------------


def test_a_checkout_reads_its_own_definitions() -> None:
    assert CHECKOUT_ROOT == ROOT == PROJECT_ROOT == Settings().project_root
    assert all((PROJECT_ROOT / folder).is_dir() for folder in RESOURCE_DIRS)
    assert not PACKAGED_RESOURCES.exists(), "the editable install must not carry a copy that could go stale"


def test_project_root_is_still_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTPATCH_AUDIT_PROJECT_ROOT", str(tmp_path))
    assert Settings().project_root == tmp_path
