"""The journal's errors: a file that is not a journal, a run held by another process."""

from __future__ import annotations

from .._errors import LightningError

__all__ = ["JournalBusyError", "JournalCorruptError", "JournalError"]


class JournalError(LightningError):
    """A run journal cannot be used as asked (wrong run kind, bad argument, lost lease)."""


class JournalCorruptError(JournalError):
    """The file is damaged, or is not an aiolightning journal: nothing was overwritten."""


class JournalBusyError(JournalError):
    """Another live process holds the run (its lease is fresh); nothing was sent."""
