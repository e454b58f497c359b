"""The arg source against Resource Graph as it is: expired skip tokens, rows that move while a query is paged,
certificates the client cannot verify, tokens pasted with a newline, bodies that are not what they claim. All
over HTTPS against the local emulator with the real azure-mgmt-resourcegraph client."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hotpatch_audit.arg import ArgOptions, ArgSource, IncompleteResultError, StaticTokenCredential
from hotpatch_audit.errors import ConfigError, HotpatchAuditError, SkipTokenExpiredError, SourceError
from hotpatch_audit.sources import Scope
from tests import test_arg
from tests.test_arg import rows_of, source_for

specs = test_arg.specs  # the module fixtures of test_arg: every query, and its rows straight from the fleet tables
expected = test_arg.expected

VMS = "microsoft.compute/virtualmachines"  # a substring of the azure_vms query only


def _one_line(text: str) -> bool:
    return "\n" not in text and "\r" not in text and "Traceback" not in text


def _page_ids(pages: list[Any]) -> list[str]:
    return [r["id"] for p in pages for r in json.loads(p.body)["data"]]


# --------------------------------------------------------------------------------------------------
# 1. an expired skip token


@pytest.mark.parametrize("variant", ["code", "details", "message"])
def test_an_expired_skip_token_fails_at_once_and_a_new_call_reads_it_all(rg_emulator, specs, expected,  # type: ignore[no-untyped-def]
                                                                        variant) -> None:
    spec, total = specs["azure_vms"], len(expected["azure_vms"])
    assert total > 60
    rg_emulator.faults.add("expire_skip_token", 1, match=VMS, page=3, variant=variant)
    got: list[Any] = []
    with source_for(rg_emulator, page_size=20) as src:
        with pytest.raises(SkipTokenExpiredError) as err:
            got.extend(src.pages(spec))
        text = str(err.value)
        assert isinstance(err.value, SourceError) and _one_line(text)
        assert "azure_vms" in text and "page 3" in text and f"after 40 of {total} rows" in text
        assert "first page" in text and ("InvalidSkipToken" in text) is (variant != "message")
        assert len(got) == 2
        # the same token was not tried again: one request per page, no retry, no backoff
        assert (src.stats.requests, src.stats.retries, src.stats.skip_tokens_expired) == (3, 0, 1)
        assert rg_emulator.stats.requests == 3 and rg_emulator.stats.total.faults == {"expire_skip_token": 1}
        # a second call starts afresh from the first page and reads every row once
        rows, pages = rows_of(src, spec)
    assert rows == expected["azure_vms"] and len({r["id"].lower() for r in rows}) == total
    assert pages[-1].total_records == total and src.stats.retries == 0


def test_a_skip_token_refused_in_a_later_batch_restarts_cleanly(rg_emulator, rg_fleet_db, specs, expected) -> None:  # type: ignore[no-untyped-def]
    from tests.emulator_fixture import fleet_subscriptions

    subs = fleet_subscriptions(rg_fleet_db)
    spec = specs["installed_patches"]
    rg_emulator.faults.add("expire_skip_token", 1, match="patchinstallationresources", page=2)
    with source_for(rg_emulator, Scope("subscriptions", tuple(subs)), batch_size=2, page_size=100) as src:
        with pytest.raises(SkipTokenExpiredError, match=r"request 1/\d+"):
            list(src.pages(spec))
        rows, _ = rows_of(src, spec)
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in expected["installed_patches"])


def test_extract_restarts_a_query_whose_skip_token_expired(rg_emulator, specs, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Depends on extract.py reading the query again on SkipTokenExpiredError (MAX_QUERY_RESTARTS)."""
    from hotpatch_audit.extract import extract_to_snapshot
    from tests.conftest import ROOT
    from tests.emulator_fixture import FLEET_AS_OF

    total = len(expected["azure_vms"])
    rg_emulator.faults.add("expire_skip_token", 2, match=VMS, page=3)  # the first two reads fail on page 3
    with source_for(rg_emulator, page_size=20) as src:
        snap = extract_to_snapshot(src, [specs["azure_vms"], specs["arc_machines"]], tmp_path / "snap",
                                   as_of=FLEET_AS_OF, project_root=ROOT)
        assert src.stats.skip_tokens_expired == 2 and src.stats.retries == 0
    vms = snap.queries["azure_vms"]
    assert snap.complete and (vms.rows, vms.total_records, vms.error) == (total, total, None)
    files = sorted((tmp_path / "snap" / "azure_vms").glob("page-*.json"))
    assert len(files) == vms.pages == -(-total // 20)
    ids = [r["id"] for f in files for r in json.loads(f.read_bytes())["data"]]
    assert ids == [r["id"] for r in expected["azure_vms"]]

    # a token that never stays valid: given up after the restarts, recorded as the query's failure
    rg_emulator.faults.add("expire_skip_token", None, match=VMS)
    with source_for(rg_emulator, page_size=20) as src:
        snap = extract_to_snapshot(src, [specs["azure_vms"], specs["arc_machines"]], tmp_path / "snap2",
                                   as_of=FLEET_AS_OF, project_root=ROOT)
        assert src.stats.skip_tokens_expired == 4
    rg_emulator.faults.clear()
    vms = snap.queries["azure_vms"]
    assert not vms.complete and "skip token" in str(vms.error) and "restarted" in str(vms.error)
    assert snap.queries["arc_machines"].complete


# --------------------------------------------------------------------------------------------------
# 2. rows that move while a query is paged


@pytest.mark.parametrize("id_case", ["same", "upper"])
def test_duplicate_ids_are_counted_case_insensitively_and_flagged(rg_emulator, specs, expected, id_case) -> None:  # type: ignore[no-untyped-def]
    total = len(expected["azure_vms"])
    rg_emulator.faults.add("duplicate", 1, match=VMS, page=2, rows=3, id_case=id_case)
    got: list[Any] = []
    with source_for(rg_emulator, page_size=50) as src, pytest.raises(IncompleteResultError) as err:
        got.extend(src.pages(specs["azure_vms"]))
    text = str(err.value)
    assert _one_line(text)
    assert "3 rows repeated an id of an earlier page" in text and "each id is loaded once" in text
    assert f"received {total + 3} of {total} rows" in text
    ids = _page_ids(got)
    assert len(ids) == total + 3 and len({i.lower() for i in ids}) == total


# --------------------------------------------------------------------------------------------------
# 3. TLS certificates the client cannot verify


def _tls_source(emu: Any, ca_bundle: Path | None, **options: Any) -> ArgSource:
    opts = ArgOptions(endpoint=emu.url, ca_bundle=ca_bundle, static_token=emu.token, backoff_base=0.5, **options)
    return ArgSource(Scope("tenant"), options=opts)


def test_an_unknown_ca_fails_at_once_and_names_ca_bundle(rg_emulator, specs, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hotpatch_audit.extract import extract_to_snapshot
    from tests.conftest import ROOT
    from tests.emulator_fixture import FLEET_AS_OF

    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(var, raising=False)
    started = time.monotonic()
    with _tls_source(rg_emulator, None) as src, pytest.raises(SourceError) as err:
        list(src.pages(specs["azure_vms"]))
    elapsed = time.monotonic() - started
    text = str(err.value)
    assert _one_line(text) and elapsed < 5, (elapsed, text)
    assert f"the TLS certificate of {rg_emulator.url} could not be verified" in text
    assert "self-signed certificate" in text or "unable to get local issuer certificate" in text
    assert "pass --ca-bundle FILE (setting arg_ca_bundle / HOTPATCH_AUDIT_ARG_CA_BUNDLE) with the CA that signed it" \
        in text
    assert (src.stats.requests, src.stats.retries) == (1, 0) and rg_emulator.stats.requests == 0
    assert rg_emulator.token not in text

    names = ["azure_vms", "arc_machines", "installed_patches"]
    with _tls_source(rg_emulator, None, max_workers=3) as src:
        snap = extract_to_snapshot(src, [specs[n] for n in names], tmp_path / "snap", as_of=FLEET_AS_OF,
                                   project_root=ROOT)
        assert (src.stats.requests, src.stats.retries) == (3, 0)  # one attempt per query
    assert all("--ca-bundle" in str(snap.queries[n].error) for n in names)


def test_a_ca_bundle_that_does_not_sign_it_or_a_name_mismatch_fail_at_once(rg_emulator_factory, specs,  # type: ignore[no-untyped-def]
                                                                           tmp_path) -> None:
    from hotpatch_audit.tlsutil import write_server_cert

    stranger = write_server_cert(tmp_path / "stranger")  # another CA altogether
    emu = rg_emulator_factory()
    with _tls_source(emu, stranger.ca_bundle) as src, pytest.raises(SourceError) as err:
        list(src.pages(specs["azure_vms"]))
    text = str(err.value)
    assert _one_line(text) and "could not be verified" in text and "--ca-bundle FILE" in text
    assert f"the CA bundle {stranger.ca_bundle} does not make it trusted" in text
    assert src.stats.requests == 1

    named = write_server_cert(tmp_path / "named", ["rg.example.test"])  # the right CA, another host name
    emu = rg_emulator_factory(tls=named)
    with _tls_source(emu, named.ca_bundle) as src, pytest.raises(SourceError) as err:
        list(src.pages(specs["azure_vms"]))
    text = str(err.value)
    assert _one_line(text) and "mismatch" in text and "127.0.0.1" in text and "--ca-bundle FILE" in text
    assert src.stats.requests == 1 and emu.stats.requests == 0


def test_a_ca_bundle_without_certificates_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no usable PEM certificate"):
        ArgOptions(ca_bundle=bad)


# --------------------------------------------------------------------------------------------------
# 4. static tokens with whitespace around them


@pytest.mark.parametrize("pasted", ["{t}\n", "{t}\r\n", "  {t}  ", "\t{t}\n\n"])
def test_a_token_with_whitespace_around_it_is_stripped(rg_emulator, specs, expected, pasted, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    token = pasted.format(t=rg_emulator.token)
    assert StaticTokenCredential(token).get_token("x").token == rg_emulator.token
    settings = SimpleNamespace(arg_token=_secret(token), arg_endpoint=rg_emulator.url,
                               arg_ca_bundle=str(rg_emulator.ca_bundle))
    options = ArgOptions.from_settings(settings)
    assert options.static_token == rg_emulator.token
    with ArgSource(Scope("tenant"), options=options) as src:
        rows, _ = rows_of(src, specs["azure_vms"])
    assert rows == expected["azure_vms"]
    assert rg_emulator.token not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("token", ["", " ", "\n", "abc def", "abc\tdef", "abc\x00def", "abc\x7fdef", "töken"])
def test_a_token_that_is_empty_or_has_whitespace_inside_is_a_config_error(token) -> None:  # type: ignore[no-untyped-def]
    for make in (lambda: StaticTokenCredential(token), lambda: ArgOptions(static_token=token),
                 lambda: ArgOptions.from_settings(SimpleNamespace(arg_token=_secret(token)))):
        with pytest.raises(ConfigError) as err:
            make()
        text = str(err.value)
        assert _one_line(text) and "static token" in text and "HOTPATCH_AUDIT_ARG_TOKEN" in text
        assert token.strip() == "" or token not in text


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


# --------------------------------------------------------------------------------------------------
# 5. nothing but the project's errors, on one line


@pytest.mark.parametrize("variant", ["json", "shape", "empty", "total", "bytes"])
def test_a_body_that_stays_malformed_ends_as_one_line_source_error(rg_emulator, specs, variant) -> None:  # type: ignore[no-untyped-def]
    rg_emulator.faults.add("malformed", None, match=VMS, variant=variant)
    with source_for(rg_emulator, max_attempts=2) as src, pytest.raises(HotpatchAuditError) as err:
        list(src.pages(specs["azure_vms"]))
    rg_emulator.faults.clear()
    text = str(err.value)
    assert isinstance(err.value, SourceError) and _one_line(text)
    assert "failed after 2 attempts" in text and "malformed response body" in text
    assert src.stats.errors_by_kind and src.stats.retries == 2


def test_an_unreachable_endpoint_is_a_source_error(specs) -> None:  # type: ignore[no-untyped-def]
    opts = ArgOptions(endpoint="https://127.0.0.1:9", static_token="x", max_attempts=2,  # noqa: S106
                      backoff_base=0.01, connection_timeout=2)
    with ArgSource(Scope("tenant"), options=opts) as src, pytest.raises(SourceError) as err:
        list(src.pages(specs["azure_vms"]))
    assert _one_line(str(err.value)) and "connection error" in str(err.value)
