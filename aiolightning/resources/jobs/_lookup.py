"""The jobs lookup base: finding, getting, refreshing and listing jobs of a teamspace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..._errors import InvalidArgumentError, NotFoundError
from .._jobs_service import JobsServiceRoot
from .._polling import check_name, check_positive_int
from ._models import _STATE_TO_STATUS, Job, JobNotFoundError, JobRef, JobStatus

if TYPE_CHECKING:
    from ... import models
    from ..teamspaces import Teamspace, TeamspaceRef


class JobLookup(JobsServiceRoot):
    """The part of ``client.jobs`` that reads jobs; the other parts build on it."""

    async def find(
        self, name: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job | None:
        """The job called ``name`` (``GET .../jobs/find?name=``), or None."""
        name = check_name(name, "job name")
        ts = await self._teamspace(teamspace)
        return await self._find(ts.id, name)

    async def _find(self, teamspace_id: str, name: str) -> Job | None:
        """By name: a job, else (like the SDK) a multi-machine job."""
        try:
            j = await self._api.find_job(teamspace_id, name=name)
        except NotFoundError:
            pass
        else:
            return Job.from_model(j, teamspace_id, keep_raw=True)
        try:
            m = await self._api.get_multi_machine_job_by_name(teamspace_id, name)
        except NotFoundError:
            return None
        return Job.from_mmt(m, teamspace_id)

    async def get(
        self, name_or_id: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job:
        """The job with this name or id."""
        key = check_name(name_or_id, "job name or id")
        ts = await self._teamspace(teamspace)
        found = await self._find(ts.id, key)
        if found is not None:
            return found
        try:
            return Job.from_model(await self._api.get_job(ts.id, key), ts.id, keep_raw=True)
        except NotFoundError:
            pass
        try:
            return Job.from_mmt(await self._api.get_multi_machine_job(ts.id, key), ts.id)
        except NotFoundError:
            raise JobNotFoundError(f"job {key!r} does not exist in teamspace {ts.name!r}") from None

    async def _resolve(self, job: JobRef, teamspace: TeamspaceRef | Teamspace | None) -> Job:
        if isinstance(job, Job):
            return job
        return await self.get(job, teamspace=teamspace)

    async def refresh(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job:
        """The job as the service sees it now (``GET .../jobs/{id}``)."""
        j = await self._resolve(job, teamspace)
        if j.is_multi_machine:
            m = await self._api.get_multi_machine_job(j.teamspace_id, j.id)
            return Job.from_mmt(m, j.teamspace_id)
        resp = await self._api.get_job(j.teamspace_id, j.id)
        return Job.from_model(resp, j.teamspace_id, keep_raw=True)

    async def model(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> models.V1Job | models.V1MultiMachineJob:
        """The job's full wire model (``GET .../jobs/{id}``, or ``V1MultiMachineJob`` for a
        multi-machine job): every field, which a :class:`Job` from a list, a submit or a
        watch does not keep."""
        j = await self._resolve(job, teamspace)
        if j.is_multi_machine:
            return await self._api.get_multi_machine_job(j.teamspace_id, j.id)
        return await self._api.get_job(j.teamspace_id, j.id)

    async def status(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> JobStatus:
        return (await self.refresh(job, teamspace=teamspace)).status

    async def list(
        self,
        teamspace: TeamspaceRef | Teamspace | None = None,
        *,
        page_size: int | None = 100,
        state: str | None = None,
        standalone: bool | None = None,
    ) -> AsyncIterator[Job]:
        """Every job of the teamspace, following ``nextPageToken`` (``limit=page_size``);
        ``state``: only jobs in this wire state (``running``, ``completed``, ...)."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        if state is not None:
            state = _check_state(state)
        ts = await self._teamspace(teamspace)
        pager = self._api.list_jobs_iter(ts.id, limit=page_size, state=state, standalone=standalone)
        async for j in pager:
            yield Job.from_model(j, ts.id)


def _check_state(state: object) -> str:
    """A job state the service filters by (the wire states, wire-flows §5.4)."""
    known = sorted(_STATE_TO_STATUS)
    if not isinstance(state, str) or state.strip().lower() not in _STATE_TO_STATUS:
        raise InvalidArgumentError(f"unknown job state {state!r}; one of {', '.join(known)}")
    return state.strip().lower()
