"""Downloads of one file, of many ``(remote, local)`` pairs, and of a whole remote folder."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import anyio

from ...fanout import Outcome, map_outcomes
from ...runs import JournalLike, journaled
from ...transfer import (
    DownloadResult,
    IsAFolderError,
    RemoteFileNotFoundError,
    StoragePathError,
    clean_remote_path,
)
from ...transfer._progress import ProgressCallback, ProgressTracker
from .._bulk import check_bulk, check_bulk_item
from ._base import PAIRS, LocalPath, is_pair, local_path
from ._listing import FileInfo, StorageListing
from ._runs import download_plan

if TYPE_CHECKING:
    from ..teamspaces import Teamspace


def _safe_local_child(root: Path, rel: str) -> Path:
    """``root/rel`` for a path from a listing, refusing anything that would escape root."""
    clean = clean_remote_path(rel, allow_root=False, what="listed path", mount=False)
    return root.joinpath(*PurePosixPath(clean).parts)


async def _check_parent(dest: Path) -> None:
    """A download creates no folder above its destination (``cp`` does not either)."""
    parent = dest.parent
    if not await anyio.to_thread.run_sync(parent.is_dir):
        raise StoragePathError(
            f"cannot download to {str(dest)!r}: local folder {str(parent)!r} does not exist"
        )


class StorageDownloads(StorageListing):
    """The part of ``client.storage`` that downloads (a folder download lists it first)."""

    async def download(
        self,
        remote: str,
        local: LocalPath,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Download one file. If ``local`` is an existing folder the file keeps its name;
        else its folder must exist (as for ``cp``: no folder is created). A remote folder
        raises :class:`IsAFolderError` (use :meth:`download_dir`)."""
        ref, path, display = self._parse(remote, teamspace, allow_root=False)
        dest = local_path(local)
        if await anyio.to_thread.run_sync(dest.is_dir):
            dest = dest / PurePosixPath(path).name
        else:
            await _check_parent(dest)
        target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        tracker = ProgressTracker(progress)
        async with self.engine.presigned.use():
            try:
                return await self.engine.download_file(target, dest, tracker)
            except RemoteFileNotFoundError:
                async for _ in self._list_target(target, recursive=False, page_size=1):
                    raise IsAFolderError(
                        f"{display!r} is a folder; use download_dir() to download a folder"
                    ) from None
                raise

    async def download_many(
        self,
        pairs: Iterable[tuple[str, LocalPath]] | AsyncIterable[tuple[str, LocalPath]],
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
        journal: JournalLike | None = None,
    ) -> list[Outcome[tuple[str, LocalPath], DownloadResult]]:
        """Download ``(remote, local)`` pairs; one :class:`Outcome` per pair, in input order. With
        ``journal``, a rerun after a crash skips the files recorded done."""
        check_bulk(pairs, "storage.download_many", PAIRS, is_pair)
        tracker = ProgressTracker(progress)
        engine = self.engine

        async def one(pair: tuple[str, LocalPath]) -> DownloadResult:
            check_bulk_item(pair, "storage.download_many", PAIRS, is_pair)
            remote, local = pair
            ref, path, display = self._parse(remote, teamspace, allow_root=False)
            target = await self._resolve(ref, path, display, studio=studio, cluster_id="")
            return await engine.download_file(target, local_path(local), tracker)

        async with engine.presigned.use():
            async with journaled(journal, download_plan(one)) as step:
                return await map_outcomes(
                    step, pairs, concurrency=concurrency or self._config.max_files_in_flight
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
        """Download every file below ``remote_dir`` into ``local_dir``: ``remote_dir/a/b``
        becomes ``local_dir/a/b`` (the rule of ``aws s3 cp --recursive``). ``local_dir`` is
        created if needed, but not its parent (as ``cp -r`` does).

        Raises :class:`BulkTransferError` (with every outcome) if any file failed.
        """
        ref, path, display = self._parse(remote_dir, teamspace, allow_root=True)
        root = local_path(local_dir, "local folder")
        base = await self._resolve(ref, path, display, studio=studio, cluster_id="")
        if await anyio.to_thread.run_sync(root.is_file):
            raise StoragePathError(f"{str(root)!r} is a file; give a folder to download into")
        if not await anyio.to_thread.run_sync(root.is_dir):
            await _check_parent(root)
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
