"""The wheel, installed as a user would: built with uv, installed into a fresh virtual environment outside the
checkout with the locked versions, and run from another folder with an environment that does not point at the
checkout. What the user depends on: the demo exits 0, writes its reports and manifest under the current
folder, and every definition it reads (sql/, queries/, data/, templates, static files, the translations) comes
from the installed package, none from the checkout, and nothing is written into the installation.

The proof that nothing is read from the checkout: a .pth file in the throwaway environment adds an audit hook
(sys.addaudithook, the interpreter's own record of every file Python opens) that logs each path opened and
whether for writing; the run's log is checked against the checkout and the environment's folders.

The second test is the worker side of deploy/prefect.git.yaml: its pull steps (git_clone, then the uv install
into the active virtual environment) run by Prefect's step runner against a repository of the working tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader

from hotpatch_audit.config import RESOURCE_DIRS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 600

OPEN_LOG_HOOK = '''
"""Test instrumentation (tests/test_install.py): log every file Python opens, one line each: r|w PATH."""
import os
import sys

_log_path = os.environ.get("HPA_TEST_OPEN_LOG")
if _log_path:
    _log = open(_log_path, "a", encoding="utf-8")  # noqa: SIM115
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _hook(event, args):
        if event != "open" or not args or isinstance(args[0], int):
            return
        try:
            path = os.path.abspath(os.fsdecode(args[0]))
        except (TypeError, ValueError):
            return
        mode, flags = args[1], args[2]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and bool(flags & _WRITE))
        _log.write(("w " if writing else "r ") + path + "\\n")
        _log.flush()

    sys.addaudithook(_hook)
'''


def uv() -> str:
    """The pinned uv of scripts/bootstrap.sh (.tools/), else one on PATH."""
    pinned = ROOT / ".tools" / "bin" / "uv"
    found = str(pinned) if pinned.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (run scripts/bootstrap.sh)")
    return found


def run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done


def user_environment(tmp_path: Path) -> dict[str, str]:
    """The test's environment without anything that points at the checkout or its virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTPATCH_AUDIT_", "PREFECT_")) and k not in {
               "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH", "UV_PROJECT"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not Path(p).resolve().is_relative_to(ROOT))
    env.update({"MPLBACKEND": "Agg", "DO_NOT_TRACK": "1", "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "UV_PYTHON_DOWNLOADS": "never"})
    return env


def test_the_wheel_installs_and_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    started = time.monotonic()
    uv_env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    uv_env.pop("VIRTUAL_ENV", None)

    # 1. Build the wheel; it carries the definitions and the translations.
    dist = tmp_path / "dist"
    run([uv(), "build", "--wheel", "--out-dir", dist], cwd=ROOT, env=uv_env)
    [wheel] = dist.glob("hotpatch_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in RESOURCE_DIRS:
        shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()}
        assert shipped, folder
        missing = {f"hotpatch_audit/_resources/{rel}" for rel in shipped} - names
        assert not missing, f"not in the wheel: {sorted(missing)[:5]}"
    assert "hotpatch_audit/locale/ja/LC_MESSAGES/messages.po" in names
    assert not any(n.startswith(("flows/", "tests/", "hotpatch_audit/_resources/docs")) for n in names)
    built = time.monotonic()

    # 2. A fresh environment outside the checkout, with exactly the locked versions.
    constraints = tmp_path / "constraints.txt"
    run([uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--quiet",
         "--output-file", constraints], cwd=ROOT, env=uv_env)
    venv = tmp_path / "venv"
    run([uv(), "venv", "--quiet", "--python", sys.executable, venv], cwd=tmp_path, env=uv_env)
    python = venv / "bin" / "python"
    home = next(line for line in (venv / "pyvenv.cfg").read_text().splitlines() if line.startswith("home"))
    assert not Path(home.partition("=")[2].strip()).resolve().is_relative_to(ROOT), home
    run([uv(), "pip", "install", "--quiet", "--python", python, wheel, "-c", constraints], cwd=tmp_path, env=uv_env)
    [site_packages] = venv.glob("lib/python3*/site-packages")
    package = site_packages / "hotpatch_audit"
    assert (package / "_resources" / "sql" / "00_schema.sql").is_file()
    (site_packages / "_hpa_test_open_log.py").write_text(OPEN_LOG_HOOK, encoding="utf-8")
    (site_packages / "_hpa_test_open_log.pth").write_text("import _hpa_test_open_log\n", encoding="utf-8")
    installed = time.monotonic()

    # 3. A user's run: another folder, nothing in the environment pointing at the checkout.
    work = tmp_path / "work"
    work.mkdir()
    env = user_environment(tmp_path)
    env["HPA_TEST_OPEN_LOG"] = str(tmp_path / "opened.log")
    where = run([python, "-c", "from hotpatch_audit.config import Settings; print(Settings().project_root)"],
                cwd=work, env=env)
    assert Path(where.stdout.strip()) == package / "_resources"
    done = subprocess.run([str(venv / "bin" / "hotpatch-audit"), "demo", "--months", "1", "--lang", "ja"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    ran = time.monotonic()
    assert done.returncode == 0, done.stderr[-4000:]

    # What the user gets: reports and a manifest under the current folder, a PDF with pages, the ledger.
    [report] = [p.parent for p in (work / "out" / "reports").glob("*/audit.pdf")]
    assert {"audit.pdf", "audit.html", "manifest.json"} <= {p.name for p in report.iterdir()}
    assert (work / "out" / "ledger.duckdb").is_file()
    assert len(PdfReader(report / "audit.pdf").pages) > 1
    assert 'lang="ja"' in (report / "audit.html").read_text(encoding="utf-8")
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"] and all(not str(f["path"]).startswith("/") for f in manifest["files"])

    # Where it read and wrote: definitions from the installed package only; nothing under the checkout,
    # nothing written into the installation (bytecode caches aside).
    opened = [(line[0], Path(line[2:])) for line in (tmp_path / "opened.log").read_text().splitlines()]
    from_checkout = sorted({str(p) for _, p in opened if p.is_relative_to(ROOT)})
    assert from_checkout == [], from_checkout[:10]
    read = {p for mode, p in opened if mode == "r"}
    resources = package / "_resources"
    for wanted in ("sql/00_schema.sql", "queries/arc_machines.kql", "data/release_calendar.csv",
                   "data/demo-waivers.yaml", "reports/templates/report.html.j2", "reports/static/print.css"):
        assert resources / wanted in read, f"{wanted} was not read from the installed package"
    assert package / "locale" / "ja" / "LC_MESSAGES" / "messages.po" in read
    written = sorted({str(p) for mode, p in opened if mode == "w" and p.is_relative_to(venv)
                      and "__pycache__" not in p.parts})
    assert written == [], written[:10]
    assert any(p.is_relative_to(work / "out") for mode, p in opened if mode == "w")

    timings = {"build": built - started, "install": installed - built, "demo": ran - installed,
               "total": ran - started}
    print("install test timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


# The worker side of deploy/prefect.git.yaml: its pull steps, run by Prefect's own step runner as a flow run
# runs them, against a git repository holding this working tree (cloned over file://, no token).
RUN_PULL_STEPS = """
import asyncio, json, sys, yaml
from prefect.deployments.steps.core import run_steps
steps = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))["pull"]
clone = steps[0]["prefect.deployments.steps.git_clone"]
clone["repository"] = sys.argv[2]
clone.pop("access_token", None)  # a Secret block on a real worker; a public repository here
print(json.dumps(asyncio.run(run_steps(steps, print_function=lambda *a, **k: None))))
"""


def test_the_git_deployment_clones_and_installs_into_the_worker_environment(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (repository / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repository / rel)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    run([*git, "init", "--quiet", "--initial-branch", "main"], cwd=repository)
    run([*git, "add", "--all"], cwd=repository)
    run([*git, "commit", "--quiet", "--message", "the working tree"], cwd=repository)

    # The worker: its own virtual environment, active (VIRTUAL_ENV), with uv and git on PATH.
    venv = tmp_path / "worker-venv"
    run([uv(), "venv", "--quiet", "--python", sys.executable, venv], cwd=tmp_path,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    work = tmp_path / "flow-run"
    work.mkdir()
    env = user_environment(tmp_path)
    # The pull steps run under an ephemeral Prefect server here (a worker talks to its real one). Prefect's default
    # 20 s for it to start is too short on a slow 2-core host (it failed there twice in a row); the checkout's
    # scripts/prefect-env.sh gives it 300 s for the same reason.
    env.update({"VIRTUAL_ENV": str(venv), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
                "PATH": os.pathsep.join([str(Path(uv()).parent), env["PATH"]])})
    done = run([sys.executable, "-c", RUN_PULL_STEPS, ROOT / "deploy" / "prefect.git.yaml",
                repository.as_uri()], cwd=work, env=env)
    outputs = json.loads(done.stdout.strip().splitlines()[-1])
    clone = work / outputs["directory"]
    assert (clone / "flows" / "monthly_audit.py").is_file() and (clone / "uv.lock").is_file()

    # The flow run's Python (the worker environment) now has the clone installed with the locked versions,
    # reads the definitions from that installation, and loads the flows from the clone.
    probe = ("import importlib.metadata as m, hotpatch_audit.config as c, flows.monthly_audit as f;"
             "print(c.PROJECT_ROOT); print(m.version('prefect')); print(type(f.monthly_audit).__name__)")
    root, prefect_version, flow_type = run([venv / "bin" / "python", "-c", probe], cwd=clone,
                                           env={**env, "PYTHONPATH": str(clone)}).stdout.split()
    assert Path(root).is_relative_to(venv) and Path(root).name == "_resources"
    locked = re.search(r'name = "prefect"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text(encoding="utf-8"))
    assert locked and prefect_version == locked[1]
    assert flow_type == "Flow"
