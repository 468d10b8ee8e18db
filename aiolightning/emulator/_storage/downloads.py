"""Serving a blob's bytes: direct or redirected downloads, presigned GETs, Range requests."""

from __future__ import annotations

import os
from email.utils import formatdate

from aiohttp import web

from .core import StoreCore
from .objects import CHUNK, StoredObject
from .presign import decode_token, encode_token
from .wire import BadRequest, clean_path, json_error, xml_error

__all__ = ["BlobDownloads", "parse_range"]


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``(start, end_inclusive)``; ``None`` = serve the whole object; ``"416"`` = unsatisfiable."""
    header = header.strip()
    if not header.lower().startswith("bytes="):
        return None
    spec = header[6:].strip()
    if "," in spec:  # multiple ranges: like S3, answer with the whole object
        return None
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "416"
            start, end = max(0, size - n), size - 1
        else:
            start = int(first)
            end = int(last) if last else size - 1
            if start >= size:
                return "416"
            if end < start:
                return None
            end = min(end, size - 1)
    except ValueError:
        return None
    if size == 0:
        return "416"
    return start, end


class BlobDownloads(StoreCore):
    """``GET|HEAD <base>/blobs/<path>`` and the redirect target ``GET|HEAD /_storage/blobs/<token>``."""

    async def _download(self, request: web.Request) -> web.StreamResponse:
        try:
            path = clean_path(request.match_info["path"], allow_root=False)
        except BadRequest as e:
            return json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        obj = self._ns(pid, scope).objects.get(path)
        if obj is None:
            if request.method == "HEAD":
                return web.Response(status=404)
            return json_error(404, 5, f"blob {path!r} not found")
        if self.config.faults.redirect_downloads:
            token = encode_token({"p": pid, "s": scope, "k": path})
            origin = self.storage_url() if self.storage_url is not None else ""
            location = self.signer.url(request.method, f"/_storage/blobs/{token}", origin)
            self.counters.incr("storage:downloads_redirected")
            return web.Response(status=307, headers={"Location": location})
        return await self._send_object(request, obj)

    async def _presigned_get(self, request: web.Request) -> web.StreamResponse:
        """GET/HEAD of a redirected download's presigned URL: no Lightning auth, a signature."""
        token = request.match_info["token"]
        denied = self.signer.check(request, f"/_storage/blobs/{token}")
        if denied is not None:
            return denied
        decoded = decode_token(token)
        if decoded is None:
            return xml_error(400, "InvalidRequest", "malformed object token")
        pid, scope, path, _ = decoded
        ns = self._namespaces.get((pid, scope))
        obj = None if ns is None else ns.objects.get(path)
        if obj is None:
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        self.counters.incr("storage:presigned_gets")
        return await self._send_object(request, obj)

    async def _send_object(self, request: web.Request, obj: StoredObject) -> web.StreamResponse:
        headers = {
            "ETag": obj.etag,
            "Last-Modified": formatdate(obj.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": obj.content_type or "application/octet-stream",
            **self._faults.sse_headers(),
        }
        start, end = 0, obj.size - 1
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            r = parse_range(range_header, obj.size)
            if r == "416":
                headers["Content-Range"] = f"bytes */{obj.size}"
                return web.Response(status=416, headers=headers)
            if isinstance(r, tuple):
                start, end = r
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
        length = end - start + 1 if obj.size else 0
        headers["Content-Length"] = str(length)
        resp = web.StreamResponse(status=status, headers=headers)
        if request.method == "HEAD":
            await resp.prepare(request)
            return resp
        await resp.prepare(request)
        sent = 0
        try:
            offset = 0
            for file, fsize in obj.files:
                if sent >= length:
                    break
                if offset + fsize <= start:
                    offset += fsize
                    continue
                pos = max(0, start + sent - offset)
                fd = os.open(file, os.O_RDONLY)
                try:
                    while pos < fsize and sent < length:
                        chunk = os.pread(fd, min(CHUNK, fsize - pos, length - sent), pos)
                        if not chunk:
                            raise ConnectionResetError(f"object file {file} shorter than recorded")
                        await resp.write(chunk)
                        pos += len(chunk)
                        sent += len(chunk)
                finally:
                    os.close(fd)
                offset += fsize
        finally:
            self.counters.incr("storage:bytes_out", sent)
        await resp.write_eof()
        return resp
