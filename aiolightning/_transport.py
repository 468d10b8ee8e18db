"""The transport: the one function every Lightning API request goes through.

auth → limiter slot → send (aiohttp) → map status to a typed error → retry (backoff
waits, Retry-After, deadline) → decode (one cached msgspec Decoder per type).

``path`` arguments are already percent-encoded (generated code encodes each path parameter
with :func:`quote_path_param`); the query string is encoded here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload
from urllib.parse import quote

import aiohttp
import msgspec
from yarl import URL

from ._auth import Auth, StaticAuth
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LightningError,
    RateLimitError,
    ResponseDecodeError,
    error_for_status,
)
from ._limiter import Limiter, ScopeLimiter
from ._retry import RetryPolicy, parse_retry_after
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DEFAULT_READ_BUFSIZE",
    "USER_AGENT",
    "Timeout",
    "Transport",
    "decoder_for",
    "encode_query",
    "quote_path_param",
]

T = TypeVar("T")

logger = logging.getLogger("aiolightning")

USER_AGENT: Final = f"aiolightning/{__version__}"
#: aiohttp read buffer; 4 MiB made single-stream downloads ~28% faster than 64 KiB
DEFAULT_READ_BUFSIZE: Final = 4 * 1024 * 1024

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: statuses that feed the limiter's AIMD decrease and pause gate
THROTTLE_STATUSES: Final = frozenset({429, 503})
#: statuses after which a non-idempotent request certainly was not acted on
_NOT_PROCESSED_STATUSES: Final = frozenset({408, 429, 503})

_EMPTY_BODY: Final = b"{}"
_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


# ------------------------------------------------------------------------------------------
# encoding helpers


def quote_path_param(value: Any) -> str:
    """Percent-encode one path parameter with no safe characters ("/" -> "%2F")."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def _query_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def encode_query(params: Mapping[str, Any] | None) -> str:
    """Encode query parameters: None dropped, bools "true"/"false", lists repeat the key."""
    if not params:
        return ""
    parts: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        k = quote(key, safe="")
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                if item is not None:
                    parts.append(f"{k}={quote(_query_value(item), safe='')}")
        else:
            parts.append(f"{k}={quote(_query_value(value), safe='')}")
    return "&".join(parts)


def decoder_for(tp: Any) -> msgspec.json.Decoder[Any]:
    """The cached JSON decoder for a type (lenient: ``strict=False``).

    ``strict=False`` lets int/bool fields accept the strings a proto-JSON server may send,
    while ``str | int`` fields keep the string as a string.
    """
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp, strict=False)
    return dec


def encode_json(value: Any) -> bytes:
    """JSON-encode a msgspec Struct, dict, list... (bytes/str pass through)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return _encoder.encode(value)


# ------------------------------------------------------------------------------------------
# timeouts


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds. ``total`` bounds one attempt (connect + send + read whole body);
    ``connect`` bounds opening a connection; ``read`` bounds each socket read."""

    total: float | None = 60.0
    connect: float | None = 10.0
    read: float | None = None

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )

    def for_stream(self) -> aiohttp.ClientTimeout:
        """Streams (downloads, NDJSON) have no total; each read waits at most read/total."""
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect, sock_read=self.read or self.total
        )


def _as_client_timeout(
    value: float | aiohttp.ClientTimeout | Timeout, connect: float | None
) -> aiohttp.ClientTimeout:
    if isinstance(value, aiohttp.ClientTimeout):
        return value
    if isinstance(value, Timeout):
        return value.to_aiohttp()
    return aiohttp.ClientTimeout(total=float(value), sock_connect=connect)


# ------------------------------------------------------------------------------------------
# error building

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SPACES = re.compile(r"\s+")


def _readable_text(body: bytes, limit: int = 200) -> str:
    text = body[: limit * 8].decode("utf-8", "replace")
    if "<" in text:
        text = _TAGS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return text


