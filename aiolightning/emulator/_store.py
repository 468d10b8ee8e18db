"""What the studio and job stores share: items by id, owned by a project, numbered in
creation order (the sequence that cursor pagination keys on)."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from ._errors import ApiError


class _Project(Protocol):
    """A project as a store sees it: just its id."""

    @property
    def id(self) -> str: ...


class _Owned(Protocol):
    @property
    def project_id(self) -> str: ...


T = TypeVar("T", bound=_Owned)


class ProjectStore(Generic[T]):
    kind = "item"  # in the 404 message, as the service names it

    def __init__(self) -> None:
        self.by_id: dict[str, T] = {}
        self._seq = 0

    def new_seq(self) -> int:
        self._seq += 1
        return self._seq

    def get(self, project: _Project, item_id: str) -> T:
        item = self.by_id.get(item_id)
        if item is None or item.project_id != project.id:
            raise ApiError(404, f"{self.kind} {item_id} not found")
        return item
