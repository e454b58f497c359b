"""render.py: audit.html, audit.pdf (real WeasyPrint, read back with pypdf) and the exports."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pypdf
import pytest

from fixtures.report_ledger import (
    FORMULA_NAME,
    PAST_RUN_ID,
    QUERIES,
    RUN_ID,
    XSS_NAME,
    XSS_OWNER,
    LedgerFigures,
    build_report_ledger,
)
from hotpatch_audit.config import Settings
from hotpatch_audit.render import (
    AUDITS,
    FINDINGS_COLUMNS,
    RenderError,
    context_fields_help,
    neutralise_cell,
    render_reports,
    static_only_fetcher,
)

GENERATED_AT = datetime(2025, 11, 18, 10, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Rendered:
    ledger: Path
    figures: LedgerFigures
    html: str
    pdf_text: str
    pdf: pypdf.PdfReader
    csv_rows: list[dict[str, str]]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """One ledger with an incomplete query, rendered once in all three formats for the whole module."""
    base = tmp_path_factory.mktemp("render")
    ledger = base / "ledger.duckdb"
    figures = build_report_ledger(ledger, incomplete_query=True)
    out = base / "out"
    paths = render_reports(ledger, RUN_ID, out, settings=Settings(csv_detail=True), generated_at=GENERATED_AT)
    assert [p.name for p in paths] == ["audit.html", "audit.pdf",
                                       "open_actions.csv", "exceptions.csv", "coverage_exceptions.csv",
                                       "findings.csv", "machine_months.csv",
                                       "open_actions.parquet", "exceptions.parquet", "coverage_exceptions.parquet",
                                       "findings.parquet", "machine_months.parquet"]
    reader = pypdf.PdfReader(out / "audit.pdf")
    with (out / "findings.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return Rendered(
        ledger=ledger,
        figures=figures,
        html=(out / "audit.html").read_text(encoding="utf-8"),
        pdf_text="\n".join(page.extract_text() for page in reader.pages),
        pdf=reader,
        csv_rows=rows,
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _page_with(reader: pypdf.PdfReader, needle: str) -> str:
    """The text of the first page holding needle (whitespace squeezed)."""
    for page in reader.pages:
        text = " ".join(page.extract_text().split())
        if needle in text:
            return text
    raise AssertionError(f"no page holds {needle!r}")


def test_pdf_has_cover_sections_page_numbers_and_figures(rendered: Rendered) -> None:
    text = rendered.pdf_text
    for title in AUDITS.values():
        assert title in text
    page1 = " ".join(rendered.pdf.pages[0].extract_text().split())
    # page 1 says what was audited, when, by which run
    for field in ("tenant contoso / 1 subscription", "period 2024-12 to 2025-11", "as of 2025-11-18 09:00", RUN_ID,
                  "At a glance", "Fix first"):
        assert field in page1
    assert "Calendar version 2025.11.1" in " ".join(text.split())  # the attestation names the calendar
    assert "Page 1 of" in text
    f = rendered.figures
    summary = " ".join(text.split())  # the key figures table may run over two pages
    # key figures: this run, the previous run (one machine, no machine-months), the change
    assert (f"Machines in scope {f.windows} Windows audited, {f.linux} Linux counted, not audited "
            f"{f.machines_total} 1 +{f.machines_total - 1} ▲") in summary
    assert f"{f.reboots_avoided} 0 +{f.reboots_avoided} ▲" in summary  # year to date: the whole 2025 period
    assert f"{f.downtime_minutes} min 0 min +{f.downtime_minutes} min ▲" in summary


def test_pdf_has_toc_page_numbers_bookmarks_and_running_header(rendered: Rendered) -> None:
    toc = _page_with(rendered.pdf, "Contents")
    assert re.search(r"Reboot avoidance \.+ \d+", toc)
    titles = [o.title for o in rendered.pdf.outline if not isinstance(o, list)]
    assert titles == ["At a glance", "Attestation", "Summary", *AUDITS.values(), "Owners and subscriptions",
                      "Waivers", "Appendix: the period's exceptions", "Methodology and evidence"]
    assert "Windows Server hotpatch audit VBS blockers" in rendered.pdf_text  # header: title + section


def test_html_is_self_contained_and_has_the_sections(rendered: Rendered) -> None:
    html = rendered.html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html
    assert "<link" not in html
    assert "<svg" in html  # charts inline
    for audit, title in AUDITS.items():
        assert f'id="sec-{audit}"' in html
        assert title in html


def test_untrusted_strings_are_escaped_in_html_and_literal_in_pdf(rendered: Rendered) -> None:
    html = rendered.html
    # one <script>: our own reports/static/report.js, inlined; no data ends up in it
    assert html.lower().count("<script") == 1
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]
    assert script.strip() == (ROOT / "reports" / "static" / "report.js").read_text(encoding="utf-8").strip()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    squashed = _squash(rendered.pdf_text)
    assert _squash(XSS_NAME) in squashed
    assert _squash(XSS_OWNER) in squashed


def test_interactive_parts_are_html_only(rendered: Rendered) -> None:
    """The search bar, the machine index and the script are for the screen; the PDF has none of them."""
    for text in ("Machine index", "Show all machines", "Filter rows", "textContent"):
        assert text not in rendered.pdf_text
    assert 'id="machines"' in rendered.html and 'id="report-search"' in rendered.html


def test_csv_has_all_findings_in_stable_columns_and_neutralised_formulas(rendered: Rendered) -> None:
    rows = rendered.csv_rows
    assert list(rows[0].keys()) == list(FINDINGS_COLUMNS)
    assert len(rows) == rendered.figures.findings
    assert {r["run_id"] for r in rows} == {RUN_ID}
    names = {r["machine_name"] for r in rows}
    assert "'" + FORMULA_NAME in names
    assert FORMULA_NAME not in names
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("web-01", "web-01"),
        (None, None),
        (3, 3),
    ],
)
def test_neutralise_cell(value: object, expected: object) -> None:
    assert neutralise_cell(value) == expected


def test_coverage_box_says_incomplete_first(rendered: Rendered) -> None:
    page1 = rendered.html.split('id="glance"', 1)[1]
    first = re.search(r"<p class=\"coverage-line ([^\"]+)\">", page1)
    assert first and first.group(1) == "coverage-incomplete"
    assert "Coverage is incomplete" in " ".join(rendered.pdf.pages[0].extract_text().split())  # on page 1
    assert f"1 of {len(QUERIES)} queries incomplete or failed" in rendered.pdf_text
    assert "installed_patches" in rendered.html


def test_complete_run_says_complete_and_timezone_moves_as_of(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    tokyo = Settings(timezone="Asia/Tokyo")
    (html_path,) = render_reports(
        ledger, RUN_ID, tmp_path / "t", settings=tokyo, formats=("html",), generated_at=GENERATED_AT
    )
    html = html_path.read_text(encoding="utf-8")
    assert "2025-11-18 18:00 JST (UTC+09:00)" in html  # as_of 09:00 UTC
    (utc_path,) = render_reports(
        ledger, RUN_ID, tmp_path / "u", settings=Settings(), formats=("html",), generated_at=GENERATED_AT
    )
    assert "2025-11-18 09:00 UTC" in utc_path.read_text(encoding="utf-8")
    # machines with stale data keep coverage incomplete even when every query is complete
    assert f"0 of {len(QUERIES)} queries" not in html


def test_past_run_renders_and_unknown_run_fails(rendered: Rendered, tmp_path: Path) -> None:
    paths = render_reports(
        rendered.ledger,
        PAST_RUN_ID,
        tmp_path,
        settings=Settings(),
        formats=("html", "csv"),
        generated_at=GENERATED_AT,
    )
    assert PAST_RUN_ID in paths[0].read_text(encoding="utf-8")
    assert len(paths[1].read_text(encoding="utf-8").splitlines()) == 2
    with pytest.raises(RenderError, match="not in the ledger"):
        render_reports(rendered.ledger, "no-such-run", tmp_path, settings=Settings(), formats=("html",))


def test_render_errors_are_the_projects_render_error() -> None:
    from hotpatch_audit import errors

    assert RenderError is errors.RenderError and issubclass(RenderError, errors.HotpatchAuditError)


@pytest.mark.parametrize("fmt, formats", [("html", ("html",)), ("csv", ("csv",)), ("csv", ("html", "csv"))])
def test_a_failed_write_is_one_render_error_naming_the_file(
    rendered: Rendered, tmp_path: Path, fmt: str, formats: tuple[str, ...]
) -> None:
    """A file system failure (here: the target is a folder) surfaces as errors.RenderError naming the file; the CLI
    guard prints it as one line with exit code 3. So does an export's, written beside the HTML on its own thread."""
    import typer

    from hotpatch_audit.console import guard

    name = {"html": "audit.html", "pdf": "audit.pdf", "csv": "open_actions.csv"}[fmt]
    (tmp_path / name).mkdir()

    def render() -> None:
        render_reports(rendered.ledger, RUN_ID, tmp_path, settings=Settings(), formats=formats)

    with pytest.raises(RenderError) as failed:
        render()
    message = str(failed.value)
    assert message.startswith(f"cannot write {tmp_path / name}: ") and "\n" not in message
    assert isinstance(failed.value.__cause__, OSError)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    with pytest.raises(typer.Exit) as exited:
        guard(render)()
    assert exited.value.exit_code == 3


