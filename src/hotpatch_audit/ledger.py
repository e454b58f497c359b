"""The DuckDB ledger: locking, run bookkeeping and atomic loading of snapshot pages into raw tables.

Writers take an exclusive lock on `<ledger>.lock` and wait their turn with a message; readers take a
shared lock and open the file read-only (portalocker: flock() on POSIX, LockFileEx on Windows). DuckDB
itself allows one read-write process per file, so holding the lock only while writing keeps the scheduled
audit and an analyst's query from colliding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import portalocker

from hotpatch_audit.analyze import MATERIALIZED, REGISTERS_MATERIALIZED
from hotpatch_audit.duck import DEFAULT_MEMORY_LIMIT, STORAGE_VERSION, allow_vacuum, connect, delete_rows, sql_literal
from hotpatch_audit.errors import LedgerBusyError, LedgerError, SnapshotError
from hotpatch_audit.extract import Snapshot
from hotpatch_audit.files import pid_alive
from hotpatch_audit.progress import step
from hotpatch_audit.waivers import WaiverFile

log = logging.getLogger(__name__)

RAW_PREFIX = "raw."
# Longest text a raw field may hold: ARM names are at most 80 characters and ids about 1,000; an error message
# or a tag value is far below this. Longer text is malformed input (and would exhaust DuckDB's memory later).
MAX_FIELD_CHARS = 32_768
MAX_JSON_FIELD_CHARS = 1_048_576
# every table holding a run's judged rows, deleted with the run
PER_RUN_TABLES = ("audit.findings", *MATERIALIZED, *REGISTERS_MATERIALIZED)
GOOD_STATUSES = ("succeeded", "incomplete")


def _lock_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".lock")


@contextlib.contextmanager
def ledger_lock(
    ledger: Path,
    *,
    exclusive: bool,
    timeout: float,
    on_wait: Callable[[str], None] | None = None,
    holder: str = "",
) -> Iterator[None]:
    """Hold the ledger's lock file (exclusive for writers, shared for readers), waiting up to `timeout`.

    A ledger in a folder this process cannot write (a read-only copy, a read-only mount) has no lock file to
    take: readers then go ahead without one (nothing can write there either); writers fail at the lock."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    if not exclusive and not os.access(ledger.parent, os.W_OK):
        yield
        return
    with _file_lock(_lock_path(ledger), exclusive=exclusive, timeout=timeout, on_wait=on_wait, holder=holder,
                    what=f"the ledger {ledger.name}",
                    busy=lambda who: f"{ledger} is busy ({who}); gave up after {timeout:.0f} s. "
                    "Try again when it finishes, or raise HOTPATCH_AUDIT_LOCK_TIMEOUT_SECONDS."):
        yield


@contextlib.contextmanager
def turn_lock(
    ledger: Path, key: str, *, timeout: float, on_wait: Callable[[str], None] | None = None, holder: str = ""
) -> Iterator[None]:
    """One run at a time per key (scope and as-of) on this ledger, held for the whole run: a second run of the
    same scope and as-of waits for the first to finish (up to `timeout`), then runs against its result."""
    folder = ledger.with_name(ledger.name + ".turns")
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + ".lock")
    with _file_lock(lock, exclusive=True, timeout=timeout, on_wait=on_wait, holder=holder,
                    what=f"another run of the same scope and as-of ({key})",
                    busy=lambda who: f"another run of the same scope and as-of ({who}) is still going after "
                    f"{timeout:.0f} s; try again when it finishes, or raise HOTPATCH_AUDIT_LOCK_TIMEOUT_SECONDS"):
        yield


