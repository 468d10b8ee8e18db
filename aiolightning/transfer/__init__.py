"""The storage transfer engine: multipart uploads, ranged downloads, resume journal.

Most users go through ``client.storage``; this package holds the machinery and its knobs.
"""

from ._budget import ByteBudget
from ._config import MAX_PART_SIZE, MAX_PARTS, TransferConfig, plan_parts
from ._download import DownloadResult
from ._engine import TransferEngine
from ._errors import (
    BulkTransferError,
    IsAFolderError,
    RemoteFileNotFoundError,
    StorageError,
    StoragePathError,
    TransferError,
)
from ._paths import LitUrl, clean_remote_path, is_lit_url, parse_lit_url
from ._progress import ProgressCallback, TransferProgress
from ._target import RemoteTarget
from ._upload import UploadResult

__all__ = [
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "BulkTransferError",
    "ByteBudget",
    "DownloadResult",
    "IsAFolderError",
    "LitUrl",
    "ProgressCallback",
    "RemoteFileNotFoundError",
    "RemoteTarget",
    "StorageError",
    "StoragePathError",
    "TransferConfig",
    "TransferEngine",
    "TransferError",
    "TransferProgress",
    "UploadResult",
    "clean_remote_path",
    "is_lit_url",
    "parse_lit_url",
    "plan_parts",
]
