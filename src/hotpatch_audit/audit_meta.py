"""Each audit as one self-describing unit: the metadata file beside its SQL (sql/audit/<nn>_<audit>.toml).

A metadata file holds the audit's title and order, its finding codes with their default severity and
status, and the message templates its SQL names (docs/findings.md, "Adding a finding code"):

    [audit]                       # only in an audit's file (readiness and shared messages have none)
    name = "missed_hotpatches"    # = the view audit.<name> in the .sql of the same stem
    title = "Missed hotpatches"
    order = 2

    [codes.missed]
    severity = "high"             # the default; the SQL may raise or lower it by rule (exposure...)
    status = "fail"               # the status a non-compliant finding of the code gets
    summary = "An enrolled machine did not install the month's hotpatch within grace."

    [messages]
    "missed.open_available" = '''%(machine)s has not installed the %(month)s hotpatch%(kb)s, ...'''

The SQL views emit `reason_key`, `remediation_key` and `params` (a MAP of named values, the evidence
behind the sentence); English is rendered once from the template (the macro audit.message, generated
here from every template) and other languages translate the template through the catalogue
(hotpatch_audit.finding_text). A parameter whose value is itself a message (a fragment such as the
KB with its calendar note) names that message's key in `<param>.key`; its own parameters sit beside.

This module is the one source of the audit list (AUDITS), the codes waivers may name (AUDIT_CODES),
the ledger's ref.audits / ref.audit_codes / ref.messages and the Babel extraction of the templates.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.duck import sql_literal
from hotpatch_audit.errors import ConfigError

SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("fail", "warn", "pass", "unknown")
STATES = ("open", "past", "opportunity")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_KEY = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class Code:
    """One finding code of an audit."""

    audit: str
    code: str
    severity: str
    status: str
    summary: str
    state: str = "open"  # the lifecycle state of a non-compliant finding: open, past or opportunity
    action: str = ""  # the fix in a few words, for one-line lists (page 1); empty: the remediation's first sentence


@dataclass(frozen=True)
class Audit:
    """One audit: its view, title, place in the report and codes."""

    name: str
    title: str
    order: int
    summary: str
    path: Path
    codes: tuple[Code, ...]


@dataclass(frozen=True)
class Catalog:
    """Every metadata file of sql/audit/ read together."""

    audits: tuple[Audit, ...]
    messages: dict[str, str]  # key -> English template
    files: tuple[Path, ...]
    message_files: dict[str, Path]  # key -> the metadata file that defines it

    def file_messages(self) -> dict[Path, dict[str, str]]:
        """Metadata file -> the templates it defines (key -> English template), files in order."""
        grouped: dict[Path, dict[str, str]] = {f: {} for f in self.files}
        for key, template in self.messages.items():
            grouped[self.message_files[key]][key] = template
        return grouped

    def macro_for(self, key: str) -> str:
        """The macro an audit's SQL renders the literal key `key` with: its file's _fragment macro for a fragment,
        else its _message macro."""
        return file_macro(self.message_files[key], "fragment" if is_fragment(key) else "message")

    def titles(self) -> dict[str, str]:
        """Audit name -> English title, in report order."""
        return {a.name: a.title for a in self.audits}

    def actions(self) -> dict[tuple[str, str], str]:
        """(audit, code) -> the code's short action in English, for codes that define one."""
        return {(c.audit, c.code): c.action for a in self.audits for c in a.codes if c.action}

    def codes(self) -> dict[str, frozenset[str]]:
        """Audit name -> the codes its view can emit."""
        return {a.name: frozenset(c.code for c in a.codes) for a in self.audits}


def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: {what}")


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}") from None


