"""A journaled bulk call: each item's intent before its first mutating request, its outcome after.

A bulk helper describes its items with an :class:`ItemPlan` (key, send, reconcile, codec) and
runs ``map_outcomes`` over the step :func:`journaled` yields. For each item the step

* returns the recorded value of an item already **done** (nothing is sent);
* reconciles an item with a recorded intent (in flight or failed when the last run ended)
  with the service first (``plan.reconcile``: a lookup by name or marker) and sends it,
  with the same marker, only if the service never saw it;
* otherwise records the intent (item key, a fresh marker), waits until it is committed,
  sends, and records the outcome.
"""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import msgspec

from .. import _crash as crash
from ._errors import JournalCorruptError, JournalError
from ._journal import JournalLike, as_journal
from ._lease import Holder, release, take
from ._schema import connect
from ._writer import Writer

__all__ = ["ItemPlan", "Seen", "journaled"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Seen(Generic[R]):
    """What a reconcile found: the service already did the item; ``value`` is its result."""

    value: R


_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


class _Markers:
    """Markers unique to each item: 64 random bits per process, then a counter (one
    ``urandom`` call per item would cost more than the rest of the journal's work on it)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:  # also in a forked child: it must not repeat its parent's
        self.prefix = os.urandom(8).hex()
        self.count = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.count):08x}"


_new_marker = _Markers()
os.register_at_fork(after_in_child=_new_marker.reset)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class ItemPlan(Generic[T, R]):
    """How one bulk helper journals its items."""

    kind: str  # e.g. "jobs.submit_many": the default run id, and checked on a rerun
    key: Callable[[T], str]  # the item's identity across runs (a name, a remote path)
    send: Callable[[T, str], Awaitable[R]]  # do the item, carrying this marker
    # look the item up at the service after a crash: Seen(value) if it was done, else None;
    # None here: sending again is harmless (the helper's own action is idempotent)
    reconcile: Callable[[T, str], Awaitable[Seen[R] | None]] | None = None
    encode: Callable[[R], Any] = _same  # value -> JSON-able
    decode: Callable[[Any], R] = _same
    new_marker: Callable[[], str] = field(default=_new_marker)


@dataclass(slots=True)
class _Record:
    state: str
    marker: str
    outcome: bytes | None


class _Keys:
    """Item keys, repeated ones told apart by their order: ``a``, ``a#2``, ``a#3``."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, key: str) -> str:
        n = self._seen.get(key, 0) + 1
        self._seen[key] = n
        return key if n == 1 else f"{key}#{n}"


class _Step(Generic[T, R]):
    def __init__(
        self, plan: ItemPlan[T, R], writer: Writer, run_id: str, records: dict[str, _Record]
    ) -> None:
        self.plan = plan
        self.writer = writer
        self.run_id = run_id
        self.records = records
        self.keys = _Keys()
        self.failed = 0

    async def __call__(self, item: T) -> R:
        plan = self.plan
        key = self.keys(plan.key(item))
        rec = self.records.get(key)
        if rec is not None and rec.state == "done":
            return plan.decode(_json_decode(rec.outcome or b"null"))
        token = crash.IN_ITEM.set(True)
        try:
            if rec is None:
                crash.reached("before-intent")
                marker = plan.new_marker()
                await self.writer.write_durable(
                    "INSERT INTO items VALUES (?, ?, ?, 'intent', NULL, NULL, ?)",
                    (self.run_id, key, marker, time.time()),
                )
                crash.reached("after-intent")
                value = await plan.send(item, marker)
            else:
                marker = rec.marker
                seen = await plan.reconcile(item, marker) if plan.reconcile is not None else None
                value = seen.value if seen is not None else await plan.send(item, marker)
        except Exception as exc:
            self.failed += 1
            self.writer.write(  # no row (the intent never committed): changes nothing
                "UPDATE items SET state = 'failed', error = ?, updated = ? "
                "WHERE run_id = ? AND key = ?",
                (f"{type(exc).__name__}: {exc}"[:2000], time.time(), self.run_id, key),
            )
            raise
        finally:
            crash.IN_ITEM.reset(token)
        crash.reached("after-answer")
        self.writer.write(
            "UPDATE items SET state = 'done', outcome = ?, error = NULL, updated = ? "
            "WHERE run_id = ? AND key = ?",
            (_json_encode(plan.encode(value)), time.time(), self.run_id, key),
        )
        return value


def _load(conn: Any, run_id: str) -> dict[str, _Record]:
    rows = conn.execute(
        "SELECT key, state, marker, outcome FROM items WHERE run_id = ?", (run_id,)
    ).fetchall()
    return {k: _Record(state, marker, outcome) for k, state, marker, outcome in rows}


def _open(
    path: Path, run_id: str, kind: str, me: Holder, ttl: float
) -> tuple[Any, dict[str, _Record]]:
    conn = connect(path)
    try:
        take(conn, run_id, kind, me, ttl)
        return conn, _load(conn, run_id)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise JournalCorruptError(
            f"{str(path)!r} is damaged ({exc}); it was left untouched"
        ) from exc
    except BaseException:
        conn.close()
        raise


@asynccontextmanager
async def journaled(
    journal: JournalLike | None, plan: ItemPlan[T, R]
) -> AsyncIterator[Callable[[T], Awaitable[R]]]:
    """The per-item step of a bulk call, journaled in ``journal`` (or plain without one).

    Holds the run's lease from entry to exit; on exit the outcomes are committed and the run
    is marked ``finished`` (every item done) or ``incomplete`` (failures, an error, a cancel)."""
    if journal is None:

        async def plain(item: T) -> R:
            return await plan.send(item, plan.new_marker())

        yield plain
        return
    j = as_journal(journal)
    run_id = j.run or plan.kind
    me = Holder(uuid.uuid4().hex, os.getpid(), socket.gethostname())
    conn, records = await anyio.to_thread.run_sync(
        _open, j.path, run_id, plan.kind, me, j.lease_ttl
    )
    writer = Writer(conn, run_id, me)
    step = _Step(plan, writer, run_id, records)
    status = "incomplete"
    try:
        yield step
        status = "finished" if step.failed == 0 else "incomplete"
    finally:
        with anyio.CancelScope(shield=True):
            lost = writer.lost
            await writer.close(lambda c: release(c, run_id, me, status))
        if lost is not None and status == "finished":
            raise JournalError(f"the journal lost run {run_id!r}: {lost}") from lost
