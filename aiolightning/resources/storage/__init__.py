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

from ._listing import FileInfo
from ._storage import Storage

__all__ = ["FileInfo", "Storage"]
