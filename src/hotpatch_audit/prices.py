"""The hotpatch price table (data/prices.csv): read, validate and load into ref.prices.

One row per product and track with a price per core per month in USD and the dates it was in force
(valid_from and valid_to inclusive; an empty valid_to is open-ended). The cost report prices a month
at the row in force on the month's first day (docs/cost.md).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from hotpatch_audit.duck import delete_rows
from hotpatch_audit.errors import ConfigError

PRICES_FILE = Path("data") / "prices.csv"
PRICE_COLUMNS: tuple[str, ...] = (
    "product", "track", "price_per_core_month_usd", "valid_from", "valid_to", "verified", "source",
    "source_url", "notes",
)
PRODUCTS = frozenset({"azure_edition", "arc_hotpatch"})
TRACKS = frozenset({"ws2025", "ws2022-azure-edition"})
OPEN_END = date(9999, 12, 31)


@dataclass(frozen=True)
class PriceRow:
    """One validated price row."""

    line: int
    product: str
    track: str
    price: Decimal
    valid_from: date
    valid_to: date | None
    verified: bool
    source: str
    source_url: str
    notes: str


def _date(text: str, where: str, column: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: {column} {text!r} is not a date (YYYY-MM-DD)") from None


def read_prices(path: Path) -> list[PriceRow]:
    """Read and validate the price table; raise ConfigError naming file, line and field on the first problem.

    Rules: known product and track, a price >= 0, valid_from <= valid_to, verified true/false, a verified
    row names its source, and no two rows of the same product and track overlap in time.
    """
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        if missing := [c for c in PRICE_COLUMNS if c not in header]:
            raise ConfigError(f"{path}: missing columns {missing}")
        rows: list[PriceRow] = []
        for line, raw in enumerate(reader, start=2):
            v = {k: (raw.get(k) or "").strip() for k in PRICE_COLUMNS}
            where = f"{path}:{line}"
            if v["product"] not in PRODUCTS:
                raise ConfigError(f"{where}: product {v['product']!r} is not one of {sorted(PRODUCTS)}")
            if v["track"] not in TRACKS:
                raise ConfigError(f"{where}: track {v['track']!r} is not one of {sorted(TRACKS)}")
            try:
                price = Decimal(v["price_per_core_month_usd"])
            except InvalidOperation:
                raise ConfigError(f"{where}: price_per_core_month_usd {v['price_per_core_month_usd']!r} "
                                  "is not a number") from None
            if not price.is_finite() or price < 0:
                raise ConfigError(f"{where}: price_per_core_month_usd must be a number >= 0")
            valid_from = _date(v["valid_from"], where, "valid_from")
            valid_to = _date(v["valid_to"], where, "valid_to") if v["valid_to"] else None
            if valid_to is not None and valid_to < valid_from:
                raise ConfigError(f"{where}: valid_to {valid_to} is before valid_from {valid_from}")
            if v["verified"].lower() not in ("true", "false"):
                raise ConfigError(f"{where}: verified must be true or false, not {v['verified']!r}")
            verified = v["verified"].lower() == "true"
            if verified and not (v["source"] or v["source_url"]):
                raise ConfigError(f"{where}: a verified row needs a source")
            rows.append(PriceRow(line, v["product"], v["track"], price, valid_from, valid_to, verified,
                                 v["source"], v["source_url"], v["notes"]))
    by_key: dict[tuple[str, str], list[PriceRow]] = {}
    for r in rows:
        by_key.setdefault((r.product, r.track), []).append(r)
    for (product, track), group in by_key.items():
        group.sort(key=lambda r: r.valid_from)
        for a, b in zip(group, group[1:], strict=False):
            if b.valid_from <= (a.valid_to or OPEN_END):
                raise ConfigError(f"{path}:{b.line}: {product} {track} from {b.valid_from} overlaps the row "
                                  f"of line {a.line} ({a.valid_from} to {a.valid_to or 'open'})")
    return rows


def load_prices(con: duckdb.DuckDBPyConnection, project_root: Path) -> int:
    """Replace ref.prices with the validated rows of data/prices.csv; return the count."""
    rows = read_prices(project_root / PRICES_FILE)
    con.execute(
        """create table if not exists ref.prices (
            product varchar not null, track varchar not null, price_per_core_month_usd decimal(12, 4) not null,
            valid_from date not null, valid_to date, verified boolean not null, source varchar,
            source_url varchar, notes varchar)"""
    )
    con.execute(
        "comment on table ref.prices is 'Hotpatch licence prices (data/prices.csv): per product (azure_edition, "
        "arc_hotpatch) and track, USD per core per month, in force from valid_from to valid_to (inclusive; null: "
        "open), with source and whether it was verified. report.reboot_cost_by_month prices each month at the row in "
        "force on its first day.'"
    )
    delete_rows(con, "delete from ref.prices")
    con.executemany(
        "insert into ref.prices values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.product, r.track, r.price, r.valid_from, r.valid_to, r.verified, r.source or None,
          r.source_url or None, r.notes or None) for r in rows],
    )
    return len(rows)


def prices_version(project_root: Path) -> str:
    """The price table's version: the first 12 hex digits of the SHA-256 of data/prices.csv.

    Costs are priced by the report views from ref.prices, which holds this file (re-applied whenever it
    changes), so the version a report shows is the one of the checkout that rendered it:
    `sha256sum data/prices.csv | cut -c1-12` gives the same.
    """
    return hashlib.sha256((project_root / PRICES_FILE).read_bytes()).hexdigest()[:12]
