"""Settings: the only reader of the environment (prefix HOTPATCH_AUDIT_); CLI and flow parameters override it."""

from __future__ import annotations

import functools
import re
import zoneinfo
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The definitions every run reads: sql/ (the ledger, audits, report views), queries/ (KQL), data/ (calendar,
# prices, demo waivers), reports/templates and reports/static. They live at the checkout root; the wheel carries
# a copy inside the package (pyproject.toml, hatch_build.py). The setting project_root overrides the default.
RESOURCE_DIRS = ("sql", "queries", "data", "reports/templates", "reports/static")
_PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_RESOURCES = _PACKAGE_DIR / "_resources"  # hotpatch_audit/_resources of an installed wheel


def _checkout_root() -> Path | None:
    """The source checkout this package is imported from (src/hotpatch_audit inside it: the editable install of
    .venv, tests, scripts), or None when the package is installed from a wheel."""
    root = _PACKAGE_DIR.parents[1]
    if _PACKAGE_DIR.parent.name == "src" and (root / "pyproject.toml").is_file() and all(
        (root / folder).is_dir() for folder in RESOURCE_DIRS
    ):
        return root
    return None


# What the setting formats accepts (the CLI's --format choices are read from it): the reports, the analyst exports,
# and the findings for a SIEM as JSON Lines and as OCSF events (docs/exports.md).
ReportFormat = Literal["html", "pdf", "csv", "parquet", "jsonl", "ocsf"]

CHECKOUT_ROOT = _checkout_root()
# The default project root: the checkout when running from one, else the copy installed with the package.
PROJECT_ROOT = CHECKOUT_ROOT or PACKAGED_RESOURCES
MIN_MEMORY_BYTES = 64 * 1000**2  # DuckDB cannot audit even a small fleet in less
_UNITS = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgt]i?b)", re.IGNORECASE | re.ASCII)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?) ?%", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PATHS = ("project_root", "ledger_path", "out_dir", "work_dir", "snapshot_dir", "arg_ca_bundle",
          "calendar_override_path", "waivers_path")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(name: str) -> str:
    """An IANA time zone name zoneinfo can load (e.g. UTC, Europe/Berlin, Asia/Tokyo), else ValueError."""
    if name not in _zones():
        raise ValueError(f"{name[:60]!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin, Asia/Tokyo)")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"time zone {name!r} cannot be loaded (is the tzdata package installed?)") from None
    return name


def check_memory_limit(text: str) -> str:
    """A DuckDB memory limit: a size (512MB, 1GB, 1.5GiB; at least 64MB) or a share of RAM (1% to 100%)."""
    if match := _PERCENT.fullmatch(text.strip()):
        if not 1 <= float(match[1]) <= 100:
            raise ValueError(f"{text!r}: a share of memory must be 1% to 100%")
        return text
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a DuckDB memory size: a number and KB, MB, GB, TB (or KiB, MiB, "
                         "GiB, TiB), e.g. 512MB, 4GB, or a share of RAM such as 80%")
    if float(match[1]) * _UNITS[match[2].lower()] < MIN_MEMORY_BYTES:
        raise ValueError(f"{text!r} is too little memory for DuckDB; give at least 64MB")
    return text


