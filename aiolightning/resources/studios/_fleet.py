"""The fleet helpers of ``client.studios``: create, start, stop and delete many studios."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import anyio
from anyio.abc import TaskGroup

from ..._errors import LightningError
from ...fanout import AsyncOrSyncIterable, Outcome, ProgressCallback, map_outcomes
from ...runs import JournalLike, journaled
from .._bulk import check_bulk, check_bulk_item
from .._polling import Deadline, check_positive_int, check_timeout
from ..machines import Machine, resolve_machine
from ._lifecycle import StudioLifecycle
from ._lookup import LISTED
from ._models import Studio, StudioRef, StudioState, StudioStatus
from ._runs import create_plan, delete_plan, state_plan
from ._status import StatusBoard

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef

T = TypeVar("T")

_NAMES = "studio names (strings)"
_REFS = "studio names or Studio objects"


def _is_name(item: object) -> bool:
    return isinstance(item, str)


def _is_ref(item: object) -> bool:
    return isinstance(item, str | Studio)


class StudioFleet(StudioLifecycle):
    """``client.studios``: the ``*_many`` helpers, one :class:`Outcome` per studio."""

    async def create_many(
        self,
        names: AsyncOrSyncIterable[str],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        cloud_account: str | None = None,
        exist_ok: bool = False,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        journal: JournalLike | None = None,
    ) -> builtins.list[Outcome[str, Studio]]:
        """Create many studios; one :class:`Outcome` per name, in input order. A name that
        exists already fails (``exist_ok=True``: its studio is returned). With ``journal``
        a rerun after a crash creates only what the service does not have yet.

        For 16 names or more, the names already taken are learnt with one walk of the
        teamspace's listing (1000 per page) instead of one lookup per name; then each
        studio is created as by :meth:`create`."""
        check_positive_int(concurrency, "concurrency")
        check_bulk(names, "studios.create_many", _NAMES, _is_name)
        items = await _materialize(names)

        async def create(name: str, ts: TeamspaceRef | Teamspace | None) -> Studio:
            check_bulk_item(name, "studios.create_many", _NAMES, _is_name)
            return await self.create(
                name, teamspace=ts, cloud_account=cloud_account, exist_ok=exist_ok
            )

        if len(items) < 16:  # a few lookups cost less than walking a large listing

            async def few(name: str) -> Studio:
                return await create(name, teamspace)

            async with journaled(journal, create_plan(self, few, teamspace)) as step:
                return await map_outcomes(
                    step, items, concurrency=concurrency, on_progress=on_progress,
                    stop_on_error=stop_on_error,
                )  # fmt: skip
        ts = await self._teamspace(teamspace)
        taken: dict[str, Studio] = {}
        async for cs in self._api.list_cloud_spaces_iter(ts.id, limit=1000):
            if cs.name:
                taken[cs.name] = Studio.from_model(cs, ts.id)

        async def one(name: str) -> Studio:
            return await create(name, ts)

        token = LISTED.set({**(LISTED.get() or {}), ts.id: taken})
        try:
            async with journaled(journal, create_plan(self, one, ts)) as step:
                return await map_outcomes(
                    step, items, concurrency=concurrency, on_progress=on_progress,
                    stop_on_error=stop_on_error,
                )  # fmt: skip
        finally:
            LISTED.reset(token)

    async def _prefetch(
        self, refs: builtins.list[StudioRef], teamspace: TeamspaceRef | Teamspace | None
    ) -> dict[str, StudioState]:
        """Resolve many names with one walk of the teamspace's listing (1000 per page)
        instead of one lookup each; returns the codeStatus seen for each studio asked for
        (by name, id or :class:`Studio`)."""
        states: dict[str, StudioState] = {}
        if len(refs) >= 16:
            await self._walk_listing(await self._to_walk(refs, teamspace), states)
        return states

    async def _to_walk(
        self, refs: builtins.list[StudioRef], teamspace: TeamspaceRef | Teamspace | None
    ) -> _Walk:
        """The names, ids and teamspaces a walk of the listings looks for."""
        names = {r for r in refs if isinstance(r, str)}
        ids = {r.id for r in refs if isinstance(r, Studio)}
        teamspace_ids = {r.teamspace_id for r in refs if isinstance(r, Studio)}
        if names:
            teamspace_ids.add((await self._teamspace(teamspace)).id)
        return _Walk(names, ids, teamspace_ids)

    async def _walk_listing(
        self,
        walk: _Walk,
        states: dict[str, StudioState],
        seen: Callable[[str], None] | None = None,
    ) -> None:
        """Walk the listings: cache each studio named, put the state of each one asked for
        in ``states``, and tell ``seen`` its name or id, page by page."""
        for ts_id in walk.teamspace_ids:
            async for cs in self._api.list_cloud_spaces_iter(ts_id, limit=1000):
                studio = Studio.from_model(cs, ts_id)
                key = studio.name if studio.name in walk.names else studio.id
                if key in walk.names:
                    self._cache((ts_id, key), studio)
                elif studio.id not in walk.ids:
                    continue
                if cs.code_status is not None:
                    states[studio.id] = StudioState.from_model(cs.code_status)
                if seen is not None:
                    seen(key)
                    if studio.id in walk.ids:
                        seen(studio.id)

    async def _many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        teamspace: TeamspaceRef | Teamspace | None,
        action: Callable[[StudioRef, _Fleet], Awaitable[StudioState]],
        *,
        kind: str,
        journal: JournalLike | None,
        concurrency: int,
        on_progress: ProgressCallback | None,
        stop_on_error: bool,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Run ``action`` for every studio at once; ``concurrency`` bounds the studios whose
        requests are in flight (``fleet.slots``), not those waiting on a status board.

        For 16 studios or more, names and states come from one walk of the listing, in the
        background: a studio goes ahead as soon as the walk has passed it (or has ended), so
        the first starts go out with the first page, not after the last."""
        refs = await _materialize(studios)
        fleet = _Fleet(self, asyncio.Semaphore(concurrency))
        walk = await self._to_walk(refs, teamspace) if len(refs) >= 16 else None
        async with anyio.create_task_group() as tg:
            fleet.tg = tg
            if walk is not None:
                fleet.expect(refs)
                tg.start_soon(fleet.walk, walk)
            async with journaled(journal, state_plan(kind, lambda r: action(r, fleet))) as step:
                outs = await map_outcomes(
                    step, refs, concurrency=max(1, len(refs)),
                    on_progress=on_progress, stop_on_error=stop_on_error,
                )  # fmt: skip
            tg.cancel_scope.cancel()
        return outs

    async def start_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        machine: Machine | str | None = None,
        *,
        interruptible: bool | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 900.0,  # noqa: ASYNC109
        concurrency: int = 512,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        create: bool = False,
        journal: JournalLike | None = None,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Start many studios; one :class:`Outcome` per studio, in input order.
        ``create``: as for :meth:`start` (a missing studio named is created first; else its
        outcome is a :class:`StudioNotFoundError`).

        Each studio is started at most once (see :meth:`start`), a failure of one never
        affects the others, and the client's limiter keeps the request rate within what the
        service accepts. For 16 studios or more, names and current states come from one walk
        of the teamspace's listing; the waits share the list calls of a status board per
        teamspace (each listed studio carries its status) rather than polling every studio.
        ``concurrency`` bounds the studios whose start is being sent -- a studio waiting
        to boot holds no slot; ``timeout`` applies to each studio. With ``journal``, a rerun
        after a crash returns the recorded state of the studios done and starts the others
        (each at most once)."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.start_many", _REFS, _is_ref)

        async def one(ref: StudioRef, fleet: _Fleet) -> StudioState:
            check_bulk_item(ref, "studios.start_many", _REFS, _is_ref)
            await fleet.listed(ref)
            async with fleet.slots:
                s = await self._resolve_or_create(ref, teamspace, create)
                deadline = Deadline(timeout)
                instance = await self._ensure_started(
                    s, m, interruptible, None, deadline, known=fleet.known.pop(s.id, None)
                )
            target = StudioStatus.RUNNING if wait else None
            return await fleet.board(s.teamspace_id).wait(s, target, deadline, instance)

        return await self._many(
            studios, teamspace, one, kind="studios.start_many", journal=journal,
            concurrency=concurrency, on_progress=on_progress, stop_on_error=stop_on_error,
        )  # fmt: skip

    async def stop_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 300.0,  # noqa: ASYNC109
        concurrency: int = 512,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        journal: JournalLike | None = None,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Stop many studios; one :class:`Outcome` per studio, in input order. States and
        waits come from shared list calls like in :meth:`start_many`: one stop request per
        running studio, none for a stopped one."""
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.stop_many", _REFS, _is_ref)

        async def one(ref: StudioRef, fleet: _Fleet) -> StudioState:
            check_bulk_item(ref, "studios.stop_many", _REFS, _is_ref)
            await fleet.listed(ref)
            async with fleet.slots:
                s = await self._resolve(ref, teamspace)
                deadline = Deadline(timeout)
                state = fleet.known.pop(s.id, None) or await self._state(s)
                if state.status is StudioStatus.STOPPED and not state.live_instance():
                    return state
                if state.status is not StudioStatus.STOPPING:
                    await self._send_stop(s, deadline)
            target = StudioStatus.STOPPED if wait else None
            return await fleet.board(s.teamspace_id).wait(s, target, deadline)

        return await self._many(
            studios, teamspace, one, kind="studios.stop_many", journal=journal,
            concurrency=concurrency, on_progress=on_progress, stop_on_error=stop_on_error,
        )  # fmt: skip

    async def delete_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = True,
        concurrency: int = 64,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        journal: JournalLike | None = None,
    ) -> builtins.list[Outcome[StudioRef, None]]:
        """Delete many studios; one :class:`Outcome` per studio, in input order. For 16
        studios or more, names are resolved with one walk of the listing; then one DELETE
        per studio."""
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.delete_many", _REFS, _is_ref)
        refs = await _materialize(studios)
        await self._prefetch(refs, teamspace)

        async def one(ref: StudioRef) -> None:
            check_bulk_item(ref, "studios.delete_many", _REFS, _is_ref)
            await self.delete(ref, teamspace=teamspace, missing_ok=missing_ok)

        async with journaled(journal, delete_plan(self, one, teamspace)) as step:
            return await map_outcomes(
                step, refs, concurrency=concurrency, on_progress=on_progress,
                stop_on_error=stop_on_error,
            )  # fmt: skip


class _Walk(NamedTuple):
    names: set[str]
    ids: set[str]
    teamspace_ids: set[str]


class _Fleet:
    """What the items of one ``*_many`` call share: the request slots (an asyncio
    semaphore: a queued item holds a future, where anyio's CapacityLimiter keeps an
    exception and its frames), the states the listing walk read, and one status board per
    teamspace."""

    def __init__(self, owner: StudioFleet, slots: asyncio.Semaphore) -> None:
        self._owner = owner
        self.slots = slots
        self.known: dict[str, StudioState] = {}
        self.tg: TaskGroup | None = None
        self._boards: dict[str, StatusBoard] = {}
        self._passed: dict[str, asyncio.Future[None]] = {}  # name or id -> walk passed it

    def expect(self, refs: builtins.list[StudioRef]) -> None:
        loop = asyncio.get_running_loop()
        for ref in refs:
            key = ref if isinstance(ref, str) else ref.id
            if key not in self._passed:
                self._passed[key] = loop.create_future()

    def _seen(self, key: str) -> None:
        fut = self._passed.get(key)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def walk(self, walk: _Walk) -> None:
        try:
            await self._owner._walk_listing(walk, self.known, self._seen)
        except LightningError:
            pass  # the walk only saves requests: each studio is then looked up alone
        finally:
            for fut in self._passed.values():
                if not fut.done():
                    fut.set_result(None)

    async def listed(self, ref: StudioRef) -> None:
        """Wait until the walk has passed ``ref`` (or ended)."""
        fut = self._passed.get(ref if isinstance(ref, str) else ref.id)
        if fut is not None and not fut.done():
            await asyncio.shield(fut)  # shared by the items naming this studio

    def board(self, teamspace_id: str) -> StatusBoard:
        b = self._boards.get(teamspace_id)
        if b is None:
            assert self.tg is not None
            b = self._boards[teamspace_id] = StatusBoard(self._owner, teamspace_id)
            self.tg.start_soon(b.run)
        return b


async def _materialize(items: AsyncOrSyncIterable[T]) -> builtins.list[T]:
    if isinstance(items, builtins.list):
        return items
    if isinstance(items, AsyncIterable):
        return [x async for x in items]
    return builtins.list(items)