def _audit(path: Path, data: dict[str, Any]) -> Audit | None:
    head = data.get("audit")
    if head is None:
        if data.get("codes"):
            raise _fail(path, "[codes] needs an [audit] table")
        return None
    name = head.get("name")
    if not isinstance(name, str) or not path.with_suffix(".sql").exists():
        raise _fail(path, "needs [audit] name and a .sql file of the same stem beside it")
    codes = []
    for code, spec in (data.get("codes") or {}).items():
        severity, status = spec.get("severity"), spec.get("status")
        state = spec.get("state", "open")
        if severity not in SEVERITIES or status not in STATUSES or state not in STATES:
            raise _fail(path, f"code {code}: severity must be one of {SEVERITIES}, status one of {STATUSES}, "
                              f"state one of {STATES}")
        codes.append(Code(name, code, severity, status, str(spec.get("summary", "")), state,
                          str(spec.get("action", ""))))
    if not codes:
        raise _fail(path, "an audit needs at least one [codes.<code>]")
    return Audit(name, str(head.get("title", name)), int(head.get("order", 99)), str(head.get("summary", "")), path,
                 tuple(codes))


@cache
def load(root: Path = PROJECT_ROOT) -> Catalog:
    """Read sql/audit/*.toml: the audits in report order and every message template (keys unique)."""
    files = tuple(sorted((root / "sql" / "audit").glob("*.toml")))
    audits: list[Audit] = []
    messages: dict[str, str] = {}
    message_files: dict[str, Path] = {}
    for path in files:
        data = _read(path)
        if (audit := _audit(path, data)) is not None:
            audits.append(audit)
        for key, template in (data.get("messages") or {}).items():
            if not _KEY.match(key) or not isinstance(template, str):
                raise _fail(path, f"message {key!r}: keys are dotted words, templates strings")
            if key in messages:
                raise _fail(path, f"message {key!r} is defined twice")
            messages[key] = template
            message_files[key] = path
    audits.sort(key=lambda a: (a.order, a.name))
    seen: dict[str, str] = {}
    for a in audits:
        for c in a.codes:
            if c.code in seen and seen[c.code] != a.name:
                raise _fail(a.path, f"code {c.code} is also an audit code of {seen[c.code]}")
            seen[c.code] = a.name
    return Catalog(tuple(audits), messages, files, message_files)


def placeholders(template: str) -> list[str]:
    """The named parameters of a template, in order."""
    return PLACEHOLDER.findall(template)


def apply(con: duckdb.DuckDBPyConnection, root: Path = PROJECT_ROOT) -> None:
    """Write ref.audits, ref.audit_codes and ref.messages, and the macros that render a message in English."""
    cat = load(root)
    con.execute("create or replace table ref.audits (audit varchar primary key, title varchar, audit_order integer,"
                " summary varchar, metadata_file varchar)")
    con.executemany("insert into ref.audits values (?, ?, ?, ?, ?)",
                    [[a.name, a.title, a.order, a.summary, a.path.relative_to(root).as_posix()] for a in cat.audits])
    con.execute("create or replace table ref.audit_codes (audit varchar, code varchar, severity varchar,"
                " status varchar, state varchar, summary varchar, primary key (audit, code))")
    con.executemany("insert into ref.audit_codes values (?, ?, ?, ?, ?, ?)",
                    [[c.audit, c.code, c.severity, c.status, c.state, c.summary] for a in cat.audits for c in a.codes])
    con.execute("create or replace table ref.messages (key varchar primary key, template varchar,"
                " params varchar[])")
    con.executemany("insert into ref.messages values (?, ?, ?)",
                    [[k, t, placeholders(t)] for k, t in cat.messages.items()])
    for sql in (
        "comment on table ref.audits is 'The audits (sql/audit/*.toml [audit]): name (= view audit.<name>), English"
        " title, order in the report, one-line summary and the metadata file.'",
        "comment on table ref.audit_codes is 'Every finding code per audit (sql/audit/*.toml [codes]) with its default"
        " severity (the SQL may raise or lower it by rule), the status a non-compliant finding gets, its lifecycle"
        " state (open: an action while present; past: a past month''s outcome, a fact of the period; opportunity:"
        " not a defect) and a summary. Waivers may name only these codes.'",
        "comment on table ref.messages is 'Reason and remediation templates (sql/audit/*.toml [messages]): key, the"
        " English template with %(name)s placeholders, and the placeholder names. Findings carry reason_key,"
        " remediation_key and params; audit.message(key, params) renders the English text.'",
    ):
        con.execute(sql)
    entries = ", ".join(f"{sql_literal(k)}: {sql_literal(t)}" for k, t in cat.messages.items())
    con.execute(f"create or replace macro audit.message_template(k) as (map {{{entries}}})[k]")
    con.execute(f"create or replace macro audit.message(k, p) as {message_sql(cat.messages)}")
    # Each file's own templates too, for its SQL (audit.<name>_message), and its fragments alone, the keys with a
    # `frag` part (audit.<name>_fragment): a view binds every branch of the CASE at each call, and with all the
    # templates that took about 0.35 s per statement at missed_hotpatches' 14 calls (the audit stores that view in
    # four statements). A key the macro does not hold is an error, never a silent null.
    for path, own in cat.file_messages().items():
        fragments = {k: t for k, t in own.items() if is_fragment(k)}
        for macro, templates in ((file_macro(path, "message"), own), (file_macro(path, "fragment"), fragments)):
            if templates:
                con.execute(f"create or replace macro audit.{macro}(k, p) as {message_sql(templates, path.name)}")


