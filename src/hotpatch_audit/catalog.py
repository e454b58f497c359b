"""The query catalog: KQL files in queries/, their headers, hashes and raw tables."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hotpatch_audit.errors import QueryError

_HEADER_KEYS = ("NAME", "OUTPUT", "LOADS")
# queries no longer run (no audit read them): their raw tables stay in the ledger for the runs that have rows
RETIRED_QUERIES = frozenset({"maintenance_assignments", "maintenance_configurations"})
_FORBIDDEN = re.compile(r"\|\s*(take|limit|sample)\b", re.IGNORECASE)


@dataclass(frozen=True)
class QuerySpec:
    """One KQL file: its stem (= raw table name), path, text and SHA-256."""

    name: str
    path: Path
    text: str
    sha256: str

    @property
    def raw_table(self) -> str:
        """The ledger table this query loads."""
        return f"raw.{self.name}"

    def relpath(self, root: Path) -> str:
        """The file path relative to the project root, for evidence."""
        try:
            return self.path.relative_to(root).as_posix()
        except ValueError:
            return self.path.as_posix()


def header(text: str) -> dict[str, str]:
    """Parse the `// KEY: value` header of a KQL file (continuation lines are joined)."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        body = line[2:].strip()
        m = re.match(r"([A-Z]+):\s*(.*)", body)
        if m and m.group(1) in (*_HEADER_KEYS, "NOTES"):
            key = m.group(1)
            fields[key] = m.group(2)
        elif key and body:
            fields[key] += " " + body
    return fields


def validate_query(spec: QuerySpec) -> None:
    """Refuse KQL that breaks the project's rules: header, paging-safe shape, id first, order by id."""
    head = header(spec.text)
    missing = [k for k in _HEADER_KEYS if k not in head]
    if missing:
        raise QueryError(spec.name, f"header lacks {', '.join(missing)} ({spec.path})")
    if head["NAME"].strip() != spec.name:
        raise QueryError(spec.name, f"header NAME {head['NAME']!r} differs from the file name")
    body = "\n".join(ln for ln in spec.text.splitlines() if not ln.lstrip().startswith("//"))
    if _FORBIDDEN.search(body):
        raise QueryError(spec.name, "take/limit/sample break Resource Graph paging; remove them")
    if not re.search(r"\|\s*project\s+id\s*,", body):
        raise QueryError(spec.name, "the projection must start with id (paging needs it)")
    if not re.search(r"\|\s*order\s+by\s+id(\s+asc)?\s*$", body.strip()):
        raise QueryError(spec.name, "the query must end with `order by id asc` (stable paging)")


def load_queries(project_root: Path, names: list[str] | None = None) -> list[QuerySpec]:
    """Read and validate queries/*.kql in name order (optionally only `names`)."""
    qdir = project_root / "queries"
    specs = []
    for path in sorted(qdir.glob("*.kql")):
        if names and path.stem not in names:
            continue
        text = path.read_text(encoding="utf-8")
        spec = QuerySpec(path.stem, path, text, hashlib.sha256(text.encode("utf-8")).hexdigest())
        validate_query(spec)
        specs.append(spec)
    if names:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise QueryError(", ".join(sorted(unknown)), f"no such query file in {qdir}")
    if not specs:
        raise QueryError("*", f"no KQL files in {qdir}")
    return specs
