"""The local Resource Graph emulator, exercised over real HTTPS with the real azure-mgmt-resourcegraph client."""
# ruff: noqa: S106  (fixed tokens for a local emulator)

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from tests.cli_process import LAUNCH
from tests.emulator_fixture import EMULATOR_TOKEN, fleet_subscriptions, make_client

RESOURCES_BY_ID = "resources | order by id asc"
IDS = "resources | project id, subscriptionId | order by id asc"
INSTALLS = "patchinstallationresources | project id, subscriptionId, properties | order by id asc"


def _sql(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _query(client: Any, query: str, *, hook: Any = None, **options: Any) -> Any:
    subs = options.pop("subscriptions", None)
    mgs = options.pop("management_groups", None)
    options.setdefault("result_format", "objectArray")
    req = QueryRequest(query=query, subscriptions=subs, management_groups=mgs, options=QueryRequestOptions(**options))
    return client.resources(query=req, raw_response_hook=hook) if hook else client.resources(query=req)


def _all_pages(client: Any, query: str, **options: Any) -> tuple[list[Any], list[Any]]:
    """(rows, responses) paging with $skipToken until none remains."""
    rows: list[Any] = []
    responses: list[Any] = []
    token = None
    while True:
        resp = _query(client, query, skip_token=token, **options)
        responses.append(resp)
        rows.extend(resp.data)
        token = resp.skip_token
        if not token:
            return rows, responses


class Headers:
    """raw_response_hook collecting response headers."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def __call__(self, response: Any) -> None:
        self.seen.append({k.lower(): v for k, v in response.http_response.headers.items()})


# -- results -----------------------------------------------------------------------------------


def test_multi_page_results_equal_duckdb_row_for_row(rg_emulator: Any, rg_fleet_db: Path) -> None:
    client = make_client(rg_emulator)
    rows, responses = _all_pages(client, RESOURCES_BY_ID, top=100)
    expected = [json.loads(r[0]) for r in _sql(rg_fleet_db, "SELECT to_json(r)::VARCHAR FROM resources r ORDER BY id")]
    assert len(expected) > 300
    assert [r["id"] for r in rows] == [e["id"] for e in expected]
    assert rows == expected
    assert len(responses) == -(-len(expected) // 100)
    assert all(r.total_records == len(expected) for r in responses)
    assert all(r.result_truncated == "false" for r in responses)
    assert [r.count for r in responses] == [len(r.data) for r in responses]
    assert responses[-1].skip_token is None and all(r.skip_token for r in responses[:-1])


def test_default_page_size_is_1000_and_top_is_capped(rg_emulator: Any, rg_fleet_db: Path) -> None:
    client = make_client(rg_emulator)
    expected = [r[0] for r in _sql(rg_fleet_db, "SELECT id FROM patchinstallationresources ORDER BY id")]
    assert len(expected) > 1000
    rows, responses = _all_pages(client, INSTALLS)
    assert [r["id"] for r in rows] == expected
    assert [r.count for r in responses] == [1000, len(expected) - 1000]
    first = _query(client, INSTALLS, top=5000)
    assert first.count == 1000 and first.skip_token


def test_table_result_format(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    objects = _query(client, IDS, top=50)
    table = _query(client, IDS, top=50, result_format="table")
    assert table.data["columns"] == [{"name": "id", "type": "string"}, {"name": "subscriptionId", "type": "string"}]
    assert table.data["rows"] == [[o["id"], o["subscriptionId"]] for o in objects.data]
    assert table.count == 50 and table.total_records == objects.total_records
    full = _query(client, "resources | project id, properties, n = 1, ok = true | order by id asc", top=1,
                  result_format="table")
    assert [c["type"] for c in full.data["columns"]] == ["string", "object", "integer", "boolean"]


def test_rest_default_format_is_table(rg_emulator: Any) -> None:
    body = {"query": "resources | project id | order by id asc", "options": {"$top": 100}}
    resp = requests.post(f"{rg_emulator.url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                         json=body, headers={"Authorization": f"Bearer {EMULATOR_TOKEN}"},
                         verify=str(rg_emulator.ca_bundle), timeout=10)
    assert resp.status_code == 200
    page = resp.json()
    assert set(page) == {"totalRecords", "count", "resultTruncated", "$skipToken", "facets", "data"}
    assert page["data"]["columns"] == [{"name": "id", "type": "string"}]


def test_skip_option(rg_emulator: Any, rg_fleet_db: Path) -> None:
    expected = [r[0] for r in _sql(rg_fleet_db, "SELECT id FROM resources ORDER BY id")]
    page = _query(make_client(rg_emulator), IDS, top=20, skip=10)
    assert [r["id"] for r in page.data] == expected[10:30]
    assert page.total_records == len(expected)


def test_take_stops_paging(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    big = _query(client, "resources | order by id asc | take 150", top=100, skip=5)
    assert (big.count, big.total_records, big.result_truncated, big.skip_token) == (100, 150, "true", None)
    small = _query(client, "resources | order by id asc | limit 40", top=100)
    assert (small.count, small.total_records, small.result_truncated, small.skip_token) == (40, 40, "false", None)
    # a `take` inside a string or comment does not count
    text = _query(client, "resources // | take 1\n| where name != '| take 2' | project id | order by id asc", top=10)
    assert text.skip_token and text.result_truncated == "false"


def test_subscription_scope(rg_emulator: Any, rg_fleet_db: Path) -> None:
    sub = fleet_subscriptions(rg_fleet_db)[1]
    expected = [r[0] for r in _sql(rg_fleet_db, "SELECT id FROM resources WHERE lower(subscriptionId) = ? ORDER BY id",
                                   [sub])]
    rows, _ = _all_pages(make_client(rg_emulator), IDS, top=50, subscriptions=[sub.upper()])
    assert [r["id"] for r in rows] == expected and expected
    # joins and unions see the same scope
    joined = _query(make_client(rg_emulator), "resourcecontainers | union resources | project subscriptionId",
                    subscriptions=[sub])
    assert {r["subscriptionId"].lower() for r in joined.data} == {sub}


def test_management_group_scope(rg_emulator: Any, rg_fleet_db: Path) -> None:
    subs = fleet_subscriptions(rg_fleet_db)
    client = make_client(rg_emulator)
    page = _query(client, "resources | summarize n = count() by s = tolower(subscriptionId)",
                  management_groups=["mg-rest"])
    assert {r["s"] for r in page.data} == set(subs[1:])
    with pytest.raises(HttpResponseError) as err:
        _query(client, IDS, management_groups=["mg-unknown"])
    assert err.value.status_code == 403
    with pytest.raises(HttpResponseError) as err:
        _query(client, IDS, management_groups=["mg-all"], subscriptions=subs[:1])
    assert err.value.status_code == 400


def test_tenant_subscription_cap(rg_emulator_factory: Any, rg_fleet_db: Path) -> None:
    emu = rg_emulator_factory(max_scope_subscriptions=2)
    headers = Headers()
    page = _query(make_client(emu), "resources | distinct s = tolower(subscriptionId)", hook=headers)
    assert {r["s"] for r in page.data} == set(fleet_subscriptions(rg_fleet_db)[:2])
    assert headers.seen[-1]["x-ms-tenant-subscription-limit-hit"] == "true"


def test_bad_query_and_bad_skip_token(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    with pytest.raises(HttpResponseError) as err:
        _query(client, "resources | wher x")
    assert err.value.status_code == 400
    assert "InvalidQuery" in json.dumps(err.value.response.json())
    first = _query(client, IDS, top=10)
    with pytest.raises(HttpResponseError) as err:
        _query(client, "resources | project id | order by id asc", top=10, skip_token=first.skip_token)
    assert err.value.status_code == 400
    with pytest.raises(HttpResponseError):
        _query(client, IDS, top=10, skip_token="not-a-token")


def test_skip_token_survives_cache_loss(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    first = _query(client, IDS, top=100)
    second = _query(client, IDS, top=100, skip_token=first.skip_token)
    assert rg_emulator.engine is not None
    rg_emulator.engine.clear_cache()
    again = _query(client, IDS, top=100, skip_token=first.skip_token)
    assert again.data == second.data
    assert rg_emulator.stats.total.queries_executed == 2


def test_concurrent_clients_page_independently(rg_emulator_factory: Any, rg_fleet_db: Path) -> None:
    emu = rg_emulator_factory(quota_enabled=False)
    expected = [r[0] for r in _sql(rg_fleet_db, "SELECT id FROM patchinstallationresources ORDER BY id")]
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            rows, _ = _all_pages(make_client(emu), INSTALLS, top=250)
            results.append([r["id"] for r in rows])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == [expected] * 4


# -- authentication ------------------------------------------------------------------------------


def test_401_without_or_with_wrong_token(rg_emulator: Any) -> None:
    url = f"{rg_emulator.url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
    resp = requests.post(url, json={"query": IDS}, verify=str(rg_emulator.ca_bundle), timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    assert "Bearer" in resp.headers["WWW-Authenticate"]
    with pytest.raises(ClientAuthenticationError) as err:
        _query(make_client(rg_emulator, token="wrong-token"), IDS)
    assert err.value.status_code == 401
    assert err.value.response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert rg_emulator.stats.unauthorized == 2 and rg_emulator.stats.requests == 0


def test_any_token_gives_separate_identities(rg_emulator_factory: Any) -> None:
    from hotpatch_audit.demo.emulator import identity_of

    emu = rg_emulator_factory(accept_any_token=True, quota_per_window=3, window_seconds=30)
    a, b = make_client(emu, token="identity-a"), make_client(emu, token="identity-b")
    for _ in range(3):
        _query(a, IDS, top=1)
    with pytest.raises(HttpResponseError) as err:
        _query(a, IDS, top=1)
    assert err.value.status_code == 429
    assert _query(b, IDS, top=1).count == 1
    assert emu.stats.identity(identity_of("identity-a")).throttled == 1
    assert emu.stats.identity(identity_of("identity-b")).rows == 1


def test_tokens_are_never_logged(rg_emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _query(make_client(rg_emulator), IDS, top=5)
    with pytest.raises(ClientAuthenticationError):
        _query(make_client(rg_emulator, token="a-secret-wrong-token"), IDS)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert EMULATOR_TOKEN not in text and "a-secret-wrong-token" not in text
    assert EMULATOR_TOKEN not in json.dumps(rg_emulator.stats.snapshot())


# -- quota -----------------------------------------------------------------------------------------


def test_quota_headers_present_and_decreasing(rg_emulator_factory: Any) -> None:
    emu = rg_emulator_factory(window_seconds=10)
    headers = Headers()
    client = make_client(emu)
    for _ in range(5):
        _query(client, IDS, top=1, hook=headers)
    assert [int(h["x-ms-user-quota-remaining"]) for h in headers.seen] == [14, 13, 12, 11, 10]
    for h in headers.seen:
        assert re.fullmatch(r"\d\d:\d\d:\d\d", h["x-ms-user-quota-resets-after"])
        assert 1 <= int(h["x-ms-user-quota-resets-after"][-2:]) <= 10


@pytest.mark.parametrize("retry_after", [True, False])
def test_429_after_15_requests_then_recovers(rg_emulator_factory: Any, retry_after: bool) -> None:
    emu = rg_emulator_factory(window_seconds=1.5, retry_after=retry_after)
    client = make_client(emu)
    for _ in range(15):
        _query(client, IDS, top=1)
    with pytest.raises(HttpResponseError) as err:
        _query(client, IDS, top=1)
    resp = err.value.response
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "RateLimiting"
    assert resp.headers["x-ms-user-quota-remaining"] == "0"
    wait = resp.headers["x-ms-user-quota-resets-after"]
    assert re.fullmatch(r"00:00:0[12]", wait)
    assert ("Retry-After" in resp.headers) is retry_after
    if retry_after:
        assert resp.headers["Retry-After"] in ("1", "2")
    time.sleep(int(wait[-2:]))
    assert _query(client, IDS, top=1).count == 1
    assert emu.stats.throttled == 1 and emu.stats.total.ok == 16


def test_quota_disabled_sends_no_quota_headers(rg_emulator_factory: Any) -> None:
    emu = rg_emulator_factory(quota_enabled=False)
    headers = Headers()
    client = make_client(emu)
    for _ in range(20):
        _query(client, IDS, top=1, hook=headers)
    assert "x-ms-user-quota-remaining" not in headers.seen[-1]
    assert emu.stats.throttled == 0


def test_latency(rg_emulator_factory: Any) -> None:
    emu = rg_emulator_factory(latency_ms=150, latency_jitter_ms=0)
    client = make_client(emu)
    _query(client, IDS, top=1)  # warm the connection
    start = time.perf_counter()
    _query(client, IDS, top=1)
    assert time.perf_counter() - start >= 0.15


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,status,code", [("500", 500, "InternalServerError"), ("502", 502, "BadGateway"),
                                              ("503", 503, "ServiceUnavailable")])
def test_5xx_burst(rg_emulator: Any, kind: str, status: int, code: str) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add(kind, count=2)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            _query(client, IDS, top=1)
        assert err.value.status_code == status
        assert err.value.response.json()["error"]["code"] == code
        assert "x-ms-user-quota-remaining" in err.value.response.headers
    assert _query(client, IDS, top=1).count == 1
    assert rg_emulator.stats.total.faults == {"status": 2}


def test_fault_matches_query_and_page(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add("503", count=1, match="PATCHINSTALLATIONRESOURCES", page=2)
    assert _query(client, IDS, top=10).count == 10           # other query: untouched
    first = _query(client, INSTALLS, top=10)                   # page 1: untouched
    with pytest.raises(HttpResponseError) as err:
        _query(client, INSTALLS, top=10, skip_token=first.skip_token)
    assert err.value.status_code == 503
    retry = _query(client, INSTALLS, top=10, skip_token=first.skip_token)  # same token works afterwards
    assert retry.count == 10 and not rg_emulator.faults.pending


def test_throttle_fault(rg_emulator: Any) -> None:
    rg_emulator.faults.add("throttle", count=1, resets_after=2)
    with pytest.raises(HttpResponseError) as err:
        _query(make_client(rg_emulator), IDS, top=1)
    assert err.value.status_code == 429
    assert err.value.response.headers["x-ms-user-quota-resets-after"] == "00:00:02"
    assert err.value.response.headers["Retry-After"] == "2"


def test_slow_response(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add("slow", delay=0.6)
    start = time.perf_counter()
    assert _query(client, IDS, top=1).count == 1
    assert time.perf_counter() - start >= 0.6
    rg_emulator.faults.add("slow", delay=2)
    with pytest.raises(ServiceResponseError):
        client.resources(query=QueryRequest(query=IDS, options=QueryRequestOptions(top=1)), read_timeout=0.5)


def test_dropped_connection(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    _query(client, IDS, top=1)
    rg_emulator.faults.add("drop", count=2)
    for _ in range(2):
        with pytest.raises((ServiceRequestError, ServiceResponseError)):
            _query(client, IDS, top=1)
    assert _query(client, IDS, top=1).count == 1
    assert rg_emulator.stats.total.faults == {"drop": 2}


def test_truncated_result(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add("truncate", rows=30)
    page = _query(client, IDS, top=100)
    assert (page.count, len(page.data), page.result_truncated, page.skip_token) == (30, 30, "true", None)
    assert page.total_records > 300


def test_malformed_bodies(rg_emulator: Any) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add("malformed", variant="json")
    with pytest.raises(DecodeError):
        _query(client, IDS, top=10)
    rg_emulator.faults.add("malformed", variant="shape")
    odd = _query(client, IDS, top=10)
    assert odd.total_records is None and odd.count is None and not isinstance(odd.data, list)
    rg_emulator.faults.add("malformed", variant="empty")
    assert _query(client, IDS, top=10) is None  # an empty 200 body deserializes to nothing at all
    assert rg_emulator.stats.total.faults == {"malformed": 3}


def test_subscription_vanishes_between_pages(rg_emulator: Any, rg_fleet_db: Path) -> None:
    client = make_client(rg_emulator)
    victim = fleet_subscriptions(rg_fleet_db)[-1]  # ids sort by subscription: its rows come last
    rg_emulator.faults.add("vanish_subscription", subscription=victim.upper())
    rows, responses = _all_pages(client, IDS, top=100)
    total = responses[0].total_records
    assert all(r.total_records == total for r in responses)       # the announced total never changes
    assert len(rows) < total                                       # ... but fewer rows arrive
    later = [r for resp in responses[1:] for r in resp.data]
    assert victim not in {r["subscriptionId"].lower() for r in later}
    expected_lost = _sql(rg_fleet_db, "SELECT count(*) FROM resources WHERE lower(subscriptionId) = ?", [victim])[0][0]
    lost_first_page = sum(1 for r in responses[0].data if r["subscriptionId"].lower() == victim)
    assert total - len(rows) == expected_lost - lost_first_page > 0
    assert rg_emulator.stats.total.faults == {"vanish_subscription": 1}


@pytest.mark.parametrize("variant", ["code", "details", "message"])
def test_expire_skip_token_fault(rg_emulator: Any, variant: str) -> None:
    client = make_client(rg_emulator)
    rg_emulator.faults.add("expire_skip_token", count=1, match="patchinstallationresources", variant=variant)
    first = _query(client, INSTALLS, top=10)                   # a first page carries no token: untouched
    assert _query(client, IDS, top=10).count == 10             # another query: untouched
    with pytest.raises(HttpResponseError) as err:
        _query(client, INSTALLS, top=10, skip_token=first.skip_token)
    assert err.value.status_code == 400
    error = err.value.response.json()["error"]
    codes = [error["code"], *(d["code"] for d in error.get("details", []))]
    assert ("InvalidSkipToken" in codes) is (variant != "message")
    assert "expired" in json.dumps(error)
    assert _query(client, INSTALLS, top=10, skip_token=first.skip_token).count == 10  # only as often as armed
    assert rg_emulator.stats.total.faults == {"expire_skip_token": 1} and rg_emulator.stats.total.errors == 1
    with pytest.raises(ValueError, match="variant"):
        rg_emulator.faults.add("expire_skip_token", variant="json")


@pytest.mark.parametrize("id_case", ["same", "upper"])
def test_duplicate_fault_repeats_the_last_rows_of_the_page_before(rg_emulator: Any, rg_fleet_db: Path,
                                                                   id_case: str) -> None:
    expected = [r[0] for r in _sql(rg_fleet_db, "SELECT id FROM resources ORDER BY id")]
    rg_emulator.faults.add("duplicate", rows=3, page=2, id_case=id_case)
    rows, responses = _all_pages(make_client(rg_emulator), IDS, top=100)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(expected) + 3 and all(r.total_records == len(expected) for r in responses)
    again = ids[100:103]
    assert again == [i.upper() if id_case == "upper" else i for i in expected[97:100]]
    assert ids[:100] + ids[103:] == expected                  # the rest arrives once, in order, shifted
    with pytest.raises(ValueError):
        rg_emulator.faults.add("duplicate", rows=0)


def test_more_malformed_bodies(rg_emulator: Any) -> None:
    """Bodies the SDK fails on with plain Python errors, not azure-core ones (the arg source must catch them)."""
    client = make_client(rg_emulator)
    rg_emulator.faults.add("malformed", variant="total")
    with pytest.raises(OverflowError):                        # totalRecords 1e400
        _query(client, IDS, top=10)
    rg_emulator.faults.add("malformed", variant="bytes")
    with pytest.raises(UnicodeDecodeError):                   # not UTF-8
        _query(client, IDS, top=10)
    assert rg_emulator.stats.total.faults == {"malformed": 2}


def test_subscription_limit_header_fault(rg_emulator: Any) -> None:
    rg_emulator.faults.add("subscription_limit")
    headers = Headers()
    client = make_client(rg_emulator)
    _query(client, IDS, top=1, hook=headers)
    _query(client, IDS, top=1, hook=headers)
    assert headers.seen[0]["x-ms-tenant-subscription-limit-hit"] == "true"
    assert "x-ms-tenant-subscription-limit-hit" not in headers.seen[1]


def test_control_endpoint(rg_emulator: Any) -> None:
    auth = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    verify = str(rg_emulator.ca_bundle)
    resp = requests.post(f"{rg_emulator.url}/_emulator/faults", json={"kind": "502", "count": 1}, headers=auth,
                         verify=verify, timeout=10)
    assert resp.status_code == 201 and resp.json()["status"] == 502
    assert requests.post(f"{rg_emulator.url}/_emulator/faults", json={"kind": "nope"}, headers=auth, verify=verify,
                         timeout=10).status_code == 400
    assert requests.get(f"{rg_emulator.url}/_emulator/faults", verify=verify, timeout=10).status_code == 401
    with pytest.raises(HttpResponseError) as err:
        _query(make_client(rg_emulator), IDS, top=1)
    assert err.value.status_code == 502
    stats = requests.get(f"{rg_emulator.url}/_emulator/stats", headers=auth, verify=verify, timeout=10).json()
    assert stats["total"]["faults"] == {"status": 1}
    assert requests.post(f"{rg_emulator.url}/_emulator/reset", headers=auth, verify=verify, timeout=10).ok
    assert rg_emulator.stats.requests == 0


def test_request_log_lists_every_query_request_with_time_identity_and_status(rg_emulator_factory: Any) -> None:
    emu = rg_emulator_factory(quota_per_window=2, window_seconds=30)
    auth = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    verify = str(emu.ca_bundle)
    client = make_client(emu)
    assert emu.request_log() == []
    before = time.time()
    _query(client, IDS, top=1)
    with pytest.raises(ClientAuthenticationError):
        _query(make_client(emu, token="wrong-token"), IDS)
    emu.faults.add("503")
    with pytest.raises(HttpResponseError):
        _query(client, IDS, top=1)
    with pytest.raises(HttpResponseError):  # the quota of 2 is used up
        _query(client, IDS, top=1)
    assert requests.get(f"{emu.url}/_emulator/stats", headers=auth, verify=verify, timeout=10).ok  # not logged
    log = emu.request_log()
    assert [(who, status) for _, who, status in log] == [
        (emu.identity, 200), ("", 401), (emu.identity, 503), (emu.identity, 429)]
    assert all(before <= t <= time.time() for t, _, _ in log)
    log.clear()
    assert len(emu.request_log()) == 4  # a copy

    served = requests.get(f"{emu.url}/_emulator/requests", headers=auth, verify=verify, timeout=10)
    assert served.json() == [{"time": t, "identity": who, "status": status} for t, who, status in emu.request_log()]
    assert requests.get(f"{emu.url}/_emulator/requests", verify=verify, timeout=10).status_code == 401
    assert requests.delete(f"{emu.url}/_emulator/requests", headers=auth, verify=verify, timeout=10).ok
    assert emu.request_log() == [] and emu.stats.requests == 3  # the stats stay

    def one_request() -> None:
        with pytest.raises(HttpResponseError):
            _query(make_client(emu), IDS, top=1)

    threads = [threading.Thread(target=one_request) for _ in range(8)]  # all throttled, logged from 8 threads
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for _, _, status in emu.request_log()] == [429] * 8
    emu.reset()
    assert emu.request_log() == []


def test_stats_count_pages_and_rows(rg_emulator: Any) -> None:
    rows, responses = _all_pages(make_client(rg_emulator), IDS, top=100)
    mine = rg_emulator.stats.identity(rg_emulator.identity)
    assert (mine.requests, mine.pages, mine.rows, mine.queries_executed) == (len(responses), len(responses),
                                                                              len(rows), 1)


# -- TLS ---------------------------------------------------------------------------------------------


def test_tls_material_is_reused_and_covers_localhost(tmp_path: Path) -> None:
    from cryptography import x509

    from hotpatch_audit.tlsutil import ensure_server_cert

    first = ensure_server_cert(tmp_path)
    stamp = first.cert.read_bytes()
    assert ensure_server_cert(tmp_path).cert.read_bytes() == stamp
    cert = x509.load_pem_x509_certificates(stamp)[0]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert ensure_server_cert(tmp_path, ["myhost.test"]).cert.read_bytes() != stamp


def test_own_certificate_and_unverifiable_tls(rg_emulator_factory: Any, tmp_path: Path) -> None:
    from hotpatch_audit.tlsutil import write_server_cert

    other = write_server_cert(tmp_path / "other", ["rg.example.test"])  # not valid for 127.0.0.1
    emu = rg_emulator_factory(tls=other)
    assert emu.ca_bundle == other.ca_bundle
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        _query(make_client(emu), IDS, top=1)                 # trusted CA, wrong name
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        _query(make_client(emu, connection_verify=True), IDS, top=1)  # the system CAs: unknown CA
    assert emu.stats.requests == 0 and emu.stats.unauthorized == 0


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_emulator_command_prints_url_ca_and_token_and_stops_cleanly(rg_fleet_db: Path, tmp_path: Path,
                                                                     stop: str) -> None:
    import signal
    import subprocess
    import sys

    # The child takes Ctrl-C as a terminal does (cli_process); SIGTERM is what kill, systemd and docker stop send.
    tls = tmp_path / "tls"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "emulator", "--db", str(rg_fleet_db), "--port", "0",
                             "--token", "cli-token", "--cert-dir", str(tls)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(4)]
        url = re.search(r"https://127\.0\.0\.1:\d+", lines[0])
        assert url, lines
        assert str(tls / "ca.pem") in lines[2] and "cli-token" in lines[3]
        resp = requests.post(f"{url.group(0)}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                             json={"query": IDS, "options": {"$top": 3, "resultFormat": "objectArray"}},
                             headers={"Authorization": "Bearer cli-token"}, verify=str(tls / "ca.pem"), timeout=10)
        assert resp.status_code == 200 and resp.json()["count"] == 3
        assert resp.headers["x-ms-user-quota-remaining"] == "14"
    finally:
        proc.send_signal(getattr(signal, stop))
        rc = proc.wait(timeout=10)
    rest = proc.stderr.read()
    assert rc == 0, rest  # a stop asked for is not a failure: no "interrupted" line, no exit 3
    assert "interrupted" not in rest and "Traceback" not in rest
