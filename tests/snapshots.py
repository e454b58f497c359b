"""Build small snapshot directories by hand (the format extract --save writes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hotpatch_audit.catalog import load_queries
from hotpatch_audit.files import SUMS_NAME, sha256_file, write_sums
from hotpatch_audit.sources import SNAPSHOT_FORMAT

ROOT = Path(__file__).resolve().parents[1]


def make_snapshot(directory: Path, rows: dict[str, list[dict[str, Any]]], *, as_of: str = "2026-11-25T03:00:00Z",
                  scope: str = "subscriptions:00000000-0000-0000-0000-000000000001", page_size: int = 1000) -> Path:
    """Write every query's rows as Resource Graph pages plus a manifest; queries not given get no rows."""
    directory.mkdir(parents=True, exist_ok=True)
    queries = {}
    for spec in load_queries(ROOT):
        data = rows.get(spec.name, [])
        qdir = directory / spec.name
        qdir.mkdir(exist_ok=True)
        chunks = [data[i:i + page_size] for i in range(0, len(data), page_size)] or [[]]
        for n, chunk in enumerate(chunks, start=1):
            body = {"totalRecords": len(data), "count": len(chunk), "resultTruncated": "false", "data": chunk}
            if n < len(chunks):
                body["$skipToken"] = f"token-{n}"
            (qdir / f"page-{n:05d}.json").write_text(json.dumps(body))
        queries[spec.name] = {"file": f"queries/{spec.name}.kql", "sha256": spec.sha256, "pages": len(chunks),
                              "rows": len(data), "total_records": len(data), "complete": True, "error": None,
                              "started_at": as_of, "finished_at": as_of}
    manifest = {"format": SNAPSHOT_FORMAT, "source": "arg", "scope": scope, "as_of": as_of,
                "created_at": as_of, "tool_version": "test", "queries": queries}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    reseal(directory)
    return directory


def reseal(directory: Path) -> None:
    """(Re)write the snapshot's SHA256SUMS as extract does, e.g. after a test changed a page on purpose: the
    snapshot then passes the checksum check and reaches the check the test is about."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != SUMS_NAME)
    write_sums(directory, ((p.relative_to(directory).as_posix(), sha256_file(p)) for p in files))


SUB = "00000000-0000-0000-0000-000000000001"


def arc_row(name: str, **props: Any) -> dict[str, Any]:
    """An arc_machines row as the KQL projects it (strings where the KQL casts)."""
    base = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.HybridCompute/machines/{name}",
        "name": name, "type": "microsoft.hybridcompute/machines", "subscription_id": SUB,
        "resource_group": "rg-app", "location": "japaneast", "tenant_id": "t", "status": "Connected",
        "os_name": "windows", "os_type": "windows", "os_version": "10.0.26100.32772",
        "os_sku": "Windows Server 2025 Datacenter", "os_edition": "serverdatacenter", "firmware_type": "UEFI",
        "enable_hotpatching": "true", "hotpatch_enablement_status": "Enabled",
        "product_features": [{"name": "Hotpatch", "subscriptionStatus": "Enabled"}], "tags": {"owner": "ops"},
    }
    base.update(props)
    return base
