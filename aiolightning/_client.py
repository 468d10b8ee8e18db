"""AsyncLightning: the client object users hold."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from ._auth import AuthMode, Credentials, make_auth, resolve_credentials
from ._errors import InvalidArgumentError
from ._hooks import Hooks
from ._limiter import Limiter, LimiterConfig
from ._retry import RetryPolicy
from ._transport import DEFAULT_READ_BUFSIZE, USER_AGENT, Timeout, Transport
from ._transport._network import NetworkConfig
from ._transport._tls import Verify

if TYPE_CHECKING:
    from .api import Api
    from .resources.deployments import Deployments
    from .resources.jobs import Jobs
    from .resources.machines import Machines
    from .resources.storage import Storage
    from .resources.studios import Studios
    from .resources.teamspaces import Teamspaces

__all__ = ["DEFAULT_BASE_URL", "AsyncLightning"]

DEFAULT_BASE_URL = "https://lightning.ai"
ENV_BASE_URL = "LIGHTNING_CLOUD_URL"
ENV_TEAMSPACE = "LIGHTNING_TEAMSPACE"
ENV_CONNECT_TIMEOUT = "LIGHTNING_CLOUD_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "LIGHTNING_CLOUD_READ_TIMEOUT"


def resolve_base_url(base_url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The argument, else ``LIGHTNING_CLOUD_URL``, else https://lightning.ai; no trailing /.

    A malformed URL is an InvalidArgumentError naming where it came from."""
    env = os.environ if env is None else env
    source = "base_url" if base_url else ENV_BASE_URL if env.get(ENV_BASE_URL) else "default"
    url = (base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL).strip().rstrip("/")
    problem = None
    try:
        parsed = URL(url)
    except ValueError as exc:
        problem = str(exc)
    else:
        if parsed.scheme not in ("http", "https") or not parsed.host:
            problem = "it needs http:// or https:// and a host"
        elif parsed.user is not None or parsed.password is not None:
            problem = "it must not carry user info (pass credentials as api_key= etc.)"
        elif parsed.query_string or parsed.fragment:
            problem = "it must not have a query string or fragment"
    if problem is not None:
        shown = url if "@" not in url else "<hidden: the URL holds user info>"
        raise InvalidArgumentError(
            f"invalid service URL {shown!r} (from {source}): {problem}; expected e.g. "
            "https://lightning.ai or http://127.0.0.1:8123 (IPv6 in brackets: http://[::1]:8123)"
        )
    return url


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def default_timeout() -> Timeout:
    """connect 10 s, total 60 s per attempt; ``LIGHTNING_CLOUD_CONNECT_TIMEOUT`` and
    ``LIGHTNING_CLOUD_READ_TIMEOUT`` (per socket read) override."""
    connect = _env_float(ENV_CONNECT_TIMEOUT)
    read = _env_float(ENV_READ_TIMEOUT)
    return Timeout(total=60.0, connect=10.0 if connect is None else connect, read=read)


