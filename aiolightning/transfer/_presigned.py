"""Requests to presigned object-store URLs: their own session, never the Lightning
``Authorization`` header, one limiter slot of the "data" scope per attempt."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from yarl import URL

from .._transport._network import NetworkConfig
from .._transport._redirects import redact_url
from .._transport._tls import tls_error
from ._etags import encryption

if TYPE_CHECKING:
    from .._limiter import Limiter

__all__ = ["PresignedSession", "PutResult", "url_expiry"]

_FORBIDDEN = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class PutResult:
    status: int
    etag: str
    body: bytes  # the start of an error body
    retry_after: str | None
    encryption: str = ""  # what keeps the ETag from being an MD5 (see _etags.encryption)


def url_expiry(url: str) -> float | None:
    """When a presigned URL expires (epoch seconds), if its query says so: ``Expires``
    (S3 SigV2, the emulator), ``X-Amz-Date`` + ``X-Amz-Expires`` (SigV4) or the
    ``X-Goog-`` equivalents. None when unknown."""
    try:
        q = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    try:
        if "Expires" in q:
            return float(q["Expires"][0])
        for prefix in ("X-Amz-", "X-Goog-"):
            if prefix + "Date" in q and prefix + "Expires" in q:
                start = datetime.strptime(q[prefix + "Date"][0], "%Y%m%dT%H%M%SZ")
                return start.replace(tzinfo=UTC).timestamp() + float(q[prefix + "Expires"][0])
    except (ValueError, IndexError):
        return None
    return None


def expires_soon(url: str, margin: float) -> bool:
    exp = url_expiry(url)
    return exp is not None and exp - time.time() < margin


def safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The URL descriptor's headers minus anything carrying credentials."""
    if not headers:
        return {}
    return {str(k): str(v) for k, v in headers.items() if str(k).lower() not in _FORBIDDEN}


class PresignedSession:
    """A plain aiohttp session (no default headers) sharing the client's connector.

    Reference counted: ``async with presigned.use() as http`` opens it for the first user and
    closes it after the last one, so there is nothing to close at client shutdown.
    """

    def __init__(
        self,
        connector: aiohttp.BaseConnector | None,
        limiter: Limiter,
        *,
        network: NetworkConfig | None = None,
        read_bufsize: int = 4 * 1024 * 1024,
        connect_timeout: float = 30.0,
        read_timeout: float = 120.0,
    ) -> None:
        self._connector = connector
        self.limiter = limiter
        #: proxies (and, for a connector of its own, TLS) of the presigned requests
        self.network = network if network is not None else NetworkConfig()
        self._read_bufsize = read_bufsize
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._users = 0

    @asynccontextmanager
    async def use(self) -> AsyncIterator[PresignedSession]:
        if self._session is None or self._session.closed:
            connector = self._connector
            self._session = self.network.session(
                connector if connector is not None else self.network.connector(),
                owner=connector is None,
                timeout=self._timeout,
                read_bufsize=self._read_bufsize,
                auto_decompress=False,
            )
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0 and self._session is not None:
                session, self._session = self._session, None
                await session.close()

    @asynccontextmanager
    async def request(
        self, method: str, url: URL, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``async with presigned.request("GET", url, headers=...) as resp``, through the
        proxy chosen for ``url``, redirects not followed; a certificate that fails
        verification raises :class:`~aiolightning.TLSVerificationError` (never retried)."""
        assert self._session is not None, "use() the PresignedSession first"
        try:
            resp = await self._session.request(
                method, url, proxy=self.network.proxy_for(url), allow_redirects=False, **kwargs
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise tls_error(
                exc, f"{method} {redact_url(url)}", method=method, source=self.network.ssl_source
            ) from exc
        async with resp:
            yield resp

    async def put(
        self,
        url: str,
        data: bytes | AsyncIterator[bytes],
        headers: Mapping[str, str] | None,
        *,
        length: int | None = None,
    ) -> PutResult:
        """PUT ``data`` (bytes, or an async iterator of ``length`` bytes in total, sent with
        a Content-Length, never chunked); return the status and ETag. Network errors
        propagate as aiohttp/OS exceptions."""
        hdrs = safe_headers(headers)
        if not isinstance(data, bytes):
            assert length is not None, "a streamed body needs its length"
            hdrs["Content-Length"] = str(length)
        target = URL(url)
        async with self.limiter.slot("data") as slot:
            async with self.request("PUT", target, data=data, headers=hdrs) as resp:
                if resp.status in (429, 503):
                    slot.throttle(None)
                elif resp.status >= 400:
                    slot.fail()
                body = await resp.content.read(2048) if resp.status >= 300 else b""
                return PutResult(
                    resp.status,
                    resp.headers.get("ETag", ""),
                    body,
                    resp.headers.get("Retry-After"),
                    encryption(resp.headers),
                )
