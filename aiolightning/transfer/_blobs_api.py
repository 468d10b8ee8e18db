"""The transfer engine's shared state and its control calls to the blobs API.

Those calls are the presigning ``POST <base>/blobs`` (single-part URLs batched across files,
parts re-signed in batches), ``POST <base>/blobs/complete``, and the blob ``HEAD``; the
retry waits shared by parts and ranges are here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from .._errors import APIStatusError, BadRequestError, NotFoundError
from ._budget import ByteBudget
from ._config import TransferConfig
from ._errors import TransferError, UploadGone
from ._etags import EtagNotes, encryption
from ._presigned import PresignedSession
from ._redirects import DownloadLocations
from ._target import RemoteTarget

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["BlobHead", "BlobsApi"]

_RESIGN_BATCH = 1000


class BlobHead(NamedTuple):
    size: int
    etag: str
    encryption: str  # what keeps the ETag from being an MD5, or "" (see _etags.encryption)


class _BatchRejected(Exception):
    """A batched URL request was refused as a whole: each file asks again on its own."""


class BlobsApi:
    """The state every transfer shares (config, byte budget, presigned session, remembered
    download locations) and the blobs API calls that uploads and downloads make."""

    def __init__(self, transport: Transport, config: TransferConfig | None = None) -> None:
        self.transport = transport
        self.config = config or TransferConfig()
        self.budget = ByteBudget(self.config.byte_budget)
        self.presigned = PresignedSession(
            transport.session.connector,
            transport.limiter,
            network=transport.storage_network(self.config.proxy),
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.part_timeout,
        )
        # blob GETs redirected to presigned URLs: the URL is reused for the file's next ranges
        self.locations = DownloadLocations(transport, self.presigned)
        self._rng = random.Random()
        self.etag_notes = EtagNotes()  # ETags that cannot be checked: warned about once
        # single-part URL requests waiting to go out together, per (base, cluster, studio)
        self._sign_queues: dict[
            tuple[str, str, bool], list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]
        ] = {}
        self._sign_tasks: set[asyncio.Task[None]] = set()

    async def _post_blobs(self, target: RemoteTarget, suffix: str, *blobs: dict[str, Any]) -> Any:
        body: dict[str, Any] = {"blobs": list(blobs)}
        if target.cluster_id and not target.studio:
            body["cluster_id"] = target.cluster_id
        return await self.transport.request(
            "POST",
            f"{target.base}/blobs{suffix}",
            json=body,
            scope="presign",
            route=f"{target.route}/blobs{suffix}",
            idempotent=True,  # repeating a sign or a complete is harmless (see _complete)
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
        try:
            resp = await self._post_blobs(target, "", *(b for b, _ in live))
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
                raise UploadGone(str(e)) from e
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

    async def head(self, target: RemoteTarget) -> BlobHead | None:
        """(size, ETag, encryption) of a remote file, or None if it does not exist."""
        try:
            async with self.transport.stream(
                "HEAD", target.blob_url(), scope="read", route=f"{target.route}/blobs/{{path}}"
            ) as resp:
                self.locations.saw_head(target.blob_url(), resp)
                return BlobHead(
                    int(resp.headers.get("Content-Length", "0")),
                    resp.headers.get("ETag", ""),
                    encryption(resp.headers),
                )
        except NotFoundError:
            return None
