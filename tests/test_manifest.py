"""manifest.json, SHA256SUMS and `hotpatch-audit verify`; the PDF's metadata; the evidence appendix."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pypdf
import pytest
from typer.testing import CliRunner

from hotpatch_audit.cli import app
from hotpatch_audit.config import Settings

ROOT = Path(__file__).resolve().parents[1]
AUTHOR = "Platform team <platform@example.com>"


@dataclass(frozen=True)
class Rendered:
    settings: Settings
    run_id: str
    out: Path
    paths: list[Path]
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def rendered(demo_history: tuple[Settings, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The demo's last run rendered once in every format, as `report` does, with a report author set."""
    from hotpatch_audit.pipeline import render_stage

    settings, run_ids = demo_history
    s = settings.model_copy(update={"report_author": AUTHOR})
    out = tmp_path_factory.mktemp("manifest") / "report"
    paths = render_stage(s, run_ids[-1], out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return Rendered(s, run_ids[-1], out, paths, manifest)


def _verify(target: Path) -> Any:
    return CliRunner().invoke(app, ["verify", str(target)])


def _copy(rendered: Rendered, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(rendered.out, folder)
    return folder


def test_manifest_lists_every_output_with_its_size_and_hash(rendered: Rendered) -> None:
    m = rendered.manifest
    assert rendered.paths[-1] == rendered.out / "manifest.json"  # written last
    listed = {f["path"]: f for f in m["files"]}
    on_disk = {p.relative_to(rendered.out).as_posix() for p in rendered.out.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json"}
    assert {
        "audit.pdf",
        "audit.html",
        "open_actions.csv",
        "open_actions.parquet",
        "exceptions.csv",
        "exceptions.parquet",
        "coverage_exceptions.csv",
        "coverage_exceptions.parquet",
        "findings.parquet",
        "machine_months.parquet",
        "SHA256SUMS",
    } == set(listed)
    for rel, entry in listed.items():
        path = rendered.out / rel
        assert entry["size"] == path.stat().st_size and entry["sha256"] == _sha256(path), rel
    assert listed["audit.pdf"]["kind"] == "pdf" and listed["findings.parquet"]["kind"] == "parquet"


def test_manifest_records_run_versions_and_render(rendered: Rendered) -> None:
    m = rendered.manifest
    con = duckdb.connect(str(rendered.settings.path(rendered.settings.ledger_path)), read_only=True)
    try:
        scope, as_of, calendar_version, status = con.execute(
            "select scope, as_of, calendar_version, status from meta.runs where run_id = ?", [rendered.run_id]
        ).fetchone() or (None, None, None, None)
    finally:
        con.close()
    assert m["format"] == "hotpatch-audit-report-manifest/1"
    assert m["run_id"] == rendered.run_id and m["scope"] == scope and m["run_status"] == status
    assert m["as_of"] == f"{as_of:%Y-%m-%dT%H:%M:%S}Z"
    assert m["calendar_version"] == calendar_version and calendar_version
    assert m["price_table_version"] == _sha256(ROOT / "data" / "prices.csv")[:12]
    assert m["waiver_file"] is None and m["waiver_file_sha256"] is None  # the demo history applies none
    assert m["language"] == "en" and m["owner"] is None
    from hotpatch_audit import __version__

    assert m["tool_version"] == __version__
    datetime.strptime(m["generated_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_sha256sum_checks_the_folder_without_the_tool(rendered: Rendered) -> None:
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=rendered.out, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(rendered.manifest["files"]) - 1  # all but SHA256SUMS itself


def test_verify_passes_on_an_untouched_folder(rendered: Rendered) -> None:
    n = len(rendered.manifest["files"])
    for target in (rendered.out, rendered.out / "manifest.json"):
        result = _verify(target)
        assert result.exit_code == 0, result.output
        assert f"all {n} files match" in result.output


def test_verify_fails_naming_a_changed_pdf(rendered: Rendered, tmp_path: Path) -> None:
    folder = _copy(rendered, tmp_path)
    pdf = folder / "audit.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte: same size, other hash
    pdf.write_bytes(bytes(data))
    result = _verify(folder)
    assert result.exit_code == 3, result.output
    assert "audit.pdf: changed: SHA-256 differs" in result.output
    assert "1 problem found checking" in result.output
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True).returncode


def test_verify_fails_naming_a_missing_file(rendered: Rendered, tmp_path: Path) -> None:
    folder = _copy(rendered, tmp_path)
    (folder / "machine_months.parquet").unlink()
    result = _verify(folder)
    assert result.exit_code == 3, result.output
    assert "machine_months.parquet: missing" in result.output


def test_verify_refuses_paths_outside_the_folder_and_needs_a_manifest(rendered: Rendered, tmp_path: Path) -> None:
    folder = _copy(rendered, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].append({"path": "../outside.txt", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()})
    (tmp_path / "outside.txt").write_bytes(b"")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = _verify(folder)
    assert result.exit_code == 3 and "../outside.txt: unsafe path" in result.output
    manifest["files"].append({"path": "/etc/hostname", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()})
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = _verify(folder)
    assert result.exit_code == 3 and "/etc/hostname: unsafe path" in result.output
    assert _verify(tmp_path / "nowhere").exit_code == 2
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    assert _verify(folder).exit_code == 3


def test_pdf_metadata_names_title_author_subject_and_creation_date(rendered: Rendered) -> None:
    meta = pypdf.PdfReader(rendered.out / "audit.pdf").metadata
    assert meta is not None
    m = rendered.manifest
    assert meta.title and meta.title.startswith("Windows Server hotpatch audit") and m["scope"] in meta.title
    assert meta.author == AUTHOR
    assert meta.subject is not None and meta.subject.startswith(m["scope"] + ", ")
    assert " – " in meta.subject  # the period, first month – last month
    assert rendered.run_id in str(meta.get("/Keywords")) and "hotpatch" in str(meta.get("/Keywords"))
    created = meta.creation_date
    assert created is not None
    assert f"{created:%Y-%m-%dT%H:%M:%S}Z" == m["generated_at"]


def test_evidence_appendix_lists_versions_hashes_and_collection(rendered: Rendered) -> None:
    html = (rendered.out / "audit.html").read_text(encoding="utf-8")
    appendix = html[html.index('id="appendix"') :]
    m = rendered.manifest
    assert m["calendar_version"] in appendix and m["price_table_version"] in appendix
    assert "Price table version" in appendix and "Tool version" in appendix
    con = duckdb.connect(str(rendered.settings.path(rendered.settings.ledger_path)), read_only=True)
    try:
        queries = con.execute(
            "select query_file, query_sha256, rows_received from meta.query_stats where run_id = ?", [rendered.run_id]
        ).fetchall()
    finally:
        con.close()
    assert queries
    for file, sha, rows in queries:
        assert file in appendix and sha in appendix and f"{rows:,}" in appendix
    assert "Collected" in appendix and m["scope"] in appendix
    assert "manifest.json" in appendix


def test_run_saves_its_snapshot_and_lists_it_with_the_waiver_hash(settings: Settings, tmp_path: Path) -> None:
    from hotpatch_audit.pipeline import RunRequest, run_audit

    waivers = ROOT / "data" / "demo-waivers.yaml"
    s = settings.model_copy(update={"formats": ["csv"], "waivers_path": waivers})
    out = tmp_path / "report"
    outcome = run_audit(
        s,
        RunRequest(source="demo", as_of=datetime.fromisoformat("2026-11-25T03:00:00+00:00")),
        out_dir=out,
        save_snapshot=True,
    )
    assert outcome.report_paths[-1] == out / "manifest.json"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    snapshot = {f["path"] for f in manifest["files"] if f["kind"] == "snapshot"}
    assert "snapshot/manifest.json" in snapshot
    assert snapshot == {p.relative_to(out).as_posix() for p in (out / "snapshot").rglob("*") if p.is_file()}
    assert any(p.startswith("snapshot/arc_machines/page-") for p in snapshot)
    assert manifest["waiver_file_sha256"] == _sha256(waivers)
    result = _verify(out)
    assert result.exit_code == 0 and f"all {len(manifest['files'])} files match" in result.output
    # a re-render (`report`) of the run into the same folder lists the run's snapshot again
    from hotpatch_audit.pipeline import render_stage

    render_stage(s, outcome.run_id, out)
    again = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {f["path"] for f in again["files"] if f["kind"] == "snapshot"} == snapshot
    # a carried snapshot checks on its own (its SHA256SUMS), and a changed page is named
    result = _verify(out / "snapshot")
    assert result.exit_code == 0 and f"all {len(snapshot) - 1} files match" in result.output
    page = sorted((out / "snapshot" / "arc_machines").glob("page-*.json"))[0]
    page.write_bytes(page.read_bytes().replace(b"{", b"[", 1))
    result = _verify(out / "snapshot")
    assert result.exit_code == 3 and f"arc_machines/{page.name}: changed" in result.output
    # the saved snapshot is a snapshot directory the snapshot source reads again
    from hotpatch_audit.sources import SnapshotSource

    assert SnapshotSource(out / "snapshot").scope.key() == manifest["scope"]


# --- verify is strict: nothing unlisted, no empty list, SHA256SUMS agrees with manifest.json ------------------


def _small_folder(tmp_path: Path) -> Path:
    """A report folder written as render_stage writes one (manifest.write_manifest), without a ledger."""
    from hotpatch_audit.manifest import write_manifest

    folder = tmp_path / "small"
    (folder / "owners" / "team-a").mkdir(parents=True)
    files = {"audit.html": b"<html></html>", "findings.csv": b"a,b\n1,2\n", "owners/team-a/findings.csv": b"a\n"}
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    write_manifest(folder, [folder / rel for rel in files], facts={"run_id": "run-x", "scope": "test"},
                   settings=Settings(), generated_at=datetime(2026, 11, 25, 3, 0))
    return folder


def _rewrite_sums(folder: Path, edit: Any) -> None:
    """Edit SHA256SUMS's lines (edit: list -> list) and record its new size and hash in manifest.json, so only
    the edit itself differs."""
    sums = folder / "SHA256SUMS"
    lines = edit(sums.read_text(encoding="utf-8").splitlines())
    sums.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == "SHA256SUMS":
            entry.update(size=sums.stat().st_size, sha256=_sha256(sums))
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _problems(folder: Path) -> list[str]:
    from hotpatch_audit.manifest import verify

    return [f"{rel}: {problem}" for rel, problem in verify(folder).problems]


def test_verify_passes_on_a_folder_with_owner_subfolders(tmp_path: Path) -> None:
    folder = _small_folder(tmp_path)
    assert _problems(folder) == []
    result = _verify(folder)
    assert result.exit_code == 0 and "all 4 files match" in result.output


def test_verify_names_every_file_listed_nowhere_hidden_temp_files_too(tmp_path: Path) -> None:
    folder = _small_folder(tmp_path)
    (folder / ".audit.pdf.123.tmp").write_bytes(b"half a pdf")
    (folder / "owners" / "team-a" / "notes.txt").write_text("mine", encoding="utf-8")
    (folder / "owners" / "team-b").mkdir()
    (folder / "owners" / "team-b" / "findings.csv").write_text("a\n", encoding="utf-8")
    (folder / "link").symlink_to(tmp_path)
    result = _verify(folder)
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    for rel in (".audit.pdf.123.tmp", "owners/team-a/notes.txt", "owners/team-b/findings.csv", "link"):
        assert f"mismatch: {rel}: not listed: in the folder but in neither manifest.json nor SHA256SUMS" in lines
    assert lines[-1].startswith("4 problems found checking 4 files of ")
    assert not any("manifest.json: not listed" in line or "SHA256SUMS: not listed" in line for line in lines)


def test_verify_refuses_an_empty_file_list(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "manifest.json").write_text(
        json.dumps({"format": "hotpatch-audit-report-manifest/1", "run_id": "run-x", "files": []}), encoding="utf-8"
    )
    result = _verify(folder)
    assert result.exit_code == 3, result.output
    assert "mismatch: manifest.json: lists no files" in result.output


def test_verify_cross_checks_sha256sums_against_the_manifest(tmp_path: Path) -> None:
    folder = _small_folder(tmp_path)
    other = "0" * 64
    _rewrite_sums(folder, lambda lines: [
        f"{other}  audit.html" if line.endswith("  audit.html") else line
        for line in lines if not line.endswith("  findings.csv") or "owners/" in line
    ] + [f"{other}  owners/team-a/findings.csv.bak", f"{other}  ../escape.txt"])
    problems = _problems(folder)
    assert sorted(problems) == sorted([
        "audit.html: changed: SHA-256 in SHA256SUMS differs from manifest.json",
        "findings.csv: listed in manifest.json but not in SHA256SUMS",
        "owners/team-a/findings.csv.bak: listed in SHA256SUMS but not in manifest.json",
        "../escape.txt: unsafe path in SHA256SUMS: outside the manifest's folder",
    ])
    assert _verify(folder).exit_code == 3


def test_verify_checks_a_snapshot_directory_for_unlisted_files_and_an_empty_list(tmp_path: Path) -> None:
    from hotpatch_audit.files import sha256_file, write_sums

    snap = tmp_path / "snap"
    (snap / "arc_machines").mkdir(parents=True)
    (snap / "arc_machines" / "page-00001.json").write_text('{"data": []}', encoding="utf-8")
    (snap / "manifest.json").write_text(json.dumps({"format": "hotpatch-audit-snapshot/1", "queries": {}}),
                                        encoding="utf-8")
    listed = ["arc_machines/page-00001.json", "manifest.json"]
    write_sums(snap, ((rel, sha256_file(snap / rel)) for rel in listed))
    result = _verify(snap)
    assert result.exit_code == 0 and "all 2 files match" in result.output, result.output
    (snap / "arc_machines" / ".page-00002.json.77.tmp").write_text("{", encoding="utf-8")
    result = _verify(snap)
    assert result.exit_code == 3
    assert "arc_machines/.page-00002.json.77.tmp: not listed: in the folder but not in SHA256SUMS" in result.output
    (snap / "arc_machines" / ".page-00002.json.77.tmp").unlink()
    write_sums(snap, [("manifest.json", sha256_file(snap / "manifest.json"))])
    problems = _problems(snap)
    assert problems == [
        "SHA256SUMS: lists no files",
        "arc_machines/page-00001.json: not listed: in the folder but not in SHA256SUMS",
    ]
