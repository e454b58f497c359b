"""The demo report as its three readers get it (issue: reports for three readers).

The README's demo (500 machines, 14 monthly runs, the demo waivers) is built once. Its PDF, in English and in
Japanese, must stay within the page limits and inside every page's margins; page 1 must carry the manager's
figures, the attestation the auditor's items, and every open action a due date from its severity's window. The
figures are checked against queries of the ledger's own tables, not against the report views."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pypdf
import pytest

from hotpatch_audit import render
from hotpatch_audit.config import Settings
from hotpatch_audit.pipeline import RunRequest, monthly_as_of_series, run_audit
from layout import document_overflows

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # the demo's last monthly run, fixed so results do not move
GENERATED_AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
BODY_PAGES, TOTAL_PAGES = 20, 30  # the 500-machine demo: body (before the appendix) and whole PDF
APPENDIX = {"en": "Appendix: the period's exceptions"}
COST_PER_HOUR = 250.0


@dataclass(frozen=True)
class Demo:
    settings: Settings
    run_id: str
    previous_run_id: str


@dataclass(frozen=True)
class Pdf:
    text: str  # every page's text, whitespace squeezed
    pages: list[str]
    reader: pypdf.PdfReader
    overflows: list[object]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """What `bash scripts/demo.sh` builds: the default demo fleet, 14 monthly runs, the demo waiver file."""
    base = tmp_path_factory.mktemp("readers")
    settings = Settings(ledger_path=base / "ledger.duckdb", out_dir=base / "reports", work_dir=base / "work",
                        waivers_path=ROOT / "data" / "demo-waivers.yaml", downtime_cost_per_hour=COST_PER_HOUR)
    run_ids = [run_audit(settings, RunRequest(source="demo", as_of=as_of), render=False).run_id
               for as_of in monthly_as_of_series(END, 14)]
    return Demo(settings, run_ids[-1], run_ids[-2])


def _pdf(demo: Demo, language: str) -> Pdf:
    """The demo's audit.pdf in one language, laid out as render_reports lays it out, read back."""
    settings = demo.settings.model_copy(update={"language": language})
    html = render.report_html(settings.ledger_path, demo.run_id, settings=settings, generated_at=GENERATED_AT)
    document = render.layout_pdf(html, settings.project_root / "reports" / "static")
    reader = pypdf.PdfReader(io.BytesIO(document.write_pdf()))
    pages = [" ".join(p.extract_text().split()) for p in reader.pages]
    return Pdf(" ".join(pages), pages, reader, document_overflows(document))


@pytest.fixture(scope="module")
def pdf_en(demo: Demo) -> Pdf:
    return _pdf(demo, "en")


@pytest.fixture(scope="module")
def pdf_ja(demo: Demo) -> Pdf:
    return _pdf(demo, "ja")


def _body_pages(pdf: Pdf) -> int:
    """Pages before the appendix (the first bookmark after Waivers: the period's exceptions)."""
    titles = [(o.title, pdf.reader.get_destination_page_number(o)) for o in pdf.reader.outline
              if not isinstance(o, list)]
    waivers = next(i for i, (title, _) in enumerate(titles) if title in ("Waivers", "適用除外"))
    return titles[waivers + 1][1]  # 0-based page of the appendix = pages before it


@pytest.mark.parametrize("language", ["en", "ja"])
def test_demo_pdf_fits_its_pages_and_its_margins(demo: Demo, pdf_en: Pdf, pdf_ja: Pdf, language: str) -> None:
    pdf = pdf_en if language == "en" else pdf_ja
    assert pdf.overflows == [], "\n".join(str(o) for o in pdf.overflows)
    assert len(pdf.pages) <= TOTAL_PAGES
    assert _body_pages(pdf) <= BODY_PAGES


def _one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> object:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def test_page_one_answers_the_manager(demo: Demo, pdf_en: Pdf) -> None:
    page1 = pdf_en.pages[0]
    con = duckdb.connect(str(demo.settings.ledger_path), read_only=True)
    try:
        def month_figures(run_id: str) -> tuple[str, float, float, int, int]:
            month = _one(con, "select max(month) from audit.machine_months where run_id = ? and kind = 'hotpatch'",
                         run_id)
            known = "outcome not in ('unknown', 'not_applicable')"
            efficacy = _one(con, f"select count(*) filter (where outcome = 'avoided') / count(*) filter "
                                 f"(where {known}) from audit.machine_months where run_id = ? and month = ? "
                                 "and kind = 'hotpatch' and enrolled_at_start", run_id, month)
            coverage = _one(con, f"select count(*) filter (where outcome = 'avoided') / count(*) filter "
                                 f"(where {known}) from audit.machine_months where run_id = ? and month = ? "
                                 "and kind = 'hotpatch'", run_id, month)
            avoided = _one(con, "select count(*) from audit.machine_months where run_id = ? and month = ? "
                                "and outcome = 'avoided'", run_id, month)
            avoidable = _one(con, "select count(*) from audit.machine_months where run_id = ? and month = ? "
                                  "and outcome = 'avoidable_reboot'", run_id, month)
            return str(month), float(efficacy), float(coverage), int(avoided), int(avoidable)  # type: ignore[arg-type]

        month, efficacy, coverage, avoided, avoidable = month_figures(demo.run_id)
        _, efficacy_before, coverage_before, avoided_before, _ = month_figures(demo.previous_run_id)
        ytd = int(_one(con, "select count(*) from audit.machine_months where run_id = ? and outcome = 'avoided' "
                            "and month between '2026-01' and '2026-11'", demo.run_id))  # type: ignore[call-overload]
        top = con.execute(
            "select machine_name from audit.open_actions where run_id = ? and status in ('fail', 'warn') "
            "qualify row_number() over (partition by machine_id order by severity_rank, days_overdue desc nulls last,"
            " due_date, root_cause) = 1 "
            "order by severity_rank, days_overdue desc nulls last, due_date, machine_name, machine_id limit 10",
            [demo.run_id]).fetchall()
    finally:
        con.close()
    # the rates of the latest hotpatch month, each beside its previous value
    assert f"Hotpatch efficacy {_pct(efficacy)} previous {_pct(efficacy_before)}" in page1
    assert f"Reboot-free coverage {_pct(coverage)} previous {_pct(coverage_before)}" in page1
    assert f"Reboots avoided {avoided:,} previous {avoided_before:,} {month}; year to date {ytd:,}" in page1
    hours = avoided * 15 / 60
    assert f"Downtime avoided {hours:,.1f} h" in page1
    # the money value of the year's avoided downtime at the stated hourly cost, beside the licence cost
    assert f"${round(ytd * 15 / 60 * COST_PER_HOUR):,}" in page1 and "$250 per hour of downtime" in page1
    assert re.search(r"Licence cost \$[\d,]+ previous \$[\d,]+ year to date, from the dated price table", page1)
    assert f"Opportunity {avoidable:,}" in page1
    # the ten machines to fix first, in that order, each with a due date
    names = [n for (n,) in top]
    assert len(names) == 10
    positions = [page1.index(f"{rank} {name}") for rank, name in enumerate(names, start=1)]
    assert positions == sorted(positions)
    assert len(re.findall(r"\d{4}-\d{2}-\d{2} (?:\d+ days overdue|in \d+ days)", page1)) >= 10


