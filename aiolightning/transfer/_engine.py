"""The transfer engine: multipart uploads through presigned URLs and ranged downloads.

Uploads (wire-flows §6.3): ``POST <base>/blobs`` gives presigned PUT URLs; parts are read
with ``os.pread`` in worker threads (measured ~2x faster than aiofiles here), PUT
concurrently on a session without the Lightning ``Authorization`` header, each under a
slot of the limiter's "data" scope and a share of the client-wide :class:`ByteBudget`;
a part is retried alone (re-signed on 401/403 or when its URL is about to expire), its
MD5 checked against a plain-MD5 ETag, recorded in the resume journal, and finally
``POST <base>/blobs/complete`` assembles the object.

Downloads (§6.5): ``GET <base>/blobs/<path>`` through the transport (it is an API call),
in parallel ``Range`` requests for large files, into a preallocated ``.<name>.aiolightning-part``
file beside the target that is fsynced (in a thread) and renamed into place only when
complete and of the right size. A range that breaks is continued from its last byte.
Received chunks are written as they came (``os.pwritev`` per ``write_chunk``, no copies)
and, when the file will be fsynced, their writeback is started at once
(``sync_file_range``), so durability costs almost nothing at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import hashlib
import os
import random
import re
import stat as stat_mod
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import msgspec

from .._errors import APIConnectionError, APIStatusError, BadRequestError, NotFoundError
from .._streams import received_chunks
from ._budget import ByteBudget
from ._config import TransferConfig, plan_parts
from ._errors import StorageError, StoragePathError, TransferError
from ._journal import Journal, JournalHeader, start_prune
from ._md5 import QUEUE_DEPTH, Md5, PartMd5, new_md5
from ._paths import quote_remote_path
from ._presigned import PresignedSession, expires_soon
from ._progress import ProgressTracker
from ._redirects import DownloadLocations

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = [
    "DownloadResult",
    "RemoteFileNotFoundError",
    "RemoteTarget",
    "TransferEngine",
    "UploadResult",
]

_PLAIN_MD5 = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
_RESIGN_BATCH = 1000
_RESIGN_MARGIN = 1.0  # seconds: a URL closer than this to its expiry is re-signed first


class RemoteFileNotFoundError(NotFoundError, StorageError):
    """The remote file (or folder) does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A file in a teamspace drive or a studio: ``base`` + ``/blobs/`` + ``path``."""

    base: str  # "/v1/projects/{pid}/artifacts" or ".../artifacts/cloudspaces/{studioId}"
    path: str  # cleaned, relative to the base
    cluster_id: str = ""
    display: str = ""  # what to call it in messages (a lit:// URL when known)
    studio: bool = False

    @property
    def key(self) -> str:
        return f"{self.base}|{self.path}|{self.cluster_id}"

    @property
    def name(self) -> str:
        return self.display or self.path

    @property
    def route(self) -> str:
        if self.studio:
            return "/v1/projects/{projectId}/artifacts/cloudspaces/{studioId}"
        return "/v1/projects/{projectId}/artifacts"

    def blob_url(self) -> str:
        return f"{self.base}/blobs/{quote_remote_path(self.path)}"

    def child(self, rel: str, display: str = "") -> RemoteTarget:
        path = f"{self.path}/{rel}" if self.path else rel
        return RemoteTarget(self.base, path, self.cluster_id, display, self.studio)


@dataclass(frozen=True, slots=True)
class UploadResult:
    local: str
    remote: str
    size: int
    parts: int  # 1 for a single-part upload
    parts_sent: int  # parts PUT by this call (fewer than parts after a resume)
    multipart: bool
    upload_id: str = ""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    remote: str
    local: str
    size: int
    ranges: int  # 1 for a single stream
    etag: str = ""


class _PartFailed(Exception):
    def __init__(self, message: str, *, fatal: bool = False, resign: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.resign = resign


class _BatchRejected(Exception):
    """A batched URL request was refused as a whole: each file asks again on its own."""


class _UploadGone(Exception):
    """The multipart upload no longer exists on the server (completed or replaced)."""


# ---------------------------------------------------------------------------- blocking helpers


def _open_for_upload(
    path: Path, prefetch: int, want_md5: bool
) -> tuple[int, int, int, tuple[bytes, Any] | None]:
    """(fd, size, mtime_ns, (bytes, md5) when the file is at most ``prefetch`` bytes)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoragePathError(f"local file {str(path)!r} does not exist") from None
    except OSError as e:
        raise StoragePathError(f"local file {str(path)!r} cannot be read: {e}") from None
    if stat_mod.S_ISDIR(st.st_mode):
        raise StoragePathError(f"{str(path)!r} is a directory; use upload_dir() to upload a folder")
    if not stat_mod.S_ISREG(st.st_mode):
        raise StoragePathError(f"{str(path)!r} is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise StoragePathError(f"local file {str(path)!r} cannot be opened: {e}") from None
    head = None
    if st.st_size <= prefetch:
        try:
            md5 = new_md5() if want_md5 else None
            head = (_read_chunk(fd, 0, st.st_size, md5), md5)
        except BaseException:
            os.close(fd)
            raise
    return fd, st.st_size, st.st_mtime_ns, head


def _read_chunk(fd: int, offset: int, length: int, md5: Any) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:  # pread may return short on some filesystems
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise OSError(f"the file shrank: {length} bytes expected at offset {offset}")
        data += more
    if md5 is not None:
        md5.update(data)
    return data


def _pwrite_all(
    fd: int, data: bytes | bytearray | memoryview, offset: int, md5: Any = None
) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
    if md5 is not None:
        md5.update(data)


_MAX_IOV = 512  # buffers per os.pwritev (IOV_MAX is 1024 on Linux)
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset+length)`` to disk now, without
    waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``); a no-op elsewhere.

    Downloads that end in an fsync call this after every batch: the disk then works while
    the bytes arrive instead of all at once at the end (an fsync of 2 GiB of dirty pages
    took ~1.5 s here; with writeback started along the way it takes ~0).
    """
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a failure only loses the head start


def _pwritev_all(
    fd: int,
    chunks: list[bytes],
    offset: int,
    md5: Any,
    sync_ahead: bool,
    lock: threading.Lock,
) -> None:
    """Write ``chunks`` at ``offset`` (one ``os.pwritev``), hash them, start their writeback.

    ``lock`` (one per file) lets one range's thread copy into the page cache at a time: the
    kernel serialises buffered writes to a file anyway (ext4 takes the inode lock), and
    threads left to wait there spin on it while the owner copies (``rwsem_spin_on_owner``
    was ~4.5% of a 2 GiB download's CPU samples in ``perf``); waiting here they sleep.
    """
    total = sum(len(c) for c in chunks)
    with lock:
        n = os.pwritev(fd, chunks, offset)
        if n < total:  # a short write: finish the rest the slow way
            _pwrite_all(fd, b"".join(chunks)[n:], offset + n)
    if md5 is not None:
        for c in chunks:
            md5.update(c)
    if sync_ahead:
        _start_writeback(fd, offset, total)


def _create_part_file(tmp: Path, size: int | None) -> int:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if size:
        try:
            os.posix_fallocate(fd, 0, size)
        except (AttributeError, OSError):
            os.ftruncate(fd, size)
    return fd


def _finish_part_file(fd: int, tmp: Path, target: Path, size: int | None, sync: bool) -> int:
    if size is not None:
        os.ftruncate(fd, size)  # a preallocated file keeps exactly the expected size
    actual = os.fstat(fd).st_size
    if sync:
        os.fsync(fd)
    os.close(fd)
    if size is not None and actual != size:
        raise OSError(f"size check failed: {actual} bytes on disk, {size} expected")
    os.replace(tmp, target)
    return actual


def _discard(fd: int | None, tmp: Path) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        tmp.unlink()


def _check_local_target(local: Path) -> None:
    if local.is_dir():
        raise StoragePathError(f"{str(local)!r} is a directory; give a file path to download to")
    if local.parent.exists() and not local.parent.is_dir():
        raise StoragePathError(f"{str(local.parent)!r} is not a directory")


def _plain_md5(etag: str) -> str | None:
    m = _PLAIN_MD5.match(etag.strip())
    return m.group(1).lower() if m else None


_MULTIPART_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})-(\d+)"?$')


def _same_multipart_etag(etag: str, parts: list[dict[str, Any]]) -> bool:
    """False only when ``etag`` is an S3-style multipart ETag (MD5 of the parts' MD5s, "-N")
    that these parts do not produce; True when it matches or nothing can be told."""
    m = _MULTIPART_ETAG.match(etag.strip())
    digests = [_plain_md5(str(p.get("etag", ""))) for p in parts]
    if m is None or any(d is None for d in digests):
        return True
    joined = b"".join(bytes.fromhex(d) for d in digests if d is not None)
    return m.group(1).lower() == hashlib.md5(joined).hexdigest() and int(m.group(2)) == len(parts)


# ---------------------------------------------------------------------------- the engine


class TransferEngine:
    """Moves bytes for ``client.storage``. One per client: the byte budget is shared."""

    def __init__(self, transport: Transport, config: TransferConfig | None = None) -> None:
        self.transport = transport
        self.config = config or TransferConfig()
        self.budget = ByteBudget(self.config.byte_budget)
        self.presigned = PresignedSession(
            transport.session.connector,
            transport.limiter,
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.part_timeout,
        )
        # blob GETs redirected to presigned URLs: the URL is reused for the file's next ranges
        self.locations = DownloadLocations(transport, self.presigned)
        self._rng = random.Random()
        # single-part URL requests waiting to go out together, per (base, cluster, studio)
        self._sign_queues: dict[
            tuple[str, str, bool], list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]
        ] = {}
        self._sign_tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ control calls

    async def _post_blobs(self, target: RemoteTarget, suffix: str, blob: dict[str, Any]) -> Any:
        body: dict[str, Any] = {"blobs": [blob]}
        if target.cluster_id and not target.studio:
            body["cluster_id"] = target.cluster_id
        return await self.transport.request(
            "POST",
            f"{target.base}/blobs{suffix}",
            json=body,
            scope="presign",
            route=f"{target.route}/blobs{suffix}",
            idempotent=True,  # repeating a sign or a complete is harmless (checked below)
        )

    async def _sign(self, target: RemoteTarget, blob: dict[str, Any]) -> dict[str, Any]:
        resp = await self._post_blobs(target, "", {"path": target.path, **blob})
        results = resp.get("results") if isinstance(resp, dict) else None
        if not results or not isinstance(results[0], dict):
            raise TransferError("the server returned no upload URL", remote=target.name)
        result: dict[str, Any] = results[0]
        return result

    async def _sign_batched(self, target: RemoteTarget, blob: dict[str, Any]) -> dict[str, Any]:
        """One presigned URL for a single-part upload, requested together with the other
        files being signed at about the same time: ``POST <base>/blobs`` takes a list of
        blobs, so 1,000 small files cost ~1,000/``sign_batch`` control calls, not 1,000."""
        batch = self.config.sign_batch
        if batch <= 1:
            return await self._sign(target, blob)
        key = (target.base, target.cluster_id, target.studio)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        queue = self._sign_queues.get(key)
        if queue is None:
            queue = self._sign_queues[key] = []
            loop.call_later(self.config.sign_wait, self._flush_signs, key, target)
        queue.append(({"path": target.path, **blob}, fut))
        if len(queue) >= batch:
            self._flush_signs(key, target)
        try:
            return await fut
        except _BatchRejected:
            return await self._sign(target, blob)  # one bad blob must not fail its neighbours

    def _flush_signs(self, key: tuple[str, str, bool], target: RemoteTarget) -> None:
        items = self._sign_queues.pop(key, None)
        if not items:
            return
        task = asyncio.get_running_loop().create_task(self._send_signs(target, items))
        self._sign_tasks.add(task)
        task.add_done_callback(self._sign_tasks.discard)

    async def _send_signs(
        self,
        target: RemoteTarget,
        items: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]],
    ) -> None:
        live = [(b, f) for b, f in items if not f.done()]  # skip callers already cancelled
        if not live:
            return
        body: dict[str, Any] = {"blobs": [b for b, _ in live]}
        if target.cluster_id and not target.studio:
            body["cluster_id"] = target.cluster_id
        try:
            resp = await self.transport.request(
                "POST",
                f"{target.base}/blobs",
                json=body,
                scope="presign",
                route=f"{target.route}/blobs",
                idempotent=True,
            )
            results = resp.get("results") if isinstance(resp, dict) else None
            if not isinstance(results, list) or len(results) != len(live):
                raise TransferError(
                    f"asked for {len(live)} upload URLs, the server answered "
                    f"{len(results) if isinstance(results, list) else 'none'}",
                    remote=target.name,
                )
        except BaseException as e:
            exc: BaseException = e
            if isinstance(e, APIStatusError) and 400 <= e.status < 500 and len(live) > 1:
                exc = _BatchRejected(str(e))
            for _, f in live:
                if not f.done():
                    f.set_exception(exc)
            if not isinstance(e, Exception):
                raise
            return
        for (_, f), result in zip(live, results, strict=True):
            if not f.done():
                if isinstance(result, dict):
                    f.set_result(result)
                else:
                    f.set_exception(TransferError("the server returned no upload URL"))

    async def _resign(
        self, target: RemoteTarget, upload_id: str, numbers: list[int]
    ) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(numbers), _RESIGN_BATCH):
            batch = numbers[i : i + _RESIGN_BATCH]
            try:
                res = await self._sign(target, {"upload_id": upload_id, "part_numbers": batch})
            except (NotFoundError, BadRequestError) as e:
                raise _UploadGone(str(e)) from e
            for u in res.get("urls") or []:
                out[int(u.get("part_number") or u.get("partNumber"))] = u
        missing = set(numbers) - set(out)
        if missing:
            raise TransferError(
                f"the server did not re-sign parts {sorted(missing)[:5]}", remote=target.name
            )
        return out

    async def _wait(self, attempt: int, retry_after: str | None = None) -> None:
        if retry_after:
            with contextlib.suppress(ValueError):
                await anyio.sleep(min(float(retry_after), self.config.retry_max_wait))
                return
        cap = min(self.config.retry_max_wait, self.config.retry_base * 2**attempt)
        await anyio.sleep(self._rng.uniform(0, cap))

    # ------------------------------------------------------------------ uploads

    async def upload_file(
        self,
        local: Path,
        target: RemoteTarget,
        progress: ProgressTracker | None = None,
        *,
        content_type: str | None = None,
        count_total: bool = True,
    ) -> UploadResult:
        """Upload one local file to ``target``; single PUT up to the threshold, else multipart."""
        cfg = self.config
        progress = progress or ProgressTracker(None)
        # A small file is opened, read and hashed in one worker-thread hop, under a share
        # of the byte budget held until its PUT is done.
        prefetch = min(cfg.read_chunk, cfg.multipart_threshold)
        held = await self.budget.acquire(prefetch)
        try:
            fd, size, mtime_ns, head = await anyio.to_thread.run_sync(
                _open_for_upload, local, prefetch, cfg.verify_checksums
            )
            if head is None:  # a larger file: its parts take their own share of the budget
                self.budget.release(held)
                held = 0
            elif size < held:  # keep only what the file's bytes take
                self.budget.release(held - size)
                held = size
            if count_total:
                progress.add_total(size)
            try:
                async with self.presigned.use():
                    if size <= cfg.multipart_threshold:
                        result = await self._upload_single(
                            fd, size, local, target, progress, content_type, head
                        )
                    else:
                        result = await self._upload_multipart(
                            fd, size, mtime_ns, local, target, progress, content_type
                        )
            except BaseException:
                progress.file_done(str(local), failed=True)
                raise
            finally:
                head = None
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(os.close, fd)
        finally:
            if held:
                self.budget.release(held)
        progress.file_done(str(local))
        return result

    def _classify_put(self, status: int, body: bytes) -> _PartFailed:
        text = body[:300].decode("utf-8", "replace").strip()
        msg = f"HTTP {status} from the object store" + (f": {text}" if text else "")
        if status in (401, 403):
            return _PartFailed(msg, resign=True)
        if status == 404:
            return _PartFailed(msg, fatal=True)
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            return _PartFailed(msg)
        return _PartFailed(msg, fatal=True)

    async def _put_part_once(
        self,
        fd: int,
        offset: int,
        length: int,
        url: dict[str, Any],
        progress: ProgressTracker,
        name: str,
        head: tuple[bytes, Any] | None = None,
    ) -> str:
        """PUT bytes [offset, offset+length) of the file, check the ETag; return the ETag.

        A part no larger than ``read_chunk`` is read whole (one thread hop); a larger one is
        streamed from the file ``read_chunk`` bytes at a time (each ``os.pread`` and MD5
        update in a worker thread, one chunk ahead of the socket), so a part in flight holds
        about two chunks of memory, not the whole part: that is what it takes from the byte
        budget.
        """
        cfg = self.config
        step = cfg.read_chunk
        md5: Md5 | None = None  # a part read whole: hashed in the reading worker thread
        part_md5: PartMd5 | None = None  # a streamed part: hashed alongside the sends
        digest: str | None = None
        sent = 0

        async def stream() -> AsyncIterator[bytes]:
            # One chunk read ahead: the next chunk is read in a worker thread while the
            # current one goes out; each chunk is queued for hashing as it is yielded.
            nonlocal sent
            pos, end = offset, offset + length

            def read_ahead(p: int) -> asyncio.Future[bytes]:
                return asyncio.ensure_future(
                    anyio.to_thread.run_sync(_read_chunk, fd, p, min(step, end - p), None)
                )

            pending: asyncio.Future[bytes] | None = read_ahead(pos)
            try:
                while pending is not None:
                    chunk = await pending
                    pos += len(chunk)
                    pending = read_ahead(pos) if pos < end else None
                    if part_md5 is not None:
                        await part_md5.feed(chunk)
                    yield chunk
                    sent += len(chunk)
                    progress.advance(len(chunk), name)
            finally:
                if pending is not None:  # let the read finish: the fd closes after us
                    with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
                        await pending

        if head is not None:  # already read and hashed by the caller, under its budget share
            data, md5 = head
            head = None
            try:
                put = await self.presigned.put(str(url["url"]), data, url.get("headers"))
            except _NETWORK_ERRORS as e:
                raise _PartFailed(f"{type(e).__name__}: {e}") from e
            finally:
                del data
            sent = length
            progress.advance(length, name)
        else:
            # a streamed part holds the chunk going out, the one read ahead, and chunks
            # sent but still queued for hashing
            held = 1 + (QUEUE_DEPTH if cfg.verify_checksums else 1)
            async with self.budget.hold(min(length, held * step)):
                try:
                    if length <= step:
                        md5 = new_md5() if cfg.verify_checksums else None
                        data = await anyio.to_thread.run_sync(_read_chunk, fd, offset, length, md5)
                        put = await self.presigned.put(str(url["url"]), data, url.get("headers"))
                        del data
                        sent = length
                        progress.advance(length, name)
                    else:
                        part_md5 = PartMd5() if cfg.verify_checksums else None
                        put = await self.presigned.put(
                            str(url["url"]), stream(), url.get("headers"), length=length
                        )
                        if part_md5 is not None:  # the last chunk may still be hashing
                            digest = await part_md5.hexdigest()
                except _NETWORK_ERRORS as e:
                    progress.rewind(sent)
                    raise _PartFailed(f"{type(e).__name__}: {e}") from e
                except BaseException:
                    progress.rewind(sent)
                    raise
                finally:
                    if part_md5 is not None:
                        part_md5.close()
        if md5 is not None:
            digest = md5.hexdigest()
        if not 200 <= put.status < 300:
            progress.rewind(sent)
            raise self._classify_put(put.status, put.body)
        if sent != length:
            progress.rewind(sent)
            raise _PartFailed(f"only {sent} of {length} bytes were sent")
        etag = put.etag
        if digest is not None:
            plain = _plain_md5(etag)
            if plain is not None and plain != digest:
                progress.rewind(sent)
                raise _PartFailed(f"checksum mismatch: sent MD5 {digest}, object store says {etag}")
        return etag

    async def _upload_single(
        self,
        fd: int,
        size: int,
        local: Path,
        target: RemoteTarget,
        progress: ProgressTracker,
        content_type: str | None,
        head: tuple[bytes, Any] | None = None,
    ) -> UploadResult:
        blob: dict[str, Any] = {}
        if content_type:
            blob["content_type"] = content_type
        last = ""
        for attempt in range(self.config.part_attempts):
            res = await self._sign_batched(target, blob)
            urls = res.get("urls") or []
            if not urls:
                raise TransferError(
                    "the server returned no upload URL", local=str(local), remote=target.name
                )
            try:
                await self._put_part_once(fd, 0, size, urls[0], progress, str(local), head)
            except _PartFailed as e:
                if e.fatal:
                    raise TransferError(str(e), local=str(local), remote=target.name) from e
                last = str(e)
                await self._wait(attempt)
                continue
            if res.get("complete_required"):
                await self._post_blobs(target, "/complete", {"path": target.path})
            return UploadResult(str(local), target.name, size, 1, 1, False)
        raise TransferError(
            f"gave up after {self.config.part_attempts} attempts: {last}",
            local=str(local),
            remote=target.name,
        )

    async def _upload_multipart(
        self,
        fd: int,
        size: int,
        mtime_ns: int,
        local: Path,
        target: RemoteTarget,
        progress: ProgressTracker,
        content_type: str | None,
    ) -> UploadResult:
        cfg = self.config
        part_size, n = plan_parts(size, cfg.part_size)
        abs_local = await anyio.to_thread.run_sync(os.path.abspath, local)
        header = JournalHeader(
            target=target.key,
            local=abs_local,
            size=size,
            mtime_ns=mtime_ns,
            part_size=part_size,
            parts=n,
            upload_id="",
        )
        journal: Journal | None = None
        done: dict[int, str] = {}
        urls: dict[int, dict[str, Any]] = {}
        upload_id = ""
        if cfg.resume:
            start_prune(cfg.journal_root, cfg.journal_max_age)  # once per process, a thread
            jpath = Journal.path_for(cfg.journal_root, target.key, abs_local)
            journal = await anyio.to_thread.run_sync(Journal.load, jpath)
            if journal.matches(header) and journal.header is not None:
                missing = [k for k in range(1, n + 1) if k not in journal.done]
                try:
                    # With every part done, part 1 is re-signed anyway: that tells whether the
                    # upload still exists (it expires on the server) before completing it.
                    urls = await self._resign(target, journal.header.upload_id, missing or [1])
                    upload_id = journal.header.upload_id
                    done = dict(journal.done)
                except _UploadGone:
                    done, urls = {}, {}
        if not upload_id:
            blob: dict[str, Any] = {"parts": n, "part_size": part_size}
            if content_type:
                blob["content_type"] = content_type
            res = await self._sign(target, blob)
            upload_id = str(res.get("upload_id") or res.get("uploadId") or "")
            if not upload_id:
                raise TransferError(
                    "the server returned no upload_id", local=str(local), remote=target.name
                )
            urls = {
                int(u.get("part_number") or u.get("partNumber")): u for u in res.get("urls") or []
            }
        if journal is not None:
            hdr = msgspec.structs.replace(header, upload_id=upload_id)
            if not await anyio.to_thread.run_sync(journal.try_start, hdr, done):
                journal = None  # an unwritable journal directory costs the resume, not the upload

        def part_len(k: int) -> int:
            return min(part_size, size - (k - 1) * part_size)

        progress.advance(sum(part_len(k) for k in done), str(local))
        missing = [k for k in range(1, n + 1) if k not in done]
        queue = list(reversed(missing))
        keep_journal = True
        completed = False

        async def worker() -> None:
            while queue:
                k = queue.pop()
                done[k] = await self._upload_part(
                    fd,
                    k,
                    (k - 1) * part_size,
                    part_len(k),
                    upload_id,
                    urls,
                    local,
                    target,
                    progress,
                )
                if journal is not None:
                    journal.record(k, done[k])

        try:
            workers = min(
                len(missing), cfg.max_parts_in_flight, max(1, cfg.byte_budget // part_size)
            )
            await _run_pool(workers, worker)
            st = await anyio.to_thread.run_sync(os.fstat, fd)
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                keep_journal = False
                raise TransferError(
                    "the file changed while it was being uploaded",
                    local=str(local),
                    remote=target.name,
                )
            parts = [{"part_number": k, "etag": done[k]} for k in range(1, n + 1)]
            try:
                await self._complete(target, upload_id, parts, size, local)
            except TransferError as e:
                if isinstance(e.__cause__, BadRequestError | NotFoundError):
                    keep_journal = False  # refused: a resume would fail the same way
                raise
            completed = True
        except _UploadGone as e:
            keep_journal = False
            raise TransferError(
                "the multipart upload no longer exists on the server (replaced by another "
                f"upload of the same path, or expired) ({e}); start it again",
                local=str(local),
                remote=target.name,
            ) from e
        finally:
            # Shielded: runs to the end even when the upload is being cancelled. The blobs API
            # has no abort; the journal (kept) lets the next call resume, and a fresh upload of
            # the same path replaces the open one on the server.
            if journal is not None:
                with anyio.CancelScope(shield=True):
                    drop = completed or not keep_journal
                    await anyio.to_thread.run_sync(
                        functools.partial(journal.finish, drop=drop, completed=completed)
                    )
        return UploadResult(str(local), target.name, size, n, len(missing), True, upload_id)

    async def _upload_part(
        self,
        fd: int,
        k: int,
        offset: int,
        length: int,
        upload_id: str,
        urls: dict[int, dict[str, Any]],
        local: Path,
        target: RemoteTarget,
        progress: ProgressTracker,
    ) -> str:
        last = ""
        for attempt in range(self.config.part_attempts):
            url = urls.get(k)
            if url is None or expires_soon(str(url["url"]), _RESIGN_MARGIN):
                url = (await self._resign(target, upload_id, [k]))[k]
                urls[k] = url
            try:
                return await self._put_part_once(fd, offset, length, url, progress, str(local))
            except _PartFailed as e:
                last = str(e)
                if e.fatal:
                    if "NoSuchUpload" in last:
                        raise _UploadGone(last) from e
                    raise TransferError(last, local=str(local), remote=target.name, part=k) from e
                if e.resign:
                    urls.pop(k, None)
                    if attempt == 0:
                        continue  # an expired URL: re-sign and go again at once
                await self._wait(attempt)
        raise TransferError(
            f"gave up after {self.config.part_attempts} attempts: {last}",
            local=str(local),
            remote=target.name,
            part=k,
        )

    async def _complete(
        self,
        target: RemoteTarget,
        upload_id: str,
        parts: list[dict[str, Any]],
        size: int,
        local: Path,
    ) -> None:
        try:
            await self._post_blobs(
                target, "/complete", {"path": target.path, "upload_id": upload_id, "parts": parts}
            )
        except NotFoundError as e:
            # A retried complete whose first attempt succeeded finds no upload any more:
            # the object is there with the right size (and multipart ETag, when the store
            # gives one), then all is well. An expired upload leaves no such object.
            info = await self.head(target)
            if info is None or info[0] != size or not _same_multipart_etag(info[1], parts):
                raise TransferError(
                    f"completing the upload failed: {e}", local=str(local), remote=target.name
                ) from e
        except APIStatusError as e:
            raise TransferError(
                f"completing the upload failed: {e}", local=str(local), remote=target.name
            ) from e

    # ------------------------------------------------------------------ downloads

    async def head(self, target: RemoteTarget) -> tuple[int, str] | None:
        """(size, ETag) of a remote file, or None if it does not exist."""
        try:
            async with self.transport.stream(
                "HEAD", target.blob_url(), scope="read", route=f"{target.route}/blobs/{{path}}"
            ) as resp:
                self.locations.saw_head(target.blob_url(), resp)
                return int(resp.headers.get("Content-Length", "0")), resp.headers.get("ETag", "")
        except NotFoundError:
            return None

    async def download_file(
        self,
        target: RemoteTarget,
        local: Path,
        progress: ProgressTracker | None = None,
        *,
        size: int | None = None,
        count_total: bool = True,
    ) -> DownloadResult:
        """Download ``target`` to ``local``; the file appears only once complete and checked."""
        await anyio.to_thread.run_sync(_check_local_target, local)
        progress = progress or ProgressTracker(None)
        etag = ""
        if size is None:
            info = await self.head(target)
            if info is None:
                raise RemoteFileNotFoundError(f"remote file {target.name!r} does not exist")
            size, etag = info
        if count_total:
            progress.add_total(size)
        tmp = local.parent / f".{local.name}.aiolightning-part"
        fd: int | None = None
        wlock = threading.Lock()  # one writer at a time per file (see _pwritev_all)
        try:
            fd = await anyio.to_thread.run_sync(_create_part_file, tmp, size)
            cfg = self.config
            if size <= cfg.download_threshold:
                md5 = new_md5() if cfg.verify_checksums and _plain_md5(etag) else None
                await self._fetch_range(
                    fd, wlock, target, 0, size, size, progress, str(local), md5, ranged=False
                )
                if md5 is not None and md5.hexdigest() != _plain_md5(etag):
                    raise TransferError(
                        f"checksum mismatch: got MD5 {md5.hexdigest()}, ETag {etag}",
                        local=str(local),
                        remote=target.name,
                    )
                ranges = 1
            else:
                step = cfg.download_part_size
                todo = [(a, min(a + step, size)) for a in range(0, size, step)]
                ranges = len(todo)
                queue = list(reversed(todo))
                fd_ = fd

                async def worker() -> None:
                    while queue:
                        a, b = queue.pop()
                        await self._fetch_range(
                            fd_, wlock, target, a, b, size, progress, str(local), None, ranged=True
                        )

                await _run_pool(min(len(todo), cfg.max_parts_in_flight), worker)
            fd_final, fd = fd, None
            await anyio.to_thread.run_sync(_finish_part_file, fd_final, tmp, local, size, cfg.fsync)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, fd, tmp)
            progress.file_done(str(local), failed=True)
            if isinstance(exc, NotFoundError) and not isinstance(exc, RemoteFileNotFoundError):
                raise RemoteFileNotFoundError(
                    f"remote file {target.name!r} does not exist"
                ) from exc
            if isinstance(exc, OSError):
                raise TransferError(str(exc), local=str(local), remote=target.name) from exc
            raise
        progress.file_done(str(local))
        return DownloadResult(target.name, str(local), size, ranges, etag)

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
        *,
        ranged: bool,
    ) -> None:
        """Write bytes [start, end) of the object at the same offsets; continue after breaks."""
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
                async with self.budget.hold(min(max(end - pos, 1), cfg.write_chunk)):
                    await self._stream_into(
                        fd, wlock, target, cursor, end, size, headers, progress, name, md5
                    )
                pos = cursor[0]
                if pos >= end:
                    return
                last = f"the body ended early at byte {pos} of {end}"
            except (*_NETWORK_ERRORS, APIConnectionError) as e:
                # a refused or broken connection, or a body cut short: go on from there
                last = f"{type(e).__name__}: {e}"
            except APIStatusError as e:
                if e.status < 500 and e.status not in (408, 429):
                    raise
                last = str(e)
            except _PartFailed as e:
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
    ) -> None:
        chunk_cap = self.config.write_chunk
        pos = cursor[0]
        async with self.locations.open(
            target.blob_url(), f"{target.route}/blobs/{{path}}", headers or None
        ) as resp:
            if headers:
                if resp.status == 200 and not (pos == 0 and end == size):
                    raise _PartFailed("the server ignored the Range header", fatal=True)
                if resp.status == 206:
                    cr = resp.headers.get("Content-Range", "")
                    if not cr.startswith(f"bytes {pos}-"):
                        raise _PartFailed(
                            f"unexpected Content-Range {cr!r} for byte {pos}", fatal=True
                        )
            # The chunks aiohttp received are gathered as they are (no joining, no copying
            # into a buffer) and written with one os.pwritev per ``write_chunk`` bytes, in a
            # worker thread that also hashes them and, when the file is to be fsynced, starts
            # the kernel's writeback of that range so the final fsync has little left to do.
            sync_ahead = self.config.fsync
            batch: list[bytes] = []
            n = 0
            async for chunk in received_chunks(resp.content):
                if len(chunk) > end - pos - n:
                    raise _PartFailed("the server sent more bytes than asked for", fatal=True)
                batch.append(chunk)
                n += len(chunk)
                if n >= chunk_cap or len(batch) >= _MAX_IOV:
                    await anyio.to_thread.run_sync(
                        _pwritev_all, fd, batch, pos, md5, sync_ahead, wlock
                    )
                    pos += n
                    cursor[0] = pos
                    progress.advance(n, name)
                    batch = []
                    n = 0
            if n:
                await anyio.to_thread.run_sync(_pwritev_all, fd, batch, pos, md5, sync_ahead, wlock)
                pos += n
                cursor[0] = pos
                progress.advance(n, name)


def _first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to report from a task group: the first one that is not a cancellation."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            flat.append(e)

    walk(eg)
    for e in flat:
        if not isinstance(e, anyio.get_cancelled_exc_class()):
            return e
    return flat[0] if flat else eg


async def _run_pool(n: int, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``n`` copies of ``fn`` until all return; the first failure cancels the others."""
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(fn)
    except BaseExceptionGroup as eg:
        raise _first_error(eg) from None