def test_template_and_weasyprint_failures_are_render_errors(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jinja2
    import weasyprint

    from hotpatch_audit import render

    def broken_template(*args: object) -> str:
        raise jinja2.TemplateError("'dict object' has no attribute 'x'\nsecond line")

    with monkeypatch.context() as m:
        m.setattr(render, "_render_html", broken_template)
        with pytest.raises(RenderError, match=r"^cannot write .*audit\.html: TemplateError: 'dict object' has no "
                                              r"attribute 'x'$"):
            render_reports(rendered.ledger, RUN_ID, tmp_path, settings=Settings(), formats=("html",))

    def broken_pdf(*args: object, **kwargs: object) -> None:
        raise ValueError("cannot subset font")

    monkeypatch.setattr(weasyprint.document.Document, "write_pdf", broken_pdf)
    with pytest.raises(RenderError, match=r"^cannot write .*audit\.pdf: ValueError: cannot subset font$"):
        render_reports(rendered.ledger, RUN_ID, tmp_path, settings=Settings(), formats=("pdf",))
    assert not (tmp_path / "audit.pdf").exists()


def test_pdf_lists_top_n_and_points_to_csv(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    (html_path,) = render_reports(
        ledger, RUN_ID, tmp_path, settings=Settings(pdf_top_n=1), formats=("html",), generated_at=GENERATED_AT
    )
    html = html_path.read_text(encoding="utf-8")
    assert "more in open_actions.csv" not in html  # HTML lists up to 2,000 per section
    # The PDF medium uses the same templates with pdf_top_n as the cap.
    from hotpatch_audit import render

    con = duckdb.connect(str(ledger), read_only=True)
    data = render._read_run(con, RUN_ID, 1)
    con.close()
    vbs = next(s for s in data.sections if s.audit == "vbs_blockers")
    # two open actions (VBS not enabled / not running); VBS_UNKNOWN (unknown data) is a coverage gap, not an action
    assert len(vbs.actions) == 1 and vbs.actions_total == 2 and vbs.actions_more == 1


def test_render_opens_the_ledger_read_only(rendered: Rendered, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    ledger.write_bytes(rendered.ledger.read_bytes())
    ledger.chmod(0o444)  # a read-write open would fail on this file
    try:
        paths = render_reports(ledger, RUN_ID, tmp_path / "out", settings=Settings(), formats=("csv",))
    finally:
        ledger.chmod(0o644)
    # by default the CSV exports are the two registers and the coverage exceptions; the complete detail is Parquet
    # (CSV with csv_detail)
    assert [p.name for p in paths] == ["open_actions.csv", "exceptions.csv", "coverage_exceptions.csv"]
    assert all(p.exists() for p in paths)


def test_fetcher_refuses_everything_but_static_assets(tmp_path: Path) -> None:
    static = Path(__file__).resolve().parents[1] / "reports" / "static"
    fetch = static_only_fetcher(static)
    assert b"@page" in fetch.fetch((static / "print.css").as_uri()).read()
    assert fetch.fetch("data:text/plain,hi").read() == b"hi"
    for url in (
        "https://example.com/x.css",
        "http://169.254.169.254/",
        "file:///etc/passwd",
        (static / ".." / "templates" / "base.html.j2").as_uri(),
    ):
        with pytest.raises(BaseException, match="refused"):
            fetch.fetch(url)


def test_context_fields_are_documented() -> None:
    undocumented = [f"{cls}.{name}" for cls, name, text in context_fields_help() if not text]
    assert undocumented == []


def test_every_section_template_names_an_audit() -> None:
    """sections/<audit>.html.j2 exist only for audits of the metadata; _default shows any other."""
    sections = Path(__file__).resolve().parents[1] / "reports" / "templates" / "sections"
    assert {p.name.removesuffix(".html.j2") for p in sections.glob("*.html.j2")} - {"_default"} <= set(AUDITS)
