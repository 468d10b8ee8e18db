"""The fleet helpers of ``client.deployments``: create, stop and delete many, one
:class:`Outcome` per item in input order (a bad item fails alone, before any request of its
own; a retried create never makes a second deployment)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from ...fanout import AsyncOrSyncIterable, Outcome, ProgressCallback, map_outcomes
from .._bulk import check_bulk, check_bulk_item
from .._polling import check_positive_int, check_timeout
from ._models import Deployment, DeploymentRef, DeploymentRequest
from ._waits import DeploymentWaits

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef

_REQUESTS = "DeploymentRequest objects"
_REFS = "deployment names or Deployment objects"


def _is_request(item: object) -> bool:
    return isinstance(item, DeploymentRequest)


def _is_ref(item: object) -> bool:
    return isinstance(item, str | Deployment)


class DeploymentFleet(DeploymentWaits):
    """``client.deployments``: ``create_many``, ``stop_many``, ``delete_many``."""

    async def create_many(
        self,
        requests: AsyncOrSyncIterable[DeploymentRequest],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = False,
        timeout: float | None = 900.0,  # noqa: ASYNC109
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[DeploymentRequest, Deployment]]:
        """Create many deployments (and, with ``wait``, wait until each is ready)."""
        check_positive_int(concurrency, "concurrency")
        check_timeout(timeout)
        check_bulk(requests, "deployments.create_many", _REQUESTS, _is_request)

        async def one(req: DeploymentRequest) -> Deployment:
            check_bulk_item(req, "deployments.create_many", _REQUESTS, _is_request)
            d = await self._create(req, teamspace)
            return await self.wait(d, timeout=timeout) if wait else d

        return await map_outcomes(
            one, requests, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    async def stop_many(
        self,
        deployments: AsyncOrSyncIterable[DeploymentRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 600.0,  # noqa: ASYNC109
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[DeploymentRef, Deployment]]:
        """Scale many deployments to zero (and, with ``wait``, until their replicas are gone)."""
        check_positive_int(concurrency, "concurrency")
        check_timeout(timeout)
        check_bulk(deployments, "deployments.stop_many", _REFS, _is_ref)

        async def one(ref: DeploymentRef) -> Deployment:
            check_bulk_item(ref, "deployments.stop_many", _REFS, _is_ref)
            return await self.stop(ref, teamspace=teamspace, wait=wait, timeout=timeout)

        return await map_outcomes(
            one, deployments, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    async def delete_many(
        self,
        deployments: AsyncOrSyncIterable[DeploymentRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = True,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[DeploymentRef, None]]:
        """Delete many deployments."""
        check_positive_int(concurrency, "concurrency")
        check_bulk(deployments, "deployments.delete_many", _REFS, _is_ref)

        async def one(ref: DeploymentRef) -> None:
            check_bulk_item(ref, "deployments.delete_many", _REFS, _is_ref)
            await self.delete(ref, teamspace=teamspace, missing_ok=missing_ok)

        return await map_outcomes(
            one, deployments, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip
