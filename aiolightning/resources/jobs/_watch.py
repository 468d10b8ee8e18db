"""Waiting on jobs: ``wait`` for one, and ``poll`` and ``watch`` for fleets.

``poll``/``watch`` refresh many jobs with the paged list call
(``GET /v1/projects/{pid}/jobs?limit=..&pageToken=..``) when that costs fewer requests than
one ``GET`` per job, and learn per teamspace how many pages a full walk takes.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from ...fanout import map_outcomes
from .._polling import (
    Deadline,
    WaitTimeoutError,
    check_positive_int,
    check_timeout,
    poll_intervals,
)
from ._lookup import JobLookup
from ._models import Job, JobChange, JobRef, JobStatus

if TYPE_CHECKING:
    from ..._client import AsyncLightning
    from ..teamspaces import Teamspace, TeamspaceRef


class JobWatch(JobLookup):
    """The part of ``client.jobs`` that polls jobs until they are terminal."""

    poll_initial = 0.3
    poll_cap = 2.0
    #: page size of the paged list calls used by poll/watch
    list_page_size = 1000

    def __init__(self, client: AsyncLightning) -> None:
        super().__init__(client)
        self._pages_estimate: dict[str, int] = {}  # teamspace id -> pages of a full walk

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
        found, _gone = await self._poll_many(builtins.list(jobs), teamspace, concurrency)
        return found

    async def _poll_many(
        self,
        jobs: builtins.list[JobRef],
        teamspace: TeamspaceRef | Teamspace | None,
        concurrency: int,
    ) -> tuple[dict[str, Job], set[str]]:
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
            f, g = await self._poll_teamspace(ts_id, wanted, concurrency)
            found.update(f)
            gone |= g
        return found, gone

    def _use_list(self, ts_id: str, n: int) -> bool:
        pages = self._pages_estimate.get(ts_id)
        return n > 20 and (pages is None or pages < n)

    async def _poll_teamspace(
        self, ts_id: str, wanted: dict[str, Job], concurrency: int
    ) -> tuple[dict[str, Job], set[str]]:
        out: dict[str, Job] = {}
        gone: set[str] = set()
        missing = set(wanted)
        if self._use_list(ts_id, len(wanted)):
            token: str | None = None
            walked = 0
            while missing:
                resp = await self._api.list_jobs(ts_id, limit=self.list_page_size, page_token=token)
                walked += 1
                for j in resp.jobs or []:
                    if j.id in missing:
                        missing.discard(j.id)
                        out[j.id] = Job.from_model(j, ts_id)
                token = resp.next_page_token or None
                if not token:
                    self._pages_estimate[ts_id] = walked
                    break
            else:
                # stopped early: a full walk takes at least this many pages
                self._pages_estimate[ts_id] = max(walked, self._pages_estimate.get(ts_id, 0))
        if missing:
            outs = await map_outcomes(
                lambda jid: self._api.get_job(ts_id, jid),
                builtins.list(missing),
                concurrency=concurrency,
            )
            for o in outs:
                if o.ok and o.value is not None:
                    out[o.item] = Job.from_model(o.value, ts_id)
                elif isinstance(o.error, NotFoundError):
                    gone.add(o.item)
        return out, gone

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
        job is first seen), until every job is terminal. Polls with :meth:`poll` (paged list
        calls when cheaper than one GET per job).

        Raises :class:`WaitTimeoutError` if jobs are still not terminal after ``timeout``.
        A job deleted meanwhile is reported once as stopped; one that fails to refresh is
        simply asked again next round.
        """
        check_timeout(timeout)
        if interval is not None:
            check_timeout(interval, "interval")
        check_positive_int(concurrency, "concurrency")
        deadline = Deadline(timeout)
        refs = builtins.list(jobs)
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
                builtins.list(pending.values()), None, concurrency
            )
