"""Errors of the storage layer. Each names the file (and the part or range) it is about."""

from __future__ import annotations

from typing import Any

from .._errors import LightningError

__all__ = ["BulkTransferError", "StorageError", "StoragePathError", "TransferError"]


class StorageError(LightningError):
    """A storage operation could not be done (bad input, missing remote file, ...)."""


class StoragePathError(StorageError, ValueError):
    """A local or remote path (or ``lit://`` URL) is unusable; raised before any request."""


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
