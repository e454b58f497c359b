"""The production Azure Resource Graph source: paging, completeness, quota pacing, retries, clouds, tenants.

Built on azure-mgmt-resourcegraph (keyword arguments only) with azure-core's own retry switched off
(`retry_total=0`), so every retry and wait below is ours and visible in the stats. Credentials come
from azure-identity (DefaultAzureCredential unless a static token is given) and never appear in logs,
files or error text. Figures are logged (pages, rows, quota left, waits), never row contents.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hotpatch_audit.catalog import QuerySpec, validate_query
from hotpatch_audit.errors import AuthError, ConfigError, SkipTokenExpiredError, SourceError
from hotpatch_audit.sources import Page, Scope, page_body

log = logging.getLogger(__name__)

CLOUDS: dict[str, str] = {
    "public": "https://management.azure.com",
    "china": "https://management.chinacloudapi.cn",
    "usgov": "https://management.usgovcloudapi.net",
}
_AUTHORITIES = {"public": "login.microsoftonline.com", "china": "login.chinacloudapi.cn",
                "usgov": "login.microsoftonline.us"}
PAGE_SIZE = 1000
MAX_BATCH = 100
SUBSCRIPTION_LIMIT_HEADER = "x-ms-tenant-subscription-limit-hit"
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MG_RE = re.compile(r"^[A-Za-z0-9_.()-]{1,90}$")
_TENANT_RE = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                        r"|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63})$")
_TIMESPAN_RE = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SKIP_TOKEN_TEXT_RE = re.compile(r"(?i)\$?skip\s*-?token\b.*\b(expired|invalid|not valid|no longer valid)\b"
                                 r"|\b(expired|invalid)\s+\$?skip\s*-?token")
_CA_HINT = ("pass --ca-bundle FILE (setting arg_ca_bundle / HOTPATCH_AUDIT_ARG_CA_BUNDLE) with the CA that "
            "signed it")
_DAC_CHAIN = ("EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, "
              "SharedTokenCacheCredential, AzureCliCredential, AzurePowerShellCredential, "
              "AzureDeveloperCliCredential")
R = TypeVar("R")


class IncompleteResultError(SourceError):
    """A query finished but did not return every row it announced (or its scope was capped)."""


# ---------------------------------------------------------------------------------------------------
# Header parsing and backoff (pure functions)


def parse_timespan(value: str | None) -> float | None:
    """Seconds in a .NET TimeSpan text such as `00:00:05` or `1.02:03:04.5` (None if absent or malformed)."""
    if not value:
        return None
    m = _TIMESPAN_RE.match(value.strip())
    if not m:
        return None
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def parse_int(value: str | None) -> int | None:
    """An integer header value, or None."""
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def parse_retry_after(headers: Mapping[str, str], now_wall: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = _header(headers, name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
    value = _header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_wall is None else now_wall))


@dataclass(frozen=True)
class QuotaInfo:
    """The quota headers of one response."""

    remaining: int | None
    resets_after: float | None
    subscription_limit_hit: bool = False

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> QuotaInfo:
        """Read x-ms-user-quota-remaining, x-ms-user-quota-resets-after and the 10,000-subscription flag."""
        if not headers:
            return cls(None, None)
        return cls(
            parse_int(_header(headers, "x-ms-user-quota-remaining")),
            parse_timespan(_header(headers, "x-ms-user-quota-resets-after")),
            str(_header(headers, SUBSCRIPTION_LIMIT_HEADER) or "").strip().lower() == "true",
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts in tests are case-sensitive; azure-core's are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                  rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2**(attempt-1))."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return float(ceiling * (0.5 + 0.5 * rng()))


def batched(items: Sequence[str], size: int) -> list[list[str]]:
    """Split `items` into lists of at most `size`, in order."""
    if size < 1:
        raise ConfigError("batch size must be at least 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove given secrets and anything shaped like a JWT or bearer token from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _JWT_RE.sub("***", text)
    return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)


# ---------------------------------------------------------------------------------------------------
# Quota pacing


@dataclass
class PacerStats:
    """What the pacer did: grants, waits and throttles."""

    grants: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    throttled: int = 0


class QuotaPacer:
    """Spreads one identity's requests over its quota window, from the quota headers of every response.

    Thread-safe; all workers of one identity share one pacer. The first request of a window goes alone;
    its response tells how many requests are left (`remaining`) and when the window resets; the rest are
    spread evenly until the reset, and nothing is sent once the estimate reaches 0 until the reset has
    passed (plus a safety margin that grows after each 429). Responses without quota headers mean no
    quota: requests then go unpaced. Time comes from `clock`/`sleep` so tests can run it on a fake clock.
    """

    def __init__(self, *, margin: float = 0.05, max_margin: float = 1.0, spread: bool = True,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 poll: float = 0.02, name: str = "") -> None:
        self.margin = margin
        self.max_margin = max_margin
        self.spread = spread
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._poll = poll
        self._lock = threading.Lock()
        self._window = 0  # local window number; tickets remember theirs
        self._window_end: float | None = None  # upper estimate of the server's reset (clock time)
        self._avail: float | None = None  # requests still allowed in this window; None = not known yet
        self._not_before = 0.0
        self._last_grant: float | None = None
        self._seq = 0
        self._inflight: dict[int, tuple[int, int]] = {}  # ticket -> (window, seq)
        self._granted_at: dict[int, float] = {}
        self.stats = PacerStats()

    def reserve(self) -> tuple[int | None, float]:
        """Try to take a slot now: (ticket, 0.0) when granted, else (None, seconds to wait)."""
        with self._lock:
            now = self._clock()
            if now < self._not_before:
                return None, self._not_before - now
            if self._window_end is not None and now >= self._window_end + self.margin:
                self._window += 1
                self._window_end = None
                self._avail = None
                self._last_grant = None
            if self._avail is None:
                if any(w == self._window for w, _ in self._inflight.values()):
                    return None, self._poll  # the window's first request is out; wait for its quota headers
            elif self._avail < 1:
                if self._window_end is None:
                    return None, self._poll
                return None, self._window_end + self.margin - now
            elif self.spread and self._window_end is not None and self._last_grant is not None:
                gap = (self._window_end - self._last_grant) / (self._avail + 1)
                if now < self._last_grant + gap:
                    return None, self._last_grant + gap - now
            self._seq += 1
            if self._avail is not None:
                self._avail -= 1
            self._last_grant = now
            self._inflight[self._seq] = (self._window, self._seq)
            self._granted_at[self._seq] = now
            self.stats.grants += 1
            return self._seq, 0.0

    def acquire(self) -> int:
        """Block until a slot is free; return its ticket (pass it to observe/release/throttled)."""
        waited = 0.0
        while True:
            ticket, delay = self.reserve()
            if ticket is not None:
                if waited > 0:
                    with self._lock:
                        self.stats.waits += 1
                        self.stats.waited_seconds += waited
                return ticket
            self._sleep(delay)
            waited += delay

    def observe(self, ticket: int, quota: QuotaInfo, received_at: float | None = None) -> None:
        """Take the quota headers of the response to `ticket` into account."""
        with self._lock:
            window, seq = self._inflight.pop(ticket, (-1, ticket))
            sent = self._granted_at.pop(ticket, None)
            if quota.remaining is None:
                if window == self._window and self._avail is None:
                    self._avail = float("inf")  # no quota headers: an endpoint without a quota
                    self._window_end = (received_at or self._clock()) + 1.0  # look again in a second
                return
            if window != self._window:
                return  # a straggler from a window we already left
            later = sum(1 for w, s in self._inflight.values() if w == window and s > seq)
            avail = float(max(0, quota.remaining - later))
            self._avail = avail if self._avail is None or self._avail == float("inf") else min(self._avail, avail)
            if quota.resets_after is not None:
                # The server stamped the headers between send and receipt: take the middle of the round trip.
                received = received_at if received_at is not None else self._clock()
                end = (received if sent is None else (sent + received) / 2) + quota.resets_after
                self._window_end = end if self._window_end is None else min(self._window_end, end)

    def release(self, ticket: int) -> None:
        """The request to `ticket` got no response (connection error): forget it."""
        with self._lock:
            window, _ = self._inflight.pop(ticket, (-1, ticket))
            self._granted_at.pop(ticket, None)
            if window == self._window and self._avail is None:
                self._last_grant = None

    def throttled(self, ticket: int, wait: float) -> None:
        """The request to `ticket` was answered 429: nobody sends for `wait` seconds; be more careful."""
        with self._lock:
            self._inflight.pop(ticket, None)
            self._granted_at.pop(ticket, None)
            now = self._clock()
            self._not_before = max(self._not_before, now + wait)
            self._window += 1  # after the wait, start afresh: one request, then its headers
            self._window_end = None
            self._avail = None
            self._last_grant = None
            self.margin = min(self.max_margin, self.margin + 0.25)
            self.stats.throttled += 1


# ---------------------------------------------------------------------------------------------------
# Credentials


def clean_token(token: str) -> str:
    """A static bearer token without the whitespace around it (`$(cat token.txt)`, secret files end in a newline).

    ConfigError when nothing is left, or when whitespace, control or non-ASCII characters remain inside (a
    bearer token is printable ASCII); the message never shows the token.
    """
    token = token.strip()
    if not token:
        raise ConfigError("the static token (setting arg_token / HOTPATCH_AUDIT_ARG_TOKEN) is empty")
    if not all("!" <= c <= "~" for c in token):
        raise ConfigError("the static token (setting arg_token / HOTPATCH_AUDIT_ARG_TOKEN) contains whitespace, "
                          "control or non-ASCII characters inside it; give the bearer token alone")
    return token


class StaticTokenCredential:
    """A TokenCredential returning a token the user gave (emulators, recording proxies). Never printed."""

    __slots__ = ("_token", "_expires_on")

    def __init__(self, token: str, expires_in: int = 3600 * 24) -> None:
        self._token = clean_token(token)
        self._expires_on = expires_in

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """An AccessToken for any scope, valid for a day from now."""
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._expires_on)

    def close(self) -> None:
        """Nothing to close."""

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


class _TenantCredential:
    """Asks one credential for tokens of one tenant (multi-tenant runs)."""

    def __init__(self, inner: Any, tenant_id: str) -> None:
        self._inner = inner
        self._tenant_id = tenant_id

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        kwargs.setdefault("tenant_id", self._tenant_id)
        return self._inner.get_token(*scopes, **kwargs)

    def close(self) -> None:
        """The shared inner credential is closed by its owner."""


# ---------------------------------------------------------------------------------------------------
# Options and targets


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
                                  f"{_short(exc, 200)}") from exc

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


@dataclass(frozen=True)
class TenantTarget:
    """One tenant (None: the credential's home tenant) and the scope read in it."""

    tenant_id: str | None
    scope: Scope

    def requests(self, batch_size: int) -> list[tuple[list[str] | None, list[str] | None]]:
        """(subscriptions, management_groups) of each request: subscriptions batched, MGs together."""
        check_scope(self.scope)
        if self.scope.kind == "subscriptions":
            return [(batch, None) for batch in batched(self.scope.ids, batch_size)]
        if self.scope.kind == "management_groups":
            return [(None, list(self.scope.ids))]  # together: overlapping groups are de-duplicated by ARG
        return [(None, None)]


def check_scope(scope: Scope) -> None:
    """Re-check every value that goes into a request body."""
    if scope.kind == "subscriptions":
        if not scope.ids:
            raise ConfigError("subscription scope without subscriptions")
        bad = [s for s in scope.ids if not _GUID_RE.match(s)]
        if bad:
            raise ConfigError(f"not a subscription id (GUID): {bad[0]!r}")
    elif scope.kind == "management_groups":
        if not scope.ids:
            raise ConfigError("management group scope without management groups")
        bad = [m for m in scope.ids if not _MG_RE.match(m)]
        if bad:
            raise ConfigError(f"not a management group name: {bad[0]!r}")
    elif scope.kind == "tenant":
        if scope.ids:
            raise ConfigError("tenant scope takes no ids")
    else:
        raise ConfigError(f"the arg source cannot read scope kind {scope.kind!r}")


def tenants_scope(tenants: Mapping[str, Scope]) -> Scope:
    """A Scope for several tenants that survives Scope.key()/parse(): ids `TENANT` or `TENANT=kind:a;b`."""
    ids = []
    for tenant, scope in sorted(tenants.items()):
        if not _TENANT_RE.match(tenant):
            raise ConfigError(f"not a tenant id (GUID or domain): {tenant!r}")
        check_scope(scope)
        ids.append(tenant if scope.kind == "tenant" else f"{tenant}={scope.kind}:{';'.join(scope.ids)}")
    if not ids:
        raise ConfigError("no tenants given")
    return Scope("tenants", tuple(ids))


def targets_for(scope: Scope) -> list[TenantTarget]:
    """The tenants and scopes a Scope names (one target with the home tenant unless kind is `tenants`)."""
    if scope.kind != "tenants":
        check_scope(scope)
        return [TenantTarget(None, scope)]
    targets = []
    for item in scope.ids:
        tenant, _, rest = item.partition("=")
        if not _TENANT_RE.match(tenant):
            raise ConfigError(f"not a tenant id (GUID or domain): {tenant!r}")
        if rest:
            kind, _, ids = rest.partition(":")
            sub = Scope(kind, tuple(x for x in ids.split(";") if x))
        else:
            sub = Scope("tenant")
        check_scope(sub)
        targets.append(TenantTarget(tenant, sub))
    return targets


# ---------------------------------------------------------------------------------------------------
# The source


@dataclass
class ArgStats:
    """Counters over all queries of one source (thread-safe through ArgSource's lock)."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    throttled: int = 0
    retries: int = 0
    throttle_wait_seconds: float = 0.0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    skip_tokens_expired: int = 0


class _Retryable(Exception):
    def __init__(self, kind: str, status: int | None, cause: BaseException) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status
        self.cause = cause


class ArgSource:
    """Azure Resource Graph through azure-mgmt-resourcegraph: every row of every query, or a clear error."""

    name = "arg"

    def __init__(self, scope: Scope, *, options: ArgOptions | None = None, credential: Any = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.scope = scope
        self.options = options or ArgOptions()
        self.targets = targets_for(scope)
        self.max_workers = self.options.max_workers
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[Any] = []
        self._pacers: dict[str | None, QuotaPacer] = {}
        self.stats = ArgStats()
        if credential is not None:
            self._credential, self._chain = credential, type(credential).__name__
        elif self.options.static_token:
            self._credential, self._chain = StaticTokenCredential(self.options.static_token), "static token"
        else:
            self._credential, self._chain = None, "DefaultAzureCredential"
        self._secrets = [self.options.static_token or ""]

    @classmethod
    def from_settings(cls, settings: Any, scope: Scope) -> ArgSource:
        """Build from Settings (`arg_*` fields; see ArgOptions.from_settings)."""
        return cls(scope, options=ArgOptions.from_settings(settings))

    # -- plumbing ---------------------------------------------------------------------------------

    def _base_credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                tenants = [t.tenant_id for t in self.targets if t.tenant_id]
                kwargs: dict[str, Any] = {"authority": _AUTHORITIES[self.options.cloud]}
                if tenants:
                    kwargs["additionally_allowed_tenants"] = tenants
                self._credential = DefaultAzureCredential(**kwargs)
            return self._credential

    def pacer(self, tenant_id: str | None) -> QuotaPacer:
        """The shared quota pacer of one tenant's identity."""
        with self._lock:
            if tenant_id not in self._pacers:
                self._pacers[tenant_id] = QuotaPacer(clock=self._clock, sleep=self._sleep, name=tenant_id or "home")
            return self._pacers[tenant_id]

    def _client(self, tenant_id: str | None) -> Any:
        clients: dict[str | None, Any] = self._local.__dict__.setdefault("clients", {})
        if tenant_id not in clients:
            from azure.mgmt.resourcegraph import ResourceGraphClient

            credential = self._base_credential()
            if tenant_id:
                credential = _TenantCredential(credential, tenant_id)
            kwargs: dict[str, Any] = {
                "credential": credential, "base_url": self.options.base_url,
                "credential_scopes": [self.options.scope], "retry_total": 0,
                "connection_timeout": self.options.connection_timeout,
                "read_timeout": self.options.read_timeout,
            }
            if self.options.ca_bundle is not None:
                kwargs["connection_verify"] = str(self.options.ca_bundle)
            if self.options.api_version:
                kwargs["api_version"] = self.options.api_version
            clients[tenant_id] = ResourceGraphClient(**kwargs)
            with self._lock:
                self._clients.append(clients[tenant_id])
        return clients[tenant_id]

    def close(self) -> None:
        """Close every HTTP client this source opened (and the default credential)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()

    def __enter__(self) -> ArgSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, **deltas: float) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)

    # -- paging -----------------------------------------------------------------------------------

    def pages(self, spec: QuerySpec) -> Iterator[Page]:
        """Yield every page of one query over every tenant and batch, in order; fail closed on any gap.

        Each page's totalRecords is the running sum of the announced totals of the batches started so
        far, so after the last page it is the query's total and `rows == total_records` holds.

        A skip token Resource Graph refuses (expired) raises SkipTokenExpiredError at once: the caller reads
        the query again from its first page by calling pages() again (every call starts afresh).
        """
        validate_query(spec)  # paging-safe shape: id first, order by id, no take/limit
        problems: list[str] = []
        grand_total = 0
        received_all = 0
        plan = [(t, req) for t in self.targets for req in t.requests(self.options.batch_size)]
        for number, (target, (subs, mgs)) in enumerate(plan, start=1):
            label = _batch_label(spec.name, target, subs, mgs, number, len(plan))
            seen: set[int] = set()
            duplicates = 0
            received = 0
            total: int | None = None
            token: str | None = None
            truncated = limit_hit = False
            page_no = 0
            while True:
                try:
                    resp, quota = self._fetch(spec, label, target.tenant_id, subs, mgs, token)
                except SkipTokenExpiredError as exc:
                    self._count(skip_tokens_expired=1)
                    raise SkipTokenExpiredError(
                        f"Resource Graph query {label}: the skip token for page {page_no + 1} was refused as "
                        f"expired or invalid after {received} of {total} rows ({exc}); the query must be read "
                        "again from its first page") from exc
                page_no += 1
                rows = resp.data
                if total is None:
                    total = int(resp.total_records)
                    grand_total += total
                truncated |= str(getattr(resp.result_truncated, "value", resp.result_truncated)).lower() == "true"
                limit_hit |= quota.subscription_limit_hit
                rows_json = []
                for row in rows:
                    rid = row.get("id") if isinstance(row, dict) else None
                    if isinstance(rid, str):
                        h = hash(rid.lower())  # Azure resource ids are case-insensitive
                        if h in seen:
                            duplicates += 1
                        seen.add(h)
                    rows_json.append(json.dumps(row, separators=(",", ":")))
                received += len(rows_json)
                received_all += len(rows_json)
                token = resp.skip_token or None
                self._count(pages=1, rows=len(rows_json))
                log.debug("%s page %d: %d rows (%d of %d), quota remaining %s", label, page_no, len(rows_json),
                          received, total, quota.remaining)
                yield Page(page_body(rows_json, grand_total, token), len(rows_json), grand_total, token)
                if token and not rows_json:
                    problems.append(f"{label}: an empty page carried a skip token; paging stopped")
                    break
                if token and received > total + self.options.page_size:
                    problems.append(f"{label}: more rows than announced; paging stopped")
                    break
                if not token:
                    break
            reasons = []
            if received != total:
                reasons.append(f"received {received} of {total} rows")
            if duplicates:
                reasons.append(f"{duplicates} rows repeated an id of an earlier page (rows moved while the query "
                               "was paged; each id is loaded once)")
            if truncated:
                reasons.append("resultTruncated=true (the query shape cannot be paged)")
            if limit_hit:
                reasons.append("the scope hit the 10,000-subscription limit (x-ms-tenant-subscription-limit-hit); "
                               "list subscriptions or smaller management groups instead")
            if reasons:
                problems.append(f"{label}: " + "; ".join(reasons))
            log.info("%s: %d pages, %d of %d rows%s", label, page_no, received, total,
                     " (INCOMPLETE)" if reasons else "")
        if problems:
            raise IncompleteResultError(f"Resource Graph query {spec.name} is incomplete "
                                        f"(received {received_all} of {grand_total} rows): " + " | ".join(problems))

    def _fetch(self, spec: QuerySpec, label: str, tenant_id: str | None, subs: list[str] | None,
               mgs: list[str] | None, token: str | None) -> tuple[Any, QuotaInfo]:
        """One page, retried until it arrives whole: 429 waits as told, 5xx/network/malformed back off."""
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        request = QueryRequest(
            subscriptions=subs, management_groups=mgs, query=spec.text,
            options=QueryRequestOptions(top=self.options.page_size, skip_token=token,
                                        result_format="objectArray", allow_partial_scopes=False),
        )
        client = self._client(tenant_id)
        pacer = self.pacer(tenant_id)
        started = self._clock()
        failures = 0
        last: _Retryable | None = None
        while True:
            elapsed = self._clock() - started
            if last is not None and (failures >= self.options.max_attempts or elapsed > self.options.max_retry_seconds):
                raise SourceError(redact(
                    f"Resource Graph query {label} failed after {failures} attempts in {elapsed:.0f} s "
                    f"({last.kind}{_status_text(last.status)}): {_short(last.cause)}", self._secrets)) from last.cause
            ticket = pacer.acquire()
            self._count(requests=1)
            try:
                return self._attempt(client, request, pacer, ticket)
            except _Retryable as exc:
                last = exc
                if exc.kind == "throttled":
                    wait = _throttle_wait(exc.cause, failures_hint=self.stats.throttled)
                    pacer.throttled(ticket, wait)
                    self._count(throttled=1, throttle_wait_seconds=wait)
                    log.warning("%s: throttled (429), waiting %.2f s", label, wait)
                    if self._clock() - started + wait > self.options.max_retry_seconds:
                        failures = self.options.max_attempts  # out of time: give up on the next turn
                    continue
                failures += 1
                self._count(retries=1)
                with self._lock:
                    self.stats.errors_by_kind[exc.kind] = self.stats.errors_by_kind.get(exc.kind, 0) + 1
                if failures < self.options.max_attempts:
                    delay = backoff_delay(failures, base=self.options.backoff_base, cap=self.options.backoff_cap)
                    log.warning("%s: %s%s, retry %d of %d in %.2f s", label, exc.kind, _status_text(exc.status),
                                failures, self.options.max_attempts - 1, delay)
                    self._sleep(delay)

    def _attempt(self, client: Any, request: Any, pacer: QuotaPacer, ticket: int) -> tuple[Any, QuotaInfo]:
        """Send one request; classify its failure as _Retryable or a final SourceError."""
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            DecodeError,
            DeserializationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            resp, headers = client.resources(
                query=request, cls=lambda pipeline_response, deserialized, _: (
                    deserialized, pipeline_response.http_response.headers))
        except DecodeError as exc:
            pacer.observe(ticket, _quota_of(exc), self._clock())
            raise _Retryable("malformed response body", exc.status_code, exc) from exc
        except ClientAuthenticationError as exc:
            pacer.observe(ticket, _quota_of(exc), self._clock())
            raise self._auth_error(exc) from exc
        except HttpResponseError as exc:
            quota = _quota_of(exc)
            pacer.observe(ticket, quota, self._clock())
            status = exc.status_code
            if status == 429:
                raise _Retryable("throttled", status, exc) from exc
            if status in (401, 403):
                raise self._auth_error(exc) from exc
            if status is None or status >= 500 or status == 408:
                raise _Retryable("server error", status, exc) from exc
            if request.options.skip_token and _skip_token_refused(exc):
                # Not retried: an expired token never becomes valid again.
                raise SkipTokenExpiredError(redact(_error_text(exc), self._secrets)) from exc
            raise SourceError(redact(f"Resource Graph refused the query{_status_text(status)}: {_short(exc)}",
                                     self._secrets)) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            pacer.release(ticket)
            reason = _tls_verify_failure(exc)
            if reason is not None:  # not retried: the next attempt meets the same certificate
                raise SourceError(redact(self._tls_message(reason), self._secrets)) from exc
            raise _Retryable("connection error", None, exc) from exc
        except (DeserializationError, ValueError, ArithmeticError) as exc:
            # A body that is not the JSON it claims: cut, not UTF-8, numbers beyond range. Retried like a 5xx.
            pacer.release(ticket)
            raise _Retryable("malformed response body", 200, exc) from exc
        except (AzureError, OSError) as exc:
            pacer.release(ticket)
            raise SourceError(redact(f"Resource Graph request failed ({type(exc).__name__}): {_short(exc)}",
                                     self._secrets)) from exc
        quota = QuotaInfo.from_headers(headers)
        pacer.observe(ticket, quota, self._clock())
        problem = _shape_problem(resp)
        if problem:
            raise _Retryable(f"malformed response body ({problem})", 200, ValueError(problem))
        return resp, quota

    def _tls_message(self, reason: str) -> str:
        head = f"the TLS certificate of {self.options.base_url} could not be verified ({reason})"
        if "mismatch" in reason.lower():
            return f"{head}: use a host name the certificate was issued for, or {_CA_HINT}"
        if self.options.ca_bundle:
            head += f" and the CA bundle {self.options.ca_bundle} does not make it trusted"
        return f"{head}: {_CA_HINT}"

    def _auth_error(self, exc: BaseException) -> AuthError:
        status = getattr(exc, "status_code", None)
        if self._chain == "static token":
            what = ("the static token (setting arg_token) was refused" if status
                    else "the static token could not be used")
            hint = "Give a valid token for this endpoint (setting arg_token)"
        elif self._chain == "DefaultAzureCredential":
            what = (f"Resource Graph refused the token from DefaultAzureCredential (chain: {_DAC_CHAIN})"
                    if status else "DefaultAzureCredential found no usable credential"
                    + ("" if "Attempted credentials" in str(exc) else f" (chain tried: {_DAC_CHAIN})"))
            hint = ("Run `az login` (with --tenant for another tenant), or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                    "AZURE_CLIENT_SECRET or a managed/workload identity; the identity needs the Reader role "
                    "at the scope")
        else:
            what = f"the credential {self._chain} failed"
            hint = "Check the credential; the identity needs the Reader role at the scope"
        return AuthError(redact(f"Resource Graph authentication or authorization failed{_status_text(status)}: "
                                  f"{what}. {hint}. Detail: {_short(exc, 2000)}", self._secrets))

    # -- concurrency ------------------------------------------------------------------------------

    def run_concurrently(self, specs: Sequence[QuerySpec], work: Callable[[QuerySpec], R],
                         max_workers: int | None = None) -> dict[str, R]:
        """Run `work(spec)` for each query on worker threads sharing this source's quota pacers."""
        return run_concurrently(specs, work, max_workers=max_workers or self.max_workers)


def run_concurrently(specs: Sequence[QuerySpec], work: Callable[[QuerySpec], R], *,
                     max_workers: int = 4) -> dict[str, R]:
    """Apply `work` to each spec on up to `max_workers` threads; results by query name, in spec order.

    `work` should catch what it wants recorded (extract records HotpatchAuditError per query); anything
    else it raises is re-raised here after every query has finished.
    """
    if max_workers <= 1 or len(specs) <= 1:
        return {spec.name: work(spec) for spec in specs}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="arg") as pool:
        # Each thread runs in a copy of the caller's context, so whatever the caller's context carries (a
        # Prefect flow run's, for its log handler) reaches the log lines written on the threads.
        futures = [(spec.name, pool.submit(contextvars.copy_context().run, work, spec)) for spec in specs]
        errors = [f.exception() for _, f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return {name: f.result() for name, f in futures}


# ---------------------------------------------------------------------------------------------------
# helpers


def _quota_of(exc: BaseException) -> QuotaInfo:
    response = getattr(exc, "response", None)
    return QuotaInfo.from_headers(getattr(response, "headers", None))


def _throttle_wait(exc: BaseException, failures_hint: int = 0) -> float:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    wait = parse_retry_after(headers)
    if wait is None:
        wait = QuotaInfo.from_headers(headers).resets_after
    if wait is None:
        wait = backoff_delay(min(failures_hint, 6) + 1, base=1.0, cap=30.0)
    return min(max(wait, 0.05), 300.0)


def _error_text(exc: BaseException) -> str:
    """`HTTP 400 Code: message` of an ARM error, short and on one line."""
    error = getattr(exc, "error", None)
    status = getattr(exc, "status_code", None)
    code = getattr(error, "code", None)
    details = [d for d in (getattr(error, "details", None) or []) if getattr(d, "code", None)]
    text = str(getattr(error, "message", None) or _short(exc, 300))
    if details:
        text += " [" + "; ".join(f"{d.code}: {getattr(d, 'message', '')}" for d in details[:3]) + "]"
    head = " ".join(x for x in (f"HTTP {status}" if status else "", str(code) if code else "") if x)
    return _short(ValueError(f"{head}: {text}" if head else text), 400)


def _skip_token_refused(exc: BaseException) -> bool:
    """Whether an HTTP error says the request's $skipToken is expired or invalid (code InvalidSkipToken, at
    the top or in the details, or a message saying so)."""
    error = getattr(exc, "error", None)
    parts = [error, *(getattr(error, "details", None) or [])] if error is not None else []
    if any(str(getattr(p, "code", "") or "").lower() == "invalidskiptoken" for p in parts):
        return True
    texts = [str(getattr(exc, "message", "") or "")] + [str(getattr(p, "message", "") or "") for p in parts]
    return any(_SKIP_TOKEN_TEXT_RE.search(t) for t in texts)


def _tls_verify_failure(exc: BaseException) -> str | None:
    """The short reason when a connection error is a TLS certificate verification failure, else None."""
    chain: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack and len(chain) < 50:
        cur = stack.pop()
        if isinstance(cur, BaseException) and all(cur is not c for c in chain):
            chain.append(cur)
            stack.extend([getattr(cur, "inner_exception", None), getattr(cur, "reason", None), cur.__cause__,
                          cur.__context__, *cur.args])
    verify = next((c for c in chain if isinstance(c, ssl.SSLCertVerificationError)), None)
    if verify is not None and verify.verify_message:
        text = str(verify.verify_message)
    else:
        text = next((str(c) for c in chain if "CERTIFICATE_VERIFY_FAILED" in str(c)), "")
        if not text:
            return None
        text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", text.rpartition("certificate verify failed:")[2])
    return " ".join(text.split()).rstrip(".")[:200] or "certificate verify failed"


def _shape_problem(resp: Any) -> str | None:
    if resp is None:
        return "empty body"
    if not isinstance(resp.data, list):
        return "data is not an objectArray list"
    if not isinstance(resp.total_records, int) or resp.total_records < 0:
        return "totalRecords missing"
    if resp.count is not None and resp.count != len(resp.data):
        return f"count {resp.count} but {len(resp.data)} rows"
    return None


def _status_text(status: int | None) -> str:
    return f", HTTP {status}" if status else ""


def _short(exc: BaseException, limit: int = 600) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _batch_label(query: str, target: TenantTarget, subs: list[str] | None, mgs: list[str] | None,
                 number: int, count: int) -> str:
    where = (f"{len(subs)} subscriptions" if subs else f"management groups {','.join(mgs)}" if mgs else "tenant")
    tenant = f" in tenant {target.tenant_id}" if target.tenant_id else ""
    return f"{query} [request {number}/{count}: {where}{tenant}]"
