"""MD5 for part checks, with many streams hashed together when the CPU allows.

Every uploaded part is hashed to check it against the object store's ETag. One MD5 stream
is a single dependency chain (~0.6 GB/s per core with OpenSSL), which at loopback or 10 Gb/s
speeds costs more CPU than sending the bytes. Parts go up several at a time, though, so the
work is many independent streams: ``aiolightning._md5mb`` (a small C extension, built when a
compiler is present) hashes up to 16 streams in lockstep, one per lane of an AVX-512
register: ~4 GB/s per core with 8 streams, ~7.5 GB/s with 16 (hashlib: 0.45-0.6).

With the kernel, one process-wide hasher thread runs it: each call takes the oldest queued
chunk of every stream (chunks of one stream are hashed in order), and when fewer streams are
queued than are open, it waits for the others first, because a call costs the same with 1
lane busy as with 16; it stops waiting :data:`_GRACE` seconds after anyone blocks on a queued
chunk (at once for a blocked worker thread), and after :data:`_GATHER` seconds at most. Without the kernel, or with
``AIOLIGHTNING_MD5=hashlib`` in the environment, hashing is ``hashlib.md5`` in worker threads.

- :class:`PartMd5` hashes a part streamed chunk by chunk from the event loop: ``feed`` queues
  a chunk and returns once the previous one is hashed, so hashing overlaps sending and at
  most one chunk per part waits for the hasher.
- :func:`new_md5` is a plain hash object for worker threads (``update`` blocks until done).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

try:
    from .. import _md5mb
except ImportError:  # built without a C compiler: hashlib it is
    _md5mb = None  # type: ignore[assignment]

__all__ = ["QUEUE_DEPTH", "Md5", "PartMd5", "backend", "hasher_stats", "new_md5"]

_DIRECT = 64 * 1024  # smaller updates are hashed at once, on the calling thread
# longest wait for the other open streams' chunks before a kernel call. A stream whose part
# goes out at 1/8 of ~250 MB/s yields a 2 MiB chunk every ~65 ms, so 8 streams' chunks take
# that long to meet: at 0.04 s calls carried 3.7-5.7 streams, at 0.25 s 6-7 of 8 (a stream
# with QUEUE_DEPTH chunks queued, or a part that ends, still cuts the wait to _GRACE)
_GATHER = 0.25
_GRACE = 0.005  # how much longer it gathers once a part is blocked on a queued chunk
_IDLE = 5.0  # the hasher thread ends after this long without work

Buffer = bytes | bytearray | memoryview


class Md5(Protocol):
    def update(self, data: Buffer, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Job:
    __slots__ = ("data", "done", "state")

    def __init__(
        self, state: _md5mb.MD5, data: Buffer, done: Callable[[BaseException | None], None]
    ) -> None:
        self.state = state
        self.data = data
        self.done = done


class _Hasher:
    """The thread that runs the multi-buffer kernel over whatever is queued."""

    def __init__(self, lanes: int) -> None:
        self._lanes = lanes
        self._cv = threading.Condition(threading.Lock())
        self._queue: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._hurry_at = math.inf  # someone blocks on a queued chunk: stop gathering then
        self.open_streams = 0  # PartMd5 objects between their first feed and close
        self.calls = 0  # kernel calls
        self.chunks = 0  # chunks hashed by them

    def submit(
        self,
        state: _md5mb.MD5,
        data: Buffer,
        done: Callable[[BaseException | None], None],
        *,
        urgent: bool = False,
    ) -> None:
        with self._cv:
            self._queue.append(_Job(state, data, done))
            if urgent:
                self._hurry_at = 0.0
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aiolightning-md5", daemon=True
                )
                self._thread.start()
            else:
                self._cv.notify()

    def hurry(self) -> None:
        """A part now waits for a queued chunk: stop gathering in _GRACE seconds (a part that
        ends hurries every time; the grace lets the other streams' chunks join its call)."""
        with self._cv:
            self._hurry_at = min(self._hurry_at, time.monotonic() + _GRACE)
            self._cv.notify()

    def stream_opened(self) -> None:
        with self._cv:
            self.open_streams += 1

    def stream_closed(self) -> None:
        with self._cv:
            self.open_streams -= 1
            self._cv.notify()  # a gathering hasher need not wait for this one

    def _distinct(self) -> int:
        return len({id(j.state) for j in self._queue})

    def _take(self) -> list[_Job]:
        """The oldest queued chunk of each stream, one per lane (lock held)."""
        batch: list[_Job] = []
        seen: set[int] = set()
        keep: list[_Job] = []
        while self._queue and len(batch) < self._lanes:
            job = self._queue.popleft()
            if id(job.state) in seen:  # a later chunk of a stream already in this batch
                keep.append(job)
            else:
                seen.add(id(job.state))
                batch.append(job)
        self._queue.extendleft(reversed(keep))
        return batch

    def _run(self) -> None:
        assert _md5mb is not None
        while True:
            with self._cv:
                idle_until = time.monotonic() + _IDLE
                while not self._queue:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        self._thread = None
                        return
                    self._cv.wait(left)
                # a call costs the same for 1 lane as for 16: wait briefly for the rest
                deadline = time.monotonic() + _GATHER
                while self._distinct() < min(self.open_streams, self._lanes):
                    left = min(deadline, self._hurry_at) - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                batch = self._take()
                self._hurry_at = math.inf
            error: BaseException | None = None
            try:
                _md5mb.update_many([j.state for j in batch], [j.data for j in batch])
            except BaseException as e:  # handed to every waiter of the batch
                error = e
            self.calls += 1
            self.chunks += len(batch)
            for j in batch:
                j.data = b""
                j.done(error)


class _KernelMd5:
    """A blocking hash object on the kernel, for worker threads."""

    __slots__ = ("_hasher", "_state")

    def __init__(self, hasher: _Hasher) -> None:
        assert _md5mb is not None
        self._hasher = hasher
        self._state = _md5mb.MD5()

    def update(self, data: Buffer, /) -> None:
        if len(data) < _DIRECT:
            self._state.update(data)
            return
        finished = threading.Event()
        box: list[BaseException | None] = []

        def done(error: BaseException | None) -> None:
            box.append(error)
            finished.set()

        self._hasher.submit(self._state, data, done, urgent=True)
        finished.wait()
        if box[0] is not None:
            raise box[0]

    def hexdigest(self) -> str:
        return self._state.hexdigest()


class PartMd5:
    """The MD5 of one part streamed from the event loop; ``close()`` when done or abandoned.

    Up to :data:`QUEUE_DEPTH` chunks may wait for the hasher (sent already, still held);
    ``feed`` blocks only beyond that, so a stream rarely waits and the hasher can gather
    every stream's chunk into one call.
    """

    def __init__(self) -> None:
        self._pending: deque[asyncio.Future[None]] = deque()
        self._opened = False
        if _HASHER is not None:
            assert _md5mb is not None
            self._state: _md5mb.MD5 | None = _md5mb.MD5()
            self._hashlib = None
        else:
            self._state = None
            self._hashlib = hashlib.md5()

    async def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            fut = self._pending[0]
            if not fut.done() and _HASHER is not None:
                _HASHER.hurry()
            await fut
            self._pending.popleft()

    async def feed(self, data: Buffer) -> None:
        """Queue ``data`` for hashing; wait only while QUEUE_DEPTH earlier chunks are queued."""
        await self._drain(QUEUE_DEPTH - 1)
        loop = asyncio.get_running_loop()
        if self._state is None:  # hashlib in a worker thread, one chunk at a time
            assert self._hashlib is not None
            self._pending.append(loop.run_in_executor(None, self._hashlib.update, data))
            return
        assert _HASHER is not None
        if not self._opened:
            self._opened = True
            _HASHER.stream_opened()
        fut: asyncio.Future[None] = loop.create_future()

        def resolve(error: BaseException | None) -> None:
            if not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

        def done(error: BaseException | None) -> None:  # on the hasher thread
            try:
                loop.call_soon_threadsafe(resolve, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        self._pending.append(fut)
        _HASHER.submit(self._state, data, done)

    async def hexdigest(self) -> str:
        try:
            await self._drain(0)
        finally:
            self.close()
        if self._state is not None:
            return self._state.hexdigest()
        assert self._hashlib is not None
        return self._hashlib.hexdigest()

    def close(self) -> None:
        """Stop counting as an open stream (a queued chunk is still hashed, then dropped)."""
        if self._opened and _HASHER is not None:
            self._opened = False
            _HASHER.stream_closed()


def backend() -> str:
    """``"multi-buffer x16"`` when the kernel is used, else ``"hashlib"``."""
    if _HASHER is None or _md5mb is None:
        return "hashlib"
    return f"multi-buffer x{_md5mb.LANES}"


def hasher_stats() -> tuple[int, int]:
    """(kernel calls, chunks they hashed) in this process: chunks/calls is the mean number
    of streams hashed together."""
    return (0, 0) if _HASHER is None else (_HASHER.calls, _HASHER.chunks)


def new_md5() -> Md5:
    """A hash object for worker threads: the kernel when available, else hashlib's."""
    if _HASHER is None:
        return hashlib.md5()
    return _KernelMd5(_HASHER)


def _make_hasher() -> _Hasher | None:
    if _md5mb is None or not _md5mb.ACCELERATED:
        return None
    if os.environ.get("AIOLIGHTNING_MD5", "").strip().lower() == "hashlib":
        return None
    return _Hasher(_md5mb.LANES)


_HASHER = _make_hasher()
# Chunks of one PartMd5 that may wait for hashing at once: hashlib updates of one object
# must not overlap, so one; the hasher keeps each stream's chunks in order, so a few.
QUEUE_DEPTH = 1 if _HASHER is None else 3
