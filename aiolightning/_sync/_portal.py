"""LoopThread: the sync client's event loop, run by the calling thread or a helper thread.

The loop belongs to the client. A blocking call from a thread with no loop of its own (a
script) runs the loop itself until its result is there: no thread hop, so the call costs
what the async call costs. Threads calling at the same time (8 threads, one client) hand
their coroutines to whichever thread is running the loop and wait; their calls run
concurrently on it, and when the running thread's own call is done another waiting thread
takes over. A caller that cannot run the loop (a notebook cell: the kernel's loop already runs
in its thread) hands its coroutine to the helper thread, which runs the loop only while such
calls are pending. (Measured in benchmarks/bench_transport.py: a hop to a loop in another
thread costs two thread wake-ups per call, several times a bare no-op hop on a busy machine.)
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
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

# signal.signal/getsignal convert to and from enums on every call (µs each, twice per call);
# the C functions underneath do the same work without it
_signal_c: Any = getattr(signal, "_signal", signal)
_getsignal: Callable[[int], Any] = _signal_c.getsignal
_setsignal: Callable[[int, Any], Any] = _signal_c.signal
_SIGINT = int(signal.SIGINT)

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
    """One blocking call: its coroutine, its task on the loop, whether it is done."""

    __slots__ = ("context", "coro", "done", "error", "interrupted", "outcomes", "task", "value")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        # the caller's context variables (a current tracing span, ...) follow the call
        self.context = contextvars.copy_context()
        self.task: asyncio.Task[None] | None = None
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.interrupted = False
        self.outcomes: list[Outcome[Any, Any]] | None = None

    def keep(self, outcomes: list[Outcome[Any, Any]]) -> None:
        self.outcomes = outcomes

    def cancel(self) -> None:  # on the loop
        if self.task is not None:
            self.task.cancel()


class LoopThread:
    """The client's event loop; :meth:`run` runs a coroutine on it and waits (see the module
    docstring for who runs the loop)."""

    def __init__(self, *, name: str = "aiolightning-loop", guard_urls: tuple[str, ...] = ()):
        self._pid = os.getpid()
        self._guard = tuple(u.rstrip("/") for u in guard_urls)
        self.loop = asyncio.new_event_loop()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # callers waiting for their call to finish
        self._helper_cond = threading.Condition(lock)  # the helper waiting for work
        self._driver: int | None = None  # the thread running the loop now
        self._pending = 0  # calls started and not finished
        self._waiting = 0  # callers blocked in _wait (woken only when there are some)
        self._driving_for: _Waiter | None = None  # the call of the thread running the loop
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._helper, name=name, daemon=True)
        self._thread.start()
        self._helper_ident = self._thread.ident

    @property
    def closed(self) -> bool:
        return self._closed

    def usable(self) -> bool:
        return not self._closed and self._pid == os.getpid()

    def check_caller(self, *, local_servers: bool = True) -> None:
        """Raise a clear error where a blocking call cannot work (instead of hanging)."""
        if self._pid != os.getpid():
            raise RuntimeError(
                f"this Lightning client was created in process {self._pid} and cannot be used"
                " after fork(): its event loop and connections belong to the parent; create a"
                " new Lightning in the child process"
            )
        if self._closed:
            raise RuntimeError("this Lightning client is closed")
        running = asyncio._get_running_loop()
        if running is self.loop:
            raise RuntimeError(
                "a blocking Lightning method was called on the client's own event loop (from a"
                " callback such as on_progress?); it would wait forever. Use the async client"
                " there: `await client.aio.<...>`"
            )
        if local_servers and running is not None and _LOCAL_SERVERS:
            if any(_LOCAL_SERVERS.get(u) is running for u in self._guard):
                raise RuntimeError(
                    "this blocking call would wait on the event loop it blocks: the server it"
                    " talks to (an Emulator started with `await`) runs on the caller's own loop."
                    " In a notebook use `EmulatorThread` (a server in its own thread), or the"
                    " async client with `await`"
                )

    # running a call --------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], *, talks: bool = True) -> T:
        """Run ``coro`` on the loop and wait for its result (Ctrl-C cancels it cleanly).

        ``talks=False``: the coroutine sends no request (closing), so it may run even where
        the server is served by the caller's own loop."""
        try:
            self.check_caller(local_servers=talks)
        except BaseException:
            coro.close()
            raise
        me = threading.get_ident()
        can_drive = asyncio._get_running_loop() is None
        waiter = _Waiter(coro)
        with self._cond:
            self._pending += 1
            driving = can_drive and self._driver is None
            if driving:
                self._driver, self._driving_for = me, waiter
                self._start(waiter)  # nobody runs the loop: a plain call is safe
            else:
                self.loop.call_soon_threadsafe(self._start, waiter)
                if self._driver is None:
                    self._helper_cond.notify()  # nobody runs the loop: the helper does
        while True:
            if driving:
                self._drive(waiter)
            driving = self._wait(waiter, me, can_drive)
            if not driving:
                break
        error, waiter.error = waiter.error, None
        if error is None:
            return waiter.value  # type: ignore[no-any-return]
        if waiter.interrupted and isinstance(error, asyncio.CancelledError):
            if waiter.outcomes is not None:
                raise BulkInterrupted(waiter.outcomes) from None
            raise KeyboardInterrupt
        try:
            raise error
        finally:
            del error

    def _start(self, waiter: _Waiter) -> None:  # on the loop (or before anyone runs it)
        waiter.context.run(CANCELLED_OUTCOMES_SINK.set, waiter.keep)
        waiter.task = self.loop.create_task(self._body(waiter), context=waiter.context)

    async def _body(self, waiter: _Waiter) -> None:
        """The call's task: keeps its result or error, and stops the loop when the thread
        running it was waiting for this call (no extra loop turn for done callbacks)."""
        try:
            waiter.value = await waiter.coro
        except BaseException as exc:  # handed to the caller, who raises it
            waiter.error = exc
        finally:
            with self._cond:
                waiter.done = True
                self._pending -= 1
                if self._waiting:
                    self._cond.notify_all()
                if self._driving_for is waiter or (
                    not self._pending and self._driver == self._helper_ident
                ):
                    self.loop.stop()

    def _drive(self, waiter: _Waiter) -> None:
        """Run the loop in this thread until ``waiter`` is done; then let another run it."""
        handler = None
        if threading.current_thread() is threading.main_thread():
            if _getsignal(_SIGINT) is signal.default_int_handler:

                def on_sigint(signum: int, frame: Any) -> None:
                    if waiter.interrupted:  # a second Ctrl-C: stop waiting at once
                        raise KeyboardInterrupt
                    waiter.interrupted = True
                    self.loop.call_soon_threadsafe(waiter.cancel)

                handler = _setsignal(_SIGINT, on_sigint)
        try:
            while not waiter.done:
                self.loop.run_forever()
        finally:
            if handler is not None:
                _setsignal(_SIGINT, handler)
            with self._cond:
                self._driver = self._driving_for = None
                if self._pending or self._closing:  # another thread takes the loop over
                    self._cond.notify_all()
                    self._helper_cond.notify()

    def _wait(self, waiter: _Waiter, me: int, can_drive: bool) -> bool:
        """Wait until ``waiter`` is done (True: this thread should run the loop first)."""
        with self._cond:
            while not waiter.done:
                if can_drive and self._driver is None:
                    self._driver, self._driving_for = me, waiter
                    return True
                self._waiting += 1
                try:
                    self._cond.wait()
                except KeyboardInterrupt:
                    if waiter.interrupted:  # a second Ctrl-C: stop waiting
                        raise
                    waiter.interrupted = True
                    self.loop.call_soon_threadsafe(waiter.cancel)
                finally:
                    self._waiting -= 1
        return False

    def _helper(self) -> None:
        """Run the loop while calls are pending that no caller can run; close it at the end."""
        me = threading.get_ident()
        cond = self._helper_cond
        while True:
            with cond:
                while self._driver is not None or not (self._pending or self._closing):
                    cond.wait()
                self._driver = me
                closing = self._closing
            if closing:
                self._final_cleanup()
                return
            try:
                self.loop.run_forever()  # until nothing is pending (_finished stops it)
            finally:
                with cond:
                    self._driver = None
                    self._cond.notify_all()

    def _final_cleanup(self) -> None:
        loop = self.loop
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    # helpers -----------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop (where the client's state lives); its result."""

        async def plain() -> T:
            return fn(*args, **kwargs)

        return self.run(plain())

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async one: each item is one call."""
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

    def shutdown(self, before: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``before()`` (closing the client), then end the loop and the helper thread.

        Idempotent; does nothing in a forked child."""
        if not self.usable():
            return
        inside = asyncio._get_running_loop() is self.loop
        try:
            if before is not None and not inside:
                self.run(before(), talks=False)
        finally:
            with self._cond:
                self._closed = self._closing = True
                if self._driver == self._helper_ident:
                    self.loop.call_soon_threadsafe(self.loop.stop)
                self._helper_cond.notify()
            if not inside and threading.get_ident() != self._helper_ident:
                self._thread.join()


async def _anext(iterator: AsyncIterator[T]) -> tuple[T] | None:
    try:
        return (await iterator.__anext__(),)
    except StopAsyncIteration:
        return None
