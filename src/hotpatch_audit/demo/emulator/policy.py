"""Quota, fault injection and statistics of the Resource Graph emulator (all thread-safe)."""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------
# Identities


def identity_of(token: str) -> str:
    """The stats/quota label of a bearer token: never the token itself."""
    return "tok-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Quota


def format_resets_after(seconds: float, fraction: bool = False) -> str:
    """`hh:mm:ss` as Resource Graph writes x-ms-user-quota-resets-after (rounded up, never 0 while waiting).

    With `fraction`, a .NET TimeSpan style fraction is added (`00:00:04.2180000`).
    """
    seconds = max(0.0, seconds)
    if fraction:
        whole = int(seconds)
        ticks = round((seconds - whole) * 10_000_000)
        if ticks >= 10_000_000:
            whole, ticks = whole + 1, 0
        h, rem = divmod(whole, 3600)
        m, s = divmod(rem, 60)
        return f"{h:02d}:{m:02d}:{s:02d}" + (f".{ticks:07d}" if ticks else "")
    whole = math.ceil(seconds - 1e-9)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


@dataclass(frozen=True)
class QuotaDecision:
    """Outcome of charging one request against an identity's window."""

    allowed: bool
    remaining: int
    resets_after: float


class Quota:
    """Fixed windows per identity: a window opens at the identity's first request after the last one ended."""

    def __init__(self, per_window: int = 15, window_seconds: float = 5.0, enabled: bool = True):
        self.per_window = per_window
        self.window_seconds = window_seconds
        self.enabled = enabled
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def charge(self, identity: str, now: float | None = None) -> QuotaDecision:
        """Count one request; allowed=False means answer 429 (a refused request costs nothing)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            start, used = self._windows.get(identity, (now, 0))
            if now - start >= self.window_seconds:
                start, used = now, 0
            resets = start + self.window_seconds - now
            if used >= self.per_window:
                self._windows[identity] = (start, used)
                return QuotaDecision(False, 0, resets)
            used += 1
            self._windows[identity] = (start, used)
            return QuotaDecision(True, self.per_window - used, resets)

    def reset(self) -> None:
        """Forget every window (all identities start fresh)."""
        with self._lock:
            self._windows.clear()


# ---------------------------------------------------------------------------------------------
# Faults

FAULT_KINDS: tuple[str, ...] = (
    "status",               # HTTP 500/502/503/504 with an ARM error body (param status=, retry_after=)
    "throttle",             # HTTP 429 RateLimiting regardless of quota (param resets_after=)
    "slow",                 # sleep `delay` seconds, then answer normally
    "drop",                 # close the connection without any response
    "truncate",             # resultTruncated "true", fewer rows (param rows=), no $skipToken
    "malformed",            # 200 with a broken body (param variant= json | shape | empty | total | bytes)
    "vanish_subscription",  # from this continuation page on, a subscription's rows are gone (param subscription=)
    "subscription_limit",   # normal answer plus x-ms-tenant-subscription-limit-hit: true
    "expire_skip_token",    # a continuation page's $skipToken is refused: 400 InvalidSkipToken (param variant=)
    "duplicate",            # a continuation page repeats the last rows of the page before (param rows=, id_case=)
)
MALFORMED_VARIANTS = ("json", "shape", "empty", "total", "bytes")
EXPIRE_VARIANTS = ("code", "details", "message")  # where the refusal shows: error code, its details, or text only
_CONTINUATION_ONLY = ("vanish_subscription", "expire_skip_token", "duplicate")
_ALIASES = {"500": 500, "502": 502, "503": 503, "504": 504, "http_500": 500, "http_502": 502,
            "http_503": 503, "http_504": 504, "internal_error": 500, "bad_gateway": 502,
            "unavailable": 503}


@dataclass
class Fault:
    """One armed fault. `remaining` None = until cleared."""

    id: int
    kind: str
    remaining: int | None = 1
    match: str | None = None
    page: int | None = None
    identity: str | None = None
    status: int = 503
    retry_after: float | None = None
    delay: float = 5.0
    rows: int | None = None
    variant: str | None = None  # malformed: json (default) | ...; expire_skip_token: code (default) | ...
    subscription: str | None = None
    resets_after: float = 1.0
    id_case: str = "same"  # duplicate: "upper" repeats the rows with their ids upper-cased
    served: int = 0

    def matches(self, query: str, page: int, identity: str) -> bool:
        """Whether this fault applies to a request."""
        if self.match is not None and self.match.lower() not in query.lower():
            return False
        if self.page is not None and self.page != page:
            return False
        if self.identity is not None and self.identity != identity:
            return False
        # a subscription can only disappear, a skip token expire, rows shift *between* pages
        return not (self.kind in _CONTINUATION_ONLY and page < 2)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for the control endpoint)."""
        return asdict(self)


