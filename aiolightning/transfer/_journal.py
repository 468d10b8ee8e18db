"""The resume journal of a multipart upload.

One JSON-lines file per (remote target, local file) under the journal directory: a header
line (target, file size and mtime, part size, upload id), then one line per finished part
(part number and ETag), appended as each part completes. A later upload of the same file
to the same target, with the same size and mtime, re-signs only the missing parts of that
upload id. Anything that doesn't match (or a torn last line) is ignored, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Journal", "JournalHeader"]

_VERSION = 1


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
    _fd: int | None = None

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
            try:
                p = _dec_part.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                break  # a torn last line: the parts before it still count
            j.done[p.n] = p.etag
        return j

    def matches(self, expected: JournalHeader) -> bool:
        h = self.header
        return h is not None and msgspec.structs.replace(h, upload_id="") == (
            msgspec.structs.replace(expected, upload_id="")
        )

    def start(self, header: JournalHeader, done: dict[int, str] | None = None) -> None:
        """(Re)write the journal with ``header`` and the parts already done; keep it open."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header = header
        self.done = dict(done or {})
        lines: list[Any] = [msgspec.json.encode(header)]
        lines += [msgspec.json.encode(_PartLine(n, e)) for n, e in sorted(self.done.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(b"\n".join(lines) + b"\n")
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def record(self, n: int, etag: str) -> None:
        self.done[n] = etag
        if self._fd is not None:
            os.write(self._fd, msgspec.json.encode(_PartLine(n, etag)) + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
