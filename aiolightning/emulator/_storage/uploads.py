"""The blobs control calls: starting, re-signing and completing uploads (``POST blobs``)."""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from .core import StoreCore
from .objects import DRIVE, MAX_PART_SIZE, MAX_PARTS, OpenUpload, StoredObject
from .presign import encode_token
from .wire import BadRequest, clean_path, int_param, json_error, read_blobs, snake_or_camel

__all__ = ["BlobUploads"]


class BlobUploads(StoreCore):
    """``POST <base>/blobs`` (single-part URL, multipart start, re-sign) and
    ``POST <base>/blobs/complete``."""

    async def _create(self, request: web.Request) -> web.StreamResponse:
        self.expire_uploads()
        try:
            body, blobs = await read_blobs(request)
            cluster_id = str(snake_or_camel(body, "cluster_id", "clusterId") or "")
            results = [self._create_one(request, b, cluster_id) for b in blobs]
        except BadRequest as e:
            return json_error(400, 3, str(e))
        except KeyError as e:
            return json_error(404, 5, str(e.args[0]))
        return web.json_response({"results": results})

    def _create_one(self, request: web.Request, blob: Any, cluster_id: str) -> dict[str, Any]:
        if not isinstance(blob, dict):
            raise BadRequest("each blob must be an object")
        path = clean_path(str(blob.get("path") or ""), allow_root=False)
        pid, scope, path = self._scope(request, path)
        if not path:
            raise BadRequest("path must name a file")
        content_type = str(snake_or_camel(blob, "content_type", "contentType") or "")
        upload_id = str(snake_or_camel(blob, "upload_id", "uploadId") or "")
        if upload_id:  # re-sign parts of an open upload
            up = self._uploads.get(upload_id)
            if up is None or (up.project_id, up.scope, up.path) != (pid, scope, path):
                raise KeyError(f"upload {upload_id!r} of {path!r} not found")
            numbers = snake_or_camel(blob, "part_numbers", "partNumbers") or []
            if not isinstance(numbers, list) or not numbers:
                raise BadRequest("part_numbers must be a non-empty list")
            urls = []
            for raw_n in numbers:
                n = int_param(raw_n, "part number")
                if not 1 <= n <= up.parts:
                    raise BadRequest(f"part number {n} outside 1..{up.parts}")
                urls.append(self._part_url(up, n))
            self.counters.incr("storage:parts_resigned", len(urls))
            return {"upload_id": upload_id, "urls": urls, "complete_required": True}

        if scope == DRIVE and not cluster_id and not path.startswith("lightning_storage/"):
            raise BadRequest("ClusterID is required for uploads to the teamspace drive")
        parts_raw = blob.get("parts")
        parts = 1 if parts_raw in (None, "", 0, "0") else int_param(parts_raw, "parts")
        if parts <= 1:
            token = encode_token(
                {"p": pid, "s": scope, "k": path, "t": content_type, "c": cluster_id}
            )
            self.counters.incr("storage:single_urls")
            url = self.signer.url("PUT", f"/_storage/objects/{token}")
            return {
                "upload_id": "",
                "urls": [{"url": url, "part_number": 1, "headers": {}}],
                "complete_required": False,
            }

        part_size = int_param(snake_or_camel(blob, "part_size", "partSize"), "part_size")
        if parts > MAX_PARTS:
            raise BadRequest(f"parts must be at most {MAX_PARTS}, got {parts}")
        if not 0 < part_size <= MAX_PART_SIZE:
            raise BadRequest(f"part_size must be in 1..{MAX_PART_SIZE}, got {part_size}")
        for stale in [
            u
            for u in self._uploads.values()
            if (u.project_id, u.scope, u.path) == (pid, scope, path)
        ]:
            self._drop_upload(stale)
            self.counters.incr("storage:uploads_aborted")
        upload_id = uuid.uuid4().hex
        directory = self.root / "uploads" / upload_id
        directory.mkdir(parents=True)
        up = OpenUpload(
            upload_id=upload_id,
            project_id=pid,
            scope=scope,
            path=path,
            parts=parts,
            part_size=part_size,
            content_type=content_type,
            cluster_id=cluster_id,
            directory=directory,
            started=time.time(),
        )
        self._uploads[upload_id] = up
        self.counters.incr("storage:uploads_started")
        urls = [self._part_url(up, n) for n in range(1, parts + 1)]
        return {"upload_id": upload_id, "urls": urls, "complete_required": True}

    def _part_url(self, up: OpenUpload, n: int) -> dict[str, Any]:
        return {
            "url": self.signer.url("PUT", f"/_storage/parts/{up.upload_id}/{n}"),
            "part_number": n,
            "headers": {},
        }

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        self.expire_uploads()
        try:
            _, blobs = await read_blobs(request)
            for blob in blobs:
                await self._complete_one(request, blob)
        except BadRequest as e:
            return json_error(400, 3, str(e))
        except KeyError as e:
            return json_error(404, 5, str(e.args[0]))
        return web.json_response({})

    async def _complete_one(self, request: web.Request, blob: Any) -> None:
        if not isinstance(blob, dict):
            raise BadRequest("each blob must be an object")
        path = clean_path(str(blob.get("path") or ""), allow_root=False)
        pid, scope, path = self._scope(request, path)
        upload_id = str(snake_or_camel(blob, "upload_id", "uploadId") or "")
        if not upload_id:  # single-part finalize: nothing to do once the PUT has landed
            if path not in self._ns(pid, scope).objects:
                raise KeyError(f"blob {path!r} not found")
            return
        up = self._uploads.get(upload_id)
        if up is None or (up.project_id, up.scope, up.path) != (pid, scope, path):
            raise KeyError(f"upload {upload_id!r} of {path!r} not found")
        listed = blob.get("parts")
        if not isinstance(listed, list) or not listed:
            raise BadRequest("parts must be a non-empty list")
        files: list[tuple[Path, int]] = []
        digests = b""
        prev = 0
        for item in listed:
            if not isinstance(item, dict):
                raise BadRequest("each part must be an object")
            n = int_param(snake_or_camel(item, "part_number", "partNumber"), "part_number")
            if n <= prev:
                raise BadRequest("InvalidPartOrder: parts must be listed in ascending order")
            prev = n
            got = up.received.get(n)
            etag = str(item.get("etag") or "").strip('"')
            if got is None or etag != got.etag.strip('"'):
                # S3's InvalidPart: refused before anything is committed, the upload stays open
                self.counters.incr("storage:completes_refused")
                raise BadRequest(
                    f"InvalidPart: part {n} of upload {upload_id} was not uploaded or its etag does not match"
                )
            files.append((got.file, got.size))
            digests += binascii.unhexlify(got.etag.strip('"'))
        if prev != up.parts or len(listed) != up.parts:
            raise BadRequest(f"InvalidPart: all {up.parts} parts must be listed, got {len(listed)}")
        size = sum(s for _, s in files)
        for n, (_, s) in enumerate(files[:-1], start=1):
            if s != up.part_size:
                raise BadRequest(f"EntityTooSmall: part {n} has {s} bytes, expected {up.part_size}")
        etag = f'"{hashlib.md5(digests).hexdigest()}-{len(files)}"'
        # the part files become the object's files: move the upload directory under objects/
        directory = self.root / "objects" / upload_id
        os.replace(up.directory, directory)
        files = [(directory / f.name, s) for f, s in files]
        del self._uploads[upload_id]
        for extra in set(up.received) - {int(f.name) for f, _ in files}:  # unlisted parts
            with contextlib.suppress(OSError):
                (directory / str(extra)).unlink()
        obj = StoredObject(
            files, size, etag, time.time(), up.content_type, up.cluster_id, directory
        )
        self._replace(pid, scope, path, obj)
        self.counters.incr("storage:uploads_completed")
        self.counters.effect("upload_completed", self.effect_key(scope, path))
