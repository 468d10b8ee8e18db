"""Shared helpers of the resources: argument checks, jittered poll intervals, wait errors."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import anyio

from .._errors import (
    APIConnectionError,
    InvalidArgumentError,
    LightningError,
    RateLimitError,
    ServerError,
)

__all__ = [
    "WaitTimeoutError",
    "check_name",
    "check_timeout",
    "check_workload",
    "is_ambiguous",
    "poll_intervals",
]


class WaitTimeoutError(LightningError, TimeoutError):
    """A wait (studio start/stop, job completion, command run) did not finish in time."""


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def check_workload(image: Any, studio: Any, command: Any, kind: str) -> None:
    """What a job or a deployment runs: exactly one of an image and a studio; a studio's
    workload needs its command, an image's command is optional (a string when given)."""
    if (image is None) == (studio is None):
        raise InvalidArgumentError("give exactly one of image= and studio=")
    if image is not None:
        check_name(image, "image")
    if studio is not None:
        if isinstance(studio, str):
            check_name(studio, "studio")
        check_name(command, f"command (a studio {kind} needs one)")
    elif command is not None and not isinstance(command, str):
        raise InvalidArgumentError(f"command must be a string, got {command!r}")


def check_timeout(value: Any, what: str = "timeout") -> float | None:
    """``None`` (wait forever) or a finite number of seconds >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(f"{what} must be a number of seconds or None, got {value!r}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must not be negative, got {value!r}")
    return float(value)


def check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{what} must be a positive integer, got {value!r}")
    return value


def poll_intervals(
    initial: float = 0.3, cap: float = 2.0, factor: float = 1.5, jitter: float = 0.3
) -> Iterator[float]:
    """Poll waits: start around ``initial`` (0.2-0.4 s by default), grow by ``factor`` up to
    ``cap``, each jittered by +-``jitter`` so that many waiters don't poll in lockstep."""
    value = initial
    while True:
        yield value * random.uniform(1 - jitter, 1 + jitter)
        value = min(cap, value * factor)


class Deadline:
    """A monotonic deadline; ``None`` timeout = never."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.at = None if timeout is None else anyio.current_time() + timeout

    def remaining(self) -> float:
        if self.at is None:
            return math.inf
        return self.at - anyio.current_time()

    def expired(self) -> bool:
        return self.remaining() <= 0

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, min(seconds, self.remaining())))


def is_ambiguous(exc: BaseException) -> bool:
    """Did a mutation fail in a way where the server may or may not have acted?

    The transport re-sends a POST by itself only after answers where the server certainly
    did nothing (408, 429, a 503 with ``Retry-After``) or when nothing was sent; a
    500/502/504, a bare 503, a timeout, a connection dropped after sending or an answer cut
    short reaches the resource, which checks before re-sending (see ``_reconcile``).
    """
    if isinstance(exc, RateLimitError):
        return False  # throttled: certainly not acted on (retry is safe)
    return isinstance(exc, ServerError | APIConnectionError)
