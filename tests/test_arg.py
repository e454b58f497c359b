"""The arg source: pure logic (pacing on a fake clock, headers, batching, scopes) and, over HTTPS against
the local Resource Graph emulator with the real SDK client, paging, quota, 429, 5xx, truncation and auth."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hotpatch_audit.arg import (
    ArgOptions,
    QuotaInfo,
    QuotaPacer,
    StaticTokenCredential,
    TenantTarget,
    backoff_delay,
    batched,
    check_endpoint,
    parse_retry_after,
    parse_timespan,
    redact,
    targets_for,
    tenants_scope,
)
from hotpatch_audit.catalog import QuerySpec
from hotpatch_audit.concurrency import run_concurrently
from hotpatch_audit.errors import ConfigError
from hotpatch_audit.sources import Scope

SUB = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(1, 6)]


class FakeClock:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


# --------------------------------------------------------------------------------------------------
# headers, backoff, batching, scopes


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:05", 5.0), ("00:01:00", 60.0), ("01:00:00", 3600.0), ("1.00:00:01", 86401.0),
    ("00:00:04.250", 4.25), (" 00:00:03 ", 3.0), (None, None), ("", None), ("5", None), ("soon", None),
])
def test_parse_timespan(text: str | None, seconds: float | None) -> None:
    assert parse_timespan(text) == seconds


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"x-ms-retry-after-ms": "1200"}) == 1.2
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now_wall=now.timestamp()) == pytest.approx(12.0)
    assert parse_retry_after({"Retry-After": "tomorrow-ish"}) is None
    assert parse_retry_after({}) is None


def test_quota_info_from_headers_is_case_insensitive() -> None:
    q = QuotaInfo.from_headers({"X-MS-User-Quota-Remaining": "13", "x-ms-user-quota-resets-after": "00:00:05",
                                "x-ms-tenant-subscription-limit-hit": "True"})
    assert q == QuotaInfo(13, 5.0, True)
    assert QuotaInfo.from_headers(None) == QuotaInfo(None, None, False)
    assert QuotaInfo.from_headers({"x-ms-user-quota-remaining": "lots"}).remaining is None


def test_backoff_grows_is_jittered_and_capped() -> None:
    lows = [backoff_delay(n, base=0.5, cap=8.0, rng=lambda: 0.0) for n in range(1, 8)]
    highs = [backoff_delay(n, base=0.5, cap=8.0, rng=lambda: 1.0) for n in range(1, 8)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert lows == [h / 2 for h in highs]


def test_batched_keeps_order_and_size() -> None:
    assert batched(SUB, 2) == [SUB[0:2], SUB[2:4], SUB[4:5]]
    assert batched(SUB, 100) == [SUB]
    assert sum(batched([str(i) for i in range(250)], 100), []) == [str(i) for i in range(250)]
    with pytest.raises(ConfigError):
        batched(SUB, 0)


def test_requests_per_scope_kind() -> None:
    subs = TenantTarget(None, Scope("subscriptions", tuple(SUB)))
    assert subs.requests(2) == [(SUB[0:2], None), (SUB[2:4], None), (SUB[4:5], None)]
    mgs = TenantTarget(None, Scope("management_groups", ("mg-a", "mg-b")))
    assert mgs.requests(1) == [(None, ["mg-a", "mg-b"])]
    assert TenantTarget(None, Scope("tenant")).requests(100) == [(None, None)]


@pytest.mark.parametrize("scope", [
    Scope("subscriptions", ("not-a-guid",)), Scope("subscriptions", ()),
    Scope("management_groups", ("bad name; drop",)), Scope("tenant", ("x",)), Scope("demo", ()),
])
def test_values_are_rechecked_before_requests(scope: Scope) -> None:
    with pytest.raises(ConfigError):
        targets_for(scope)[0].requests(100)


def test_tenants_scope_round_trips_through_key() -> None:
    scope = tenants_scope({
        "contoso.onmicrosoft.com": Scope("tenant"),
        "11111111-2222-4333-8444-555555555555": Scope("subscriptions", tuple(SUB[:2])),
        "fabrikam.com": Scope("management_groups", ("mg-a",)),
    })
    again = Scope.parse(scope.key())
    assert again == scope
    assert targets_for(again) == [
        TenantTarget("11111111-2222-4333-8444-555555555555", Scope("subscriptions", tuple(SUB[:2]))),
        TenantTarget("contoso.onmicrosoft.com", Scope("tenant")),
        TenantTarget("fabrikam.com", Scope("management_groups", ("mg-a",))),
    ]
    with pytest.raises(ConfigError):
        tenants_scope({"not a tenant": Scope("tenant")})


def test_endpoint_and_options_validation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert check_endpoint("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    for bad in ("http://127.0.0.1:8443", "https://user:pw@host", "https://host/?x=1", "ftp://host"):
        with pytest.raises(ConfigError):
            check_endpoint(bad)
    assert ArgOptions().base_url == "https://management.azure.com"
    assert ArgOptions(cloud="china").scope == "https://management.chinacloudapi.cn/.default"
    usgov = ArgOptions(cloud="usgov", endpoint="https://proxy.example:9443/")
    assert (usgov.base_url, usgov.scope) == ("https://proxy.example:9443",
                                             "https://management.usgovcloudapi.net/.default")
    with pytest.raises(ConfigError):
        ArgOptions(cloud="mars")
    with pytest.raises(ConfigError):
        ArgOptions(batch_size=101)
    with pytest.raises(ConfigError):
        ArgOptions(ca_bundle=tmp_path / "missing.pem")


def test_static_token_never_shows() -> None:
    cred = StaticTokenCredential("s3cr3t-token\n")  # as `$(cat token.txt)` or a secret file gives it
    assert "s3cr3t" not in repr(cred) and "s3cr3t" not in str(cred)
    assert "s3cr3t" not in repr(ArgOptions(static_token="s3cr3t-token"))  # noqa: S106
    assert cred.get_token("https://management.azure.com/.default").token == "s3cr3t-token"  # noqa: S105
    assert redact("bad token s3cr3t-token here", ["s3cr3t-token"]) == "bad token *** here"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert "eyJ" not in redact("token eyJhbGciOi.eyJzdWIiOi.sig")


def test_run_concurrently_keeps_spec_order_and_reraises() -> None:
    specs = [QuerySpec(f"q{i}", None, "", "") for i in range(6)]  # type: ignore[arg-type]
    active, peak = [0], [0]
    lock = threading.Lock()

    def work(spec: QuerySpec) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return spec.name.upper()

    assert list(run_concurrently(specs, work, max_workers=3).items()) == [(f"q{i}", f"Q{i}") for i in range(6)]
    assert peak[0] == 3

    def boom(spec: QuerySpec) -> str:
        if spec.name == "q2":
            raise RuntimeError("q2 broke")
        return spec.name

    with pytest.raises(RuntimeError, match="q2 broke"):
        run_concurrently(specs, boom, max_workers=3)


# --------------------------------------------------------------------------------------------------
# the pacer on a fake clock, against a model of Resource Graph's fixed quota window


@dataclass
class WindowServer:
    """Resource Graph's per-identity quota as documented: `limit` requests per window, which starts at the
    first request after the previous one ended; headers report what is left and when it resets."""

    limit: int = 15
    window: float = 5.0
    rounding: str = "ceil"  # how resets-after is cut to whole seconds ("exact" keeps fractions)
    start: float | None = None
    used: int = 0
    throttled: int = 0
    served: int = 0

    def handle(self, t: float) -> tuple[int, QuotaInfo]:
        if self.start is None or t >= self.start + self.window:
            self.start, self.used = t, 0
        left = self.start + self.window - t
        text = {"ceil": math.ceil(left - 1e-9), "floor": math.floor(left), "exact": left}[self.rounding]
        if self.used >= self.limit:
            self.throttled += 1
            return 429, QuotaInfo(0, float(text))
        self.used += 1
        self.served += 1
        return 200, QuotaInfo(self.limit - self.used, float(text))


def drive(server: WindowServer, requests: int, latency: float = 0.2, workers: int = 1) -> tuple[FakeClock, QuotaPacer]:
    """Run `requests` successful requests through one pacer from `workers` interleaved clients on a fake clock."""
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep)
    due: list[tuple[float, int, int, QuotaInfo]] = []  # responses: (time, ticket, status, quota)
    idle = workers
    done = 0
    while done < requests:
        wait = 0.0
        while idle:  # idle workers take slots until the pacer says wait
            ticket, wait = pacer.reserve()
            if ticket is None:
                break
            idle -= 1
            status, quota = server.handle(clock.now + latency / 2)  # counted when it reaches the server
            due.append((clock.now + latency, ticket, status, quota))
        due.sort(key=lambda d: d[0])
        if idle and (not due or clock.now + wait < due[0][0]):
            clock.now += wait  # nothing arrives before the pacer's wait is over
            continue
        when, ticket, status, quota = due.pop(0)
        clock.now = max(clock.now, when)
        if status == 429:
            pacer.throttled(ticket, quota.resets_after or 1.0)
        else:
            pacer.observe(ticket, quota, clock.now)
            done += 1
        idle += 1
    return clock, pacer


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("rounding", ["ceil", "exact", "floor"])
def test_pacer_uses_the_quota_without_a_429(workers: int, rounding: str) -> None:
    server = WindowServer(limit=15, window=5.0, rounding=rounding)
    clock, pacer = drive(server, 300, latency=0.2, workers=workers)
    # A server that rounds resets-after down makes the pacer early once or twice, until its margin grows.
    assert server.throttled <= (0 if rounding != "floor" else 4)
    ceiling = 15 / 5.0
    assert server.served / clock.now >= 0.9 * ceiling, (server.served, clock.now)


def test_pacer_spreads_requests_over_the_window() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep)
    first, delay = pacer.reserve()
    assert first is not None and delay == 0
    assert pacer.reserve()[0] is None  # the window's first request goes alone until its headers arrive
    clock.now = 0.2
    pacer.observe(first, QuotaInfo(14, 5.0), clock.now)  # stamped mid-round-trip: the window ends at about 5.1
    ticket, delay = pacer.reserve()
    assert ticket is None and delay == pytest.approx(5.1 / 15 - 0.2)
    clock.now = 5.1 / 15
    assert pacer.reserve()[0] is not None


def test_pacer_waits_for_the_reset_when_remaining_is_zero() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep, margin=0.05)
    t = pacer.acquire()
    clock.now = 1.0
    pacer.observe(t, QuotaInfo(0, 3.0), clock.now)  # someone else used the rest; resets 3 s after ~0.5
    ticket, delay = pacer.reserve()
    assert ticket is None and delay == pytest.approx(2.55)
    t2 = pacer.acquire()
    assert clock.now == pytest.approx(3.55) and t2 > t


def test_pacer_counts_requests_in_flight_against_remaining() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep, spread=False)
    t1 = pacer.acquire()
    pacer.observe(t1, QuotaInfo(3, 5.0), 0.0)
    granted = [pacer.reserve()[0] for _ in range(5)]
    assert [g is not None for g in granted] == [True, True, True, False, False]
    pacer.observe(granted[0], QuotaInfo(2, 5.0), 0.1)  # two more are still out: nothing is left
    assert pacer.reserve()[0] is None


def test_pacer_without_quota_headers_goes_unpaced() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep)
    t = pacer.acquire()
    pacer.observe(t, QuotaInfo(None, None), 0.0)
    assert all(pacer.reserve()[0] is not None for _ in range(100))


def test_pacer_after_429_holds_everyone_and_grows_its_margin() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock=clock, sleep=clock.sleep, margin=0.05)
    t = pacer.acquire()
    pacer.throttled(t, 2.0)
    ticket, delay = pacer.reserve()
    assert ticket is None and delay == pytest.approx(2.0)
    assert pacer.margin > 0.05 and pacer.stats.throttled == 1
    clock.now = 2.0
    assert pacer.reserve()[0] is not None
    assert pacer.reserve()[0] is None  # first request after the wait goes alone


def test_pacer_with_a_tiny_quota_never_429s() -> None:
    server = WindowServer(limit=2, window=1.0, rounding="exact")
    clock, _ = drive(server, 40, latency=0.05, workers=3)
    assert server.throttled == 0 and server.served / clock.now >= 0.85 * 2


# --------------------------------------------------------------------------------------------------
# Over HTTPS against the local emulator, with the real azure-mgmt-resourcegraph client



QUERY_NAMES = ["azure_vms", "arc_machines", "installed_patches"]


@pytest.fixture(scope="module")
def specs() -> dict[str, QuerySpec]:
    from hotpatch_audit.catalog import load_queries
    from tests.conftest import ROOT

    return {s.name: s for s in load_queries(ROOT)}


@pytest.fixture(scope="module")
def expected(rg_fleet_db, specs):  # type: ignore[no-untyped-def]
    """Every query's rows straight from the fleet tables (duckdb-kql, no HTTP): the reference."""
    import json as _json

    import duckdb_kql
    from duckdb_kql.engine import schema

    from hotpatch_audit.duck import connect
    from tests.emulator_fixture import FLEET_AS_OF

    con = connect(rg_fleet_db, read_only=True)
    try:
        out = {}
        for name, spec in specs.items():
            sql = str(duckdb_kql.to_sql(spec.text, schema=schema(con), query_now=FLEET_AS_OF))
            rows = con.execute(f"SELECT to_json(q)::VARCHAR FROM ({sql}) q").fetchall()  # noqa: S608
            out[name] = [_json.loads(r[0]) for r in rows]
        return out
    finally:
        con.close()


