"""Untrusted text is inert in every output: no NUL or other C0 control, bidirectional controls shown as <U+...>.

A machine named with a right-to-left override (U+202E) and a NUL must not reverse the sentence it sits in, in
audit.html, audit.pdf or the CSV exports; Parquet keeps the value as stored (typed analyst data)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pypdf
import pytest
from markupsafe import Markup

from fixtures.report_ledger import RUN_ID, build_report_ledger
from hotpatch_audit.analyze import materialize_registers
from hotpatch_audit.config import Settings
from hotpatch_audit.exports import BIDI_CONTROLS, EXPORTS, csv_cell, csv_cell_sql, inert, inert_sql
from hotpatch_audit.render import build_environment, render_reports

ROOT = Path(__file__).resolve().parents[1]
GENERATED_AT = datetime(2025, 11, 18, 10, 30, tzinfo=UTC)
# Shown as written, this reads "db-exe.txt" with the tail reversed: "db-" + RLO + "txt.exe" + NUL + "-01"
HOSTILE_NAME = "db-\u202etxt.exe\x00-01"
SHOWN_NAME = "db-<U+202E>txt.exe-01"
HOSTILE_OWNER = "team-\u2067db\x1b[31m\u2069"
SHOWN_OWNER = "team-<U+2067>db[31m<U+2069>"
# Every code point that must never reach a report or a CSV raw: C0 but tab and newline, and the bidi controls.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f" + "".join(BIDI_CONTROLS) + "]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web-01", "web-01"),
        ("a\x00b", "ab"),
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("cr\r\nlf", "cr\nlf"),
        ("\x1b[2Jbell\x07", "[2Jbell"),
        ("abc\u202edef", "abc<U+202E>def"),
        ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
         "<U+202A><U+202B><U+202C><U+202D><U+2066><U+2067><U+2068><U+2069><U+200E><U+200F><U+061C>"),
        ("日本語 ok", "日本語 ok"),
        ("", ""),
    ],
)
def test_inert_drops_c0_controls_and_shows_bidi_controls(text: str, expected: str) -> None:
    assert inert(text) == expected
    assert inert(inert(text)) == inert(text)  # idempotent: a value cleaned twice reads the same


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("\x00=1+1", "'=1+1"),  # cleaned first: a NUL cannot hide a formula
        ("\r=1+1", "'=1+1"),
        ("\t=1", "'\t=1"),
        ("\u202e=1", "<U+202E>=1"),
        ("-5", "'-5"),
        ("web-01", "web-01"),
        (None, None),
        (3, 3),
    ],
)
def test_csv_cell_cleans_then_guards(value: object, expected: object) -> None:
    assert csv_cell(value) == expected


@pytest.mark.parametrize("value", [HOSTILE_NAME, HOSTILE_OWNER, "\x00=1", "=1", "\r-1", "a\tb\nc", "", None,
                                   "".join(BIDI_CONTROLS) + "".join(chr(c) for c in range(32))])
def test_sql_twins_match_python(value: str | None) -> None:
    con = duckdb.connect()
    try:
        row = con.execute(f"select {inert_sql('$1::varchar')}, {csv_cell_sql('$1::varchar')}", [value]).fetchone()
    finally:
        con.close()
    assert row == ((None, None) if value is None else (inert(value), csv_cell(value)))


def test_templates_print_every_value_inert_markup_included(tmp_path: Path) -> None:
    (tmp_path / "t.html.j2").write_text(
        "<p title='{{ name }}'>{{ name }} | {{ markup }} | {{ _('owner %(o)s', o=name) }} | {{ n }}</p>",
        encoding="utf-8",
    )
    env = build_environment("UTC", tmp_path, "en")
    html = env.get_template("t.html.j2").render(name="<b>a\u202eb\x00</b>", markup=Markup("<i>x\u2066y</i>"), n=7)
    assert not FORBIDDEN.search(html)
    assert html == ("<p title='&lt;b&gt;a&lt;U+202E&gt;b&lt;/b&gt;'>&lt;b&gt;a&lt;U+202E&gt;b&lt;/b&gt; | "
                    "<i>x&lt;U+2066&gt;y</i> | owner &lt;b&gt;a&lt;U+202E&gt;b&lt;/b&gt; | 7</p>")


@dataclass(frozen=True)
class Hostile:
    out: Path
    html: str
    pdf_text: str


def _hostile_ledger(path: Path) -> None:
    """The render fixture's ledger with db-01 (findings in every audit) renamed to HOSTILE_NAME, owned by
    HOSTILE_OWNER: the name inside the reason sentences too, as the audit SQL writes them."""
    build_report_ledger(path)
    con = duckdb.connect(str(path))
    try:
        for table in ("core.machines", "audit.findings", "audit.machine_months", "audit.readiness", "audit.coverage"):
            con.execute(f"update {table} set machine_name = ? where machine_name = 'db-01'", [HOSTILE_NAME])
        for table in ("audit.findings", "audit.readiness"):
            con.execute(f"update {table} set reason = replace(reason, 'db-01', ?) where machine_name = ?",
                        [HOSTILE_NAME, HOSTILE_NAME])
        for table in ("core.machines", "audit.findings", "audit.machine_months", "audit.readiness"):
            con.execute(f"update {table} set owner = ? where machine_name = ?", [HOSTILE_OWNER, HOSTILE_NAME])
        for (run_id,) in con.execute("select distinct run_id from audit.findings").fetchall():
            materialize_registers(con, run_id)  # open_actions is stored from findings: store it again, renamed
        (n,) = con.execute("select count(*) from audit.findings where machine_name = ?", [HOSTILE_NAME]).fetchone() \
            or (0,)
        assert n >= 3
    finally:
        con.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    base = tmp_path_factory.mktemp("hostile")
    _hostile_ledger(base / "ledger.duckdb")
    out = base / "out"
    render_reports(base / "ledger.duckdb", RUN_ID, out, settings=Settings(csv_detail=True), generated_at=GENERATED_AT)
    reader = pypdf.PdfReader(out / "audit.pdf")
    return Hostile(
        out=out,
        html=(out / "audit.html").read_text(encoding="utf-8"),
        pdf_text="\n".join(page.extract_text() for page in reader.pages),
    )


def test_html_has_no_raw_controls_and_the_sentence_reads_in_order(hostile: Hostile) -> None:
    html = hostile.html
    assert not FORBIDDEN.search(html)
    shown = SHOWN_NAME.replace("<", "&lt;").replace(">", "&gt;")
    # the action's sentence (its missed month is explained by WSUS, one action per cause); <wbr> marks where a long
    # token may break and adds no text
    assert f"{shown} takes quality updates from WSUS (UseWUServer=1)." in html.replace("<wbr>", "")
    assert SHOWN_OWNER.replace("<", "&lt;").replace(">", "&gt;") in html


def test_pdf_text_has_no_raw_controls_and_the_sentence_reads_in_order(hostile: Hostile) -> None:
    text = hostile.pdf_text
    assert "\u202e" not in text and "\x00" not in text
    assert not FORBIDDEN.search(text.replace("\t", " "))
    squashed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", f"{SHOWN_NAME} takes quality updates from WSUS") in squashed


@pytest.mark.parametrize("export", EXPORTS, ids=lambda e: e.stem)
def test_csv_exports_are_inert_and_parquet_keeps_the_value(hostile: Hostile, export: object) -> None:
    stem = export.stem  # type: ignore[attr-defined]
    raw = (hostile.out / f"{stem}.csv").read_bytes()
    assert b"\x00" not in raw and "\u202e".encode() not in raw
    assert not FORBIDDEN.search(raw.decode("utf-8").replace("\r\n", "\n"))
    with (hostile.out / f"{stem}.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["machine_name"].startswith("db-")]
    if stem == "coverage_exceptions":  # db-01 has no data gap: the hostile name is checked on a machine with one
        assert not rows
        return
    assert rows and {r["machine_name"] for r in rows} == {SHOWN_NAME}
    assert {r["owner"] for r in rows} == {SHOWN_OWNER}
    if stem == "findings":
        assert any(r["reason"].startswith(f"{SHOWN_NAME} has not installed") for r in rows)
    con = duckdb.connect()
    try:
        names = {r[0] for r in con.execute(
            "select machine_name from read_parquet(?)", [str(hostile.out / f"{stem}.parquet")]).fetchall()}
    finally:
        con.close()
    assert HOSTILE_NAME in names  # Parquet: the value as stored, byte for byte (docs/exports.md)


def test_japanese_report_is_inert_too(tmp_path: Path) -> None:
    _hostile_ledger(tmp_path / "ledger.duckdb")
    (path,) = render_reports(tmp_path / "ledger.duckdb", RUN_ID, tmp_path / "ja", settings=Settings(language="ja"),
                             formats=("html",), generated_at=GENERATED_AT)
    html = path.read_text(encoding="utf-8")
    assert not FORBIDDEN.search(html)
    assert SHOWN_NAME.replace("<", "&lt;").replace(">", "&gt;") in html
