"""Progress reporting for transfers: bytes and files, done and total."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "TransferProgress"]


@dataclass
class TransferProgress:
    """Counts a progress bar can use. One instance is shared by a whole (bulk) operation
    and handed to the callback after every change; read it, don't keep mutating it."""

    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    files_failed: int = 0
    current: str = ""  # the file that last made progress

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


ProgressCallback = Callable[[TransferProgress], object]


class ProgressTracker:
    """Internal: updates a TransferProgress and calls the user's callback."""

    __slots__ = ("callback", "state")

    def __init__(self, callback: ProgressCallback | None, *, files: int = 0, total: int = 0):
        self.state = TransferProgress(bytes_total=total, files_total=files)
        self.callback = callback

    def add_total(self, nbytes: int, files: int = 1) -> None:
        self.state.bytes_total += nbytes
        self.state.files_total += files
        self._emit()

    def advance(self, nbytes: int, name: str = "") -> None:
        if nbytes:
            self.state.bytes_done += nbytes
            self.state.current = name
            self._emit()

    def rewind(self, nbytes: int) -> None:
        """Bytes counted for an attempt that failed and will be sent again."""
        if nbytes:
            self.state.bytes_done -= nbytes
            self._emit()

    def file_done(self, name: str = "", *, failed: bool = False) -> None:
        if failed:
            self.state.files_failed += 1
        else:
            self.state.files_done += 1
        self.state.current = name
        self._emit()

    def _emit(self) -> None:
        if self.callback is not None:
            self.callback(self.state)
