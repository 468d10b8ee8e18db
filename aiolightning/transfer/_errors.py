"""Errors of the storage layer (each names the file, and the part or range, it is about) and
the engine's internal signals for a failed part and a vanished upload."""

from __future__ import annotations

from typing import Any

import aiohttp

from .._errors import LightningError, NotFoundError

__all__ = [
    "NETWORK_ERRORS",
    "BulkTransferError",
    "IsAFolderError",
    "PartFailed",
    "PartsRefused",
    "RemoteFileNotFoundError",
    "StorageError",
    "StoragePathError",
    "TransferError",
    "UploadGone",
]

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class StorageError(LightningError):
    """A storage operation could not be done (bad input, missing remote file, ...)."""


class StoragePathError(StorageError, ValueError):
    """A local or remote path (or ``lit://`` URL) is unusable; raised before any request."""


class RemoteFileNotFoundError(NotFoundError, StorageError):
    """The remote file (or folder) does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class IsAFolderError(StorageError):
    """The remote path is a folder where a file was expected (e.g. delete without recursive)."""


class TransferError(StorageError):
    """Moving bytes failed: which file, which remote path and, when known, which part."""

    def __init__(
        self,
        message: str,
        *,
        local: str = "",
        remote: str = "",
        part: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        where = []
        if local:
            where.append(f"file {local!r}")
        if remote:
            where.append(f"remote {remote!r}")
        if part is not None:
            where.append(f"part {part}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.local = local
        self.remote = remote
        self.part = part
        self.__cause__ = cause


class BulkTransferError(TransferError):
    """Some files of a bulk transfer failed. ``outcomes`` has one entry per file (value or
    error); ``failures`` only the failed ones. The other files were transferred."""

    def __init__(self, message: str, outcomes: list[Any]) -> None:
        super().__init__(message)
        self.outcomes = outcomes
        self.failures = [o for o in outcomes if not o.ok]


class PartFailed(Exception):
    """One attempt at a part or range failed; ``fatal``: retrying cannot help, ``resign``: its
    presigned URL was refused (a new one may work); ``sent_md5``: the whole body went out and
    the failure (a lost, 5xx or cut-short answer, a timeout waiting for it) leaves open
    whether the store kept it: the MD5 of the bytes sent, when they were hashed."""

    def __init__(
        self,
        message: str,
        *,
        fatal: bool = False,
        resign: bool = False,
        sent_md5: str | None = None,
    ) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.resign = resign
        self.sent_md5 = sent_md5


class UploadGone(Exception):
    """The multipart upload no longer exists on the server (completed or replaced)."""


class PartsRefused(Exception):
    """``complete`` was refused because a listed part is missing or its ETag differs (S3's
    ``InvalidPart``); ``parts``: the part numbers the refusal names (empty: none named).
    Nothing was committed: the upload is still open."""

    def __init__(self, message: str, parts: list[int]) -> None:
        super().__init__(message)
        self.parts = parts