class Settings(BaseSettings):
    """Every setting with its default; see docs/settings.md (generated from these descriptions)."""

    model_config = SettingsConfigDict(env_prefix="HOTPATCH_AUDIT_", env_file=None, extra="ignore")

    project_root: Path = Field(
        PROJECT_ROOT, description="Folder holding the definitions a run reads: queries/, sql/, data/, "
        "reports/templates and reports/static. Default: the checkout when running from one (scripts, tests, the "
        "editable install in .venv), else the copy installed with the package (hotpatch_audit/_resources). Set it "
        "to run with your own copy; it is only read, never written.")
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
    arg_max_attempts: int = Field(6, description="Attempts per page on 429, 5xx and connection errors.", ge=1,
                                  le=100)
    arg_max_retry_seconds: float = Field(300.0, description="Longest total wait for one page's retries.", gt=0,
                                         le=86_400, allow_inf_nan=False)
    arg_read_timeout: float = Field(60.0, description="Seconds to wait for a Resource Graph response.", gt=0,
                                    le=3_600, allow_inf_nan=False)
    arg_rate_limit_name: str | None = Field(
        "resource-graph", description="Prefect global rate limit that every flow run reading Resource Graph with "
        "one identity takes a slot from before each request, so concurrent runs (tenants, workers) stay within "
        "the identity's quota together; created on first use with arg_rate_limit_burst and "
        "arg_rate_limit_per_second (an existing limit keeps its values). Use one name per Azure identity; empty: "
        "no shared limit (each run paces itself from the quota headers). Flows only; the CLI paces itself.",
        max_length=100, pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._-]*$")
    arg_rate_limit_burst: int = Field(
        2, description="Slots of the shared rate limit (requests that may start at once).", ge=1, le=15)
    arg_rate_limit_per_second: float = Field(
        2.5, description="Requests per second the shared rate limit lets through after the burst. Resource Graph "
        "allows 15 requests per 5 s per identity; the burst plus 5 s at this rate (2 + 12.5) stays below it.",
        gt=0, le=3.0, allow_inf_nan=False)
    # Demo fleet
    demo_machines: int = Field(500, description="Machines in the demo fleet.", ge=1, le=200_000)
    demo_seed: int = Field(20251014, description="Seed of the demo fleet generator (same seed, same fleet).")
    # Audit rules (audits.md, Defaults)
    grace_days: int = Field(14, description="Days after release before a missing hotpatch or baseline fails.",
                            ge=0, le=366)
    assessment_stale_days: int = Field(7, description="An assessment older than this is stale.", ge=0, le=366)
    guest_facts_max_age_days: int = Field(30, description="Guest facts older than this count as missing.", ge=0,
                                          le=366)
    pending_max_days: int = Field(7, description="Hotpatch status Pending longer than this is a blocker.", ge=0,
                                  le=366)
    downtime_minutes_per_reboot: int = Field(15, description="Downtime counted per reboot avoided.", ge=0, le=1_440)
    period_months: int = Field(12, description="Reporting period: months up to and including the as-of month.",
                               ge=1, le=120)
    billing_cores: Literal["physical", "logical"] = Field("physical", description="Cores counted for Arc billing.")
    remediation_days_critical: int = Field(7, description="Days an open action of severity critical has, from the "
        "day it became due (or was first seen open), before its due date.", ge=0, le=3_650)
    remediation_days_high: int = Field(14, description="Remediation window of a high action, in days.", ge=0,
                                       le=3_650)
    remediation_days_medium: int = Field(30, description="Remediation window of a medium action, in days.", ge=0,
                                         le=3_650)
    remediation_days_low: int = Field(90, description="Remediation window of a low action, in days.", ge=0,
                                      le=3_650)
    remediation_days_info: int = Field(180, description="Remediation window of an info action, in days.", ge=0,
                                       le=3_650)
    owner_tag: str = Field(
        "owner", description="Tag key naming a machine's owner (matched case-insensitively): on the machine, then "
        "its resource group, then its subscription; else the subscription name.", min_length=1, max_length=512)
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
    downtime_cost_per_hour: float = Field(
        0.0, description="What one hour of downtime costs the business, in currency_code: page 1 prices the "
        "downtime hotpatch avoided with it (0: the report shows hours only and says the cost is not set).", ge=0,
        le=10_000_000, allow_inf_nan=False)
    currency_code: str = Field("USD", description="ISO 4217 code of downtime_cost_per_hour (the licence prices "
                               "of data/prices.csv are in USD).", pattern=r"^[A-Z]{3}$")
    pdf_top_n: int = Field(10, description="Open actions listed per audit in the PDF, most urgent first (audit.html "
                           "lists up to 2,000, open_actions.csv has all).", ge=1, le=10_000)
    pdf_group_top_n: int = Field(
        10, description="Findings listed per owner and per subscription in the PDF's Owners and subscriptions "
        "section (at most pdf_top_n; audit.html lists up to 100 each, the CSV has all). Each row costs the PDF "
        "render about 40 ms.", ge=1, le=1_000)
    formats: list[ReportFormat] = Field(
        default_factory=lambda: ["html", "pdf", "csv", "parquet"],  # type: ignore[arg-type]
        description="Report formats to write: html, pdf, and the analyst exports as csv and parquet (docs/exports.md): "
        "the two registers (open_actions, exceptions) in both, the complete findings and machine-months in Parquet "
        "(in CSV too with csv_detail). Not by default, for a SIEM or data lake: jsonl (findings.jsonl, the findings "
        "as JSON Lines) and ocsf (findings.ocsf.json, OCSF Compliance Finding events).", min_length=1
    )
    csv_detail: bool = Field(
        False, description="Also write the complete findings.csv and machine_months.csv (every row, pass included; "
        "about 1.5 GB and 0.9 GB at 100,000 machines). Off: the CSV exports are the registers, open_actions.csv and "
        "exceptions.csv (non-pass rows only), and the complete detail is in the Parquet files.")
    report_base_url: str | None = Field(
        None, description="URL under which out_dir is published to readers (a web server or share in front of it); "
        "the Prefect flow's link artifact points to <report_base_url>/<run id>/audit.html. Unset: a file:// link "
        "on the worker.", max_length=2000, pattern=r"^https?://[^\s]+$")
    notify_webhook_url: SecretStr | None = Field(
        None, description="Webhook (Teams, Slack or any JSON endpoint) the Prefect flows POST to when a run fails, "
        "crashes or ends incomplete: {\"text\": ...} plus the flow run, state and message. Environment only "
        "(the URL is a secret), never logged or written; unset: no notification (or the Prefect automation in "
        "docs/prefect.md).")
    report_author: str = Field(
        "hotpatch-audit", description="Author of the reports: the PDF's /Author and the HTML's author meta tag, "
        "e.g. your team's name.", min_length=1, max_length=200)
    duckdb_memory_limit: str = Field(
        "1GB", description="Memory DuckDB may use per connection before spilling to disk: a size (512MB, 4GB, "
        "at least 64MB) or a share of RAM (80%). A load or audit that runs out of it is rolled back and run once "
        "more on one thread, which needs about half the memory (a warning says so). The default is enough for "
        "100,000 machines (measured peak 1.2 GB for the whole process).")
    lock_timeout_seconds: float = Field(600.0, description="How long a writer waits for the ledger lock.", gt=0,
                                        le=86_400, allow_inf_nan=False)

    @field_validator(*_PATHS, mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        """Paths are refused when empty or holding NUL or other control characters."""
        if isinstance(value, str | Path):
            text = str(value)
            if not text.strip():
                raise ValueError("an empty path (unset the variable instead)")
            if _CONTROL.search(text):
                raise ValueError(f"{text[:60]!r} holds a control character (NUL, newline, ...)")
        return value

    @field_validator("timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit(cls, value: str) -> str:
        return check_memory_limit(value)

    @field_validator("owner_tag", "report_author")
    @classmethod
    def _one_line_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if _CONTROL.search(value):
            raise ValueError(f"{value[:60]!r} holds a control character")
        return value

    @field_validator("arg_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        """An https URL without credentials, query or fragment (as hotpatch_audit.arg.check_endpoint)."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or _CONTROL.search(value) or " " in value:
            raise ValueError(f"{value[:80]!r} is not an https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("the endpoint must not carry credentials, a query or a fragment")
        return value

    @field_validator("arg_ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{str(value)[:120]!r} is not a file (a PEM CA bundle)")
        return value

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
            **{f"remediation_days_{sev}": str(getattr(self, f"remediation_days_{sev}"))
               for sev in ("critical", "high", "medium", "low", "info")},
        }