def source_for(emu, scope: Scope | None = None, **options):  # type: ignore[no-untyped-def]
    """An ArgSource pointed at an emulator with its CA bundle and static token; fast backoff for tests."""
    from hotpatch_audit.arg import ArgSource

    options.setdefault("backoff_base", 0.02)
    options.setdefault("backoff_cap", 0.2)
    opts = ArgOptions(endpoint=emu.url, ca_bundle=emu.ca_bundle, static_token=options.pop("token", emu.token),
                      **options)
    return ArgSource(scope or Scope("tenant"), options=opts)


def rows_of(source, spec):  # type: ignore[no-untyped-def]
    import json as _json

    pages = list(source.pages(spec))
    assert pages[-1].total_records == sum(p.count for p in pages)
    return [r for p in pages for r in _json.loads(p.body)["data"]], pages


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_multi_page_result_equals_the_table_row_for_row(rg_emulator, specs, expected, name) -> None:  # type: ignore[no-untyped-def]
    size = 100 if len(expected[name]) < 1500 else 1000
    with source_for(rg_emulator, page_size=size) as src:
        rows, pages = rows_of(src, specs[name])
    assert len(pages) == max(1, math.ceil(len(expected[name]) / size)) and len(pages) > 1
    assert rows == expected[name]
    assert rg_emulator.stats.throttled == 0 and src.stats.retries == 0


