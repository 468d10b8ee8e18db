"""The artifacts blobs/trees storage API of the emulator, with its own presigned URLs.

Wire shape (docs wire-flows §6.3-6.6), for ``<base>`` = ``/v1/projects/{pid}/artifacts`` (the
teamspace drive) or ``/v1/projects/{pid}/artifacts/cloudspaces/{studioId}`` (a studio):

* ``POST <base>/blobs`` -- snake_case (camelCase accepted too). One result per requested blob:
  single part (``{"path"}``): one presigned PUT URL, ``complete_required`` false;
  multipart (``{"path", "parts", "part_size"}``): an ``upload_id`` and one URL per part;
  re-sign (``{"path", "upload_id", "part_numbers"}``): fresh URLs for those parts.
* ``PUT /_storage/...?Expires=..&Signature=..`` -- the presigned URLs. HMAC-SHA256 signed,
  expiring after ``config.faults.url_ttl`` seconds; a bad or expired signature answers 403
  with an S3-like XML body. Never needs (and never accepts instead of a signature) the
  Lightning ``Authorization`` header; seeing one is counted as
  ``storage:authorization_header_seen``. The ETag is the quoted MD5 of the bytes received.
* ``POST <base>/blobs/complete`` -- assembles the object from its parts after checking
  every part number and ETag (a wrong one answers 400).
* ``GET <base>/trees/<path>`` -- ``recursive``, ``atMost``, ``cursor`` -> ``{"tree",
  "nextCursor"}``; a recursive listing holds only blobs, paths relative to the folder.
* ``GET|HEAD <base>/blobs/<path>`` -- the bytes, streamed from disk, with ``Range`` (206/416).
  With ``config.faults.redirect_downloads`` it answers ``307`` instead, ``Location`` a
  presigned URL (``/_storage/blobs/<token>?Expires=..&Signature=..``, signed for the
  request's method) on the emulator's second listener: another origin, as an object store's
  URL would be, so a client following the redirect must drop ``Authorization``. An expired
  URL answers 403; a new GET of the blob URL gives a new one.
* ``DELETE <base>/blobs/<path>`` and ``DELETE <base>/trees/<path>`` -- 204.

Bytes live on disk under ``root``: every part (or single-part body) is a file, streamed to
disk while its MD5 is computed; an object is the ordered list of its part files and is read
back part by part, so no object is ever held in memory whatever its size.

The blobs API has no abort call. An open multipart upload stays until it is completed,
until a new multipart upload of the same path replaces it (counted as
``storage:uploads_aborted``), or until it is older than ``config.faults.upload_ttl`` seconds
(default 24 h): then it is expired like an object store's lifecycle rule does it, its part
files deleted (``storage:uploads_expired``), and its upload id answers 404 ``NoSuchUpload``
from then on. ``ArtifactStore.open_uploads()`` lists the open ones.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import random
import shutil
import time
import uuid
from bisect import bisect_left, insort
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web
from aiohttp.streams import EofStream

from .._streams import received_chunks
from ._config import Counters, EmulatorConfig

__all__ = ["ArtifactStore", "OpenUpload", "StoredObject"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024**3 - 1  # each part must stay below 5 GiB
_CHUNK = 1024 * 1024  # read/write granularity of downloads; bodies up to this are read whole
_BATCH = 2 * 1024 * 1024  # bytes of a part body hashed and written per worker-thread hop
_DEFAULT_AT_MOST = 1000
_MAX_AT_MOST = 5000
_DRIVE = ""  # scope of the teamspace drive; a studio's scope is "cloudspaces/<id>"


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
class _Part:
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
    received: dict[int, _Part] = field(default_factory=dict)


class _Namespace:
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


class _BadRequest(Exception):
    pass


def _json_error(status: int, code: int, message: str) -> web.Response:
    body = msgspec.json.encode({"code": code, "message": message, "details": []})
    return web.Response(status=status, body=body, content_type="application/json")


def _decode_token(token: str) -> tuple[str, str, str, dict[str, Any]] | None:
    """(project id, scope, path, all fields) from the object token of a presigned URL;
    None if it is malformed."""
    try:
        info = msgspec.json.decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(info["p"]), str(info["s"]), str(info["k"]), info
    except (ValueError, KeyError, TypeError, AttributeError, msgspec.DecodeError):
        return None


async def _flip_first_byte(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks with the first byte inverted: a body damaged on its way in."""
    flipped = False
    async for c in chunks:
        if not flipped and c:
            c = bytes([c[0] ^ 0xFF]) + c[1:]
            flipped = True
        yield c


