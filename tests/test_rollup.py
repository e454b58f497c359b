"""The roll-up across tenants (hotpatch_audit.rollup, `hotpatch-audit rollup`, docs/rollup.md).

Four small demo tenants are built through the CLI, each into its own ledger and report folder: two current
ones, one a month older (stale at the roll-up's date) and one whose run is incomplete (a snapshot with a query
cut short). The roll-up's figures are checked against DuckDB queries of each tenant's own exports, and the
efficacy and open actions against the tenant's own ledger through `hotpatch-audit query`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pypdf
import pytest

from hotpatch_audit import render
from hotpatch_audit.config import Settings
from hotpatch_audit.exports import inert
from hotpatch_audit.rollup import (
    AUDITS,
    ROLLUP_COLUMNS,
    STALE_AFTER_DAYS,
    TOP_ACROSS,
    rollup,
    rollup_report_html,
)
from layout import document_overflows
from test_i18n import ENGLISH_RUN, KEPT_WORDS
from tests.snapshots import reseal

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hotpatch_audit.cli"]
GENERATED_AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # northwind's as-of (2026-10-28) is 38 days before it
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
HOSTILE = '=HYPERLINK("http://x")<script>alert(1)</script>\u202eevil & "co"'


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=600,
                          check=False)


def _env(base: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "HOTPATCH_AUDIT_WORK_DIR": str(base / "work"), **extra}


def _cut_short(snapshot: Path) -> None:
    """One query of a saved snapshot cut to one row, its manifest saying so, as extract writes an incomplete
    query: a run of it is incomplete."""
    manifest = json.loads((snapshot / "manifest.json").read_text())
    name = max((q for q in manifest["queries"] if manifest["queries"][q]["pages"] == 1),
               key=lambda q: manifest["queries"][q]["rows"])
    info = manifest["queries"][name]
    page = snapshot / name / "page-00001.json"
    body = json.loads(page.read_text())
    body["data"], body["count"] = body["data"][:1], 1
    page.write_text(json.dumps(body))
    info.update(rows=1, complete=False, error=f"received 1 rows of {info['total_records']} announced")
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    reseal(snapshot)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four tenants' report folders, built in parallel through the CLI: name -> folder (each beside its
    ledger.duckdb)."""
    base = tmp_path_factory.mktemp("tenants")
    plans = {
        "contoso": (["--machines", "30", "--as-of", "2026-11-25T03:00Z", "--format", "parquet", "--format", "csv"],
                    {}),
        "fabrikam": (["--machines", "20", "--as-of", "2026-11-25T03:00Z", "--format", "parquet"],
                     {"HOTPATCH_AUDIT_DEMO_SEED": "7"}),
        "northwind": (["--machines", "25", "--as-of", "2026-10-28T03:00Z", "--format", "parquet"],
                      {"HOTPATCH_AUDIT_DEMO_SEED": "11"}),
    }
    running = {}
    for name, (args, extra) in plans.items():
        folder = base / name
        running[name] = subprocess.Popen(
            [*CLI, "run", "--source", "demo", *args, "--ledger", str(folder / "ledger.duckdb"), "--out",
             str(folder / "report")], env=_env(folder, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    # tailspin: an incomplete run (a query cut short in its snapshot)
    tail = base / "tailspin"
    saved = _cli(["extract", "--source", "demo", "--machines", "20", "--as-of", "2026-11-25T03:00Z", "--save",
                  str(tail / "snapshot")], _env(tail, HOTPATCH_AUDIT_DEMO_SEED="3"))
    assert saved.returncode == 0, saved.stderr
    _cut_short(tail / "snapshot")
    done = _cli(["run", "--source", "snapshot", "--snapshot", str(tail / "snapshot"), "--format", "parquet",
                 "--ledger", str(tail / "ledger.duckdb"), "--out", str(tail / "report")], _env(tail))
    assert done.returncode == 1, done.stderr  # finished, data incomplete
    for name, proc in running.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err}"
    return {name: base / name / "report" for name in [*plans, "tailspin"]}


@pytest.fixture(scope="module")
def rolled(tenants: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The roll-up of the four tenants in English, dated GENERATED_AT."""
    out = tmp_path_factory.mktemp("rollup") / "rollup"
    paths = rollup(tenants, out, generated_at=GENERATED_AT)
    assert [p.name for p in paths] == ["rollup.html", "rollup.pdf", "rollup.csv", "rollup.parquet", "SHA256SUMS",
                                       "manifest.json"]
    return out


def _rows(path: Path) -> dict[str, dict[str, Any]]:
    con = duckdb.connect()
    try:
        cur = con.execute("select * from read_parquet(?)", [str(path)])
        names = [d[0] for d in cur.description or ()]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


def _own_figures(folder: Path) -> dict[str, Any]:
    """A tenant's figures from its own exports alone, one file at a time (not the roll-up's multi-file read)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    as_of = datetime.fromisoformat(manifest["as_of"].replace("Z", "+00:00"))
    con = duckdb.connect()
    try:
        def one(sql: str, *params: Any) -> Any:
            return con.execute(sql, list(params)).fetchone()

        mm, oa = str(folder / "machine_months.parquet"), str(folder / "open_actions.parquet")
        (machines,) = one("select count(distinct machine_id) from read_parquet(?)", mm)
        month, avoided, eff_avoided, eff_known = one(
            "select month, count(*) filter (where outcome = 'avoided'),"
            " count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome = 'avoided'),"
            " count(*) filter (where kind = 'hotpatch' and enrolled_at_start"
            "   and outcome not in ('unknown', 'not_applicable'))"
            " from read_parquet(?) where month = (select max(month) from read_parquet(?) where kind = 'hotpatch')"
            " group by month", mm, mm) or (None, 0, 0, 0)
        severities = dict(con.execute("select severity, count(*) from read_parquet(?) where status in ('fail', 'warn')"
                                      " group by severity", [oa]).fetchall())
        (overdue,) = one("select count(*) from read_parquet(?) where status in ('fail', 'warn') and due_date < ?",
                         oa, as_of.date())
        (gaps,) = one("select count(*) from read_parquet(?)", str(folder / "coverage_exceptions.parquet"))
        per_audit = {
            (audit, status): n for audit, status, n in con.execute(
                "select audit, status, count(*) from read_parquet(?) where (status in ('fail', 'warn')"
                " and coalesce(state, 'open') = 'open') or status = 'unknown' group by all",
                [str(folder / "findings.parquet")]).fetchall()}
    finally:
        con.close()
    return {
        "run_id": manifest["run_id"], "run_status": manifest["run_status"], "as_of": as_of,
        "windows_machines": machines, "latest_hotpatch_month": month, "reboots_avoided": avoided,
        "hotpatch_efficacy": eff_avoided / eff_known if eff_known else None,
        **{s: severities.get(s, 0) for s in ("critical", "high", "medium", "low")},
        "open_actions": sum(severities.values()), "overdue_actions": overdue, "machines_with_gaps": gaps,
        **{f"{a}_{s}": per_audit.get((a, s), 0) for a in AUDITS for s in ("fail", "warn", "unknown")},
    }


def test_each_tenants_figures_are_its_own_exports(tenants: dict[str, Path], rolled: Path) -> None:
    rows = _rows(rolled / "rollup.parquet")
    assert list(rows) == list(tenants)  # one row per tenant, in the order given
    for name, folder in tenants.items():
        own, row = _own_figures(folder), rows[name]
        for key, value in own.items():
            if key == "as_of":
                assert row["as_of"] == value.replace(tzinfo=None), name
            elif key == "hotpatch_efficacy" and value is not None:
                assert row[key] == pytest.approx(value), name
            else:
                assert row[key] == value, (name, key)
        assert row["report_folder"] == str(folder.resolve())
    # the CSV carries the same rows and columns
    with (rolled / "rollup.csv").open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["tenant"] for r in table] == list(tenants)
    assert list(table[0]) == [c.name for c in ROLLUP_COLUMNS]
    for r in table:
        assert int(r["open_actions"]) == rows[r["tenant"]]["open_actions"]
        assert int(r["machines_with_gaps"]) == rows[r["tenant"]]["machines_with_gaps"]


