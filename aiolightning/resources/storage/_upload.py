"""Uploads of one file, of many ``(local, remote)`` pairs, and of a whole local folder."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ...fanout import Outcome, map_outcomes
from ...runs import JournalLike, journaled
from ...transfer import StoragePathError, UploadResult
from ...transfer._progress import ProgressCallback, ProgressTracker
from .._bulk import check_bulk, check_bulk_item
from ._base import PAIRS, LocalPath, StorageBase, is_pair, local_path
from ._runs import upload_plan

if TYPE_CHECKING:
    from ..teamspaces import Teamspace


def _local_file(p: Path) -> Path:
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


class StorageUploads(StorageBase):
    """The part of ``client.storage`` that uploads."""

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
        src = await anyio.to_thread.run_sync(_local_file, local_path(local))
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        if not path or remote.endswith("/"):
            path = f"{path}/{src.name}" if path else src.name
            display = display.rstrip("/") + "/" + src.name
        target = await self._resolve(
            ref, path, display, studio=studio, cluster_id=cluster_id, writing=True
        )
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
        journal: JournalLike | None = None,
    ) -> list[Outcome[tuple[LocalPath, str], UploadResult]]:
        """Upload ``(local, remote)`` pairs; one :class:`Outcome` per pair, in input order. With
        ``journal``, a rerun after a crash skips the files recorded done.
        One failure never stops the others."""
        check_bulk(pairs, "storage.upload_many", PAIRS, is_pair)
        tracker = ProgressTracker(progress)
        engine = self.engine

        async def one(pair: tuple[LocalPath, str]) -> UploadResult:
            check_bulk_item(pair, "storage.upload_many", PAIRS, is_pair)
            local, remote = pair
            src = await anyio.to_thread.run_sync(_local_file, local_path(local))
            ref, path, display = self._parse(remote, teamspace, allow_root=False)
            target = await self._resolve(
                ref, path, display, studio=studio, cluster_id=cluster_id, writing=True
            )
            return await engine.upload_file(src, target, tracker)

        async with engine.presigned.use():
            async with journaled(journal, upload_plan(one)) as step:
                return await map_outcomes(
                    step, pairs, concurrency=concurrency or self._config.max_files_in_flight
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
        root = local_path(local_dir, "local folder")
        files = await anyio.to_thread.run_sync(_walk, root)
        ref, base_path, display = self._parse(remote_dir, teamspace, allow_root=True)
        base = await self._resolve(
            ref, base_path, display, studio=studio, cluster_id=cluster_id, writing=True
        )
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
