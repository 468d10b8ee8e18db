"""The journal's one writer thread: it owns the SQLite connection and commits writes in batches.

Writes queue up while a batch commits; the next batch takes everything queued (group commit),
so 64 items in flight cost one commit, not 64. A write that must be durable before the caller
goes on (an item's intent) returns a future that resolves once its batch is committed; an
outcome need not wait (if it is lost in a crash, the rerun reconciles the item). Between
batches the thread refreshes the run's lease heartbeat; if another process has taken the
run over meanwhile, every later write fails with :class:`JournalBusyError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
_Op = tuple[str, tuple[Any, ...], "concurrent.futures.Future[None] | None"]


class Writer:
    """Batches and commits writes to one run on a thread of its own."""

    def __init__(self, conn: sqlite3.Connection, run_id: str, holder: Holder) -> None:
        self._conn = conn
        self._run_id = run_id
        self._holder = holder
        self._q: queue.SimpleQueue[_Op | Callable[[sqlite3.Connection], None] | None] = (
            queue.SimpleQueue()
        )
        self.lost: BaseException | None = None
        self._beat = time.time()
        self._thread = threading.Thread(target=self._loop, name="aiolightning-journal", daemon=True)
        self._thread.start()

    def write(self, sql: str, params: tuple[Any, ...], *, durable: bool) -> asyncio.Future[None]:
        """Queue one statement; with ``durable`` the returned future resolves once committed."""
        if self.lost is not None:
            raise self.lost
        fut: concurrent.futures.Future[None] | None = (
            concurrent.futures.Future() if durable else None
        )
        self._q.put((sql, params, fut))
        if fut is None:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return asyncio.wrap_future(fut)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.write("SELECT 1", (), durable=True)

    async def close(self, last: Callable[[sqlite3.Connection], None]) -> None:
        """Commit what is queued, run ``last`` (the lease release) and stop the thread."""
        self._q.put(last)
        self._q.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._conn.close()

    def _loop(self) -> None:
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
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op in batch:
                    if isinstance(op, tuple):
                        conn.execute(op[0], op[1])
                    else:
                        op(conn)
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
            if isinstance(exc, JournalBusyError):
                self.lost = exc
            for fut in futures:
                fut.set_exception(exc)
            return
        for fut in futures:
            fut.set_result(None)

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
