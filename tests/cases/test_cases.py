"""Every case in tests/cases/ through the code the CLI runs (`pytest tests/cases` runs just these).

Each YAML file is one scenario: its runs become snapshot pages, extracted, loaded and audited by
hotpatch_audit.pipeline; the exact findings it expects (audit, code, status, machine, month) must exist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.test_audits import CASES, _check_case_shape, _run_case

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The schema and views applied once; each case copies this file (apply_sql per case is slow)."""
    from hotpatch_audit.ledger import open_writer

    path = tmp_path_factory.mktemp("template") / "ledger.duckdb"
    with open_writer(path, ROOT):  # applies sql/ and records its fingerprint, as the pipeline does
        pass
    return path


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case(path: Path, tmp_path: Path, template_ledger: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    _check_case_shape(path, case)
    ledger = tmp_path / "ledger.duckdb"
    shutil.copyfile(template_ledger, ledger)
    xfail_reason = case.get("xfail_reason")
    if not xfail_reason:
        _run_case(ledger, case, tmp_path)
        return
    # a known product bug: the case asserts the correct behaviour; xfail while it fails, error when it passes
    try:
        _run_case(ledger, case, tmp_path)
    except AssertionError as exc:
        pytest.xfail(f"{xfail_reason} ({str(exc).splitlines()[0][:300]})")
    pytest.fail(f"case passes now: remove xfail_reason ({xfail_reason})")


