"""How the studio fleet helpers journal their studios: keyed by name, reconciled by lookup.

Start and stop check the studio's status before they send anything, so after a crash an item
in flight is simply done again (a studio already starting is not started twice). A create in
flight is looked up by name first; a delete in flight whose studio is gone counts as done.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ..._errors import NotFoundError
from ...runs import ItemPlan, Seen
from ._models import Studio, StudioRef, StudioState

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef
    from ._lifecycle import StudioLifecycle

__all__ = ["create_plan", "delete_plan", "state_plan"]

R = TypeVar("R")


def _key(ref: StudioRef) -> str:
    return ref.name if isinstance(ref, Studio) else ref


# a Studio's fields as recorded, without its raw model (a Studio from the journal has raw=None)
_FIELDS = tuple(f.name for f in dataclasses.fields(Studio) if f.name != "raw")


def _encode_studio(s: Studio) -> Any:
    return [getattr(s, name) for name in _FIELDS]


def _decode_studio(data: Any) -> Studio:
    return Studio(**dict(zip(_FIELDS, data, strict=True)))


def _decode_state(data: Any) -> StudioState:
    return msgspec.convert(data, StudioState)


def state_plan(
    kind: str, action: Callable[[StudioRef], Awaitable[StudioState]]
) -> ItemPlan[StudioRef, StudioState]:
    """``studios.start_many`` / ``stop_many``: the action itself is idempotent."""

    async def send(ref: StudioRef, _marker: str) -> StudioState:
        return await action(ref)

    return ItemPlan(kind, _key, send, None, decode=_decode_state)


def create_plan(
    studios: StudioLifecycle, create: Callable[[str], Awaitable[Studio]],
    teamspace: TeamspaceRef | Teamspace | None,
) -> ItemPlan[str, Studio]:  # fmt: skip
    """``studios.create_many``: a create in flight is looked up by name before it is sent."""

    async def send(name: str, _marker: str) -> Studio:
        return await create(name)

    async def reconcile(name: str, _marker: str) -> Seen[Studio] | None:
        ts = await studios._teamspace(teamspace)
        found = await studios._find_by_name(ts.id, name)
        if found is None:
            return None
        await studios._register_run(found, check_first=True)  # its create may have died first
        return Seen(found)

    return ItemPlan(
        "studios.create_many", _key, send, reconcile, encode=_encode_studio, decode=_decode_studio
    )


def delete_plan(
    studios: StudioLifecycle, delete: Callable[[StudioRef], Awaitable[None]],
    teamspace: TeamspaceRef | Teamspace | None,
) -> ItemPlan[StudioRef, None]:  # fmt: skip
    """``studios.delete_many``: a delete in flight whose studio is gone is done."""

    async def send(ref: StudioRef, _marker: str) -> None:
        await delete(ref)

    async def reconcile(ref: StudioRef, _marker: str) -> Seen[None] | None:
        try:
            await studios._resolve(_key(ref), teamspace)
        except NotFoundError:
            return Seen(None)
        return None

    return ItemPlan("studios.delete_many", _key, send, reconcile)
