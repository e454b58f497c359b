"""The emulator's query engine: KQL over Resource Graph tables in DuckDB, scoped, cached for paging.

One in-memory DuckDB database holds nothing but temporary scope views; the fleet file is attached
read-only as `fleet`, and query results are cached as tables in a second in-memory database
`rgcache` (spilling to a temp directory when large), so later pages are a `rowid` range read. Each
execution runs on its own cursor (its own DuckDB connection with its own temp views), so requests on
different threads never share state. Bare table names in the KQL resolve only to the per-cursor
views, which apply the request's subscription scope: a query cannot see rows outside its scope.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from hotpatch_audit.demo.argtables import ARG_TABLES

# Operators after which Resource Graph stops handing out skip tokens (paging-results.md).
_NO_PAGING_OPERATORS = re.compile(r"\|\s*(take|limit|sample|sample-distinct)\b")
_COMMENT_OR_STRING = re.compile(
    r"//[^\n]*"                       # line comment
    r"|@'[^']*'|@\"[^\"]*\""          # verbatim strings
    r"|'(?:\\.|[^'\\\n])*'"           # single-quoted string
    r"|\"(?:\\.|[^\"\\\n])*\"",       # double-quoted string
)
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT", "UHUGEINT"}
_NUMBER_TYPES = {"FLOAT", "DOUBLE", "REAL"}


class ArgRequestError(Exception):
    """A request the service answers with an ARM error body (4xx)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


@dataclass
class CachedResult:
    """One executed query: its rows live in table `rgcache.<table>` in result order (rowid)."""

    rid: str
    table: str
    key: str
    total: int
    columns: list[tuple[str, str]]
    pageable: bool
    created: float
    last_used: float
    vanished: set[str] = field(default_factory=set)


def query_key(query: str, subscriptions: Sequence[str] | None) -> str:
    """Identifies a query over a scope; a skip token is only valid with the same key."""
    scope = "*" if subscriptions is None else ",".join(sorted(subscriptions))
    return hashlib.sha256(f"{scope}\n{query}".encode()).hexdigest()[:16]


def strip_comments_and_strings(kql: str) -> str:
    """KQL text with comments and string literals blanked (for operator detection)."""
    return _COMMENT_OR_STRING.sub(" ", kql)


def breaks_paging(kql: str) -> bool:
    """True when the query uses take/limit/sample, which make Resource Graph stop paging."""
    return bool(_NO_PAGING_OPERATORS.search(strip_comments_and_strings(kql)))


