"""Who holds a run: the lease row, taken by compare-and-set, and how a dead holder is told.

A run's row in ``runs`` names its holder: a random token, the pid and the host name, and a
heartbeat the holder's writer thread refreshes every :data:`HEARTBEAT` seconds. Taking the
lease is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock) that reads the row and
writes our token only if the run is free or its holder is dead. A holder is dead when

* it is on this host and its pid no longer exists (a ``kill -9``: taken over at once), or
* its heartbeat is older than the lease's ``ttl`` (another host, or a pid reused/hung).

Anything else is a live holder, and the caller gets :class:`JournalBusyError`.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

from ._errors import JournalBusyError, JournalError

__all__ = ["HEARTBEAT", "Holder", "holder_alive", "release", "take"]

HEARTBEAT = 2.0


@dataclass(frozen=True, slots=True)
class Holder:
    token: str
    pid: int
    host: str


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def holder_alive(pid: int | None, host: str | None, heartbeat: float | None, ttl: float) -> bool:
    """Whether the recorded holder of a run still lives (see the module docstring)."""
    if pid is None or heartbeat is None:
        return False
    if time.time() - heartbeat > ttl:
        return False
    if host == socket.gethostname():
        return _pid_exists(pid)
    return True


def take(
    conn: sqlite3.Connection, run_id: str, kind: str, me: Holder, ttl: float
) -> tuple[bool, str]:
    """Take the lease of ``run_id`` (creating the run); ``(created, previous status)``."""
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT kind, status, owner, owner_pid, owner_host, heartbeat FROM runs "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (run_id, kind, now, now, me.token, me.pid, me.host, now),
            )
            conn.execute("COMMIT")
            return True, ""
        run_kind, status, owner, pid, host, heartbeat = row
        if run_kind != kind:
            raise JournalError(
                f"run {run_id!r} of this journal holds {run_kind}, not {kind}; "
                "give another run id (Journal(path, run=...)) or another file"
            )
        if owner is not None and holder_alive(pid, host, heartbeat, ttl):
            raise JournalBusyError(
                f"run {run_id!r} is held by process {pid} on {host!r} (heartbeat "
                f"{now - heartbeat:.1f} s ago); wait for it to finish, or stop it"
            )
        conn.execute(
            "UPDATE runs SET owner = ?, owner_pid = ?, owner_host = ?, heartbeat = ?, "
            "status = 'running', updated = ? WHERE run_id = ?",
            (me.token, me.pid, me.host, now, now, run_id),
        )
        conn.execute("COMMIT")
        return False, status
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def release(conn: sqlite3.Connection, run_id: str, me: Holder, status: str) -> None:
    """Give the lease back (only if still ours) and record the run's status."""
    conn.execute(
        "UPDATE runs SET owner = NULL, status = ?, updated = ? WHERE run_id = ? AND owner = ?",
        (status, time.time(), run_id, me.token),
    )
