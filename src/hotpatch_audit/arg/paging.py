"""The production Azure Resource Graph source: ArgSource pages every query, fetches each page with retries.

Built on azure-mgmt-resourcegraph (keyword arguments only) with azure-core's own retry switched off
(`retry_total=0`), so every retry and wait below is ours and visible in the stats. Credentials come
from azure-identity (DefaultAzureCredential unless a static token is given) and never appear in logs,
files or error text. Figures are logged (pages, rows, quota left, waits), never row contents.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hotpatch_audit.arg.credentials import DAC_CHAIN, StaticTokenCredential, TenantCredential, redact, short_text
from hotpatch_audit.arg.options import AUTHORITIES, ArgOptions
from hotpatch_audit.arg.pacer import QuotaInfo, QuotaPacer, backoff_delay, parse_retry_after
from hotpatch_audit.arg.tenants import TenantTarget, targets_for
from hotpatch_audit.catalog import QuerySpec, validate_query
from hotpatch_audit.errors import AuthError, SkipTokenExpiredError, SourceError
from hotpatch_audit.sources import Page, Scope, page_body

log = logging.getLogger(__name__)

_SKIP_TOKEN_TEXT_RE = re.compile(r"(?i)\$?skip\s*-?token\b.*\b(expired|invalid|not valid|no longer valid)\b"
                                 r"|\b(expired|invalid)\s+\$?skip\s*-?token")
_CA_HINT = ("pass --ca-bundle FILE (setting arg_ca_bundle / HOTPATCH_AUDIT_ARG_CA_BUNDLE) with the CA that "
            "signed it")


class IncompleteResultError(SourceError):
    """A query finished but did not return every row it announced (or its scope was capped)."""


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
                kwargs: dict[str, Any] = {"authority": AUTHORITIES[self.options.cloud]}
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
                credential = TenantCredential(credential, tenant_id)
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
                    f"({last.kind}{_status_text(last.status)}): {short_text(last.cause)}", self._secrets)
                ) from last.cause
            ticket = pacer.acquire()
            if self.options.before_request is not None:
                _before_request(self.options.before_request, pacer, ticket)
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
            raise SourceError(redact(f"Resource Graph refused the query{_status_text(status)}: {short_text(exc)}",
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
            raise SourceError(redact(f"Resource Graph request failed ({type(exc).__name__}): {short_text(exc)}",
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
            what = (f"Resource Graph refused the token from DefaultAzureCredential (chain: {DAC_CHAIN})"
                    if status else "DefaultAzureCredential found no usable credential"
                    + ("" if "Attempted credentials" in str(exc) else f" (chain tried: {DAC_CHAIN})"))
            hint = ("Run `az login` (with --tenant for another tenant), or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                    "AZURE_CLIENT_SECRET or a managed/workload identity; the identity needs the Reader role "
                    "at the scope")
        else:
            what = f"the credential {self._chain} failed"
            hint = "Check the credential; the identity needs the Reader role at the scope"
        return AuthError(redact(f"Resource Graph authentication or authorization failed{_status_text(status)}: "
                                  f"{what}. {hint}. Detail: {short_text(exc, 2000)}", self._secrets))


# ---------------------------------------------------------------------------------------------------
# helpers


def _before_request(hook: Callable[[], None], pacer: QuotaPacer, ticket: int) -> None:
    """Call options.before_request (e.g. a slot of a rate limit shared with other processes) once the pacer let
    the request go; whatever it raises gives the pacer its slot back and reaches the caller unchanged."""
    try:
        hook()
    except BaseException:
        pacer.release(ticket)
        raise
    pacer.sending(ticket)  # the hook may have waited: the request leaves now


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
    text = str(getattr(error, "message", None) or short_text(exc, 300))
    if details:
        text += " [" + "; ".join(f"{d.code}: {getattr(d, 'message', '')}" for d in details[:3]) + "]"
    head = " ".join(x for x in (f"HTTP {status}" if status else "", str(code) if code else "") if x)
    return short_text(ValueError(f"{head}: {text}" if head else text), 400)


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


def _batch_label(query: str, target: TenantTarget, subs: list[str] | None, mgs: list[str] | None,
                 number: int, count: int) -> str:
    where = (f"{len(subs)} subscriptions" if subs else f"management groups {','.join(mgs)}" if mgs else "tenant")
    tenant = f" in tenant {target.tenant_id}" if target.tenant_id else ""
    return f"{query} [request {number}/{count}: {where}{tenant}]"
