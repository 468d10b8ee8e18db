"""Typed errors from failed responses, and the readable text that goes into error messages."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .._errors import APIStatusError, RateLimitError, error_for_status
from ._encoding import any_decoder

__all__ = ["build_status_error", "describe", "readable_text"]

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SPACES = re.compile(r"\s+")


def readable_text(body: bytes, limit: int = 200) -> str:
    text = body[: limit * 8].decode("utf-8", "replace")
    if "<" in text:
        text = _TAGS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return text


def build_status_error(
    status: int,
    reason: str | None,
    body: bytes,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
) -> APIStatusError:
    """The typed error for a non-2xx response, from a ``{code,message,details}`` body or
    from the status reason and the start of a non-JSON body."""
    code: int | None = None
    message: str | None = None
    details: list[Any] | None = None
    if body:
        try:
            data = any_decoder.decode(body)
        except msgspec.DecodeError:
            data = None
        if isinstance(data, dict):
            c = data.get("code")
            if isinstance(c, int) and not isinstance(c, bool):
                code = c
            m = data.get("message") or data.get("error")
            if isinstance(m, str) and m:
                message = m
            d = data.get("details")
            if isinstance(d, list):
                details = d
    if not message:
        reason = reason or "HTTP error"
        snippet = readable_text(body) if body else ""
        message = f"{reason}: {snippet}" if snippet else reason
    cls = error_for_status(status)
    if cls is RateLimitError:
        return RateLimitError(
            status,
            message,
            code=code,
            details=details,
            method=method,
            path=path,
            body=body,
            retry_after=retry_after,
        )
    return cls(status, message, code=code, details=details, method=method, path=path, body=body)


def describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
