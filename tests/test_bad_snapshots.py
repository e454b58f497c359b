"""Bad snapshots through the public CLI: each is refused before a run is registered, with exit 3 (2 for a usage
error), one line on stderr naming the cause, and the ledger's runs exactly as they were.

Each case is a mutation of one good snapshot (tests/snapshots.make_snapshot), made afresh per case; most are
resealed afterwards (SHA256SUMS rewritten to match) so the check under test, not the checksum, must catch them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from tests.snapshots import arc_row, make_snapshot, reseal

Mutation = Callable[[Path], None]


def _page(snap: Path, query: str = "arc_machines") -> Path:
    return snap / query / "page-00001.json"


def _edit_page(change: Callable[[dict[str, Any]], None], query: str = "arc_machines") -> Mutation:
    def mutate(snap: Path) -> None:
        body = json.loads(_page(snap, query).read_text())
        change(body)
        _page(snap, query).write_text(json.dumps(body))
        reseal(snap)
    return mutate


def _edit_row(field: str, value: Any) -> Mutation:
    def change(body: dict[str, Any]) -> None:
        body["data"][0][field] = value
    return _edit_page(change)


def _raw_page(text: bytes) -> Mutation:
    def mutate(snap: Path) -> None:
        _page(snap).write_bytes(text)
        reseal(snap)
    return mutate


def _edit_manifest(change: Callable[[dict[str, Any]], None], seal: bool = True) -> Mutation:
    def mutate(snap: Path) -> None:
        manifest = json.loads((snap / "manifest.json").read_text())
        change(manifest)
        (snap / "manifest.json").write_text(json.dumps(manifest))
        if seal:
            reseal(snap)
    return mutate


def _sums(text: str) -> Mutation:
    def mutate(snap: Path) -> None:
        (snap / "SHA256SUMS").write_text(text)
    return mutate


def _drop_sums_line(name: str) -> Mutation:
    def mutate(snap: Path) -> None:
        lines = (snap / "SHA256SUMS").read_text().splitlines()
        (snap / "SHA256SUMS").write_text("".join(f"{ln}\n" for ln in lines if not ln.endswith(f"  {name}")))
    return mutate


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest[key] = value
    return change


def _query_info(key: str, value: Any, query: str = "arc_machines") -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest["queries"][query][key] = value
    return change


def _del_query(manifest: dict[str, Any]) -> None:
    del manifest["queries"]["azure_vms"]


def _add_query(manifest: dict[str, Any]) -> None:
    manifest["queries"]["secret_table"] = dict(manifest["queries"]["azure_vms"])


def _rows(count: int) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["count"] = count
    return change


def _duplicate_row(body: dict[str, Any]) -> None:
    body["data"][1]["id"] = body["data"][0]["id"].upper()


def _row_not_object(body: dict[str, Any]) -> None:
    body["data"][0] = ["not", "an", "object"]


def _drop_id(body: dict[str, Any]) -> None:
    del body["data"][0]["id"]


def _no_data(body: dict[str, Any]) -> None:
    del body["data"]


def _unlink(rel: str) -> Mutation:
    def mutate(snap: Path) -> None:
        (snap / rel).unlink()
    return mutate


def _extra_file(snap: Path) -> None:
    (snap / "notes.txt").write_text("added after the snapshot was taken")


def _extra_page(snap: Path) -> None:
    shutil.copy(_page(snap), snap / "arc_machines" / "page-00002.json")
    reseal(snap)


def _altered(snap: Path) -> None:
    page = _page(snap)
    page.write_text(page.read_text().replace("arc-0", "arc-9", 1))


def _symlink_out(snap: Path) -> None:
    target = snap.parent / "outside.json"
    target.write_text(_page(snap).read_text())
    _page(snap).unlink()
    os.symlink(target, _page(snap))
    reseal(snap)


def _broken_manifest(snap: Path) -> None:
    (snap / "manifest.json").write_text("{")
    reseal(snap)


def _missing_dir(snap: Path) -> None:
    shutil.rmtree(snap)


def _deep(levels: int) -> bytes:
    return ('{"data": [{"id": "x", "tags": ' + "[" * levels + "]" * levels + "}]}").encode()


GOOD_ROW = json.dumps({"id": "/subscriptions/x/m", "name": "m"})

CASES: dict[str, tuple[Mutation, int, str]] = {
    # name: (mutation, exit code, words the one-line message must contain)
    "no SHA256SUMS": (_unlink("SHA256SUMS"), 3, "SHA256SUMS"),
    "SHA256SUMS not in sha256sum format": (_sums("hello world\n"), 3, "SHA256SUMS"),
    "SHA256SUMS lists nothing": (_sums(""), 3, "SHA256SUMS"),
    "SHA256SUMS names a path outside": (_sums("0" * 64 + "  ../../etc/passwd\n"), 3, "outside"),
    "a page changed after sealing": (_altered, 3, "changed"),
    "a file not listed": (_extra_file, 3, "not listed"),
    "a listed page missing": (_unlink("arc_machines/page-00001.json"), 3, "missing"),
    "manifest not listed": (_drop_sums_line("manifest.json"), 3, "manifest.json"),
    "a symlink to a file outside": (_symlink_out, 3, "regular file"),
    "an extra page the manifest does not count": (_extra_page, 3, "page files"),
    "manifest not JSON": (_broken_manifest, 3, "not valid JSON"),
    "manifest of another tool": (_edit_manifest(_set("format", "other/1")), 3, "manifest"),
    "as-of in year 9999": (_edit_manifest(_set("as_of", "9999-01-01T00:00:00Z")), 3, "future"),
    "as-of before the calendar": (_edit_manifest(_set("as_of", "2019-01-01T00:00:00Z")), 3, "before"),
    "as-of not a time": (_edit_manifest(_set("as_of", "yesterday")), 3, "ISO 8601"),
    "as-of a number": (_edit_manifest(_set("as_of", 20261125)), 3, "as_of"),
    "no scope": (_edit_manifest(_set("scope", "")), 3, "scope"),
    "queries not an object": (_edit_manifest(_set("queries", [])), 3, "queries"),
    "a query missing": (_edit_manifest(_del_query), 3, "azure_vms"),
    "an unknown query": (_edit_manifest(_add_query), 3, "secret_table"),
    "pages count wrong": (_edit_manifest(_query_info("pages", 2)), 3, "page files"),
    "rows count wrong": (_edit_manifest(_query_info("rows", 7)), 3, "rows"),
    "rows negative": (_edit_manifest(_query_info("rows", -1)), 3, "rows"),
    "complete not a boolean": (_edit_manifest(_query_info("complete", "yes")), 3, "complete"),
    "complete yet short": (_edit_manifest(_query_info("total_records", 9)), 3, "complete"),
    "page not UTF-8": (_raw_page(b'{"data": [{"id": "caf\xe9"}]}'), 3, "UTF-8"),
    "page with NaN": (_raw_page(b'{"data": [{"id": "x", "os_version": NaN}]}'), 3, "NaN"),
    "page with Infinity": (_raw_page(b'{"data": [{"id": "x", "tags": {"a": Infinity}}]}'), 3, "Infinity"),
    "page with a duplicate key": (_raw_page(b'{"data": [{"id": "x", "id": "y"}]}'), 3, "appears twice"),
    "page nested 100 deep": (_raw_page(_deep(100)), 3, "nested"),
    "page nested 100000 deep": (_raw_page(_deep(100_000)), 3, "nested"),
    "page truncated": (_raw_page(b'{"data": [' + GOOD_ROW.encode()), 3, "not valid JSON"),
    "page without data": (_edit_page(_no_data), 3, "data array"),
    "page count disagrees": (_edit_page(_rows(5)), 3, "count"),
    "row not an object": (_edit_page(_row_not_object), 3, "not an object"),
    "row without id": (_edit_page(_drop_id), 3, "no id"),
    "id a number": (_edit_row("id", 12345), 3, "no id"),
    "text field a number": (_edit_row("os_version", 10), 3, "os_version is number"),
    "text field a boolean": (_edit_row("enable_hotpatching", True), 3, "enable_hotpatching is boolean"),
    "text field an object": (_edit_row("name", {"a": 1}), 3, "name is object"),
    "JSON field a string": (_edit_row("tags", "owner=ops"), 3, "tags is text"),
    "JSON field a number": (_edit_row("product_features", 3), 3, "product_features is number"),
    "field the query does not project": (_edit_row("password", "hunter2"), 3, "not a column"),
    "a 10 MB machine name": (_edit_row("name", "x" * 10_000_000), 3, "characters long"),
    "the same id twice in a complete query": (_edit_page(_duplicate_row), 3, "repeats"),
    "no snapshot directory": (_missing_dir, 2, "not a snapshot directory"),
    "manifest.json missing": (_unlink("manifest.json"), 2, "not a snapshot directory"),
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[Any, ...]]]:
    """A ledger holding one good run of the good snapshot; returns it and its meta.runs rows."""
    base = tmp_path_factory.mktemp("bad-snapshots")
    good = _good(base / "good")
    result = CliRunner().invoke(app, ["run", "--source", "snapshot", "--snapshot", str(good), "--ledger",
                                      str(base / "ledger.duckdb"), "--out", str(base / "report"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    return base / "ledger.duckdb", _runs(base / "ledger.duckdb")


def _good(directory: Path) -> Path:
    rows = {"arc_machines": [arc_row(f"arc-{i:02d}") for i in range(3)],
            "azure_vms": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v",
                           "name": "v", "type": "microsoft.compute/virtualmachines", "subscription_id": "s",
                           "resource_group": "rg", "tags": {"owner": "ops"}}]}
    return make_snapshot(directory, rows)


def _runs(path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT * FROM meta.runs ORDER BY run_id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_snapshot_is_refused_before_a_run_is_registered(
    ledger: tuple[Path, list[tuple[Any, ...]]], tmp_path: Path, name: str
) -> None:
    path, before = ledger
    mutate, code, words = CASES[name]
    snap = _good(tmp_path / "snap")
    mutate(snap)
    result = CliRunner().invoke(app, ["run", "--source", "snapshot", "--snapshot", str(snap), "--ledger", str(path),
                                      "--out", str(tmp_path / "out"), "--format", "csv"])
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert words in lines[0], lines[0]
    assert _runs(path) == before
    assert not (tmp_path / "out").exists()


def test_as_of_other_than_the_snapshots_is_a_usage_error(ledger: tuple[Path, list[tuple[Any, ...]]],
                                                         tmp_path: Path) -> None:
    path, before = ledger
    snap = _good(tmp_path / "snap")
    result = CliRunner().invoke(app, ["run", "--source", "snapshot", "--snapshot", str(snap), "--ledger", str(path),
                                      "--as-of", "2026-10-28T03:00Z", "--format", "csv"])
    assert result.exit_code == 2, result.output
    assert "differs from the snapshot's as-of" in result.stderr
    assert _runs(path) == before


def test_the_good_snapshot_passes_every_check(tmp_path: Path) -> None:
    """The mutations above are what fails: the same snapshot unmutated is read (the checks are not too strict)."""
    from hotpatch_audit.catalog import load_queries
    from hotpatch_audit.config import PROJECT_ROOT
    from hotpatch_audit.ledger import raw_schema
    from hotpatch_audit.snapshot_check import verify_snapshot

    manifest = verify_snapshot(_good(tmp_path / "snap"), load_queries(PROJECT_ROOT), raw_schema(PROJECT_ROOT))
    assert manifest["queries"]["arc_machines"]["rows"] == 3
