"""The send loop: one request's attempts through auth, limiter slot, aiohttp, errors and retries.

auth → limiter slot → send (aiohttp) → map status to a typed error → retry (backoff
waits, Retry-After, deadline); the caller decodes the body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from yarl import URL

from .. import _crash as crash
from .._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LightningError,
    RateLimitError,
    RedirectRefusedError,
)
from .._hooks import NO_HOOKS, Hooks, RetryEvent, ThrottleEvent
from .._retry import RetryPolicy, parse_retry_after
from ._encoding import encode_json, encode_query
from ._redirects import request_following
from ._session import SessionOwner
from ._status_error import build_status_error, describe
from ._timeout import Timeout, as_client_timeout
from ._tls import tls_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._limiter import ScopeLimiter

__all__ = ["Sender"]

logger = logging.getLogger("aiolightning")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: statuses that may carry a ``Retry-After`` (read from the answer)
RETRY_AFTER_STATUSES: Final = frozenset({408, 429, 503})
#: whether a 503 without ``Retry-After`` counts as a throttle (it does not: a proxy or a
#: failing backend answers so, not the service's rate limiter; benchmarks flip it to show
#: the old behaviour)
BARE_503_THROTTLES = False


def is_throttle(status: int, retry_after: float | None) -> bool:
    """Does this answer mean "slow down" (AIMD decrease, adaptive rate, pause gate)?

    A 429 always; a 503 only with ``Retry-After``. Any other 5xx is an error: retried, but
    the scope's rate is left alone.
    """
    if status == 429:
        return True
    return status == 503 and (retry_after is not None or BARE_503_THROTTLES)


def not_processed(status: int, retry_after: float | None) -> bool:
    """Did the server certainly not act on a request answered ``status``? 408 and 429 say
    so, and a 503 with ``Retry-After`` (the service shedding load); a 500/502/504, or a 503
    without ``Retry-After`` (what a proxy sends when the backend failed, perhaps after it
    acted), leave it open."""
    return status in (408, 429) or (status == 503 and retry_after is not None)


_EMPTY_BODY: Final = b"{}"


class Sender(SessionOwner):
    """Sends one request, attempt after attempt; :class:`~aiolightning._transport.Transport`
    builds its public methods on :meth:`_send`."""

    hooks: Hooks = NO_HOOKS  # AsyncLightning(hooks=...) sets the client's own

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
            client_timeout = as_client_timeout(timeout, self.timeout.connect)
        auth = self.auth
        session = self.session
        deadline = policy.deadline
        log_debug = logger.isEnabledFor(logging.DEBUG)
        # route_label(route, path), inlined: this runs once per request
        label = (
            path
            if route is None or ((path[-1:] == "/" or "//" in path) and route[-1:] != "/")
            else route
        )
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
                resp = await request_following(
                    session, method, url, data, hdrs, self._proxy_for,
                    **({} if attempt_timeout is self._session_timeout else {"timeout": attempt_timeout}),
                )  # fmt: skip
                status = resp.status
                if crash.ARMED:
                    crash.after_act(method)
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
                    f"{method} {label}: timed out connecting ({describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except TimeoutError as exc:  # total / sock_read timeouts
                if resp is not None:
                    resp.close()
                status = 0  # a status line may have arrived before the body timed out
                error = APITimeoutError(
                    f"{method} {label}: timed out ({describe(exc)})", method=method, path=path
                )
                error.__cause__ = exc
            except aiohttp.InvalidURL as exc:
                sl.release(ticket, outcome="error")
                raise APIConnectionError(
                    f"{method} {label}: invalid URL ({describe(exc)})", method=method, path=path
                ) from None
            except aiohttp.ClientConnectorCertificateError as exc:
                # a configuration problem, not a flaky network: never retried
                sl.release(ticket, outcome="neutral")
                raise tls_error(
                    exc, f"{method} {label}", method=method, path=path,
                    source=self.network.ssl_source if self._own_network else "the session's settings",
                ) from exc  # fmt: skip
            except aiohttp.ClientConnectorError as exc:
                sent = False
                error = APIConnectionError(
                    f"{method} {label}: could not connect ({describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except (aiohttp.ClientError, OSError) as exc:
                if resp is not None:
                    resp.close()
                status = 0
                error = APIConnectionError(
                    f"{method} {label}: connection failed ({describe(exc)})",
                    method=method,
                    path=path,
                )
                error.__cause__ = exc
            except RedirectRefusedError:
                sl.release(ticket, outcome="neutral")
                raise
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
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                error = build_status_error(
                    status, resp.reason, body or b"", method=method, path=path,
                    retry_after=retry_after,
                )  # fmt: skip
                error.headers = resp.headers
                if is_throttle(status, retry_after):
                    sl.release(
                        ticket,
                        outcome="throttled",
                        retry_after=policy.retry_after_wait(retry_after),
                    )
                    if self.hooks.on_throttle:
                        await self.hooks.throttled(ThrottleEvent(
                            method, label, attempt, status, retry_after,
                            policy.retry_after_wait(retry_after), sl.name, _short(error),
                        ))  # fmt: skip
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
                policy, error, status, sent, idempotent, retry_after
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
            if self.hooks.on_retry:
                await self.hooks.retried(RetryEvent(
                    method, label, attempt, policy.max_attempts, wait, _short(error),
                    status or None, error,
                ))  # fmt: skip
            if wait > 0:
                await policy.sleep(wait)


def route_label(route: str | None, path: str) -> str:
    """The route named in logs and errors: its template, unless an empty path parameter made
    the request another route (``/v1/orgs/{id}`` sent as ``/v1/orgs/?name=...``): then the
    path itself, which then holds no id."""
    if route is None or ((path[-1:] == "/" or "//" in path) and route[-1:] != "/"):
        return path
    return route


def _short(error: LightningError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status}" + (
            f" retry-after {error.retry_after:g}s"
            if isinstance(error, RateLimitError) and error.retry_after is not None
            else ""
        )
    return type(error).__name__


def _retryable(
    policy: RetryPolicy,
    error: LightningError,
    status: int,
    sent: bool,
    idempotent: bool,
    retry_after: float | None,
) -> bool:
    """May this failed attempt be sent again? A status must be in ``retry_statuses``, a
    timeout or a lost connection needs ``retry_timeouts`` / ``retry_connection_errors``;
    then an attempt the server certainly did not act on (see :func:`not_processed`; a
    connection refused before sending) is always re-sent, an ambiguous one only for an
    idempotent method with ``resend_ambiguous`` or with ``retry_non_idempotent``."""
    resend = (idempotent and policy.resend_ambiguous) or policy.retry_non_idempotent
    if status:
        if status not in policy.retry_statuses:
            return False
        return resend or not_processed(status, retry_after)
    if isinstance(error, APITimeoutError):
        if not policy.retry_timeouts:
            return False
    elif not policy.retry_connection_errors:
        return False
    return not sent or resend
