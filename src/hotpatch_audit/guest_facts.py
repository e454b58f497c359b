"""Imported guest facts: read a collector's CSV or JSON file, validate every row, load it in one transaction.

The file format is docs/guest-facts.md ("Importing facts"): `machine_id` and `collected_at` are
required, every other column is one of the phrase keys of the Machine Configuration route, written
exactly as there, with the same values. Unknown columns are refused. A file is validated completely
before the ledger is touched; errors name the file, the line and the field. Rows land in
raw.guest_facts (source import) under the ledger's writer lock in one transaction, and a file whose
content (SHA-256) was imported before is not imported again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, LedgerError
from hotpatch_audit.ledger import open_writer
from hotpatch_audit.strictjson import DECODER, JsonRefused

MAX_ERRORS_SHOWN = 20
MAX_FILE_BYTES = 1024**3  # a guest-facts file is one row per machine and collection; larger: split it
MAX_VALUE_CHARS = 2048  # longer than any ARM id or WSUS URL
EARLIEST = datetime(2000, 1, 1)
CLOCK_SKEW = timedelta(days=1)  # collected_at may be this far ahead of the importing machine's clock
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _show(value: object, limit: int = 80) -> str:
    """repr() of a value for a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int = 80) -> str:
    """Text for a message: control characters escaped, cut to `limit` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


MACHINE_ID_RE = re.compile(
    r"^/subscriptions/[^/\s]+/resourcegroups/[^/\s]+/providers/"
    r"(microsoft\.compute/virtualmachines|microsoft\.hybridcompute/machines)/[^/\s]+$",
    re.IGNORECASE,
)


class FactsFileError(ConfigError):
    """A guest-facts file is malformed; the message names the file, line and field of each problem."""

    def __init__(self, problems: list[str]) -> None:
        # One line (the CLI prints one line per error): the first problem whole, the next ones without the file
        # name they share, then how many more there are. `problems` keeps them all.
        shown = [_clip(p, 300) for p in problems[:MAX_ERRORS_SHOWN]]
        prefix = shown[0].split(": ", 1)[0] + ": " if shown else ""
        rest = [p.removeprefix(prefix) for p in shown[1:]]
        more = len(problems) - len(shown)
        text = "; ".join(shown[:1] + rest) + (f"; and {more} more problem(s)" if more > 0 else "")
        super().__init__(text)
        self.problems = problems


class _Bad(ValueError):
    """One field's value is not acceptable (message without file and line)."""


