"""audit.html in a real headless browser: Debian's chromium driven by Playwright, offline (file://, every
other request refused and recorded), on the demo ledger's report. It checks what an owner does with the
page: sort, filter, search, open a machine's deep link, read it on a phone, print it.

Chromium comes from the system (`scripts/test.sh` installs Debian's `chromium`); Playwright never
downloads a browser here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from fixtures.report_ledger import RUN_ID as FIXTURE_RUN_ID
from fixtures.report_ledger import XSS_NAME, XSS_OWNER, build_report_ledger
from hotpatch_audit.config import Settings
from hotpatch_audit.render import machine_anchor, render_reports

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Row tables whose rows belong to one machine each (the deep link filters these).
MACHINE_ROWS = "table[data-machine-rows] tbody tr"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: `bash scripts/test.sh` installs Debian's chromium "
            "(or: apt-get install chromium)"
        )
    return path


@dataclass
class Tab:
    """A page of audit.html with everything it tried that it should not have."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # anything but file: and data: URLs
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [], f"the report tried the network: {self.requests}"
        assert self.dialogs == [], f"a dialog opened (injected script?): {self.dialogs}"

    def visible(self, selector: str) -> list[Any]:
        return list(
            self.page.eval_on_selector_all(
                selector, "els => els.filter(e => e.getClientRects().length > 0).map(e => e.dataset.machine || '')"
            )
        )


@dataclass(frozen=True)
class DemoReport:
    html: Path
    ledger: Path
    run_id: str


@pytest.fixture(scope="module")
def demo_report(demo_history: tuple[Settings, list[str]]) -> DemoReport:
    """The demo ledger's audit.html (the session's demo history renders its last run)."""
    settings, run_ids = demo_history
    html = settings.out_dir / run_ids[-1] / "audit.html"
    assert html.is_file()
    return DemoReport(html=html, ledger=settings.ledger_path, run_id=run_ids[-1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    pw: Playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_report(browser: Browser) -> Iterator[Callable[..., Tab]]:
    contexts: list[BrowserContext] = []

    def open_(path: Path, fragment: str = "", *, width: int = 1280, height: int = 900, javascript: bool = True) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
        contexts.append(context)
        tab = Tab(page=context.new_page())

        def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                tab.requests.append(url)
                route.abort()

        context.route("**/*", guard)
        tab.page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else tab.requests.append(r.url))
        tab.page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))

        def dialog(d: Any) -> None:
            tab.dialogs.append(d.message)
            d.dismiss()

        tab.page.on("dialog", dialog)
        tab.page.goto(path.as_uri() + fragment)
        if javascript:
            tab.page.wait_for_function("() => !document.getElementById('report-ui').hidden")
        return tab

    yield open_
    for c in contexts:
        c.close()


def _column(tab: Tab, table: str, index: int) -> list[str]:
    return list(
        tab.page.eval_on_selector_all(
            f"{table} tbody tr", f"rows => rows.filter(r => !r.hidden).map(r => r.cells[{index}].textContent.trim())"
        )
    )


def _ints(values: list[str]) -> list[int]:
    return [int(v.replace(",", "")) for v in values]


def _header(tab: Tab, table: str, text: str) -> Any:
    return tab.page.locator(f"{table} thead th").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def _machines_with_findings(report: DemoReport) -> list[tuple[str, str, int]]:
    """(machine_id, machine_name, listed findings) of the run, from the ledger, most findings first."""
    con = duckdb.connect(str(report.ledger), read_only=True)
    try:
        return [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in con.execute(
                # the rows the audit sections list: open actions and waived findings (report.action_items)
                "select machine_id, any_value(machine_name), count(*) from report.action_items "
                "where run_id = ? group by machine_id order by 3 desc, 2",
                [report.run_id],
            ).fetchall()
        ]
    finally:
        con.close()


# --- static -------------------------------------------------------------------------------------


