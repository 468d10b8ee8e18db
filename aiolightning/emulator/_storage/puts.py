"""The presigned PUT endpoints that receive the bytes of a part or of a single-part object."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from aiohttp import web
from aiohttp.streams import EofStream

from .core import StoreCore
from .objects import MAX_PART_SIZE, Part, StoredObject
from .presign import decode_token
from .receive import receive_body, reject_chunked
from .wire import xml_error

__all__ = ["PresignedPuts"]


class PresignedPuts(StoreCore):
    """``PUT /_storage/parts/<upload id>/<n>`` and ``PUT /_storage/objects/<token>``."""

    async def _refuse_body(self, request: web.Request) -> web.Response | None:
        """A body too large for one part, or the injected part failure; None to go on."""
        if request.content_length is not None and request.content_length > MAX_PART_SIZE:
            return xml_error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        if self._faults.fails():
            return await self._faults.fail(request)
        return None

    async def _put_part(self, request: web.Request) -> web.StreamResponse:
        upload_id = request.match_info["upload_id"]
        part_s = request.match_info["part"]
        resource = f"/_storage/parts/{upload_id}/{part_s}"
        denied = self.signer.check(request, resource) or reject_chunked(request)
        if denied is not None:
            return denied
        self.expire_uploads()
        up = self._uploads.get(upload_id)
        if up is None:
            return xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        n = int(part_s)
        refused = await self._refuse_body(request)
        if refused is not None:
            return refused
        if upload_id not in self._uploads:  # replaced while we waited
            return xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        try:
            size, etag = await receive_body(
                request, up.directory / str(n), self.counters, corrupt=self._faults.corrupts()
            )
        except (ConnectionResetError, asyncio.IncompleteReadError, EofStream):
            self.counters.incr("storage:puts_interrupted")
            return xml_error(400, "IncompleteBody", "The request body was cut short")
        except FileNotFoundError:  # the upload's directory went away under the PUT
            if self._uploads.get(upload_id) is up:
                raise
            return xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        if self._uploads.get(upload_id) is not up:  # completed, replaced or expired meanwhile
            with contextlib.suppress(OSError):  # a late part of a dropped upload: no leftovers
                (up.directory / str(n)).unlink()
            with contextlib.suppress(OSError):
                up.directory.rmdir()
            return xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        up.received[n] = Part(up.directory / str(n), size, etag)
        self.counters.incr("storage:parts_put")
        self.counters.effect("part_stored", f"{self.effect_key(up.scope, up.path)}#{n}")
        return web.Response(status=200, headers={"ETag": etag})

    async def _put_single(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        denied = self.signer.check(request, f"/_storage/objects/{token}") or reject_chunked(request)
        if denied is not None:
            return denied
        decoded = decode_token(token)
        if decoded is None:
            return xml_error(400, "InvalidRequest", "malformed upload token")
        pid, scope, path, info = decoded
        refused = await self._refuse_body(request)
        if refused is not None:
            return refused
        file = self.root / "objects" / f"{uuid.uuid4().hex}.blob"
        try:
            size, etag = await receive_body(
                request, file, self.counters, fresh=True, corrupt=self._faults.corrupts()
            )
        except (ConnectionResetError, asyncio.IncompleteReadError, EofStream):
            self.counters.incr("storage:puts_interrupted")
            return xml_error(400, "IncompleteBody", "The request body was cut short")
        obj = StoredObject(
            [(file, size)],
            size,
            etag,
            time.time(),
            str(info.get("t") or ""),
            str(info.get("c") or ""),
            None,
        )
        self._replace(pid, scope, path, obj)
        self.counters.incr("storage:parts_put")
        self.counters.incr("storage:single_puts")
        key = self.effect_key(scope, path)
        self.counters.effect("part_stored", f"{key}#1")
        self.counters.effect("upload_completed", key)
        return web.Response(status=200, headers={"ETag": etag})
