"""The shared limiter's Redis URL: checked when configured, never shown with its password.

``LimiterConfig(shared="redis://:secret@host:6379/0")`` keeps the URL as a
:class:`SharedURL`, a ``str`` whose ``repr`` (and so the config's) shows
``redis://:***@host:6379/0``; every log line and error of the shared limiter uses
:func:`redact_url`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import InvalidArgumentError

__all__ = ["SharedURL", "redact_url", "shared_url"]

_SCHEMES = ("redis", "rediss", "unix")
_SECRET_PARAMS = frozenset({"password"})


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unparsable port or netloc: show only the scheme
        return url.split(":", 1)[0] + "://***"
    netloc = parts.netloc
    if password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k in _SECRET_PARAMS else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class SharedURL(str):
    """A Redis URL (equal to the string given) whose ``repr`` hides the password."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_url(self))

    @property
    def redacted(self) -> str:
        return redact_url(self)


def shared_url(url: object) -> SharedURL:
    """Check a ``LimiterConfig(shared=...)`` value; InvalidArgumentError names the problem."""
    if isinstance(url, SharedURL):
        return url
    if not isinstance(url, str):
        raise InvalidArgumentError(
            f"LimiterConfig(shared=...) must be a redis:// URL string, not {type(url).__name__}"
        )
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise InvalidArgumentError(
            f"LimiterConfig(shared={shown!r}): not a valid URL (its host or port)"
        ) from None
    if parts.scheme not in _SCHEMES:
        raise InvalidArgumentError(
            f"LimiterConfig(shared={shown!r}): the scheme must be one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise InvalidArgumentError(f"LimiterConfig(shared={shown!r}): the URL names no host")
    if parts.scheme == "unix" and not parts.path:
        raise InvalidArgumentError(f"LimiterConfig(shared={shown!r}): the URL names no socket")
    return SharedURL(url)
