"""LoopThread: the sync client's event loop in a daemon thread, and the hop into it."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ..fanout import CANCELLED_OUTCOMES_SINK, Outcome

__all__ = [
    "BulkInterrupted",
    "LoopThread",
    "register_local_server",
    "unregister_local_server",
]

T = TypeVar("T")

# origin (scheme://host:port) -> the event loop that serves it in this process (an emulator
# started with ``await``); a blocking call made on that very loop could never be answered
_LOCAL_SERVERS: dict[str, asyncio.AbstractEventLoop] = {}


def register_local_server(url: str, loop: asyncio.AbstractEventLoop) -> None:
    """Note that ``loop`` serves ``url``, so a sync client called on ``loop`` fails at once."""
    _LOCAL_SERVERS[url.rstrip("/")] = loop


def unregister_local_server(url: str) -> None:
    _LOCAL_SERVERS.pop(url.rstrip("/"), None)


class BulkInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a bulk call of the sync client; what was in flight was cancelled.

    ``outcomes`` holds the outcome of every item that had finished, in input order."""

    def __init__(self, outcomes: list[Outcome[Any, Any]]) -> None:
        super().__init__(f"interrupted after {len(outcomes)} finished item(s)")
        self.outcomes = outcomes


class _Waiter:
    """One blocking call: the coroutine, its task on the loop, a lock released when done."""

    __slots__ = ("cancelled", "context", "coro", "lock", "outcomes", "task")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        # the caller's context variables (a current tracing span, ...) follow the call
        self.context = contextvars.copy_context()
        self.lock = threading.Lock()
        self.lock.acquire()
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.outcomes: list[Outcome[Any, Any]] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:  # on the loop
        if self.cancelled:
            self.coro.close()
            self.lock.release()
            return
        self.context.run(CANCELLED_OUTCOMES_SINK.set, self.keep)
        self.task = loop.create_task(self.coro, context=self.context)
        self.task.add_done_callback(self._done)

    def keep(self, outcomes: list[Outcome[Any, Any]]) -> None:
        self.outcomes = outcomes

    def _done(self, _task: asyncio.Task[Any]) -> None:
        self.lock.release()

    def cancel(self) -> None:  # on the loop
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


class LoopThread:
    """An event loop running in a daemon thread; :meth:`run` hops a coroutine onto it.

    The hop is ``call_soon_threadsafe`` plus a lock the caller sleeps on (cheaper than
    ``run_coroutine_threadsafe`` and its chained futures; see benchmarks/bench_transport.py).
    Any number of threads may call at once: their coroutines run concurrently on the loop.
    """

    def __init__(self, *, name: str = "aiolightning-loop", guard_urls: tuple[str, ...] = ()):
        self._pid = os.getpid()
        self._guard = tuple(u.rstrip("/") for u in guard_urls)
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self._ident: int | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,), name=name, daemon=True)
        self._thread.start()
        started.wait()

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._ident = threading.get_ident()
        self.loop.call_soon(started.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def check_caller(self, *, local_servers: bool = True) -> None:
        """Raise a clear error where a blocking call cannot work (instead of hanging)."""
        if self._pid != os.getpid():
            raise RuntimeError(
                f"this Lightning client was created in process {self._pid} and cannot be used"
                " after fork(): its event loop thread did not survive; create a new Lightning"
                " in the child process"
            )
        if self._closed:
            raise RuntimeError("this Lightning client is closed")
        if threading.get_ident() == self._ident:
            raise RuntimeError(
                "a blocking Lightning method was called on the client's own event loop (from a"
                " callback such as on_progress?); it would wait forever. Use the async client"
                " there: `await client.aio.<...>`"
            )
        if local_servers and _LOCAL_SERVERS:
            running = asyncio._get_running_loop()
            if running is not None and any(_LOCAL_SERVERS.get(u) is running for u in self._guard):
                raise RuntimeError(
                    "this blocking call would wait on the event loop it blocks: the server it"
                    " talks to (an Emulator started with `await`) runs on the caller's own loop."
                    " In a notebook use `EmulatorThread` (a server in its own thread), or the"
                    " async client with `await`"
                )

    def run(self, coro: Coroutine[Any, Any, T], *, talks: bool = True) -> T:
        """Run ``coro`` on the loop and wait for its result (Ctrl-C cancels it cleanly).

        ``talks=False``: the coroutine sends no request (closing), so it may run even where
        the server is served by the caller's own loop."""
        try:
            self.check_caller(local_servers=talks)
        except BaseException:
            coro.close()
            raise
        waiter = _Waiter(coro)
        self.loop.call_soon_threadsafe(waiter.start, self.loop)
        try:
            waiter.lock.acquire()
        except KeyboardInterrupt:
            self._cancel(waiter)
            if waiter.outcomes is not None:
                raise BulkInterrupted(waiter.outcomes) from None
            raise
        task = waiter.task
        assert task is not None
        return task.result()  # type: ignore[no-any-return]

    def _cancel(self, waiter: _Waiter) -> None:
        """Cancel the waiter's task and wait until it has unwound (a second Ctrl-C stops
        waiting)."""
        self.loop.call_soon_threadsafe(waiter.cancel)
        try:
            waiter.lock.acquire()
        except KeyboardInterrupt:
            pass

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop's thread and wait for its result."""

        async def plain() -> T:
            return fn(*args, **kwargs)

        return self.run(plain())

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async one: each item is one hop to the loop."""
        try:
            while True:
                box = self.run(_anext(iterator))
                if box is None:
                    return
                yield box[0]
        finally:
            aclose: Callable[[], Coroutine[Any, Any, None]] | None = getattr(
                iterator, "aclose", None
            )
            if aclose is not None and self.usable():
                self.run(aclose(), talks=False)

    def usable(self) -> bool:
        return not self._closed and self._pid == os.getpid()

    def shutdown(self, before: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``before()`` (closing the client) on the loop, then stop the loop and its thread.

        Idempotent; does nothing in a forked child (the thread is not there)."""
        if not self.usable():
            return
        try:
            if before is not None and threading.get_ident() != self._ident:
                self.run(before(), talks=False)
        finally:
            self._closed = True
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.get_ident() != self._ident:
                self._thread.join()


async def _anext(iterator: AsyncIterator[T]) -> tuple[T] | None:
    try:
        return (await iterator.__anext__(),)
    except StopAsyncIteration:
        return None
