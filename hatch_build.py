"""Hatchling build hook: ship the checkout's definitions (sql/, queries/, data/, reports/) in the wheel.

The folders stay at the checkout root; `[tool.hatch.build.targets.wheel.hooks.custom] resources` in
pyproject.toml maps each to its place inside the package (hotpatch_audit/_resources/...), which
hotpatch_audit.config finds when the package is installed from the wheel. They are force-included in the
standard wheel only: an editable install (the checkout's .venv) reads the checkout itself, so no copy of
them is left in its site-packages to go stale.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ResourcesBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "standard":
            return
        resources = self.config.get("resources", {})
        if not isinstance(resources, dict) or not resources:
            raise ValueError("hatch_build.py: set [tool.hatch.build.targets.wheel.hooks.custom] resources")
        build_data["force_include"].update(resources)
