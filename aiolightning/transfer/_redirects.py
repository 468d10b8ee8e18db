"""Blob GETs that the service answers with a redirect to a presigned URL (wire-flows §6.5).

``GET <base>/blobs/<path>`` may answer 200 with the bytes or redirect to a presigned
object-store URL. The transport follows the redirect (a GET may go to another origin) and
drops the Lightning ``Authorization`` header on the way (``requests`` does the same for the
SDK).
A ranged download asks for many ranges of one file, so the presigned URL it was sent to is
remembered and the next ranges go straight there, on the presigned session (no Lightning
headers), until the URL is about to expire (its query says when) or the object store
refuses it (401/403); then one request goes back to the API for a fresh ``Location`` while
the other ranges of that file wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from .._errors import error_for_status
from ._presigned import PresignedSession, expires_soon, safe_headers

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["DownloadLocations"]

_MARGIN = 2.0  # seconds: a URL closer than this to its expiry is not used again
_MAX_FILES = 1024  # files whose redirect target is remembered (least recently used dropped)


@dataclass
class _Entry:
    location: URL | None = None  # where the last GET of this blob was redirected to
    direct: bool = False  # the last GET answered with the bytes itself (no redirect)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def usable(self) -> URL | None:
        loc = self.location
        if loc is not None and expires_soon(str(loc), _MARGIN):
            self.location = loc = None
        return loc


class DownloadLocations:
    """Opens blob GETs, following and remembering redirects to presigned URLs (per file)."""

    def __init__(self, transport: Transport, presigned: PresignedSession) -> None:
        self.transport = transport
        self.presigned = presigned
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._api_origin: URL | None = None

    def location(self, blob_url: str) -> URL | None:
        """The presigned URL remembered for ``blob_url`` (None when none is usable)."""
        entry = self._entries.get(blob_url)
        return None if entry is None else entry.usable()

    def saw_head(self, blob_url: str, resp: aiohttp.ClientResponse) -> None:
        """A HEAD of the blob answered without a redirect: its GETs most likely will too, so
        the ranges of the download that follows need not wait for the first one's answer."""
        if resp.url == self._api_url(blob_url):
            entry = self._entry(blob_url)
            if entry.location is None:
                entry.direct = True

    def _entry(self, blob_url: str) -> _Entry:
        entry = self._entries.get(blob_url)
        if entry is None:
            entry = self._entries[blob_url] = _Entry()
            if len(self._entries) > _MAX_FILES:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(blob_url)
        return entry

    @asynccontextmanager
    async def open(
        self, blob_url: str, route: str, headers: Mapping[str, str] | None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``async with locations.open(path, route, {"Range": ...}) as resp``: a 2xx response
        with the bytes, from the remembered presigned URL or through the API.

        Errors: non-2xx answers raise the :class:`APIStatusError` of their status; network
        failures propagate as aiohttp/OS errors (the caller retries both as it sees fit).
        """
        entry = self._entry(blob_url)
        async with AsyncExitStack() as stack:
            resp = None
            loc = entry.usable()
            if loc is not None:
                resp = await self._try_presigned(stack, entry, loc, headers)
            if resp is None:
                if entry.direct:  # nothing to learn: no need to queue behind each other
                    resp = await self._via_api(stack, entry, blob_url, route, headers)
                else:
                    async with entry.lock:  # one request asks the API; the others wait
                        loc = entry.usable()
                        if loc is not None:
                            resp = await self._try_presigned(stack, entry, loc, headers)
                        if resp is None:
                            resp = await self._via_api(stack, entry, blob_url, route, headers)
            yield resp

    async def _via_api(
        self,
        stack: AsyncExitStack,
        entry: _Entry,
        blob_url: str,
        route: str,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        resp = await stack.enter_async_context(
            self.transport.stream("GET", blob_url, scope="data", route=route, headers=headers)
        )
        if resp.url.origin() != self._origin():
            # Redirected to another origin (without Authorization, see
            # aiolightning._transport._redirects): a presigned URL that the next ranges of
            # this file can use directly.
            entry.location, entry.direct = resp.url, False
        elif resp.url == self._api_url(blob_url):  # not redirected
            entry.location, entry.direct = None, True
        return resp

    def _origin(self) -> URL:
        if self._api_origin is None:
            self._api_origin = URL(self.transport.base_url).origin()
        return self._api_origin

    def _api_url(self, blob_url: str) -> URL:
        """The URL the transport sends a request for ``blob_url`` to."""
        return URL(f"{self.transport.base_url}{blob_url}", encoded=True)

    async def _try_presigned(
        self,
        stack: AsyncExitStack,
        entry: _Entry,
        loc: URL,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse | None:
        """GET the remembered URL; None (and the URL forgotten) if the store refuses it."""
        inner = AsyncExitStack()
        try:
            await inner.enter_async_context(self.presigned.use())
            slot = await inner.enter_async_context(self.presigned.limiter.slot("data"))
            resp = await inner.enter_async_context(
                self.presigned.request("GET", loc, headers=safe_headers(headers))
            )
            status = resp.status
            if status in (401, 403):  # expired early, or revoked: ask the API again
                if entry.location == loc:
                    entry.location = None
                await inner.aclose()
                return None
            if not 200 <= status < 300:
                if status in (429, 503):
                    slot.throttle(None)
                else:
                    slot.fail()
                body = b""
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    body = await resp.content.read(512)
                text = body.decode("utf-8", "replace").strip()
                raise error_for_status(status)(
                    status,
                    f"the presigned download URL answered {status}" + (f": {text}" if text else ""),
                    method="GET",
                    path=str(loc.with_query(None)),
                    body=body,
                )
        except BaseException as e:
            await inner.__aexit__(type(e), e, e.__traceback__)
            raise
        stack.push_async_exit(inner)
        return resp
