"""Fan-out: run one coroutine per item over many items, with a bounded number in flight.

Every bulk helper of aiolightning (``client.studios.start_many``, ``client.jobs.submit_many``,
``client.jobs.watch`` ...) is built on the two functions here:

* :func:`map_outcomes` -- awaits every item and returns one :class:`Outcome` per item, in
  input order;
* :func:`stream_outcomes` -- an async iterator yielding outcomes as they complete.

Properties they guarantee:

* the input may be any iterable or async iterable (a generator of 100,000 items is fine): a
  fixed pool of ``concurrency`` worker tasks pulls items from it, so the number of tasks and
  the memory used do not grow with the number of items;
* one item failing never cancels or loses the others (unless ``stop_on_error=True``): its
  :class:`Outcome` carries the exception;
* cancelling the caller cancels every item in flight before returning, so nothing is left
  running (anyio task groups and cancel scopes underneath);
* an optional ``on_progress`` callback sees ``Progress(done, failed, total)`` after each item.

The pool bounds the number of *items* in progress; the number of *requests* in flight is
governed separately by the client's limiter (per-scope AIMD cap, pause gate on a 429 or a 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeAlias, TypeVar, cast

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from ._errors import LightningError

if TYPE_CHECKING:
    from .runs import JournalLike

__all__ = [
    "CANCELLED_OUTCOMES_SINK",
    "AsyncOrSyncIterable",
    "FanoutAborted",
    "Outcome",
    "OutcomeStream",
    "Progress",
    "ProgressCallback",
    "map_outcomes",
    "stream_outcomes",
]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CONCURRENCY = 32

# set by the sync client around each call: when a map_outcomes is cancelled (Ctrl-C), it hands
# the outcomes finished so far to this callback (the outermost call's, which reports last)
CANCELLED_OUTCOMES_SINK: ContextVar[Callable[[list[Outcome[Any, Any]]], None] | None] = ContextVar(
    "aiolightning_cancelled_outcomes_sink", default=None
)


class FanoutAborted(LightningError):
    """The item was in flight when ``stop_on_error=True`` aborted the fan-out; it was cancelled
    and may or may not have taken effect."""


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """What happened to one item: ``value`` if it succeeded, ``error`` if it raised."""

    item: T
    index: int  # position of the item in the input
    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> R:
        """The value, or raise the item's exception."""
        if self.error is not None:
            raise self.error
        return cast(R, self.value)


class Progress(NamedTuple):
    done: int  # items finished, successes and failures
    failed: int  # of which failed
    total: int | None  # number of items when the input has a len(), else None


ProgressCallback = Callable[[Progress], Any]
#: What the fan-out helpers accept: any iterable or async iterable.
AsyncOrSyncIterable: TypeAlias = Iterable[T] | AsyncIterable[T]


class _Source(Generic[T]):
    """The shared input. Workers pull from it directly (no feeder task, no queue)."""

    def __init__(self, items: AsyncOrSyncIterable[T]) -> None:
        self._it: Iterator[T] | None = None
        self._ait: AsyncIterator[T] | None = None
        if isinstance(items, AsyncIterable):
            self._ait = aiter(items)
            self._lock = asyncio.Lock()  # one __anext__ at a time (async generators demand it)
        else:
            self._it = iter(items)
        self.index = 0
        self.stopped = False
        self.error: BaseException | None = None

    async def next(self) -> tuple[int, T] | None:
        if self.stopped:
            return None
        try:
            if self._it is not None:
                item = next(self._it)
            else:
                assert self._ait is not None
                async with self._lock:
                    if self.stopped:
                        return None
                    item = await anext(self._ait)
        except (StopIteration, StopAsyncIteration):
            self.stopped = True
            return None
        except Exception as exc:
            # the input itself failed: stop reading, let the items in flight finish, then
            # raise it to the caller
            self.stopped = True
            self.error = exc
            return None
        index = self.index
        self.index += 1
        return index, item


