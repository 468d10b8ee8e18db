"""Waiting on deployments (ready: the wanted replicas up *and* the endpoint answering;
stopped), stop and start with their waits, and requests to a deployment's endpoint."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

from ..._errors import InvalidArgumentError, LightningError
from .._polling import Deadline, WaitTimeoutError, check_timeout, poll_intervals
from ._lifecycle import DeploymentLifecycle
from ._models import (
    AutoScale,
    Deployment,
    DeploymentError,
    DeploymentRef,
    DeploymentStatus,
)

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


@dataclass(frozen=True, slots=True)
class EndpointResponse:
    """What a deployment's endpoint answered."""

    status: int
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class DeploymentWaits(DeploymentLifecycle):
    """``client.deployments``: wait, stop, start, and requests to the endpoint."""

    poll_initial = 0.3
    poll_cap = 5.0

    def _endpoint_auth(self, d: Deployment) -> dict[str, str]:
        """The Authorization header the deployment's endpoint wants (from its auth config)."""
        ep = d.raw.endpoint if d.raw is not None else None
        auth = ep.auth if ep is not None else None
        if auth is None or not auth.enabled:
            return {}
        if auth.token:
            return {"Authorization": f"Bearer {auth.token}"}
        if auth.username:
            pair = f"{auth.username}:{auth.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        creds = self._client.credentials
        if creds is not None and creds.api_key:
            return {"Authorization": f"Bearer {creds.api_key}"}
        header = self._client.transport.auth.header
        return {"Authorization": header} if header else {}

    async def request(
        self,
        deployment: DeploymentRef,
        method: str = "GET",
        path: str = "/",
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> EndpointResponse:
        """Send one request to the deployment's endpoint (``status.urls[0]`` + ``path``),
        with the credentials its auth wants (your API key for ``"api_key"``). Not retried;
        any HTTP status is returned, not raised."""
        check_timeout(timeout)
        d = await self._resolve(deployment, teamspace)
        if d.raw is None or not d.url:
            d = await self.refresh(d)
        if not d.url:
            raise DeploymentError(f"deployment {d} has no endpoint URL yet")
        if not path.startswith("/"):
            path = "/" + path
        send = {**self._endpoint_auth(d), **(headers or {})}
        data = None if json is None else msgspec.json.encode(json)
        if data is not None:
            send.setdefault("Content-Type", "application/json")
        session = self._client.transport.session
        try:
            async with session.request(
                method.upper(), d.url.rstrip("/") + path, data=data, headers=send,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:  # fmt: skip
                body = await resp.read()
                return EndpointResponse(resp.status, body, dict(resp.headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LightningError(f"deployment {d} endpoint unreachable: {exc!r}") from None

    async def _answers(self, d: Deployment) -> bool:
        try:
            return (await self.request(d, "GET", "/", timeout=10.0)).ok
        except LightningError:
            return False

    async def wait(
        self,
        deployment: DeploymentRef,
        *,
        until: DeploymentStatus = DeploymentStatus.READY,
        check_endpoint: bool = True,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = 900.0,  # noqa: ASYNC109
    ) -> Deployment:
        """Poll until the deployment is ``READY`` (every wanted replica ready and, with
        ``check_endpoint``, its endpoint answering ``GET /`` with a 2xx) or ``STOPPED``.
        Raises :class:`DeploymentError` if replicas fail, :class:`WaitTimeoutError` on
        timeout."""
        check_timeout(timeout)
        if until not in (DeploymentStatus.READY, DeploymentStatus.STOPPED):
            raise InvalidArgumentError(
                "until must be DeploymentStatus.READY or DeploymentStatus.STOPPED"
            )
        d = await self._resolve(deployment, teamspace)
        deadline = Deadline(timeout)
        intervals = poll_intervals(self.poll_initial, self.poll_cap)
        while True:
            d = await self.refresh(d)
            status = d.status
            if status is DeploymentStatus.FAILED:
                raise DeploymentError(
                    f"deployment {d} failed ({d.failing_replicas} failing replica(s))"
                )
            if status is until and (
                until is DeploymentStatus.STOPPED or not check_endpoint or await self._answers(d)
            ):
                return d
            if deadline.expired():
                raise WaitTimeoutError(
                    f"deployment {d} not {until.value} within {timeout:g} s "
                    f"(status {status.value}, {d.ready_replicas}/{d.replicas} ready)"
                )
            await deadline.sleep(next(intervals))

    async def stop(
        self,
        deployment: DeploymentRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 600.0,  # noqa: ASYNC109
    ) -> Deployment:
        """Scale to zero replicas (the deployment and its URL stay) and, with ``wait``,
        poll until every replica is gone. A no-op when already stopped."""
        check_timeout(timeout)
        d = await self._stop(await self._resolve(deployment, teamspace))
        if not wait:
            return d
        return await self.wait(d, until=DeploymentStatus.STOPPED, timeout=timeout)

    async def start(
        self,
        deployment: DeploymentRef,
        *,
        replicas: int = 1,
        autoscale: AutoScale | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 900.0,  # noqa: ASYNC109
    ) -> Deployment:
        """Start a stopped deployment with ``replicas`` replicas (or ``autoscale`` bounds) and,
        with ``wait``, wait until it is ready and answers."""
        self._check_start(replicas, autoscale)
        check_timeout(timeout)
        d = await self._start(await self._resolve(deployment, teamspace), replicas, autoscale)
        if not wait:
            return d
        return await self.wait(d, timeout=timeout)
