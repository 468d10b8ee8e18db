"""The upload state machine: one file, single PUT or resumable multipart, then complete.

Uploads (wire-flows §6.3): ``POST <base>/blobs`` gives presigned PUT URLs; parts are read
with ``os.pread`` in worker threads (measured ~2x faster than aiofiles here), PUT
concurrently on a session without the Lightning ``Authorization`` header, each under a
slot of the limiter's "data" scope and a share of the client-wide :class:`ByteBudget`;
a part is retried alone (re-signed on 401/403 or when its URL is about to expire), its
MD5 checked against a plain-MD5 ETag, recorded in the resume journal, and finally
``POST <base>/blobs/complete`` assembles the object.

Exactly once: a part whose answer is lost after the whole body went out (a drop, a 5xx, a
cut-short answer, a timeout) may be stored already, and the blobs API cannot list an
upload's parts. While the upload's ETags are MD5s, such a part is recorded with the MD5 of
the bytes sent as its ETag instead of being sent again; ``complete`` verifies that, and
when it refuses (``InvalidPart``: a part missing or its ETag different; nothing committed)
only the parts it names are sent again before completing again. A single-PUT object is
looked up (``HEAD``: size and MD5 ETag) before it is sent again.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .._errors import APIStatusError, BadRequestError, LightningError, NotFoundError
from ._config import plan_parts
from ._errors import PartFailed, PartsRefused, TransferError, UploadGone
from ._etags import UploadEtagCheck, etag_md5, same_multipart_etag
from ._journal import Journal, JournalHeader, start_prune
from ._local import open_for_upload
from ._part_put import PartPuts
from ._pool import run_pool
from ._presigned import expires_soon
from ._progress import ProgressTracker
from ._target import RemoteTarget

__all__ = ["UploadResult", "Uploads"]

_RESIGN_MARGIN = 1.0  # seconds: a URL closer than this to its expiry is re-signed first
# the part numbers an InvalidPart refusal names: "part 3 ..." (the service's message) or
# "<PartNumber>3</PartNumber>" (S3's XML)
_NAMED_PART = re.compile(r"\bpart\s+(\d+)\b|<PartNumber>\s*(\d+)", re.IGNORECASE)


def _named_parts(message: str) -> list[int]:
    return sorted({int(a or b) for a, b in _NAMED_PART.findall(message)})


@dataclass(frozen=True, slots=True)
class UploadResult:
    local: str
    remote: str
    size: int
    parts: int  # 1 for a single-part upload
    parts_sent: int  # parts PUT by this call (fewer than parts after a resume)
    multipart: bool
    upload_id: str = ""


class Uploads(PartPuts):
    """Uploads one local file: a single PUT up to the threshold, else a journaled multipart."""

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
                open_for_upload, local, prefetch, cfg.verify_checksums
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
        check = UploadEtagCheck(self.etag_notes, str(local))
        for attempt in range(self.config.part_attempts):
            res = await self._sign_batched(target, blob)
            urls = res.get("urls") or []
            if not urls:
                raise TransferError(
                    "the server returned no upload URL", local=str(local), remote=target.name
                )
            try:
                await self._put_part_once(
                    fd, 0, size, urls[0], progress, str(local), head, check=check
                )
            except PartFailed as e:
                if e.fatal:
                    raise TransferError(str(e), local=str(local), remote=target.name) from e
                # a file read whole was hashed: after a PUT whose answer was lost, an object
                # of this size and MD5 at the path means it landed (nothing is sent again)
                if e.sent_md5 is None or not await self._landed(target, size, e.sent_md5):
                    last = str(e)
                    await self._wait(attempt)
                    continue
                progress.advance(size, str(local))
            if res.get("complete_required"):
                await self._post_blobs(target, "/complete", {"path": target.path})
            return UploadResult(str(local), target.name, size, 1, 1, False)
        raise TransferError(
            f"gave up after {self.config.part_attempts} attempts: {last}",
            local=str(local),
            remote=target.name,
        )

    async def _landed(self, target: RemoteTarget, size: int, md5: str) -> bool:
        """Is an object of ``size`` bytes whose ETag is the MD5 ``md5`` at the target? Under
        SSE-KMS/SSE-C the ETag is no MD5 and the size alone proves nothing: sent again."""
        try:
            info = await self.head(target)
        except LightningError:  # cannot tell: send it again (a repeated PUT is harmless)
            return False
        return (
            info is not None and info.size == size and etag_md5(info.etag, info.encryption) == md5
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
                except UploadGone:
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
        check = UploadEtagCheck(self.etag_notes, str(local))
        assumed: set[int] = set()  # parts recorded by the MD5 sent, their answers lost
        resent: dict[int, int] = {}  # part -> times sent again after a complete refused it

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
                    check,
                    assumed,
                )
                if journal is not None and k not in assumed:  # a resume sends those again
                    journal.record(k, done[k])

        try:
            workers = min(
                len(missing), cfg.max_parts_in_flight, max(1, cfg.byte_budget // part_size)
            )
            await run_pool(workers, worker)
            st = await anyio.to_thread.run_sync(os.fstat, fd)
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                keep_journal = False
                raise TransferError(
                    "the file changed while it was being uploaded",
                    local=str(local),
                    remote=target.name,
                )
            while not completed:
                parts = [{"part_number": k, "etag": done[k]} for k in range(1, n + 1)]
                try:
                    await self._complete(target, upload_id, parts, size, local)
                    completed = True
                except PartsRefused as e:
                    # a part recorded by its MD5 was not stored after all (or differently):
                    # send the parts named (or, if none is, every such part) again
                    redo = e.parts or sorted(assumed)
                    bad = [
                        k for k in redo if k not in assumed or resent.get(k, 0) >= cfg.part_attempts
                    ]
                    if not redo or bad:
                        # a journaled part refused: a resume would fail the same way
                        keep_journal = all(k in assumed for k in bad) and bool(redo)
                        raise TransferError(
                            f"completing the upload failed: {e}",
                            local=str(local),
                            remote=target.name,
                            part=bad[0] if bad else None,
                        ) from e.__cause__
                    for k in redo:
                        assumed.discard(k)
                        resent[k] = resent.get(k, 0) + 1
                        progress.rewind(part_len(k))
                    queue.extend(redo)
                    await run_pool(min(len(redo), workers), worker)
                except TransferError as e:
                    if isinstance(e.__cause__, BadRequestError | NotFoundError):
                        keep_journal = False  # refused: a resume would fail the same way
                    raise
        except UploadGone as e:
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
        check: UploadEtagCheck,
        assumed: set[int],
    ) -> str:
        last = ""
        for attempt in range(self.config.part_attempts):
            url = urls.get(k)
            if url is None or expires_soon(str(url["url"]), _RESIGN_MARGIN):
                url = (await self._resign(target, upload_id, [k]))[k]
                urls[k] = url
            try:
                return await self._put_part_once(
                    fd, offset, length, url, progress, str(local), check=check
                )
            except PartFailed as e:
                last = str(e)
                if e.sent_md5 is not None and check.on:
                    # The store may have kept the bytes, and while its ETags are MD5s (not
                    # under SSE-KMS/SSE-C, see _etags) the part's ETag is the MD5 sent:
                    # recorded as is, not sent again; complete checks it. Where the ETags
                    # are no MD5s (check.on is False) the part is sent again instead.
                    assumed.add(k)
                    progress.advance(length, str(local))
                    return f'"{e.sent_md5}"'
                if e.fatal:
                    if "NoSuchUpload" in last:
                        raise UploadGone(last) from e
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
        except BadRequestError as e:
            if "InvalidPart" in str(e) and "InvalidPartOrder" not in str(e):
                raise PartsRefused(str(e), _named_parts(str(e))) from e
            raise TransferError(
                f"completing the upload failed: {e}", local=str(local), remote=target.name
            ) from e
        except NotFoundError as e:
            # A retried complete whose first attempt succeeded finds no upload any more:
            # the object is there with the right size (and multipart ETag, when the store
            # gives one), then all is well. An expired upload leaves no such object.
            info = await self.head(target)
            if (
                info is None
                or info.size != size
                or not (info.encryption or same_multipart_etag(info.etag, parts))
            ):
                raise TransferError(
                    f"completing the upload failed: {e}", local=str(local), remote=target.name
                ) from e
        except APIStatusError as e:
            raise TransferError(
                f"completing the upload failed: {e}", local=str(local), remote=target.name
            ) from e