class AsyncLightning:
    """The asyncio Lightning AI client.

    ::

        async with AsyncLightning() as client:
            me = await client.api.auth.get_user()

    Args:
        base_url: API host; default ``LIGHTNING_CLOUD_URL`` or https://lightning.ai.
        user_id, api_key, auth_token, username, credentials_path: credentials (see
            :func:`aiolightning._auth.resolve_credentials` for the precedence).
        auth: "basic" (default; Basic for user id + key, Bearer for a token), "bearer",
            "jwt" (log in with ``POST /v1/auth/login`` and renew on 401) or "none".
        session: an aiohttp session you own; the client uses it and never closes it.
        connector_limit, connector_limit_per_host: pool limits of the client's own connector.
        timeout: per-attempt :class:`Timeout`; a number means a total timeout in seconds.
        retry: the default :class:`RetryPolicy` (per call: ``retry=``).
        limits: :class:`LimiterConfig` for the per-scope limiter.
        trace_configs: aiohttp ``TraceConfig`` objects for the client's own session.
        teamspace: default teamspace (name or id); else ``LIGHTNING_TEAMSPACE``.
        read_bufsize: aiohttp read buffer of the client's own session (4 MiB).
        headers: extra headers sent with every API request.
        proxy: a proxy URL for every request, API and storage
            (``http://user:password@proxy.example:3128``); by default the environment's
            ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (and lower-case forms) apply.
        verify: TLS verification: True (the default: ``LIGHTNING_CA_BUNDLE``, then
            ``REQUESTS_CA_BUNDLE``, then ``SSL_CERT_FILE``/``SSL_CERT_DIR``, else the
            system's trust store), a CA bundle path, an ``ssl.SSLContext``, or False (no
            verification; logs a WARNING).
        trust_env: False ignores the environment's proxy and CA-bundle variables.
        hooks: :class:`Hooks` called on every retry and every 429/503 (attempt, wait, reason).

        ``proxy``, ``verify`` and ``trust_env`` shape the sessions the client builds; with
        ``session=`` the caller's session keeps its own settings (storage requests then
        follow its ``proxy=``, else its ``trust_env``), so they cannot be combined with it.
        A session with a default proxy must not carry ``Authorization`` (or ``Cookie``)
        among its default headers: aiohttp sends those to the proxy too.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        user_id: str | None = None,
        api_key: str | None = None,
        auth_token: str | None = None,
        username: str | None = None,
        auth: AuthMode = "basic",
        credentials_path: str | os.PathLike[str] | None = None,
        session: aiohttp.ClientSession | None = None,
        connector_limit: int = 100,
        connector_limit_per_host: int = 0,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        limits: LimiterConfig | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        teamspace: str | None = None,
        read_bufsize: int = DEFAULT_READ_BUFSIZE,
        headers: Mapping[str, str] | None = None,
        user_agent: str = USER_AGENT,
        proxy: str | None = None,
        verify: Verify = True,
        trust_env: bool = True,
        hooks: Hooks | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        if session is not None:
            if proxy is not None or verify is not True:
                raise InvalidArgumentError(
                    "proxy= and verify= configure the sessions the client builds; with "
                    "session= configure that session (its connector's ssl=, trust_env, "
                    "proxy) instead"
                )
            network = NetworkConfig()
        else:
            network = NetworkConfig.build(proxy=proxy, verify=verify, trust_env=trust_env)
        self.default_teamspace: str | None = teamspace or os.environ.get(ENV_TEAMSPACE) or None
        if auth == "none":
            self.credentials: Credentials | None = None
        else:
            self.credentials = resolve_credentials(
                user_id=user_id,
                api_key=api_key,
                auth_token=auth_token,
                username=username,
                credentials_path=credentials_path,
            )
        if timeout is None:
            tmo = default_timeout()
        elif isinstance(timeout, Timeout):
            tmo = timeout
        else:
            tmo = Timeout(total=float(timeout))
        if session is not None:
            pool = getattr(session.connector, "limit", 0) or None
        else:
            pool = connector_limit or None
        limiter = Limiter(limits, pool_size=pool)
        self.transport = Transport(
            self.base_url,
            session=session,
            connector_limit=connector_limit,
            connector_limit_per_host=connector_limit_per_host,
            timeout=tmo,
            retry=retry or RetryPolicy(),
            limiter=limiter,
            trace_configs=tuple(trace_configs),
            read_bufsize=read_bufsize,
            user_agent=user_agent,
            headers=headers,
            network=network,
        )
        self.transport.auth = make_auth(auth, self.credentials, self.transport.login)
        if hooks is not None:
            self.transport.hooks = hooks
        self._api: Api | None = None
        self._teamspaces: Teamspaces | None = None
        self._machines: Machines | None = None
        self._studios: Studios | None = None
        self._jobs: Jobs | None = None
        self._deployments: Deployments | None = None
        self._storage: Storage | None = None

    # lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncLightning:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's own session (a session passed in stays open)."""
        await self.transport.close()

    @property
    def closed(self) -> bool:
        return self.transport.closed

    @property
    def limiter(self) -> Limiter:
        return self.transport.limiter

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.transport.session

    def with_options(
        self,
        *,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        teamspace: str | None = None,
    ) -> AsyncLightning:
        """A client sharing this one's session, credentials and limiter, with other defaults.

        ``client.with_options(retry=RetryPolicy.none(), timeout=5).api...``; closing the
        derived client closes nothing shared (close the original)."""
        clone = copy.copy(self)
        clone.transport = self.transport.with_options(timeout=timeout, retry=retry, headers=headers)
        if teamspace is not None:
            clone.default_teamspace = teamspace
        clone._api = clone._teamspaces = clone._machines = None
        clone._studios = clone._jobs = clone._deployments = clone._storage = None
        return clone

    def __repr__(self) -> str:
        who = self.credentials.user_id if self.credentials else None
        return (
            f"<AsyncLightning {self.base_url} user_id={who!r} auth={self.transport.auth!r}"
            f" teamspace={self.default_teamspace!r} {self.transport.network.describe()}>"
        )

    # lazy sub-objects ----------------------------------------------------------------------

    @property
    def api(self) -> Api:
        """The generated API: ``client.api.<group>.<operation>(...)``."""
        if self._api is None:
            from .api import Api

            self._api = Api(self.transport)
        return self._api

    @property
    def teamspaces(self) -> Teamspaces:
        if self._teamspaces is None:
            from .resources.teamspaces import Teamspaces

            self._teamspaces = Teamspaces(self)
        return self._teamspaces

    @property
    def machines(self) -> Machines:
        if self._machines is None:
            from .resources.machines import Machines

            self._machines = Machines(self)
        return self._machines

    @property
    def studios(self) -> Studios:
        if self._studios is None:
            from .resources.studios import Studios

            self._studios = Studios(self)
        return self._studios

    @property
    def jobs(self) -> Jobs:
        if self._jobs is None:
            from .resources.jobs import Jobs

            self._jobs = Jobs(self)
        return self._jobs

    @property
    def deployments(self) -> Deployments:
        if self._deployments is None:
            from .resources.deployments import Deployments

            self._deployments = Deployments(self)
        return self._deployments

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            from .resources.storage import Storage

            self._storage = Storage(self)
        return self._storage
