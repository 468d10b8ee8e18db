"""The ``Transport``: the request, stream and login methods every Lightning API call goes through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar, overload

import aiohttp
import msgspec

from .._errors import APIConnectionError, APITimeoutError, ResponseDecodeError
from .._raw import RAW_CAPTURE, RawResponse
from .._retry import RetryPolicy
from ._encoding import any_decoder, decoder_for
from ._send import Sender, route_label
from ._status_error import describe, readable_text
from ._timeout import Timeout

__all__ = ["Transport"]

T = TypeVar("T")


class Transport(Sender):
    """Owns (or borrows) the aiohttp session; sends every request of a client.

    Build it through :class:`aiolightning.AsyncLightning`; use it directly for raw calls:
    ``await client.transport.request("GET", "/v1/auth/whoami")``.
    """

    def __repr__(self) -> str:
        return f"<Transport {self.base_url} auth={self.auth!r}>"

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
        status, body, resp, _slot = await self._send(
            method, path, params, json, route, scope, idempotent, timeout, retry, headers,
            authenticate=True, streaming=False,
        )  # fmt: skip
        value = self._decode(body, response_type, method, path, status)
        sink = RAW_CAPTURE.get()
        if sink is not None and resp is not None:  # a with_raw_response call
            sink.append(
                RawResponse(status, resp.reason, resp.headers, method, str(resp.url), value)
            )
        return value

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
        label = route_label(route, path)
        try:
            yield resp
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except TimeoutError as exc:  # a read of the body timed out
            outcome = "error"
            raise APITimeoutError(
                f"{method} {label}: timed out reading the response ({describe(exc)})",
                method=method,
                path=path,
            ) from exc
        except aiohttp.ClientError as exc:  # the connection dropped mid-body
            outcome = "error"
            raise APIConnectionError(
                f"{method} {label}: connection failed while reading the response ({describe(exc)})",
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
                return any_decoder.decode(body)
            return decoder_for(response_type).decode(body if body and body.strip() else b"{}")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            snippet = readable_text(body or b"", 120)
            raise ResponseDecodeError(
                f"{method} {path}: HTTP {status} body could not be decoded ({exc}); "
                f"body starts: {snippet!r}",
                method=method,
                path=path,
                status=status,
            ) from None
