"""Executive summary, charts and per-owner lists, on real demo ledgers rendered through WeasyPrint.

The key figures and their changes are checked against figures computed here by plain SQL over the
ledger's audit, core and meta tables, never by reading the report views that produce them.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pypdf
import pytest

from hotpatch_audit.config import Settings
from hotpatch_audit.pipeline import RunRequest, run_audit
from hotpatch_audit.render import render_reports

GENERATED_AT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
# chart title -> a colour its data is drawn in (charts.py), looked for on the page of its caption
CHART_COLOURS = {
    "Reboots avoided and taken per month": "#2e7d32",  # avoided
    "Reboot-free month rate by month": "#757575",  # the coverage line
    "Readiness funnel: machines passing each gate": "#1565c0",
    "Blockers by reason code": "#c62828",
    "Open findings by owner and severity": "#f9a825",  # medium
    "Enrolled versus eligible machines by month": "#1565c0",  # eligible
}


@dataclass(frozen=True)
class Demo:
    ledger: Path
    run_ids: list[str]
    html: str
    pdf: pypdf.PdfReader
    pdf_text: str  # whitespace collapsed to single spaces
    first_html: str  # the first monthly run: nothing before it


def _flat(text: str) -> str:
    return " ".join(text.split())


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def demo(demo_history: tuple[Settings, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The three-run demo ledger: its last run as HTML and PDF, its first run as HTML."""
    s, run_ids = demo_history
    out = tmp_path_factory.mktemp("summary")
    html_path, pdf_path = render_reports(
        s.ledger_path, run_ids[-1], out / "last", settings=s, formats=("html", "pdf"), generated_at=GENERATED_AT
    )
    (first,) = render_reports(
        s.ledger_path, run_ids[0], out / "first", settings=s, formats=("html",), generated_at=GENERATED_AT
    )
    reader = pypdf.PdfReader(pdf_path)
    return Demo(
        ledger=s.ledger_path,
        run_ids=run_ids,
        html=html_path.read_text(encoding="utf-8"),
        pdf=reader,
        pdf_text=_flat("\n".join(p.extract_text() for p in reader.pages)),
        first_html=first.read_text(encoding="utf-8"),
    )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> Any:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]


