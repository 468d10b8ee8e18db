"""Retry policy: which failures are retried, how long to wait, when to give up.

The waits come from the ``backoff`` library's generators (``backoff.expo``, optionally
passed through ``backoff.full_jitter``); the transport's loop asks :meth:`RetryPolicy.waits`
for one generator per request, lazily, on the first retry only.

``Retry-After`` (seconds or an HTTP date) replaces the computed wait when present, capped by
``max_retry_after``.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import backoff

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "MAX_RETRY_AFTER",
    "RetryPolicy",
    "parse_retry_after",
]

#: Statuses the default policy retries.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

#: The official SDK's wrapper: every 5xx and every 4xx except 400, 401 and 404.
_SDK_RETRY_STATUSES: frozenset[int] = frozenset(s for s in range(402, 600) if s != 404)


def _default_sleep(seconds: float) -> Awaitable[None]:
    return anyio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how the transport retries a request.

    Args:
        max_attempts: total attempts including the first (1 = never retry).
        base: the first wait in seconds before jitter (``backoff.expo`` ``factor``).
        multiplier: growth of the wait per retry (``backoff.expo`` ``base``).
        max_wait: cap of a computed wait.
        jitter: "full jitter": each wait is uniform in ``[0, computed]``.
        deadline: overall seconds from the first attempt; no retry starts (and no wait runs)
            past it, and the last attempt's timeout is shortened to fit. ``None`` = unbounded.
        retry_statuses: HTTP statuses that are retried.
        retry_connection_errors: retry refused/reset/dropped connections.
        retry_timeouts: retry requests that timed out.
        retry_non_idempotent: also re-send POST/PATCH after an answer that leaves open
            whether the server acted (500, 502, 504, a 503 without ``Retry-After``, a
            timeout, a connection lost after sending). A connection refused before anything
            was sent, a 408, a 429 and a 503 with ``Retry-After`` are retried regardless.
        resend_ambiguous: re-send an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS)
            after such an ambiguous answer. ``False`` leaves the decision to the caller, who
            can ask the server whether the first attempt took effect (the resources do so for
            a DELETE, whose repeat would answer 404).
        respect_retry_after: use the server's ``Retry-After`` instead of the computed wait.
        max_retry_after: cap on a ``Retry-After`` wait; a longer one is capped, not refused.
        sleep: the awaitable sleep used between attempts (injectable for tests).
    """

    max_attempts: int = 5
    base: float = 0.5
    multiplier: float = 2.0
    max_wait: float = 30.0
    jitter: bool = True
    deadline: float | None = 300.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_connection_errors: bool = True
    retry_timeouts: bool = True
    retry_non_idempotent: bool = False
    resend_ambiguous: bool = True
    respect_retry_after: bool = True
    max_retry_after: float = 300.0
    sleep: Callable[[float], Awaitable[None]] = field(default=_default_sleep, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not isinstance(self.retry_statuses, frozenset):
            object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    # presets ------------------------------------------------------------------------------

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry."""
        return cls(max_attempts=1, retry_statuses=frozenset(), deadline=None)

    @classmethod
    def lightning_sdk(cls, **overrides: Any) -> RetryPolicy:
        """The official SDK's documented policy (``LightningClient(max_tries=8)``-like).

        Retries every 5xx and every 4xx except 400, 401 and 404, and connection errors and
        timeouts; 7 retries (8 attempts); waits 0.5, 1, 2, 4 ... seconds without jitter,
        capped at 300 s; no overall deadline. Unlike the SDK, a POST/PATCH is still not
        re-sent after a timeout unless ``retry_non_idempotent=True``.
        """
        kw: dict[str, Any] = {
            "max_attempts": 8,
            "base": 0.5,
            "multiplier": 2.0,
            "max_wait": 300.0,
            "jitter": False,
            "deadline": None,
            "retry_statuses": _SDK_RETRY_STATUSES,
        }
        kw.update(overrides)
        return cls(**kw)

    def with_options(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed."""
        return replace(self, **changes)

    # waits ---------------------------------------------------------------------------------

    def waits(self) -> Iterator[float]:
        """The computed waits before retry 1, 2, 3 ... (jittered if ``jitter``).

        Driven by ``backoff.expo`` and ``backoff.full_jitter``.
        """
        gen = backoff.expo(base=self.multiplier, factor=self.base, max_value=self.max_wait)
        gen.send(None)  # backoff's generators are primed with an empty send
        jitter = backoff.full_jitter if self.jitter else None
        for value in gen:
            yield jitter(value) if jitter is not None else value

    def retries_status(self, status: int) -> bool:
        return status in self.retry_statuses

    def retry_after_wait(self, retry_after: float | None) -> float | None:
        """The wait to use for a server-supplied ``Retry-After`` (or None to compute one)."""
        if retry_after is None or not self.respect_retry_after:
            return None
        return min(max(retry_after, 0.0), self.max_retry_after)


#: the longest wait :func:`parse_retry_after` returns (a day): a larger delay or a date far
#: in the future is taken as this (the policy's ``max_retry_after`` caps it further)
MAX_RETRY_AFTER: float = 86400.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now, in ``[0, MAX_RETRY_AFTER]``: delta-seconds or an
    HTTP date; None if absent or unreadable. Never raises."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds):
            return None
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
        delta = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # OverflowError: a year past datetime's range
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def compute_waits(policy: RetryPolicy, n: int) -> list[float]:
    """The first ``n`` waits of ``policy`` (handy for inspecting a policy)."""
    out: list[float] = []
    it: Iterable[float] = policy.waits()
    for value in it:
        if len(out) >= n:
            break
        out.append(value)
    return out
