"""The multi-machine job record (its machines are jobs of the job store) and its store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._store import ProjectStore

__all__ = ["STATE_PREFIX", "MultiMachineJob", "MultiMachineJobStore"]

STATE_PREFIX = "MultiMachineJob_STATE_"


@dataclass(slots=True)
class MultiMachineJob:
    id: str
    seq: int
    name: str
    project_id: str
    user_id: str
    spec: dict[str, Any]
    machines: int
    job_ids: list[str]  # by rank
    tags: list[str]
    created: float
    max_run_attempts: int = 0
    fault_tolerance: dict[str, Any] | None = None
    desired_state: str = STATE_PREFIX + "RUNNING"
    updated: float = 0.0


class MultiMachineJobStore(ProjectStore[MultiMachineJob]):
    kind = "multi-machine job"

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[tuple[str, str], str] = {}  # (project id, name) -> id
