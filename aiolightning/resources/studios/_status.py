"""Reading a studio's status and waiting for one, alone or on a board shared by many studios.

Every wait has a timeout and polls with a jittered interval that starts around 0.3 s and grows
to a cap.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anyio
import msgspec

from ..._errors import LightningError
from ..._transport import quote_path_param
from ...fanout import map_outcomes
from .._polling import Deadline, WaitTimeoutError, check_timeout, poll_intervals
from ._lookup import StudioLookup
from ._models import CodeStatusSeen, Studio, StudioError, StudioRef, StudioState, StudioStatus

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


def _judge(s: Studio, state: StudioState, target: StudioStatus, track: str) -> bool:
    """Has the studio reached ``target``? Raises :class:`StudioError` if it never will."""
    if target is StudioStatus.RUNNING:
        if state.ready and (not track or state.instance_id == track):
            return True
        if state.status is StudioStatus.FAILED:
            raise StudioError(f"studio {s} failed to start: {state.message or 'no message'}")
        if (
            track
            and state.status in (StudioStatus.STOPPED, StudioStatus.STOPPING)
            and not state.live_instance()
        ):
            raise StudioError(f"studio {s} stopped while starting: {state.message or 'no message'}")
        return False
    return state.status is target


class _Waiter:
    """One wait on a board: a bare future (thousands wait at once; an anyio Event and a
    cancel scope each would cost several objects more per studio, and the collector's time)."""

    __slots__ = ("done", "error", "since", "state", "studio", "target", "track")

    def __init__(
        self,
        studio: Studio,
        target: StudioStatus | None,
        track: str,
        since: int,
        done: asyncio.Future[None],
    ) -> None:
        self.studio = studio
        self.target = target  # None: the first state read after the wait began
        self.track = track
        self.since = since  # rounds begun before the wait; only later rounds count
        self.done = done
        self.state: StudioState | None = None
        self.error: BaseException | None = None

    def settle(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Listed(msgspec.Struct, gc=False, rename="camel"):
    id: str | None = None
    code_status: CodeStatusSeen | None = None


class _StatusPage(msgspec.Struct, gc=False, rename="camel"):
    """A page of ``GET .../cloudspaces`` decoded for a status round: each studio's id and
    codeStatus, the rest of it skipped."""

    cloudspaces: list[_Listed] | None = None
    next_page_token: str | None = None


#: the pause between two rounds of a status board is at most this per list call of a round
GAP_PER_PAGE = 0.2

#: at most this many waiting studios are asked for by ``ids`` in one list call
IDS_PER_CALL = 50


class StatusBoard:
    """Watches many studios of one teamspace with list calls -- each listed studio carries
    its ``codeStatus`` -- instead of one ``codestatus`` GET per studio per poll.

    A round asks for the waiting studios by ``ids`` (:data:`IDS_PER_CALL` a call, the calls
    at once) when that takes no more calls than the last walk of the listing did (one call
    before any walk), else walks the listing until every waiting studio was seen; a studio
    the listing does not show is asked for alone. Only rounds begun after a wait began
    answer it."""

    def __init__(self, owner: StudioWaits, teamspace_id: str) -> None:
        self._owner = owner
        self._ts = teamspace_id
        self._waiting: dict[str, list[_Waiter]] = {}
        self._wake = anyio.Event()
        self._rounds = 0  # rounds begun
        self._pages = 0  # list calls of the last round
        self._walk = 1  # list calls of the last walk of the listing
        self._settled = 0  # waits answered by the current round
        self._ids_ok = True  # False once the service ignored the ids filter

    async def wait(
        self, s: Studio, target: StudioStatus | None, deadline: Deadline, track: str = ""
    ) -> StudioState:
        """Wait until ``s`` reaches ``target`` (None: its next state read by a round)."""
        loop = asyncio.get_running_loop()
        w = _Waiter(s, target, track, self._rounds, loop.create_future())
        self._waiting.setdefault(s.id, []).append(w)
        self._wake.set()
        remaining = deadline.remaining()
        timer = None if remaining == float("inf") else loop.call_later(remaining, w.settle)
        try:
            await w.done
        finally:
            if timer is not None:
                timer.cancel()
            waiters = self._waiting.get(s.id, [])
            if w in waiters:
                waiters.remove(w)
            if not waiters:
                self._waiting.pop(s.id, None)
        if w.error is not None:
            raise w.error
        if w.state is None:
            target_text = target.value if target is not None else "a readable state"
            raise WaitTimeoutError(
                f"studio {s} did not reach {target_text} within {deadline.timeout:g} s"
            )
        return w.state

    def _offer(self, studio_id: str, state: StudioState, round_no: int) -> None:
        for w in list(self._waiting.get(studio_id, [])):
            if w.since >= round_no:
                continue  # the round began before the wait: it may predate a request
            try:
                done = w.target is None or _judge(w.studio, state, w.target, w.track)
            except StudioError as exc:
                w.error = exc
                w.settle()
                self._settled += 1
                continue
            if done:
                w.state = state
                w.settle()
                self._settled += 1

    async def run(self) -> None:
        intervals = self._owner._intervals()
        while True:
            if not self._waiting:
                self._wake = anyio.Event()
                await self._wake.wait()
                intervals = self._owner._intervals()
            self._settled = 0
            try:
                await self._round()
            except LightningError:
                pass  # the transport already retried; ask again next round
            if self._settled:
                # studios are coming ready, the next ones likely soon: the backoff starts
                # over (it grows again while rounds find nothing)
                intervals = self._owner._intervals()
            # a round's cost is its pages: a cheap round may come sooner than the backoff
            # allows (a studio that became ready is seen within ~0.2 s per page)
            await anyio.sleep(min(next(intervals), GAP_PER_PAGE * max(1, self._pages)))

    async def _page(
        self, limit: int, token: str | None = None, ids: list[str] | None = None
    ) -> _StatusPage:
        self._pages += 1
        return await self._owner._client.transport.request(
            "GET",
            f"/v1/projects/{quote_path_param(self._ts)}/cloudspaces",
            params={"ids": ids, "limit": limit, "pageToken": token},
            response_type=_StatusPage,
            route="/v1/projects/{projectId}/cloudspaces",
        )

    async def _round(self) -> None:
        self._rounds += 1
        self._pages = 0
        n = self._rounds
        seen: set[str] = set()
        wanted = set(self._waiting)
        if self._ids_ok and math.ceil(len(wanted) / IDS_PER_CALL) <= self._walk:
            ordered = sorted(wanted)
            errors: list[LightningError] = []

            async def by_ids(start: int) -> None:
                chunk = ordered[start : start + IDS_PER_CALL]
                try:
                    resp = await self._page(len(chunk), ids=chunk)
                except LightningError as exc:
                    errors.append(exc)
                    return
                for cs in resp.cloudspaces or []:
                    if cs.id not in wanted:
                        self._ids_ok = False  # the filter was ignored: walk from now on
                    elif cs.code_status is not None:
                        seen.add(cs.id)
                        self._offer(cs.id, StudioState.from_model(cs.code_status), n)

            async with anyio.create_task_group() as tg:
                for start in range(0, len(ordered), IDS_PER_CALL):
                    tg.start_soon(by_ids, start)
            if errors:
                raise errors[0]  # the next round asks again
        else:
            token: str | None = None
            while self._waiting:
                resp = await self._page(1000, token)
                for cs in resp.cloudspaces or []:
                    if cs.id in self._waiting and cs.code_status is not None:
                        seen.add(cs.id)
                        self._offer(cs.id, StudioState.from_model(cs.code_status), n)
                token = resp.next_page_token or None
                if not token or not (self._waiting.keys() - seen):
                    break
            self._walk = self._pages
        rest = [sid for sid in self._waiting if sid not in seen and sid in wanted]
        if rest:
            api = self._owner._api

            async def one(sid: str) -> None:
                resp = await api.get_cloud_space_instance_status(self._ts, sid)
                self._offer(sid, StudioState.from_model(resp), n)

            await map_outcomes(one, rest, concurrency=64)


class StudioWaits(StudioLookup):
    """``client.studios``: a studio's state and status, and waits for one."""

    #: polling knobs (seconds); tests and impatient users may lower them
    poll_initial = 0.3
    poll_cap = 1.0

    async def state(
        self, studio: StudioRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> StudioState:
        """A :class:`StudioState` from ``GET .../codestatus``."""
        s = await self._resolve(studio, teamspace)
        return await self._state(s)

    async def status(
        self, studio: StudioRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> StudioStatus:
        """The studio's :class:`StudioStatus` (wire-flows §4.6)."""
        return (await self.state(studio, teamspace=teamspace)).status

    async def _state(self, s: Studio) -> StudioState:
        resp = await self._api.get_cloud_space_instance_status(s.teamspace_id, s.id)
        return StudioState.from_model(resp)

    def _intervals(self) -> Iterator[float]:
        return poll_intervals(self.poll_initial, self.poll_cap)

    async def wait(
        self,
        studio: StudioRef,
        status: StudioStatus | str = StudioStatus.RUNNING,
        *,
        timeout: float | None = 600.0,  # noqa: ASYNC109
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> StudioState:
        """Poll until the studio reaches ``status`` (for RUNNING: running *and* ready).

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds (None = no limit), and
        :class:`StudioError` if the studio fails while waiting for it to run.
        """
        target = StudioStatus(status)
        check_timeout(timeout)
        s = await self._resolve(studio, teamspace)
        return await self._wait(s, target, Deadline(timeout))

    async def _wait(
        self, s: Studio, target: StudioStatus, deadline: Deadline, *, track: str = ""
    ) -> StudioState:
        intervals = self._intervals()
        while True:
            state = await self._state(s)
            if _judge(s, state, target, track):
                return state
            if deadline.expired():
                raise WaitTimeoutError(
                    f"studio {s} did not reach {target.value} within {deadline.timeout:g} s "
                    f"(last status {state.status.value})"
                )
            await deadline.sleep(next(intervals))
