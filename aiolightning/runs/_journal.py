"""``Journal``: a run journal file and the run it names; what a file holds, and pruning it.

One SQLite file holds any number of runs, each under a run id. A bulk helper given
``journal="fleet.db"`` uses the run named after the helper (``jobs.submit_many``); a
``Journal("fleet.db", run="nightly-2026-12-07")`` picks its own. Records never expire: they
stay until :meth:`Journal.prune` (``aiolightning runs prune``) removes them.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from ._errors import JournalBusyError, JournalError
from ._lease import holder_alive
from ._schema import connect

__all__ = ["ItemInfo", "Journal", "JournalLike", "RunInfo", "as_journal"]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run of a journal file, as ``aiolightning runs list`` shows it."""

    run_id: str
    kind: str
    status: str  # running | finished | incomplete
    items: int
    done: int
    failed: int
    in_flight: int  # intent recorded, no outcome: reconciled with the service on a rerun
    created: float
    updated: float
    holder: str  # "pid@host" of a live holder, "" when free (or its holder died)


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """One item of a run: its key, marker, state and recorded outcome or error."""

    key: str
    marker: str
    state: str  # intent | done | failed
    outcome: str | None
    error: str | None
    updated: float


class Journal:
    """A run journal: the SQLite file at ``path`` and, optionally, the id of a run inside it.

    Pass it (or just the path) as ``journal=`` to a bulk helper. ``lease_ttl``: seconds
    without a heartbeat after which a holder on another host counts as dead (on this host a
    holder whose pid is gone counts as dead at once)."""

    def __init__(
        self, path: str | os.PathLike[str], run: str | None = None, *, lease_ttl: float = 15.0
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise JournalError(f"journal must be a file path or a Journal, got {path!r}")
        if run is not None and (not isinstance(run, str) or not run.strip()):
            raise JournalError(f"run must be a non-empty string, got {run!r}")
        if isinstance(lease_ttl, bool) or not isinstance(lease_ttl, (int, float)) or lease_ttl <= 0:
            raise JournalError(f"lease_ttl must be a positive number of seconds, got {lease_ttl!r}")
        self.path = Path(path)
        self.run = run
        self.lease_ttl = float(lease_ttl)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, run={self.run!r})"

    def _read(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise JournalError(f"no journal at {str(self.path)!r}")
        return connect(self.path)

    def runs(self) -> list[RunInfo]:
        """Every run of the file, oldest first."""
        with closing(self._read()) as conn:
            rows = conn.execute(
                "SELECT r.run_id, r.kind, r.status, r.created, r.updated, r.owner, r.owner_pid, "
                "r.owner_host, r.heartbeat, "
                "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id), "
                "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND state = 'done'), "
                "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND state = 'failed') "
                "FROM runs r ORDER BY r.created"
            ).fetchall()
        out = []
        for run_id, kind, status, created, updated, owner, pid, host, beat, n, done, failed in rows:
            live = owner is not None and holder_alive(pid, host, beat, self.lease_ttl)
            if status == "running" and not live:
                status = "incomplete"  # its holder died
            out.append(
                RunInfo(
                    run_id,
                    kind,
                    status,
                    n,
                    done,
                    failed,
                    n - done - failed,
                    created,
                    updated,
                    f"{pid}@{host}" if live else "",
                )
            )
        return out

    def items(self, run: str | None = None) -> list[ItemInfo]:
        """The items of one run (``run``, else this journal's run), in the order recorded."""
        run_id = self._one_run(run)
        with closing(self._read()) as conn:
            rows = conn.execute(
                "SELECT key, marker, state, outcome, error, updated FROM items "
                "WHERE run_id = ? ORDER BY updated",
                (run_id,),
            ).fetchall()
        return [
            ItemInfo(key, marker, state, out.decode() if out is not None else None, error, t)
            for key, marker, state, out, error, t in rows
        ]

    def prune(self, run: str | None = None, *, finished_only: bool = False) -> list[str]:
        """Delete a run (``run``), or every run, with its items; returns the ids removed.

        A run held by a live process is never removed; ``finished_only`` keeps the runs that
        did not finish (the ones a rerun could still complete)."""
        wanted = {run} if run is not None else None
        removed = []
        for info in self.runs():
            if wanted is not None and info.run_id not in wanted:
                continue
            if info.holder:
                if wanted is not None:
                    raise JournalBusyError(f"run {info.run_id!r} is held by {info.holder}")
                continue
            if finished_only and info.status != "finished":
                continue
            removed.append(info.run_id)
        if wanted is not None and not removed and not finished_only:
            raise JournalError(f"no run {run!r} in {str(self.path)!r}")
        with closing(self._read()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            for run_id in removed:
                conn.execute("DELETE FROM items WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            conn.execute("COMMIT")
        return removed

    def _one_run(self, run: str | None) -> str:
        run_id = run or self.run
        if run_id is not None:
            return run_id
        ids = [r.run_id for r in self.runs()]
        if len(ids) == 1:
            return ids[0]
        raise JournalError(f"{str(self.path)!r} holds {len(ids)} runs; name one: {ids}")


JournalLike: TypeAlias = "str | os.PathLike[str] | Journal"


def as_journal(journal: JournalLike) -> Journal:
    """A ``journal=`` argument as a :class:`Journal` (a path becomes one, without a run id)."""
    return journal if isinstance(journal, Journal) else Journal(journal)
