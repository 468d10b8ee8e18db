"""The transport's settings and aiohttp session: ownership, closing, derived copies, headers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Final, Self

import aiohttp
from yarl import URL

from .._auth import Auth, StaticAuth
from .._errors import LightningError
from .._limiter import Limiter
from .._retry import RetryPolicy
from .._version import __version__
from ._network import NetworkConfig, environment_proxies
from ._timeout import Timeout

__all__ = ["DEFAULT_READ_BUFSIZE", "USER_AGENT", "SessionOwner"]

USER_AGENT: Final = f"aiolightning/{__version__}"
#: aiohttp read buffer; 4 MiB made single-stream downloads ~28% faster than 64 KiB
DEFAULT_READ_BUFSIZE: Final = 4 * 1024 * 1024


class SessionOwner:
    """Owns (or borrows) the aiohttp session, and holds the settings every request uses;
    :class:`~aiolightning._transport.Transport` builds on it."""

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
        network: NetworkConfig | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: proxies and TLS of the sessions this transport builds (not of a caller's session)
        self.network = network if network is not None else NetworkConfig()
        self._own_network = session is None
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
        self._parent: SessionOwner | None = None
        #: the event loop the session was first used on (sessions and locks are bound to it)
        self._loop: asyncio.AbstractEventLoop | None = None

    # session -------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use). It carries no Authorization header:
        the transfer engine may use it for presigned URLs."""
        if self._loop is not None:
            self._check_loop()
        if self._session is None:
            if self._closed:
                raise LightningError("the client is closed")
            if self._parent is not None:
                return self._parent.session
            connector = self.network.connector(
                limit=self._connector_limit, limit_per_host=self._connector_limit_per_host
            )
            self._session = self.network.session(
                connector,
                owner=True,
                timeout=self._client_timeout,
                trace_configs=self._trace_configs or None,
                read_bufsize=self._read_bufsize,
                headers={"User-Agent": self._base_headers["User-Agent"]},
            )
        if self._loop is None and self._parent is None:
            self._loop = _running_loop()
        return self._session

    def _check_loop(self) -> None:
        """Refuse a use on another event loop than the first, saying why and what to do (not
        aiohttp's ``Event loop is closed`` from deep inside a request)."""
        loop = _running_loop()
        first = self._loop
        if loop is None or loop is first or first is None:
            return
        how = (
            "which is now closed (two asyncio.run() calls?)"
            if first.is_closed()
            else "which is still open (another thread's loop?)"
        )
        raise RuntimeError(
            f"this AsyncLightning client was first used on another event loop, {how}; a client "
            "belongs to the loop it first ran on (its connections and locks live there). "
            "Create the client inside the coroutine that asyncio.run() runs "
            "(`async with AsyncLightning(...) as client:`), one per loop, or use "
            "aiolightning.Lightning, which runs its own loop, from synchronous code"
        )

    @property
    def owns_session(self) -> bool:
        return self._owns_session

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the session if this transport created it (a borrowed one stays open; also
        from another loop once the first has closed), and the limiter's link to a shared
        Redis (not from a ``with_options`` copy)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()
        if self._parent is None:
            await self.limiter.aclose()

    def with_options(
        self,
        *,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
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

    def _proxy_for(self, url: URL) -> URL | None:
        """The proxy for a request to ``url``; None leaves the choice to the session (a
        caller's session keeps its own proxy settings)."""
        return self.network.proxy_for(url) if self._own_network else None

    def storage_network(self, proxy: str | None = None) -> NetworkConfig:
        """The network settings of presigned storage requests: this transport's (or, on a
        caller's session, that session's choice of the environment's proxies), with
        ``proxy`` instead when given (``TransferConfig.proxy``)."""
        if self._own_network:
            net = self.network
        else:
            trust_env = self.session.trust_env
            net = NetworkConfig(env_proxies=environment_proxies() if trust_env else {})
        return net.with_proxy(proxy)

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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