class _Pump(Generic[T, R]):
    """The worker pool: one feeder task reads the input, ``concurrency`` workers run ``fn``."""

    def __init__(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: AsyncOrSyncIterable[T],
        *,
        concurrency: int,
        on_progress: ProgressCallback | None,
        stop_on_error: bool,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        self.fn = fn
        self.items = items
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.stop_on_error = stop_on_error
        self.total = len(items) if isinstance(items, Sized) else None
        self.done = 0
        self.failed = 0
        self.aborted = False
        self._source: _Source[T] | None = None
        self._inflight: dict[int, anyio.CancelScope] = {}

    async def run(self, emit: Callable[[Outcome[T, R]], Awaitable[None]]) -> None:
        source: _Source[T] = _Source(self.items)
        self._source = source
        workers = self.concurrency if self.total is None else min(self.concurrency, self.total)
        async with anyio.create_task_group() as tg:
            for i in range(workers):
                tg.start_soon(self._work, source, emit)
                if i % 64 == 63:  # thousands of workers: the first ones start meanwhile
                    await anyio.lowlevel.checkpoint()
                    if source.stopped:
                        break
        if source.error is not None:
            raise source.error

    async def _work(
        self, source: _Source[T], emit: Callable[[Outcome[T, R]], Awaitable[None]]
    ) -> None:
        while (pulled := await source.next()) is not None:
            index, item = pulled
            outcome = await (
                self._call_abortable(item, index) if self.stop_on_error else self._call(item, index)
            )
            self.done += 1
            if outcome.error is not None:
                self.failed += 1
                if self.stop_on_error and not self.aborted:
                    self._abort()
            if self.on_progress is not None:
                res = self.on_progress(Progress(self.done, self.failed, self.total))
                if inspect.isawaitable(res):
                    await res
            await emit(outcome)

    async def _call(self, item: T, index: int) -> Outcome[T, R]:
        try:
            value = await self.fn(item)
        except Exception as exc:
            return Outcome(item, index, error=exc)
        return Outcome(item, index, value=value)

    async def _call_abortable(self, item: T, index: int) -> Outcome[T, R]:
        with anyio.CancelScope() as scope:
            self._inflight[index] = scope
            try:
                outcome = await self._call(item, index)
            finally:
                del self._inflight[index]
        if scope.cancelled_caught:
            return Outcome(item, index, error=FanoutAborted("aborted: another item failed"))
        return outcome

    def _abort(self) -> None:
        self.aborted = True
        if self._source is not None:
            self._source.stopped = True
        for scope in list(self._inflight.values()):
            scope.cancel()


async def map_outcomes(
    fn: Callable[[T], Awaitable[R]],
    items: AsyncOrSyncIterable[T],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    stop_on_error: bool = False,
    journal: JournalLike | None = None,
    key: Callable[[T], str] = str,
) -> list[Outcome[T, R]]:
    """Run ``await fn(item)`` for every item, at most ``concurrency`` at a time.

    Returns one :class:`Outcome` per item, in input order. A failing item does not stop the
    others; with ``stop_on_error=True`` the first failure stops reading the input and cancels
    the items in flight (their outcomes carry :class:`FanoutAborted`; items never started have
    no outcome). If iterating the input raises, the items in flight finish and the error is
    raised. Cancelling the caller cancels everything in flight before this returns.

    With ``journal`` (a file path or a :class:`~aiolightning.Journal`), each item (named by
    ``key(item)``) is recorded before ``fn`` runs and its value (JSON-serialisable) after: a
    rerun returns the recorded values without calling ``fn`` again, and calls it again for the
    items that were in flight, so ``fn`` must be safe to repeat for those.
    """
    if journal is not None:
        from .runs import ItemPlan, journaled

        async def send(item: T, _marker: str) -> R:
            return await fn(item)

        async with journaled(journal, ItemPlan("fanout.map_outcomes", key, send)) as step:
            return await map_outcomes(
                step, items, concurrency=concurrency, on_progress=on_progress,
                stop_on_error=stop_on_error,
            )  # fmt: skip
    pump = _Pump(
        fn, items, concurrency=concurrency, on_progress=on_progress, stop_on_error=stop_on_error
    )
    results: list[Outcome[T, R]] = []

    async def emit(outcome: Outcome[T, R]) -> None:
        results.append(outcome)

    try:
        await pump.run(emit)
    except asyncio.CancelledError:
        sink = CANCELLED_OUTCOMES_SINK.get()
        if sink is not None:
            sink(sorted(results, key=lambda o: o.index))
        raise
    results.sort(key=lambda o: o.index)
    return results


class _StreamState:
    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # mark as retrieved; the consumer sees it through __anext__


class OutcomeStream(Generic[T, R]):
    """Async iterator of outcomes in completion order; also an async context manager.

    The workers run in a background task started by the first ``__anext__``. Leaving an
    ``async with`` block, calling :meth:`aclose`, or cancelling the task that iterates,
    cancels every item in flight and waits until they are gone.
    """

    def __init__(self, pump: _Pump[T, R]) -> None:
        self._pump = pump
        self._state = _StreamState()
        send, recv = anyio.create_memory_object_stream[Outcome[T, R]](pump.concurrency)
        self._send: MemoryObjectSendStream[Outcome[T, R]] | None = send
        self._recv = recv

    @property
    def progress(self) -> Progress:
        return Progress(self._pump.done, self._pump.failed, self._pump.total)

    def _start(self) -> asyncio.Task[None]:
        send = self._send
        assert send is not None
        self._send = None
        pump = self._pump

        async def drive() -> None:
            async with send:
                await pump.run(send.send)

        task = asyncio.get_running_loop().create_task(drive())
        task.add_done_callback(_retrieve)
        self._state.task = task
        return task

    def __aiter__(self) -> OutcomeStream[T, R]:
        return self

    async def __anext__(self) -> Outcome[T, R]:
        task = self._state.task or self._start()
        try:
            return await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception()) from None
            raise StopAsyncIteration from None
        except BaseException:
            # the consumer was cancelled (or interrupted): take everything in flight down
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Cancel every item in flight and wait until they are gone."""
        task = self._state.task
        if self._send is not None:  # never started
            self._send.close()
            self._send = None
        self._recv.close()
        if task is not None and not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})

    async def __aenter__(self) -> OutcomeStream[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # abandoned mid-iteration without aclose(): at least stop the workers
        task = self._state.task
        if task is not None and not task.done():
            task.cancel()


def stream_outcomes(
    fn: Callable[[T], Awaitable[R]],
    items: AsyncOrSyncIterable[T],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    stop_on_error: bool = False,
) -> OutcomeStream[T, R]:
    """Like :func:`map_outcomes`, but yields each :class:`Outcome` as soon as it completes.

    Use as ``async for outcome in stream_outcomes(...)``, or within ``async with`` to be sure
    the workers are cancelled when the block is left early::

        async with stream_outcomes(fetch, ids, concurrency=64) as outcomes:
            async for o in outcomes:
                ...
    """
    pump = _Pump(
        fn, items, concurrency=concurrency, on_progress=on_progress, stop_on_error=stop_on_error
    )
    return OutcomeStream(pump)
