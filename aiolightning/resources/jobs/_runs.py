"""How ``jobs.submit_many`` journals its requests: keyed by job name, reconciled by marker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ... import models
from ..._errors import InvalidArgumentError
from ...runs import ItemPlan, Seen
from ._models import Job, JobRequest
from ._multi import SUBMIT_ID_ENV

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef
    from ._submit import JobSubmit

__all__ = ["IfExists", "check_if_exists", "submit_plan"]

#: what a submit does when a job of that name already exists
IfExists = Literal["new", "skip", "error"]


def check_if_exists(value: object) -> None:
    if value not in ("new", "skip", "error"):
        raise InvalidArgumentError(
            f"if_exists must be 'new' (the service renames it), 'skip' (return the existing "
            f"job) or 'error', got {value!r}"
        )


def _encode(job: Job) -> Any:
    """The job as JSON, env values blanked (they may hold secrets) but the submit marker's."""
    multi = isinstance(job.raw, models.V1MultiMachineJob)
    raw = msgspec.to_builtins(job.raw)
    spec = raw.get("spec") if isinstance(raw, dict) else None
    if isinstance(spec, dict):
        spec["env"] = [
            {**var, "value": var.get("value", "") if var.get("name") == SUBMIT_ID_ENV else ""}
            for var in spec.get("env") or ()
        ]
    return {"ts": job.teamspace_id, "multi": multi, "raw": raw}


def _decode(data: Any) -> Job:
    if data["multi"]:
        return Job.from_mmt(msgspec.convert(data["raw"], models.V1MultiMachineJob), data["ts"])
    return Job.from_model(msgspec.convert(data["raw"], models.V1Job), data["ts"])


def submit_plan(
    jobs: JobSubmit, teamspace: TeamspaceRef | Teamspace | None, if_exists: IfExists
) -> ItemPlan[JobRequest, Job]:
    """Intent = (job name, submit marker); after a crash the job carrying the marker is
    looked up (``GET .../jobs/find?name=``) and submitted only if the service has none."""

    async def send(req: JobRequest, marker: str) -> Job:
        return await jobs._submit(req, teamspace, if_exists=if_exists, submit_id=marker)

    async def reconcile(req: JobRequest, marker: str) -> Seen[Job] | None:
        ts = await jobs._teamspace(teamspace)
        if req.machines > 1:
            found = await jobs._find_multi(ts.id, req.name, marker)
        else:
            found = await jobs._find_submitted(ts.id, req, marker)
        return Seen(found) if found is not None else None

    def key(req: JobRequest) -> str:
        return req.name

    return ItemPlan("jobs.submit_many", key, send, reconcile, encode=_encode, decode=_decode)
