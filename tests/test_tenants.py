"""The tenants file of tenants-audit: read, checked up front, refused with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.tenants_audit import Tenant, check_tenants, read_tenants
from hotpatch_audit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SUB = "11111111-1111-1111-1111-111111111111"


def test_the_documented_example_is_a_valid_tenants_file() -> None:
    tenants = check_tenants(read_tenants(ROOT / "docs" / "examples" / "tenants.yaml"))
    assert [t.name for t in tenants] == ["contoso", "fabrikam", "northwind"]
    assert tenants[0].scope() == {"tenants": ["00000000-0000-0000-0000-000000000001"]}
    assert tenants[1].scope() == {"subscriptions": [SUB, "22222222-2222-2222-2222-222222222222"]}
    assert tenants[2].scope() == {"management_groups": ["northwind-servers"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants: []", "no tenants"),
        ("- name: a", "expected a mapping with a `tenants:` list"),
        ("tenants: [{name: a}]", "exactly one of tenant_id, subscriptions, management_groups"),
        (f"tenants: [{{name: a, tenant_id: t.example, subscriptions: [{SUB}]}}]", "exactly one of"),
        (f"tenants: [{{name: a, subscriptions: [{SUB}]}}, {{name: A, subscriptions: [{SUB}]}}]", "given twice"),
        ("tenants: [{name: a, subscriptions: [not-a-guid]}]", "not a subscription id"),
        ("tenants: [{name: ../up, tenant_id: t.example}]", "is not a tenant name"),
        ("tenants: [{name: rollup, tenant_id: t.example}]", "is not a tenant name"),
        ("tenants: [{name: a, tenant_id: t.example, timezone: Mars/Base}]", "IANA time zone"),
        ("tenants: [{name: a, tenant_id: t.example, password: x}]", "Extra inputs are not permitted"),
        ("tenants: [{name: a", "not valid YAML"),
    ],
)
def test_a_bad_tenants_file_is_refused_before_any_run(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        check_tenants(read_tenants(path))


def test_a_missing_tenants_file_says_which() -> None:
    with pytest.raises(ConfigError, match="tenants file not found"):
        read_tenants(Path("no-such-tenants.yaml"))


def test_tenant_names_are_folder_names() -> None:
    assert Tenant(name="contoso.eu-1", tenant_id="t.example").name == "contoso.eu-1"