def _text(value: object) -> str | None:
    """Scalars as text; None for a missing value. Lists and objects are refused."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise _Bad(f"{len(value):,} characters, at most {MAX_VALUE_CHARS:,}")
        return value.strip()
    raise _Bad(f"expected a scalar, got {type(value).__name__}")


def _int_choice(*allowed: int) -> Callable[[object], int | None]:
    def parse(value: object) -> int | None:
        text = _text(value)
        if text is None or text == "":
            return None
        if not re.fullmatch(r"\d+", text) or int(text) not in allowed:
            raise _Bad(f"{_show(text)} is not one of {', '.join(map(str, allowed))}")
        return int(text)

    return parse


def _int_list(value: object) -> str | None:
    """A comma list of integers, normalised to '1,2'; '' when reported empty, None when not reported."""
    if value is None:
        return None
    items: list[str]
    if isinstance(value, list):
        items = []
        for item in value:
            text = _text(item)
            items.append(text or "")
    else:
        text = _text(value)
        assert text is not None
        if text == "":
            return ""
        items = [part.strip() for part in text.split(",")]
    for item in items:
        if not re.fullmatch(r"\d+", item):
            raise _Bad(f"{_show(value)} is not a comma list of integers (e.g. 1,2)")
    return ",".join(str(int(i)) for i in items)


def _url(value: object) -> str | None:
    text = _text(value)
    if text is None or text == "":
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or re.search(r"\s", text):
        raise _Bad(f"{_show(text)} is not an http(s) URL (e.g. http://wsus.contoso.local:8530)")
    return text


def _firmware(value: object) -> str | None:
    text = _text(value)
    if text is None or text == "":
        return None
    if text.upper() not in ("UEFI", "BIOS"):
        raise _Bad(f"{_show(text)} is not UEFI or BIOS")
    return text.upper()


def _machine_id(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad("required, the machine's ARM resource id")
    if not MACHINE_ID_RE.match(text):
        raise _Bad(
            f"{_show(text)} is not the ARM resource id of an Azure VM or Arc machine "
            "(/subscriptions/…/resourceGroups/…/providers/Microsoft.HybridCompute/machines/NAME or "
            "…/Microsoft.Compute/virtualMachines/NAME)"
        )
    return text.lower()


def _collected_at(value: object) -> datetime:
    text = _text(value)
    if not text:
        raise _Bad("required, ISO 8601 UTC time, e.g. 2026-11-20T08:00:00Z")
    try:
        ts = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"{_show(text)} is not an ISO 8601 time (e.g. 2026-11-20T08:00:00Z)") from None
    if ts.tzinfo is None or ts.utcoffset() != UTC.utcoffset(None):
        raise _Bad(f"{_show(text)} is not UTC: end it with Z (e.g. 2026-11-20T08:00:00Z)")
    naive = ts.astimezone(UTC).replace(tzinfo=None)
    latest = datetime.now(UTC).replace(tzinfo=None) + CLOCK_SKEW
    if not EARLIEST <= naive <= latest:
        raise _Bad(f"{_show(text)} is {'before 2000' if naive < EARLIEST else 'in the future'}: check the "
                   "collector's clock")
    return naive


@dataclass(frozen=True)
class FactKey:
    """One column of the import format: its phrase key, ledger column and parser."""

    key: str
    column: str
    sql_type: str
    parse: Callable[[object], Any]


FACT_KEYS: tuple[FactKey, ...] = (
    FactKey("VirtualizationBasedSecurityStatus", "vbs_status", "INTEGER", _int_choice(0, 1, 2)),
    FactKey("SecurityServicesConfigured", "security_services_configured", "VARCHAR", _int_list),
    FactKey("SecurityServicesRunning", "security_services_running", "VARCHAR", _int_list),
    FactKey("UseWUServer", "use_wu_server", "INTEGER", _int_choice(0, 1)),
    FactKey("WUServer", "wu_server", "VARCHAR", _url),
    FactKey("SetPolicyDrivenUpdateSourceForQualityUpdates", "quality_updates_source", "INTEGER", _int_choice(0, 1)),
    FactKey("DoNotConnectToWindowsUpdateInternetLocations", "no_wu_internet", "INTEGER", _int_choice(0, 1)),
    FactKey("IsVirtualMachine", "is_virtual_machine", "INTEGER", _int_choice(0, 1)),
    FactKey("HyperVGeneration", "hyperv_generation", "INTEGER", _int_choice(1, 2)),
    FactKey("HyperVRole", "hyperv_role", "INTEGER", _int_choice(0, 1)),
    FactKey("Wsl2", "wsl2", "INTEGER", _int_choice(0, 1)),
    FactKey("FirmwareType", "firmware_type", "VARCHAR", _firmware),
    FactKey("SecureBoot", "secure_boot", "INTEGER", _int_choice(0, 1)),
)
REQUIRED = ("machine_id", "collected_at")
COLUMNS: tuple[str, ...] = (*REQUIRED, *(k.key for k in FACT_KEYS))
"""Every column of the import format, in the order the collector writes them."""


@dataclass(frozen=True)
class FactRow:
    """One validated row: its line in the file and typed values by ledger column."""

    line: int
    machine_id: str
    collected_at: datetime
    facts: dict[str, Any]


@dataclass
class FactsFile:
    """A validated file: content hash (import id), format and rows."""

    path: Path
    import_id: str
    fmt: str
    rows: list[FactRow] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """What import_facts did."""

    path: Path
    import_id: str
    rows: int
    already_imported: bool
    imported_at: datetime | None


# --- reading -------------------------------------------------------------------------------------


def _detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    first = text.lstrip()[:1]
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    if first == "[":
        return "json"
    if first == "{":
        return "ndjson"
    if suffix == ".json":
        return "json"
    return "csv"


def _csv_records(name: str, text: str, problems: list[str]) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        problems.append(f"{name}: line 1: not valid CSV ({exc})")
        return
    header = [h.strip() for h in header]
    if len(header) == 1 and ";" in header[0]:
        problems.append(f"{name}: line 1: the header is one column {_show(header[0], 60)}: separate the columns "
                        "with commas")
        return
    if not _check_columns(name, 1, header, problems):
        return
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(f"{name}: line {start}: not valid CSV ({exc})")
            return
        line, start = start, reader.line_num + 1
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(f"{name}: line {line}: {len(record)} fields, the header has {len(header)}")
            continue
        yield line, dict(zip(header, record, strict=True))


def _check_columns(name: str, line: int, columns: list[str], problems: list[str]) -> bool:
    ok = True
    seen: set[str] = set()
    known_lower = {c.lower(): c for c in COLUMNS}
    for col in columns:
        if col in seen:
            problems.append(f"{name}: line {line}: field {_clip(col)}: duplicate column")
            ok = False
        seen.add(col)
        if col not in COLUMNS:
            hint = ""
            if col.lower() in known_lower:
                hint = f" (did you mean {known_lower[col.lower()]}? keys are case-sensitive)"
            problems.append(f"{name}: line {line}: field {_clip(col)}: unknown column{hint}; "
                            f"known: {', '.join(COLUMNS)}")
            ok = False
    for col in REQUIRED:
        if col not in seen:
            problems.append(f"{name}: line {line}: field {col}: required column missing")
            ok = False
    return ok




class _BadJson(Exception):
    """A JSON value could not be read; lineno (in the text given) when the parser knows it."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