@contextlib.contextmanager
def _file_lock(
    lock: Path, *, exclusive: bool, timeout: float, on_wait: Callable[[str], None] | None, holder: str, what: str,
    busy: Callable[[str], str],
) -> Iterator[None]:
    """Lock a lock file (portalocker: flock() on POSIX, LockFileEx on Windows; shared or exclusive), waiting up
    to `timeout` with a note every 5 s; the holder is written beside it."""
    info = lock.with_name(lock.name + ".info")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LedgerError(f"cannot create the lock file {lock}: {exc.strerror or exc}") from exc
    flags = portalocker.LockFlags
    mode = (flags.EXCLUSIVE if exclusive else flags.SHARED) | flags.NON_BLOCKING
    started = time.monotonic()
    next_note = 0.0
    try:
        while True:
            try:
                portalocker.lock(fd, mode)
                break
            except portalocker.AlreadyLocked:
                waited = time.monotonic() - started
                try:
                    who = info.read_text(encoding="utf-8").strip() if info.exists() else "another process"
                except OSError:
                    who = "another process"
                if waited >= timeout:
                    raise LedgerBusyError(busy(who)) from None
                if waited >= next_note:
                    msg = f"waiting for {what}: in use by {who} ({waited:.0f} s so far)"
                    log.warning(msg)
                    if on_wait:
                        on_wait(msg)
                    next_note = waited + 5
                time.sleep(0.2)
            except portalocker.LockException as exc:  # not contention: the file system cannot lock
                raise LedgerError(f"cannot lock {lock}: {_first_line(exc)}") from exc
        if exclusive:
            with contextlib.suppress(OSError):
                info.write_text(f"writer pid {os.getpid()} {holder}".strip(), encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError, portalocker.LockException):
            portalocker.unlock(fd)
        os.close(fd)


def _connect(ledger: Path, read_only: bool, timeout: float, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while a process that ignores our lock (e.g. the duckdb CLI) holds it. A file
    DuckDB cannot open (corrupt, truncated, a damaged WAL, not a DuckDB file, no permission) is a LedgerError
    naming it, in one line; the file is left as it is."""
    started = time.monotonic()
    while True:
        try:
            return connect(ledger, read_only=read_only, memory_limit=memory_limit)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() - started > timeout:
                raise LedgerError(f"cannot open the ledger {ledger}: {_first_line(exc)}") from exc
            time.sleep(0.5)
        except duckdb.Error as exc:
            raise LedgerError(f"cannot open the ledger {ledger}: {_first_line(exc)} (the file is left as it is; "
                              "restore it from a backup, or point --ledger at another file)") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip().lstrip("v").rstrip("+").split(".") if p.isdigit())


def storage_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The storage format of the connection's database file as DuckDB names it (e.g. 'v1.0.0+')."""
    row = con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = "
                      "current_database()").fetchone()
    return str(row[0]) if row and row[0] else None


def _storage_differs(con: duckdb.DuckDBPyConnection) -> bool:
    """The file is in another storage format than STORAGE_VERSION: a newer one (DuckDB 1.x tools refuse it) or an
    older one (DuckDB keeps a file in the format it was created in, and the older formats lack the string
    compression STORAGE_VERSION was chosen for)."""
    found = storage_version(con)
    return found is not None and _version_tuple(found) != _version_tuple(STORAGE_VERSION)


def convert_storage(ledger: Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT,
                    on_wait: Callable[[str], None] | None = None) -> None:
    """Rewrite a ledger written in another storage format by an earlier version of this tool (DuckDB 2's newest,
    which DuckDB 1.x refuses, or v1.0.0) in STORAGE_VERSION. Call with the writer's lock held and no connection
    open.

    Every object is copied to `<ledger>.convert` (COPY FROM DATABASE keeps views, macros and comments); every
    table's row count and content hash must match the original before the copy replaces it (an atomic rename);
    on any failure the original is left exactly as it was and the partial copy removed."""
    tmp = ledger.with_name(ledger.name + ".convert")
    msg = (f"converting {ledger.name} to DuckDB storage {STORAGE_VERSION}, which DuckDB 1.3 and later open "
           f"(once, {ledger.stat().st_size / 1e6:,.0f} MB)")
    log.warning(msg)
    if on_wait:
        on_wait(msg)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = connect(":memory:", memory_limit=memory_limit)
    try:
        con.execute(f"ATTACH {sql_literal(str(ledger))} AS src (READ_ONLY)")
        con.execute(f"ATTACH {sql_literal(str(tmp))} AS dst (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("COPY FROM DATABASE src TO dst")
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src'"
                             " ORDER BY ALL").fetchall()
        for schema, table in tables:
            check = f'SELECT count(*), bit_xor(hash(t)) FROM {{}}."{schema}"."{table}" t'
            before, after = (con.execute(check.format(db)).fetchone() for db in ("src", "dst"))
            if before != after:
                raise LedgerError(f"converting {ledger}: {schema}.{table} differs in the copy; the ledger is left "
                                  "as it was")
        con.execute("DETACH dst")
        con.execute("DETACH src")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, ledger)
    log.warning("converted %s to DuckDB storage %s", ledger, STORAGE_VERSION)


