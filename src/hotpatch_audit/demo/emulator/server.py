"""The HTTPS front of the Resource Graph emulator: `POST /providers/Microsoft.ResourceGraph/resources`.

Order of work per request: path → api-version → bearer token (401) → quota (429) → latency → body
parse (400) → fault → query/paging → answer. Every answer to an authenticated ARG request carries the
quota headers while the quota is enabled. Tokens are never logged or stored (identities are hashes).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import random
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from hotpatch_audit.demo.emulator.engine import ArgRequestError, CachedResult, QueryEngine, column_type, query_key
from hotpatch_audit.demo.emulator.policy import (
    EmulatorStats,
    Fault,
    FaultInjector,
    Quota,
    format_resets_after,
    identity_of,
)
from hotpatch_audit.errors import RunInterrupted

if TYPE_CHECKING:
    from hotpatch_audit.tlsutil import TlsFiles

log = logging.getLogger(__name__)

ARG_PATH = "/providers/microsoft.resourcegraph/resources"
MAX_TOP = 1000
DEFAULT_API_VERSION = "2021-03-01"
QUOTA_REMAINING = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER = "x-ms-user-quota-resets-after"
SUBSCRIPTION_LIMIT_HIT = "x-ms-tenant-subscription-limit-hit"
THROTTLE_MESSAGE = ("Client application has been throttled and should not attempt to repeat the request until an "
                    "amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.")
_STATUS_CODES = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


def arm_error(code: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    """An ARM error body."""
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return json.dumps({"error": err}).encode("utf-8")


def encode_skip_token(rid: str, offset: int, page: int, key: str) -> str:
    """Opaque continuation token: base64 of {result id, offset, next page number, query/scope key}."""
    raw = json.dumps({"v": 1, "r": rid, "o": offset, "p": page, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_skip_token(token: str) -> dict[str, Any]:
    """Inverse of encode_skip_token; ArgRequestError(400) when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not (isinstance(data, dict) and data.get("v") == 1 and isinstance(data.get("r"), str)
                and isinstance(data.get("o"), int) and isinstance(data.get("p"), int)
                and isinstance(data.get("k"), str) and data["o"] >= 0):
            raise ValueError("shape")
        return data
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ArgRequestError(400, "BadRequest", "The skip token is invalid.",
                              [{"code": "InvalidSkipToken", "message": "$skipToken could not be decoded"}]) from exc


