"""The operations of the spec that the emulator does not emulate: they answer 501.

Read from the generated `aiolightning.api._operations.OPERATIONS` table (never from the
spec JSON, which is not shipped in the wheel).
"""

from __future__ import annotations

from typing import Any

__all__ = ["spec_operations"]


def spec_operations() -> list[tuple[str, str, str]]:
    """[(METHOD, path template, operation id)] of every operation in the spec."""
    try:
        from aiolightning.api._operations import OPERATIONS
    except ImportError:
        return []
    out: list[tuple[str, str, str]] = []
    for op in OPERATIONS:
        o: Any = op
        out.append((str(o.method).upper(), str(o.path), str(o.operation_id)))
    return out