def _previous_run(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The latest good monthly run of the same scope before this one, by a query of its own."""
    return _scalar(
        con,
        """select (select p.run_id from meta.runs p
                   where p.scope = r.scope and p.is_monthly and p.status in ('succeeded', 'incomplete')
                     and p.as_of < r.as_of order by p.as_of desc limit 1)
           from meta.runs r where r.run_id = $1""",
        run_id,
    )


def _figures(con: duckdb.DuckDBPyConnection, run_id: str, has_previous: bool) -> dict[str, float | None]:
    """Every key figure of one run, straight from core.machines, audit.* and meta.*."""
    month = _scalar(con, "select strftime(as_of, '%Y-%m') from meta.runs where run_id = $1", run_id)
    year_start = month[:4] + "-01"
    per_reboot = _scalar(
        con,
        "select coalesce(max(try_cast(value as integer)), 15) from meta.settings "
        "where run_id = $1 and key = 'downtime_minutes_per_reboot'",
        run_id,
    )

    def months(outcome: str, first: str, last: str = month) -> int:
        return int(
            _scalar(
                con,
                "select count(*) from audit.machine_months where run_id = $1 and outcome = $2 and month between $3 and $4",
                run_id,
                outcome,
                first,
                last,
            )
        )

    latest_hotpatch = _scalar(
        con, "select max(month) from audit.machine_months where run_id = $1 and kind = 'hotpatch'", run_id
    )
    rate = _scalar(
        con,
        """select count(*) filter (where outcome = 'avoided')
                  / nullif(count(*) filter (where outcome not in ('unknown', 'not_applicable')), 0)
           from audit.machine_months where run_id = $1 and month = $2 and kind = 'hotpatch'""",
        run_id,
        latest_hotpatch,
    )
    efficacy = _scalar(
        con,
        """select count(*) filter (where outcome = 'avoided')
                  / nullif(count(*) filter (where outcome not in ('unknown', 'not_applicable')), 0)
           from audit.machine_months where run_id = $1 and month = $2 and kind = 'hotpatch' and enrolled_at_start""",
        run_id,
        latest_hotpatch,
    )

    def licence(first: str, last: str) -> float:
        # cores x the price of the machine's product and track in force on the month's first day, enrolled months
        return float(_scalar(
            con,
            """select coalesce(sum(m.cores * p.price_per_core_month_usd), 0)
               from audit.machine_months mm
               join core.machines m on m.run_id = mm.run_id and m.machine_id = mm.machine_id
               join core.run_prices p on p.run_id = mm.run_id and p.track = mm.track
                   and p.product = if(mm.machine_kind = 'arc', 'arc_hotpatch', 'azure_edition')
                   and cast(mm.month || '-01' as date) between p.valid_from and coalesce(p.valid_to, date '9999-12-31')
               where mm.run_id = $1 and mm.enrolled_at_start and mm.month between $2 and $3""",
            run_id, first, last,
        ))

    def changes(kind: str) -> float | None:
        if not has_previous:
            return None
        return float(
            _scalar(con, "select count(*) from audit.finding_changes where run_id = $1 and change = $2", run_id, kind)
        )

    return {
        "machines_in_scope": _scalar(con, "select count(*) from core.machines where run_id = $1", run_id),
        "enrolled_machines": _scalar(
            con,
            "select count(*) from core.machines where run_id = $1 and os_family = 'windows' "
            "and hotpatch_status = 'Enabled'",
            run_id,
        ),
        # monthly figures are the latest hotpatch month's: like with like between runs
        "hotpatch_efficacy": efficacy,
        "reboot_free_coverage": rate,
        "reboots_avoided_month": months("avoided", latest_hotpatch, latest_hotpatch),
        "reboots_avoided_ytd": months("avoided", year_start),
        "downtime_avoided_month": months("avoided", latest_hotpatch, latest_hotpatch) * per_reboot,
        "downtime_avoided_ytd": months("avoided", year_start) * per_reboot,
        "avoidable_reboots_month": months("avoidable_reboot", latest_hotpatch, latest_hotpatch),
        "open_actions": _scalar(con, "select count(*) from audit.open_actions where run_id = $1", run_id),
        "open_findings": _scalar(
            con,
            "select count(*) from audit.findings where run_id = $1 and status in ('fail', 'warn') and state = 'open'",
            run_id,
        ),
        "new_findings": changes("new"),
        "regressed_findings": changes("regressed"),
        "fixed_findings": changes("fixed"),
        "licence_cost_month": licence(latest_hotpatch, latest_hotpatch),
        "licence_cost_ytd": licence(year_start, month),
        "critical_high_actions": _scalar(
            con, "select count(*) from audit.open_actions where run_id = $1 and status in ('fail', 'warn') "
                 "and severity in ('critical', 'high')", run_id),
        "machines_to_fix": _scalar(
            con, "select count(distinct machine_id) from audit.open_actions where run_id = $1 "
                 "and status in ('fail', 'warn')", run_id),
    }


def _kpi_cell(html: str, kpi: str) -> str:
    """The text of the Change cell of one key figure in audit.html."""
    row = re.search(rf'<tr class="kpi [^"]*" data-kpi="{kpi}">(.*?)</tr>', html, re.S)
    assert row, kpi
    cell = re.search(r'<td class="n kpi-change">(.*?)</td>', row.group(1), re.S)
    assert cell, kpi
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def test_key_figures_and_changes_match_an_independent_query(demo: Demo) -> None:
    last = demo.run_ids[-1]
    con = duckdb.connect(str(demo.ledger), read_only=True)
    try:
        previous = _previous_run(con, last)
        assert previous == demo.run_ids[-2]
        now = _figures(con, last, has_previous=True)
        before = _figures(con, previous, has_previous=_previous_run(con, previous) is not None)
        con.execute("set variable report_owner = null")
        cur = con.execute("select * from report.summary_kpis where run_id = $1 order by kpi_order", [last])
        names = [d[0] for d in cur.description or ()]
        kpis = {r["kpi"]: r for r in (dict(zip(names, row, strict=True)) for row in cur.fetchall())}
    finally:
        con.close()
    assert list(kpis) == list(now)
    for kpi, value in now.items():
        k = kpis[kpi]
        assert k["previous_run_id"] == previous
        assert k["value"] == pytest.approx(value), kpi
        assert k["previous_value"] == pytest.approx(before[kpi]), kpi
        if value is None or before[kpi] is None:
            assert k["delta"] is None and k["direction"] is None, kpi
            continue
        delta = float(value) - float(before[kpi])
        assert k["delta"] == pytest.approx(delta), kpi
        assert k["direction"] == ("up" if delta > 0 else "down" if delta < 0 else "same"), kpi
    # the demo history moves: open findings and year-to-date avoided reboots change between the runs
    assert now["reboots_avoided_ytd"] != before["reboots_avoided_ytd"]
    # audit.html prints each change with its sign and arrow ("+3 ▲", "-2 ▼", "0 =")
    for kpi in ("machines_in_scope", "open_findings", "reboots_avoided_ytd", "new_findings"):
        value, prev = now[kpi], before[kpi]
        if prev is None:
            assert _kpi_cell(demo.html, kpi) == "—"
            continue
        assert value is not None
        delta = int(value - prev)
        sign = "+" if delta > 0 else "-" if delta < 0 else ""
        arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
        assert _kpi_cell(demo.html, kpi) == f"{sign}{abs(delta):,} {arrow}"
    # a rate is unknown (None) when no machine-month of its hotpatch month is judged (a cold ledger's first months):
    # then there is no change to print, never one against 0
    if now["reboot_free_coverage"] is None or before["reboot_free_coverage"] is None:
        assert _kpi_cell(demo.html, "reboot_free_coverage") == "—"
    else:
        rate_delta = (float(now["reboot_free_coverage"]) - float(before["reboot_free_coverage"])) * 100
        assert _kpi_cell(demo.html, "reboot_free_coverage").startswith(
            f"{'+' if rate_delta > 0 else '-' if rate_delta < 0 else ''}{abs(rate_delta):.1f} pp"
        )


def test_first_monthly_run_has_no_previous_run(demo: Demo) -> None:
    html = demo.first_html
    assert "No previous monthly run of this scope: nothing to compare with." in html
    for kpi in ("machines_in_scope", "open_findings", "hotpatch_efficacy", "reboot_free_coverage", "fixed_findings"):
        assert _kpi_cell(html, kpi) == "no previous run"


def test_single_run_ledger_says_no_previous_run(tmp_path: Path) -> None:
    s = Settings(
        ledger_path=tmp_path / "ledger.duckdb", out_dir=tmp_path / "out", work_dir=tmp_path / "work", demo_machines=40
    )
    outcome = run_audit(s, RunRequest(source="demo", as_of=datetime(2026, 11, 25, 3, 0, tzinfo=UTC)), render=False)
    (pdf_path,) = render_reports(
        s.ledger_path, outcome.run_id, tmp_path / "r", settings=s, formats=("pdf",), generated_at=GENERATED_AT
    )
    summary = _flat(" ".join(p.extract_text() for p in pypdf.PdfReader(pdf_path).pages))
    assert "Key figures. No previous monthly run of this scope: nothing to compare with." in summary
    assert summary.count("no previous run") >= 12  # every key figure
    assert re.search(r"New findings — — no previous run", summary)


PDF_CHARTS = ("Reboots avoided and taken per month",)  # the PDF keeps to its page budget: the rest are in audit.html


def test_charts_are_in_the_pdf_with_their_numbers(demo: Demo) -> None:
    text = demo.pdf_text
    for title in CHART_COLOURS:
        assert f'<strong class="chart-title">{title}</strong> —' in demo.html, title  # every chart in audit.html
        assert (f"{title} —" in text) == (title in PDF_CHARTS), title  # the PDF: only its own charts
    for title, colour in CHART_COLOURS.items():
        if title not in PDF_CHARTS:
            continue
        page = next(p for p in demo.pdf.pages if f"{title} —" in _flat(p.extract_text()))
        # WeasyPrint draws the SVG as vector paths on the caption's page: its series colour is there
        want = tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        drawn = re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) (?:rg|RG)\b", page.get_contents().get_data().decode("latin-1"))
        assert any(all(abs(float(c) - w) < 0.002 for c, w in zip(rgb, want, strict=True)) for rgb in drawn), title
    last = demo.run_ids[-1]
    con = duckdb.connect(str(demo.ledger), read_only=True)
    try:
        blockers = con.execute(
            "select first_failing_gate, gate_code, count(*) from audit.readiness "
            "where run_id = $1 and first_failing_gate <= 11 group by all order by 1, 3 desc, 2",
            [last],
        ).fetchall()
        enrolled = con.execute(
            "select r.run_id, strftime(r.as_of, '%Y-%m'), count(*) filter (where m.track is not null), "
            "count(*) filter (where m.hotpatch_status = 'Enabled') from meta.runs r "
            "join core.machines m on m.run_id = r.run_id and m.os_family = 'windows' group by all order by 2",
        ).fetchall()
        top_owner = con.execute(
            "select coalesce(owner, '(no owner tag)'), count(*) from audit.findings "
            "where run_id = $1 and status in ('fail', 'warn') and state = 'open' group by 1 order by 2 desc, 1 limit 1",
            [last],
        ).fetchone()
        month_avoided = con.execute(
            "select month, count(*) filter (where outcome = 'avoided'), "
            "count(*) filter (where outcome = 'expected_reboot') from audit.machine_months "
            "where run_id = $1 group by month order by month desc limit 1",
            [last],
        ).fetchone()
    finally:
        con.close()
    assert blockers and top_owner and month_avoided
    squashed = _squash(text)  # table cells may wrap (long owner names and run ids)
    blocked = sum(n for _, _, n in blockers)
    for gate, code, machines in blockers:
        assert _squash(f"{gate} {code} {machines:,} {machines / blocked * 100:.1f} %") in squashed, code
    assert len(enrolled) == 3
    for run_id, month, eligible, enrolled_now in enrolled:
        assert re.search(rf"{month}{run_id}[\d,]+{eligible:,}{enrolled_now:,}", squashed), month
    assert _squash(f"{top_owner[0]} {top_owner[1]:,}") in squashed
    assert _squash(f"{month_avoided[0]} hotpatch {month_avoided[1]:,} {month_avoided[2]:,}") in squashed


def _group_rows(html: str, table_id: str) -> list[tuple[str, str]]:
    """(severity, days overdue) of each row of one owner or subscription list in audit.html."""
    table = re.search(rf'<table class="findings group-items" id="{table_id}".*?</table>', html, re.S)
    assert table, table_id
    return re.findall(
        r'<tr data-machine="[^"]*" data-status="[^"]*" data-severity="([a-z]+)">.*?'
        r'<td class="col-days n" data-sort="(\d*)">',
        table.group(0),
        re.S,
    )


def test_owner_and_subscription_lists_are_sorted_by_severity_then_days_overdue(demo: Demo) -> None:
    html = demo.html
    owners = re.findall(r'<table class="findings group-items" id="(t-owner-\d+)"', html)
    subscriptions = re.findall(r'<table class="findings group-items" id="(t-subscription-\d+)"', html)
    assert len(owners) >= 3 and subscriptions
    for table_id in owners + subscriptions:
        rows = _group_rows(html, table_id)
        assert rows, table_id
        keys = [(SEVERITY_RANK[sev], -int(days) if days else 1) for sev, days in rows]  # no month: after
        assert keys == sorted(keys), table_id
    # the first owner has the most findings needing action, and a list with dated and month-less rows
    con = duckdb.connect(str(demo.ledger), read_only=True)
    try:
        first_owner, items = con.execute(
            "select coalesce(owner, '(no owner tag)'), count(*) from audit.open_actions "
            "where run_id = $1 group by 1 order by 2 desc, 1 limit 1",
            [demo.run_ids[-1]],
        ).fetchone() or ("", 0)
    finally:
        con.close()
    heading = re.search(r'<h4 class="group-name" id="owner-1">(.*?)</h4>', html)
    assert heading and html_lib.unescape(heading.group(1)) == first_owner
    # the fleet PDF does not repeat the lists: it says where each owner's list is
    assert "listed, by severity, then days overdue" not in demo.pdf_text
    assert "hotpatch-audit report --per-owner" in _flat(demo.pdf_text)


def test_charts_are_deterministic_and_draw_owner_names_as_glyphs_only() -> None:
    from hotpatch_audit import charts

    hostile = "<script>alert(1)</script> --> $\\frac{1}{2}$"
    owners = [
        {"owner": hostile, "critical": 1, "high": 2, "medium": 3, "low": 4, "info": 0},
        {"owner": "team-web", "critical": 0, "high": 1, "medium": 0, "low": 2, "info": 1},
    ]
    first, second = charts.findings_by_owner_svg(owners), charts.findings_by_owner_svg(owners)
    assert first.svg == second.svg and first.data_uri == second.data_uri  # same numbers, same bytes
    svg = str(first.svg)
    assert "<script" not in svg and "alert" not in svg and "-->" not in svg and "<!--" not in svg
    assert "<metadata" not in svg and "dc:date" not in svg.lower()
    assert first.label == "Open findings by owner and severity"