class FaultInjector:
    """Faults armed on demand; each request takes at most one (the oldest that matches)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, kind: str, count: int | None = 1, match: str | None = None, *, page: int | None = None,
            identity: str | None = None, **params: Any) -> Fault:
        """Arm a fault for the next `count` matching requests (None: until cleared).

        kind: one of FAULT_KINDS, or "500"/"502"/"503"/"504" (= status with that code).
        match: case-insensitive substring of the request's query; page: 1-based page number
        (1 = a request without $skipToken); identity: an identity label (policy.identity_of(token)).
        params by kind: status(status=503, retry_after=None), throttle(resets_after=1.0), slow(delay=5.0),
        truncate(rows=None → half the page), malformed(variant="json"|"shape"|"empty"|"total"|"bytes"),
        vanish_subscription(subscription=None → that of the first row of the page it strikes),
        expire_skip_token(variant="code"|"details"|"message": the 400 names InvalidSkipToken as its code, in its
        details, or only says so in its message; the token stays refused only for the requests this fault takes),
        duplicate(rows=1: how many rows of the previous page come again, id_case="same"|"upper").
        The last three strike continuation pages only (page >= 2).
        """
        if kind in _ALIASES:
            params.setdefault("status", _ALIASES[kind])
            kind = "status"
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)} or an HTTP status")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for until cleared)")
        allowed = set(Fault.__dataclass_fields__) - {"id", "kind", "remaining", "match", "page", "identity", "served"}
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"unknown fault parameters: {', '.join(sorted(unknown))}")
        if kind == "status" and int(params.get("status", 503)) not in (500, 502, 503, 504):
            raise ValueError("status faults are 500, 502, 503 or 504")
        if kind == "malformed" and params.get("variant", "json") not in MALFORMED_VARIANTS:
            raise ValueError(f"malformed variant is one of {', '.join(MALFORMED_VARIANTS)}")
        if kind == "expire_skip_token" and params.get("variant", "code") not in EXPIRE_VARIANTS:
            raise ValueError(f"expire_skip_token variant is one of {', '.join(EXPIRE_VARIANTS)}")
        repeat = params.get("rows")
        if kind == "duplicate" and (params.get("id_case", "same") not in ("same", "upper")
                                    or (repeat is not None and int(repeat) < 1)):
            raise ValueError("duplicate takes rows >= 1 and id_case same or upper")
        fault = Fault(id=next(self._ids), kind=kind, remaining=count, match=match, page=page, identity=identity,
                      **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, query: str, page: int, identity: str) -> Fault | None:
        """The fault to serve on this request (its count is consumed), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(query, page, identity):
                    fault.served += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        """Disarm one fault by id."""
        with self._lock:
            for f in self._faults:
                if f.id == fault_id:
                    self._faults.remove(f)
                    return True
        return False

    @property
    def pending(self) -> list[Fault]:
        """Faults still armed (copies of the list, live objects)."""
        with self._lock:
            return list(self._faults)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)


# ---------------------------------------------------------------------------------------------
# Stats


@dataclass
class IdentityStats:
    """Counters of one identity (or of everyone, for the totals)."""

    requests: int = 0        # ARG query requests that passed authentication
    ok: int = 0              # answered 200 with a well-formed page
    throttled: int = 0       # answered 429 (quota or throttle fault)
    errors: int = 0          # answered 4xx other than 401/429 (bad query, bad token, scope)
    faults: Counter[str] = field(default_factory=Counter)  # faults served, by kind
    pages: int = 0           # pages served (200 bodies with data, including truncated/vanished ones)
    rows: int = 0            # rows in those pages
    queries_executed: int = 0  # first pages (and re-runs of expired skip tokens) that ran the KQL

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        d = asdict(self)
        d["faults"] = dict(self.faults)
        d["faults_served"] = sum(self.faults.values())
        return d


@dataclass(frozen=True)
class Event:
    """One answered request (for benchmarks: rates over time)."""

    t: float            # time.monotonic() when answered
    identity: str
    status: int         # HTTP status; 0 = connection dropped
    rows: int
    fault: str | None


class EmulatorStats:
    """Thread-safe counters, in total and per identity, plus a bounded log of events."""

    def __init__(self, max_events: int = 200_000):
        self._lock = threading.Lock()
        self.total = IdentityStats()
        self.by_identity: dict[str, IdentityStats] = {}
        self.unauthorized = 0
        self.events: deque[Event] = deque(maxlen=max_events)

    def identity(self, label: str) -> IdentityStats:
        """Counters of one identity label (see identity_of); zeros when never seen."""
        with self._lock:
            return self.by_identity.get(label, IdentityStats())

    def record(self, identity: str | None, *, status: int, rows: int = 0, fault: str | None = None,
               page: bool = False, executed: bool = False) -> None:
        """Count one answered request."""
        with self._lock:
            if identity is None:
                self.unauthorized += 1
                return
            targets = [self.total, self.by_identity.setdefault(identity, IdentityStats())]
            for s in targets:
                s.requests += 1
                if status == 200 and page:
                    s.pages += 1
                    s.rows += rows
                    if fault is None:
                        s.ok += 1
                if status == 429:
                    s.throttled += 1
                elif 400 <= status < 500:
                    s.errors += 1
                if fault is not None:
                    s.faults[fault] += 1
                if executed:
                    s.queries_executed += 1
            self.events.append(Event(time.monotonic(), identity, status, rows, fault))

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.total = IdentityStats()
            self.by_identity.clear()
            self.unauthorized = 0
            self.events.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-friendly copy of all counters (no events)."""
        with self._lock:
            return {"total": self.total.as_dict(), "unauthorized": self.unauthorized,
                    "by_identity": {k: v.as_dict() for k, v in self.by_identity.items()}}

    # Shortcuts for the totals.
    @property
    def requests(self) -> int:
        """Authenticated ARG requests."""
        return self.total.requests

    @property
    def throttled(self) -> int:
        """429 answers."""
        return self.total.throttled

    @property
    def faults_served(self) -> int:
        """Faults served, all kinds."""
        return sum(self.total.faults.values())

    @property
    def pages(self) -> int:
        """Pages served."""
        return self.total.pages

    @property
    def rows(self) -> int:
        """Rows served."""
        return self.total.rows
