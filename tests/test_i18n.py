"""Japanese reports: a complete catalog, every finding sentence translated, and a real ja PDF and HTML."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pypdf
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from hotpatch_audit import audit_meta, i18n
from hotpatch_audit.config import PROJECT_ROOT, Settings
from hotpatch_audit.finding_text import PHRASES, render_message, translate_finding, translate_phrase
from hotpatch_audit.render import render_reports
from hotpatch_audit.waivers import EXPIRED_CODE

PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
# Four or more English words in a row: a sentence or phrase left untranslated.
ENGLISH_RUN = re.compile(r"(?<![\w./-])(?:[A-Za-z][a-z']*[ ,;:()]+){3,}[A-Za-z][a-z']*(?![\w/-])")
# Names that stay as they are in Japanese reports (products, Azure fields and values, the tool).
KEPT_WORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "Windows Server Azure Arc Update Manager Resource Graph DuckDB KQL Hyper-V WSL UEFI VBS HVCI WSUS Enabled "
        "Disabled Pending Not Enrolled Action Required Enrollment Failed Canceled Unknown Microsoft Edition Device "
        "Guard Machine Configuration Hotpatch Patch Tuesday SHA NET demo"
    ).split()
)


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def _extracted() -> dict[str, tuple[str, int]]:
    """Every message Babel extracts with babel.cfg (the maintainer's command), msgid -> (file, line)."""
    with (PROJECT_ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, tuple[str, int]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PROJECT_ROOT),
        method_map,
        options_map,
        keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, (filename, lineno))
    return found


def test_every_extracted_message_has_a_japanese_translation() -> None:
    catalog = i18n.load_catalog("ja")
    extracted = _extracted()
    assert len(extracted) > 200, "extraction found too few messages: is babel.cfg right?"
    problems = []
    for msgid, (filename, line) in sorted(extracted.items()):
        entry = catalog.get(msgid)
        where = f"{filename}:{line}: {msgid[:70]!r}"
        if entry is None or not entry.string:
            problems.append(f"{where}: untranslated (run the update command in docs/i18n.md)")
        elif entry.fuzzy:
            problems.append(f"{where}: fuzzy")
        elif _placeholders(msgid) != _placeholders(str(entry.string)):
            problems.append(f"{where}: placeholders differ: {entry.string!r}")
    assert not problems, "\n".join(problems)


def test_compiled_catalog_translates_and_english_is_the_source() -> None:
    with i18n.use_language("ja"):
        assert i18n.gettext("Summary") == "概要"
        assert i18n.gettext("VBS blockers") == "VBS の阻害要因"
    assert i18n.current_language() == "en"
    assert i18n.gettext("Summary") == "Summary"
    with pytest.raises(ValueError, match="unknown report language"):
        i18n.translations("fr")


def test_dates_and_numbers_in_japanese() -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    tokyo = ZoneInfo("Asia/Tokyo")
    assert i18n.format_time(at, tokyo, "ja") == "2026年11月26日 12:00 JST (UTC+09:00)"
    assert i18n.format_time(at, tokyo, "en") == "2026-11-26 12:00 JST (UTC+09:00)"
    assert i18n.format_number(12345, "ja") == "12,345"
    assert i18n.format_percent(0.4375, "ja") == "43.8%"
    assert i18n.format_percent(None, "ja") == "該当なし"
    # the cost table's amounts: thousands grouped as every other figure, cents kept for per-core prices
    assert i18n.format_money(1143, "USD", "en", cents=True) == "$1,143.00"
    assert i18n.format_money(1.5, "USD", "ja", cents=True) == "$1.50"
    assert i18n.format_money(12345.6, "USD", "en") == "$12,346"


def test_every_message_template_has_a_japanese_translation_with_the_same_placeholders() -> None:
    """Each reason / remediation template of the audits' metadata files is a catalog msgid; its Japanese
    msgstr may reorder the placeholders but uses no name the template does not give."""
    catalog = i18n.load_catalog("ja")
    messages = audit_meta.load().messages
    assert len(messages) > 100, "the metadata files lost their messages"
    for key, template in messages.items():
        entry = catalog.get(template)
        assert entry is not None and entry.string and not entry.fuzzy, f"{key}: {template!r} not translated"
        assert set(audit_meta.placeholders(entry.string)) <= set(audit_meta.placeholders(template)), key


