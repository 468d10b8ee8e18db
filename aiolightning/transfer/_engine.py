"""The transfer engine: the upload and download state machines over one shared state.

The rooms: :mod:`._blobs_api` (state, signing, HEAD, retry waits), :mod:`._part_put` (one
part's PUT), :mod:`._upload`, :mod:`._download`, :mod:`._local` (blocking file work),
:mod:`._etags`, :mod:`._pool`.
"""

from __future__ import annotations

from ._download import Downloads
from ._upload import Uploads

__all__ = ["TransferEngine"]


class TransferEngine(Uploads, Downloads):
    """Moves bytes for ``client.storage``. One per client: the byte budget is shared."""
