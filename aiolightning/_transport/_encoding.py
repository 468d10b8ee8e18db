"""How requests and responses are encoded: path parameters, query strings, JSON bodies, decoders.

``path`` arguments reach the transport already percent-encoded (generated code encodes each
path parameter with :func:`quote_path_param`); the query string is encoded by the transport
with :func:`encode_query`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

__all__ = ["any_decoder", "decoder_for", "encode_json", "encode_query", "quote_path_param"]

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def quote_path_param(value: Any) -> str:
    """Percent-encode one path parameter with no safe characters ("/" -> "%2F")."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def _query_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def encode_query(params: Mapping[str, Any] | None) -> str:
    """Encode query parameters: None dropped, bools "true"/"false", lists repeat the key."""
    if not params:
        return ""
    parts: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        k = quote(key, safe="")
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                if item is not None:
                    parts.append(f"{k}={quote(_query_value(item), safe='')}")
        else:
            parts.append(f"{k}={quote(_query_value(value), safe='')}")
    return "&".join(parts)


def decoder_for(tp: Any) -> msgspec.json.Decoder[Any]:
    """The cached JSON decoder for a type (lenient: ``strict=False``).

    ``strict=False`` lets int/bool fields accept the strings a proto-JSON server may send,
    while ``str | int`` fields keep the string as a string.
    """
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp, strict=False)
    return dec


def encode_json(value: Any) -> bytes:
    """JSON-encode a msgspec Struct, dict, list... (bytes/str pass through)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return _encoder.encode(value)