@contextlib.contextmanager
def open_writer(
    ledger: Path, project_root: Path, *, timeout: float = 600.0, holder: str = "",
    on_wait: Callable[[str], None] | None = None, memory_limit: str = DEFAULT_MEMORY_LIMIT,
    calendar_override: Path | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Exclusive, read-write connection with the schema and views applied."""
    with ledger_lock(ledger, exclusive=True, timeout=timeout, on_wait=on_wait, holder=holder):
        con = _connect(ledger, read_only=False, timeout=timeout, memory_limit=memory_limit)
        if _storage_differs(con):
            con.close()
            convert_storage(ledger, memory_limit=memory_limit, on_wait=on_wait)
            con = _connect(ledger, read_only=False, timeout=timeout, memory_limit=memory_limit)
        try:
            ensure_schema(con, project_root, calendar_override)
            yield con
        finally:
            con.close()


def sql_fingerprint(project_root: Path, calendar_override: Path | None = None) -> str:
    """SHA-256 over every file that defines the ledger (sql/ with the audits' metadata, data/, the calendar
    override), so unchanged definitions are not re-applied."""
    digest = hashlib.sha256()
    sql_dir = project_root / "sql"
    for path in sorted([*sql_dir.rglob("*.sql"), *sql_dir.rglob("*.toml"), *(project_root / "data").rglob("*.csv")]):
        digest.update(path.relative_to(project_root).as_posix().encode())
        digest.update(path.read_bytes())
    if calendar_override is not None and calendar_override.exists():
        digest.update(b"override")
        digest.update(calendar_override.read_bytes())
    return digest.hexdigest()


def ensure_schema(con: duckdb.DuckDBPyConnection, project_root: Path, calendar_override: Path | None = None) -> None:
    """Apply sql/ and the reference data when they changed since the ledger last saw them."""
    from hotpatch_audit.analyze import apply_sql, materialize_registers, materialize_run

    fingerprint = sql_fingerprint(project_root, calendar_override)
    try:
        row = con.execute("SELECT fingerprint FROM meta.schema_state").fetchone()
    except duckdb.CatalogException:
        row = None
    if row and row[0] == fingerprint:
        return
    apply_sql(con, project_root, calendar_override)
    allow_vacuum(con)  # the reference tables were reloaded (their rows deleted in sql/), and the views rebuilt
    _migrate_guest_facts(con)
    # Definitions changed: rebuild the per-run stored tables (core.machines ..., audit.machine_months ...) of every
    # judged run (findings stay as judged); a run judged without findings has core rows all the same.
    for (run_id,) in con.execute(
        "SELECT run_id FROM meta.runs WHERE status IN ('succeeded', 'incomplete', 'superseded') ORDER BY as_of"
    ).fetchall():
        materialize_run(con, run_id)
        materialize_registers(con, run_id)
    con.execute("CREATE TABLE IF NOT EXISTS meta.schema_state (fingerprint VARCHAR, applied_at TIMESTAMP)")
    con.execute("COMMENT ON TABLE meta.schema_state IS 'Fingerprint of the sql/ and data/ files last applied to"
                " this ledger (definitions are re-applied when they change).'")
    delete_rows(con, "DELETE FROM meta.schema_state")
    con.execute("INSERT INTO meta.schema_state VALUES (?, ?)", [fingerprint, datetime.now(UTC).replace(tzinfo=None)])


@contextlib.contextmanager
def open_reader(
    ledger: Path, *, timeout: float = 600.0, on_wait: Callable[[str], None] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Shared, read-only connection; waits while a writer is busy."""
    if not ledger.exists():
        raise LedgerError(f"{ledger}: no ledger yet (run an audit first)")
    with ledger_lock(ledger, exclusive=False, timeout=timeout, on_wait=on_wait):
        con = _connect(ledger, read_only=True, timeout=timeout, memory_limit=memory_limit)
        try:
            yield con
        finally:
            con.close()


def raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the raw tables (without schema)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def register_run(
    con: duckdb.DuckDBPyConnection, *, run_id: str, scope: str, as_of: datetime, source: str,
    tool_version: str, calendar_version: str, is_monthly: bool, settings: dict[str, str],
) -> None:
    """Record a new run as `running`, with the rules, calendar and prices it will be judged by; mark abandoned runs
    failed (keeping an error already recorded)."""
    con.execute("BEGIN")
    abandoned = [
        r[0] for r in con.execute(
            "SELECT run_id, host, pid FROM meta.runs WHERE status IN ('running', 'loaded')"
        ).fetchall()
        if r[1] != socket.gethostname() or not pid_alive(r[2])
    ]
    for old in abandoned:
        for table in raw_tables(con):
            delete_rows(con, f"DELETE FROM raw.{table} WHERE run_id = ?", [old])
        con.execute(
            "UPDATE meta.runs SET status = 'failed', error = coalesce(error, 'abandoned: the process ended before"
            " the run finished'), finished_at = coalesce(finished_at, ?) WHERE run_id = ?",
            [datetime.now(UTC).replace(tzinfo=None), old],
        )
    con.execute(
        "INSERT INTO meta.runs (run_id, scope, as_of, source, tool_version, calendar_version, started_at,"
        " status, is_monthly, settings, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
        [run_id, scope, _naive_utc(as_of), source, tool_version, calendar_version,
         datetime.now(UTC).replace(tzinfo=None), is_monthly, json.dumps(settings), socket.gethostname(),
         os.getpid()],
    )
    if settings:
        con.executemany("INSERT INTO meta.settings VALUES (?, ?, ?)", [[run_id, k, v] for k, v in settings.items()])
    # The calendar and prices the run is judged with stay with it (core.run_calendar, core.run_prices): a later
    # checkout's calendar never re-judges or re-renders it.
    con.execute("INSERT INTO meta.run_calendar BY NAME SELECT ?::VARCHAR AS run_id, * FROM ref.calendar", [run_id])
    con.execute("INSERT INTO meta.run_prices BY NAME SELECT ?::VARCHAR AS run_id, * FROM ref.prices", [run_id])
    con.execute("COMMIT")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; a ROLLBACK that fails too (disk full, lost file) is logged, never raised,
    so the error that caused it is the one the caller records and reports."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        # after a failed COMMIT DuckDB has already ended the transaction: nothing to roll back
        log.debug("rollback: %s", exc)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def raw_schema(project_root: Path) -> dict[str, list[tuple[str, str]]]:
    """Every raw table's columns (name, DuckDB type; run_id left out) as sql/00_schema.sql declares them, read
    without a ledger (for checking a snapshot before a run is registered)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute((project_root / "sql" / "00_schema.sql").read_text(encoding="utf-8"))
        return {table: _raw_columns(con, table) for table in raw_tables(con)}
    finally:
        con.close()


def _raw_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw'"
        " AND table_name = ? AND column_name <> 'run_id' ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise LedgerError(f"no raw table raw.{table} in the ledger schema (sql/00_schema.sql)")
    return [(r[0], r[1]) for r in rows]


def _diagnose_pages(files: list[Path]) -> str:
    """Find the first page file that is not a valid Resource Graph page, for a precise message."""
    for path in files:
        try:
            body = json.loads(path.read_bytes())
        except json.JSONDecodeError as exc:
            return f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        except UnicodeDecodeError as exc:
            return f"{path}: not UTF-8 text (byte {exc.start})"
        except RecursionError:
            return f"{path}: JSON nested too deeply"
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return f"{path}: not a Resource Graph page (no data array)"
        for i, row in enumerate(body["data"], start=1):
            if not isinstance(row, dict):
                return f"{path}: row {i} is not an object"
    return "pages could not be read"


def load_query_pages(
    con: duckdb.DuckDBPyConnection, run_id: str, table: str, files: list[Path], expected_rows: int
) -> int:
    """Insert the rows of one query's page files into raw.<table>, validating every row's shape.

    Must run inside the caller's transaction. Raises SnapshotError naming the file and row.
    """
    columns = _raw_columns(con, table)
    if not files:
        if expected_rows:
            raise SnapshotError(f"{table}: manifest announces {expected_rows} rows but there are no pages")
        return 0
    paths = [str(p) for p in files]
    try:
        # DuckDB's JSON reader cuts each row into its declared fields in one pass, each kept as JSON (its text
        # as sent, quotes and all), so the checks below see what Resource Graph sent (text, number, object...)
        # and no row is re-serialised or parsed again per column.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _stage AS SELECT filename, generate_subscripts(data, 1) AS idx,"
            " unnest(data) AS r FROM read_json(?, columns = {'data': ?}, filename = true, format = 'auto')",
            [paths, row_struct(columns)],
        )
    except duckdb.Error as exc:
        found = _diagnose_pages(files)
        if found == "pages could not be read":
            found = f"{table}: pages could not be read: {str(exc).splitlines()[0]}"
        raise SnapshotError(found) from exc
    bad = con.execute(
        f"SELECT filename, idx, problem FROM (SELECT filename, idx, {row_checks(columns)} AS problem FROM _stage)"
        " WHERE problem IS NOT NULL ORDER BY filename, idx LIMIT 1"
    ).fetchone()
    if bad:
        raise SnapshotError(f"{bad[0]}: row {bad[1]}: {bad[2]}")
    select = []
    for name, typ in columns:
        if typ == "JSON":
            select.append(f"nullif(r.\"{name}\", 'null'::JSON)")
        else:
            select.append(f"r.\"{name}\"->>'$'")
    names = ", ".join(f'"{n}"' for n, _ in columns)
    counted = con.execute("SELECT count(*), count(DISTINCT lower(r.id->>'$')) FROM _stage").fetchone()
    received, loaded = (int(counted[0]), int(counted[1])) if counted else (0, 0)
    # A row Resource Graph sent twice (paging over data that moved) is loaded once; the query is already
    # marked incomplete by the source, which counted the duplicates. The window runs only then: it holds
    # every staged row in memory.
    once = (" QUALIFY row_number() OVER (PARTITION BY lower(r.id->>'$') ORDER BY filename, idx) = 1"
            if loaded != received else "")
    con.execute(
        f"INSERT INTO raw.{table} (run_id, {names}) SELECT ?, {', '.join(select)} FROM _stage{once}", [run_id]
    )
    con.execute("DROP TABLE _stage")
    if received != expected_rows:
        raise SnapshotError(f"{table}: manifest announces {expected_rows} rows, pages hold {received}")
    if loaded != received:
        log.warning("%s: %d rows repeat an id already received; each id is loaded once", table, received - loaded)
    return loaded


def row_struct(columns: list[tuple[str, str]]) -> str:
    """The DuckDB type a page's data array is read as: a list of rows, each a struct of the raw table's columns
    (id first) with every field typed JSON, so a field keeps the JSON it was sent as."""
    names = ["id", *(name for name, _ in columns if name != "id")]
    fields = ", ".join('"' + name.replace('"', '""') + '" JSON' for name in names)
    return f"STRUCT({fields})[]"


def row_checks(columns: list[tuple[str, str]]) -> str:
    """A SQL CASE over a staged row `r` (a struct of JSON fields, row_struct) naming its first problem, NULL when
    the row has the shape the raw table declares: an object with a text id, text (or null) in every text column,
    an object or array (or null) in every JSON column, no field longer than MAX_FIELD_CHARS (JSON:
    MAX_JSON_FIELD_CHARS)."""
    checks = ["CASE WHEN r IS NULL THEN 'the row is not an object'",
              "WHEN json_type(r.id) IS DISTINCT FROM 'VARCHAR' OR r.id->>'$' = '' THEN 'the row has no id'"]
    for name, typ in columns:
        field = f'r."{name}"'
        kind = (f"CASE json_type({field}) WHEN 'VARCHAR' THEN 'text' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT'"
                f" THEN 'object' WHEN 'ARRAY' THEN 'array' ELSE 'number' END")
        if typ == "JSON":
            checks.append(
                f"WHEN json_type({field}) NOT IN ('OBJECT', 'ARRAY', 'NULL') "
                f"THEN 'field {name} is ' || {kind} || ', expected an object or array'"
            )
            checks.append(
                f"WHEN length(CAST({field} AS VARCHAR)) > {MAX_JSON_FIELD_CHARS} "
                f"THEN 'field {name} is ' || length(CAST({field} AS VARCHAR)) || ' characters long "
                f"(at most {MAX_JSON_FIELD_CHARS:,})'"
            )
        else:
            checks.append(
                f"WHEN json_type({field}) NOT IN ('VARCHAR', 'NULL') "
                f"THEN 'field {name} is ' || {kind} || ', expected text'"
            )
            # the JSON text is at least as long as the value: only a long one is unescaped to count exactly
            checks.append(
                f"WHEN length(CAST({field} AS VARCHAR)) > {MAX_FIELD_CHARS} "
                f"AND length({field}->>'$') > {MAX_FIELD_CHARS} "
                f"THEN 'field {name} is ' || length({field}->>'$') || ' characters long "
                f"(at most {MAX_FIELD_CHARS:,})'"
            )
    return " ".join(checks) + " END"


def load_snapshot(con: duckdb.DuckDBPyConnection, run_id: str, snap: Snapshot) -> dict[str, int]:
    """Atomically load every query of a snapshot for `run_id`: all rows and stats, or nothing."""
    counts: dict[str, int] = {}
    con.execute("BEGIN")
    try:
        for table in raw_tables(con):
            delete_rows(con, f"DELETE FROM raw.{table} WHERE run_id = ?", [run_id])
        delete_rows(con, "DELETE FROM meta.query_stats WHERE run_id = ?", [run_id])
        for name, q in snap.queries.items():
            files = sorted((snap.directory / name).glob("page-*.json"))
            counts[name] = load_query_pages(con, run_id, name, files, q.rows)
            step("load", name, counts[name])
            con.execute(
                "INSERT INTO meta.query_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, name, q.file, q.sha256, q.pages, q.rows, q.total_records, q.complete, q.error,
                 q.started_at or None, q.finished_at or None],
            )
        parse_guest_configuration_reports(con, run_id)
        con.execute("UPDATE meta.runs SET status = 'loaded' WHERE run_id = ?", [run_id])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return counts


def parse_guest_configuration_reports(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> int:
    """Copy the run's Machine Configuration reports, their phrases parsed (core.guest_configuration_facts),
    into raw.guest_facts, replacing the run's earlier copy; with no run id, every run that has reports but no
    parsed rows yet (older ledgers)."""
    if run_id is not None:
        where, args = "run_id = ?", [run_id]
        delete_rows(con, f"DELETE FROM raw.guest_facts WHERE source = 'machine_configuration' AND {where}", args)
    else:
        where, args = "run_id NOT IN (SELECT DISTINCT run_id FROM raw.guest_facts WHERE run_id IS NOT NULL)", []
    row = con.execute(
        f"INSERT INTO raw.guest_facts BY NAME SELECT *, ?::TIMESTAMP AS loaded_at"  # noqa: S608 (fixed text)
        f" FROM core.guest_configuration_facts WHERE {where}",
        [datetime.now(UTC).replace(tzinfo=None), *args],
    ).fetchone()
    return int(row[0]) if row else 0


def _migrate_guest_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Ledgers written before raw.guest_facts kept imported facts in raw.imported_guest_facts and parsed
    Machine Configuration phrases only in a view: move the imports over and parse the reports of every run."""
    from hotpatch_audit.guest_facts import FACT_KEYS

    old = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'"
        " AND table_name = 'imported_guest_facts'"
    ).fetchone()
    if old and old[0]:
        facts = ", ".join(k.column for k in FACT_KEYS)
        phrase = ", ".join(f"'{k.key}=' || {k.column}" for k in FACT_KEYS)
        con.execute(
            f"INSERT INTO raw.guest_facts (run_id, source, report_id, import_id, source_file, line, machine_id,"
            f" collected_at, {facts}, phrases, loaded_at)"
            f" SELECT NULL, 'import', 'import:' || source_file || ':' || line, import_id, source_file, line,"
            f" machine_id, collected_at, {facts}, concat_ws(' ', {phrase}), imported_at"
            f" FROM raw.imported_guest_facts"
        )
        con.execute("DROP TABLE raw.imported_guest_facts")
    parse_guest_configuration_reports(con)


