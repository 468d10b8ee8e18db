"""How ``storage.upload_many`` / ``download_many`` journal their files.

An upload is keyed by its remote path, a download by its local path. Writing a file again is
harmless (the same bytes land under the same name; a multipart upload in flight resumes from
its own part journal), so a file in flight when the last run ended is simply transferred
again; a file recorded done is not touched.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from ...runs import ItemPlan
from ...transfer import DownloadResult, UploadResult

__all__ = ["download_plan", "upload_plan"]

P = TypeVar("P", bound=tuple[Any, Any])
R = TypeVar("R", UploadResult, DownloadResult)


def _plan(
    kind: str, key: Callable[[P], str], action: Callable[[P], Awaitable[R]], result: type[R]
) -> ItemPlan[P, R]:
    async def send(pair: P, _marker: str) -> R:
        return await action(pair)

    def decode(data: Any) -> R:
        return msgspec.convert(data, result)

    return ItemPlan(kind, key, send, None, decode=decode)


def upload_plan(
    action: Callable[[tuple[Any, str]], Awaitable[UploadResult]],
) -> ItemPlan[tuple[Any, str], UploadResult]:
    return _plan("storage.upload_many", lambda pair: pair[1], action, UploadResult)


def download_plan(
    action: Callable[[tuple[str, Any]], Awaitable[DownloadResult]],
) -> ItemPlan[tuple[str, Any], DownloadResult]:
    return _plan("storage.download_many", lambda pair: os.fspath(pair[1]), action, DownloadResult)
