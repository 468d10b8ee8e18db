"""What commands print on stdout: aligned tables for people, one JSON document for scripts.

Progress and errors go to stderr (see ``_progress`` and ``cli.main``); stdout only ever holds
the result, so ``aiolightning --json studios list | jq`` always sees valid JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import msgspec

__all__ = ["Output", "format_bytes", "format_duration", "to_plain"]


def to_plain(value: Any) -> Any:
    """Structs, enums, dates, bytes… turned into JSON-ready builtins."""
    return msgspec.to_builtins(value, str_keys=True)


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    step = 1024.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < step or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= step
    return f"{n:.1f} TiB"  # pragma: no cover - loop always returns


def format_duration(seconds: float) -> str:
    """0.4 -> '0.40 s', 75 -> '1:15'."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Output:
    """Writes a command's result, as a table or as JSON (``--json``)."""

    def __init__(self, *, json: bool, stream: TextIO | None = None) -> None:
        self.json = json
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def document(self, value: Any) -> None:
        """Print ``value`` as one indented JSON document (only in ``--json`` mode)."""
        data = msgspec.json.encode(to_plain(value))
        self.stream.write(msgspec.json.format(data, indent=2).decode() + "\n")
        self.stream.flush()

    def line(self, text: str = "") -> None:
        """A line for people; suppressed in ``--json`` mode."""
        if not self.json:
            self.stream.write(text + "\n")
            self.stream.flush()

    def result(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        empty: str = "(none)",
        document: Any = None,
    ) -> None:
        """Rows as a table, or (``--json``) ``document`` if given, else the rows themselves."""
        if self.json:
            self.document(rows if document is None else document)
        else:
            self.table(rows, columns, empty=empty)

    def table(
        self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, empty: str = "(none)"
    ) -> None:
        rows = list(rows)
        if not rows:
            self.line(empty)
            return
        cells = [[_cell(row.get(col)) for col in columns] for row in rows]
        header = [col.upper().replace("_", " ") for col in columns]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
        right = [all(_is_number(row.get(col)) for row in rows) for col in columns]

        def fmt(values: Sequence[str]) -> str:
            parts = [
                v.rjust(w) if r else v.ljust(w)
                for v, w, r in zip(values, widths, right, strict=True)
            ]
            return "  ".join(parts).rstrip()

        self.line(fmt(header))
        for r in cells:
            self.line(fmt(r))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
