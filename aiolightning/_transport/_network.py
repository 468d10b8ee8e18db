"""NetworkConfig: the proxy and TLS settings every session the client owns is built from
(the API session and the presigned-storage session alike), and the one function that
builds those sessions.

Proxies: an explicit ``proxy=`` URL (credentials allowed: ``http://user:pass@host:3128``)
is used for every request; otherwise, unless ``trust_env=False``, the environment's
``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` (lower-case forms too, as
``urllib`` reads them) are read once, when the client is built, and applied per host.
They are resolved here rather than by aiohttp's ``trust_env``, which also reads ``~/.netrc``
on every request and would put its credentials on presigned storage URLs.

The proxy's password never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import logging
import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from .._errors import InvalidArgumentError
from ._redirects import redact_url
from ._tls import Verify, resolve_verify

logger = logging.getLogger("aiolightning")

__all__ = ["NetworkConfig", "check_proxy_url", "environment_proxies", "hide_password"]


def check_proxy_url(proxy: str | URL, source: str = "proxy=") -> URL:
    """``proxy`` as a URL, or an InvalidArgumentError that does not show its password."""
    try:
        url = URL(str(proxy).strip())
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        shown = hide_password(str(proxy))
        raise InvalidArgumentError(
            f"{source} must be an http:// or https:// proxy URL such as "
            f"http://user:password@proxy.example:3128, got {shown!r}"
        )
    return url


def hide_password(url: str | URL) -> str:
    """``url`` with its password (if any) shown as ``***``."""
    try:
        u = url if isinstance(url, URL) else URL(url)
    except ValueError:
        return "<not a valid URL>"
    if u.password is None and "@" in str(url):  # e.g. "user:secret@host:3128", no scheme
        return "***@" + str(url).rsplit("@", 1)[1]
    if u.password is not None:
        u = u.with_password("***")
    return str(u)


@dataclass(frozen=True, eq=False)
class NetworkConfig:
    """Proxies and TLS for the sessions a client owns.

    ``proxy``: the explicit proxy (or None); ``env_proxies``: the environment's, by scheme
    (with ``"no"``: the NO_PROXY list); ``ssl``: what aiohttp's connector gets (True: the
    system's trust store; False: no verification; or a context); ``ssl_source`` says where
    it came from (shown in TLS errors and reprs, never a secret).
    """

    proxy: URL | None = None
    env_proxies: Mapping[str, str] = field(default_factory=dict)
    ssl: ssl.SSLContext | bool = True
    ssl_source: str = "the system's trust store"
    _cache: dict[tuple[str, str, int | None], URL | None] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        *,
        proxy: str | URL | None = None,
        verify: Verify = True,
        trust_env: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> NetworkConfig:
        """Read the settings now (arguments first, then the environment)."""
        env = os.environ if env is None else env
        explicit = check_proxy_url(proxy) if proxy is not None and str(proxy) else None
        env_proxies = environment_proxies(env) if trust_env and explicit is None else {}
        ctx, source = resolve_verify(verify, env=env, trust_env=trust_env)
        return cls(proxy=explicit, env_proxies=env_proxies, ssl=ctx, ssl_source=source)

    def with_proxy(self, proxy: str | URL | None) -> NetworkConfig:
        """The same TLS settings with another explicit proxy (TransferConfig.proxy)."""
        if proxy is None or not str(proxy):
            return self
        return NetworkConfig(
            proxy=check_proxy_url(proxy, "TransferConfig.proxy"),
            ssl=self.ssl,
            ssl_source=self.ssl_source,
        )

    def proxy_for(self, url: URL) -> URL | None:
        """The proxy a request to ``url`` goes through (None: straight there)."""
        if self.proxy is not None:
            return self.proxy
        if not self.env_proxies:
            return None
        key = (url.scheme, url.host or "", url.port)
        try:
            return self._cache[key]
        except KeyError:
            pass
        chosen: URL | None = None
        value = self.env_proxies.get(url.scheme) or self.env_proxies.get("all")
        if value and not self._bypassed(url):
            chosen = URL(value)
        if len(self._cache) < 1024:
            self._cache[key] = chosen
        return chosen

    def _bypassed(self, url: URL) -> bool:
        no = self.env_proxies.get("no")
        return bool(no and url.host and no_proxy_matches(no, url.host, url.port))

    def connector(self, *, limit: int = 100, limit_per_host: int = 0) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300, ssl=self.ssl
        )

    def session(
        self, connector: aiohttp.BaseConnector | None, *, owner: bool, **kwargs: Any
    ) -> aiohttp.ClientSession:
        """A session on ``connector`` (closed with the session when ``owner``). Proxies are
        chosen per request (:meth:`proxy_for`): the session never reads the environment.

        aiohttp's silent re-send of an idempotent request whose reused connection dropped
        (perhaps after the server acted) is turned off: the retry policy and the resources'
        reconciles decide that, and count it."""
        session = aiohttp.ClientSession(
            connector=connector, connector_owner=owner, trust_env=False, **kwargs
        )
        session._retry_connection = False
        return session

    def describe(self) -> str:
        """Proxy and TLS settings in words, without secrets."""
        if self.proxy is not None:
            proxy = hide_password(self.proxy)
        elif self.env_proxies:
            shown = {k: (redact_url(v) if k != "no" else v) for k, v in self.env_proxies.items()}
            proxy = f"from the environment {shown}"
        else:
            proxy = "none"
        return f"proxy={proxy}, tls={self.ssl_source}"

    def __repr__(self) -> str:
        return f"<NetworkConfig {self.describe()}>"


def no_proxy_matches(no_proxy: str, host: str, port: int | None) -> bool:
    """Whether NO_PROXY (``*``, or comma-separated ``host``, ``.domain``, ``host:port``,
    IPv6 in brackets or not) exempts ``host``:``port``, as curl and ``urllib`` read it."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        want_port: int | None = None
        if entry.startswith("["):  # [::1] or [::1]:8080
            closing = entry.find("]")
            rest = entry[closing + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                want_port = int(rest[1:])
            entry = entry[1:closing]
        elif entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
            name, _, p = entry.partition(":")
            if p.isdigit():
                entry, want_port = name, int(p)
        if want_port is not None and want_port != port:
            continue
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def environment_proxies(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment's proxies by scheme ("http", "https", "all") and the NO_PROXY list
    ("no"), read as ``urllib`` reads them (the lower-case form wins); each checked."""
    env = os.environ if env is None else env
    if env is os.environ:
        found = urllib.request.getproxies_environment()
    else:
        found = {}
        for name, value in env.items():
            if value and name.lower().endswith("_proxy"):
                key = name[:-6].lower()
                if name[:-6] == key or key not in found:
                    found[key] = value
    proxies: dict[str, str] = {}
    for scheme, value in found.items():
        if scheme == "no":
            proxies["no"] = value
        elif scheme in ("http", "https"):
            check_proxy_url(value, f"the {scheme.upper()}_PROXY environment variable")
            proxies[scheme] = value
        elif scheme == "all":  # curl's; often socks://, which aiohttp cannot use
            try:
                proxies["all"] = str(check_proxy_url(value, "ALL_PROXY"))
            except InvalidArgumentError:
                logger.warning(
                    "ignoring ALL_PROXY=%s: only http:// and https:// proxies are supported "
                    "(set HTTPS_PROXY / HTTP_PROXY, or pass proxy=)",
                    hide_password(value),
                )
    return proxies