def build_status_error(
    status: int,
    reason: str | None,
    body: bytes,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
) -> APIStatusError:
    """The typed error for a non-2xx response, from a ``{code,message,details}`` body or
    from the status reason and the start of a non-JSON body."""
    code: int | None = None
    message: str | None = None
    details: list[Any] | None = None
    if body:
        try:
            data = _any_decoder.decode(body)
        except msgspec.DecodeError:
            data = None
        if isinstance(data, dict):
            c = data.get("code")
            if isinstance(c, int) and not isinstance(c, bool):
                code = c
            m = data.get("message") or data.get("error")
            if isinstance(m, str) and m:
                message = m
            d = data.get("details")
            if isinstance(d, list):
                details = d
    if not message:
        reason = reason or "HTTP error"
        snippet = _readable_text(body) if body else ""
        message = f"{reason}: {snippet}" if snippet else reason
    cls = error_for_status(status)
    if cls is RateLimitError:
        return RateLimitError(
            status,
            message,
            code=code,
            details=details,
            method=method,
            path=path,
            body=body,
            retry_after=retry_after,
        )
    return cls(status, message, code=code, details=details, method=method, path=path, body=body)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# ------------------------------------------------------------------------------------------
# the transport


class Transport:
    """Owns (or borrows) the aiohttp session; sends every request of a client.

    Build it through :class:`aiolightning.AsyncLightning`; use it directly for raw calls:
    ``await client.transport.request("GET", "/v1/auth/whoami")``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        session: aiohttp.ClientSession | None = None,
        connector_limit: int = 100,
        connector_limit_per_host: int = 0,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        trace_configs: tuple[aiohttp.TraceConfig, ...] | list[aiohttp.TraceConfig] = (),
        read_bufsize: int = DEFAULT_READ_BUFSIZE,
        user_agent: str = USER_AGENT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth: Auth = auth if auth is not None else StaticAuth(None, "none")
        self.timeout = timeout or Timeout()
        self.retry = retry or RetryPolicy()
        self._client_timeout = self.timeout.to_aiohttp()
        self._stream_timeout = self.timeout.for_stream()
        self._session = session
        self._owns_session = session is None
        # the timeout our own session was built with: requests using it need not pass it
        self._session_timeout: aiohttp.ClientTimeout | None = (
            self._client_timeout if session is None else None
        )
        self._connector_limit = connector_limit
        self._connector_limit_per_host = connector_limit_per_host
        self._trace_configs = list(trace_configs)
        self._read_bufsize = read_bufsize
        if session is not None:
            pool = getattr(session.connector, "limit", 0) or None
        else:
            pool = connector_limit or None
        self.limiter = limiter if limiter is not None else Limiter(pool_size=pool)
        if self.limiter.pool_size is None and pool:
            self.limiter.pool_size = pool
        self._base_headers: dict[str, str] = {
            "User-Agent": user_agent,
            "Accept": "application/json",
        }
        if headers:
            self._base_headers.update(headers)
        self._hdr_auth: str | None = None
        self._hdr_plain: dict[str, str] = dict(self._base_headers)
        self._hdr_json: dict[str, str] = {**self._base_headers, "Content-Type": "application/json"}
        self._closed = False
        self._parent: Transport | None = None

    # session -------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use). It carries no Authorization header:
        the transfer engine may use it for presigned URLs."""
        if self._session is None:
            if self._closed:
                raise LightningError("the client is closed")
            if self._parent is not None:
                return self._parent.session
            connector = aiohttp.TCPConnector(
                limit=self._connector_limit,
                limit_per_host=self._connector_limit_per_host,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout,
                trace_configs=self._trace_configs or None,
                read_bufsize=self._read_bufsize,
                headers={"User-Agent": self._base_headers["User-Agent"]},
            )
        return self._session

    @property
    def owns_session(self) -> bool:
        return self._owns_session

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the session if this transport created it (a borrowed one stays open)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def with_options(
        self,
        *,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Transport:
        """A transport sharing this one's session, auth and limiter, with other defaults.

        Closing it closes nothing shared."""
        t = copy.copy(self)
        t._parent = self
        t._session = None
        t._owns_session = False
        t._session_timeout = None
        if timeout is not None:
            t.timeout = (
                timeout
                if isinstance(timeout, Timeout)
                else Timeout(
                    total=float(timeout), connect=self.timeout.connect, read=self.timeout.read
                )
            )
            t._client_timeout = t.timeout.to_aiohttp()
            t._stream_timeout = t.timeout.for_stream()
        if retry is not None:
            t.retry = retry
        if headers:
            t._base_headers = {**self._base_headers, **headers}
            t._hdr_auth = None
            t._hdr_plain = dict(t._base_headers)
            t._hdr_json = {**t._base_headers, "Content-Type": "application/json"}
        return t

    def __repr__(self) -> str:
        return f"<Transport {self.base_url} auth={self.auth!r}>"

    # headers -------------------------------------------------------------------------------

    def _headers(
        self, auth_header: str | None, has_body: bool, extra: Mapping[str, str] | None
    ) -> dict[str, str]:
        if auth_header != self._hdr_auth:
            plain = dict(self._base_headers)
            if auth_header is not None:
                plain["Authorization"] = auth_header
            self._hdr_plain = plain
            self._hdr_json = {**plain, "Content-Type": "application/json"}
            self._hdr_auth = auth_header
        base = self._hdr_json if has_body else self._hdr_plain
        if extra:
            return {**base, **extra}
        return base

    # public API ----------------------------------------------------------------------------

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        response_type: type[T],
        route: str | None = ...,
        scope: str | None = ...,
        idempotent: bool | None = ...,
        timeout: float | aiohttp.ClientTimeout | Timeout | None = ...,  # noqa: ASYNC109
        retry: RetryPolicy | None = ...,
        headers: Mapping[str, str] | None = ...,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        response_type: None = ...,
        route: str | None = ...,
        scope: str | None = ...,
        idempotent: bool | None = ...,
        timeout: float | aiohttp.ClientTimeout | Timeout | None = ...,  # noqa: ASYNC109
        retry: RetryPolicy | None = ...,
        headers: Mapping[str, str] | None = ...,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        response_type: type[T] | None = None,
        route: str | None = None,
        scope: str | None = None,
        idempotent: bool | None = None,
        timeout: float | aiohttp.ClientTimeout | Timeout | None = None,  # noqa: ASYNC109
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T | Any:
        """Send a request; return the decoded 2xx body (``response_type`` or plain JSON).

        Raises an :class:`APIStatusError` subclass for a non-2xx answer (after retries),
        :class:`APIConnectionError`/:class:`APITimeoutError` for transport failures.
        """
        method = method.upper()
        status, body, _resp, _slot = await self._send(
            method, path, params, json, route, scope, idempotent, timeout, retry, headers,
            authenticate=True, streaming=False,
        )  # fmt: skip
        return self._decode(body, response_type, method, path, status)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        route: str | None = None,
        scope: str | None = None,
        idempotent: bool | None = None,
        timeout: float | aiohttp.ClientTimeout | Timeout | None = None,  # noqa: ASYNC109
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``async with transport.stream("GET", path) as resp:`` read a 2xx response yourself.

        Auth, limiter, retries (until the first byte) and error mapping are the same as for
        :meth:`request`; the limiter slot is held until the block exits. Without a per-call
        ``timeout`` a stream has no total timeout, only per-read and connect timeouts.
        """
        method = method.upper()
        _status, _body, resp, slot = await self._send(
            method, path, params, json, route, scope, idempotent, timeout, retry, headers,
            authenticate=True, streaming=True,
        )  # fmt: skip
        assert resp is not None and slot is not None
        outcome = "ok"
        label = route or path
        try:
            yield resp
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except TimeoutError as exc:  # a read of the body timed out
            outcome = "error"
            raise APITimeoutError(
                f"{method} {label}: timed out reading the response ({_describe(exc)})",
                method=method,
                path=path,
            ) from exc
        except aiohttp.ClientError as exc:  # the connection dropped mid-body
            outcome = "error"
            raise APIConnectionError(
                f"{method} {label}: connection failed while reading the response "
                f"({_describe(exc)})",
                method=method,
                path=path,
            ) from exc
        except BaseException:
            outcome = "error"
            raise
        finally:
            resp.release()
            slot[0].release(slot[1], outcome=outcome)

    async def login(self, body: Mapping[str, str]) -> Any:
        """``POST /v1/auth/login`` without an Authorization header (JWT mode)."""
        _status, raw, _, _ = await self._send(
            "POST", "/v1/auth/login", None, dict(body), "/v1/auth/login", "write", True,
            None, None, None, authenticate=False, streaming=False,
        )  # fmt: skip
        return self._decode(raw, None, "POST", "/v1/auth/login", 200)

    # internals -----------------------------------------------------------------------------

    def _decode(
        self, body: bytes | None, response_type: Any, method: str, path: str, status: int
    ) -> Any:
        try:
            if response_type is None:
                if not body or not body.strip():
                    return None
                return _any_decoder.decode(body)
            return decoder_for(response_type).decode(body if body and body.strip() else b"{}")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            snippet = _readable_text(body or b"", 120)
            raise ResponseDecodeError(
                f"{method} {path}: HTTP {status} body could not be decoded ({exc}); "
                f"body starts: {snippet!r}",
                method=method,
                path=path,
                status=status,
            ) from None

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        route: str | None,
        scope: str | None,
        idempotent: bool | None,
        timeout: float | aiohttp.ClientTimeout | Timeout | None,  # noqa: ASYNC109
        retry: RetryPolicy | None,
        extra_headers: Mapping[str, str] | None,
        *,
        authenticate: bool,
        streaming: bool,
    ) -> tuple[int, bytes | None, aiohttp.ClientResponse | None, tuple[ScopeLimiter, int] | None]:
        query = encode_query(params) if params else ""
        url = URL(
            f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}", encoded=True
        )
        if json is not None:
            data: bytes | None = encode_json(json)
        elif method in BODY_METHODS:
            data = _EMPTY_BODY
        else:
            data = None
        sl = self.limiter.scope(scope or ("read" if method in READ_METHODS else "write"))
        policy = retry if retry is not None else self.retry
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if timeout is None:
            client_timeout = self._stream_timeout if streaming else self._client_timeout
        else:
            client_timeout = _as_client_timeout(timeout, self.timeout.connect)
        auth = self.auth
        session = self.session
        deadline = policy.deadline
        log_debug = logger.isEnabledFor(logging.DEBUG)
        label = route or path
        started = time.monotonic()
        waits: Iterator[float] | None = None
        attempt = 0
        replayed_auth = False

        while True:
            attempt += 1
            auth_header: str | None = None
            if authenticate:
                if auth.needs_login:
                    await auth.refresh(None)
                auth_header = auth.header
            hdrs = self._headers(auth_header, data is not None, extra_headers)
            attempt_timeout = client_timeout
            if deadline is not None:
                remaining = deadline - (time.monotonic() - started)
                if remaining <= 0:
                    remaining = 0.001
                if client_timeout.total is None or remaining < client_timeout.total:
                    attempt_timeout = aiohttp.ClientTimeout(
                        total=remaining,
                        connect=client_timeout.connect,
                        sock_read=client_timeout.sock_read,
                        sock_connect=client_timeout.sock_connect,
                    )

            ticket = await sl.acquire()
            t0 = time.perf_counter()
            error: LightningError | None = None
            retry_after: float | None = None
            sent = True  # may the server have seen (part of) the request?
            status = 0
            resp: aiohttp.ClientResponse | None = None
            try:
                if attempt_timeout is self._session_timeout:
                    resp = await session.request(method, url, data=data, headers=hdrs)
                else:
                    resp = await session.request(
                        method, url, data=data, headers=hdrs, timeout=attempt_timeout
                    )
                status = resp.status
                if 200 <= status < 300:
                    if streaming:
                        body = None
                    else:
                        body = await resp.read()
                        resp.release()
                else:
                    body = await resp.read()
                    resp.release()
            except asyncio.CancelledError:
                if resp is not None:
                    resp.close()
                sl.release(ticket, outcome="cancelled")
                raise
            except aiohttp.ConnectionTimeoutError as exc:
                sent = False
                error = APITimeoutError(
                    f"{method} {label}: timed out connecting ({_describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except TimeoutError as exc:  # total / sock_read timeouts
                if resp is not None:
                    resp.close()
                status = 0  # a status line may have arrived before the body timed out
                error = APITimeoutError(
                    f"{method} {label}: timed out ({_describe(exc)})", method=method, path=path
                )
                error.__cause__ = exc
            except aiohttp.InvalidURL as exc:
                sl.release(ticket, outcome="error")
                raise APIConnectionError(
                    f"{method} {label}: invalid URL ({_describe(exc)})", method=method, path=path
                ) from None
            except aiohttp.ClientConnectorError as exc:
                sent = False
                error = APIConnectionError(
                    f"{method} {label}: could not connect ({_describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except (aiohttp.ClientError, OSError) as exc:
                if resp is not None:
                    resp.close()
                status = 0
                error = APIConnectionError(
                    f"{method} {label}: connection failed ({_describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except BaseException:
                if resp is not None:
                    resp.close()
                sl.release(ticket, outcome="error")
                raise

            elapsed_ms = (time.perf_counter() - t0) * 1000.0
            if error is None:
                assert resp is not None
                if 200 <= status < 300:
                    if not streaming:
                        sl.release(ticket)
                    if log_debug:
                        logger.debug(
                            "%s %s -> %d (attempt %d, %.1f ms)",
                            method, label, status, attempt, elapsed_ms,
                        )  # fmt: skip
                    return status, body, resp, ((sl, ticket) if streaming else None)
                # non-2xx
                if status == 401 and authenticate and auth.refreshable and not replayed_auth:
                    sl.release(ticket, outcome="neutral")
                    if log_debug:
                        logger.debug(
                            "%s %s -> 401 (attempt %d, %.1f ms); renewing the token",
                            method, label, attempt, elapsed_ms,
                        )  # fmt: skip
                    replayed_auth = True
                    if await auth.refresh(auth_header):
                        attempt -= 1  # the replay is not a retry
                        continue
                if status in THROTTLE_STATUSES or status == 408:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                error = build_status_error(
                    status, resp.reason, body or b"", method=method, path=path,
                    retry_after=retry_after,
                )  # fmt: skip
                if status in THROTTLE_STATUSES:
                    sl.release(
                        ticket,
                        outcome="throttled",
                        retry_after=policy.retry_after_wait(retry_after),
                    )
                elif status >= 500:
                    sl.release(ticket, outcome="error")
                else:
                    sl.release(ticket, outcome="neutral")
            else:
                sl.release(ticket, outcome="error")

            if log_debug:
                logger.debug(
                    "%s %s -> %s (attempt %d, %.1f ms)",
                    method, label, status or type(error).__name__, attempt, elapsed_ms,
                )  # fmt: skip

            # --- retry decision -------------------------------------------------------------
            if attempt >= policy.max_attempts or not _retryable(
                policy, error, status, sent, idempotent
            ):
                raise error
            wait = policy.retry_after_wait(retry_after)
            if wait is None:
                if waits is None:
                    waits = policy.waits()
                wait = next(waits)
            if deadline is not None and time.monotonic() - started + wait >= deadline:
                logger.warning(
                    "giving up on %s %s after %d attempt(s): the next retry would pass the "
                    "%.1f s deadline (%s)",
                    method, label, attempt, deadline, _short(error),
                )  # fmt: skip
                raise error
            logger.warning(
                "retrying %s %s in %.2f s (attempt %d/%d failed: %s)",
                method, label, wait, attempt, policy.max_attempts, _short(error),
            )  # fmt: skip
            sl.note_retry()
            if wait > 0:
                await policy.sleep(wait)


def _short(error: LightningError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status}" + (
            f" retry-after {error.retry_after:g}s"
            if isinstance(error, RateLimitError) and error.retry_after is not None
            else ""
        )
    return type(error).__name__


def _retryable(
    policy: RetryPolicy, error: LightningError, status: int, sent: bool, idempotent: bool
) -> bool:
    if status:
        if status not in policy.retry_statuses:
            return False
        return idempotent or policy.retry_non_idempotent or status in _NOT_PROCESSED_STATUSES
    if isinstance(error, APITimeoutError):
        if not policy.retry_timeouts:
            return False
    elif not policy.retry_connection_errors:
        return False
    return not sent or idempotent or policy.retry_non_idempotent
