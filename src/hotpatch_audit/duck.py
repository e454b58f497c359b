"""The one place DuckDB connections are opened: UTC, a memory limit, spilling to disk beyond it."""

from __future__ import annotations

from pathlib import Path

import duckdb

DEFAULT_MEMORY_LIMIT = "1GB"


def connect(path: Path | str = ":memory:", *, read_only: bool = False,
            memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the project's session settings.

    DuckDB's own default takes 80% of RAM; a bounded limit keeps a 100,000-machine run within budget
    and makes large joins and sorts spill to a temporary directory next to the file instead.
    """
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
    if str(path) != ":memory:":
        config["temp_directory"] = str(Path(str(path) + ".tmp"))
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con
