"""Waiting on jobs: ``wait`` for one, and ``poll`` and ``watch`` for fleets.

``poll``/``watch`` refresh many jobs with the paged list call
(``GET /v1/projects/{pid}/jobs?limit=..&pageToken=..``) when that costs fewer requests than
one ``GET`` per job, and learn per teamspace how many pages a full walk takes. List pages
are decoded into :class:`JobBrief` (the fields a :class:`Job` keeps), not full models.

After its first round, ``watch`` asks only for what can still change: one listing per
unfinished ``state`` value (``?state=running`` ..., wire-flows §5.4), so a round over a large
fleet that is mostly finished costs a few pages. A watched job missing from every such
listing has finished (or changed state during the round): it is read alone, or with a full
walk when that takes fewer requests. So no periodic full walk is needed: a state the client
does not know costs requests, never a missed change. A listing that returns a job in another
state than asked for shows the service ignores the filter; the teamspace is then refreshed by
full walks only.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Collection, Iterable
from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from ..._transport import quote_path_param
from ...fanout import map_outcomes
from .._bulk import check_bulk
from .._polling import (
    Deadline,
    WaitTimeoutError,
    check_positive_int,
    check_timeout,
    poll_intervals,
)
from ._lookup import JobLookup
from ._models import Job, JobChange, JobRef, JobsPage, JobStatus

if TYPE_CHECKING:
    from ..._client import AsyncLightning
    from ..teamspaces import Teamspace, TeamspaceRef

_REFS = "Job objects or job names (str)"


def _is_ref(item: object) -> bool:
    return isinstance(item, Job | str)


def _refs(jobs: Iterable[JobRef], method: str) -> builtins.list[JobRef]:
    """The jobs as a list, every item checked before any request is sent (a poll needs them
    all at once, so a lazy iterable is read first and a wrong item fails the whole call)."""
    check_bulk(jobs, method, _REFS, _is_ref)
    if not hasattr(jobs, "__iter__"):
        raise TypeError(f"{method}() takes a (sync) iterable of {_REFS}, got an async iterable")
    refs = builtins.list(jobs)
    if not isinstance(jobs, Collection):
        check_bulk(refs, method, _REFS, _is_ref)
    return refs


#: the ``V1Job.state`` values of an unfinished job (wire-flows §5.4)
ACTIVE_STATES = (
    "pending", "creating", "running", "restarting", "stopping", "stop", "delete", "complete",
    "fail",
)  # fmt: skip


class JobWatch(JobLookup):
    """The part of ``client.jobs`` that polls jobs until they are terminal."""

    poll_initial = 0.3
    poll_cap = 2.0
    #: page size of the paged list calls used by poll/watch
    list_page_size = 1000

    def __init__(self, client: AsyncLightning) -> None:
        super().__init__(client)
        self._pages_estimate: dict[str, int] = {}  # teamspace id -> pages of a full walk
        self._no_state_filter: set[str] = set()  # teamspaces whose listing ignores ?state=

    async def wait(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = 3600.0,  # noqa: ASYNC109
    ) -> Job:
        """Poll until the job is terminal (completed, stopped or failed); return it."""
        check_timeout(timeout)
        j = await self._resolve(job, teamspace)
        deadline = Deadline(timeout)
        intervals = poll_intervals(self.poll_initial, self.poll_cap)
        while True:
            j = await self.refresh(j)
            if j.status.is_terminal:
                return j
            if deadline.expired():
                raise WaitTimeoutError(
                    f"job {j} did not finish within {timeout:g} s (status {j.status.value})"
                )
            await deadline.sleep(next(intervals))

    async def poll(
        self,
        jobs: Iterable[JobRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        concurrency: int = 64,
    ) -> dict[str, Job]:
        """One refresh of many jobs: ``{job id: Job}``.

        Per teamspace, uses the paged list call when a full walk of the teamspace's jobs
        takes fewer requests than one ``GET`` per job (the walk stops early once every
        wanted job was seen), else concurrent ``GET``\\ s. Jobs that could not be read
        (deleted meanwhile, or failing) are left out of the result.
        """
        check_positive_int(concurrency, "concurrency")
        refs = _refs(jobs, "jobs.poll")
        found, _gone = await self._poll_many(refs, teamspace, concurrency)
        return found

    async def _poll_many(
        self,
        jobs: builtins.list[JobRef],
        teamspace: TeamspaceRef | Teamspace | None,
        concurrency: int,
        active: bool = False,
    ) -> tuple[dict[str, Job], set[str]]:
        """``active``: the jobs were last seen unfinished (a watch round)."""
        resolved = [j for j in jobs if isinstance(j, Job)]
        names = [j for j in jobs if not isinstance(j, Job)]
        if names:
            outs = await map_outcomes(
                lambda n: self._resolve(n, teamspace), names, concurrency=concurrency
            )
            resolved.extend(o.result() for o in outs)
        found: dict[str, Job] = {}
        gone: set[str] = set()
        multi = [j for j in resolved if j.is_multi_machine]  # not in the jobs listing
        if multi:
            for o in await map_outcomes(self.refresh, multi, concurrency=concurrency):
                if o.ok and o.value is not None:
                    found[o.item.id] = o.value
                elif isinstance(o.error, NotFoundError):
                    gone.add(o.item.id)
        by_ts: dict[str, dict[str, Job]] = {}
        for j in resolved:
            if not j.is_multi_machine:
                by_ts.setdefault(j.teamspace_id, {})[j.id] = j
        for ts_id, wanted in by_ts.items():
            gone |= await self._poll_teamspace(ts_id, wanted, concurrency, active, found)
        return found, gone

    def _use_list(self, ts_id: str, n: int) -> bool:
        pages = self._pages_estimate.get(ts_id)
        return n > 20 and (pages is None or pages < n)

    def _use_states(self, ts_id: str, n: int) -> bool:
        pages = self._pages_estimate.get(ts_id)
        return (
            ts_id not in self._no_state_filter
            and n > len(ACTIVE_STATES)
            and pages is not None
            and pages > len(ACTIVE_STATES)
        )

    async def _page(self, ts_id: str, token: str | None, state: str | None = None) -> JobsPage:
        return await self._client.transport.request(
            "GET",
            f"/v1/projects/{quote_path_param(ts_id)}/jobs",
            params={"limit": self.list_page_size, "pageToken": token, "state": state},
            response_type=JobsPage,
            route="/v1/projects/{projectId}/jobs",
        )

    async def _poll_teamspace(
        self,
        ts_id: str,
        wanted: dict[str, Job],
        concurrency: int,
        active: bool,
        out: dict[str, Job],
    ) -> set[str]:
        """Put the wanted jobs as they are now in ``out`` (no copy of the fleet's size is
        made on the way); return the ids of those that are gone."""
        gone: set[str] = set()
        left = len(wanted)
        if active and self._use_states(ts_id, left):
            seen = await self._active_listings(ts_id, wanted)
            if seen is not None:
                out.update(seen)
                left -= len(seen)
        if left and self._use_list(ts_id, left):
            await self._walk(ts_id, wanted, out, left)
        missing = [jid for jid in wanted if jid not in out]
        if missing:
            outs = await map_outcomes(
                lambda jid: self._api.get_job(ts_id, jid), missing, concurrency=concurrency
            )
            for o in outs:
                if o.ok and o.value is not None:
                    out[o.item] = Job.from_model(o.value, ts_id, like=wanted[o.item])
                elif isinstance(o.error, NotFoundError):
                    gone.add(o.item)
        return gone

    async def _walk(
        self, ts_id: str, wanted: dict[str, Job], out: dict[str, Job], left: int
    ) -> None:
        """Walk the teamspace's jobs until the ``left`` jobs of ``wanted`` not in ``out``
        yet were seen (each put in ``out``, sharing the strings of the job as known)."""
        token: str | None = None
        walked = 0
        while left:
            page = await self._page(ts_id, token)
            walked += 1
            for b in page.jobs or []:
                known = wanted.get(b.id or "")
                if known is not None and b.id not in out:
                    out[known.id] = Job.from_model(b, ts_id, like=known)
                    left -= 1
            token = page.next_page_token or None
            if not token:
                self._pages_estimate[ts_id] = walked
                return
        # stopped early: a full walk takes at least this many pages
        self._pages_estimate[ts_id] = max(walked, self._pages_estimate.get(ts_id, 0))

    async def _active_listings(self, ts_id: str, wanted: dict[str, Job]) -> dict[str, Job] | None:
        """The wanted jobs (as known before) among the teamspace's unfinished ones, from one
        listing per unfinished state; None if the service ignored the filter."""
        found: dict[str, Job] = {}
        ignored = False

        async def one(state: str) -> None:
            nonlocal ignored
            token: str | None = None
            while not ignored:
                page = await self._page(ts_id, token, state)
                for b in page.jobs or []:
                    if (b.state or "").lower() != state:
                        ignored = True
                        return
                    known = wanted.get(b.id or "")
                    if known is not None:
                        found[known.id] = Job.from_model(b, ts_id, like=known)
                token = page.next_page_token or None
                if not token:
                    return

        outs = await map_outcomes(one, ACTIVE_STATES, concurrency=len(ACTIVE_STATES))
        for o in outs:
            o.result()
        if ignored:
            self._no_state_filter.add(ts_id)
            return None
        return found

    async def watch(
        self,
        jobs: Iterable[JobRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        interval: float | None = None,
        concurrency: int = 64,
    ) -> AsyncIterator[JobChange]:
        """Yield a :class:`JobChange` whenever a job's status changes (and once when each
        job is first seen), until every job is terminal. The first round is a :meth:`poll`;
        later ones ask only for unfinished jobs (see the module's docstring).

        Raises :class:`WaitTimeoutError` if jobs are still not terminal after ``timeout``.
        A job deleted meanwhile is reported once as stopped; one that fails to refresh is
        simply asked again next round.
        """
        check_timeout(timeout)
        if interval is not None:
            check_timeout(interval, "interval")
        check_positive_int(concurrency, "concurrency")
        refs = _refs(jobs, "jobs.watch")
        deadline = Deadline(timeout)
        known: dict[str, JobStatus | None] = {}
        current, gone = await self._poll_many(refs, teamspace, concurrency)
        pending: dict[str, Job] = {}
        for j in refs:
            if isinstance(j, Job) and j.id not in current and j.id not in gone:
                pending[j.id] = j  # not readable yet: keep asking
        intervals = poll_intervals(self.poll_initial, self.poll_cap)
        while True:
            for jid, j in current.items():
                prev = known.get(jid)
                if prev is not j.status:
                    known[jid] = j.status
                    yield JobChange(j, prev, j.status)
                if j.status.is_terminal:
                    pending.pop(jid, None)
                else:
                    pending[jid] = j
            for jid in gone:
                old = pending.pop(jid, None)
                if old is not None and known.get(jid) is not JobStatus.STOPPED:
                    yield JobChange(old, known.get(jid), JobStatus.STOPPED)
            if not pending:
                return
            if deadline.expired():
                raise WaitTimeoutError(
                    f"{len(pending)} job(s) still not terminal after {timeout:g} s"
                )
            await deadline.sleep(interval if interval is not None else next(intervals))
            current, gone = await self._poll_many(
                builtins.list(pending.values()), None, concurrency, active=True
            )
