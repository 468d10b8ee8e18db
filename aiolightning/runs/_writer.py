"""The journal's one writer thread: it owns the SQLite connection and commits writes in batches.

Writes queue up while a batch commits; the next batch takes everything queued (group commit),
so 64 items in flight cost one commit, not 64. A write that must be durable before the caller
goes on (an item's intent) gets a future that resolves once its batch is committed (one wake-up
of the event loop per batch, not per write); an outcome need not wait (if it is lost in a
crash, the rerun reconciles the item). Between batches the thread refreshes the run's lease
heartbeat; if another process has taken the run over meanwhile, every later write fails with
:class:`JournalBusyError`.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import _crash as crash
from ._errors import JournalBusyError
from ._lease import HEARTBEAT, Holder

__all__ = ["Writer"]

_BATCH = 1024
_Op = tuple[str, tuple[Any, ...], "asyncio.Future[None] | None"]
_Item = _Op | Callable[[sqlite3.Connection], None] | None


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


class Writer:
    """Batches and commits writes to one run on a thread of its own."""

    def __init__(self, conn: sqlite3.Connection, run_id: str, holder: Holder) -> None:
        self._conn = conn
        self._run_id = run_id
        self._holder = holder
        self._loop = asyncio.get_running_loop()
        self._q: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.lost: BaseException | None = None
        self._beat = time.time()
        self._thread = threading.Thread(target=self._run, name="aiolightning-journal", daemon=True)
        self._thread.start()

    def write(self, sql: str, params: tuple[Any, ...]) -> None:
        """Queue one statement; it is committed with the next batch."""
        if self.lost is not None:
            raise self.lost
        self._q.put((sql, params, None))

    def write_durable(self, sql: str, params: tuple[Any, ...]) -> asyncio.Future[None]:
        """Queue one statement; the future resolves once its batch is committed."""
        if self.lost is not None:
            raise self.lost
        fut = self._loop.create_future()
        self._q.put((sql, params, fut))
        return fut

    async def close(self, last: Callable[[sqlite3.Connection], None]) -> None:
        """Commit what is queued, run ``last`` (the lease release) and stop the thread."""
        self._q.put(last)
        self._q.put(None)
        await self._loop.run_in_executor(None, self._thread.join)
        self._conn.close()

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=HEARTBEAT)
            except queue.Empty:
                first = ("SELECT 1", (), None)  # nothing to write: a heartbeat
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            self._commit([op for op in batch if op is not None])
            if any(op is None for op in batch):
                return

    def _commit(self, batch: list[_Op | Callable[[sqlite3.Connection], None]]) -> None:
        conn = self._conn
        futures = [op[2] for op in batch if isinstance(op, tuple) and op[2] is not None]
        error: BaseException | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                run: list[tuple[Any, ...]] = []  # consecutive statements of one SQL text
                sql = ""
                for op in batch:
                    if isinstance(op, tuple) and op[0] == sql:
                        run.append(op[1])
                        continue
                    if run:
                        conn.executemany(sql, run)
                    if isinstance(op, tuple):
                        sql, run = op[0], [op[1]]
                    else:
                        sql, run = "", []
                        op(conn)
                if run:
                    conn.executemany(sql, run)
                now = time.time()
                if now - self._beat >= HEARTBEAT:
                    self._heartbeat(now)
                if futures:
                    crash.reached("in-commit")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException as exc:
            error = exc
            if isinstance(exc, JournalBusyError):
                self.lost = exc
        if futures:
            try:
                self._loop.call_soon_threadsafe(_settle, futures, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _heartbeat(self, now: float) -> None:
        cur = self._conn.execute(
            "UPDATE runs SET heartbeat = ? WHERE run_id = ? AND owner = ?",
            (now, self._run_id, self._holder.token),
        )
        self._beat = now
        if cur.rowcount == 0:
            raise JournalBusyError(
                f"run {self._run_id!r} was taken over by another process (this one looked "
                "dead to it: no heartbeat for longer than the lease); stopped writing"
            )
