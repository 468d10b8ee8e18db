"""The download state machine: one remote file, whole or in parallel ranges, into a part file.

Downloads (wire-flows §6.5): ``GET <base>/blobs/<path>`` through the transport (it is an
API call), in parallel ``Range`` requests for large files, into a preallocated
``.<name>.aiolightning-part`` file beside the target that is fsynced (in a thread) and
renamed into place only when complete and of the right size. A range that breaks is
continued from its last written byte. A file that will be fsynced is written with
``O_DIRECT`` from reused aligned buffers that the received chunks are copied into
(:mod:`._direct`: no page-cache copy); otherwise the chunks are written as they came
(``os.pwritev`` per ``write_chunk``, no copies).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .._errors import APIConnectionError, APIStatusError, NotFoundError, TLSVerificationError
from .._streams import received_chunks
from ._blobs_api import BlobsApi
from ._direct import ALIGN, BufferPool, Tail, direct_into
from ._errors import NETWORK_ERRORS, PartFailed, RemoteFileNotFoundError, TransferError
from ._etags import etag_md5, warn_not_md5
from ._local import (
    MAX_IOV,
    check_local_target,
    discard_part_file,
    finish_part_file,
    open_part_file,
    pwritev_all,
)
from ._md5 import new_md5
from ._pool import run_pool
from ._progress import ProgressTracker
from ._target import RemoteTarget

__all__ = ["DownloadResult", "Downloads"]


@dataclass(frozen=True, slots=True)
class DownloadResult:
    remote: str
    local: str
    size: int
    ranges: int  # 1 for a single stream
    etag: str = ""


class Downloads(BlobsApi):
    """Downloads one remote file; it appears under its name only once complete and checked."""

    async def download_file(
        self,
        target: RemoteTarget,
        local: Path,
        progress: ProgressTracker | None = None,
        *,
        size: int | None = None,
        count_total: bool = True,
    ) -> DownloadResult:
        """Download ``target`` to ``local``; the file appears only once complete and checked.

        With ``size`` given (a listed file) nothing is asked before the GET, and a file of
        one ``write_chunk`` takes two worker-thread hops: one checks the target and creates
        the part file, one writes, fsyncs and renames it.
        """
        progress = progress or ProgressTracker(None)
        etag = ""
        expected: str | None = None  # the MD5 the ETag gives, when it is one
        if size is None:  # the target is checked before the first request
            await anyio.to_thread.run_sync(check_local_target, local)
            info = await self.head(target)
            if info is None:
                raise RemoteFileNotFoundError(f"remote file {target.name!r} does not exist")
            size, etag = info.size, info.etag
            expected = etag_md5(etag, info.encryption)
            if info.encryption and self.config.verify_checksums:
                self.etag_notes.encrypted(info.encryption, str(local))
        if count_total:
            progress.add_total(size)
        tmp = local.parent / f".{local.name}.aiolightning-part"
        fd: int | None = None
        wlock = threading.Lock()  # one writer at a time per file (see pwritev_all)
        tail: Tail = []  # the last write, for the finishing hop
        held = 0
        cfg = self.config
        direct = cfg.fsync and cfg.direct_io and cfg.download_part_size % ALIGN == 0
        pool: BufferPool | None = None
        try:
            opened, direct = await anyio.to_thread.run_sync(
                open_part_file, local, tmp, size, direct
            )
            fd = opened
            pool = self._buffer_pool() if direct else None
            ranges = 1
            if size > cfg.download_threshold:
                ranges = await self._fetch_ranges(
                    opened, wlock, target, size, progress, pool, local
                )
            elif cfg.verify_checksums and expected:
                await self._fetch_checked(
                    opened, wlock, target, size, progress, pool, local, etag, expected
                )
            else:  # nothing to check: the last chunks are written by the hop that finishes,
                # under a share of the byte budget held until then
                held = await self.budget.acquire(min(max(size, 1), cfg.write_chunk))
                await self._fetch_range(
                    opened,
                    wlock,
                    target,
                    0,
                    size,
                    size,
                    progress,
                    str(local),
                    None,
                    pool,
                    tail=tail,
                )
            fd = None
            await anyio.to_thread.run_sync(
                finish_part_file,
                opened,
                tmp,
                local,
                size,
                cfg.fsync,
                tail[0][0] if tail else None,
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(discard_part_file, fd, tmp)
            progress.file_done(str(local), failed=True)
            if isinstance(exc, NotFoundError) and not isinstance(exc, RemoteFileNotFoundError):
                raise RemoteFileNotFoundError(
                    f"remote file {target.name!r} does not exist"
                ) from exc
            if isinstance(exc, OSError):
                raise TransferError(str(exc), local=str(local), remote=target.name) from exc
            raise
        finally:
            for _, buf in tail:
                if buf is not None and pool is not None:
                    pool.put(buf)
            tail.clear()
            if held:
                self.budget.release(held)
        progress.file_done(str(local))
        return DownloadResult(target.name, str(local), size, ranges, etag)

    def _buffer_pool(self) -> BufferPool:
        """The aligned buffers of direct writes, one ``write_chunk`` each, as many kept for
        reuse as the byte budget could have in flight."""
        cfg = self.config
        pool: BufferPool | None = getattr(self, "_buffers", None)
        if pool is None or pool.asked != cfg.write_chunk:
            pool = BufferPool(cfg.write_chunk, max(1, cfg.byte_budget // cfg.write_chunk))
            self._buffers = pool
        return pool

    async def _fetch_ranges(
        self,
        fd: int,
        wlock: threading.Lock,
        target: RemoteTarget,
        size: int,
        progress: ProgressTracker,
        pool: BufferPool | None,
        local: Path,
    ) -> int:
        """The whole object in parallel ranges; returns how many."""
        cfg = self.config
        step = cfg.download_part_size
        todo = [(a, min(a + step, size)) for a in range(0, size, step)]
        queue = list(reversed(todo))

        async def worker() -> None:
            while queue:
                a, b = queue.pop()
                await self._fetch_range(
                    fd, wlock, target, a, b, size, progress, str(local), None, pool, ranged=True
                )

        await run_pool(min(len(todo), cfg.max_parts_in_flight), worker)
        return len(todo)

    async def _fetch_checked(
        self,
        fd: int,
        wlock: threading.Lock,
        target: RemoteTarget,
        size: int,
        progress: ProgressTracker,
        pool: BufferPool | None,
        local: Path,
        etag: str,
        expected: str,
    ) -> None:
        """One stream, its MD5 checked against the ETag's; fetched again after a mismatch,
        and taken unchecked (one WARNING) when the same bytes mismatch the same way twice."""
        wrong = ""  # the MD5 of a first download that the ETag did not match
        for _ in range(2):
            md5 = new_md5()
            await self._fetch_range(
                fd, wlock, target, 0, size, size, progress, str(local), md5, pool
            )
            got = md5.hexdigest()
            if got == expected:
                return
            if got == wrong:  # the same bytes twice: the ETag is no MD5
                warn_not_md5(str(local), etag, got, "this download")
                return
            wrong = got
            progress.rewind(size)  # damaged on the way, perhaps: once more
        raise TransferError(
            f"checksum mismatch: got MD5 {got}, ETag {etag}", local=str(local), remote=target.name
        )

    async def _fetch_range(
        self,
        fd: int,
        wlock: threading.Lock,
        target: RemoteTarget,
        start: int,
        end: int,
        size: int,
        progress: ProgressTracker,
        name: str,
        md5: Any,
        pool: BufferPool | None,
        *,
        ranged: bool = False,
        tail: Tail | None = None,
    ) -> None:
        """Write bytes [start, end) of the object at the same offsets; continue after breaks.
        With ``tail``, the chunks that end the range are left there, unwritten, for the
        caller's next hop (counted as written), under the caller's share of the budget."""
        cfg = self.config
        pos = start
        last = ""
        for attempt in range(cfg.part_attempts):
            if pos >= end and (end > start or attempt > 0):
                return
            headers: dict[str, str] = {}
            if ranged or pos > start:
                headers["Range"] = f"bytes={pos}-{end - 1}"
            cursor = [pos]  # advanced as bytes reach the file, even if the stream breaks
            try:
                share = min(max(end - pos, 1), cfg.write_chunk) if tail is None else 0
                async with self.budget.hold(share):
                    await self._stream_into(
                        fd,
                        wlock,
                        target,
                        cursor,
                        end,
                        size,
                        headers,
                        progress,
                        name,
                        md5,
                        pool,
                        tail,
                    )
                pos = cursor[0]
                if pos >= end:
                    return
                last = f"the body ended early at byte {pos} of {end}"
            except TLSVerificationError:
                raise  # a configuration problem: no other attempt will do better
            except (*NETWORK_ERRORS, APIConnectionError) as e:
                # a refused or broken connection, or a body cut short: go on from there
                last = f"{type(e).__name__}: {e}"
            except APIStatusError as e:
                if e.status < 500 and e.status not in (408, 429):
                    raise
                last = str(e)
            except PartFailed as e:
                last = str(e)
                if e.fatal:
                    break
            finally:
                pos = cursor[0]
            await self._wait(attempt)
        raise TransferError(
            f"range {start}-{end - 1} failed: {last}", local=name, remote=target.name
        )

    async def _stream_into(
        self,
        fd: int,
        wlock: threading.Lock,
        target: RemoteTarget,
        cursor: list[int],
        end: int,
        size: int,
        headers: Mapping[str, str],
        progress: ProgressTracker,
        name: str,
        md5: Any,
        pool: BufferPool | None,
        tail: Tail | None = None,
    ) -> None:
        chunk_cap = self.config.write_chunk
        pos = cursor[0]
        async with self.locations.open(
            target.blob_url(), f"{target.route}/blobs/{{path}}", headers or None
        ) as resp:
            if headers:
                if resp.status == 200 and not (pos == 0 and end == size):
                    raise PartFailed("the server ignored the Range header", fatal=True)
                if resp.status == 206:
                    cr = resp.headers.get("Content-Range", "")
                    if not cr.startswith(f"bytes {pos}-"):
                        raise PartFailed(
                            f"unexpected Content-Range {cr!r} for byte {pos}", fatal=True
                        )
            if pool is not None:
                await direct_into(resp.content, fd, cursor, end, progress, name, md5, pool, tail)
                return
            # The chunks aiohttp received are gathered as they are (no joining, no copying
            # into a buffer) and written with one os.pwritev per ``write_chunk`` bytes, in a
            # worker thread that also hashes them and, when the file is to be fsynced, starts
            # the kernel's writeback of that range so the final fsync has little left to do.
            sync_ahead = self.config.fsync
            batch: list[bytes] = []
            n = 0
            async for chunk in received_chunks(resp.content):
                if len(chunk) > end - pos - n:
                    raise PartFailed("the server sent more bytes than asked for", fatal=True)
                batch.append(chunk)
                n += len(chunk)
                if n >= chunk_cap or len(batch) >= MAX_IOV:
                    await anyio.to_thread.run_sync(
                        pwritev_all, fd, batch, pos, md5, sync_ahead, wlock
                    )
                    pos += n
                    cursor[0] = pos
                    progress.advance(n, name)
                    batch = []
                    n = 0
            if n:
                if tail is not None and pos + n == end:  # written by the caller's next hop
                    tail.append(
                        (functools.partial(pwritev_all, fd, batch, pos, None, False, wlock), None)
                    )
                else:
                    await anyio.to_thread.run_sync(
                        pwritev_all, fd, batch, pos, md5, sync_ahead, wlock
                    )
                pos += n
                cursor[0] = pos
                progress.advance(n, name)
