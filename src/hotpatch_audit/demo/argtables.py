"""The Azure Resource Graph tables the product reads, as the demo fleet and emulator hold them."""

from __future__ import annotations

import duckdb

# Resource Graph table names (lower case, as KQL names them) and the envelope every row carries.
# `properties`, `tags` and the other nested values are JSON; `type` is lower case, `id` keeps ARM casing.
ARG_TABLES: tuple[str, ...] = (
    "resources",
    "resourcecontainers",
    "patchassessmentresources",
    "patchinstallationresources",
    "maintenanceresources",
    "guestconfigurationresources",
)

ENVELOPE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR"),
    ("name", "VARCHAR"),
    ("type", "VARCHAR"),
    ("tenantId", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("location", "VARCHAR"),
    ("resourceGroup", "VARCHAR"),
    ("subscriptionId", "VARCHAR"),
    ("managedBy", "VARCHAR"),
    ("sku", "JSON"),
    ("plan", "JSON"),
    ("properties", "JSON"),
    ("tags", "JSON"),
    ("identity", "JSON"),
    ("zones", "JSON"),
    ("extendedLocation", "JSON"),
)


def create_arg_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the empty Resource Graph tables (idempotent) in the connection's default schema."""
    cols = ", ".join(f'"{name}" {typ}' for name, typ in ENVELOPE_COLUMNS)
    for table in ARG_TABLES:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
