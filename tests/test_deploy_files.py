"""The alternative Prefect files (deploy/prefect.git.yaml, deploy/prefect.docker.yaml) and the worker image.

Without a server or Docker: Prefect's own prefect.yaml model reads each file; every step is an importable
Prefect callable that accepts the inputs given; the deployments, parameters and schedules are those of the
top-level prefect.yaml; entrypoints are flows; no secret is written in them; and the docker deployment, the
Dockerfile and .dockerignore agree (working directory, data volume, pinned uv, system packages).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prefect import Flow
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.utilities.importtools import import_object

from tests.test_prefect_deployment import prefect_yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = {"git": ROOT / "deploy" / "prefect.git.yaml", "docker": ROOT / "deploy" / "prefect.docker.yaml"}
DATA_DIR = PurePosixPath("/var/lib/hotpatch-audit")
# Parameters that name files: relative to the checkout in prefect.yaml, absolute (outside the clone or the
# image's code) in the alternative files.
PATH_PARAMETERS = {"tenants_file", "base_dir"}
SECRET_NAME = re.compile(r"token|secret|passw|credential|api_?key|private_?key|client_?secret|webhook", re.I)
SECRET_BLOCK = re.compile(r"^\{\{ *prefect\.blocks\.secret\.[a-z0-9][a-z0-9-]* *\}\}$")
SECRET_VALUE = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}|xox[abposr]-[\w-]{10,}|AKIA[0-9A-Z]{16}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY|eyJ[\w-]{10,}\.[\w-]{10,}|://[^/\s:@]+:[^/\s@]+@|\b[A-Za-z0-9+/_-]{40,}={0,2}")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def steps(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every step of the file (top-level and per-deployment build, push, pull) as (name, inputs)."""
    found = []
    for holder in (data, *data.get("deployments", [])):
        for section in ("build", "push", "pull"):
            for step in holder.get(section) or []:
                [(name, inputs)] = step.items()
                found.append((name, dict(inputs or {})))
    return found


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (key path, text) in a loaded YAML document: keys and values."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in [(f"{path}.{k}", str(k)), *strings(v, f"{path}.{k}")]]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in strings(v, f"{path}[{i}]")]
    return [(path, str(value))] if value is not None else []


def secret_findings(data: dict[str, Any]) -> list[str]:
    """Secret-looking literals: a value under a secret-like key that is not a Secret block reference, an
    environment variable with a secret-like name, or text shaped like a token, key or URL with credentials."""
    found = []
    for path, text in strings(data):
        key = path.rsplit(".", 1)[-1]
        if SECRET_VALUE.search(text):
            found.append(f"{path}: looks like a secret")
        if SECRET_NAME.search(key) and text != key and not SECRET_BLOCK.match(text):
            found.append(f"{path}: not a {{{{ prefect.blocks.secret.<name> }}}} reference")
        if ".env." in path and SECRET_NAME.search(key):
            found.append(f"{path}: a secret in the job's environment")
    return found


@pytest.fixture(params=sorted(FILES), ids=str)
def prefect_file(request: pytest.FixtureRequest) -> Path:
    return FILES[request.param]


def test_prefect_reads_every_deployment(prefect_file: Path) -> None:
    raw = load(prefect_file)
    model = PrefectYamlModel.model_validate(raw)  # what `prefect deploy --prefect-file` validates (and skips on)
    assert [d.name for d in model.deployments] == [d["name"] for d in raw["deployments"]]
    assert all(d.work_pool is not None and d.work_pool.name for d in model.deployments)


def test_every_step_is_an_importable_prefect_callable_taking_its_inputs(prefect_file: Path) -> None:
    found = steps(load(prefect_file))
    assert found, "a deployment without pull steps gets Prefect's default, the deployer's directory"
    for name, inputs in found:
        assert name.startswith("prefect."), f"{name}: needs a package the worker may not have"
        function = import_object(name)
        assert callable(function), name
        inspect.signature(function).bind(**{k: v for k, v in inputs.items() if k not in ("id", "requires")})


def test_same_deployments_parameters_and_schedules_as_prefect_yaml(prefect_file: Path) -> None:
    local = {d["name"]: d for d in prefect_yaml()["deployments"]}
    alternative = {d["name"]: d for d in load(prefect_file)["deployments"]}
    assert alternative.keys() == local.keys()
    for name, mine in alternative.items():
        theirs = local[name]
        for field in ("entrypoint", "description", "tags", "schedules"):
            assert mine.get(field) == theirs.get(field), f"{name}: {field} differs from prefect.yaml"
        assert mine["parameters"].keys() == theirs["parameters"].keys(), name
        for key, value in mine["parameters"].items():
            if key in PATH_PARAMETERS:
                assert PurePosixPath(value).is_relative_to(DATA_DIR), f"{name}: {key} must be under {DATA_DIR}"
            else:
                assert value == theirs["parameters"][key], f"{name}: parameter {key} differs from prefect.yaml"


def test_entrypoints_are_flows(prefect_file: Path) -> None:
    for deployment in load(prefect_file)["deployments"]:
        path, _, function = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file(), path
        module = importlib.import_module(".".join(PurePosixPath(path).with_suffix("").parts))
        assert isinstance(getattr(module, function), Flow), deployment["entrypoint"]


