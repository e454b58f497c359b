"""Each audit is one self-describing unit: its SQL view and the metadata file beside it (sql/audit/*.toml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from hotpatch_audit import audit_meta
from hotpatch_audit.analyze import apply_sql
from hotpatch_audit.config import PROJECT_ROOT
from hotpatch_audit.errors import ConfigError

FIFTH_SQL = """create or replace view audit.licence_drift as
select md5('licence_drift|x') as finding_id, 'r1' as run_id, 'licence_drift' as audit, 'licence_unpaid' as code,
    'm1' as machine_id, 'srv-9' as machine_name, 'fail' as status, 'medium' as severity,
    audit.licence_drift_message('licence_unpaid', map {'machine': 'srv-9', 'days': '12'}) as reason,
    audit.licence_drift_message('licence_unpaid.fix', map()) as remediation,
    'licence_unpaid' as reason_key, 'licence_unpaid.fix' as remediation_key,
    map {'machine': 'srv-9', 'days': '12'} as params;
"""
FIFTH_TOML = """[audit]
name = "licence_drift"
title = "Licence drift"
order = 5

[codes.licence_unpaid]
severity = "medium"
status = "fail"

[messages]
"licence_unpaid" = '''%(machine)s has run hotpatch without a paid licence for %(days)s day(s).'''
"licence_unpaid.fix" = '''Assign the hotpatch licence.'''
"""


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for folder in ("sql", "data"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder)
    return root


def test_a_fifth_audit_is_its_sql_and_its_metadata(tmp_path: Path) -> None:
    """Adding an audit takes its .sql and .toml: the ledger's audit list, the union of findings, the
    lifecycle state and the English text follow without touching any other file."""
    root = _project_copy(tmp_path)
    (root / "sql" / "audit" / "44_licence_drift.sql").write_text(FIFTH_SQL, encoding="utf-8")
    (root / "sql" / "audit" / "44_licence_drift.toml").write_text(FIFTH_TOML, encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    try:
        apply_sql(con, root)
        audits = [r[0] for r in con.execute("select audit from ref.audits order by audit_order").fetchall()]
        assert audits == ["reboot_avoidance", "missed_hotpatches", "wsus_misconfigurations", "vbs_blockers",
                          "licence_drift"]
        row = con.execute(
            "select code, reason, remediation, state from audit.all_findings where audit = 'licence_drift'"
        ).fetchone()
    finally:
        con.close()
    assert row == ("licence_unpaid", "srv-9 has run hotpatch without a paid licence for 12 day(s).",
                   "Assign the hotpatch licence.", "open")
    cat = audit_meta.load.__wrapped__(root)
    assert cat.codes()["licence_drift"] == frozenset({"licence_unpaid"})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[audit]\nname = 'vbs_blockers'\n[codes.X]\nseverity = 'urgent'\nstatus = 'fail'\n", "severity must be"),
        ("[audit]\nname = 'no_such_view'\n[codes.X]\nseverity = 'high'\nstatus = 'fail'\n", "same stem"),
        ("[messages]\n'avoided' = 'twice'\n", "defined twice"),
        ("[codes.X]\nseverity = 'high'\n", r"needs an \[audit\]"),
        ("[audit\n", "not valid TOML"),
    ],
)
def test_a_bad_metadata_file_is_refused_with_its_path(tmp_path: Path, text: str, error: str) -> None:
    root = _project_copy(tmp_path)
    name = "43_vbs_blockers.toml" if "vbs_blockers" in text else "99_bad.toml"
    (root / "sql" / "audit" / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error) as info:
        audit_meta.load.__wrapped__(root)
    assert name in str(info.value)


def test_every_code_the_views_name_is_declared_and_every_key_has_a_template() -> None:
    """Codes and message keys written as literals in the audit SQL exist in the metadata."""
    cat = audit_meta.load()
    sql = "\n".join(p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "sql" / "audit").glob("*.sql"))
    for a in cat.audits:
        for c in a.codes:
            assert f"'{c.code}'" in sql or c.code in sql, c.code
    import re

    # a literal key is rendered by its file's macro (audit.<file>_message or, for a fragment, _fragment)
    calls = set(re.findall(r"audit\.(\w+_(?:message|fragment))\('([\w.]+)'", sql))
    assert calls
    for macro, key in calls:
        assert key in cat.messages, key
        assert macro == cat.macro_for(key), (macro, key)


def test_an_audit_renders_only_its_own_templates(tmp_path: Path) -> None:
    """Each audit's SQL renders its text with its own file's macro: the same English as audit.message for its
    keys; a key of another file (or a misspelt one) fails the statement, naming the file, and never leaves an
    empty reason."""
    con = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    try:
        apply_sql(con, PROJECT_ROOT)
        params = "map {'machine': 'srv-1', 'month': '2026-05', 'kb': ' KB1', 'grace_end': '2026-05-20', 'days': '9'}"
        own, anyone = con.execute(
            f"select audit.missed_hotpatches_message('missed.open_available', {params}),"
            f" audit.message('missed.open_available', {params})"
        ).fetchone() or (None, None)
        assert own == anyone and own is not None and own.startswith("srv-1 has not installed the 2026-05 hotpatch KB1")
        fragment = con.execute(
            "select audit.missed_hotpatches_fragment('frag.month_update', map {'update_month': '2026-06'})"
        ).fetchone()
        assert fragment == con.execute(
            "select audit.message('frag.month_update', map {'update_month': '2026-06'})").fetchone()
        assert con.execute("select audit.reboot_avoidance_message(null, map())").fetchone() == ("",)
        for wrong in ("select audit.reboot_avoidance_message('missed.open_available', map())",
                      "select audit.missed_hotpatches_fragment('missed.open_available', map())"):
            with pytest.raises(duckdb.InvalidInputException, match="missed.open_available is not a template of"):
                con.execute(wrong).fetchall()
    finally:
        con.close()
