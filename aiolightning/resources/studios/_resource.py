"""The ``client.studios`` resource: :class:`Studios`, assembled from the other rooms' mixins."""

from __future__ import annotations

from ._commands import StudioCommands
from ._fleet import StudioFleet


class Studios(StudioFleet, StudioCommands):
    """``client.studios``."""
