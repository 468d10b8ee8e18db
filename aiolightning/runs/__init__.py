"""Run journals: bulk calls that survive a crash (``journal="fleet.db"`` on every ``*_many``).

See :class:`Journal`; the CLI's ``aiolightning runs list|show|prune`` reads the same files.
"""

from __future__ import annotations

from ._errors import JournalBusyError, JournalCorruptError, JournalError
from ._journal import ItemInfo, Journal, JournalLike, RunInfo
from ._run import ItemPlan, Seen, journaled

__all__ = [
    "ItemInfo",
    "ItemPlan",
    "Journal",
    "JournalBusyError",
    "JournalCorruptError",
    "JournalError",
    "JournalLike",
    "RunInfo",
    "Seen",
    "journaled",
]
