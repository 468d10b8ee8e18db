"""Exactly once for a mutation whose answer may be lost: send, and after an ambiguous
failure ask the server whether it took effect before sending again.

"Ambiguous" (:func:`~aiolightning.resources._polling.is_ambiguous`): a 5xx other than a
503 with ``Retry-After``, a timeout, a connection lost after sending, a truncated answer.
The transport does not re-send a POST after those (the server may have acted), and the
resources pass ``resend_ambiguous=False`` for the idempotent requests whose repeat is not
harmless (a DELETE answers 404 the second time, a machine switch would be requested twice).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from .._errors import LightningError, NotFoundError, RateLimitError
from ._polling import Deadline, is_ambiguous

if TYPE_CHECKING:
    from .._retry import RetryPolicy

__all__ = ["ATTEMPTS", "delete_once", "mutate_once", "no_ambiguous_resend"]

T = TypeVar("T")

#: sends of one mutation before its last failure is raised
ATTEMPTS = 6


def no_ambiguous_resend(policy: RetryPolicy) -> RetryPolicy:
    """``policy``, but an ambiguous failure of an idempotent request reaches the caller."""
    return policy.with_options(resend_ambiguous=False)


def _may_resend(exc: LightningError, attempt: int, deadline: Deadline | None) -> bool:
    if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)):
        return False
    return attempt < ATTEMPTS and (deadline is None or not deadline.expired())


async def _pause(attempt: int, deadline: Deadline | None) -> None:
    seconds = random.uniform(0.05, 0.3) * attempt
    await (deadline or Deadline(None)).sleep(seconds)


async def mutate_once(
    send: Callable[[], Awaitable[T]],
    took_effect: Callable[[], Awaitable[T | None]],
    *,
    deadline: Deadline | None = None,
) -> T:
    """``send()``; after an ambiguous failure, ``took_effect()`` returns the result if the
    server did act (then nothing is sent again), or None (then ``send()`` is retried, up to
    :data:`ATTEMPTS` sends in all, within ``deadline``)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await send()
        except LightningError as exc:
            if not _may_resend(exc, attempt, deadline):
                raise
            done = await took_effect()
            if done is not None:
                return done
            await _pause(attempt, deadline)


async def delete_once(send: Callable[[], Awaitable[object]]) -> None:
    """A DELETE (sent with :func:`no_ambiguous_resend`): re-sent after an ambiguous failure,
    and a 404 that follows one means the lost attempt deleted it. A 404 to the first
    attempt is raised (:class:`NotFoundError`)."""
    attempt = 0
    lost = False  # did an attempt fail in a way that leaves open whether it deleted?
    while True:
        attempt += 1
        try:
            await send()
            return
        except NotFoundError:
            if lost:
                return
            raise
        except LightningError as exc:
            if not _may_resend(exc, attempt, None):
                raise
            lost = lost or is_ambiguous(exc)
            await _pause(attempt, None)
