"""The transport: the one class every Lightning API request goes through.

auth → limiter slot → send (aiohttp) → map status to a typed error → retry (backoff
waits, Retry-After, deadline) → decode (one cached msgspec Decoder per type).

Rooms: :mod:`._encoding` (path, query, JSON, decoders), :mod:`._timeout`,
:mod:`._status_error` (typed errors from responses), :mod:`._session` (settings, session,
headers), :mod:`._send` (the attempt/retry loop), :mod:`._transport` (``Transport``: request,
stream, login).
"""

from ._encoding import decoder_for, encode_query, quote_path_param
from ._session import DEFAULT_READ_BUFSIZE, USER_AGENT
from ._timeout import Timeout
from ._transport import Transport

__all__ = [
    "DEFAULT_READ_BUFSIZE",
    "USER_AGENT",
    "Timeout",
    "Transport",
    "decoder_for",
    "encode_query",
    "quote_path_param",
]
