"""The blocking client: ``Lightning`` over the same async core, run on a loop thread it owns.

Rooms: :mod:`._portal` (the loop thread and the hop), :mod:`._wrap` (the descriptors the
generated wrappers are made of), :mod:`._base` (lifecycle), and the generated
:mod:`._resources` and :mod:`._client` (``tools/syncgen.py``).
"""

from ._client import Lightning
from ._portal import BulkInterrupted
from ._wrap import Pager

__all__ = ["BulkInterrupted", "Lightning", "Pager"]
