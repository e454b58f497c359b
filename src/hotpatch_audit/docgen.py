"""Generate docs/settings.md (from Settings), docs/schema.md (from the ledger's COMMENT ON text) and
docs/exports.md (from hotpatch_audit.exports)."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from hotpatch_audit.config import CHECKOUT_ROOT, PROJECT_ROOT, Settings
from hotpatch_audit.duck import STORAGE_VERSION


def settings_markdown() -> str:
    """Every setting, its environment variable and its default."""
    lines = [
        "# Settings",
        "",
        "Generated from `src/hotpatch_audit/config.py` by `python -m hotpatch_audit.docgen`; do not edit.",
        "Every setting is read from an environment variable `HOTPATCH_AUDIT_<NAME>` (lists as JSON);",
        "CLI options and Prefect flow parameters override them.",
        "",
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if name == "project_root":
            default = "the checkout, else the installed copy"
        lines.append(f"| `{name}` | `HOTPATCH_AUDIT_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(lines) + "\n"


def schema_markdown(project_root: Path = PROJECT_ROOT) -> str:
    """Every ledger table and view with its comment and columns."""
    from hotpatch_audit.analyze import apply_sql

    con = duckdb.connect()
    apply_sql(con, project_root)
    lines = [
        "# The DuckDB ledger",
        "",
        "Generated from the `COMMENT ON` text in `sql/` by `python -m hotpatch_audit.docgen`; do not edit.",
        "Open the file read-only for analysis: `duckdb -readonly out/ledger.duckdb` or",
        "`hotpatch-audit query \"select ...\"`. Times are UTC. The `latest_*` views (schema `main`) hold each",
        "scope's run of record; ten questions answered with them: [cookbook.md](cookbook.md).",
        "",
        f"The file is written in DuckDB's storage format {STORAGE_VERSION}: every DuckDB from 1.3 on opens it (the",
        "command line, Python, R, DBeaver, notebooks), as well as the DuckDB 2 the tool runs. It is the oldest format",
        "with DICT_FSST string compression, and the ledger is mostly text: a run's findings are written in about a",
        "quarter less CPU than in v1.0.0, in a fifth fewer blocks. The text nearly every finding has its own",
        "(`finding_id`, `machine_id`, `reason`, `evidence` of `audit.findings`, and `machine_id`, `installation_id`,",
        "`reason`, `evidence`, `tags` of the other stored tables) is stored with zstd: at 100,000 machines the",
        "findings after one run take 312 MB instead of 512 MB, and the audit stage a few seconds less; reading them",
        "is no slower. A findings table created before that keeps its compression. A ledger an earlier version of the",
        "tool wrote in another format (DuckDB 2's own, or v1.0.0) is converted once, on the next audit run, after",
        "checking that every table's rows are the same in the copy (the original stays if anything differs).",
        "",
    ]
    objects = con.execute(
        "SELECT schema_name, table_name, 'table', comment FROM duckdb_tables() WHERE NOT internal"
        " AND database_name = current_database()"
        " UNION ALL SELECT schema_name, view_name, 'view', comment FROM duckdb_views() WHERE NOT internal"
        " AND database_name = current_database() ORDER BY 1, 2"
    ).fetchall()
    current = None
    for schema, name, kind, comment in objects:
        if schema != current:
            lines += [f"## Schema `{schema}`", ""]
            current = schema
        lines += [f"### `{schema}.{name}` ({kind})", "", (comment or "(no description)").strip(), ""]
        cols = con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?"
            " AND database_name = current_database() ORDER BY column_index",
            [schema, name],
        ).fetchall()
        lines += ["| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c}` | {t} | {(m or '').strip()} |" for c, t, m in cols]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    """Write the documents (or, with --check, fail when they are out of date)."""
    if CHECKOUT_ROOT is None:
        sys.exit("docgen writes the docs/ of a checkout; run it from one (the installed package has no docs/)")
    docs = CHECKOUT_ROOT / "docs"
    from hotpatch_audit.exports import exports_markdown

    wanted = {docs / "settings.md": settings_markdown(), docs / "schema.md": schema_markdown(),
              docs / "exports.md": exports_markdown()}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if "--check" in sys.argv:
        if stale:
            sys.exit(f"out of date: {', '.join(str(p) for p in stale)} (run python -m hotpatch_audit.docgen)")
        return
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
