"""The fleet helpers of ``client.studios``: create, start, stop and delete many studios."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

import anyio

from ...fanout import AsyncOrSyncIterable, Outcome, ProgressCallback, map_outcomes
from ...runs import JournalLike, journaled
from .._bulk import check_bulk, check_bulk_item
from .._polling import Deadline, check_positive_int, check_timeout
from ..machines import Machine, resolve_machine
from ._lifecycle import StudioLifecycle
from ._models import Studio, StudioRef, StudioState, StudioStatus
from ._runs import create_plan, delete_plan, state_plan
from ._status import StatusBoard

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef

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
        a rerun after a crash creates only what the service does not have yet."""
        check_positive_int(concurrency, "concurrency")
        check_bulk(names, "studios.create_many", _NAMES, _is_name)

        async def one(name: str) -> Studio:
            check_bulk_item(name, "studios.create_many", _NAMES, _is_name)
            return await self.create(
                name, teamspace=teamspace, cloud_account=cloud_account, exist_ok=exist_ok
            )

        async with journaled(journal, create_plan(self, one, teamspace)) as step:
            return await map_outcomes(
                step, names, concurrency=concurrency, on_progress=on_progress,
                stop_on_error=stop_on_error,
            )  # fmt: skip

    async def _prefetch(
        self, refs: builtins.list[StudioRef], teamspace: TeamspaceRef | Teamspace | None
    ) -> dict[str, StudioState]:
        """Resolve many names with one walk of the teamspace's listing (1000 per page)
        instead of one lookup each; returns the codeStatus seen for each studio."""
        names = {r for r in refs if isinstance(r, str)}
        if len(names) < 16:
            return {}
        ts = await self._teamspace(teamspace)
        states: dict[str, StudioState] = {}
        async for cs in self._api.list_cloud_spaces_iter(ts.id, limit=1000):
            studio = Studio.from_model(cs, ts.id)
            if studio.name in names or studio.id in names:
                key = studio.name if studio.name in names else studio.id
                self._by_name[(ts.id, key)] = studio
                if cs.code_status is not None:
                    states[studio.id] = StudioState.from_model(cs.code_status)
        return states

    async def _many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        action: Callable[[StudioRef, Callable[[str], StatusBoard]], Awaitable[StudioState]],
        *,
        kind: str,
        journal: JournalLike | None,
        concurrency: int,
        on_progress: ProgressCallback | None,
        stop_on_error: bool,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        boards: dict[str, StatusBoard] = {}
        async with anyio.create_task_group() as tg:

            def board(teamspace_id: str) -> StatusBoard:
                b = boards.get(teamspace_id)
                if b is None:
                    b = boards[teamspace_id] = StatusBoard(self, teamspace_id)
                    tg.start_soon(b.run)
                return b

            async with journaled(journal, state_plan(kind, lambda r: action(r, board))) as step:
                outs = await map_outcomes(
                    step, studios, concurrency=concurrency, on_progress=on_progress,
                    stop_on_error=stop_on_error,
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
        journal: JournalLike | None = None,
        create: bool = False,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Start many studios; one :class:`Outcome` per studio, in input order.
        ``create``: as for :meth:`start` (a missing studio named is created first; else its
        outcome is a :class:`StudioNotFoundError`).

        Each studio is started at most once (see :meth:`start`), a failure of one never
        affects the others, and the client's limiter keeps the request rate within what the
        service accepts. Names are resolved with one walk of the teamspace's listing, and the
        waits share paged list calls (each listed studio carries its status) rather than
        polling every studio. ``concurrency`` bounds the studios in progress; ``timeout``
        applies to each studio. With ``journal``, a rerun after a crash returns the
        recorded state of the studios done and starts the others (each at most once)."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.start_many", _REFS, _is_ref)
        known: dict[str, StudioState] = {}
        if isinstance(studios, Collection) and not isinstance(studios, str):
            known = await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef, board: Callable[[str], StatusBoard]) -> StudioState:
            check_bulk_item(ref, "studios.start_many", _REFS, _is_ref)
            s = await self._resolve_or_create(ref, teamspace, create)
            deadline = Deadline(timeout)
            instance = await self._ensure_started(
                s, m, interruptible, None, deadline, known=known.pop(s.id, None)
            )
            if not wait:
                return await self._state(s)
            return await board(s.teamspace_id).wait(s, StudioStatus.RUNNING, deadline, instance)

        return await self._many(
            studios, one, kind="studios.start_many", journal=journal, concurrency=concurrency,
            on_progress=on_progress,
            stop_on_error=stop_on_error,
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
        """Stop many studios; one :class:`Outcome` per studio, in input order. The waits
        share paged list calls like :meth:`start_many`."""
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.stop_many", _REFS, _is_ref)
        if isinstance(studios, Collection) and not isinstance(studios, str):
            await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef, board: Callable[[str], StatusBoard]) -> StudioState:
            check_bulk_item(ref, "studios.stop_many", _REFS, _is_ref)
            s = await self._resolve(ref, teamspace)
            state = await self.stop(s, wait=False, timeout=timeout)
            if not wait or (state.status is StudioStatus.STOPPED and not state.live_instance()):
                return state
            return await board(s.teamspace_id).wait(s, StudioStatus.STOPPED, Deadline(timeout))

        return await self._many(
            studios, one, kind="studios.stop_many", journal=journal, concurrency=concurrency,
            on_progress=on_progress,
            stop_on_error=stop_on_error,
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
        """Delete many studios; one :class:`Outcome` per studio, in input order."""
        check_positive_int(concurrency, "concurrency")
        check_bulk(studios, "studios.delete_many", _REFS, _is_ref)
        if isinstance(studios, Collection) and not isinstance(studios, str):
            await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef) -> None:
            check_bulk_item(ref, "studios.delete_many", _REFS, _is_ref)
            await self.delete(ref, teamspace=teamspace, missing_ok=missing_ok)

        async with journaled(journal, delete_plan(self, one, teamspace)) as step:
            return await map_outcomes(
                step, studios, concurrency=concurrency, on_progress=on_progress,
                stop_on_error=stop_on_error,
            )  # fmt: skip
