"""How ``jobs.submit_many`` journals its requests: keyed by job name, reconciled by marker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..._errors import InvalidArgumentError
from ...runs import ItemPlan, Seen
from ._models import Job, JobRequest

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef
    from ._submit import JobSubmit

__all__ = ["IfExists", "check_if_exists", "submit_plan"]

R = TypeVar("R")

#: what a submit does when a job of that name already exists
IfExists = Literal["new", "skip", "error"]


def check_if_exists(value: object) -> None:
    if value not in ("new", "skip", "error"):
        raise InvalidArgumentError(
            f"if_exists must be 'new' (the service renames it), 'skip' (return the existing "
            f"job) or 'error', got {value!r}"
        )


# the Job's fields as recorded: its raw model is left out (smaller and quicker to write, and
# the raw spec's env may hold secrets); a Job returned from the journal has raw=None
_FIELDS = tuple(name for name in Job.__struct_fields__ if name != "raw")


def _encode(job: Job) -> Any:
    return [getattr(job, name) for name in _FIELDS]


def _decode(data: Any) -> Job:
    return Job(**dict(zip(_FIELDS, data, strict=True)))


def submit_plan(
    jobs: JobSubmit,
    teamspace: TeamspaceRef | Teamspace | None,
    if_exists: IfExists,
    as_request: Callable[[R], JobRequest],
) -> ItemPlan[R, Job]:
    """Intent = (job name, submit marker); after a crash the job carrying the marker is
    looked up (``GET .../jobs/find?name=``) and submitted only if the service has none.
    ``as_request`` turns an item (a :class:`JobRequest` or a mapping) into its request."""

    async def send(item: R, marker: str) -> Job:
        return await jobs._submit(
            as_request(item), teamspace, if_exists=if_exists, submit_id=marker
        )

    async def reconcile(item: R, marker: str) -> Seen[Job] | None:
        req = as_request(item)
        ts = await jobs._teamspace(teamspace)
        if req.machines > 1:
            found = await jobs._find_multi(ts.id, req.name, marker)
        else:
            found = await jobs._find_submitted(ts.id, req, marker)
        return Seen(found) if found is not None else None

    def key(item: R) -> str:
        return as_request(item).name

    return ItemPlan("jobs.submit_many", key, send, reconcile, encode=_encode, decode=_decode)
