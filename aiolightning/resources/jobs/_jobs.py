"""The ``client.jobs`` resource: lookup, submit and watch joined, plus stop, delete and logs."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from .._polling import check_positive_int, check_timeout
from .._reconcile import delete_once, no_ambiguous_resend
from ._models import Job, JobRef, JobStatus, LogLine
from ._submit import JobSubmit
from ._watch import JobWatch

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


class Jobs(JobSubmit, JobWatch):
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
        if j.status is not JobStatus.STOPPING:
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
            await delete_once(
                lambda: self._api.delete_job(
                    j.teamspace_id, j.id, cloudspace_id=j.studio_id, retry=policy
                )
            )
        except NotFoundError:
            if not missing_ok:
                raise

    async def logs(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[LogLine]:
        """The job's log lines (``GET .../page-logs?jobIds=..``), page by page."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        j = await self._resolve(job, teamspace)
        token: str | None = None
        first = True
        while True:
            resp = await self._api.get_logs(
                j.teamspace_id,
                job_ids=[j.id],
                since=since,
                until=until,
                page_size=str(page_size) if page_size is not None else None,
                page_token=token,
            )
            entries = builtins.list(resp.entries or [])
            if first and entries and entries[0].message == "+ lightning":
                entries = entries[1:]
            first = False
            for e in entries:
                try:
                    line = int(e.line or 0)
                except (TypeError, ValueError):
                    line = 0
                yield LogLine(
                    message=e.message or "",
                    timestamp=str(e.timestamp or ""),
                    line=line,
                    severity=str(e.severity or ""),
                )
            token = resp.next_page_token or None
            if not token:
                return
