"""The root of ``client.deployments``: find by name, get by name or id, refresh, list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from .._jobs_service import JobsServiceRoot
from .._polling import check_name, check_positive_int
from ._models import Deployment, DeploymentNotFoundError, DeploymentRef, DeploymentStatus

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


class DeploymentLookup(JobsServiceRoot):
    """The part of ``client.deployments`` that reads deployments; the others build on it."""

    async def find(
        self, name: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Deployment | None:
        """The deployment called ``name`` (``GET .../deployments/{name}/getbyname``), or None."""
        name = check_name(name, "deployment name")
        ts = await self._teamspace(teamspace)
        return await self._find(ts.id, name)

    async def _find(self, teamspace_id: str, name: str) -> Deployment | None:
        try:
            d = await self._api.get_deployment_by_name(teamspace_id, name)
        except NotFoundError:
            return None
        return Deployment.from_model(d, teamspace_id)

    async def get(
        self, name_or_id: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Deployment:
        """The deployment with this name or id."""
        key = check_name(name_or_id, "deployment name or id")
        ts = await self._teamspace(teamspace)
        found = await self._find(ts.id, key)
        if found is not None:
            return found
        try:
            return Deployment.from_model(await self._api.get_deployment(ts.id, key), ts.id)
        except NotFoundError:
            raise DeploymentNotFoundError(
                f"deployment {key!r} does not exist in teamspace {ts.name!r}"
            ) from None

    async def _resolve(
        self, deployment: DeploymentRef, teamspace: TeamspaceRef | Teamspace | None
    ) -> Deployment:
        if isinstance(deployment, Deployment):
            return deployment
        return await self.get(deployment, teamspace=teamspace)

    async def refresh(
        self, deployment: DeploymentRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Deployment:
        """The deployment as the service sees it now (``GET .../deployments/{id}``)."""
        d = await self._resolve(deployment, teamspace)
        try:
            fresh = await self._api.get_deployment(d.teamspace_id, d.id)
        except NotFoundError:
            raise DeploymentNotFoundError(f"deployment {d} no longer exists") from None
        return Deployment.from_model(fresh, d.teamspace_id)

    async def status(
        self, deployment: DeploymentRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> DeploymentStatus:
        return (await self.refresh(deployment, teamspace=teamspace)).status

    async def list(
        self,
        teamspace: TeamspaceRef | Teamspace | None = None,
        *,
        page_size: int | None = 100,
    ) -> AsyncIterator[Deployment]:
        """Every deployment of the teamspace, following ``nextPageToken``."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        ts = await self._teamspace(teamspace)
        async for d in self._api.list_deployments_iter(ts.id, limit=page_size):
            yield Deployment.from_model(d, ts.id)