def test_every_calendar_cause_is_translated() -> None:
    """Causes are quoted from data/release_calendar.csv into off_track and unexpected_reboot reasons."""
    with (PROJECT_ROOT / "data" / "release_calendar.csv").open(encoding="utf-8") as f:
        causes = {row["cause"] for row in csv.DictReader(f) if row["cause"]}
    assert causes, "the calendar has no causes: the test lost its subject"
    with i18n.use_language("ja"):
        for cause in sorted(causes):
            assert cause in PHRASES, f"add {cause!r} to finding_text.PHRASES and translate it"
            assert translate_phrase(cause) != cause


def test_waiver_expired_sentences_translate() -> None:
    """The two waiver_expired messages of hotpatch_audit.waivers, by key and params as the SQL writes them."""
    params = {"machine": "srv-01", "waiver": "LAB-VBS", "code": "VBS_NOT_RUNNING",
              "approver": "infra-lead@contoso.example", "date": "2026-06-30", "path": "data/w.yaml"}
    rows = [
        {"code": EXPIRED_CODE, "reason": "(English)", "remediation": "(English)", "params": params,
         "reason_key": "waiver_expired.unmatched", "remediation_key": "waiver_expired.fix"},
        {"code": EXPIRED_CODE, "reason": "(English)", "remediation": "", "params": params,
         "reason_key": "waiver_expired", "remediation_key": "waiver_expired.fix"},
    ]
    with i18n.use_language("ja"):
        first, second = (translate_finding(r) for r in rows)
    assert first["reason"].startswith("適用除外 LAB-VBS（VBS_NOT_RUNNING、承認者 infra-lead@contoso.example）は 2026-06-30")
    assert "data/w.yaml" in first["remediation"] and "適用除外を更新" in first["remediation"]
    assert second["reason"].startswith("srv-01 は適用除外 LAB-VBS") and "VBS_NOT_RUNNING の指摘事項" in second["reason"]
    assert second["remediation"] == "", "an empty remediation stays empty"


# --- the demo fleet, judged by the real pipeline ----------------------------------------------------


def _english_runs(text: str, keep: set[str]) -> list[str]:
    """Runs of four or more English words in text, after removing data values (names, ids) and kept names."""
    flat = " ".join(text.split())
    for value in sorted(keep, key=len, reverse=True):
        flat = flat.replace(value, " ")
    words = " ".join(w for w in flat.split(" ") if w.strip("(),.;:") not in KEPT_WORDS)
    return [m.group(0) for m in ENGLISH_RUN.finditer(words)]


def _data_values(ledger: Path, run_id: str) -> set[str]:
    """Strings that come from Azure or the run, not from the catalog: they stay as they are."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        values: set[str] = set()
        for sql in (
            "select machine_name, resource_group, coalesce(owner, ''), subscription_id, machine_id, "
            "coalesce(hotpatch_status, '') from core.machines where run_id = $1",
            "select key, value, '', '', '', '' from meta.settings where run_id = $1",
            "select scope, source, run_id, coalesce(tool_version, ''), '', '' from meta.runs where run_id = $1",
            "select query_name, query_file, coalesce(error, ''), '', '', '' from meta.query_stats where run_id = $1",
        ):
            for row in con.execute(sql, [run_id]).fetchall():
                values.update(str(v) for v in row if v)
    finally:
        con.close()
    return {v for v in values if len(v) > 2}


@pytest.fixture(scope="module")
def ja_report(
    demo_history: tuple[Settings, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, str]]:
    settings, run_ids = demo_history
    out = tmp_path_factory.mktemp("ja")
    ja = settings.model_copy(update={"language": "ja", "timezone": "Asia/Tokyo"})
    render_reports(
        settings.path(settings.ledger_path),
        run_ids[-1],
        out,
        settings=ja,
        formats=("html", "pdf"),
        generated_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
    )
    yield out / "audit.html", out / "audit.pdf", run_ids[-1]


def _demo_messages(settings: Settings) -> tuple[list[tuple[Any, ...]], list[str]]:
    con = duckdb.connect(str(settings.path(settings.ledger_path)), read_only=True)
    try:
        rows = con.execute(
            "select code, reason, remediation, machine_name, reason_key, remediation_key, params from audit.findings"
            " qualify row_number() over (partition by reason_key, remediation_key, reason, remediation) = 1"
        ).fetchall()
        details = [
            r[0]
            for r in con.execute(
                "select distinct change_detail from audit.finding_changes where change_detail is not null"
            ).fetchall()
        ]
    finally:
        con.close()
    return rows, details


def test_english_reasons_are_rendered_from_the_templates(demo_history: tuple[Settings, list[str]]) -> None:
    """The ledger's English text is the template of its key filled with its params: one source of wording."""
    rows, _ = _demo_messages(demo_history[0])
    assert len(rows) > 100
    for code, reason, remediation, _machine, reason_key, remediation_key, params in rows:
        assert reason_key is not None, f"{code}: no reason_key"
        assert render_message(reason_key, params) == reason, reason_key
        assert (render_message(remediation_key, params) if remediation_key else "") == remediation, remediation_key
        assert "%(" not in reason + remediation


