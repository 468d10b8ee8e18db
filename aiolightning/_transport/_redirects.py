"""Redirects of API calls, followed one hop at a time: never from https to http, and never
with credentials (the Authorization header, a request body) to another origin.

aiohttp's own redirect handling drops ``Authorization`` across origins but sends the body
again on a 307/308, to any scheme: a JWT login (``{"username", "apiKey"}``) redirected to
``http://`` would go out in clear. So API requests are sent with ``allow_redirects=False``
and each redirect is checked here before the next hop:

* a target that is not http(s), carries user info, or goes from https to http is refused;
* within the API's origin, the request is repeated as is (303, and 301/302 after a POST,
  become a bodiless GET, as browsers and aiohttp do);
* to another origin, only a GET or HEAD is followed, without Authorization, Cookie or
  Proxy-Authorization (how blob GETs reach presigned storage URLs, wire-flows §6.5).

A refused redirect raises :class:`~aiolightning.RedirectRefusedError`, naming both URLs
without user info or query string (presigned URLs carry their signature in the query).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
from yarl import URL

from .._errors import RedirectRefusedError

__all__ = ["MAX_REDIRECTS", "REDIRECT_STATUSES", "next_hop", "redact_url", "request_following"]

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 10
#: headers that never go to another origin
CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_CROSS_ORIGIN_METHODS: Final = frozenset({"GET", "HEAD"})

Hop = tuple[str, bytes | None, Mapping[str, str]]


def redact_url(url: URL | str) -> str:
    """``url`` without user info, query string or fragment: safe for messages and logs."""
    u = url if isinstance(url, URL) else URL(url)
    try:
        return str(u.with_user(None).with_query(None).with_fragment(None))
    except ValueError:  # a relative or odd URL: keep what cannot hold a secret
        return str(u.with_query(None).with_fragment(None))


def next_hop(
    *,
    status: int,
    method: str,
    original_method: str,
    data: bytes | None,
    headers: Mapping[str, str],
    current: URL,
    target: URL,
    origin: URL,
    hops: int,
    session_headers: Mapping[str, str] | None = None,
) -> Hop:
    """The (method, body, headers) of the request to ``target``, or RedirectRefusedError.

    ``origin`` is the API's origin (where the first request went); ``hops`` counts this
    redirect (1 for the first).
    """

    def refuse(why: str) -> RedirectRefusedError:
        src, dst = redact_url(current), redact_url(target)
        return RedirectRefusedError(
            f"{original_method} {src}: refused to follow a redirect (HTTP {status}) to {dst}: "
            f"{why}",
            from_url=src,
            to_url=dst,
            method=original_method,
        )

    if hops > MAX_REDIRECTS:
        raise refuse(f"more than {MAX_REDIRECTS} redirects in a row")
    if target.scheme not in ("http", "https") or not target.host:
        raise refuse("the target is not an http(s) URL")
    if target.user is not None or target.password is not None:
        raise refuse("the target URL carries user info")
    if current.scheme == "https" and target.scheme == "http":
        raise refuse("it would downgrade the connection from https to plain http")
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if target.origin() == origin:
        return method, data, headers
    # another origin: no credentials, no body
    if original_method not in _CROSS_ORIGIN_METHODS or data is not None:
        upgrade = origin.host == target.host and (origin.scheme, target.scheme) == ("http", "https")
        raise refuse(
            "only a GET or HEAD is followed to another origin (a request body may hold "
            "credentials)"
            + ("; the service moved to https: use https:// in base_url" if upgrade else "")
        )
    if session_headers and any(k.lower() in CREDENTIAL_HEADERS for k in session_headers):
        raise refuse(
            "the session's default headers carry credentials, which would go to another origin"
        )
    return method, None, {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


async def request_following(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    data: bytes | None,
    headers: Mapping[str, str],
    proxy_for: Callable[[URL], URL | None],
    **kwargs: Any,
) -> aiohttp.ClientResponse:
    """Send ``method url`` on ``session`` and follow its redirects by the rules above; the
    final response (not a redirect, or a 3xx without Location) is returned unread.

    ``proxy_for(url)`` gives the proxy of each hop (None: the session's own choice)."""
    origin = url.origin()
    original_method = method
    current = url
    resp = await session.request(
        method, current, data=data, headers=headers, allow_redirects=False,
        proxy=proxy_for(current), **kwargs,
    )  # fmt: skip
    hops = 0
    while resp.status in REDIRECT_STATUSES:
        location = resp.headers.get("Location")
        if not location:
            return resp
        hops += 1
        try:
            target = current.join(URL(location))
        except ValueError:
            resp.release()
            raise RedirectRefusedError(
                f"{original_method} {redact_url(current)}: refused to follow a redirect "
                f"(HTTP {resp.status}): its Location is not a valid URL",
                from_url=redact_url(current),
                method=original_method,
            ) from None
        try:
            method, data, headers = next_hop(
                status=resp.status, method=method, original_method=original_method, data=data,
                headers=headers, current=current, target=target, origin=origin, hops=hops,
                session_headers=session.headers,
            )  # fmt: skip
        finally:
            resp.release()
        current = target
        resp = await session.request(
            method, current, data=data, headers=headers, allow_redirects=False,
            proxy=proxy_for(current), **kwargs,
        )  # fmt: skip
    return resp
