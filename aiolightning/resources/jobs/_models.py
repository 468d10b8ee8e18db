"""The job value types: statuses, jobs, submit requests, status changes and log lines.

The ``V1Job.state`` string maps to :class:`JobStatus` as in wire-flows §5.4.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from sys import intern
from typing import TYPE_CHECKING, Any

import msgspec

from ... import models
from ..._errors import NotFoundError

if TYPE_CHECKING:
    from ..machines import Machine
    from ..studios import Studio


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.COMPLETED, JobStatus.FAILED)

    @classmethod
    def from_state(cls, state: str | None) -> JobStatus:
        """Map a ``V1Job.state`` string (wire-flows §5.4); unknown values are pending."""
        return _STATE_TO_STATUS.get((state or "").lower(), JobStatus.PENDING)


_STATE_TO_STATUS: dict[str, JobStatus] = {
    "pending": JobStatus.PENDING,
    "creating": JobStatus.PENDING,
    "running": JobStatus.RUNNING,
    "restarting": JobStatus.RUNNING,
    "stopping": JobStatus.STOPPING,
    "stop": JobStatus.STOPPING,
    "delete": JobStatus.STOPPING,
    "complete": JobStatus.STOPPING,
    "fail": JobStatus.STOPPING,
    "stopped": JobStatus.STOPPED,
    "deleted": JobStatus.STOPPED,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    # multi-machine jobs (V1MultiMachineJobState, wire-flows §5.7)
    "multimachinejob_state_unspecified": JobStatus.PENDING,
    "multimachinejob_state_pending": JobStatus.PENDING,
    "multimachinejob_state_running": JobStatus.RUNNING,
    "multimachinejob_state_stop": JobStatus.STOPPING,
    "multimachinejob_state_delete": JobStatus.STOPPING,
    "multimachinejob_state_stopped": JobStatus.STOPPED,
    "multimachinejob_state_deleted": JobStatus.STOPPED,
    "multimachinejob_state_completed": JobStatus.COMPLETED,
    "multimachinejob_state_failed": JobStatus.FAILED,
}


class JobNotFoundError(NotFoundError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class Job(msgspec.Struct, frozen=True, gc=False, repr_omit_defaults=True):
    """A job. Pass it (or its name or id) to the ``client.jobs`` methods.

    Holds what users read of a job; ``raw``, the full ``V1Job``, only when the job came from
    a call about this one job (:meth:`Jobs.get`, :meth:`~Jobs.find`, :meth:`~Jobs.refresh`).
    :meth:`Jobs.model` fetches it on demand. Not tracked by the garbage collector (nothing
    in it can form a cycle), so a fleet of 100,000 costs the collector nothing."""

    id: str
    name: str
    teamspace_id: str
    state: str = ""  # the raw V1Job.state string
    image: str = ""
    command: str = ""
    studio_id: str = ""
    cluster_id: str = ""
    machine: str = ""
    created_at: str = ""
    started_at: str = ""
    stopped_at: str = ""
    total_cost: float | None = None
    #: > 1 for a multi-machine job (its machines: :meth:`Jobs.machines`)
    machines: int = 1
    rank: int = 0  # of a machine of a multi-machine job
    multi_machine_job_id: str = ""  # of a machine of a multi-machine job
    raw: models.V1Job | models.V1MultiMachineJob | None = None

    @property
    def is_multi_machine(self) -> bool:
        return isinstance(self.raw, models.V1MultiMachineJob) or self.machines > 1

    @property
    def status(self) -> JobStatus:
        return JobStatus.from_state(self.state)

    @classmethod
    def from_model(
        cls,
        j: models.V1Job | JobBrief,
        teamspace_id: str = "",
        *,
        keep_raw: bool = False,
        like: Job | None = None,
    ) -> Job:
        """The job from its wire model; the model itself kept as ``raw`` if ``keep_raw``.

        ``like``: this job as known before (a refresh). The result is ``like`` itself when
        nothing changed, and otherwise shares its strings that did not change, so a refresh
        of 100,000 jobs keeps only what changed, not a second copy of the fleet."""
        spec = j.spec
        values = (
            j.id or "",
            j.name or "",
            j.project_id or teamspace_id,
            j.state or "",
            (spec.image or "") if spec is not None else "",
            (spec.command or "") if spec is not None else "",
            (spec.cloudspace_id or "") if spec is not None else "",
            (spec.cluster_id or "") if spec is not None else "",
            (spec.instance_name or spec.instance_type or "") if spec is not None else "",
            str(j.created_at or ""),
            str(j.started_at or ""),
            str(j.stopped_at or ""),
            j.total_cost,
            1,  # machines: one (a multi-machine job comes through from_mmt)
            (spec.rank or 0) if spec is not None else 0,
            j.multi_machine_job_id or "",
        )  # the fields of Job in their order, but raw
        raw = j if keep_raw and isinstance(j, models.V1Job) else None
        if (
            like is not None
            and values[3] == like.state  # what changes first, before the whole comparison
            and raw is None
            and like.raw is None
            and values == msgspec.structs.astuple(like)[: len(values)]
        ):
            return like  # most of a fleet's refresh: nothing built
        return cls._build(values, raw, like)

    @classmethod
    def _build(cls, values: tuple[Any, ...], raw: Any, like: Job | None) -> Job:
        """A Job of ``values`` (its fields in order, but ``raw``). The few values a fleet
        shares are interned (one string each, not one per job); the other strings equal to
        those of ``like`` (the job as known before) are those, so a refresh keeps only what
        changed."""
        (jid, name, ts_id, state, image, command, studio, cluster, machine,
         created, started, stopped, cost, machines, rank, mmj) = values  # fmt: skip
        if like is not None:
            jid = like.id if jid == like.id else jid
            name = like.name if name == like.name else name
            command = like.command if command == like.command else command
            created = like.created_at if created == like.created_at else created
            started = like.started_at if started == like.started_at else started
            stopped = like.stopped_at if stopped == like.stopped_at else stopped
        return cls(
            id=jid, name=name, teamspace_id=intern(ts_id), state=intern(state),
            image=intern(image), command=command, studio_id=intern(studio),
            cluster_id=intern(cluster), machine=intern(machine), created_at=created,
            started_at=started, stopped_at=stopped, total_cost=cost, machines=machines,
            rank=rank, multi_machine_job_id=intern(mmj), raw=raw,
        )  # fmt: skip

    @classmethod
    def from_mmt(cls, m: models.V1MultiMachineJob, teamspace_id: str = "") -> Job:
        """A multi-machine job (``V1MultiMachineJob``) as a :class:`Job`."""
        spec = m.spec
        status = m.status
        return cls(
            id=m.id or "",
            name=m.name or "",
            teamspace_id=m.project_id or teamspace_id,
            state=m.state or "",
            image=(spec.image or "") if spec is not None else "",
            command=(spec.command or "") if spec is not None else "",
            studio_id=(spec.cloudspace_id or "") if spec is not None else "",
            cluster_id=(spec.cluster_id or "") if spec is not None else "",
            machine=(spec.instance_name or spec.instance_type or "") if spec is not None else "",
            created_at=str(m.created_at or ""),
            started_at=str((status.started_at if status is not None else None) or ""),
            stopped_at=str((status.stopped_at if status is not None else None) or ""),
            total_cost=m.total_cost,
            machines=m.machines or 1,
            raw=m,
        )

    def __str__(self) -> str:
        return self.name or self.id


class _SpecBrief(msgspec.Struct, gc=False, rename="camel"):
    rank: int | None = None
    image: str | None = None
    command: str | None = None
    cloudspace_id: str | None = None
    cluster_id: str | None = None
    instance_name: str | None = None
    instance_type: str | None = None


class JobBrief(msgspec.Struct, gc=False, rename="camel"):
    """The fields of a ``V1Job`` that :class:`Job` keeps: list pages of a status round are
    decoded into this, skipping the rest of each job."""

    id: str | None = None
    name: str | None = None
    project_id: str | None = None
    state: str | None = None
    spec: _SpecBrief | None = None
    created_at: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    total_cost: float | None = None
    multi_machine_job_id: str | None = None


class JobsPage(msgspec.Struct, gc=False, rename="camel"):
    """A page of ``GET .../jobs`` with each job as a :class:`JobBrief`."""

    jobs: list[JobBrief] | None = None
    next_page_token: str | None = None


#: A job given as a :class:`Job`, its name, or its id.
JobRef = Job | str

#: ``entrypoint`` not given (a docker job with a command then runs it with ``sh -c``)
UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class JobRequest:
    """Arguments of one :meth:`Jobs.submit`, for :meth:`Jobs.submit_many`."""

    name: str
    command: str | None = None
    image: str | None = None
    studio: Studio | str | None = None
    machine: Machine | str | None = None
    env: Mapping[str, str] | None = None
    interruptible: bool = False
    cloud_account: str | None = None
    entrypoint: str | None = UNSET
    max_runtime: int | None = None
    tags: Sequence[str] | None = None
    image_secret: str | None = None
    cloud_account_auth: bool = False
    path_mappings: Mapping[str, str] | None = None
    max_run_attempts: int | None = None
    machines: int = 1


class JobChange(msgspec.Struct, frozen=True, gc=False):
    """A job's status changed (``previous`` is None the first time a job is seen)."""

    job: Job
    previous: JobStatus | None
    status: JobStatus


@dataclass(frozen=True, slots=True)
class LogLine:
    message: str
    timestamp: str = ""
    line: int = 0  # the resource's line number, counted from 1
    severity: str = ""
    resource_id: str = ""  # the job (for a multi-machine job: the machine's job) that printed it