class _Reply:
    """What the handler sends: status, headers, body (or drop=True for a closed connection)."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *,
                 drop: bool = False, rows: int = 0, page: bool = False, fault: str | None = None,
                 executed: bool = False):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.drop = drop
        self.rows = rows
        self.page = page
        self.fault = fault
        self.executed = executed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], emulator: ResourceGraphEmulator, ctx: ssl.SSLContext):
        self.emulator = emulator
        self.ssl_context = ctx
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake here, on the connection's own thread, not in the accept loop.
        with self._conns_lock:
            self._conns.add(request)
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            try:
                tls = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
            with self._conns_lock:
                self._conns.add(tls)
            try:
                _Handler(tls, client_address, self)
            finally:
                with self._conns_lock:
                    self._conns.discard(tls)
                with contextlib.suppress(OSError):
                    tls.close()
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ResourceGraphEmulator/1.0"
    timeout = 120
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)  # request line only; never headers

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        emu = self.server.emulator
        url = urlsplit(self.path)
        path = url.path.rstrip("/").lower()
        if path == ARG_PATH:
            reply = emu._handle_query(self.headers.get("Authorization"), parse_qs(url.query), body)
        elif path.startswith("/_emulator/"):
            reply = emu._handle_control("POST", path, self.headers.get("Authorization"), body)
        else:
            reply = _Reply(404, arm_error("NotFound", f"No route for {url.path}"))
        self._send(reply)

    def do_GET(self) -> None:  # noqa: N802
        emu = self.server.emulator
        path = urlsplit(self.path).path.rstrip("/").lower()
        if path.startswith("/_emulator/"):
            reply = emu._handle_control("GET", path, self.headers.get("Authorization"), b"")
        else:
            reply = _Reply(404, arm_error("NotFound", f"No route for GET {urlsplit(self.path).path}"))
        self._send(reply)

    def do_DELETE(self) -> None:  # noqa: N802
        self._body()
        emu = self.server.emulator
        path = urlsplit(self.path).path.rstrip("/").lower()
        reply = emu._handle_control("DELETE", path, self.headers.get("Authorization"), b"")
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class ResourceGraphEmulator:
    """A local HTTPS Azure Resource Graph (`POST /providers/Microsoft.ResourceGraph/resources`).

    Usage::

        with ResourceGraphEmulator(db_path, quota_per_window=15, window_seconds=5) as emu:
            url = emu.url                   # https://127.0.0.1:PORT
            ca = emu.ca_bundle              # trust this (connection_verify=str(ca))
            emu.faults.add("503", count=2)  # the next two requests get 503
            emu.stats.identity(emu.identity).rows
            emu.request_log()               # [(time.time() at arrival, identity, status), ...]
    """

    def __init__(self, db_path: Path | str, *, token: str | Sequence[str] | None = "emulator-token",  # noqa: S107
                 accept_any_token: bool = False, quota_per_window: int = 15, window_seconds: float = 5.0,
                 quota_enabled: bool = True, retry_after: bool = True, latency_ms: float = 0,
                 latency_jitter_ms: float | None = None, management_groups: dict[str, Sequence[str]] | None = None,
                 cert_dir: Path | str | None = None, host: str = "127.0.0.1", port: int = 0,
                 query_now: datetime | None = None, resets_after_fraction: bool = False,
                 max_scope_subscriptions: int = 10_000, paging_requires_id: bool = False,
                 max_cached_results: int = 64, cache_ttl_seconds: float = 900.0, memory_limit: str = "1GB",
                 tls: TlsFiles | None = None, max_logged_requests: int = 1_000_000):
        tokens = [token] if isinstance(token, str) else list(token or [])
        if not tokens and not accept_any_token:
            raise ValueError("give a token (or accept_any_token=True)")
        self.db_path = Path(db_path)
        self._tokens = frozenset(tokens)
        self.token = tokens[0] if tokens else None
        self.accept_any_token = accept_any_token
        self.quota = Quota(quota_per_window, window_seconds, quota_enabled)
        self.retry_after = retry_after
        self.latency_ms = float(latency_ms)
        self.latency_jitter_ms = float(latency_ms) * 0.25 if latency_jitter_ms is None else float(latency_jitter_ms)
        self.management_groups = management_groups
        self.cert_dir = Path(cert_dir) if cert_dir is not None else None
        self.tls = tls  # a certificate of your own (e.g. for other host names) instead of one made in cert_dir
        self.host = host
        self.port = port
        self.query_now = query_now
        self.resets_after_fraction = resets_after_fraction
        self.max_scope_subscriptions = max_scope_subscriptions
        self.paging_requires_id = paging_requires_id
        self._max_cached_results = max_cached_results
        self._cache_ttl_seconds = cache_ttl_seconds
        self._memory_limit = memory_limit
        self.faults = FaultInjector()
        self.stats = EmulatorStats()
        # (wall-clock arrival time, identity label or "" without an accepted token, status; 0 = connection dropped)
        self._request_log: deque[tuple[float, str, int]] = deque(maxlen=max_logged_requests)
        self._request_log_lock = threading.Lock()
        self.engine: QueryEngine | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp_cert_dir: Any = None
        self.ca_bundle: Path | None = None
        self.url: str | None = None
        self._rng = random.Random()  # noqa: S311 (latency jitter)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def identity(self) -> str | None:
        """Identity label (stats key) of the configured token."""
        return identity_of(self.token) if self.token else None

    def start(self) -> str:
        """Open the database, make TLS material, listen; returns the base URL https://HOST:PORT."""
        if self._server is not None:
            assert self.url is not None
            return self.url
        from hotpatch_audit.tlsutil import ensure_server_cert

        if self.tls is not None:
            tls = self.tls
        else:
            if self.cert_dir is None:
                import tempfile

                self._tmp_cert_dir = tempfile.TemporaryDirectory(prefix="rg-emulator-tls-")
                cert_dir = Path(self._tmp_cert_dir.name)
            else:
                cert_dir = self.cert_dir
            tls = ensure_server_cert(cert_dir, [self.host])
        self.ca_bundle = tls.ca_bundle
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
        self.engine = QueryEngine(self.db_path, management_groups=self.management_groups, query_now=self.query_now,
                                  max_scope_subscriptions=self.max_scope_subscriptions,
                                  max_cached_results=self._max_cached_results,
                                  cache_ttl_seconds=self._cache_ttl_seconds, memory_limit=self._memory_limit)
        try:
            self._server = _Server((self.host, self.port), self, ctx)
        except OSError:
            self.engine.close()
            self.engine = None
            raise
        port = self._server.server_address[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"https://{shown}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"rg-emulator-{port}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening, cut open connections, close DuckDB."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if self._tmp_cert_dir is not None:
            self._tmp_cert_dir.cleanup()
            self._tmp_cert_dir = None

    def __enter__(self) -> ResourceGraphEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Clear faults, stats, the request log, quota windows and cached results."""
        self.faults.clear()
        self.stats.reset()
        self.clear_request_log()
        self.quota.reset()
        if self.engine is not None:
            self.engine.clear_cache()

    def request_log(self) -> list[tuple[float, str, int]]:
        """Every query request (`POST .../resources`) answered since start or reset, in the order answered:
        (time.time() when it arrived, identity label (identity_of; "" without an accepted token), HTTP status,
        0 for a dropped connection). A copy; the latest `max_logged_requests` are kept. Also served as
        `GET /_emulator/requests`, for a process that only knows the URL."""
        with self._request_log_lock:
            return list(self._request_log)

    def clear_request_log(self) -> None:
        """Forget the logged requests (reset() does too)."""
        with self._request_log_lock:
            self._request_log.clear()

    def _record(self, identity: str | None, arrived: float, *, status: int, **counts: Any) -> None:
        """Count an answered query request in the stats and the request log."""
        self.stats.record(identity, status=status, **counts)
        with self._request_log_lock:
            self._request_log.append((arrived, identity or "", status))

    # -- request handling ----------------------------------------------------------------------

    def _authenticate(self, header: str | None) -> str | None:
        """Identity label of an acceptable bearer token, else None."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if token in self._tokens or self.accept_any_token:
            return identity_of(token)
        return None

    def _unauthorized(self, header: str | None) -> _Reply:
        if not header:
            code, msg = "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            desc = "The authentication failed because of missing 'Authorization' header."
        else:
            code, msg = "InvalidAuthenticationToken", "The access token is invalid."
            desc = "The access token is invalid."
        return _Reply(401, arm_error(code, msg), {
            "WWW-Authenticate": f'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                f'error="invalid_token", error_description="{desc}"'})

    def _quota_headers(self, remaining: int, resets_after: float) -> dict[str, str]:
        if not self.quota.enabled:
            return {}
        return {QUOTA_REMAINING: str(remaining),
                QUOTA_RESETS_AFTER: format_resets_after(resets_after, self.resets_after_fraction)}

    def _throttled(self, resets_after: float) -> _Reply:
        headers = {QUOTA_REMAINING: "0", QUOTA_RESETS_AFTER: format_resets_after(resets_after,
                                                                                 self.resets_after_fraction)}
        if self.retry_after:
            headers["Retry-After"] = str(max(1, int(-(-resets_after // 1))))
        return _Reply(429, arm_error("RateLimiting", THROTTLE_MESSAGE), headers)

    def _sleep_latency(self) -> None:
        if self.latency_ms <= 0:
            return
        jitter = self._rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms) if self.latency_jitter_ms else 0
        time.sleep(max(0.0, self.latency_ms + jitter) / 1000.0)

    def _handle_query(self, auth: str | None, params: dict[str, list[str]], body: bytes) -> _Reply:
        arrived = time.time()
        request_id = str(uuid.uuid4())
        identity = self._authenticate(auth)
        if identity is None:
            self._sleep_latency()
            self._record(None, arrived, status=401)
            return self._unauthorized(auth)
        if not params.get("api-version"):
            reply = _Reply(400, arm_error("MissingApiVersionParameter",
                                          "The api-version query parameter (?api-version=) is required for all "
                                          "requests."))
            self._record(identity, arrived, status=400)
            return reply
        quota_headers: dict[str, str] = {}
        if self.quota.enabled:
            decision = self.quota.charge(identity)
            if not decision.allowed:
                self._sleep_latency()
                reply = self._throttled(decision.resets_after)
                reply.headers["x-ms-request-id"] = request_id
                self._record(identity, arrived, status=429)
                return reply
            quota_headers = self._quota_headers(decision.remaining, decision.resets_after)
        self._sleep_latency()
        try:
            reply = self._answer(identity, body)
        except ArgRequestError as exc:
            reply = _Reply(exc.status, arm_error(exc.code, exc.message, exc.details))
        except Exception:  # noqa: BLE001  (a bug must still answer like a service would)
            log.exception("emulator failed to answer a query")
            reply = _Reply(500, arm_error("InternalServerError", "The emulator failed to answer this query."))
        if not reply.drop:
            reply.headers = {**quota_headers, "x-ms-request-id": request_id,
                             "x-ms-correlation-request-id": request_id, **reply.headers}
            if reply.status == 429:  # a throttle fault: quota headers say "wait"
                reply.headers[QUOTA_REMAINING] = "0"
        self._record(identity, arrived, status=0 if reply.drop else reply.status, rows=reply.rows, fault=reply.fault,
                     page=reply.page, executed=reply.executed)
        return reply

    def _answer(self, identity: str, body: bytes) -> _Reply:
        assert self.engine is not None
        try:
            req = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArgRequestError(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
        if not isinstance(req, dict) or not isinstance(req.get("query"), str) or not req["query"].strip():
            raise ArgRequestError(400, "InvalidRequestContent", "The request content must be an object with a "
                                  "non-empty 'query' string.")
        query: str = req["query"]
        options = req.get("options") or {}
        if not isinstance(options, dict):
            raise ArgRequestError(400, "InvalidRequestContent", "'options' must be an object")
        top = options.get("$top")
        if top is None:
            top = MAX_TOP
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise ArgRequestError(400, "BadRequest", "$top must be an integer between 1 and 1000.")
        top = min(top, MAX_TOP)
        skip = options.get("$skip") or 0
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            raise ArgRequestError(400, "BadRequest", "$skip must be a non-negative integer.")
        fmt = options.get("resultFormat") or "table"  # the REST default; the Python SDK sends objectArray
        if fmt not in ("table", "objectArray"):
            raise ArgRequestError(400, "BadRequest", f"resultFormat {fmt!r} is not supported.")
        skip_token = options.get("$skipToken")
        token = decode_skip_token(skip_token) if skip_token else None
        subs, limit_hit = self.engine.resolve_scope(req.get("subscriptions"), req.get("managementGroups"),
                                                    bool(options.get("allowPartialScopes")))
        page_no = token["p"] if token else 1
        fault = self.faults.take(query, page_no, identity)
        kind = fault.kind if fault else None

        if fault is not None:
            early = self._early_fault(fault)
            if early is not None:
                return early

        key = query_key(query, subs)
        executed = False
        result: CachedResult | None = None
        if token is not None:
            if token["k"] != key:
                raise ArgRequestError(400, "BadRequest", "The skip token does not belong to this query and scope.",
                                      [{"code": "InvalidSkipToken", "message": "query or scope changed"}])
            result = self.engine.cached(token["r"])
        if result is None:
            result = self.engine.execute(query, subs, paging_requires_id=self.paging_requires_id)
            executed = True

        if not result.pageable:
            offset = 0  # take/limit/sample: $skip and $skipToken do not apply
        elif token is not None:
            offset = token["o"]
        else:
            offset = skip
        repeat = 0
        if kind == "duplicate" and result.pageable:
            # as if rows were inserted before the cursor: the last rows of the previous page come again
            assert fault is not None
            repeat = min(fault.rows or 1, offset)
            offset -= repeat
        rows = self.engine.rows(result, offset, top)
        if repeat and fault is not None and fault.id_case == "upper":
            rows[:repeat] = [_upper_id(r) for r in rows[:repeat]]
        nxt = offset + top
        next_token: str | None = None
        truncated = "false"
        if result.pageable:
            if nxt < result.total:
                next_token = encode_skip_token(result.rid, nxt, page_no + 1, key)
        elif result.total > top:
            truncated = "true"

        headers: dict[str, str] = {}
        if limit_hit:
            headers[SUBSCRIPTION_LIMIT_HIT] = "true"
        if kind == "vanish_subscription":
            assert fault is not None
            sub = (fault.subscription or _row_subscription(rows[0] if rows else None) or "").lower()
            if sub:
                result.vanished.add(sub)
        if result.vanished:
            rows = [r for r in rows if (_row_subscription(r) or "").lower() not in result.vanished]
        if kind == "truncate":
            assert fault is not None
            keep = len(rows) // 2 if fault.rows is None else max(0, min(fault.rows, len(rows)))
            rows = rows[:keep]
            truncated, next_token = "true", None
        if kind == "subscription_limit":
            headers[SUBSCRIPTION_LIMIT_HIT] = "true"

        if fmt == "objectArray":
            data = "[" + ",".join(rows) + "]"
        else:
            cols = [{"name": n, "type": column_type(t)} for n, t in result.columns]
            table_rows = [list(json.loads(r).values()) for r in rows]
            data = json.dumps({"columns": cols, "rows": table_rows}, separators=(",", ":"))
        head: dict[str, Any] = {"totalRecords": result.total, "count": len(rows), "resultTruncated": truncated}
        if next_token:
            head["$skipToken"] = next_token
        text = json.dumps(head)[:-1] + ', "facets": [], "data": ' + data + "}"
        body = text.encode("utf-8")
        if kind == "malformed":
            assert fault is not None
            body = _malform(body, fault.variant or "json", rows)
        return _Reply(200, body, headers, rows=len(rows), page=kind != "malformed", fault=kind, executed=executed)

    def _early_fault(self, fault: Fault) -> _Reply | None:
        """Faults answered without running the query."""
        if fault.kind == "drop":
            return _Reply(0, drop=True, fault="drop")
        if fault.kind == "status":
            status = int(fault.status)
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(max(0, round(fault.retry_after)))
            return _Reply(status, arm_error(_STATUS_CODES.get(status, "InternalServerError"),
                                            f"Injected fault: HTTP {status}."), headers, fault="status")
        if fault.kind == "throttle":
            reply = self._throttled(fault.resets_after)
            reply.fault = "throttle"
            return reply
        if fault.kind == "expire_skip_token":
            return _Reply(400, _expired_skip_token(fault.variant or "code"), fault="expire_skip_token")
        if fault.kind == "slow":
            time.sleep(max(0.0, fault.delay))
        return None

    # -- control endpoint ----------------------------------------------------------------------

    def _handle_control(self, method: str, path: str, auth: str | None, body: bytes) -> _Reply:
        if self._authenticate(auth) is None:
            return self._unauthorized(auth)
        try:
            if path == "/_emulator/faults":
                if method == "GET":
                    return _json_reply([f.as_dict() for f in self.faults.pending])
                if method == "DELETE":
                    self.faults.clear()
                    return _json_reply({"cleared": True})
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict) or "kind" not in spec:
                    return _Reply(400, arm_error("BadRequest", "POST a JSON object with at least 'kind'"))
                kind = str(spec.pop("kind"))
                count = spec.pop("count", 1)
                match = spec.pop("match", None)
                fault = self.faults.add(kind, count, match, **spec)
                return _json_reply(fault.as_dict(), 201)
            if path == "/_emulator/stats":
                if method == "DELETE":
                    self.stats.reset()
                    return _json_reply({"cleared": True})
                return _json_reply(self.stats.snapshot())
            if path == "/_emulator/requests":
                if method == "DELETE":
                    self.clear_request_log()
                    return _json_reply({"cleared": True})
                if method == "GET":
                    return _json_reply([{"time": t, "identity": who, "status": status}
                                        for t, who, status in self.request_log()])
            if path == "/_emulator/reset" and method == "POST":
                self.reset()
                return _json_reply({"reset": True})
        except (ValueError, TypeError) as exc:
            return _Reply(400, arm_error("BadRequest", str(exc)))
        return _Reply(404, arm_error("NotFound", f"No control route {method} {path}"))


def _json_reply(obj: Any, status: int = 200) -> _Reply:
    return _Reply(status, json.dumps(obj, default=str).encode("utf-8"))


def _row_subscription(row_json: str | None) -> str | None:
    """Subscription of a result row: subscriptionId / subscription_id column, else parsed from id."""
    if not row_json:
        return None
    try:
        row = json.loads(row_json)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict):
        return None
    for key in ("subscriptionId", "subscription_id", "subscriptionid"):
        v = row.get(key)
        if isinstance(v, str) and v:
            return v
    rid = row.get("id")
    if isinstance(rid, str):
        parts = rid.split("/")
        if len(parts) > 2 and parts[1].lower() == "subscriptions":
            return parts[2]
    return None


def _expired_skip_token(variant: str) -> bytes:
    """The 400 of a refused (expired) $skipToken, with InvalidSkipToken as the code, in details, or text only."""
    if variant == "details":
        return arm_error("BadRequest", f"Please provide below info when asking for support: correlationId = "
                         f"{uuid.uuid4()}.", [{"code": "InvalidSkipToken", "message": "The skip token has expired."}])
    if variant == "message":
        return arm_error("BadRequest", "The $skipToken is expired or invalid; run the query again from its first "
                         "page.")
    return arm_error("InvalidSkipToken", "The $skipToken has expired or is no longer valid. Run the query again "
                     "without a $skipToken.")


def _upper_id(row_json: str) -> str:
    """A result row with its id upper-cased (Resource Graph ids are case-insensitive)."""
    row = json.loads(row_json)
    if isinstance(row, dict) and isinstance(row.get("id"), str):
        row["id"] = row["id"].upper()
    return json.dumps(row, separators=(",", ":"))


def _malform(body: bytes, variant: str, rows: list[str]) -> bytes:
    if variant == "empty":
        return b""
    if variant == "total":
        # totalRecords that no integer can hold
        return ('{"totalRecords": 1e400, "count": ' + str(len(rows)) + ', "resultTruncated": "false", "data": ['
                + ",".join(rows) + "]}").encode()
    if variant == "bytes":
        return b"\x80" + body  # not UTF-8 (a lone continuation byte)
    if variant == "shape":
        # Valid JSON of the wrong shape: no totalRecords/count, rows under "value", data an object.
        return ('{"value": [' + ",".join(rows) + '], "data": {"unexpected": true}, "nextLink": null}').encode()
    return body[: max(1, len(body) // 2)]  # "json": the body cut in half (invalid JSON)


# ---------------------------------------------------------------------------------------------
# CLI


def serve(db_path: Path | str, host: str = "127.0.0.1", port: int = 8443, token: str = "emulator-token",  # noqa: S107
          quota: int | None = None, retry_after: bool = True, latency_ms: float = 0,
          cert_dir: Path | str | None = None, *, window_seconds: float = 5.0,
          management_groups: dict[str, Sequence[str]] | None = None, query_now: datetime | None = None,
          accept_any_token: bool = False, out: Any = None) -> None:
    """Run the emulator in the foreground until interrupted (the `hotpatch-audit emulator` command).

    quota: requests per identity per `window_seconds`; None or 0 disables the quota (no quota headers).
    """
    import sys

    stream = out or sys.stdout
    emu = ResourceGraphEmulator(db_path, token=token, accept_any_token=accept_any_token,
                                quota_per_window=quota or 15, window_seconds=window_seconds,
                                quota_enabled=bool(quota), retry_after=retry_after, latency_ms=latency_ms,
                                management_groups=management_groups, cert_dir=cert_dir, host=host, port=port,
                                query_now=query_now)
    url = emu.start()
    try:
        print(f"Resource Graph emulator listening on {url}", file=stream)
        print(f"  endpoint : {url}/providers/Microsoft.ResourceGraph/resources?api-version={DEFAULT_API_VERSION}",
              file=stream)
        print(f"  CA bundle: {emu.ca_bundle}", file=stream)
        print(f"  token    : {token}" + ("  (any bearer token accepted)" if accept_any_token else ""), file=stream)
        print(f"  database : {Path(db_path).resolve()}", file=stream)
        print("  quota    : " + (f"{quota} requests / {window_seconds:g} s per identity, Retry-After "
                                  f"{'on' if retry_after else 'off'}" if quota else "off"), file=stream)
        print(f"  latency  : {latency_ms:g} ms", file=stream)
        print("  control  : POST/GET/DELETE /_emulator/faults, GET/DELETE /_emulator/stats, "
              "GET/DELETE /_emulator/requests, POST /_emulator/reset", file=stream)
        print("Ctrl-C to stop.", file=stream, flush=True)
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, RunInterrupted):  # Ctrl-C, or SIGTERM / SIGHUP through the CLI: a clean stop
        pass
    finally:
        emu.stop()


__all__ = ["ResourceGraphEmulator", "serve", "encode_skip_token", "decode_skip_token", "arm_error"]
