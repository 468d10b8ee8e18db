"""The ``client.jobs`` resource: lookup, submit, watch and logs joined, plus stop and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from .._polling import check_timeout
from .._reconcile import delete_once, no_ambiguous_resend
from ._logs import JobLogs
from ._models import Job, JobRef, JobStatus
from ._submit import JobSubmit
from ._watch import JobWatch

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


class Jobs(JobSubmit, JobWatch, JobLogs):
    """``client.jobs``."""

    async def stop(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 600.0,  # noqa: ASYNC109
    ) -> Job:
        """Stop the job (``PUT {"state": "stop"}``; a no-op when it is terminal or already
        stopping) and, with ``wait``, poll until it is terminal."""
        check_timeout(timeout)
        j = await self.refresh(job, teamspace=teamspace)
        if j.status.is_terminal:
            return j
        if j.is_multi_machine:
            if j.status is not JobStatus.STOPPING:
                j = await self._stop_multi(j)
        elif j.status is not JobStatus.STOPPING:
            resp = await self._api.update_job(j.teamspace_id, j.id, body={"state": "stop"})
            j = Job.from_model(resp, j.teamspace_id)
        if not wait:
            return j
        return await self.wait(j, timeout=timeout)

    async def delete(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete the job (``DELETE .../jobs/{id}?cloudspaceId=..``). Re-sent after an
        ambiguous failure; a 404 to a re-sent DELETE means the first one deleted it."""
        policy = no_ambiguous_resend(self._client.transport.retry)
        try:
            j = await self._resolve(job, teamspace)
            if j.is_multi_machine:
                await self._delete_multi(j, policy)
            else:
                await delete_once(
                    lambda: self._api.delete_job(
                        j.teamspace_id, j.id, cloudspace_id=j.studio_id, retry=policy
                    )
                )
        except NotFoundError:
            if not missing_ok:
                raise
