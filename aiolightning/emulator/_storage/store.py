"""The ArtifactStore: the storage handler groups joined into one store, and its routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .downloads import BlobDownloads
from .puts import PresignedPuts
from .trees import BlobTrees
from .uploads import BlobUploads

__all__ = ["ArtifactStore"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ArtifactStore(BlobUploads, PresignedPuts, BlobDownloads, BlobTrees):
    """The emulator's artifacts storage: routes, presigned URLs, bytes on disk.

    Each base class is one handler group over the shared `StoreCore` state."""

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
