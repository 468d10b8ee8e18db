"""The ``client.storage`` resource, joined from its upload, download and listing parts."""

from __future__ import annotations

from ._download import StorageDownloads
from ._listing import StorageListing
from ._upload import StorageUploads


class Storage(StorageUploads, StorageDownloads, StorageListing):
    """``client.storage``: upload, download, list, delete and stat remote files."""