def test_attestation_carries_scope_compliance_runs_calendar_and_coverage(demo: Demo, pdf_en: Pdf) -> None:
    start = next(i for i, p in enumerate(pdf_en.pages) if "Attestation Scope Audited:" in p)
    attestation = " ".join(pdf_en.pages[start:start + 2])
    assert "Audited: 468 Windows machines" in attestation and "Counted, not audited: 32 Linux machines" in attestation
    con = duckdb.connect(str(demo.settings.ledger_path), read_only=True)
    try:
        # the month's update within grace on enrolled machines: an independent count for one month
        month = "2026-08"
        enrolled, exceptions = con.execute(
            """with mm as (select machine_id, is_off_track from audit.machine_months
                           where run_id = $1 and month = $2 and enrolled_at_start and is_due),
               bad as (select distinct machine_id from audit.findings where run_id = $1 and month = $2
                       and audit = 'missed_hotpatches' and status in ('fail', 'warn', 'waived')
                       and code in ('missed', 'baseline_missed', 'off_track'))
               select count(*), count(*) filter (where is_off_track or machine_id in (select machine_id from bad))
               from mm""", [demo.run_id, month]).fetchone() or (0, 0)
        runs = [r for (r,) in con.execute(
            "select run_id from meta.runs where status <> 'superseded' and as_of >= '2025-12-01' order by as_of"
        ).fetchall()]
        unverified = con.execute(
            "select count(*) from core.run_calendar_months where run_id = ? and month between '2025-12' and '2026-11'"
            " and not verified", [demo.run_id]).fetchone()
        gaps = con.execute(
            "select count(distinct c.machine_id) from audit.coverage c where c.run_id = $1 and exists (select 1 "
            "from audit.findings f where f.run_id = c.run_id and f.machine_id = c.machine_id "
            "and f.status = 'unknown')", [demo.run_id]).fetchone()
    finally:
        con.close()
    assert re.search(rf"{month} hotpatch {enrolled:,} \d+ {exceptions:,} ", attestation)
    for run_id in runs:  # every run of record of the period, the reporting run last
        assert run_id in attestation
    assert unverified and attestation.count("(not verified)") + attestation.count("(no row: default rule)") \
        >= unverified[0] > 0
    assert gaps and f"The {gaps[0]:,} machines an audit could not judge are listed in coverage_exceptions.csv" \
        in attestation
    for item in ("Compliance by month", "Runs in the period", "Release calendar used", "Coverage exceptions by audit",
                 "Method", "Reviewed by"):
        assert item in attestation


def test_every_open_action_is_due_by_its_severity_window(demo: Demo, tmp_path: Path) -> None:
    con = duckdb.connect(str(demo.settings.ledger_path), read_only=True)
    try:
        rows = con.execute(
            "select a.severity, a.days_overdue, a.opened_on, a.remediation_days, a.due_date, r.as_of, "
            "(select value from meta.settings s where s.run_id = a.run_id "
            " and s.key = 'remediation_days_' || a.severity) "
            "from audit.open_actions a join meta.runs r using (run_id) where a.run_id = ?", [demo.run_id]).fetchall()
    finally:
        con.close()
    assert rows
    windows = {"critical": 7, "high": 14, "medium": 30, "low": 90, "info": 180}  # the documented defaults
    for severity, days_overdue, opened_on, window, due, as_of, recorded in rows:
        assert window == windows[severity] == int(recorded)
        assert due == opened_on + timedelta(days=window)
        if days_overdue is not None:  # the clock starts at the due date of the longest exposure
            assert opened_on == as_of.date() - timedelta(days=days_overdue)
    # the owner's list is sorted by it
    paths = render.render_reports(demo.settings.ledger_path, demo.run_id, tmp_path, settings=demo.settings,
                                  formats=("csv",))
    with next(p for p in paths if p.name == "open_actions.csv").open(newline="", encoding="utf-8") as f:
        due_dates = [r["due_date"] for r in csv.DictReader(f)]
    assert len(due_dates) == len(rows) and due_dates == sorted(due_dates)