def run_rank(con: duckdb.DuckDBPyConnection, run_id: str, complete: bool | None = None) -> tuple[int, int, int]:
    """How good a run's evidence is, for choosing the run of record among runs of one scope and as-of: complete
    before incomplete, then the number of queries read whole, then the rows received."""
    row = con.execute(
        "SELECT r.status, count(q.query_name) FILTER (WHERE q.complete), coalesce(sum(q.rows_received), 0)"
        " FROM meta.runs r LEFT JOIN meta.query_stats q USING (run_id) WHERE r.run_id = ? GROUP BY r.status",
        [run_id],
    ).fetchone()
    if row is None:
        raise LedgerError(f"run {run_id} is not in meta.runs")
    is_complete = complete if complete is not None else row[0] == "succeeded"
    return (2 if is_complete else 1, int(row[1] or 0), int(row[2] or 0))


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, complete: bool, waivers: WaiverFile | None = None
) -> tuple[str, int]:
    """Materialize findings (waivers applied) and close the run; return its status and findings count.

    Runs of the same scope and as-of compete for "run of record": the new run takes the place of earlier ones
    only when it is at least as good (run_rank); their rows are then removed and their meta.runs rows stay,
    status `superseded`, naming it. A less complete re-run never replaces a better run: it is kept beside it,
    rows and all, as `superseded` by the better run, and its note says so. Failed runs are never touched.
    One transaction: if anything fails, the previous good run is still there.
    """
    from hotpatch_audit.analyze import materialize_findings

    con.execute("BEGIN")
    try:
        findings = materialize_findings(con, run_id, waivers)
        found = con.execute("SELECT scope, as_of FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
        if found is None:
            raise LedgerError(f"run {run_id} is not in meta.runs")
        scope, as_of = found
        rivals = [r[0] for r in con.execute(
            "SELECT run_id FROM meta.runs WHERE scope = ? AND as_of = ? AND run_id <> ?"
            " AND status IN ('succeeded', 'incomplete') ORDER BY started_at", [scope, as_of, run_id]
        ).fetchall()]
        mine = run_rank(con, run_id, complete)
        ranked = sorted(((run_rank(con, r), r) for r in rivals), reverse=True)
        now = datetime.now(UTC).replace(tzinfo=None)
        status = "succeeded" if complete else "incomplete"
        note = None
        if ranked and ranked[0][0] > mine:
            best = ranked[0][1]
            status = "superseded"
            note = (f"kept beside run {best}, which stays the run of record for this scope and as-of: this run was "
                    f"{'complete' if complete else 'incomplete'} and read {mine[1]} queries whole and {mine[2]:,} "
                    f"rows; {best} read {ranked[0][0][1]} and {ranked[0][0][2]:,}")
            con.execute("UPDATE meta.runs SET superseded_by = ? WHERE run_id = ?", [best, run_id])
        else:
            for _, old in ranked:
                _delete_run_rows(con, old)
                con.execute(
                    "UPDATE meta.runs SET status = 'superseded', superseded_by = ?, note = ? WHERE run_id = ?",
                    [run_id, f"replaced by run {run_id} of the same scope and as-of, which was at least as complete;"
                     " this run's rows were removed", old],
                )
            if ranked:
                note = "replaced run(s) " + ", ".join(old for _, old in ranked) + " of the same scope and as-of"
        con.execute(
            "UPDATE meta.runs SET status = ?, finished_at = ?, note = coalesce(?, note) WHERE run_id = ?",
            [status, now, note, run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    if note:
        log.info("run %s: %s", run_id, note)
    return status, findings


def _delete_run_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    for table in raw_tables(con):
        delete_rows(con, f"DELETE FROM raw.{table} WHERE run_id = ?", [run_id])
    for table in ("meta.query_stats", *PER_RUN_TABLES):
        delete_rows(con, f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # noqa: S608 (fixed names)


def fail_run(con: duckdb.DuckDBPyConnection, run_id: str, error: str) -> None:
    """Mark a run failed and drop its rows; earlier runs stay untouched. The run keeps its row and its first
    error: a later failure (e.g. while cleaning up) never overwrites the cause. A run that already finished
    (succeeded, incomplete, superseded) is left as it is."""
    con.execute("BEGIN")
    try:
        row = con.execute("SELECT status FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None or row[0] in ("succeeded", "incomplete", "superseded"):
            con.execute("COMMIT")
            return
        for table in raw_tables(con):
            delete_rows(con, f"DELETE FROM raw.{table} WHERE run_id = ?", [run_id])
        for table in PER_RUN_TABLES:
            delete_rows(con, f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # noqa: S608 (fixed names)
        con.execute(
            "UPDATE meta.runs SET status = 'failed', error = coalesce(error, ?), finished_at = ? WHERE run_id = ?",
            [error[:2000], datetime.now(UTC).replace(tzinfo=None), run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def latest_run(con: duckdb.DuckDBPyConnection, *, monthly_only: bool = False) -> str | None:
    """The newest good run (by as-of, then start time)."""
    row = con.execute(
        "SELECT run_id FROM meta.runs WHERE status IN ('succeeded', 'incomplete')"  # never superseded or failed
        + (" AND is_monthly" if monthly_only else "")
        + " ORDER BY as_of DESC, started_at DESC LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None
