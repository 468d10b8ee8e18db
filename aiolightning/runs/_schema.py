"""The journal file's SQLite schema: created in an empty file, checked in an existing one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._errors import JournalCorruptError

__all__ = ["FORMAT", "VERSION", "connect"]

FORMAT = "aiolightning-run-journal"
VERSION = "1"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,            -- running | finished | incomplete
    created REAL NOT NULL,
    updated REAL NOT NULL,
    owner TEXT,                      -- random token of the lease holder, NULL when free
    owner_pid INTEGER,
    owner_host TEXT,
    heartbeat REAL                   -- the holder's last sign of life (time.time())
);
CREATE TABLE items (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    marker TEXT NOT NULL,            -- the idempotency marker sent with the item
    state TEXT NOT NULL,             -- intent | done | failed
    outcome TEXT,                    -- JSON of the value, for done items
    error TEXT,                      -- the last failure, for failed items
    updated REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
"""


def _fail(path: Path, why: str) -> JournalCorruptError:
    return JournalCorruptError(
        f"{str(path)!r} {why}; it was left untouched (give another file, or move this one away)"
    )


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if new) a journal file: WAL, NORMAL sync, schema checked.

    A file that is not SQLite, is damaged, or is some other program's database raises
    :class:`JournalCorruptError`; it is never reset."""
    try:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _fail(path, f"cannot be opened ({exc})") from exc
    try:
        conn.execute("BEGIN IMMEDIATE")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            conn.executescript(_SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("version", VERSION)],
            )
        elif "meta" not in tables:
            raise _fail(path, "is an SQLite database of another program, not a run journal")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise _fail(path, "is an SQLite database of another program, not a run journal")
        if meta.get("version") != VERSION:
            raise _fail(path, f"is a run journal of format version {meta.get('version')!r}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _fail(path, f"is not a readable run journal ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn
