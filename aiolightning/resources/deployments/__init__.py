"""Deployments: models served behind an endpoint URL by replicas, with autoscaling bounds.

Wire facts are in wire-flows §5.10. The rooms: ``_models`` (value types and errors),
``_lookup`` (find/get/refresh/list), ``_lifecycle`` (idempotent create, update, delete and
the stop/start bodies), ``_waits`` (wait, stop, start, endpoint requests), ``_fleet``
(``create_many``/``stop_many``/``delete_many``) and ``_resource`` (:class:`Deployments`).
"""

from ._models import (
    AutoScale,
    BasicAuth,
    Deployment,
    DeploymentError,
    DeploymentNotFoundError,
    DeploymentRef,
    DeploymentRequest,
    DeploymentStatus,
    EndpointAuth,
    HealthCheck,
    TokenAuth,
)
from ._resource import Deployments
from ._waits import EndpointResponse

__all__ = [
    "AutoScale",
    "BasicAuth",
    "Deployment",
    "DeploymentError",
    "DeploymentNotFoundError",
    "DeploymentRef",
    "DeploymentRequest",
    "DeploymentStatus",
    "Deployments",
    "EndpointAuth",
    "EndpointResponse",
    "HealthCheck",
    "TokenAuth",
]
