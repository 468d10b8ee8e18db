"""Remote listings: the :class:`FileInfo` record, and listing, stat, exists and delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._errors import NotFoundError
from ...transfer import IsAFolderError, RemoteFileNotFoundError, RemoteTarget
from ...transfer._paths import quote_remote_path
from .._reconcile import delete_once, no_ambiguous_resend
from ._base import StorageBase

if TYPE_CHECKING:
    from ..teamspaces import Teamspace


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A remote file or folder. ``path`` is relative to the listed folder (``list``) or the
    full path (``stat``)."""

    path: str
    is_dir: bool
    size: int | None = None  # None for folders
    last_modified: datetime | None = None
    cluster_id: str = ""
    etag: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class StorageListing(StorageBase):
    """The part of ``client.storage`` that lists, stats and deletes remote files."""

    async def list(
        self,
        remote: str = "",
        *,
        recursive: bool = False,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[FileInfo]:
        """``async for info in client.storage.list("data", recursive=True)``: the files (and,
        when not recursive, folders) under a remote folder, following the cursor."""
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        async for info in self._list_target(target, recursive=recursive, page_size=page_size):
            yield info

    async def _list_target(
        self, target: RemoteTarget, *, recursive: bool, page_size: int = 1000
    ) -> AsyncIterator[FileInfo]:
        url = f"{target.base}/trees/{quote_remote_path(target.path)}"
        cursor = ""
        while True:
            params: dict[str, Any] = {"recursive": recursive, "atMost": page_size}
            if cursor:
                params["cursor"] = cursor
            page = await self._client.transport.request(
                "GET", url, params=params, scope="read", route=f"{target.route}/trees/{{path}}"
            )
            for item in page.get("tree") or []:
                is_dir = item.get("type") != "blob"
                yield FileInfo(
                    path=str(item.get("path") or ""),
                    is_dir=is_dir,
                    size=None if is_dir else int(item.get("size") or 0),
                    last_modified=_parse_time(item.get("lastModified")),
                    cluster_id=str(item.get("clusterId") or ""),
                )
            cursor = str(page.get("nextCursor") or "")
            if not cursor:
                return

    async def stat(
        self,
        remote: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
    ) -> FileInfo:
        """A remote file's size and ETag, or ``is_dir=True`` for a (non-empty) folder.
        Raises :class:`RemoteFileNotFoundError` when neither exists."""
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        if not path:
            return FileInfo(path="", is_dir=True)
        info = await self.engine.head(target)
        if info is not None:
            return FileInfo(path=path, is_dir=False, size=info[0], etag=info[1])
        async for _ in self._list_target(target, recursive=False, page_size=1):
            return FileInfo(path=path, is_dir=True)
        raise RemoteFileNotFoundError(f"remote path {display!r} does not exist")

    async def exists(
        self,
        remote: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
    ) -> bool:
        try:
            await self.stat(remote, teamspace=teamspace, studio=studio)
        except RemoteFileNotFoundError:
            return False
        return True

    async def delete(
        self,
        remote: str,
        *,
        recursive: bool = False,
        missing_ok: bool = False,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
    ) -> None:
        """Delete a file, or a folder and everything below it with ``recursive=True``.
        The drive root is never deleted."""
        ref, path, display = self._parse(remote, teamspace, allow_root=False)
        target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        kind = "trees" if recursive else "blobs"
        url = f"{target.base}/{kind}/{quote_remote_path(path)}"
        transport = self._client.transport
        policy = no_ambiguous_resend(transport.retry)
        route = f"{target.route}/{kind}/{{path}}"
        try:
            # a 404 to a DELETE re-sent after an ambiguous failure: the first one deleted it
            await delete_once(
                lambda: transport.request("DELETE", url, scope="write", route=route, retry=policy)
            )
        except NotFoundError:
            if not recursive:
                # not a file: a folder needs recursive=True
                async for _ in self._list_target(target, recursive=False, page_size=1):
                    raise IsAFolderError(
                        f"{display!r} is a folder; pass recursive=True to delete it"
                    ) from None
            if missing_ok:
                return
            raise RemoteFileNotFoundError(f"remote path {display!r} does not exist") from None
