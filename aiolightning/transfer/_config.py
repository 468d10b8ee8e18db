"""Transfer knobs and the part-size plan."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._transport._network import check_proxy_url

__all__ = ["MAX_PARTS", "MAX_PART_SIZE", "TransferConfig", "plan_parts"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MAX_PARTS = 10_000  # S3, R2 and GCS cap a multipart upload at 10,000 parts
MAX_PART_SIZE = 5 * GiB - 1  # each part must stay below 5 GiB


def _default_journal_dir() -> Path:
    env = os.environ.get("AIOLIGHTNING_CACHE_DIR")
    if env:
        return Path(env) / "uploads"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "aiolightning" / "uploads"


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """How uploads and downloads are split, bounded and retried.

    Args:
        multipart_threshold: a file of this size or less is uploaded as one PUT.
        part_size: preferred part size; raised when needed to stay within 10,000 parts.
        byte_budget: bytes of part/range buffers held in memory at once, over every
            transfer of the client (a semaphore in bytes).
        max_parts_in_flight: parts (or ranges) of one file transferred at once.
        max_files_in_flight: files of a bulk operation transferred at once.
        part_attempts: attempts of one part PUT / range GET before the file fails.
        retry_base, retry_max_wait: jittered exponential wait between part attempts.
        verify_checksums: compare each part's MD5 with the ETag when it is a plain MD5.
            Costs one MD5 pass on the client (~0.6 GB/s per core here, in worker threads).
        resume: keep a journal of finished parts so an interrupted upload continues.
        journal_dir: where journals live (default ``$AIOLIGHTNING_CACHE_DIR/uploads`` or
            ``~/.cache/aiolightning/uploads``).
        journal_max_age: seconds after which a journal nobody wrote to is deleted (its
            upload has most likely expired on the server); None keeps them. Checked once
            per process and journal directory, in a background thread, at the first
            resumable upload, which also deletes journals of completed uploads.
        download_threshold: files up to this size are downloaded in one stream.
        download_part_size: size of each ranged GET of a larger file. On loopback one
            stream and 8 ranges measured the same (the event loop's receive path is the
            limit); on real networks (latency, per-connection caps) ranges are what make a
            large download fast.
        read_chunk: bytes read from the file per ``os.pread`` while a part is sent.
        write_chunk: bytes gathered from the socket (as received, not copied) before one
            ``os.pwritev`` to the file in a worker thread. 2 MiB measured best here among
            0.5-8 MiB for a 2 GiB download: smaller batches cost more thread hops (user
            CPU), larger ones are copied into the page cache from memory that has left the
            CPU caches (the kernel copy grew from 23% to 40% of the samples at 8 MiB, about
            +0.6 s of system CPU).
        fsync: flush downloaded files to disk before renaming them, so a file under the
            target name is always complete. Writeback of each written batch is started at
            once (Linux ``sync_file_range``), so the disk works while bytes arrive and the
            final fsync (in a worker thread) has almost nothing left: measured here, a
            2 GiB download with fsync runs as fast as one without.
        direct_io: with ``fsync``, write downloads with ``O_DIRECT`` (Linux) from reused
            aligned buffers the received bytes are copied into, not through the page
            cache: the bytes must reach the disk anyway, and copying them into freshly
            allocated page-cache pages was most of a download's client CPU here (see
            :mod:`aiolightning.transfer._direct`). The downloaded file is then not left
            in the page cache. Filesystems that refuse ``O_DIRECT`` get buffered writes,
            and so does a ``download_part_size`` that is not a multiple of 4 KiB.
        sign_batch: single-part uploads ask for their presigned URLs together, up to this
            many blobs per ``POST <base>/blobs`` (1 = one call per file).
        sign_wait: seconds a URL request waits for others to share its call.
        part_timeout: seconds without progress before a part PUT / range GET is abandoned.
        connect_timeout: seconds to open a connection for a presigned request.
        proxy: a proxy URL (``http://user:password@host:3128``) for the presigned storage
            requests only, where it differs from the client's; None uses the client's
            (its ``proxy=``, or the environment's ``HTTPS_PROXY``/``NO_PROXY``).
    """

    multipart_threshold: int = 64 * MiB
    part_size: int = 32 * MiB
    byte_budget: int = 256 * MiB
    max_parts_in_flight: int = 16
    max_files_in_flight: int = 64
    part_attempts: int = 8
    retry_base: float = 0.1
    retry_max_wait: float = 10.0
    verify_checksums: bool = True
    resume: bool = True
    journal_dir: Path | None = None
    journal_max_age: float | None = 7 * 86400.0
    download_threshold: int = 64 * MiB
    download_part_size: int = 32 * MiB
    read_chunk: int = 2 * MiB
    write_chunk: int = 2 * MiB
    fsync: bool = True
    direct_io: bool = True
    sign_batch: int = 50
    sign_wait: float = 0.002
    part_timeout: float = 120.0
    connect_timeout: float = 30.0
    proxy: str | None = field(default=None, repr=False)  # may hold a password

    def __post_init__(self) -> None:
        if self.proxy is not None:
            check_proxy_url(self.proxy, "TransferConfig.proxy")
        if self.part_size <= 0 or self.part_size > MAX_PART_SIZE:
            raise ValueError(f"part_size must be in 1..{MAX_PART_SIZE}")
        if self.multipart_threshold < 0:
            raise ValueError("multipart_threshold must be >= 0")
        for name in ("byte_budget", "max_parts_in_flight", "max_files_in_flight"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.part_attempts < 1:
            raise ValueError("part_attempts must be >= 1")
        if self.journal_max_age is not None and self.journal_max_age <= 0:
            raise ValueError("journal_max_age must be positive (or None to keep journals)")
        if self.download_part_size <= 0 or self.write_chunk <= 0 or self.read_chunk <= 0:
            raise ValueError("download_part_size, read_chunk and write_chunk must be positive")

    def with_options(self, **changes: Any) -> TransferConfig:
        return replace(self, **changes)

    @property
    def journal_root(self) -> Path:
        return self.journal_dir if self.journal_dir is not None else _default_journal_dir()


def plan_parts(size: int, preferred: int) -> tuple[int, int]:
    """``(part_size, parts)`` for a multipart upload of ``size`` bytes.

    The preferred size is raised (to a whole MiB) when the file would need more than
    10,000 parts; a file too large for 10,000 parts below 5 GiB is refused.
    """
    if size <= 0:
        return max(1, preferred), 1
    part = preferred
    if math.ceil(size / part) > MAX_PARTS:
        part = math.ceil(size / MAX_PARTS / MiB) * MiB
    if part > MAX_PART_SIZE:
        raise ValueError(f"{size} bytes is too large for {MAX_PARTS} parts of < 5 GiB")
    return part, math.ceil(size / part)