def test_report_script_never_parses_data_as_html() -> None:
    js = (ROOT / "reports" / "static" / "report.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert "textContent" in js


def test_html_inlines_the_script_once_and_links_nothing(demo_report: DemoReport) -> None:
    html = demo_report.html.read_text(encoding="utf-8")
    assert len(re.findall(r"<script\b", html, re.I)) == 1
    assert "<script>\n/* hotpatch-audit report" in html
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", html, re.I)
    assert "<link" not in html and "@import" not in html
    assert 'id="machines"' in html and 'id="report-search"' in html


# --- in the browser -----------------------------------------------------------------------------


def test_report_opens_offline_without_errors(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    tab = open_report(demo_report.html)
    assert tab.page.locator("th .sort-button").count() > 20
    assert tab.page.locator(".table-tools").count() >= 4
    assert tab.page.locator("#report-search").is_visible()
    # the demo fleet carries hostile tag text (test_demo_e2e): nothing of it may run
    tab.assert_clean()


def test_clicking_a_header_sorts_numbers_as_numbers(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    tab = open_report(demo_report.html)
    table = "table.machine-index"
    first = _ints(_column(tab, table, 3))  # Fail, as the view ranks it: most first
    assert first == sorted(first, reverse=True) and len(set(first)) > 1
    fail = _header(tab, table, "Fail")
    fail.locator("button").click()
    assert fail.get_attribute("aria-sort") == "ascending"
    assert _ints(_column(tab, table, 3)) == sorted(first)
    fail.locator("button").click()
    assert fail.get_attribute("aria-sort") == "descending"
    assert _ints(_column(tab, table, 3)) == sorted(first, reverse=True)
    # numbers with thousands separators and different lengths: lexical order would differ
    queries = "table.queries"
    rows = _column(tab, queries, 3)
    assert sorted(rows) != sorted(rows, key=lambda v: int(v.replace(",", ""))), rows  # the check means something
    header = _header(tab, queries, "Rows")
    header.locator("button").press("Enter")  # keyboard works too
    assert header.get_attribute("aria-sort") == "ascending"
    assert _ints(_column(tab, queries, 3)) == sorted(_ints(rows))
    assert _header(tab, queries, "Pages").get_attribute("aria-sort") == "none"
    tab.assert_clean()


def test_filter_box_and_status_select_hide_rows_and_say_so(
    demo_report: DemoReport, open_report: Callable[..., Tab]
) -> None:
    tab = open_report(demo_report.html)
    table = "#t-missed_hotpatches-actions"
    total = tab.page.locator(f"{table} tbody tr").count()
    assert total > 5
    tools = tab.page.locator(f".table-tools:has(+ {table})")
    counter = tools.locator(".row-count")
    assert counter.text_content() == f"{total} rows"
    name = tab.page.locator(f"{table} tbody tr .machine-name").first.text_content() or ""
    tools.locator("input.table-filter").fill(name)
    shown = tab.page.locator(f"{table} tbody tr:visible")
    n = shown.count()
    assert 0 < n < total
    assert all(name.lower() in (t or "").lower() for t in shown.all_text_contents())
    assert counter.text_content() == f"{n} of {total} rows"
    tools.locator("input.table-filter").fill("")
    statuses = tab.page.eval_on_selector_all(f"{table} tbody tr", "rs => rs.map(r => r.dataset.status)")
    assert "unknown" in statuses and len(set(statuses)) > 1
    tools.locator("select[data-attr=status]").select_option("unknown")
    assert shown.count() == statuses.count("unknown")
    assert set(
        tab.page.eval_on_selector_all(f"{table} tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.status)")
    ) == {"unknown"}
    assert counter.text_content() == f"{statuses.count('unknown')} of {total} rows"
    tab.assert_clean()


def test_search_box_finds_a_machine_by_name_and_by_resource_id(
    demo_report: DemoReport, open_report: Callable[..., Tab]
) -> None:
    machine_id, name, findings = _machines_with_findings(demo_report)[0]
    tab = open_report(demo_report.html)
    anchor = machine_anchor(machine_id)
    tab.page.keyboard.press("/")  # the search shortcut
    assert tab.page.evaluate("document.activeElement.id") == "report-search"
    search = tab.page.locator("#report-search")

    def find(text: str) -> None:
        search.fill(text)
        tab.page.wait_for_function(
            "q => document.getElementById('report-search').dataset.applied === q", arg=" ".join(text.split()).lower()
        )

    find(machine_id.upper())  # resource ids are not shown, but searched; case does not matter
    assert anchor in tab.visible(MACHINE_ROWS)
    assert tab.page.locator(f"tr#{anchor}").is_visible()
    # machine ids end in the name: a longer name with the same start may match too, nothing else does
    names = tab.page.locator(f"{MACHINE_ROWS}:visible .machine-name").all_text_contents()
    assert names and all(name.lower() in t.lower() for t in names)
    index_rows = tab.page.locator("table.machine-index tbody tr")
    find(name)
    shown = tab.page.locator("table.machine-index tbody tr:visible")
    assert 0 < shown.count() < index_rows.count()
    assert all(name.lower() in t.lower() for t in shown.all_text_contents())
    assert tab.page.locator(f"tr#{anchor}").is_visible()
    count = tab.page.locator("#report-search-count").text_content() or ""
    assert re.fullmatch(r"\d+ matching rows in \d+ tables", count), count
    find("no-such-machine-anywhere")
    assert tab.page.locator(f"{MACHINE_ROWS}:visible").count() == 0
    search.press("Escape")
    tab.page.wait_for_function("() => document.getElementById('report-search').dataset.applied === ''")
    assert shown.count() == index_rows.count()
    tab.assert_clean()


def test_deep_link_shows_that_machines_findings_only(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    machines = _machines_with_findings(demo_report)
    machine_id, name, findings = machines[len(machines) // 2]
    anchor = machine_anchor(machine_id)
    tab = open_report(demo_report.html, f"#{anchor}")
    banner = tab.page.locator("#focus-banner")
    assert banner.is_visible()
    assert name in (banner.text_content() or "")
    assert tab.page.evaluate("document.querySelector(':target').id") == anchor
    visible = tab.visible(MACHINE_ROWS)
    assert set(visible) == {anchor}
    listed = tab.page.locator(f"section.audit-section table.actions tbody tr[data-machine='{anchor}']:visible")
    assert listed.count() == findings  # the audit sections list every finding of it that is not a pass
    assert f"{findings} findings in the audit sections" in (banner.text_content() or "")
    # the target is on screen and highlighted
    assert tab.page.locator(f"tr#{anchor}").is_visible()
    assert tab.page.evaluate(f"document.getElementById('{anchor}').getBoundingClientRect().top") < 900
    tab.page.locator("#focus-clear").click()
    assert not banner.is_visible()
    assert len(set(tab.visible(MACHINE_ROWS))) > 1
    assert "#m-" not in tab.page.url
    # a machine link in a findings list opens that machine's deep link
    other = tab.page.locator("#t-vbs_blockers-actions a.machine-link").first
    target = (other.get_attribute("href") or "")[1:]
    other.click()
    tab.page.wait_for_function("() => document.documentElement.classList.contains('has-focus')")
    assert set(tab.visible(MACHINE_ROWS)) == {target}
    tab.assert_clean()


def test_page_fits_a_phone(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    tab = open_report(demo_report.html, width=390, height=844)
    overflow = tab.page.evaluate("""() => ({
        doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, view: window.innerWidth,
        wide: [...document.body.querySelectorAll('*')].filter(e => !e.closest('table, svg') &&
              e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)
    })""")
    assert overflow["doc"] <= overflow["view"] and overflow["body"] <= overflow["view"], overflow
    assert overflow["wide"] == [], overflow
    # wide tables (the eleven columns of the month table) scroll inside themselves; the action lists wrap to fit
    scrolls = tab.page.eval_on_selector("#sec-reboot_avoidance table.months", "t => [t.scrollWidth, t.clientWidth]")
    assert scrolls[0] > scrolls[1]
    actions = tab.page.eval_on_selector("#t-missed_hotpatches-actions", "t => [t.scrollWidth, t.clientWidth]")
    assert actions[0] <= actions[1] + 1
    tab.assert_clean()


def test_on_a_phone_no_word_of_page_one_breaks_between_its_letters(
    demo_report: DemoReport, open_report: Callable[..., Tab]
) -> None:
    """The Fix-first list's headers, severity badges and due words, the trend's row labels and the cells of the
    month and cost tables stay whole words on a phone ("Sev/erit/y", "cri/tic/al", "overdu/e", "hotp/atch" and
    "2025-/12" were hard to read): a word whose letters sit on two lines is broken (the table scrolls sideways
    instead)."""
    tab = open_report(demo_report.html, width=390, height=844)
    broken = tab.page.evaluate("""(sel) => {
        const broken = [];
        for (const el of document.querySelectorAll(sel)) {
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                for (const m of n.data.matchAll(/\\S+/g)) {
                    const r = document.createRange();
                    r.setStart(n, m.index);
                    r.setEnd(n, m.index + m[0].length);
                    const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
                    if (tops.size > 1) broken.push(m[0]);
                }
            }
        }
        return broken;
    }""", "table.top-actions th, table.top-actions .badge, table.top-actions td.col-due .meta, table.trend-mini td,"
          " table.months td, table.cost td")
    words = tab.page.eval_on_selector_all("table.top-actions .badge", "es => es.length")
    assert words > 0
    assert tab.page.eval_on_selector_all("table.months td, table.cost td", "es => es.length") > 0
    assert broken == []
    tab.assert_clean()


@pytest.mark.slow  # the browser prints the whole report (about 240 pages): 10-20 s
def test_printing_hides_controls_prints_every_row_and_repeats_headers(
    demo_report: DemoReport, open_report: Callable[..., Tab], tmp_path: Path
) -> None:
    tab = open_report(demo_report.html)
    table = "#t-missed_hotpatches-actions"
    tab.page.locator(f".table-tools:has(+ {table}) select[data-attr=status]").select_option("unknown")
    hidden = tab.page.locator(f"{table} tbody tr[hidden]")
    assert hidden.count() > 0 and not hidden.first.is_visible()
    hidden_name = hidden.first.locator(".machine-name").text_content() or ""
    tab.page.emulate_media(media="print")
    assert not tab.page.locator("#report-ui").is_visible()
    assert not tab.page.locator(".table-tools").first.is_visible()
    assert hidden.first.is_visible()
    assert tab.page.locator(f"{table} tbody tr:visible").count() == tab.page.locator(f"{table} tbody tr").count()
    # the browser's own print: every row, no controls, the header of long tables on every page
    pdf = tmp_path / "printed.pdf"
    tab.page.pdf(path=str(pdf))
    pages = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split("\f")
    text = "\n".join(pages)
    assert hidden_name in text
    assert "Filter rows" not in text and "Show all machines" not in text
    headed = [p for p in pages if p.strip().startswith("Severity /")]
    # long lists run over pages (one action per machine and cause keeps them shorter than a finding per month)
    assert len(headed) >= 5, f"{len(headed)} of {len(pages)} pages start with the findings header"
    tab.assert_clean()


def test_without_javascript_the_page_is_complete(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    machine_id, _name, _ = _machines_with_findings(demo_report)[0]
    anchor = machine_anchor(machine_id)
    tab = open_report(demo_report.html, f"#{anchor}", javascript=False)
    assert not tab.page.locator("#report-ui").is_visible()
    assert tab.page.locator(".table-tools").count() == 0
    rows = tab.page.locator(MACHINE_ROWS)
    assert rows.count() == tab.page.locator(f"{MACHINE_ROWS}:visible").count()
    assert tab.page.evaluate("document.querySelector(':target').id") == anchor
    tab.assert_clean()


def test_summary_screenshot_is_a_png(demo_report: DemoReport, open_report: Callable[..., Tab]) -> None:
    """Screenshots of the summary's first screen on a laptop and on a phone, kept as test artifacts."""
    out = Path(os.environ.get("PYTEST_ARTIFACTS") or ROOT / "test-artifacts") / "html"
    out.mkdir(parents=True, exist_ok=True)
    for name, width, height in (("summary-laptop.png", 1280, 1600), ("summary-phone.png", 390, 1400)):
        tab = open_report(demo_report.html, width=width, height=height)
        tab.page.evaluate("document.getElementById('summary').scrollIntoView()")
        path = out / name
        path.unlink(missing_ok=True)
        tab.page.screenshot(path=str(path))
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000, (path, len(data))
        print(f"screenshot: {path}")
        tab.assert_clean()


def test_hostile_names_stay_text_in_search_and_deep_links(tmp_path: Path, open_report: Callable[..., Tab]) -> None:
    """The render fixture's machine is called <script>...</script> and its owner <img onerror>: the script
    copies them into the page only as text."""
    ledger = tmp_path / "ledger.duckdb"
    build_report_ledger(ledger)
    html = render_reports(
        ledger,
        FIXTURE_RUN_ID,
        tmp_path / "out",
        settings=Settings(),
        formats=("html",),
        generated_at=datetime(2025, 11, 18, 10, 30, tzinfo=UTC),
    )[0]
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        machine_id = con.execute("select machine_id from core.machines where machine_name = ?", [XSS_NAME]).fetchone()
    finally:
        con.close()
    assert machine_id is not None
    anchor = machine_anchor(machine_id[0])
    tab = open_report(html, f"#{anchor}")
    assert XSS_NAME in (tab.page.locator("#focus-banner .focus-text").text_content() or "")
    tab.page.locator("#focus-clear").click()
    tab.page.locator("#report-search").fill(XSS_OWNER)
    tab.page.wait_for_function("() => document.getElementById('report-search-count').textContent !== ''")
    assert set(tab.visible(MACHINE_ROWS)) == {anchor}
    assert tab.page.locator("img").count() == 0 and tab.page.locator("script").count() == 1
    tab.assert_clean()
