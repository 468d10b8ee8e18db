"""Type checks of what the bulk helpers (``*_many``) are given, the same for every one.

The argument must be an iterable or async iterable of items (a string, a mapping or a single
item is refused: iterating it would be a surprise); in a list, tuple or other collection
every item is checked at once, before anything is sent; items of a lazy iterable are checked
as they come, and a wrong one fails its own :class:`~aiolightning.fanout.Outcome`. Either
way the error is a :class:`TypeError` naming the method and the expected type.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["check_bulk", "check_bulk_item"]


def check_bulk(items: Any, method: str, expected: str, accept: Callable[[Any], bool]) -> None:
    """Refuse a non-iterable (or a string or mapping) at once, and every wrong item of a
    collection (before any request is sent)."""
    iterable = hasattr(items, "__iter__") or hasattr(items, "__aiter__")
    if not iterable or isinstance(items, str | bytes | Mapping):
        hint = (
            "; wrap a single one in a list" if accept(items) or isinstance(items, Mapping) else ""
        )
        raise TypeError(f"{method}() takes an iterable of {expected}, got {_kind(items)}{hint}")
    if isinstance(items, Collection):
        for index, item in enumerate(items):
            check_bulk_item(item, method, expected, accept, index)


def check_bulk_item(
    item: Any, method: str, expected: str, accept: Callable[[Any], bool], index: int | None = None
) -> None:
    """Refuse one item that is not of the expected type."""
    if not accept(item):
        where = f"item {index}" if index is not None else "an item"
        raise TypeError(f"{method}(): {where} is {_kind(item)}; expected {expected}")


def _kind(value: Any) -> str:
    text = repr(value)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__} ({shown})"
