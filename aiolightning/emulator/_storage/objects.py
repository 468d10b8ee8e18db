"""Stored objects, open multipart uploads and the sorted namespace that holds a scope's objects."""

from __future__ import annotations

import contextlib
import shutil
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CHUNK",
    "DRIVE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "Namespace",
    "OpenUpload",
    "Part",
    "StoredObject",
    "remove_files",
]

MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024**3 - 1  # each part must stay below 5 GiB
CHUNK = 1024 * 1024  # read/write granularity of downloads; bodies up to this are read whole
DRIVE = ""  # scope of the teamspace drive; a studio's scope is "cloudspaces/<id>"


@dataclass
class StoredObject:
    """A complete object: its bytes are the concatenation of ``files``."""

    files: list[tuple[Path, int]]
    size: int
    etag: str
    last_modified: float
    content_type: str
    cluster_id: str
    directory: Path | None  # removed with the object


@dataclass
class Part:
    file: Path
    size: int
    etag: str  # quoted hex MD5


@dataclass
class OpenUpload:
    """A multipart upload that has been started and neither completed nor replaced."""

    upload_id: str
    project_id: str
    scope: str
    path: str
    parts: int
    part_size: int
    content_type: str
    cluster_id: str
    directory: Path
    started: float
    received: dict[int, Part] = field(default_factory=dict)


class Namespace:
    """One storage root (a teamspace drive or a studio): path -> object, plus sorted keys."""

    def __init__(self) -> None:
        self.objects: dict[str, StoredObject] = {}
        self.keys: list[str] = []

    def put(self, path: str, obj: StoredObject) -> StoredObject | None:
        old = self.objects.get(path)
        self.objects[path] = obj
        if old is None:
            insort(self.keys, path)
        return old

    def pop(self, path: str) -> StoredObject | None:
        obj = self.objects.pop(path, None)
        if obj is not None:
            i = bisect_left(self.keys, path)
            del self.keys[i]
        return obj

    def under(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (``""`` = all), in order, after ``start_after``."""
        lo = max(prefix, start_after)
        i = bisect_left(self.keys, lo)
        if start_after and i < len(self.keys) and self.keys[i] == start_after:
            i += 1
        while i < len(self.keys):
            key = self.keys[i]
            if not key.startswith(prefix):
                return
            yield key
            i += 1


def remove_files(obj: StoredObject) -> None:
    """Delete an object's files (its directory when it has one)."""
    if obj.directory is not None:
        shutil.rmtree(obj.directory, ignore_errors=True)
    else:
        for f, _ in obj.files:
            with contextlib.suppress(OSError):
                f.unlink()
