"""Cursor pagination over items kept in creation order.

A page token is the (opaque, base64) sequence number of the last item of the previous
page, so deleting or adding items between pages neither repeats nor skips survivors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TypeVar

from ._errors import ApiError

__all__ = ["MAX_PAGE", "decode_token", "encode_token", "page"]

T = TypeVar("T")
MAX_PAGE = 1000


def encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    if not token:
        return -1
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("after:"):
            raise ValueError
        return int(raw[6:])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, f"invalid pageToken {token!r}") from None


def page(
    items: Iterable[T], seq: Callable[[T], int], token: str, limit: int | None, default: int
) -> tuple[list[T], str]:
    """The items after `token` (at most `limit`), and the next token ("" on the last page)."""
    # the spec admits any int64; a limit <= 0 reads as "the default page", as an unset one
    size = min(limit if limit is not None and limit > 0 else default, MAX_PAGE)
    after = decode_token(token)
    out: list[T] = []
    more = False
    for it in items:
        if seq(it) <= after:
            continue
        if len(out) == size:
            more = True
            break
        out.append(it)
    return out, (encode_token(seq(out[-1])) if more and out else "")
