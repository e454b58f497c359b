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
    audit.message('licence_unpaid', map {'machine': 'srv-9', 'days': '12'}) as reason,
    audit.message('licence_unpaid.fix', map()) as remediation,
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

    keys = set(re.findall(r"audit\.message\('([\w.]+)'", sql))
    assert keys and keys <= set(cat.messages), keys - set(cat.messages)
