"""The ``client.deployments`` resource: :class:`Deployments`, made of the other rooms' mixins."""

from __future__ import annotations

from ._fleet import DeploymentFleet


class Deployments(DeploymentFleet):
    """``client.deployments``."""
