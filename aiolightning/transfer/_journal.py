"""The resume journal of a multipart upload.

One JSON-lines file per (remote target, local file) under the journal directory: a header
line (target, file size and mtime, part size, upload id), then one line per finished part
(part number and ETag), appended as each part completes. A later upload of the same file
to the same target, with the same size and mtime, re-signs only the missing parts of that
upload id. Anything that doesn't match (or a torn last line) is ignored, never trusted.

A journal is deleted when its upload completes (or is refused for good). If that delete
fails, the journal ends with a ``{"complete":true}`` line and is never resumed. Journals
are best effort: a journal directory that cannot be read or written costs the resume, never
the upload.

Pruning (:func:`start_prune`, at most once per journal directory and process, in a daemon
thread, at the first resumable upload): journals not written for ``journal_max_age``
seconds (their upload has most likely expired on the server: object stores drop incomplete
multipart uploads after a few days), journals marked complete, and temp files left by a
crash are deleted. Journals claimed by an upload of this process are left alone; another
process resuming a journal older than the max age at that very moment may lose it, which
only costs that resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Journal", "JournalHeader", "prune_journals", "start_prune"]

logger = logging.getLogger("aiolightning.transfer")

_VERSION = 1
_COMPLETE = b'{"complete":true}'


class JournalHeader(msgspec.Struct, frozen=True, kw_only=True):
    v: int = _VERSION
    target: str  # "<base>|<remote path>|<cluster id>"
    local: str
    size: int
    mtime_ns: int
    part_size: int
    parts: int
    upload_id: str


class _PartLine(msgspec.Struct, frozen=True):
    n: int
    etag: str


_dec_header = msgspec.json.Decoder(JournalHeader)
_dec_part = msgspec.json.Decoder(_PartLine)


@dataclass
class Journal:
    """Blocking file operations; the upload engine calls them from a worker thread, except
    :meth:`record`, a single small unbuffered append."""

    path: Path
    header: JournalHeader | None = None
    done: dict[int, str] = field(default_factory=dict)
    completed: bool = False  # ends with the complete marker: never resumed
    _fd: int | None = None
    _claimed: bool = False

    @staticmethod
    def path_for(root: Path, target: str, local: str) -> Path:
        key = hashlib.sha256(f"{target}\n{local}".encode()).hexdigest()[:40]
        return root / f"{key}.jsonl"

    @classmethod
    def load(cls, path: Path) -> Journal:
        """Read a journal (empty if missing or unreadable)."""
        j = cls(path)
        try:
            raw = path.read_bytes()
        except OSError:
            return j
        lines = raw.split(b"\n")
        try:
            j.header = _dec_header.decode(lines[0])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return j
        if j.header.v != _VERSION:
            j.header = None
            return j
        for line in lines[1:]:
            if not line:
                continue
            if line == _COMPLETE:
                j.completed = True
                break
            try:
                p = _dec_part.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                break  # a torn last line: the parts before it still count
            j.done[p.n] = p.etag
        return j

    def matches(self, expected: JournalHeader) -> bool:
        h = self.header
        if h is None or self.completed:
            return False
        return msgspec.structs.replace(h, upload_id="") == (
            msgspec.structs.replace(expected, upload_id="")
        )

    def start(self, header: JournalHeader, done: dict[int, str] | None = None) -> None:
        """(Re)write the journal with ``header`` and the parts already done; keep it open.
        From here until :meth:`finish` the pruning of this process leaves it alone."""
        self.close()
        if not self._claimed:
            with _lock:
                _in_use.add(str(self.path))
            self._claimed = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header = header
        self.done = dict(done or {})
        lines: list[Any] = [msgspec.json.encode(header)]
        lines += [msgspec.json.encode(_PartLine(n, e)) for n, e in sorted(self.done.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(b"\n".join(lines) + b"\n")
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def try_start(self, header: JournalHeader, done: dict[int, str] | None = None) -> bool:
        """:meth:`start`, or False (logged, claim released) if the journal cannot be written:
        the upload then goes on without one."""
        try:
            self.start(header, done)
        except OSError as e:
            logger.warning("upload journal %s cannot be written (%s); no resume", self.path, e)
            self.finish(drop=False)
            return False
        return True

    def record(self, n: int, etag: str) -> None:
        self.done[n] = etag
        if self._fd is not None:
            try:
                os.write(self._fd, msgspec.json.encode(_PartLine(n, etag)) + b"\n")
            except OSError as e:  # a full disk: stop journaling, keep uploading
                logger.warning("upload journal %s: %s; no resume", self.path, e)
                self.close()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def remove(self, completed: bool = False) -> None:
        if completed and self._fd is not None:
            with contextlib.suppress(OSError):  # if the unlink below fails, never resumed
                os.write(self._fd, _COMPLETE + b"\n")
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def finish(self, *, drop: bool, completed: bool = False) -> None:
        """The upload is over: delete the journal (``drop``) or keep it for a resume, and
        release the claim."""
        if drop:
            self.remove(completed)
        else:
            self.close()
        if self._claimed:
            with _lock:
                _in_use.discard(str(self.path))
            self._claimed = False


# ---------------------------------------------------------------------------- pruning

_lock = threading.Lock()  # guards _in_use; held by the pruner around each unlink
_in_use: set[str] = set()  # journal paths claimed by uploads of this process
_pruned_lock = threading.Lock()
_pruned: set[str] = set()  # journal directories pruned (or being pruned) by this process


def _ends_complete(path: str, size: int) -> bool:
    n = len(_COMPLETE) + 2
    with open(path, "rb") as f:
        if size > n:
            f.seek(size - n)
        return f.read().rstrip(b"\n").endswith(_COMPLETE)


def prune_journals(root: Path, max_age: float | None, now: float | None = None) -> int:
    """Delete the journals of ``root`` not written for ``max_age`` seconds (None: keep
    them), those marked complete, and stale temp files; return how many. Blocking (run it in
    a thread); never raises: an unreadable directory or file is skipped."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = os.scandir(root)
    except OSError:
        return 0
    with entries:
        for de in entries:
            name = de.name
            journal = name.endswith(".jsonl")
            if not (journal or name.endswith(".jsonl.tmp")):
                continue
            try:
                st = de.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                old = max_age is not None and now - st.st_mtime > max_age
                if not old and not (journal and _ends_complete(de.path, st.st_size)):
                    continue
                with _lock:
                    if de.path in _in_use:
                        continue
                    os.unlink(de.path)
                removed += 1
            except OSError:
                continue
    if removed:
        logger.debug("pruned %d upload journals in %s", removed, root)
    return removed


def start_prune(root: Path, max_age: float | None) -> threading.Thread | None:
    """Prune ``root`` in a daemon thread, unless this process already did (or is doing) it;
    returns the thread started, if any. Cheap enough to call before every upload."""
    key = str(root)
    with _pruned_lock:
        if key in _pruned:
            return None
        _pruned.add(key)
    t = threading.Thread(
        target=prune_journals, args=(root, max_age), name="aiolightning-journal-prune", daemon=True
    )
    t.start()
    return t
