"""What the studio and job stores share: items by id and by name, owned by a project,
numbered in creation order (the sequence that cursor pagination keys on).

A list page seeks to its cursor with a binary search over the items in creation order, so a
page costs the same wherever it is in the listing; deleted items leave a hole that is
compacted once holes outnumber the living.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from ._errors import ApiError
from ._paging import decode_token


class _Project(Protocol):
    """A project as a store sees it: just its id."""

    @property
    def id(self) -> str: ...


class _Owned(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def project_id(self) -> str: ...

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Owned)


class ProjectStore(Generic[T]):
    kind = "item"  # in the 404 message, as the service names it

    def __init__(self) -> None:
        self.by_id: dict[str, T] = {}
        self.by_name: dict[tuple[str, str], str] = {}  # (project id, name) -> id
        self._seq = 0
        self._order: list[T] = []  # creation order (ascending seq), with holes
        self._holes = 0

    def new_seq(self) -> int:
        self._seq += 1
        return self._seq

    def get(self, project: _Project, item_id: str) -> T:
        item = self.by_id.get(item_id)
        if item is None or item.project_id != project.id:
            raise ApiError(404, f"{self.kind} {item_id} not found")
        return item

    def add(self, item: T, *, named: bool = True) -> None:
        """Store a new item (its seq from :meth:`new_seq`, so it sorts last); ``named``:
        found by its name (the machines of a multi-machine job are not)."""
        self.by_id[item.id] = item
        if named:
            self.by_name[(item.project_id, item.name)] = item.id
        self._order.append(item)

    def remove(self, item: T) -> None:
        del self.by_id[item.id]
        if self.by_name.get((item.project_id, item.name)) == item.id:
            del self.by_name[(item.project_id, item.name)]
        self._holes += 1
        if self._holes > len(self.by_id):
            self._order = [x for x in self._order if self.by_id.get(x.id) is x]
            self._holes = 0

    def rename(self, item: T, new_name: str) -> None:
        """Move the item's name index entry; the caller sets ``item.name``."""
        self.by_name.pop((item.project_id, item.name), None)
        self.by_name[(item.project_id, new_name)] = item.id

    def after(self, token: str) -> Iterator[T]:
        """The living items created after the cursor ``token`` ("": from the first)."""
        start = bisect_right(self._order, decode_token(token), key=lambda x: x.seq)
        order = self._order
        by_id = self.by_id
        for i in range(start, len(order)):
            item = order[i]
            if by_id.get(item.id) is item:
                yield item