def test_pacing_makes_no_429_in_steady_state(rg_emulator, specs, expected) -> None:  # type: ignore[no-untyped-def]
    names = QUERY_NAMES
    # pages small enough for more than four quota windows' worth of requests (15 per window)
    with source_for(rg_emulator, page_size=8, max_workers=4) as src:
        got = run_concurrently([specs[n] for n in names], lambda s: rows_of(src, s)[0], max_workers=4)
    requests = rg_emulator.stats.requests
    assert requests >= 60, requests
    assert rg_emulator.stats.throttled == 0
    assert all(got[n] == expected[n] for n in names)


@pytest.mark.parametrize("retry_after", [True, False])
def test_a_429_storm_recovers_without_losing_or_duplicating_a_row(rg_emulator_factory, specs, expected,
                                                                 retry_after) -> None:  # type: ignore[no-untyped-def]
    from tests.emulator_fixture import make_client

    emu = rg_emulator_factory(quota_per_window=3, window_seconds=1.0, retry_after=retry_after)
    stop = threading.Event()

    def hog() -> None:  # another client of the same identity eats the quota
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resourcegraph.models import QueryRequest

        client = make_client(emu)
        deadline = time.monotonic() + 2.0  # a two-second storm
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                client.resources(query=QueryRequest(query="Resources | project id | order by id asc"))
            except HttpResponseError:
                time.sleep(0.05)

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    emu.faults.add("throttle", count=3, match="microsoft.compute/virtualmachines", resets_after=0.3)
    try:
        with source_for(emu, page_size=20) as src:
            rows, _ = rows_of(src, specs["azure_vms"])
    finally:
        stop.set()
        thread.join()
    assert rows == expected["azure_vms"]
    assert src.stats.throttled >= 3


