"""Re-render a past run's reports from the ledger as a Prefect flow (read-only; safe while an audit runs).

Deployed as `on-demand-report/re-render` in prefect.yaml. Parameters left at None fall back to the
HOTPATCH_AUDIT_* environment, then to the defaults in config.Settings.

Run once without a server:  python flows/on_demand_report.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger

from flows import tasks
from flows.monthly_audit import Format, settings_from
from hotpatch_audit.errors import LedgerError


@flow(name="on-demand-report")
def on_demand_report(
    run_id: str | None = None,
    formats: list[Format] | None = None,
    language: Literal["en", "ja"] | None = None,
    timezone: str | None = None,
    ledger_path: Path | None = None,
    out_dir: Path | None = None,
) -> list[Path]:
    """Render one run (default: the latest good run) in the given formats, language and time zone."""
    logger = get_run_logger()
    settings = settings_from(
        formats=formats, language=language, timezone=timezone, ledger_path=ledger_path, out_dir=out_dir
    )
    chosen = run_id or tasks.pick_run(settings)
    if chosen is None:
        raise LedgerError(f"{settings.path(settings.ledger_path)}: no succeeded run to render")
    paths = tasks.render(settings, chosen)
    logger.info("run %s rendered: %s", chosen, ", ".join(p.name for p in paths))
    return paths


if __name__ == "__main__":
    on_demand_report()
