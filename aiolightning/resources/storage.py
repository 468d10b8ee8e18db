"""``client.storage``: files in a teamspace drive or a studio, moved in bulk.

Remote files are named by a path in the drive (``"data/train.bin"``, with ``teamspace=``
or the client's default teamspace), a ``lit://<owner>/<teamspace>/<path>`` URL, or
``lit:///<path>`` for the default teamspace. ``studios/<name>/...`` in a drive path is that
studio's files; ``studio=`` addresses a studio's own file API directly.

Bytes go through :mod:`aiolightning.transfer` (multipart uploads with resume, ranged
downloads, a client-wide byte budget); the artifacts control calls (not in the OpenAPI spec,
wire-flows §6) go through the client's transport.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import NotFoundError
from ..fanout import Outcome, map_outcomes
from ..transfer import (
    BulkTransferError,
    DownloadResult,
    IsAFolderError,
    RemoteFileNotFoundError,
    RemoteTarget,
    StoragePathError,
    TransferConfig,
    TransferEngine,
    UploadResult,
    clean_remote_path,
    is_lit_url,
    parse_lit_url,
)
from ..transfer._paths import quote_remote_path
from ..transfer._progress import ProgressCallback, ProgressTracker

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from .teamspaces import Teamspace

__all__ = ["FileInfo", "Storage"]

LocalPath = str | os.PathLike[str]


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


def _local_file(path: LocalPath) -> Path:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise StoragePathError(f"local file {str(p)!r} does not exist") from None
    if stat_mod.S_ISDIR(st.st_mode):
        raise StoragePathError(f"{str(p)!r} is a directory; use upload_dir() to upload a folder")
    if not stat_mod.S_ISREG(st.st_mode):
        raise StoragePathError(f"{str(p)!r} is not a regular file")
    return p


def _walk(root: Path) -> list[tuple[Path, str, int]]:
    """(file, posix path relative to root, size) of every regular file below root, sorted."""
    if not root.exists():
        raise StoragePathError(f"local folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise StoragePathError(f"{str(root)!r} is not a directory; use upload() for a file")
    out: list[tuple[Path, str, int]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue
            if stat_mod.S_ISREG(st.st_mode):
                out.append((full, full.relative_to(root).as_posix(), st.st_size))
    out.sort(key=lambda t: t[1])
    return out


def _safe_local_child(root: Path, rel: str) -> Path:
    """``root/rel`` for a path from a listing, refusing anything that would escape root."""
    clean = clean_remote_path(rel, allow_root=False, what="listed path")
    return root.joinpath(*PurePosixPath(clean).parts)


class Storage:
    """``client.storage``: upload, download, list, delete and stat remote files."""

    def __init__(self, client: AsyncLightning, config: TransferConfig | None = None) -> None:
        self._client = client
        self._config = config or TransferConfig()
        self._engine: TransferEngine | None = None
        self._clusters: dict[str, str] = {}

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> TransferConfig:
        return self._config

    def configure(self, config: TransferConfig | None = None, **changes: Any) -> None:
        """Replace the transfer knobs (``client.storage.configure(part_size=64 * 2**20)``)."""
        new = (
            (config or self._config).with_options(**changes)
            if changes
            else (config or self._config)
        )
        self._config = new
        if self._engine is not None:
            self._engine.config = new
            if self._engine.budget.capacity != new.byte_budget and self._engine.budget.in_use == 0:
                self._engine.budget.capacity = new.byte_budget

    @property
    def engine(self) -> TransferEngine:
        if self._engine is None:
            self._engine = TransferEngine(self._client.transport, self._config)
        return self._engine

    # ------------------------------------------------------------------ addressing

    def _parse(
        self, remote: str, teamspace: str | Teamspace | None, *, allow_root: bool
    ) -> tuple[str | Teamspace | None, str, str]:
        """(teamspace reference, cleaned path, display) -- no request made."""
        if not isinstance(remote, str):
            raise StoragePathError(f"remote path must be a string, got {type(remote).__name__}")
        if is_lit_url(remote):
            lit = parse_lit_url(remote)
            path = lit.path
            if not allow_root and not path:
                raise StoragePathError(f"{remote!r} names the drive root; a file path is needed")
            if lit.owner is not None:
                return (
                    f"{lit.owner}/{lit.teamspace}",
                    path,
                    f"lit://{lit.owner}/{lit.teamspace}/{path}",
                )
            return teamspace, path, f"lit:///{path}"
        path = clean_remote_path(remote, allow_root=allow_root)
        return teamspace, path, path

    async def _resolve(
        self,
        ref: str | Teamspace | None,
        path: str,
        display: str,
        *,
        studio: str | None,
        cluster_id: str | None,
    ) -> RemoteTarget:
        ts = await self._client.teamspaces.resolve(ref)
        if studio is not None:
            st = await self._client.studios.get(studio, teamspace=ts)
            base = f"/v1/projects/{ts.id}/artifacts/cloudspaces/{st.id}"
            return RemoteTarget(base, path, st.cluster_id or "", display, studio=True)
        cluster = cluster_id or await self._cluster_for(ts)
        return RemoteTarget(f"/v1/projects/{ts.id}/artifacts", path, cluster, display)

    async def _cluster_for(self, ts: Teamspace) -> str:
        cached = self._clusters.get(ts.id)
        if cached is not None:
            return cached
        cluster = ts.default_cluster
        if not cluster:
            resp = await self._client.api.projects.list_project_cluster_bindings(project_id=ts.id)
            bindings = [b.cluster_id for b in resp.clusters or [] if b.cluster_id]
            cluster = bindings[0] if bindings else ""
        self._clusters[ts.id] = cluster
        return cluster

    async def target(
        self,
        remote: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        cluster_id: str | None = None,
    ) -> RemoteTarget:
        """The resolved :class:`RemoteTarget` of a remote path or ``lit://`` URL."""
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        return await self._resolve(ref, path, display, studio=studio, cluster_id=cluster_id)

    # ------------------------------------------------------------------ uploads

    async def upload(
        self,
        local: LocalPath,
        remote: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        cluster_id: str | None = None,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Upload one file. A remote ending in ``/`` (or the root) is a folder: the file keeps
        its name in it."""
        src = await anyio.to_thread.run_sync(_local_file, local)
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        if not path or remote.endswith("/"):
            path = f"{path}/{src.name}" if path else src.name
            display = display.rstrip("/") + "/" + src.name
        target = await self._resolve(ref, path, display, studio=studio, cluster_id=cluster_id)
        tracker = ProgressTracker(progress)
        return await self.engine.upload_file(src, target, tracker, content_type=content_type)

    async def upload_many(
        self,
        pairs: Iterable[tuple[LocalPath, str]] | AsyncIterable[tuple[LocalPath, str]],
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        cluster_id: str | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> list[Outcome[tuple[LocalPath, str], UploadResult]]:
        """Upload ``(local, remote)`` pairs; one :class:`Outcome` per pair, in input order.
        One failure never stops the others."""
        tracker = ProgressTracker(progress)
        engine = self.engine

        async def one(pair: tuple[LocalPath, str]) -> UploadResult:
            local, remote = pair
            src = await anyio.to_thread.run_sync(_local_file, local)
            ref, path, display = self._parse(remote, teamspace, allow_root=False)
            target = await self._resolve(ref, path, display, studio=studio, cluster_id=cluster_id)
            return await engine.upload_file(src, target, tracker)

        async with engine.presigned.use():
            return await map_outcomes(
                one, pairs, concurrency=concurrency or self._config.max_files_in_flight
            )

    async def upload_dir(
        self,
        local_dir: LocalPath,
        remote_dir: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        cluster_id: str | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> list[UploadResult]:
        """Upload every file below ``local_dir`` to ``remote_dir``, keeping relative paths.

        Raises :class:`BulkTransferError` (with every outcome) if any file failed; the
        others are uploaded all the same.
        """
        root = Path(local_dir)
        files = await anyio.to_thread.run_sync(_walk, root)
        ref, base_path, display = self._parse(remote_dir, teamspace, allow_root=True)
        base = await self._resolve(ref, base_path, display, studio=studio, cluster_id=cluster_id)
        tracker = ProgressTracker(progress, files=len(files), total=sum(s for _, _, s in files))
        engine = self.engine
        prefix = display.rstrip("/")

        async def one(item: tuple[Path, str, int]) -> UploadResult:
            src, rel, _size = item
            target = base.child(rel, f"{prefix}/{rel}")
            return await engine.upload_file(src, target, tracker, count_total=False)

        async with engine.presigned.use():
            outcomes = await map_outcomes(
                one, files, concurrency=concurrency or self._config.max_files_in_flight
            )
        return self._all_or_raise(outcomes, "upload")

    @staticmethod
    def _all_or_raise(outcomes: list[Outcome[Any, Any]], verb: str) -> list[Any]:
        failed = [o for o in outcomes if not o.ok]
        if failed:
            first = failed[0].error
            raise BulkTransferError(
                f"{len(failed)} of {len(outcomes)} files failed to {verb}; first: {first}",
                outcomes,
            )
        return [o.value for o in outcomes]

    # ------------------------------------------------------------------ downloads

    async def download(
        self,
        remote: str,
        local: LocalPath,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Download one file. If ``local`` is an existing folder the file keeps its name."""
        ref, path, display = self._parse(remote, teamspace, allow_root=False)
        dest = Path(local)
        if await anyio.to_thread.run_sync(dest.is_dir):
            dest = dest / PurePosixPath(path).name
        target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        tracker = ProgressTracker(progress)
        async with self.engine.presigned.use():
            return await self.engine.download_file(target, dest, tracker)

    async def download_many(
        self,
        pairs: Iterable[tuple[str, LocalPath]] | AsyncIterable[tuple[str, LocalPath]],
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> list[Outcome[tuple[str, LocalPath], DownloadResult]]:
        """Download ``(remote, local)`` pairs; one :class:`Outcome` per pair, in input order."""
        tracker = ProgressTracker(progress)
        engine = self.engine

        async def one(pair: tuple[str, LocalPath]) -> DownloadResult:
            remote, local = pair
            ref, path, display = self._parse(remote, teamspace, allow_root=False)
            target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
            return await engine.download_file(target, Path(local), tracker)

        async with engine.presigned.use():
            return await map_outcomes(
                one, pairs, concurrency=concurrency or self._config.max_files_in_flight
            )

    async def download_dir(
        self,
        remote_dir: str,
        local_dir: LocalPath,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> list[DownloadResult]:
        """Download every file below ``remote_dir`` into ``local_dir`` (created if needed).

        Raises :class:`BulkTransferError` (with every outcome) if any file failed.
        """
        ref, path, display = self._parse(remote_dir, teamspace, allow_root=True)
        base = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        root = Path(local_dir)
        if await anyio.to_thread.run_sync(root.is_file):
            raise StoragePathError(f"{str(root)!r} is a file; give a folder to download into")
        entries = [e async for e in self._list_target(base, recursive=True) if not e.is_dir]
        items = [(e, _safe_local_child(root, e.path)) for e in entries]
        tracker = ProgressTracker(
            progress, files=len(items), total=sum(e.size or 0 for e in entries)
        )
        engine = self.engine
        prefix = display.rstrip("/")

        async def one(item: tuple[FileInfo, Path]) -> DownloadResult:
            entry, dest = item
            target = base.child(entry.path, f"{prefix}/{entry.path}")
            return await engine.download_file(
                target, dest, tracker, size=entry.size, count_total=False
            )

        async with engine.presigned.use():
            outcomes = await map_outcomes(
                one, items, concurrency=concurrency or self._config.max_files_in_flight
            )
        return self._all_or_raise(outcomes, "download")

    # ------------------------------------------------------------------ listing, stat, delete

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
        try:
            await self._client.transport.request(
                "DELETE", url, scope="write", route=f"{target.route}/{kind}/{{path}}"
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
