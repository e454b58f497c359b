"""`hotpatch-audit import-facts FILE`: load a guest-facts inventory (CSV or JSON) into the ledger.

The lead's cli.py registers it: ``app.command("import-facts")(import_facts)``. It carries its own
error guard (same mapping as cli._guard: bad file or setting → 2, any other failure → 3) so this
module does not import cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotpatch_audit.console import err, guard, settings_from
from hotpatch_audit.guest_facts import import_facts_file, read_facts_file
from hotpatch_audit.pipeline import EXIT_OK


@guard
def import_facts(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Guest facts: CSV, JSON array of objects, or NDJSON")],
    ledger: Annotated[
        Path | None, typer.Option("--ledger", metavar="FILE", help="DuckDB ledger file [default: out/ledger.duckdb]")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the file only; do not open the ledger")
    ] = False,
) -> None:
    """Import guest facts (VBS, Windows Update policy, Hyper-V / WSL 2, firmware) from any collector.

    The file (collector/Get-HotpatchGuestFacts.ps1 writes it) is validated row by row: machine_id
    (ARM id of a VM or Arc machine) and collected_at (ISO 8601 UTC) are required, every other column
    is a key of docs/guest-facts.md; unknown columns are refused. A bad file is refused whole, with
    file, line and field named, and the ledger untouched; the same content is imported once. Runs
    audited from now on use the freshest facts collected at or before their as-of time.

    Example: hotpatch-audit import-facts facts.csv
    """
    if check:
        facts = read_facts_file(file)
        err.print(f"{file}: {len(facts.rows):,} valid rows ({facts.fmt})", highlight=False)
        raise typer.Exit(EXIT_OK)
    settings = settings_from(ledger_path=ledger)  # a bad setting: one line naming it, exit 2
    result = import_facts_file(settings, file, on_wait=lambda msg: err.print(msg, highlight=False))
    if result.already_imported:
        err.print(f"{file}: already imported on {result.imported_at:%Y-%m-%d %H:%M} UTC "
                  f"(import {result.import_id[:12]}); nothing changed", highlight=False)
    else:
        err.print(f"{file}: imported {result.rows:,} rows (import {result.import_id[:12]}) into "
                  f"{settings.path(settings.ledger_path)}; the next audit run uses them", highlight=False)
    raise typer.Exit(EXIT_OK)
