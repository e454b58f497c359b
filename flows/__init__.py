"""Prefect flows: thin wrappers over hotpatch_audit.pipeline (entrypoints named in prefect.yaml)."""

from __future__ import annotations

import logging

from prefect.settings import PREFECT_LOGGING_LEVEL

# Prefect attaches its API handler to the library's logger (logging.extra_loggers = "hotpatch_audit")
# but leaves its level alone, so INFO lines would stop at the root logger's WARNING. Flows show them.
logging.getLogger("hotpatch_audit").setLevel(PREFECT_LOGGING_LEVEL.value())