def column_type(duck_type: str) -> str:
    """Resource Graph's column type name for a DuckDB type (table result format)."""
    t = duck_type.upper()
    if t in ("VARCHAR", "UUID") or t.startswith("ENUM"):
        return "string"
    if t == "BOOLEAN":
        return "boolean"
    if t in _INT_TYPES:
        return "integer"
    if t in _NUMBER_TYPES or t.startswith("DECIMAL"):
        return "number"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "datetime"
    if t == "INTERVAL":
        return "timespan"
    return "object"  # JSON (dynamic), STRUCT, LIST, MAP, ...


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class QueryEngine:
    """Runs KQL for the emulator; thread-safe."""

    def __init__(self, db_path: Path | str, *, management_groups: dict[str, Sequence[str]] | None = None,
                 query_now: datetime | None = None, memory_limit: str = "1GB", max_cached_results: int = 64,
                 cache_ttl_seconds: float = 900.0, max_scope_subscriptions: int = 10_000):
        import duckdb_kql  # noqa: F401  (fail early when missing)

        self.db_path = Path(db_path)
        if not self.db_path.is_file():
            raise FileNotFoundError(f"{self.db_path}: no such DuckDB file")
        self.management_groups = {k.lower(): [s.lower() for s in v] for k, v in (management_groups or {}).items()}
        self.query_now = query_now
        self.max_cached_results = max_cached_results
        self.cache_ttl_seconds = cache_ttl_seconds
        self.max_scope_subscriptions = max_scope_subscriptions
        self._tmp = tempfile.TemporaryDirectory(prefix="rg-emulator-")
        self._con = duckdb.connect(":memory:", config={"memory_limit": memory_limit,
                                                       "temp_directory": str(Path(self._tmp.name) / "spill")})
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("ATTACH ? AS fleet (READ_ONLY)", [str(self.db_path)])
        self._con.execute("ATTACH ':memory:' AS rgcache")
        present = {r[0] for r in self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'fleet' AND table_schema = 'main'"
        ).fetchall()}
        self.tables = [t for t in ARG_TABLES if t in present]
        if not self.tables:
            raise ValueError(f"{self.db_path}: holds none of the Resource Graph tables {ARG_TABLES}")
        self._schema: dict[str, list[str]] = {}
        for table in self.tables:
            cols = self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'fleet' "
                "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]
            ).fetchall()
            self._schema[table] = [c[0] for c in cols]
        union = " UNION ".join(
            f"SELECT DISTINCT lower(subscriptionId) AS s FROM fleet.main.{_ident(t)}"
            for t in self.tables if "subscriptionId" in self._schema[t]
        )
        self.subscriptions: list[str] = (
            [r[0] for r in self._con.execute(f"SELECT s FROM ({union}) WHERE s IS NOT NULL ORDER BY s").fetchall()]
            if union else []
        )
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, CachedResult] = OrderedDict()
        self._translated: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._closed = False

    # -- scope ---------------------------------------------------------------------------------

    def resolve_scope(self, subscriptions: Any, management_groups: Any,
                      allow_partial: bool = False) -> tuple[list[str] | None, bool]:
        """(lower-case subscription ids, or None for every row; whether the scope cap was hit)."""
        if subscriptions and management_groups:
            raise ArgRequestError(400, "BadRequest", "Please provide either subscriptions or management groups, "
                                  "not both.", [{"code": "InvalidScope", "message": "subscriptions and "
                                                 "managementGroups are mutually exclusive"}])
        if subscriptions:
            if not isinstance(subscriptions, list) or not all(isinstance(s, str) for s in subscriptions):
                raise ArgRequestError(400, "BadRequest", "subscriptions must be an array of strings")
            return sorted({s.lower() for s in subscriptions}), False
        if management_groups:
            if not isinstance(management_groups, list) or not all(isinstance(m, str) for m in management_groups):
                raise ArgRequestError(400, "BadRequest", "managementGroups must be an array of strings")
            subs: set[str] = set()
            for mg in management_groups:
                if mg.lower() not in self.management_groups:
                    raise ArgRequestError(
                        403, "AuthorizationFailed",
                        f"The client does not have authorization to perform action "
                        f"'Microsoft.ResourceGraph/resources/read' over scope "
                        f"'/providers/Microsoft.Management/managementGroups/{mg}' or the scope is invalid.")
                subs.update(self.management_groups[mg.lower()])
            return self._cap(sorted(subs))
        return self._cap(None)

    def _cap(self, subs: list[str] | None) -> tuple[list[str] | None, bool]:
        universe = self.subscriptions if subs is None else subs
        if len(universe) > self.max_scope_subscriptions:
            return universe[: self.max_scope_subscriptions], True
        return subs, False

    # -- execution -----------------------------------------------------------------------------

    def translate(self, query: str) -> tuple[str, dict[str, Any]]:
        """KQL → DuckDB SQL (cached by query text)."""
        import duckdb_kql

        with self._lock:
            hit = self._translated.get(query)
            if hit is not None:
                self._translated.move_to_end(query)
                return hit
        try:
            result = duckdb_kql.to_sql(query, schema=self._schema, allow_write=False, query_now=self.query_now)
        except duckdb_kql.KqlError as exc:
            raise ArgRequestError(400, "BadRequest", "Please provide below info when asking for support: "
                                  f"correlationId = {uuid.uuid4()}.",
                                  [{"code": "InvalidQuery", "message": "Query is invalid. Please refer to the "
                                    "documentation for the Azure Resource Graph service and fix the error before "
                                    "retrying."},
                                   {"code": type(exc).__name__, "message": str(exc)}]) from exc
        if result.unbound:
            raise ArgRequestError(400, "BadRequest", "Query is invalid.",
                                  [{"code": "InvalidQuery", "message": "query parameters without a value: "
                                    + ", ".join(result.unbound)}])
        entry = (str(result), dict(result.parameters))
        with self._lock:
            self._translated[query] = entry
            while len(self._translated) > 256:
                self._translated.popitem(last=False)
        return entry

    def execute(self, query: str, subscriptions: list[str] | None, *, paging_requires_id: bool = False) -> CachedResult:
        """Run the query over the scope and cache its rows; returns the cached result."""
        sql, params = self.translate(query)
        rid = uuid.uuid4().hex[:20]
        table = f"r_{rid}"
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            where = ""
            if subscriptions is not None:
                cur.execute("CREATE TEMP TABLE _scope AS SELECT DISTINCT unnest(?::VARCHAR[]) AS sub",
                            [list(subscriptions)])
                where = " WHERE lower(subscriptionId) IN (SELECT sub FROM _scope)"
            for t in self.tables:
                w = where if "subscriptionId" in self._schema[t] else ("" if subscriptions is None else " WHERE false")
                cur.execute(f"CREATE TEMP VIEW {_ident(t)} AS SELECT * FROM fleet.main.{_ident(t)}{w}")
            try:
                create = f"CREATE TABLE rgcache.main.{table} AS SELECT * FROM ({sql}) q"  # noqa: S608
                if params:
                    cur.execute(create, params)
                else:
                    cur.execute(create)
            except duckdb.Error as exc:
                raise ArgRequestError(400, "BadRequest", "Query is invalid.",
                                      [{"code": "InvalidQuery", "message": f"query failed: {exc}"}]) from exc
            counted = cur.execute(f"SELECT count(*) FROM rgcache.main.{table}").fetchone()  # noqa: S608
            cols = cur.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'rgcache' "
                "AND table_name = ? ORDER BY column_index", [table]
            ).fetchall()
        finally:
            cur.close()
        columns = [(str(n), str(t)) for n, t in cols]
        all_dynamic = bool(columns) and all(column_type(t) == "object" for _, t in columns)
        no_id = paging_requires_id and "id" not in {n for n, _ in columns}
        now = time.monotonic()
        result = CachedResult(rid=rid, table=table, key=query_key(query, subscriptions),
                              total=int(counted[0]) if counted else 0, columns=columns,
                              pageable=not (breaks_paging(query) or all_dynamic or no_id),
                              created=now, last_used=now)
        evicted: list[CachedResult] = []
        with self._lock:
            self._cache[rid] = result
            evicted += self._expire_locked(now)
        self._drop(evicted)
        return result

    def cached(self, rid: str) -> CachedResult | None:
        """A cached result by id (None when expired or evicted)."""
        now = time.monotonic()
        with self._lock:
            evicted = self._expire_locked(now)
            hit = self._cache.get(rid)
            if hit is not None:
                hit.last_used = now
                self._cache.move_to_end(rid)
        self._drop(evicted)
        return hit

    def rows(self, result: CachedResult, offset: int, limit: int) -> list[str]:
        """Rows [offset, offset+limit) of a cached result, each a JSON object text (Azure's value formats)."""
        if limit <= 0 or offset >= result.total:
            return []
        select = ", ".join(self._json_expr(name, typ) for name, typ in result.columns)
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            got = cur.execute(
                f"SELECT to_json(q)::VARCHAR FROM (SELECT {select} FROM rgcache.main.{result.table} "  # noqa: S608
                "WHERE rowid >= ? AND rowid < ? ORDER BY rowid) q", [offset, offset + limit]
            ).fetchall()
        except duckdb.CatalogException:
            return []  # evicted under our feet; the caller re-checks the cache
        finally:
            cur.close()
        return [r[0] for r in got]

    @staticmethod
    def _json_expr(name: str, typ: str) -> str:
        col = _ident(name)
        t = typ.upper()
        if t.startswith("TIMESTAMP") or t == "DATE":
            # Azure writes datetimes as ISO 8601 UTC with a Z: 2026-11-25T03:00:00Z (fraction only when non-zero).
            ts = f"CAST({col} AS TIMESTAMP)" if t == "DATE" else col
            return (f"CASE WHEN {col} IS NULL THEN NULL ELSE "
                    f"regexp_replace(strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f'), '\\.0+$', '') || 'Z' END AS {col}")
        return col

    def _expire_locked(self, now: float) -> list[CachedResult]:
        out = []
        for rid in list(self._cache):
            r = self._cache[rid]
            if now - r.last_used > self.cache_ttl_seconds:
                out.append(self._cache.pop(rid))
        while len(self._cache) > self.max_cached_results:
            out.append(self._cache.popitem(last=False)[1])
        return out

    def _drop(self, results: list[CachedResult]) -> None:
        if not results or self._closed:
            return
        cur = self._con.cursor()
        try:
            for r in results:
                cur.execute(f"DROP TABLE IF EXISTS rgcache.main.{r.table}")
        finally:
            cur.close()

    def clear_cache(self) -> None:
        """Forget every cached result (outstanding skip tokens then re-run their query)."""
        with self._lock:
            gone = list(self._cache.values())
            self._cache.clear()
        self._drop(gone)

    def close(self) -> None:
        """Close DuckDB and remove the spill directory."""
        if self._closed:
            return
        self._closed = True
        try:
            self._con.close()
        finally:
            self._tmp.cleanup()
