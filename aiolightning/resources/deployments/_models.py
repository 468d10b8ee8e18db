"""The deployment value types: status, the deployment as read, autoscaling, health check,
endpoint auth, and the create request of :meth:`Deployments.create_many`.

Wire facts in wire-flows §5.10: ``minReplicas``/``maxReplicas`` are int64 (JSON strings on
the way back), the ``status.*Replicas`` counts are ints, ``status.urls`` the endpoint URLs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ... import models
from ..._errors import LightningError, NotFoundError

if TYPE_CHECKING:
    from ..machines import Machine
    from ..studios import Studio


class DeploymentStatus(enum.StrEnum):
    PENDING = "pending"  # replicas wanted, not all ready yet (starting or scaling up)
    READY = "ready"  # the wanted replicas are ready
    STOPPING = "stopping"  # scaled to zero, replicas still going away
    STOPPED = "stopped"  # no replica wanted or left
    FAILED = "failed"


class DeploymentNotFoundError(NotFoundError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class DeploymentError(LightningError):
    """A deployment failed (failing replicas, or the service says so)."""


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment as last read. Pass it (or its name or id) to ``client.deployments``."""

    id: str
    name: str
    teamspace_id: str
    replicas: int = 0  # the wanted count
    min_replicas: int = 0
    max_replicas: int = 0
    ready_replicas: int = 0
    pending_replicas: int = 0
    failing_replicas: int = 0
    deleting_replicas: int = 0
    urls: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    machine: str = ""
    image: str = ""
    command: str = ""
    state: str = ""  # currentState, DEPLOYMENT_STATE_*
    release_id: str = ""
    raw: models.V1Deployment | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> DeploymentStatus:
        if self.failing_replicas > 0 or self.state == "DEPLOYMENT_STATE_FAILED":
            return DeploymentStatus.FAILED
        if self.replicas == 0:
            left = self.ready_replicas + self.pending_replicas + self.deleting_replicas
            return DeploymentStatus.STOPPING if left else DeploymentStatus.STOPPED
        if self.ready_replicas >= self.replicas:
            return DeploymentStatus.READY
        return DeploymentStatus.PENDING

    @property
    def url(self) -> str:
        """The first endpoint URL ("" if none)."""
        return self.urls[0] if self.urls else ""

    @classmethod
    def from_model(cls, d: models.V1Deployment, teamspace_id: str = "") -> Deployment:
        st, auto, spec, ep = d.status, d.autoscaling, d.spec, d.endpoint
        return cls(
            id=d.id or "",
            name=d.name or "",
            teamspace_id=d.project_id or teamspace_id,
            replicas=d.replicas or 0,
            min_replicas=_int(auto.min_replicas) if auto else 0,
            max_replicas=_int(auto.max_replicas) if auto else 0,
            ready_replicas=(st.ready_replicas or 0) if st else 0,
            pending_replicas=(st.pending_replicas or 0) if st else 0,
            failing_replicas=(st.failing_replicas or 0) if st else 0,
            deleting_replicas=(st.deleting_replicas or 0) if st else 0,
            urls=tuple((st.urls if st else None) or (ep.urls if ep else None) or ()),
            ports=tuple(_int(p) for p in ((ep.ports if ep else None) or ())),
            machine=(spec.instance_name or spec.instance_type or "") if spec else "",
            image=(spec.image or "") if spec else "",
            command=(spec.command or "") if spec else "",
            state=str(d.current_state or ""),
            release_id=d.release_id or "",
            raw=d,
        )

    def __str__(self) -> str:
        return self.name or self.id


#: A deployment given as a :class:`Deployment`, its name, or its id.
DeploymentRef = Deployment | str

Metric = Literal["CPU", "GPU"]


@dataclass(frozen=True, slots=True)
class AutoScale:
    """Autoscaling bounds and the metric the service scales on (``target`` percent)."""

    min_replicas: int = 0
    max_replicas: int = 1
    metric: Metric = "CPU"
    target: int = 90


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """The replicas' readiness probe: an HTTP GET of ``path`` on ``port`` (or the first
    endpoint port), or the service's default probe when ``path`` is None."""

    path: str | None = None
    port: int | None = None
    initial_delay: int = 0
    interval: int = 1
    timeout: int = 60
    failure_threshold: int = 3600


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """The endpoint wants ``Authorization: Bearer <token>``."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """The endpoint wants HTTP Basic credentials."""

    username: str
    password: str = field(repr=False)


#: ``"api_key"``: callers authenticate with a Lightning API key (the SDK's default);
#: ``None``: the endpoint is public.
EndpointAuth = Literal["api_key"] | TokenAuth | BasicAuth | None


@dataclass(frozen=True, slots=True)
class DeploymentRequest:
    """Arguments of one :meth:`Deployments.create`, for :meth:`Deployments.create_many`."""

    name: str
    image: str | None = None
    studio: Studio | str | None = None
    command: str | None = None
    machine: Machine | str | None = None
    replicas: int = 1
    autoscale: AutoScale | None = None
    ports: tuple[int, ...] = (8080,)
    env: Mapping[str, str] | None = None
    secrets: Mapping[str, str] | None = None  # env variable name -> secret name
    health_check: HealthCheck | None = None
    auth: EndpointAuth = "api_key"
    interruptible: bool = False
    cloud_account: str | None = None
