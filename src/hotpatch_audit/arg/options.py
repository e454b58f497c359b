"""How the arg source reaches Resource Graph: the clouds, the endpoint check and ArgOptions."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hotpatch_audit.arg.credentials import clean_token, short_text
from hotpatch_audit.errors import ConfigError

CLOUDS: dict[str, str] = {
    "public": "https://management.azure.com",
    "china": "https://management.chinacloudapi.cn",
    "usgov": "https://management.usgovcloudapi.net",
}
# The Entra ID authority of each cloud (DefaultAzureCredential's `authority`).
AUTHORITIES: dict[str, str] = {"public": "login.microsoftonline.com", "china": "login.chinacloudapi.cn",
                               "usgov": "login.microsoftonline.us"}
PAGE_SIZE = 1000  # rows per page: Resource Graph's maximum $top
MAX_BATCH = 100  # subscriptions per request: Resource Graph's maximum


@dataclass(frozen=True)
class ArgOptions:
    """How the arg source reaches Resource Graph: cloud, endpoint, TLS, credential, batching, retries."""

    cloud: str = "public"
    endpoint: str | None = None  # any Resource-Graph-compatible HTTPS endpoint; default: the cloud's ARM
    credential_scope: str | None = None  # default: "<cloud ARM endpoint>/.default"
    ca_bundle: Path | None = None
    static_token: str | None = field(default=None, repr=False)
    batch_size: int = MAX_BATCH
    page_size: int = PAGE_SIZE
    max_workers: int = 4
    max_attempts: int = 6  # per page, for 5xx / connection errors / malformed bodies
    max_retry_seconds: float = 300.0  # per page: total time spent on errors and 429 waits
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    api_version: str | None = None
    # Called right before every request sent to Resource Graph (each attempt, retries too, once this source's
    # own quota pacer let it go): the Prefect flows take a slot of a rate limit shared by all runs of one
    # identity. Not a setting (from_settings leaves it out) and not shown in the repr.
    before_request: Callable[[], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cloud not in CLOUDS:
            raise ConfigError(f"unknown cloud {self.cloud!r} (one of {', '.join(CLOUDS)})")
        if self.endpoint is not None:
            check_endpoint(self.endpoint)
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"arg batch size must be 1..{MAX_BATCH}, not {self.batch_size}")
        if not 1 <= self.page_size <= PAGE_SIZE:
            raise ConfigError(f"arg page size must be 1..{PAGE_SIZE}, not {self.page_size}")
        if self.max_workers < 1 or self.max_attempts < 1:
            raise ConfigError("arg max_workers and max_attempts must be at least 1")
        if self.static_token is not None:
            object.__setattr__(self, "static_token", clean_token(self.static_token))
        if self.ca_bundle is not None:
            if not Path(self.ca_bundle).is_file():
                raise ConfigError(f"CA bundle not found: {self.ca_bundle}")
            try:
                ssl.create_default_context(cafile=str(self.ca_bundle))
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ConfigError(f"CA bundle {self.ca_bundle} holds no usable PEM certificate: "
                                  f"{short_text(exc, 200)}") from exc

    @property
    def base_url(self) -> str:
        """The endpoint requests go to."""
        return (self.endpoint or CLOUDS[self.cloud]).rstrip("/")

    @property
    def scope(self) -> str:
        """The OAuth scope tokens are requested for."""
        return self.credential_scope or f"{CLOUDS[self.cloud]}/.default"

    @classmethod
    def from_settings(cls, settings: Any) -> ArgOptions:
        """Read the `arg_*` settings (missing ones take the defaults above)."""
        def get(name: str, default: Any) -> Any:
            value = getattr(settings, name, default)
            return default if value is None else value

        token = get("arg_token", None)
        if token is not None and hasattr(token, "get_secret_value"):
            token = token.get_secret_value()
        ca = get("arg_ca_bundle", None)
        return cls(
            cloud=get("arg_cloud", "public"), endpoint=get("arg_endpoint", None) or None,
            credential_scope=get("arg_credential_scope", None) or None,
            ca_bundle=Path(ca) if ca else None, static_token=token,
            batch_size=int(get("arg_batch_size", MAX_BATCH)), max_workers=int(get("arg_max_workers", 4)),
            max_attempts=int(get("arg_max_attempts", 6)),
            max_retry_seconds=float(get("arg_max_retry_seconds", 300.0)),
            read_timeout=float(get("arg_read_timeout", 60.0)),
        )


def check_endpoint(url: str) -> str:
    """Refuse anything but an https URL without credentials, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"the Resource Graph endpoint must be an https:// URL, not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("the Resource Graph endpoint must not carry credentials, a query or a fragment")
    return url

