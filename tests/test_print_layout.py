"""audit.pdf stays within its pages: nothing the PDF lays out runs past the page margins (tests/layout.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest

from fixtures.report_ledger import RUN_ID, build_report_ledger
from hotpatch_audit import render
from hotpatch_audit.config import Settings
from layout import Overflow, document_overflows, overflows, split_header_words

GENERATED_AT = datetime(2025, 11, 18, 10, 30, tzinfo=UTC)
# A4 portrait with 20 mm margins: a 170 mm (481.9 pt) wide text area
PAGE = "<style>@page {{ size: A4 portrait; margin: 20mm }} body {{ margin: 0; font-size: 10pt }}</style>{}"
REGISTRY_PATH = (r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate"
                 r"\SetPolicyDrivenUpdateSourceForQualityUpdates\DoNotConnectToWindowsUpdateInternetLocations")


def _listing(found: list[Overflow]) -> str:
    return f"{len(found)} boxes run past the page margins:\n" + "\n".join(f"  {o}" for o in found)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_report_pdf_stays_within_the_page_margins(tmp_path: Path, language: str) -> None:
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    settings = Settings(language=language)
    static_dir = settings.project_root / "reports" / "static"
    html = render.report_html(ledger, RUN_ID, settings=settings, generated_at=GENERATED_AT)
    document = render.layout_pdf(html, static_dir)
    # what is laid out here is what audit.pdf is made of: as many pages as the PDF render_reports writes
    (pdf,) = render.render_reports(ledger, RUN_ID, tmp_path / "out", settings=settings, formats=("pdf",),
                                   generated_at=GENERATED_AT)
    assert len(document.pages) == len(pypdf.PdfReader(pdf).pages)
    found = document_overflows(document)
    assert found == [], _listing(found)


def _check(body: str) -> list[Overflow]:
    return overflows(PAGE.format(body), base_url=Path.cwd().as_uri() + "/")


@pytest.mark.parametrize(
    ("body", "tag", "side", "overshoot_pt"),
    [
        # 300 mm on a 170 mm text area: 130 mm (368.5 pt) past the right margin
        ('<table class="wide" style="width: 300mm"><tr><td>a</td><td>b</td></tr></table>', "table", "right", 368.5),
        # an unbreakable registry path widens its (auto-layout) table past the margin
        (f'<table class="wide"><tr><td>Set</td><td style="white-space: nowrap">{REGISTRY_PATH}</td></tr></table>',
         "table", "right", None),
        # text too long for its block sticks out although the block itself fits
        (f'<p class="wide" style="white-space: nowrap">{REGISTRY_PATH}</p>', "p", "right", None),
        # a negative margin pulls a block 10 mm (28.3 pt) into the left margin
        ('<div class="wide" style="margin-left: -10mm">pulled left</div>', "div", "left", 28.3),
    ],
    ids=["table-300mm", "nowrap-registry-path", "nowrap-paragraph", "negative-margin"],
)
def test_checker_names_what_runs_past_the_margin(body: str, tag: str, side: str, overshoot_pt: float | None) -> None:
    found = _check(body)
    assert found, "the checker missed a box past the margin"
    first = found[0]
    assert (first.page, first.tag, first.classes, first.side) == (1, tag, "wide", side), _listing(found)
    if overshoot_pt is not None:
        assert first.overshoot_pt == pytest.approx(overshoot_pt, abs=0.2)
    assert "wide" in _listing(found)


@pytest.mark.parametrize(
    "body",
    [
        '<table class="narrow"><tr><td>Set</td><td>HKLM\\SOFTWARE\\Policies</td></tr></table>',
        # the same registry path fits once the cell may break it anywhere
        ('<table class="fits" style="width: 100%; table-layout: fixed"><tr><td>Set</td>'
         f'<td style="overflow-wrap: anywhere">{REGISTRY_PATH}</td></tr></table>'),
        # a clipping box hides what sticks out of it: nothing is drawn in the margin
        f'<p style="white-space: nowrap; overflow: hidden">{REGISTRY_PATH}</p>',
    ],
    ids=["narrow-table", "overflow-wrap-anywhere", "clipped-by-overflow-hidden"],
)
def test_checker_passes_what_fits(body: str) -> None:
    found = _check(body)
    assert found == [], _listing(found)


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
def test_month_and_cost_table_headers_keep_their_words_whole(tmp_path: Path, page_size: str) -> None:
    """The ten-column month tables (reboot avoidance, cost) print each header word whole, inside its column: never
    'Unexpect' on one line and 'ed' on the next."""
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    settings = Settings(language="en", page_size=page_size)
    html = render.report_html(ledger, RUN_ID, settings=settings, generated_at=GENERATED_AT)
    document = render.layout_pdf(html, settings.project_root / "reports" / "static")
    assert "Unexpected" in html
    found = [*split_header_words(document, "months"), *split_header_words(document, "cost")]
    assert found == [], "\n".join(found)
