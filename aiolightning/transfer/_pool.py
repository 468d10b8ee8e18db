"""A worker pool for parts and ranges: ``n`` copies of a coroutine, the first failure wins."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio

__all__ = ["run_pool"]


def _first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to report from a task group: the first one that is not a cancellation."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            flat.append(e)

    walk(eg)
    for e in flat:
        if not isinstance(e, anyio.get_cancelled_exc_class()):
            return e
    return flat[0] if flat else eg


async def run_pool(n: int, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``n`` copies of ``fn`` until all return; the first failure cancels the others."""
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(fn)
    except BaseExceptionGroup as eg:
        raise _first_error(eg) from None
