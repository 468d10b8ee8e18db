"""The root that ``client.jobs`` and ``client.deployments`` share: both speak to the jobs
service (``client.api.jobs``) within a teamspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from ..api.jobs import JobsApi
    from .teamspaces import Teamspace, TeamspaceRef


class JobsServiceRoot:
    """The client, the jobs service's API group, and the teamspace resolution."""

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client

    @property
    def _api(self) -> JobsApi:
        return self._client.api.jobs

    async def _teamspace(self, teamspace: TeamspaceRef | Teamspace | None) -> Teamspace:
        return await self._client.teamspaces.resolve(teamspace)
