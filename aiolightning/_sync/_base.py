"""SyncClient: what the blocking client adds around its AsyncLightning (its loop, close)."""

from __future__ import annotations

import weakref
from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from ._portal import LoopThread

if TYPE_CHECKING:
    from .._client import AsyncLightning

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """The client's loop, the async client it runs, and the blocking client's lifecycle.

    ``aio`` is the :class:`~aiolightning.AsyncLightning` underneath; anything not wrapped
    can run on the client's loop with :meth:`run` (``client.run(client.aio.<...>(...))``).
    """

    aio: AsyncLightning
    _portal: LoopThread

    def _start(self, aio: AsyncLightning) -> None:
        self.aio = aio
        origins = (aio.base_url,)
        self._portal = LoopThread(guard_urls=origins)
        # closes the session, the loop and the helper thread on close(), collection or exit
        self._finalizer = weakref.finalize(self, self._portal.shutdown, aio.close)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of ``client.aio`` on the client's loop and return its result."""
        return self._portal.run(coro)

    def close(self) -> None:
        """Close the session and stop the loop thread (idempotent)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._portal.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.aio!r}>"
