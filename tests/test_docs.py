"""Docs are part of the feature: generated docs are current, every setting and command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from hotpatch_audit.config import Settings
from hotpatch_audit.docgen import schema_markdown, settings_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_settings_doc_is_current_and_complete() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert text == settings_markdown(), "run: python -m hotpatch_audit.docgen"
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"HOTPATCH_AUDIT_{name.upper()}" in text


def test_schema_doc_is_current() -> None:
    assert (ROOT / "docs" / "schema.md").read_text(encoding="utf-8") == schema_markdown(), \
        "run: python -m hotpatch_audit.docgen"


def test_every_ledger_table_and_view_is_described() -> None:
    text = schema_markdown()
    assert "(no description)" not in text


@pytest.mark.parametrize("command", ["run", "demo", "extract", "report", "query", "emulator", "calendar", "diff",
                                     "import-facts", "verify", "version"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: hotpatch-audit " + command in " ".join(result.output.split())


def test_readme_quick_start_comes_first_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_section = readme.split("\n## ")[1]
    assert first_section.startswith("Quick start")
    assert "scripts/demo.sh" in first_section and "scripts/test.sh" in first_section
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("bash scripts/test.sh")
