"""Deployment records: the wanted replica count, the replicas coming up and going away.

A deployment's replicas are computed lazily from the times they were asked for. A replica
asked for at `t` is pending until `t + replica_start` (the job timings: pending + creating),
then ready; one no longer wanted is deleting for `replica_stop` (the job stop time), then
gone. The wanted count is `replicas`, raised to `autoscaling.minReplicas`, and 0 when
`autoscaling.maxReplicas` is 0 (the SDK's `stop()`); `replicas > maxReplicas` is allowed
(`start(replicas=N)` sends autoscaling 0..1 with `replicas: N`).

    currentState: PENDING (replicas coming up) → RUNNING (all ready)
                  → STOPPED (scaled to 0 by maxReplicas 0 or replicas 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._store import ProjectStore

__all__ = ["Deployment", "DeploymentStore", "Replica"]

_S = "DEPLOYMENT_STATE_"


@dataclass(slots=True)
class Replica:
    up_at: float  # ready from then on
    stop_at: float | None = None  # asked to go away
    gone_at: float | None = None


@dataclass(slots=True)
class Deployment:
    id: str
    seq: int
    name: str
    project_id: str
    user_id: str
    spec: dict[str, Any]
    autoscaling: dict[str, Any]
    endpoint: dict[str, Any]
    replicas: int  # as last asked (the answer shows the wanted count)
    created: float
    updated: float
    release_id: str
    strategy: dict[str, Any] | None = None
    cloudspace_id: str = ""
    desired_state: str = _S + "RUNNING"
    pods: list[Replica] = field(default_factory=list)

    def wanted(self) -> int:
        if int(self.autoscaling.get("maxReplicas") or 0) == 0 or self.desired_state == (
            _S + "STOPPED"
        ):
            return 0
        return max(self.replicas, int(self.autoscaling.get("minReplicas") or 0))

    def scale(self, now: float, start: float, stop: float) -> None:
        """Bring the replicas asked for or going away in line with `wanted()`."""
        live = [r for r in self.pods if r.stop_at is None]
        want = self.wanted()
        for _ in range(want - len(live)):
            self.pods.append(Replica(up_at=now + start))
        # the newest go first (the ones still coming up, before the ready ones)
        for r in sorted(live, key=lambda r: r.up_at, reverse=True)[: max(0, len(live) - want)]:
            r.stop_at = now
            r.gone_at = now + stop
        self.pods = [r for r in self.pods if r.gone_at is None or r.gone_at > now]

    def counts(self, now: float) -> tuple[int, int, int]:
        """(ready, pending, deleting) at `now`."""
        ready = pending = deleting = 0
        for r in self.pods:
            if r.stop_at is not None:
                if r.gone_at is not None and now < r.gone_at:
                    deleting += 1
            elif now >= r.up_at:
                ready += 1
            else:
                pending += 1
        return ready, pending, deleting

    def current_state(self, now: float) -> str:
        want = self.wanted()
        ready, _pending, _deleting = self.counts(now)
        if want == 0:
            return _S + "STOPPED"
        return _S + ("RUNNING" if ready >= want else "PENDING")


class DeploymentStore(ProjectStore[Deployment]):
    kind = "deployment"

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[tuple[str, str], str] = {}  # (project id, name) -> id
