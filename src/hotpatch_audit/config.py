"""Settings: the only reader of the environment (prefix HOTPATCH_AUDIT_); CLI and flow parameters override it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every setting with its default; see docs/settings.md (generated from these descriptions)."""

    model_config = SettingsConfigDict(env_prefix="HOTPATCH_AUDIT_", env_file=None, extra="ignore")

    project_root: Path = Field(PROJECT_ROOT, description="Checkout holding queries/, sql/, data/, reports/.")
    ledger_path: Path = Field(Path("out/ledger.duckdb"), description="The DuckDB ledger file.")
    out_dir: Path = Field(Path("out/reports"), description="Where reports are written (one folder per run).")
    work_dir: Path = Field(Path("out/work"), description="Scratch space: extracted pages, demo fleet files.")
    source: Literal["demo", "snapshot", "arg"] = Field("demo", description="Data source: demo, snapshot or arg.")
    snapshot_dir: Path | None = Field(None, description="Snapshot directory for source=snapshot.")
    subscriptions: list[str] = Field(default_factory=list, description="Subscription ids in scope (arg).")
    management_groups: list[str] = Field(default_factory=list, description="Management groups in scope (arg).")
    # Azure Resource Graph (source arg)
    arg_cloud: Literal["public", "china", "usgov"] = Field(
        "public", description="Azure cloud: public (management.azure.com), china or usgov.")
    arg_endpoint: str | None = Field(
        None, description="Resource-Graph-compatible https endpoint instead of the cloud's (emulator, proxy, "
        "private endpoint).")
    arg_credential_scope: str | None = Field(None, description="Token scope [default: the cloud's ARM /.default].")
    arg_ca_bundle: Path | None = Field(None, description="CA bundle (PEM) to trust for the endpoint's TLS.")
    arg_token: SecretStr | None = Field(
        None, description="Static bearer token (emulators, recording proxies) instead of DefaultAzureCredential; "
        "environment only, never logged or written.")
    arg_tenants: list[str] = Field(default_factory=list, description="Tenants to read, each as a whole tenant.")
    arg_batch_size: int = Field(100, description="Subscriptions per Resource Graph request.", ge=1, le=100)
    arg_max_workers: int = Field(4, description="Queries extracted concurrently (sharing one quota).", ge=1, le=16)
    arg_max_attempts: int = Field(6, description="Attempts per page on 429, 5xx and connection errors.", ge=1)
    arg_max_retry_seconds: float = Field(300.0, description="Longest total wait for one page's retries.")
    arg_read_timeout: float = Field(60.0, description="Seconds to wait for a Resource Graph response.")
    # Demo fleet
    demo_machines: int = Field(500, description="Machines in the demo fleet.", ge=1, le=200_000)
    demo_seed: int = Field(20251014, description="Seed of the demo fleet generator (same seed, same fleet).")
    # Audit rules (audits.md, Defaults)
    grace_days: int = Field(14, description="Days after release before a missing hotpatch or baseline fails.")
    assessment_stale_days: int = Field(7, description="An assessment older than this is stale.")
    guest_facts_max_age_days: int = Field(30, description="Guest facts older than this count as missing.")
    pending_max_days: int = Field(7, description="Hotpatch status Pending longer than this is a blocker.")
    downtime_minutes_per_reboot: int = Field(15, description="Downtime counted per reboot avoided.")
    period_months: int = Field(12, description="Reporting period: months up to and including the as-of month.")
    billing_cores: Literal["physical", "logical"] = Field("physical", description="Cores counted for Arc billing.")
    owner_tag: str = Field(
        "owner", description="Tag key naming a machine's owner (matched case-insensitively): on the machine, then "
        "its resource group, then its subscription; else the subscription name.", min_length=1)
    calendar_override_path: Path | None = Field(
        None, description="Local calendar CSV (same columns as data/release_calendar.csv) whose rows replace shipped "
        "rows of the same track and month (events: same track, month, kind, KB) or add new ones; validated, and "
        "covered by the calendar version.")
    waivers_path: Path | None = Field(
        None, description="Waiver file (YAML, reviewed in a pull request; format in docs/waivers.md): accepted "
        "exceptions by audit, code and scope, each with justification, approver and expiry; validated when a run "
        "starts and recorded with its SHA-256 in every run that applies it.")
    # Reports
    timezone: str = Field("UTC", description="Zone in which reports show times (IANA name, e.g. Asia/Tokyo).")
    language: Literal["en", "ja"] = Field(
        "en", description="Report language of audit.html and audit.pdf (docs/i18n.md); exports stay English."
    )
    page_size: Literal["A4", "Letter"] = Field("A4", description="PDF page size.")
    pdf_top_n: int = Field(50, description="Machines listed per PDF section (the CSV has all).", ge=1)
    pdf_group_top_n: int = Field(
        10, description="Findings listed per owner and per subscription in the PDF's Owners and subscriptions "
        "section (at most pdf_top_n; audit.html lists up to 100 each, the CSV has all). Each row costs the PDF "
        "render about 40 ms.", ge=1)
    formats: list[Literal["html", "pdf", "csv", "parquet"]] = Field(
        default_factory=lambda: ["html", "pdf", "csv", "parquet"],  # type: ignore[arg-type]
        description="Report formats to write: html, pdf, and the analyst exports (findings and machine-months) as csv "
        "and parquet (docs/exports.md)."
    )
    report_author: str = Field(
        "hotpatch-audit", description="Author of the reports: the PDF's /Author and the HTML's author meta tag, "
        "e.g. your team's name.", min_length=1)
    duckdb_memory_limit: str = Field("1GB", description="Memory DuckDB may use per connection before spilling to disk.")
    lock_timeout_seconds: float = Field(600.0, description="How long a writer waits for the ledger lock.")

    def path(self, p: Path) -> Path:
        """Resolve a relative setting path against the current directory."""
        return p if p.is_absolute() else Path.cwd() / p

    def audit_rules(self) -> dict[str, str]:
        """The settings the SQL audits read from meta.settings, as text."""
        return {
            "grace_days": str(self.grace_days),
            "assessment_stale_days": str(self.assessment_stale_days),
            "guest_facts_max_age_days": str(self.guest_facts_max_age_days),
            "pending_max_days": str(self.pending_max_days),
            "downtime_minutes_per_reboot": str(self.downtime_minutes_per_reboot),
            "period_months": str(self.period_months),
            "billing_cores": self.billing_cores,
            "owner_tag": self.owner_tag,
        }