def test_every_demo_finding_sentence_translates(demo_history: tuple[Settings, list[str]]) -> None:
    rows, details = _demo_messages(demo_history[0])
    assert len({r[0] for r in rows}) >= 15, "the demo fleet should exercise most finding codes"
    untranslated = []
    with i18n.use_language("ja"):
        for code, reason, remediation, machine, reason_key, remediation_key, params in rows:
            out = translate_finding({"code": code, "reason": reason, "remediation": remediation,
                                     "reason_key": reason_key, "remediation_key": remediation_key, "params": params})
            for source, text in ((reason, out["reason"]), (remediation, out["remediation"])):
                if source and (text == source or _english_runs(text, {machine})):
                    untranslated.append(f"{code}: {source}")
        for detail in details:
            if translate_phrase(detail) == detail:
                untranslated.append(f"change_detail: {detail}")
    assert not untranslated, "\n".join(sorted(set(untranslated))[:20])


def test_japanese_pdf_has_japanese_headings_noto_cjk_and_no_english_sentences(
    ja_report: tuple[Path, Path, str], demo_history: tuple[Settings, list[str]]
) -> None:
    _html, pdf_path, run_id = ja_report
    reader = pypdf.PdfReader(pdf_path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    for heading in (
        "概要",
        "カバレッジ",
        "再起動の回避",
        "ホットパッチの適用漏れ",
        "WSUS の構成ミス",
        "VBS の阻害要因",
        "方法と根拠",
        "Windows Server ホットパッチ監査",
        "年11月",
    ):
        assert heading in text, heading
    fonts = set()
    for page in reader.pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            fonts.add(str(font.get_object().get("/BaseFont")))
    assert any("NotoSansCJK" in f.replace("-", "") for f in fonts), fonts
    settings, _ = demo_history
    keep = _data_values(settings.path(settings.ledger_path), run_id)
    runs = _english_runs(text, keep)
    assert not runs, f"{len(runs)} English runs left, e.g. {sorted(set(runs))[:15]}"


def test_japanese_html_is_lang_ja_with_japanese_headings(ja_report: tuple[Path, Path, str]) -> None:
    html_path, _pdf, _run = ja_report
    html = html_path.read_text(encoding="utf-8")
    assert '<html lang="ja">' in html
    for heading in ("<h2>概要</h2>", "再起動の回避", "VBS の阻害要因", "<title>Windows Server ホットパッチ監査"):
        assert heading in html, heading
    assert "Summary" not in re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)


def test_english_checker_catches_an_untranslated_sentence() -> None:
    """The check above is real: an English sentence among Japanese text is reported, names are not."""
    assert _english_runs("概要 No machine needs action for this audit. 所有者", set()) == [
        "No machine needs action for this audit"
    ]
    assert _english_runs("vm-web-001 は Windows Server Update Manager を使用 KB5070881", set()) == []