@pytest.mark.parametrize("fault", [
    {"kind": "503", "count": 3}, {"kind": "500", "count": 2}, {"kind": "502", "count": 1, "page": 2},
    {"kind": "drop", "count": 2}, {"kind": "malformed", "count": 1, "variant": "json"},
    {"kind": "malformed", "count": 1, "variant": "shape", "page": 2},
    {"kind": "malformed", "count": 1, "variant": "empty"}, {"kind": "malformed", "count": 2, "variant": "total"},
    {"kind": "malformed", "count": 1, "variant": "bytes", "page": 2}, {"kind": "slow", "count": 1, "delay": 0.3},
    {"kind": "504", "count": 2, "retry_after": 0},
])
def test_5xx_drops_and_malformed_bodies_recover_exactly(rg_emulator, specs, expected, fault) -> None:  # type: ignore[no-untyped-def]
    fault = dict(fault)
    rg_emulator.faults.add(fault.pop("kind"), fault.pop("count"), **fault)
    with source_for(rg_emulator, page_size=100) as src:
        rows, _ = rows_of(src, specs["azure_vms"])
    assert rows == expected["azure_vms"]
    assert rg_emulator.stats.faults_served >= 1 and len(rg_emulator.faults) == 0


def test_before_request_runs_before_every_attempt_once_the_pacer_lets_it_go(rg_emulator, specs, expected) -> None:  # type: ignore[no-untyped-def]
    rg_emulator.faults.add("503", 2)
    rg_emulator.faults.add("throttle", 1, resets_after=0.2)
    calls: list[tuple[int, int]] = []  # (requests the emulator had seen, pacer grants) at each call

    def hook() -> None:
        calls.append((len(rg_emulator.request_log()), src.pacer(None).stats.grants))

    with source_for(rg_emulator, page_size=100, before_request=hook) as src:
        rows, pages = rows_of(src, specs["azure_vms"])
    assert rows == expected["azure_vms"]
    sent = rg_emulator.request_log()
    assert len(sent) == len(pages) + 3 == src.stats.requests  # two 503s and a 429 were retried
    assert calls == [(n, n + 1) for n in range(len(sent))]  # before each request, after its pacer grant
    assert "before_request" not in repr(src.options) and "hook" not in repr(src.options)


