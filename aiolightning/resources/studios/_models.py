"""The studio value types (Studio, its state and status, a reference to one) and the studio errors.

Status comes from ``GET .../codestatus`` and maps as in wire-flows §4.6 (``inUse`` missing ->
stopped).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ... import models
from ..._errors import InvalidArgumentError, LightningError, NotFoundError

#: A studio's name is one segment of its URLs (``lightning.ai/<owner>/<teamspace>/studios/
#: <name>``, ``lit:///studios/<name>/``): 1 to 64 letters, digits, ``-``, ``_`` and ``.``,
#: starting with a letter or digit. A studio id has the same form.
STUDIO_NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_studio_name(value: Any, what: str = "studio name") -> str:
    """``value`` (stripped) if it is a valid studio name, else :class:`InvalidArgumentError`
    saying why -- before any request is sent."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    name = value.strip()
    if not STUDIO_NAME_RULE.fullmatch(name):
        raise InvalidArgumentError(
            f"{what} {name!r} is not valid: use 1 to 64 letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    return name


class StudioStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


_PHASE = "CLOUD_SPACE_INSTANCE_STATE_"
_PHASE_TO_STATUS: dict[str, StudioStatus] = {
    _PHASE + "UNSPECIFIED": StudioStatus.PENDING,
    _PHASE + "PENDING": StudioStatus.PENDING,
    _PHASE + "IMAGE_BUILDING": StudioStatus.PENDING,  # the SDK raises KeyError here
    _PHASE + "RUNNING": StudioStatus.RUNNING,
    _PHASE + "STOPPING": StudioStatus.STOPPING,
    _PHASE + "STOPPED": StudioStatus.STOPPED,
    _PHASE + "FAILED": StudioStatus.FAILED,
    _PHASE + "DELETED": StudioStatus.STOPPED,  # the SDK raises KeyError here
}
_TERMINAL_PHASES = frozenset(
    _PHASE + p for p in ("FAILED", "STOPPING", "STOPPED", "DELETED")
)  # what the SDK's start poll treats as "this instance is over"


class StudioError(LightningError):
    """A studio is not in a state that allows the operation, or failed to get there."""


class StudioNotFoundError(NotFoundError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True, slots=True)
class Studio:
    """A studio (cloudspace). Pass it (or its name or id) to the ``client.studios`` methods."""

    id: str
    name: str
    teamspace_id: str
    cluster_id: str = ""
    display_name: str = ""
    user_id: str = ""
    created_at: str = ""
    raw: models.V1CloudSpace | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_model(cls, cs: models.V1CloudSpace, teamspace_id: str = "") -> Studio:
        return cls(
            id=cs.id or "",
            name=cs.name or "",
            teamspace_id=cs.project_id or teamspace_id,
            cluster_id=cs.cluster_id or "",
            display_name=cs.display_name or "",
            user_id=cs.user_id or "",
            created_at=str(cs.created_at or ""),
            raw=cs,
        )

    def __str__(self) -> str:
        return self.name or self.id


#: A studio given as a :class:`Studio`, its name, or its id.
StudioRef = Studio | str


class _ComputeSeen(msgspec.Struct, gc=False, rename="camel"):
    name: str | None = None
    spot: bool | None = None


class _StartupSeen(msgspec.Struct, gc=False, rename="camel"):
    top_up_restore_finished: bool | None = None


class _InstanceSeen(msgspec.Struct, gc=False, rename="camel"):
    phase: str | None = None
    cloud_space_instance_id: str | None = None
    compute_config: _ComputeSeen | None = None
    startup_status: _StartupSeen | None = None
    status_message: str | None = None
    public_ip_address: str | None = None


class CodeStatusSeen(msgspec.Struct, gc=False, rename="camel"):
    """The part of a ``codeStatus`` that :meth:`StudioState.from_model` reads: what a status
    board decodes from each studio of a listing page (a page of 1000 decodes in half the
    time the whole model takes)."""

    in_use: _InstanceSeen | None = None
    requested: _InstanceSeen | None = None


@dataclass(frozen=True, slots=True)
class StudioState:
    """A snapshot of ``GET .../codestatus``."""

    status: StudioStatus
    phase: str = ""  # inUse.phase, "" when no instance is in use
    instance_id: str = ""  # inUse.cloudSpaceInstanceId
    machine: str = ""  # inUse.computeConfig.name
    interruptible: bool = False
    ready: bool = False  # running and the restore of the studio's files has finished
    message: str = ""
    public_ip: str = ""
    requested_phase: str = ""  # the instance being started/switched to, if any
    requested_instance_id: str = ""
    requested_machine: str = ""

    @classmethod
    def from_model(
        cls, resp: models.V1GetCloudSpaceInstanceStatusResponse | CodeStatusSeen | None
    ) -> StudioState:
        in_use = resp.in_use if resp is not None else None
        requested = resp.requested if resp is not None else None
        req_phase = str(requested.phase or "") if requested is not None else ""
        req_id = (requested.cloud_space_instance_id or "") if requested is not None else ""
        req_machine = ""
        if requested is not None and requested.compute_config is not None:
            req_machine = requested.compute_config.name or ""
        if in_use is None or not in_use.phase:
            return cls(
                StudioStatus.STOPPED,
                requested_phase=req_phase,
                requested_instance_id=req_id,
                requested_machine=req_machine,
            )
        phase = str(in_use.phase)
        status = _PHASE_TO_STATUS.get(phase, StudioStatus.PENDING)
        cc = in_use.compute_config
        startup = in_use.startup_status
        ready = status is StudioStatus.RUNNING and (
            startup is None or bool(startup.top_up_restore_finished)
        )
        return cls(
            status=status,
            phase=phase,
            instance_id=in_use.cloud_space_instance_id or "",
            machine=(cc.name or "") if cc is not None else "",
            interruptible=bool(cc.spot) if cc is not None else False,
            ready=ready,
            message=in_use.status_message or "",
            public_ip=in_use.public_ip_address or "",
            requested_phase=req_phase,
            requested_instance_id=req_id,
            requested_machine=req_machine,
        )

    def live_instance(self, exclude: frozenset[str] = frozenset()) -> str:
        """The id of a starting or running instance (in ``requested`` or ``inUse``)."""
        if (
            self.requested_instance_id
            and self.requested_phase not in _TERMINAL_PHASES
            and self.requested_instance_id not in exclude
        ):
            return self.requested_instance_id
        if (
            self.instance_id
            and self.phase not in _TERMINAL_PHASES
            and self.instance_id not in exclude
        ):
            return self.instance_id
        return ""

    def terminal_instances(self) -> frozenset[str]:
        out = set()
        if self.instance_id and self.phase in _TERMINAL_PHASES:
            out.add(self.instance_id)
        if self.requested_instance_id and self.requested_phase in _TERMINAL_PHASES:
            out.add(self.requested_instance_id)
        return frozenset(out)
