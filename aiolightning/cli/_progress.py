"""Progress bars on stderr, for long work: bytes/s and ETA for transfers, done/failed counts
for fan-outs.

Bars draw only when stderr is a terminal (and ``--no-progress`` was not given); otherwise
every call is a cheap no-op, so scripts and CI logs see nothing. A bar redraws at most ten
times a second, from whoever advances it and from a small ticker task (so the rate and ETA
keep moving while nothing completes).

    async with Progress("upload", total=size, unit="bytes", enabled=on) as bar:
        bar.advance(n)                      # or bar.update(done=..) for absolute values

``with Progress(...) as bar:`` works from synchronous code too (without the ticker).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from types import TracebackType
from typing import Literal, TextIO

from ._output import format_bytes

__all__ = ["Progress", "progress_enabled"]

_REDRAW_EVERY = 0.1


def progress_enabled(stream: TextIO | None = None, *, requested: bool = True) -> bool:
    """True when bars should be drawn: requested, and the stream is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    if not requested:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """One progress bar. ``unit="bytes"`` shows MB/s and ETA, ``"items"`` done/failed counts."""

    def __init__(
        self,
        label: str,
        total: float | None = None,
        *,
        unit: Literal["bytes", "items"] = "items",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done: float = 0
        self.failed = 0
        self.enabled = enabled
        self._stream = stream
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    # -- updates -----------------------------------------------------------------------

    def advance(self, n: float = 1, *, failed: bool = False) -> None:
        """Count ``n`` more units done (``failed=True``: one more item failed)."""
        self.done += n
        if failed:
            self.failed += 1
        self._maybe_draw()

    def update(
        self, *, done: float | None = None, failed: int | None = None, total: float | None = None
    ) -> None:
        """Set absolute values (for engines and fan-outs that report running totals)."""
        if done is not None:
            self.done = done
        if failed is not None:
            self.failed = failed
        if total is not None:
            self.total = total
        self._maybe_draw()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
            self._draw()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.close(keep=exc_type is None)

    def __enter__(self) -> Progress:
        """From sync code (``aiolightning.Lightning``): no ticker; it redraws on updates."""
        self._started = time.monotonic()
        if self.enabled:
            self._draw()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(keep=exc_type is None)

    def close(self, *, keep: bool = True) -> None:
        """Draw the final state and end the line (``keep=False`` erases the bar instead)."""
        if self._closed or not self.enabled:
            self._closed = True
            return
        try:
            if keep:
                self._draw()
                self.stream.write("\n")
            else:
                self.stream.write("\r\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self._closed = True

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._draw()

    # -- drawing -----------------------------------------------------------------------

    def _maybe_draw(self) -> None:
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        if now - self._last_draw >= _REDRAW_EVERY:
            self._draw(now)

    def render(self, width: int = 100, now: float | None = None) -> str:
        """The text of the bar (no control characters), fitted to ``width`` columns."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed
        if self.unit == "bytes":
            amount = format_bytes(self.done)
            if self.total:
                amount += f" / {format_bytes(self.total)}"
            speed = f"{rate / 1e6:.1f} MB/s"
        else:
            amount = f"{int(self.done)}"
            if self.total is not None:
                amount += f"/{int(self.total)}"
            amount += " done"
            if self.failed:
                amount += f", {self.failed} failed"
            speed = f"{rate:.1f}/s"
        if self.total and self.done < self.total and rate > 0:
            tail = f"ETA {_clock((self.total - self.done) / rate)}"
        else:
            tail = _clock(elapsed)
        info = f" {amount}  {speed}  {tail}"
        head = f"{self.label} "
        room = width - len(head) - len(info) - 3
        if self.total and room >= 10:
            room = min(room, 40)
            frac = min(max(self.done / self.total, 0.0), 1.0)
            filled = int(frac * room)
            bar = "[" + "#" * filled + "." * (room - filled) + "]"
            return (head + bar + info)[:width]
        return (head + info.lstrip())[:width]

    def _draw(self, now: float | None = None) -> None:
        if not self.enabled or self._closed:
            return
        now = time.monotonic() if now is None else now
        self._last_draw = now
        width = shutil.get_terminal_size((100, 24)).columns - 1
        try:
            self.stream.write("\r\x1b[K" + self.render(width, now))
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away; stop drawing
            self.enabled = False