def _json_value(text: str, pos: int) -> tuple[object, int]:
    """One JSON value at pos and where it ends; _BadJson for anything the format refuses."""
    try:
        return DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise _BadJson(f"not valid JSON ({exc.msg}, column {exc.colno})", exc.lineno) from None
    except JsonRefused as exc:
        raise _BadJson(str(exc)) from None
    except RecursionError:
        raise _BadJson("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _BadJson(f"not valid JSON ({_clip(str(exc), 120)})") from None


def _json_array_records(name: str, text: str, problems: list[str]) -> Iterator[tuple[int, object]]:
    """The elements of a top-level JSON array with the line each starts on."""
    ws = re.compile(r"\s*")

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] != "[":
        problems.append(f"{name}: line {line_of(pos)}: expected a JSON array of objects")
        return
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = _json_value(text, pos)
            except _BadJson as exc:
                problems.append(f"{name}: line {exc.lineno or line_of(pos)}: {exc}")
                return
            yield line_of(pos), value
            pos = ws.match(text, end).end()  # type: ignore[union-attr]
            sep = text[pos:pos + 1]
            if sep == ",":
                pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if sep == "]":
                pos += 1
                break
            problems.append(f"{name}: line {line_of(pos)}: not valid JSON (expected ',' or ']')")
            return
    if text[pos:].strip():
        problems.append(f"{name}: line {line_of(pos)}: not valid JSON (text after the array)")


def _ndjson_records(name: str, text: str, problems: list[str]) -> Iterator[tuple[int, object]]:
    for n, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        try:
            value, end = _json_value(raw_line, len(raw_line) - len(raw_line.lstrip(" \t\r\n")))
        except _BadJson as exc:
            problems.append(f"{name}: line {n}: {exc}")
            continue
        if raw_line[end:].strip(" \t\r\n"):
            problems.append(f"{name}: line {n}: not valid JSON (text after the object, column {end + 1})")
            continue
        yield n, value


def _validate(name: str, line: int, record: dict[str, object], problems: list[str]) -> FactRow | None:
    before = len(problems)
    values: dict[str, Any] = {}
    for col, parse in (("machine_id", _machine_id), ("collected_at", _collected_at)):
        try:
            values[col] = parse(record.get(col))
        except _Bad as exc:
            problems.append(f"{name}: line {line}: field {col}: {exc}")
    facts: dict[str, Any] = {}
    for key in FACT_KEYS:
        try:
            facts[key.column] = key.parse(record.get(key.key))
        except _Bad as exc:
            problems.append(f"{name}: line {line}: field {key.key}: {exc}")
    if len(problems) > before:
        return None
    return FactRow(line, values["machine_id"], values["collected_at"], facts)