def is_fragment(key: str) -> bool:
    """A fragment is a message quoted inside another (a key with a `frag` part: frag.kb_note, wsus.frag.no_policy)."""
    return "frag" in key.split(".")


def file_macro(path: Path, kind: str) -> str:
    """The name of a macro rendering templates of one metadata file: sql/audit/41_missed_hotpatches.toml and
    `message` -> missed_hotpatches_message (in schema audit)."""
    return f"{re.sub(r'^[0-9]+_', '', path.stem)}_{kind}"


def message_sql(messages: dict[str, str], source: str | None = None) -> str:
    """SQL rendering the English message `k` from `p`: one CASE branch per template, each a concat of its
    literal parts and its parameters (a missing one empty), filled in one pass like finding_text.render_message.
    About ten times faster than a list_reduce over the parameters at a million findings. With `source` (the
    templates of one file), a key that is not one of them raises an error naming the file; without it, null."""
    branches = []
    for key, template in messages.items():
        parts: list[str] = []
        pos = 0
        for m in PLACEHOLDER.finditer(template):
            if m.start() > pos:
                parts.append(sql_literal(template[pos:m.start()]))
            parts.append(f"coalesce(p[{sql_literal(m.group(1))}], '')")
            pos = m.end()
        if pos < len(template) or not parts:
            parts.append(sql_literal(template[pos:]))
        text = parts[0] if len(parts) == 1 else f"concat({', '.join(parts)})"
        branches.append(f"when {sql_literal(key)} then {text}")
    unknown = ""
    if source is not None:
        unknown = f" else error('message ' || k || ' is not a template of ' || {sql_literal(source)})"
    return f"case when k is null then '' else case k {' '.join(branches)}{unknown} end end"


def create_every_audit(con: duckdb.DuckDBPyConnection, root: Path = PROJECT_ROOT) -> None:
    """audit.every_audit: the findings of every audit view the metadata names, in one shape (read by
    sql/audit/90_all_findings.sql, which is applied right after this)."""
    names = [a.name for a in load(root).audits]
    union = "\nunion all by name\n".join(f"select * from audit.{name}" for name in names)
    con.execute(f"create or replace view audit.every_audit as\n{union}")
    con.execute("comment on view audit.every_audit is 'The findings of every audit view of ref.audits"
                " (sql/audit/*.toml) in one shape, before the lifecycle state is settled (audit.all_findings).'")


def babel_extract(fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: Any) -> Iterator[
        tuple[int, str | None, str, list[str]]]:
    """Babel extraction method for sql/audit/*.toml (babel.cfg): each audit title and summary, each code's
    short action and each message template."""
    raw = fileobj.read()
    data = tomllib.loads(raw.decode("utf-8"))
    lines = raw.decode("utf-8").splitlines()

    def line_of(needle: str) -> int:
        return next((i + 1 for i, ln in enumerate(lines) if needle in ln), 1)

    if head := data.get("audit"):
        for field in ("title", "summary"):
            if head.get(field):
                yield line_of(f"{field} ="), None, head[field], []
    for code, spec in (data.get("codes") or {}).items():
        if spec.get("action"):
            yield line_of(f"[codes.{code}]"), None, spec["action"], []
    for key, template in (data.get("messages") or {}).items():
        yield line_of(f'"{key}"'), None, template, []