def _xml_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _BadRequest(f"{what} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _BadRequest(f"{what} must be an integer, got {value!r}") from None


def _get(d: dict[str, Any], snake: str, camel: str) -> Any:
    v = d.get(snake)
    return d.get(camel) if v is None else v


def _clean_path(raw: str, *, allow_root: bool) -> str:
    path = raw.strip("/")
    if path == "":
        if allow_root:
            return ""
        raise _BadRequest("path must not be empty")
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise _BadRequest(f"invalid path {path!r}: empty, '.' or '..' segment")
    return path


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _bool_param(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
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


class ArtifactStore:
    """The emulator's artifacts storage: routes, presigned URLs, bytes on disk."""

    def __init__(
        self,
        root: Path,
        secret: bytes,
        config: EmulatorConfig,
        counters: Counters,
        base_url: Callable[[], str],
        storage_url: Callable[[], str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.secret = secret
        self.config = config
        self.counters = counters
        self.base_url = base_url
        # origin of redirected download URLs (another listener); the API's when unset
        self.storage_url = storage_url
        # Optional hook the emulator core may set: (project id, studio name) -> studio id.
        # When set, drive paths ``studios/<name>/...`` address that studio's files.
        self.studio_resolver: Callable[[str, str], str | None] | None = None
        self._namespaces: dict[tuple[str, str], _Namespace] = {}
        self._uploads: dict[str, OpenUpload] = {}
        self._rng = random.Random(hashlib.sha256(secret).digest())
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ public helpers

    def routes(self) -> list[tuple[str, str, Handler]]:
        studio = "/v1/projects/{pid}/artifacts/cloudspaces/{studio}"
        drive = "/v1/projects/{pid}/artifacts"
        out: list[tuple[str, str, Handler]] = [
            ("PUT", "/_storage/parts/{upload_id}/{part}", self._put_part),
            ("PUT", "/_storage/objects/{token}", self._put_single),
            ("GET", "/_storage/blobs/{token}", self._presigned_get),
            ("HEAD", "/_storage/blobs/{token}", self._presigned_get),
        ]
        for base in (studio, drive):  # the studio templates first: they are more specific
            out += [
                ("POST", base + "/blobs", self._create),
                ("POST", base + "/blobs/complete", self._complete),
                ("GET", base + "/blobs/{path:.*}", self._download),
                ("HEAD", base + "/blobs/{path:.*}", self._download),
                ("DELETE", base + "/blobs/{path:.*}", self._delete_blob),
                ("GET", base + "/trees/{path:.*}", self._tree),
                ("DELETE", base + "/trees/{path:.*}", self._delete_tree),
            ]
        return out

    async def close(self) -> None:
        self._uploads.clear()
        self._namespaces.clear()
        await asyncio.to_thread(shutil.rmtree, self.root / "uploads", True)
        await asyncio.to_thread(shutil.rmtree, self.root / "objects", True)

    def open_uploads(self) -> list[OpenUpload]:
        """Multipart uploads started and neither completed, replaced nor expired."""
        self.expire_uploads()
        return list(self._uploads.values())

    def expire_uploads(self, now: float | None = None) -> int:
        """Drop the open uploads older than ``config.faults.upload_ttl`` and their part files
        (what an object store's lifecycle rule for incomplete multipart uploads does). Runs
        before every storage request that touches uploads; returns how many expired."""
        ttl = self.config.faults.upload_ttl
        if ttl <= 0 or not self._uploads:
            return 0
        cutoff = (time.time() if now is None else now) - ttl
        expired = []
        for up in self._uploads.values():  # in start order: the oldest first
            if up.started > cutoff:
                break
            expired.append(up)
        for up in expired:
            self._drop_upload(up)
        if expired:
            self.counters.incr("storage:uploads_expired", len(expired))
        return len(expired)

    def get_object(self, project_id: str, path: str, studio_id: str = "") -> StoredObject | None:
        scope = f"cloudspaces/{studio_id}" if studio_id else _DRIVE
        ns = self._namespaces.get((project_id, scope))
        return None if ns is None else ns.objects.get(path.strip("/"))

    # ------------------------------------------------------------------ addressing

    def _scope(self, request: web.Request, path: str) -> tuple[str, str, str]:
        """(project id, scope, path) after mapping ``studios/<name>/`` drive paths."""
        pid = request.match_info["pid"]
        studio = request.match_info.get("studio")
        if studio:
            return pid, f"cloudspaces/{studio}", path
        if self.studio_resolver is not None and path.startswith("studios/"):
            _, name, *rest = path.split("/", 2)
            studio_id = self.studio_resolver(pid, name) if name else None
            if studio_id:
                return pid, f"cloudspaces/{studio_id}", rest[0] if rest else ""
        return pid, _DRIVE, path

    def _ns(self, pid: str, scope: str) -> _Namespace:
        ns = self._namespaces.get((pid, scope))
        if ns is None:
            ns = self._namespaces[(pid, scope)] = _Namespace()
        return ns

    # ------------------------------------------------------------------ signing

    def _sign(self, method: str, resource: str, expires: int) -> str:
        msg = f"{method}\n{resource}\n{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def _presign(self, method: str, resource: str, origin: str = "") -> str:
        expires = int(time.time() + self.config.faults.url_ttl + 0.999)
        sig = self._sign(method, resource, expires)
        base = (origin or self.base_url()).rstrip("/")
        return f"{base}{resource}?Expires={expires}&Signature={sig}"

    def _check_signature(self, request: web.Request, resource: str) -> web.Response | None:
        if "Authorization" in request.headers:
            self.counters.incr("storage:authorization_header_seen")
        expires_s = request.query.get("Expires", "")
        sig = request.query.get("Signature", "")
        try:
            expires = int(expires_s)
        except ValueError:
            self.counters.incr("storage:signature_rejected")
            return _xml_error(403, "AccessDenied", "Query-string authentication required")
        good = self._sign(request.method, resource, expires)
        if not hmac.compare_digest(good, sig):
            self.counters.incr("storage:signature_rejected")
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        if time.time() > expires:
            self.counters.incr("storage:urls_expired")
            return _xml_error(403, "AccessDenied", "Request has expired")
        return None

    # ------------------------------------------------------------------ control: blobs

    async def _read_json(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            raise _BadRequest(f"invalid JSON body: {e}") from None
        if not isinstance(body, dict):
            raise _BadRequest("the body must be a JSON object")
        return body

    async def _create(self, request: web.Request) -> web.StreamResponse:
        self.expire_uploads()
        try:
            body = await self._read_json(request)
            blobs = body.get("blobs")
            if not isinstance(blobs, list) or not blobs:
                raise _BadRequest("blobs must be a non-empty list")
            cluster_id = str(_get(body, "cluster_id", "clusterId") or "")
            results = [self._create_one(request, b, cluster_id) for b in blobs]
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        except KeyError as e:
            return _json_error(404, 5, str(e.args[0]))
        return web.json_response({"results": results})

    def _create_one(self, request: web.Request, blob: Any, cluster_id: str) -> dict[str, Any]:
        if not isinstance(blob, dict):
            raise _BadRequest("each blob must be an object")
        path = _clean_path(str(blob.get("path") or ""), allow_root=False)
        pid, scope, path = self._scope(request, path)
        if not path:
            raise _BadRequest("path must name a file")
        content_type = str(_get(blob, "content_type", "contentType") or "")
        upload_id = str(_get(blob, "upload_id", "uploadId") or "")
        if upload_id:  # re-sign parts of an open upload
            up = self._uploads.get(upload_id)
            if up is None or (up.project_id, up.scope, up.path) != (pid, scope, path):
                raise KeyError(f"upload {upload_id!r} of {path!r} not found")
            numbers = _get(blob, "part_numbers", "partNumbers") or []
            if not isinstance(numbers, list) or not numbers:
                raise _BadRequest("part_numbers must be a non-empty list")
            urls = []
            for raw_n in numbers:
                n = _int(raw_n, "part number")
                if not 1 <= n <= up.parts:
                    raise _BadRequest(f"part number {n} outside 1..{up.parts}")
                urls.append(self._part_url(up, n))
            self.counters.incr("storage:parts_resigned", len(urls))
            return {"upload_id": upload_id, "urls": urls, "complete_required": True}

        if scope == _DRIVE and not cluster_id and not path.startswith("lightning_storage/"):
            raise _BadRequest("ClusterID is required for uploads to the teamspace drive")
        parts_raw = blob.get("parts")
        parts = 1 if parts_raw in (None, "", 0, "0") else _int(parts_raw, "parts")
        if parts <= 1:
            token = base64.urlsafe_b64encode(
                msgspec.json.encode(
                    {"p": pid, "s": scope, "k": path, "t": content_type, "c": cluster_id}
                )
            ).decode()
            self.counters.incr("storage:single_urls")
            url = self._presign("PUT", f"/_storage/objects/{token.rstrip('=')}")
            return {
                "upload_id": "",
                "urls": [{"url": url, "part_number": 1, "headers": {}}],
                "complete_required": False,
            }

        part_size = _int(_get(blob, "part_size", "partSize"), "part_size")
        if parts > MAX_PARTS:
            raise _BadRequest(f"parts must be at most {MAX_PARTS}, got {parts}")
        if not 0 < part_size <= MAX_PART_SIZE:
            raise _BadRequest(f"part_size must be in 1..{MAX_PART_SIZE}, got {part_size}")
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
            "url": self._presign("PUT", f"/_storage/parts/{up.upload_id}/{n}"),
            "part_number": n,
            "headers": {},
        }

    def _drop_upload(self, up: OpenUpload) -> None:
        self._uploads.pop(up.upload_id, None)
        shutil.rmtree(up.directory, ignore_errors=True)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        self.expire_uploads()
        try:
            body = await self._read_json(request)
            blobs = body.get("blobs")
            if not isinstance(blobs, list) or not blobs:
                raise _BadRequest("blobs must be a non-empty list")
            for blob in blobs:
                await self._complete_one(request, blob)
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        except KeyError as e:
            return _json_error(404, 5, str(e.args[0]))
        return web.json_response({})

    async def _complete_one(self, request: web.Request, blob: Any) -> None:
        if not isinstance(blob, dict):
            raise _BadRequest("each blob must be an object")
        path = _clean_path(str(blob.get("path") or ""), allow_root=False)
        pid, scope, path = self._scope(request, path)
        upload_id = str(_get(blob, "upload_id", "uploadId") or "")
        if not upload_id:  # single-part finalize: nothing to do once the PUT has landed
            if path not in self._ns(pid, scope).objects:
                raise KeyError(f"blob {path!r} not found")
            return
        up = self._uploads.get(upload_id)
        if up is None or (up.project_id, up.scope, up.path) != (pid, scope, path):
            raise KeyError(f"upload {upload_id!r} of {path!r} not found")
        listed = blob.get("parts")
        if not isinstance(listed, list) or not listed:
            raise _BadRequest("parts must be a non-empty list")
        files: list[tuple[Path, int]] = []
        digests = b""
        prev = 0
        for item in listed:
            if not isinstance(item, dict):
                raise _BadRequest("each part must be an object")
            n = _int(_get(item, "part_number", "partNumber"), "part_number")
            if n <= prev:
                raise _BadRequest("InvalidPartOrder: parts must be listed in ascending order")
            prev = n
            got = up.received.get(n)
            etag = str(item.get("etag") or "").strip('"')
            if got is None or etag != got.etag.strip('"'):
                raise _BadRequest(
                    f"InvalidPart: part {n} of upload {upload_id} was not uploaded or its etag does not match"
                )
            files.append((got.file, got.size))
            digests += binascii.unhexlify(got.etag.strip('"'))
        if prev != up.parts or len(listed) != up.parts:
            raise _BadRequest(
                f"InvalidPart: all {up.parts} parts must be listed, got {len(listed)}"
            )
        size = sum(s for _, s in files)
        for n, (_, s) in enumerate(files[:-1], start=1):
            if s != up.part_size:
                raise _BadRequest(
                    f"EntityTooSmall: part {n} has {s} bytes, expected {up.part_size}"
                )
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

    def _replace(self, pid: str, scope: str, path: str, obj: StoredObject) -> None:
        old = self._ns(pid, scope).put(path, obj)
        if old is not None:
            self._remove_files(old)

    @staticmethod
    def _remove_files(obj: StoredObject) -> None:
        if obj.directory is not None:
            shutil.rmtree(obj.directory, ignore_errors=True)
        else:
            for f, _ in obj.files:
                with contextlib.suppress(OSError):
                    f.unlink()

    # ------------------------------------------------------------------ presigned PUTs

    async def _receive(
        self, request: web.Request, target: Path, *, fresh: bool = False, corrupt: bool = False
    ) -> tuple[int, str]:
        """Stream the body into ``target`` (via a temp file); return (size, quoted MD5).

        ``corrupt``: flip the first byte received (the ``corrupt_rate`` fault).

        ``fresh``: the target is a new unique name nobody refers to yet, so a small body is
        written to it directly (no temp file and rename: file creation is a good part of
        what a 1 MiB PUT costs the emulator).

        Hashing and writing run in a worker thread, one chunk behind the socket reads, so
        the event loop keeps receiving (hashlib and os.write release the GIL).
        """
        loop = asyncio.get_running_loop()
        chunks = received_chunks(request.content)
        if corrupt:
            chunks = _flip_first_byte(chunks)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        md5 = hashlib.md5()
        size = 0
        length = request.content_length
        if length is not None and length <= _CHUNK:
            # a small body: gather its chunks (request.read() would copy them twice), then
            # open, hash, write (and rename) in one thread hop
            body = [c async for c in chunks]
            received = sum(len(c) for c in body)
            self.counters.incr("storage:bytes_in", received)
            dest = target if fresh else tmp

            def store_small() -> None:
                for c in body:
                    md5.update(c)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    n = os.writev(fd, body) if body else 0
                    if n < received:
                        view = memoryview(b"".join(body))[n:]
                        while view:
                            view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                if not fresh:
                    os.replace(tmp, target)

            try:
                await loop.run_in_executor(None, store_small)
            except BaseException:
                with contextlib.suppress(OSError):
                    dest.unlink()
                raise
            return received, f'"{md5.hexdigest()}"'
        fd = await loop.run_in_executor(
            None, os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
        )

        def consume(chunks: list[bytes]) -> None:
            for c in chunks:
                md5.update(c)
            total = sum(len(c) for c in chunks)
            n = os.writev(fd, chunks)
            if n < total:
                view = memoryview(b"".join(chunks))[n:]
                while view:
                    view = view[os.write(fd, view) :]

        def finish() -> None:
            os.close(fd)
            os.replace(tmp, target)

        # The chunks the parser hands over are gathered as they are (iter_chunked would join
        # them into new 1 MiB bytes objects: one more copy of every byte on the event loop)
        # and hashed and written by one os.writev per _BATCH bytes in a worker thread, one
        # batch behind the socket reads.
        pending: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        batched = 0
        try:
            async for chunk in chunks:
                batch.append(chunk)
                batched += len(chunk)
                size += len(chunk)
                if batched >= _BATCH or len(batch) >= 512:
                    if pending is not None:
                        await pending
                    pending = loop.run_in_executor(None, consume, batch)
                    batch, batched = [], 0
            if pending is not None:
                await pending
                pending = None
            if batch:
                await loop.run_in_executor(None, consume, batch)
            await loop.run_in_executor(None, finish)
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            self.counters.incr("storage:bytes_in", size)
        return size, f'"{md5.hexdigest()}"'

    def _reject_chunked(self, request: web.Request) -> web.Response | None:
        if (
            request.content_length is None
            and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        ):
            return _xml_error(
                501,
                "NotImplemented",
                "A header you provided implies functionality that is not implemented: Transfer-Encoding",
            )
        return None

    async def _drain(self, request: web.Request) -> None:
        async for chunk in request.content.iter_chunked(_CHUNK):
            self.counters.incr("storage:bytes_in", len(chunk))

    def _inject_failure(self) -> bool:
        rate = self.config.faults.part_failure_rate
        return rate > 0 and self._rng.random() < rate

    def _inject_corruption(self) -> bool:
        rate = self.config.faults.corrupt_rate
        if rate > 0 and self._rng.random() < rate:
            self.counters.incr("storage:puts_corrupted")
            return True
        return False

    async def _put_part(self, request: web.Request) -> web.StreamResponse:
        upload_id = request.match_info["upload_id"]
        part_s = request.match_info["part"]
        resource = f"/_storage/parts/{upload_id}/{part_s}"
        denied = self._check_signature(request, resource) or self._reject_chunked(request)
        if denied is not None:
            return denied
        self.expire_uploads()
        up = self._uploads.get(upload_id)
        if up is None:
            return _xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        n = int(part_s)
        if request.content_length is not None and request.content_length > MAX_PART_SIZE:
            return _xml_error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        if self._inject_failure():
            await self._drain(request)
            self.counters.incr("storage:parts_failed")
            return _xml_error(
                500, "InternalError", "We encountered an internal error. Please try again."
            )
        if upload_id not in self._uploads:  # replaced while we waited
            return _xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        try:
            size, etag = await self._receive(
                request, up.directory / str(n), corrupt=self._inject_corruption()
            )
        except (ConnectionResetError, asyncio.IncompleteReadError, EofStream):
            self.counters.incr("storage:puts_interrupted")
            return _xml_error(400, "IncompleteBody", "The request body was cut short")
        except FileNotFoundError:  # the upload's directory went away under the PUT
            if self._uploads.get(upload_id) is up:
                raise
            return _xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        if self._uploads.get(upload_id) is not up:  # completed, replaced or expired meanwhile
            with contextlib.suppress(OSError):  # a late part of a dropped upload: no leftovers
                (up.directory / str(n)).unlink()
            with contextlib.suppress(OSError):
                up.directory.rmdir()
            return _xml_error(404, "NoSuchUpload", "The specified upload does not exist")
        up.received[n] = _Part(up.directory / str(n), size, etag)
        self.counters.incr("storage:parts_put")
        return web.Response(status=200, headers={"ETag": etag})

    async def _put_single(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        denied = self._check_signature(
            request, f"/_storage/objects/{token}"
        ) or self._reject_chunked(request)
        if denied is not None:
            return denied
        decoded = _decode_token(token)
        if decoded is None:
            return _xml_error(400, "InvalidRequest", "malformed upload token")
        pid, scope, path, info = decoded
        if request.content_length is not None and request.content_length > MAX_PART_SIZE:
            return _xml_error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        if self._inject_failure():
            await self._drain(request)
            self.counters.incr("storage:parts_failed")
            return _xml_error(
                500, "InternalError", "We encountered an internal error. Please try again."
            )
        file = self.root / "objects" / f"{uuid.uuid4().hex}.blob"
        try:
            size, etag = await self._receive(
                request, file, fresh=True, corrupt=self._inject_corruption()
            )
        except (ConnectionResetError, asyncio.IncompleteReadError, EofStream):
            self.counters.incr("storage:puts_interrupted")
            return _xml_error(400, "IncompleteBody", "The request body was cut short")
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
        return web.Response(status=200, headers={"ETag": etag})

    # ------------------------------------------------------------------ download

    async def _download(self, request: web.Request) -> web.StreamResponse:
        try:
            path = _clean_path(request.match_info["path"], allow_root=False)
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        obj = self._ns(pid, scope).objects.get(path)
        if obj is None:
            if request.method == "HEAD":
                return web.Response(status=404)
            return _json_error(404, 5, f"blob {path!r} not found")
        if self.config.faults.redirect_downloads:
            token = base64.urlsafe_b64encode(
                msgspec.json.encode({"p": pid, "s": scope, "k": path})
            ).decode()
            origin = self.storage_url() if self.storage_url is not None else ""
            location = self._presign(request.method, f"/_storage/blobs/{token.rstrip('=')}", origin)
            self.counters.incr("storage:downloads_redirected")
            return web.Response(status=307, headers={"Location": location})
        return await self._send_object(request, obj)

    async def _presigned_get(self, request: web.Request) -> web.StreamResponse:
        """GET/HEAD of a redirected download's presigned URL: no Lightning auth, a signature."""
        token = request.match_info["token"]
        denied = self._check_signature(request, f"/_storage/blobs/{token}")
        if denied is not None:
            return denied
        decoded = _decode_token(token)
        if decoded is None:
            return _xml_error(400, "InvalidRequest", "malformed object token")
        pid, scope, path, _ = decoded
        ns = self._namespaces.get((pid, scope))
        obj = None if ns is None else ns.objects.get(path)
        if obj is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        self.counters.incr("storage:presigned_gets")
        return await self._send_object(request, obj)

    async def _send_object(self, request: web.Request, obj: StoredObject) -> web.StreamResponse:
        headers = {
            "ETag": obj.etag,
            "Last-Modified": formatdate(obj.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": obj.content_type or "application/octet-stream",
        }
        start, end = 0, obj.size - 1
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            r = _parse_range(range_header, obj.size)
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
                        chunk = os.pread(fd, min(_CHUNK, fsize - pos, length - sent), pos)
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

    # ------------------------------------------------------------------ trees and delete

    async def _tree(self, request: web.Request) -> web.StreamResponse:
        try:
            path = _clean_path(request.match_info["path"], allow_root=True)
            at_most = _int(request.query.get("atMost") or _DEFAULT_AT_MOST, "atMost")
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        at_most = max(1, min(at_most, _MAX_AT_MOST))
        recursive = _bool_param(request.query.get("recursive"))
        cursor = request.query.get("cursor") or ""
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else ""
        except (ValueError, UnicodeDecodeError):
            return _json_error(400, 3, "invalid cursor")
        pid, scope, path = self._scope(request, path)
        ns = self._ns(pid, scope)
        prefix = f"{path}/" if path else ""
        tree: list[dict[str, Any]] = []
        next_cursor = ""
        last_key = ""  # the cursor is the last key consumed; a folder's keys are contiguous
        current: dict[str, Any] | None = None
        for key in ns.under(prefix, after):
            rest = key[len(prefix) :]
            obj = ns.objects[key]
            name, slash, _ = rest.partition("/")
            if (
                not recursive
                and slash
                and current is not None
                and current["type"] == "tree"
                and current["path"] == name
            ):
                current["_mtime"] = max(current["_mtime"], obj.last_modified)
                last_key = key
                continue
            if len(tree) == at_most:
                next_cursor = base64.urlsafe_b64encode(last_key.encode()).decode()
                break
            if recursive or not slash:
                current = self._blob_entry(rest if recursive else name, obj)
            else:
                current = {
                    "path": name,
                    "type": "tree",
                    "size": 0,
                    "clusterId": "",
                    "_mtime": obj.last_modified,
                }
            tree.append(current)
            last_key = key
        for entry in tree:
            mtime = entry.pop("_mtime", None)
            if mtime is not None:
                entry["lastModified"] = _rfc3339(mtime)
        self.counters.incr("storage:tree_pages")
        return web.json_response({"tree": tree, "nextCursor": next_cursor})

    @staticmethod
    def _blob_entry(rel: str, obj: StoredObject) -> dict[str, Any]:
        return {
            "path": rel,
            "type": "blob",
            "size": obj.size,
            "clusterId": obj.cluster_id,
            "lastModified": _rfc3339(obj.last_modified),
        }

    async def _delete_blob(self, request: web.Request) -> web.StreamResponse:
        try:
            path = _clean_path(request.match_info["path"], allow_root=False)
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        obj = self._ns(pid, scope).pop(path)
        if obj is None:
            return _json_error(404, 5, f"blob {path!r} not found")
        await asyncio.to_thread(self._remove_files, obj)
        self.counters.incr("storage:blobs_deleted")
        return web.Response(status=204)

    async def _delete_tree(self, request: web.Request) -> web.StreamResponse:
        try:
            path = _clean_path(request.match_info["path"], allow_root=True)
        except _BadRequest as e:
            return _json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        if not path:
            return _json_error(400, 3, "refusing to delete the root folder")
        ns = self._ns(pid, scope)
        doomed = [ns.pop(k) for k in list(ns.under(path + "/"))]
        if not doomed:
            return _json_error(404, 5, f"folder {path!r} not found")

        def remove_all() -> None:
            for obj in doomed:
                if obj is not None:
                    self._remove_files(obj)

        await asyncio.to_thread(remove_all)
        self.counters.incr("storage:blobs_deleted", len(doomed))
        return web.Response(status=204)


def presigned_path_prefix() -> str:
    """Path prefix of the presigned URLs (no Lightning auth there)."""
    return "/_storage/"


def quote_blob_path(path: str) -> str:
    """Percent-encode a blob path for a URL, keeping ``/``."""
    return quote(path, safe="/")