def read_facts_file(path: Path) -> FactsFile:
    """Read and validate a guest-facts file completely; raise FactsFileError listing every problem."""
    name = str(path)
    try:
        if (size := path.stat().st_size) > MAX_FILE_BYTES:
            raise FactsFileError([f"{name}: {size:,} bytes; a guest-facts file may hold at most {MAX_FILE_BYTES:,} "
                                  "(split it)"])
        data = path.read_bytes()
    except FileNotFoundError:
        raise FactsFileError([f"{name}: no such file"]) from None
    except OSError as exc:
        raise FactsFileError([f"{name}: cannot read ({exc.strerror})"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = (" (UTF-16: write the file as UTF-8, e.g. Out-File -Encoding utf8)"
                if data[:2] in (b"\xff\xfe", b"\xfe\xff") else f" (byte {data[exc.start]:#04x})")
        raise FactsFileError([f"{name}: line {line}: not UTF-8 text{hint}"]) from None
    fmt = _detect_format(path, text)
    result = FactsFile(path=path, import_id=hashlib.sha256(data).hexdigest(), fmt=fmt)
    problems: list[str] = []
    records: Iterator[tuple[int, object]]
    if fmt == "csv":
        records = _csv_records(name, text, problems)
    elif fmt == "json":
        records = _json_array_records(name, text, problems)
    else:
        records = _ndjson_records(name, text, problems)
    seen: dict[tuple[str, datetime], int] = {}
    for line, record in records:
        if not isinstance(record, dict):
            problems.append(f"{name}: line {line}: expected an object, got {type(record).__name__}")
            continue
        if fmt != "csv" and not _check_columns(name, line, list(record), problems):
            continue
        row = _validate(name, line, record, problems)
        if row is None:
            continue
        first = seen.setdefault((row.machine_id, row.collected_at), line)
        if first != line:
            problems.append(f"{name}: line {line}: field collected_at: the same machine and time as line {first}")
            continue
        result.rows.append(row)
    if not problems and not result.rows:
        problems.append(f"{name}: no rows (expected a header and at least one row, or at least one object)")
    if problems:
        raise FactsFileError(problems)
    return result


# --- loading -------------------------------------------------------------------------------------


def phrases(facts: dict[str, Any]) -> str:
    """One row's facts written in the Machine Configuration phrase format (key=value ...), for evidence."""
    return " ".join(f"{k.key}={facts[k.column]}" for k in FACT_KEYS if facts.get(k.column) is not None)


def load_facts(con: duckdb.DuckDBPyConnection, facts: FactsFile, *, now: datetime | None = None) -> ImportResult:
    """Insert a validated file's rows into raw.guest_facts (source import, run_id NULL) in one transaction
    (idempotent by hash)."""
    imported_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    con.execute("BEGIN")
    try:
        found = con.execute(
            "SELECT min(loaded_at) FROM raw.guest_facts WHERE source = 'import' AND import_id = ?", [facts.import_id]
        ).fetchone()
        if found and found[0] is not None:
            con.execute("ROLLBACK")
            return ImportResult(facts.path, facts.import_id, 0, True, found[0])
        n = len(facts.rows)
        columns: list[tuple[str, str, list[Any]]] = [
            ("source", "VARCHAR", ["import"] * n),
            ("report_id", "VARCHAR", [f"import:{facts.path}:{r.line}" for r in facts.rows]),
            ("import_id", "VARCHAR", [facts.import_id] * n),
            ("source_file", "VARCHAR", [str(facts.path)] * n),
            ("line", "INTEGER", [r.line for r in facts.rows]),
            ("machine_id", "VARCHAR", [r.machine_id for r in facts.rows]),
            ("collected_at", "TIMESTAMP", [r.collected_at for r in facts.rows]),
            *((k.column, k.sql_type, [r.facts[k.column] for r in facts.rows]) for k in FACT_KEYS),
            ("phrases", "VARCHAR", [phrases(r.facts) for r in facts.rows]),
            ("loaded_at", "TIMESTAMP", [imported_at] * n),
        ]
        names = ", ".join(c for c, _, _ in columns)
        selects = ", ".join(f"unnest(?::{t}[])" for _, t, _ in columns)
        con.execute(
            f"INSERT INTO raw.guest_facts ({names}) SELECT {selects}",  # noqa: S608 (fixed names)
            [v for _, _, v in columns],
        )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise LedgerError(f"{facts.path}: could not be loaded into the ledger: {exc}") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return ImportResult(facts.path, facts.import_id, len(facts.rows), False, imported_at)


def import_facts_file(
    settings: Settings, path: Path, *, on_wait: Callable[[str], None] | None = None, now: datetime | None = None
) -> ImportResult:
    """Validate `path`, then load it under the ledger's writer lock; a bad file never opens the ledger."""
    facts = read_facts_file(path)
    ledger = settings.path(settings.ledger_path)
    with open_writer(ledger, settings.project_root, timeout=settings.lock_timeout_seconds,
                     holder=f"import-facts {path.name}", on_wait=on_wait,
                     memory_limit=settings.duckdb_memory_limit) as con:
        return load_facts(con, facts, now=now)
