"""One part's PUT to its presigned URL: read (whole or streamed), hashed, sent, ETag-checked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio

from ._blobs_api import BlobsApi
from ._errors import NETWORK_ERRORS, PartFailed
from ._etags import UploadEtagCheck
from ._local import read_chunk
from ._md5 import QUEUE_DEPTH, Md5, PartMd5, new_md5
from ._progress import ProgressTracker

__all__ = ["PartPuts"]


def _may_have_landed(e: BaseException) -> bool:
    """Could the store have kept a body whose PUT failed with ``e``? Yes, unless the
    connection was never made (the answer lost, cut short or waited for in vain: maybe)."""
    return not isinstance(e, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


class PartPuts(BlobsApi):
    """PUTs one part (or a whole small file) and tells a retryable failure from a fatal one."""

    def _classify_put(self, status: int, body: bytes) -> PartFailed:
        text = body[:300].decode("utf-8", "replace").strip()
        msg = f"HTTP {status} from the object store" + (f": {text}" if text else "")
        if status in (401, 403):
            return PartFailed(msg, resign=True)
        if status == 404:
            return PartFailed(msg, fatal=True)
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            return PartFailed(msg)
        return PartFailed(msg, fatal=True)

    async def _put_part_once(
        self,
        fd: int,
        offset: int,
        length: int,
        url: dict[str, Any],
        progress: ProgressTracker,
        name: str,
        head: tuple[bytes, Any] | None = None,
        *,
        check: UploadEtagCheck,
    ) -> str:
        """PUT bytes [offset, offset+length) of the file, check the ETag (while ``check``
        says the upload's ETags are MD5s); return the ETag.

        A part no larger than ``read_chunk`` is read whole (one thread hop); a larger one is
        streamed from the file ``read_chunk`` bytes at a time (each ``os.pread`` and MD5
        update in a worker thread, one chunk ahead of the socket), so a part in flight holds
        about two chunks of memory, not the whole part: that is what it takes from the byte
        budget.
        """
        cfg = self.config
        step = cfg.read_chunk
        verify = cfg.verify_checksums and check.on
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
                    anyio.to_thread.run_sync(read_chunk, fd, p, min(step, end - p), None)
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
            except NETWORK_ERRORS as e:
                lost = md5.hexdigest() if md5 is not None and _may_have_landed(e) else None
                raise PartFailed(f"{type(e).__name__}: {e}", sent_md5=lost) from e
            finally:
                del data
            sent = length
            progress.advance(length, name)
        else:
            # a streamed part holds the chunk going out, the one read ahead, and chunks
            # sent but still queued for hashing
            held = 1 + (QUEUE_DEPTH if verify else 1)
            async with self.budget.hold(min(length, held * step)):
                read = False  # a part read whole: its bytes are in hand (and hashed)
                try:
                    if length <= step:
                        md5 = new_md5() if verify else None
                        data = await anyio.to_thread.run_sync(read_chunk, fd, offset, length, md5)
                        read = True
                        put = await self.presigned.put(str(url["url"]), data, url.get("headers"))
                        del data
                        sent = length
                        progress.advance(length, name)
                    else:
                        part_md5 = PartMd5() if verify else None
                        put = await self.presigned.put(
                            str(url["url"]), stream(), url.get("headers"), length=length
                        )
                        if part_md5 is not None:  # the last chunk may still be hashing
                            digest = await part_md5.hexdigest()
                except NETWORK_ERRORS as e:
                    progress.rewind(sent)
                    lost = None
                    if _may_have_landed(e):
                        if read and md5 is not None:
                            lost = md5.hexdigest()
                        elif sent == length and part_md5 is not None:  # every chunk went out
                            lost = await part_md5.hexdigest()
                    raise PartFailed(f"{type(e).__name__}: {e}", sent_md5=lost) from e
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
            failed = self._classify_put(put.status, put.body)
            if put.status >= 500 and not failed.fatal and sent == length:
                failed.sent_md5 = digest  # a 5xx may come after the store kept the bytes
            raise failed
        if sent != length:
            progress.rewind(sent)
            raise PartFailed(f"only {sent} of {length} bytes were sent")
        etag = put.etag
        if digest is not None:
            plain = check.expected(etag, put.encryption)
            if plain is not None and plain != digest and check.transfer_error(offset, digest, etag):
                progress.rewind(sent)
                raise PartFailed(f"checksum mismatch: sent MD5 {digest}, object store says {etag}")
        return etag