def test_before_request_failing_sends_nothing_and_frees_the_pacer(rg_emulator, specs) -> None:  # type: ignore[no-untyped-def]
    def hook() -> None:
        raise TimeoutError("no slot of the shared rate limit")

    with source_for(rg_emulator, before_request=hook) as src, pytest.raises(TimeoutError, match="no slot"):
        rows_of(src, specs["azure_vms"])
    assert rg_emulator.request_log() == [] and src.stats.requests == 0
    ticket, _ = src.pacer(None).reserve()
    assert ticket is not None  # the slot it held was given back


def test_before_request_is_not_a_setting(settings) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.pipeline import RunContext, make_source

    assert ArgOptions.from_settings(settings).before_request is None
    ctx = RunContext(run_id="r1", source="arg", scope="tenant", as_of=datetime(2026, 11, 25, 3, tzinfo=UTC),
                     snapshot_dir=None, work_dir=settings.work_dir)

    def hook() -> None:
        pass

    source = make_source(settings, ctx, before_request=hook)
    assert source.options.before_request is hook  # type: ignore[attr-defined]


def test_a_truncated_result_is_reported_incomplete(rg_emulator, specs, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.arg import IncompleteResultError
    from hotpatch_audit.extract import extract_to_snapshot
    from tests.conftest import ROOT
    from tests.emulator_fixture import FLEET_AS_OF

    total = len(expected["azure_vms"])
    rg_emulator.faults.add("truncate", 1, page=2, rows=10)
    with source_for(rg_emulator, page_size=50) as src, pytest.raises(IncompleteResultError) as err:
        rows_of(src, specs["azure_vms"])
    assert f"received 60 of {total} rows" in str(err.value) and "resultTruncated" in str(err.value)
    # match: two queries run concurrently; the fault must hit azure_vms, whichever asks first
    rg_emulator.faults.add("truncate", 1, page=1, rows=5, match="microsoft.compute/virtualmachines")
    with source_for(rg_emulator, page_size=100) as src:
        snap = extract_to_snapshot(src, [specs["azure_vms"], specs["arc_machines"]], tmp_path / "snap",
                                   as_of=FLEET_AS_OF, project_root=ROOT)
    assert not snap.complete
    assert not snap.queries["azure_vms"].complete and f"received 5 of {total}" in str(snap.queries["azure_vms"].error)
    assert snap.queries["arc_machines"].complete


def test_a_disappearing_subscription_is_reported_incomplete(rg_emulator, specs, expected) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.arg import IncompleteResultError

    rg_emulator.faults.add("vanish_subscription", 1, match="patchinstallationresources")
    with source_for(rg_emulator, page_size=100) as src, pytest.raises(IncompleteResultError,
                                                                       match=r"received \d+ of \d+ rows"):
        rows_of(src, specs["installed_patches"])


def test_the_subscription_cap_is_reported(rg_emulator_factory, specs) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.arg import IncompleteResultError

    emu = rg_emulator_factory(max_scope_subscriptions=1)
    with source_for(emu, Scope("management_groups", ("mg-all",))) as src, \
            pytest.raises(IncompleteResultError, match="10,000-subscription limit"):
        rows_of(src, specs["azure_vms"])
    emu.faults.add("subscription_limit", 1)
    with source_for(emu) as src, pytest.raises(IncompleteResultError, match="x-ms-tenant-subscription-limit-hit"):
        rows_of(src, specs["arc_machines"])


def test_an_unrecoverable_failure_names_the_query_and_status(rg_emulator, specs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.errors import SourceError
    from hotpatch_audit.extract import extract_to_snapshot
    from tests.conftest import ROOT
    from tests.emulator_fixture import FLEET_AS_OF

    rg_emulator.faults.add("500", None, match="hybridcompute")
    with source_for(rg_emulator, max_attempts=3) as src:
        with pytest.raises(SourceError, match=r"arc_machines .*failed after 3 attempts.*HTTP 500") as err:
            rows_of(src, specs["arc_machines"])
        assert err.value.__cause__ is not None and rg_emulator.token not in str(err.value)
        snap = extract_to_snapshot(src, [specs["arc_machines"], specs["azure_vms"]], tmp_path / "snap",
                                   as_of=FLEET_AS_OF, project_root=ROOT)
    assert not snap.queries["arc_machines"].complete and "HTTP 500" in str(snap.queries["arc_machines"].error)
    assert snap.queries["azure_vms"].complete


def test_a_bad_token_gives_a_clear_auth_message(rg_emulator, specs) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.errors import SourceError

    bad = "wrong-token-value"  # noqa: S105
    with source_for(rg_emulator, token=bad) as src, pytest.raises(SourceError) as err:
        rows_of(src, specs["azure_vms"])
    text = str(err.value)
    assert "HTTP 401" in text and "static token" in text and "wrong-token-value" not in text


def test_default_credential_failure_names_the_chain(rg_emulator, specs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.arg import ArgSource
    from hotpatch_audit.errors import SourceError

    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                "AZURE_USERNAME", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no az / azd / pwsh to ask
    src = ArgSource(Scope("tenant"), options=ArgOptions(endpoint=rg_emulator.url, ca_bundle=rg_emulator.ca_bundle))
    with src, pytest.raises(SourceError) as err:
        rows_of(src, specs["azure_vms"])
    text = str(err.value)
    assert "DefaultAzureCredential" in text and "AzureCliCredential" in text and "az login" in text
    assert "Reader" in text


def test_subscriptions_are_batched_and_every_row_arrives_once(rg_emulator, rg_fleet_db, specs, expected) -> None:  # type: ignore[no-untyped-def]
    from tests.emulator_fixture import fleet_subscriptions

    subs = fleet_subscriptions(rg_fleet_db)
    assert len(subs) >= 3
    with source_for(rg_emulator, Scope("subscriptions", tuple(subs)), batch_size=2, page_size=100) as src:
        rows, pages = rows_of(src, specs["installed_patches"])
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in expected["installed_patches"])
    assert len({r["id"] for r in rows}) == len(rows)
    assert src.stats.requests >= math.ceil(len(subs) / 2) and rg_emulator.stats.throttled == 0
    with source_for(rg_emulator, Scope("management_groups", ("mg-first", "mg-rest"))) as src:
        mg_rows, _ = rows_of(src, specs["azure_vms"])
    assert sorted(r["id"] for r in mg_rows) == sorted(r["id"] for r in expected["azure_vms"])


def test_several_tenants_each_read_their_scope(rg_emulator, rg_fleet_db, specs, expected) -> None:  # type: ignore[no-untyped-def]
    from tests.emulator_fixture import fleet_subscriptions

    subs = fleet_subscriptions(rg_fleet_db)
    scope = tenants_scope({"contoso.onmicrosoft.com": Scope("subscriptions", tuple(subs[:1])),
                           "fabrikam.onmicrosoft.com": Scope("subscriptions", tuple(subs[1:]))})
    with source_for(rg_emulator, Scope.parse(scope.key())) as src:
        rows, _ = rows_of(src, specs["azure_vms"])
        assert set(src._pacers) == {"contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"}
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in expected["azure_vms"])
