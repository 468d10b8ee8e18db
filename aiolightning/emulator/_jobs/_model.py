"""The job records and their lazily computed states, and the store that de-duplicates names.

States are lower-case strings computed lazily from the job's creation time and the
durations in `Timings` captured when the job was created:

    pending (job_pending) → creating (job_creating) → running (job_running)
      → complete | fail (job_finishing) → completed | failed
    PUT {"state": "stop"} while not terminal → stopping (job_stop) → stopped

The outcome defaults to `Timings.job_outcome`. A job overrides it with env vars in its spec:
`EMULATOR_OUTCOME=fail|complete`, and `EMULATOR_RUNNING_SECONDS=<float>` for how long it
runs. Duplicate names are de-duplicated by the server (`name-2`, `name-3`, ...), as the
SDK expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._store import ProjectStore

__all__ = ["TERMINAL", "Job", "JobStore"]

TERMINAL = frozenset({"completed", "failed", "stopped"})


@dataclass(slots=True)
class Job:
    id: str
    seq: int
    name: str
    project_id: str
    user_id: str
    spec: dict[str, Any]
    tags: list[str]  # tag ids
    created: float
    t_creating: float
    t_running: float
    t_finishing: float
    t_done: float
    outcome: str  # "complete" | "fail"
    stop_at: float | None = None
    stopped_at: float | None = None
    updated: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    json_cache: tuple[Any, bytes] | None = None  # a finished job's encoded JSON

    def state_at(self, now: float) -> str:
        if self.stop_at is not None and self.stopped_at is not None:
            return "stopped" if now >= self.stopped_at else "stopping"
        if now < self.t_creating:
            return "pending"
        if now < self.t_running:
            return "creating"
        if now < self.t_finishing:
            return "running"
        if now < self.t_done:
            return self.outcome
        return "completed" if self.outcome == "complete" else "failed"

    def ended_at(self, now: float) -> float | None:
        if self.stopped_at is not None:
            return self.stopped_at if now >= self.stopped_at else None
        return self.t_done if now >= self.t_done else None


class JobStore(ProjectStore[Job]):
    kind = "job"

    def unique_name(self, project_id: str, name: str) -> str:
        if (project_id, name) not in self.by_name:
            return name
        n = 2
        while (project_id, f"{name}-{n}") in self.by_name:
            n += 1
        return f"{name}-{n}"
