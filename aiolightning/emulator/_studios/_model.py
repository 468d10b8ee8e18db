"""The studio records and their `codestatus` state machine: instances, sessions, the store.

State is computed lazily from monotonic timestamps when read, so a fleet of studios costs
no tasks or timers. Lifecycle of an instance started at t0 with duration d
(`Timings.studio_start`):

    [t0, t0+d/2)  inUse PENDING
    [t0+d/2, t0+d) inUse RUNNING, startupStatus.initialRestoreFinished
    [t0+d, ...)   inUse RUNNING, initialRestoreFinished + topUpRestoreFinished  ("ready")
    stop at ts:   inUse STOPPING for `Timings.studio_stop`, then inUse null (Stopped)

Each start creates a new `cloudSpaceInstanceId`. A machine switch (`PUT codeconfig` while
running) puts a new instance in `requested` (initialRestoreFinished after
`Timings.studio_switch`); `switch-confirm` promotes it to `inUse`, topUpRestoreFinished
shortly after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._commands import Program
from .._store import ProjectStore

__all__ = [
    "PENDING",
    "RUNNING",
    "STOPPING",
    "Instance",
    "Session",
    "Studio",
    "StudioStore",
    "phase_at",
]

PENDING = "CLOUD_SPACE_INSTANCE_STATE_PENDING"
RUNNING = "CLOUD_SPACE_INSTANCE_STATE_RUNNING"
STOPPING = "CLOUD_SPACE_INSTANCE_STATE_STOPPING"


@dataclass(slots=True)
class Instance:
    id: str
    machine: str
    spot: bool
    started: float
    running_at: float
    initial_at: float
    topup_at: float | None
    stop_at: float | None = None
    stopped_at: float | None = None


@dataclass(slots=True)
class Session:
    name: str
    command: str
    started: float
    program: Program


@dataclass(slots=True)
class Studio:
    id: str
    seq: int
    name: str
    display_name: str
    project_id: str
    cluster_id: str
    user_id: str
    created: float
    updated: float
    template_id: str
    machine: str
    spot: bool
    env: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # other updatable fields
    disable_auto_shutdown: bool = False
    idle_shutdown_seconds: int = 3600
    kept_alive_at: float | None = None  # the last keep-alive (simulated clock)
    instance: Instance | None = None
    requested: Instance | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # registered lightning runs
    sessions: dict[str, Session] = field(default_factory=dict)
    session_seq: int = 0
    status_cache: tuple[Any, bytes] | None = None


class StudioStore(ProjectStore[Studio]):
    kind = "cloudspace"

    def id_by_name(self, project_id: str, name: str) -> str | None:
        """The id of the studio called `name` in the project (the storage module's hook)."""
        return self.by_name.get((project_id, name))

    def settle(self, s: Studio, now: float) -> None:
        """Drop instances whose stop has completed."""
        inst = s.instance
        if inst is not None and inst.stopped_at is not None and now >= inst.stopped_at:
            s.instance = None


def phase_at(inst: Instance, now: float) -> str:
    if inst.stop_at is not None and now >= inst.stop_at:
        return STOPPING
    return RUNNING if now >= inst.running_at else PENDING
