"""Month over month: how findings changed between two runs of one scope (audit.finding_changes_between)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from hotpatch_audit.errors import ConfigError, LedgerError

CHANGES: tuple[str, ...] = ("new", "regressed", "still_open", "fixed", "unknown", "waived")
CHANGE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "previous_run_id",
    "scope",
    "as_of",
    "previous_as_of",
    "finding_id",
    "audit",
    "code",
    "machine_id",
    "machine_name",
    "owner",
    "month",
    "change",
    "status_before",
    "status_now",
    "severity",
    "reason",
    "change_detail",
    "first_open_as_of",
)  # the leading columns of audit.finding_changes / _between, in order (then reason_key, params)
GOOD_STATUSES = ("succeeded", "incomplete")


@dataclass(frozen=True)
class RunRef:
    """One meta.runs row, as far as a diff needs it."""

    run_id: str
    scope: str
    as_of: Any
    status: str
    is_monthly: bool


@dataclass(frozen=True)
class Diff:
    """The changes between run_a (earlier) and run_b (later) of one scope."""

    run_a: RunRef
    run_b: RunRef
    rows: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per audit: change -> count (every change kind present, zeros included)."""
        by_audit: dict[str, Counter[str]] = {}
        for r in self.rows:
            by_audit.setdefault(str(r["audit"]), Counter())[str(r["change"])] += 1
        return {a: {c: int(n[c]) for c in CHANGES} for a, n in sorted(by_audit.items())}


def _run(con: duckdb.DuckDBPyConnection, run_id: str) -> RunRef:
    row = con.execute(
        "select run_id, scope, as_of, status, is_monthly from meta.runs where run_id = ?", [run_id]
    ).fetchone()
    if row is None:
        raise ConfigError(f"no run {run_id!r} in the ledger")
    return RunRef(str(row[0]), str(row[1]), row[2], str(row[3]), bool(row[4]))


def default_runs(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The latest good monthly run and the previous good monthly run of the same scope."""
    latest = con.execute(
        "select run_id from meta.runs where status in ('succeeded', 'incomplete') and is_monthly "
        "order by as_of desc, started_at desc limit 1"
    ).fetchone()
    if latest is None:
        raise LedgerError("no good monthly run in the ledger: nothing to compare")
    pair = con.execute(
        "select previous_run_id from audit.finding_run_pairs where run_id = ?", [latest[0]]
    ).fetchone()
    if pair is None or pair[0] is None:
        raise LedgerError(f"run {latest[0]} is the first monthly run of its scope: nothing to compare")
    return str(pair[0]), str(latest[0])


def resolve_runs(con: duckdb.DuckDBPyConnection, run_a: str | None, run_b: str | None) -> tuple[RunRef, RunRef]:
    """Check the two runs (or pick the default pair); refuse unknown runs, mixed scopes and wrong order."""
    if (run_a is None) != (run_b is None):
        raise ConfigError("give both RUN_A and RUN_B, or neither (latest vs previous monthly run)")
    if run_a is None or run_b is None:
        run_a, run_b = default_runs(con)
    a, b = _run(con, run_a), _run(con, run_b)
    if a.run_id == b.run_id:
        raise ConfigError(f"RUN_A and RUN_B are the same run {a.run_id!r}")
    if a.scope != b.scope:
        raise ConfigError(
            f"runs of different scopes cannot be compared: {a.run_id} is {a.scope!r}, {b.run_id} is {b.scope!r}"
        )
    if not a.as_of < b.as_of:
        raise ConfigError(f"RUN_A must be earlier than RUN_B: {a.run_id} is as of {a.as_of}, {b.run_id} {b.as_of}")
    for r in (a, b):
        if r.status not in GOOD_STATUSES:
            raise ConfigError(f"run {r.run_id} has status {r.status}: only succeeded or incomplete runs compare")
    return a, b


def diff_runs(
    con: duckdb.DuckDBPyConnection,
    run_a: str | None = None,
    run_b: str | None = None,
    *,
    changes: tuple[str, ...] | None = None,
) -> Diff:
    """The changes between run_a and run_b (default: latest good monthly run vs the previous one)."""
    if changes and (bad := sorted(set(changes) - set(CHANGES))):
        raise ConfigError(f"unknown change kind(s) {bad}: use {', '.join(CHANGES)}")
    a, b = resolve_runs(con, run_a, run_b)
    sql = f"""
        select {", ".join(CHANGE_COLUMNS)} from audit.finding_changes_between($1, $2)
        where $3::varchar[] is null or list_contains($3::varchar[], change)
        order by case change {" ".join(f"when '{c}' then {i}" for i, c in enumerate(CHANGES))} end,
                 audit, machine_name, code, month nulls last, finding_id
    """
    cur = con.execute(sql, [a.run_id, b.run_id, list(changes) if changes else None])
    names = [d[0] for d in cur.description or ()]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return Diff(run_a=a, run_b=b, rows=rows)