def test_no_secret_literals(prefect_file: Path) -> None:
    assert secret_findings(load(prefect_file)) == []


def test_the_secret_check_finds_literals() -> None:
    bad = {
        "pull": [{"prefect.deployments.steps.git_clone": {
            "repository": "https://deploy:hunter22@example.com/org/repo.git",
            "access_token": "ghp_" + "a1B2" * 9,
        }}],
        "definitions": {"work_pools": {"p": {"job_variables": {"env": {"AZURE_CLIENT_SECRET": "{{ $X }}"}}}}},
    }
    found = "\n".join(secret_findings(bad))
    assert "repository: looks like a secret" in found
    assert "access_token: looks like a secret" in found and "access_token: not a" in found
    assert "AZURE_CLIENT_SECRET: a secret in the job's environment" in found
    ok = {"access_token": "{{ prefect.blocks.secret.hotpatch-audit-git-token }}", "rrule": "FREQ=MONTHLY"}
    assert secret_findings(ok) == []


# -- the git_clone deployment ---------------------------------------------------------------------------------


def test_git_deployment_clones_then_installs_the_clone_with_uv_from_its_lock() -> None:
    data = load(FILES["git"])
    [(clone_step, clone), (install_step, install)] = [next(iter(s.items())) for s in data["pull"]]
    assert clone_step == "prefect.deployments.steps.git_clone"
    assert clone["repository"].startswith("https://") and clone["branch"]
    assert SECRET_BLOCK.match(clone.get("access_token", "{{ prefect.blocks.secret.none }}"))
    assert install_step == "prefect.deployments.steps.run_shell_script"
    assert install["directory"] == f"{{{{ {clone['id']}.directory }}}}"
    assert install["expand_env_vars"] is True  # $VIRTUAL_ENV: the environment the flow run's Python is in
    export, pip = install["script"].strip().splitlines()
    assert export.startswith("uv export --frozen --no-dev") and "--no-emit-project" in export
    assert pip.startswith("uv pip install") and "--python $VIRTUAL_ENV" in pip and "--constraint" in pip
    assert {d["work_pool"]["name"] for d in data["deployments"]} == {"hotpatch-audit"}
    for deployment in data["deployments"]:
        env = deployment["work_pool"]["job_variables"]["env"]
        assert all(PurePosixPath(env[f"HOTPATCH_AUDIT_{k}"]).is_relative_to(DATA_DIR)
                   for k in ("LEDGER_PATH", "OUT_DIR", "WORK_DIR")), "a fresh clone each run: keep data outside"


# -- the docker deployment and the image -----------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def dockerfile_env() -> dict[str, str]:
    """The ENV settings of the Dockerfile (KEY=value, continued lines joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile())
    return dict(re.findall(r"\b([A-Z_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", text, re.M))))


def test_docker_deployment_runs_the_image_with_its_data_on_a_volume() -> None:
    data = load(FILES["docker"])
    [(step, inputs)] = [next(iter(s.items())) for s in data["pull"]]
    [workdir] = re.findall(r"^WORKDIR (\S+)", dockerfile(), re.M)
    assert step == "prefect.deployments.steps.set_working_directory" and inputs["directory"] == workdir
    [volume] = re.findall(r'^VOLUME \["([^"]+)"\]', dockerfile(), re.M)
    assert PurePosixPath(volume) == DATA_DIR
    image_env = dockerfile_env()
    install_doc = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    for deployment in data["deployments"]:
        pool = deployment["work_pool"]
        assert pool["name"] == "hotpatch-audit-docker"
        variables = pool["job_variables"]
        assert f"docker build -t {variables['image']} ." in install_doc
        assert f"docker build -t {variables['image']} ." in dockerfile()
        assert [v.partition(":")[2] for v in variables["volumes"]] == [volume]
        for key, value in variables["env"].items():
            if key.startswith("HOTPATCH_AUDIT_"):
                assert PurePosixPath(value).is_relative_to(DATA_DIR) and image_env[key] == value, key


def test_dockerfile_builds_on_the_lock_as_a_non_root_prefect_worker() -> None:
    text = dockerfile()
    assert re.search(r"^FROM python:3\.12-slim-bookworm$", text, re.M)
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    [uv_version] = re.findall(r'^UV_VERSION="([^"]+)"', bootstrap, re.M)
    assert f"ARG UV_VERSION={uv_version}" in text and '"uv==${UV_VERSION}"' in text
    [packages] = re.findall(r"^SYSTEM_PACKAGES=\(([^)]*)\)", bootstrap, re.M)
    runtime = set(packages.split()) - {"poppler-utils"}  # poppler: the tests' PDF tools
    assert runtime and all(re.search(rf"\s{re.escape(p)}\s", text) for p in runtime), runtime
    assert "uv sync --frozen --no-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["prefect", "worker", "start", "--pool", "hotpatch-audit"\]$', text, re.M)
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "out", ".prefect", ".git", "test-artifacts", ".tools"} <= ignored