def _ledger_kpis(folder: Path) -> dict[str, float | None]:
    """Page 1's figures of the tenant's own report, from its ledger (read-only, through the CLI)."""
    result = _cli(["query", "--ledger", str(folder.parent / "ledger.duckdb"), "-o", "csv",
                   "select kpi, value from report.summary_kpis where kpi in ('hotpatch_efficacy', "
                   "'reboots_avoided_month', 'critical_high_actions', 'machines_to_fix')"])
    assert result.returncode == 0, result.stderr
    return {r["kpi"]: float(r["value"]) if r["value"] else None for r in csv.DictReader(result.stdout.splitlines())}


def test_figures_are_the_tenants_page_one_figures(tenants: dict[str, Path], rolled: Path) -> None:
    rows = _rows(rolled / "rollup.parquet")
    for name, folder in tenants.items():
        kpis, row = _ledger_kpis(folder), rows[name]
        assert row["hotpatch_efficacy"] == pytest.approx(kpis["hotpatch_efficacy"]), name
        assert row["reboots_avoided"] == kpis["reboots_avoided_month"], name
        assert row["critical"] + row["high"] == kpis["critical_high_actions"], name
        assert row["machines_to_fix"] == kpis["machines_to_fix"], name


class _Tables(HTMLParser):
    """Cell texts of every table with an id: {id: [[cell, ...], ...]} (rows of thead and tbody alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id"):
            self._table = str(dict(attrs)["id"])
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []
        elif self._cell is not None and tag == "br":
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def test_totals_row_is_the_sum_of_the_tenants(rolled: Path) -> None:
    rows = list(_rows(rolled / "rollup.parquet").values())
    table = _tables((rolled / "rollup.html").read_text(encoding="utf-8"))["t-tenants"]
    header, body, total = table[0], table[1:-1], table[-1]
    assert len(body) == len(rows) and total[0] == f"All tenants ({len(rows)})"
    column = {name: header.index(label) for name, label in (
        ("windows_machines", "Windows machines"), ("critical", "critical"), ("high", "high"), ("medium", "medium"),
        ("low", "low"), ("overdue_actions", "Overdue"), ("machines_with_gaps", "Coverage exceptions"))}
    for key, i in column.items():
        assert total[i] == f"{sum(r[key] for r in rows):,}", key
        assert [b[i] for b in body] == [f"{r[key]:,}" for r in rows], key
    pooled = sum(r["efficacy_avoided"] for r in rows) / sum(r["efficacy_known"] for r in rows)
    efficacy = total[header.index("Hotpatch efficacy")]
    assert efficacy.startswith(f"{pooled * 100:.1f} %")
    assert f"{sum(r['reboots_avoided'] for r in rows):,} reboots avoided" in efficacy
    by_audit = _tables((rolled / "rollup.html").read_text(encoding="utf-8"))["t-by-audit"]
    totals = [int(c.replace(",", "")) for c in by_audit[-1][1:]]
    assert totals == [sum(r[f"{a}_{s}"] for r in rows) for a in AUDITS for s in ("fail", "warn", "unknown")]


def test_no_tenant_is_compliant_on_incomplete_or_stale_data(tenants: dict[str, Path], rolled: Path) -> None:
    rows = _rows(rolled / "rollup.parquet")
    assert rows["tailspin"]["run_status"] == "incomplete"
    assert rows["northwind"]["stale"] and rows["northwind"]["age_days"] == 38
    assert not rows["contoso"]["stale"] and rows["contoso"]["age_days"] == 10
    for name, row in rows.items():
        complete = row["run_status"] == "succeeded" and row["machines_with_gaps"] == 0 and not row["stale"]
        assert row["data_complete"] == complete, name
        if row["verdict"] == "compliant":
            assert complete and row["open_actions"] == 0, name
        else:
            assert row["verdict"] == ("action_needed" if row["open_actions"] else "incomplete_data"), name
    assert not rows["tailspin"]["data_complete"] and not rows["northwind"]["data_complete"]
    html = (rolled / "rollup.html").read_text(encoding="utf-8")
    status = {r[0].split(" ")[0]: r[2] for r in _tables(html)["t-tenants"][1:-1]}
    assert "run incomplete" in status["tailspin"]
    assert "data 38 days old" in status["northwind"]
    assert "machines with missing or stale data" in status["contoso"]
    line = re.search(r'<p class="coverage-line coverage-incomplete">(.*?)</p>', html, re.S)
    assert line, "the page must say the data is incomplete"
    assert "the run did not succeed at tailspin;" in line.group(1)
    assert f"more than {STALE_AFTER_DAYS} days old at northwind;" in line.group(1)
    manifest = json.loads((rolled / "manifest.json").read_text())
    assert {t["tenant"]: t["verdict"] for t in manifest["tenants"]} == {n: r["verdict"] for n, r in rows.items()}


def test_fix_first_lists_the_most_urgent_actions_of_all_tenants(tenants: dict[str, Path], rolled: Path) -> None:
    actions = []
    for order, (name, folder) in enumerate(tenants.items()):
        con = duckdb.connect()
        try:
            actions += [(SEVERITY_RANK[sev], due or date.max, -days if days is not None else float("inf"), order,
                         machine, action_id, name, code)
                        for sev, due, days, machine, action_id, code in con.execute(
                            "select severity, due_date, days_overdue, machine_name, action_id, code"
                            " from read_parquet(?) where status in ('fail', 'warn')",
                            [str(folder / "open_actions.parquet")]).fetchall()]
        finally:
            con.close()
    expected = [(a[6], a[4]) for a in sorted(actions)[:TOP_ACROSS]]
    table = _tables((rolled / "rollup.html").read_text(encoding="utf-8"))["t-fix-first"]
    listed = [(r[1], r[2]) for r in table[1:]]
    assert [t for t, _ in listed] == [t for t, _ in expected]
    assert all(m.startswith(inert(machine)) for (_, m), (_, machine) in zip(listed, expected, strict=True))
    assert f"The {TOP_ACROSS} most urgent of {len(actions)} open actions" in (rolled / "rollup.html").read_text()


def test_hostile_tenant_name_is_inert_everywhere(tenants: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rollup"
    rollup({HOSTILE: tenants["contoso"], "fabrikam": tenants["fabrikam"]}, out, generated_at=GENERATED_AT,
           formats=("html", "pdf", "csv"))
    html = (out / "rollup.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html  # neither the tenant's nor the demo's hostile machine names
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html and "&lt;U+202E&gt;evil &amp; &#34;co&#34;" in html
    title = re.search(r"<meta name=\"description\" content=\"([^\"]*)\"", html)
    assert title and "&lt;script&gt;" in title.group(1)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(out / "rollup.pdf").pages)
    assert "<script>" in text and "<U+202E>" in text  # shown as text
    assert "\u202e" not in text
    with (out / "rollup.csv").open(encoding="utf-8", newline="") as f:
        first = next(csv.DictReader(f))
    assert first["tenant"] == "'" + HOSTILE.replace("\u202e", "<U+202E>")  # formula guard, bidi shown


@pytest.mark.parametrize("language", ["en", "ja"])
def test_pdf_names_every_tenant_and_stays_within_the_page(tenants: dict[str, Path], tmp_path: Path,
                                                          language: str) -> None:
    zone = "Asia/Tokyo" if language == "ja" else "UTC"
    settings = Settings(**{})
    html = rollup_report_html(tenants, medium="pdf", language=language, timezone=zone, generated_at=GENERATED_AT)
    document = render.layout_pdf(html, settings.project_root / "reports" / "static")
    found = document_overflows(document)
    assert found == [], "\n".join(str(o) for o in found)
    paths = rollup(tenants, tmp_path / "out", formats=("pdf",), language=language, timezone=zone,
                   generated_at=GENERATED_AT)
    reader = pypdf.PdfReader(paths[0])
    assert len(reader.pages) == len(document.pages) <= 5  # a few pages
    text = "\n".join(p.extract_text() for p in reader.pages)
    for name in tenants:
        assert name in text
    first = reader.pages[0].extract_text()
    if language == "ja":
        assert "テナント横断の集計" in first and "2026年11月25日 12:00 JST" in first
        assert not _english_runs(text, tenants), _english_runs(text, tenants)
    else:
        assert "roll-up across tenants" in first and "All tenants (4)" in first


def _english_runs(text: str, tenants: dict[str, Path]) -> list[str]:
    """Runs of four or more English words in a Japanese roll-up, once the data values (names, scopes, paths,
    codes) and the names that stay English are removed."""
    keep = {*tenants, *(str(f.resolve()) for f in tenants.values())}
    con = duckdb.connect()
    try:
        for folder in tenants.values():
            keep |= {v for row in con.execute(
                "select machine_name, owner, code from read_parquet(?)", [str(folder / "open_actions.parquet")]
            ).fetchall() for v in row if v}
            keep.add(json.loads((folder / "manifest.json").read_text())["scope"])
    finally:
        con.close()
    flat = " ".join(text.split())
    for value in sorted(keep, key=len, reverse=True):
        flat = flat.replace(value, " ")
    words = " ".join(w for w in flat.split(" ") if w.strip("(),.;:") not in KEPT_WORDS)
    return [m.group(0) for m in ENGLISH_RUN.finditer(words)]


def test_japanese_html_with_times_in_the_readers_zone(tenants: dict[str, Path], tmp_path: Path) -> None:
    html = rollup_report_html(tenants, medium="html", language="ja", timezone="Asia/Tokyo",
                              generated_at=GENERATED_AT)
    assert '<html lang="ja">' in html
    headers = _tables(html)["t-tenants"][0]
    assert headers[:3] == ["テナント", "基準日時", "状態"]
    assert "2026年10月28日 12:00 JST (UTC+09:00)" in html  # northwind's as-of, in Tokyo time
    assert "全テナント（4）" in html and "全テナントで最優先の対応事項" in html


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: p.read_bytes().hex() for p in sorted(folder.iterdir())}


def test_refused_folders_are_named_and_nothing_is_written(tenants: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rollup"
    good = ["--tenant", f"contoso={tenants['contoso']}"]
    # missing folder: a usage error naming it
    missing = tmp_path / "nowhere"
    result = _cli(["rollup", *good, "--tenant", f"gone={missing}", "--out", str(out)])
    assert result.returncode == 2 and f"tenant 'gone': '{missing}': no such folder" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    # a half-written folder (no manifest.json)
    half = tmp_path / "half"
    shutil.copytree(tenants["fabrikam"], half)
    (half / "manifest.json").unlink()
    result = _cli(["rollup", *good, "--tenant", f"half={half}", "--out", str(out)])
    assert result.returncode == 2 and "no manifest.json, so not a finished report folder" in result.stderr
    assert not out.exists()
    # a folder without the Parquet exports (rendered as CSV only)
    csv_only = tmp_path / "csv-only"
    rendered = _cli(["report", "--ledger", str(tenants["contoso"].parent / "ledger.duckdb"), "--format", "csv",
                     "--out", str(csv_only)], _env(tmp_path))
    assert rendered.returncode == 0, rendered.stderr
    result = _cli(["rollup", *good, "--tenant", f"csv={csv_only}", "--out", str(out)])
    assert result.returncode == 2 and "lacks open_actions.parquet, coverage_exceptions.parquet" in result.stderr
    assert not out.exists()
    # a previous roll-up stays as it was when a folder was tampered with
    assert _cli(["rollup", *good, "--out", str(out)]).returncode in (0, 1)
    before = _snapshot(out)
    tampered = tmp_path / "tampered"
    shutil.copytree(tenants["fabrikam"], tampered)
    with (tampered / "open_actions.parquet").open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    result = _cli(["rollup", *good, "--tenant", f"tampered={tampered}", "--out", str(out)])
    assert result.returncode == 3, result.stderr
    assert (f"tenant 'tampered': '{tampered}' does not match its manifest.json "
            "(open_actions.parquet: changed: SHA-256 differs)") in result.stderr
    assert _snapshot(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".rollup.")]  # no staging folder left
    # the roll-up never replaces a tenant's folder
    result = _cli(["rollup", *good, "--out", str(tenants["contoso"])])
    assert result.returncode == 2 and "overlaps the report folder of tenant 'contoso'" in result.stderr


def test_cli_writes_a_verifiable_rollup_and_exits_by_completeness(tenants: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rollup-ja"
    args = [arg for name, folder in tenants.items() for arg in ("--tenant", f"{name}={folder}")]
    result = _cli(["rollup", *args, "--out", str(out), "--lang", "ja", "--tz", "Asia/Tokyo",
                   "--format", "html,pdf", "--format", "parquet"])
    manifest = json.loads((out / "manifest.json").read_text())
    behind = [t["tenant"] for t in manifest["tenants"] if t["run_status"] != "succeeded" or t["stale"]]
    assert "tailspin" in behind  # its run is incomplete whatever the date
    assert result.returncode == 1, result.stderr
    assert "tailspin" in result.stderr
    assert result.stdout.split() == [str(out / n) for n in ("rollup.html", "rollup.pdf", "rollup.parquet",
                                                            "SHA256SUMS", "manifest.json")]
    assert manifest["report"] == "rollup" and manifest["language"] == "ja"
    assert [t["run_id"] for t in manifest["tenants"]] == [
        json.loads((f / "manifest.json").read_text())["run_id"] for f in tenants.values()]
    verified = _cli(["verify", str(out)])
    assert verified.returncode == 0, verified.stderr
    # a roll-up is not a tenant's report folder
    again = _cli(["rollup", "--tenant", f"r={out}", "--out", str(tmp_path / "again")])
    assert again.returncode == 2 and "a roll-up, not a tenant's report folder" in again.stderr


def test_docs_describe_the_rollup() -> None:
    doc = (ROOT / "docs" / "rollup.md").read_text(encoding="utf-8")
    for column in ROLLUP_COLUMNS:
        assert f"`{column.name}`" in doc or column.name.endswith(("_fail", "_warn", "_unknown")), column.name
    assert "](docs/rollup.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    result = _cli(["rollup", "--help"])
    assert "Example: hotpatch-audit rollup" in " ".join(result.stdout.split())
