"""Multi-machine jobs (wire-flows §5.7): the create body and its idempotent send, the
per-machine jobs, stop and delete. ``client.jobs.submit(..., machines=N)`` with ``N > 1``
lands here; the other ``client.jobs`` methods take the returned :class:`Job` as any other.

Like a single job, a create carries the random ``AIOLIGHTNING_SUBMIT_ID`` env var: after an
ambiguous failure or a 409 the multi-machine job of that name is read back and adopted only
when it carries *this* submission's marker, so a retried submit never makes a second one.
"""

from __future__ import annotations

import builtins
import random
from typing import TYPE_CHECKING, Any

import anyio

from ..._errors import ConflictError, LightningError, NotFoundError, RateLimitError
from .._polling import is_ambiguous
from .._reconcile import delete_once
from ._lookup import JobLookup
from ._models import Job, JobRef, JobRequest

if TYPE_CHECKING:
    from ..._retry import RetryPolicy
    from ..teamspaces import Teamspace, TeamspaceRef

SUBMIT_ID_ENV = "AIOLIGHTNING_SUBMIT_ID"
_STOP = "MultiMachineJob_STATE_STOP"


class JobMulti(JobLookup):
    """The part of ``client.jobs`` that handles multi-machine jobs."""

    async def _submit_multi(
        self, teamspace_id: str, req: JobRequest, job_body: dict[str, Any], submit_id: str
    ) -> Job:
        spec = {k: v for k, v in job_body["spec"].items() if k not in ("volumes", "maxRunAttempts")}
        body: dict[str, Any] = {
            "name": req.name,
            "spec": spec,
            "clusterId": spec.get("clusterId", ""),
            "machines": req.machines,
        }
        if req.max_run_attempts:
            body["maxRunAttempts"] = req.max_run_attempts
            if req.max_run_attempts > 1:
                strategy = "MULTI_MACHINE_JOB_FAULT_TOLERANCE_STRATEGY_RECREATE_ALL_NODES"
                body["faultTolerance"] = {"strategy": strategy}
        if "tags" in job_body:
            body["tags"] = job_body["tags"]
        attempt = 0
        while True:
            attempt += 1
            try:
                m = await self._api.create_multi_machine_job(teamspace_id, body=body)
                return Job.from_mmt(m, teamspace_id)
            except ConflictError:
                found = await self._find_multi(teamspace_id, req.name, submit_id)
                if found is not None:
                    return found  # an earlier attempt of ours got through
                raise
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)) or attempt >= 6:
                    raise
                found = await self._find_multi(teamspace_id, req.name, submit_id)
                if found is not None:
                    return found
                await anyio.sleep(random.uniform(0.05, 0.3) * attempt)

    async def _find_multi(self, teamspace_id: str, name: str, submit_id: str) -> Job | None:
        try:
            m = await self._api.get_multi_machine_job_by_name(teamspace_id, name)
        except NotFoundError:
            return None
        for var in (m.spec.env if m.spec is not None else None) or []:
            if var.name == SUBMIT_ID_ENV and var.value == submit_id:
                return Job.from_mmt(m, teamspace_id)
        return None

    async def machines(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> builtins.list[Job]:
        """The per-machine jobs of a multi-machine job, by rank (``GET .../jobs?
        multiMachineJobId=``); each has its own status and logs. A single job: ``[job]``."""
        j = await self._resolve(job, teamspace)
        if not j.is_multi_machine:
            return [await self.refresh(j)]
        out: builtins.list[Job] = []
        async for mj in self._api.list_jobs_iter(j.teamspace_id, multi_machine_job_id=j.id):
            out.append(Job.from_model(mj, j.teamspace_id))
        return sorted(out, key=lambda x: x.rank)

    async def _machine(self, j: Job, rank: int) -> Job:
        for m in await self.machines(j):
            if m.rank == rank:
                return m
        raise NotFoundError(404, f"job {j} has no machine of rank {rank}")

    async def _stop_multi(self, j: Job) -> Job:
        m = await self._api.update_multi_machine_job(
            j.teamspace_id, j.id, body={"desiredState": _STOP}
        )
        return Job.from_mmt(m, j.teamspace_id)

    async def _delete_multi(self, j: Job, policy: RetryPolicy) -> None:
        """``DELETE .../multi-machine-jobs/{id}`` with ``policy`` (no ambiguous re-send by
        the transport): a 404 after a lost attempt means it deleted it."""
        await delete_once(
            lambda: self._api.delete_multi_machine_job(j.teamspace_id, j.id, retry=policy)
        )
