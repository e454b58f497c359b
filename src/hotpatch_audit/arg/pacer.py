"""Quota pacing for Resource Graph: the quota headers of each response, Retry-After, backoff, and the pacer.

Resource Graph gives each identity a number of requests per window and says in every response how many are
left (`x-ms-user-quota-remaining`) and when the window resets (`x-ms-user-quota-resets-after`). QuotaPacer
spreads one identity's requests over that window so steady work meets no 429; the functions above it read
the headers and compute waits. Pure logic: nothing here sends a request.
"""

from __future__ import annotations

import email.utils
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

SUBSCRIPTION_LIMIT_HEADER = "x-ms-tenant-subscription-limit-hit"
_TIMESPAN_RE = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


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

    def sending(self, ticket: int) -> None:
        """The request to `ticket` leaves now, not when it was granted (something else held it in between)."""
        with self._lock:
            if ticket in self._granted_at:
                self._granted_at[ticket] = self._clock()

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

