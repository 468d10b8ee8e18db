"""Creating, updating, stopping, starting and deleting one deployment (wire-flows §5.10).

Idempotency: each create carries a random ``AIOLIGHTNING_CREATE_ID`` environment variable.
A create that fails ambiguously (5xx, timeout, dropped connection after sending) or answers
409 "already exists" is checked with ``GET .../deployments/{name}/getbyname``: when the
deployment found carries *this* create's marker, our earlier attempt went through and it is
returned; a retried create therefore never makes a second deployment. Updates are ``PUT``\\ s
of the whole deployment (idempotent: the transport re-sends them itself).
"""

from __future__ import annotations

import builtins
import random
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from ..._errors import (
    ConflictError,
    InvalidArgumentError,
    LightningError,
    NotFoundError,
    RateLimitError,
)
from .._polling import check_name, check_positive_int, check_workload, is_ambiguous
from .._reconcile import delete_once, no_ambiguous_resend
from ..machines import resolve_machine
from ._lookup import DeploymentLookup
from ._models import (
    AutoScale,
    BasicAuth,
    Deployment,
    DeploymentRef,
    DeploymentRequest,
    EndpointAuth,
    HealthCheck,
    TokenAuth,
)

if TYPE_CHECKING:
    from ..machines import Machine
    from ..studios import Studio
    from ..teamspaces import Teamspace, TeamspaceRef

CREATE_ID_ENV = "AIOLIGHTNING_CREATE_ID"
_METRICS = ("CPU", "GPU")


def _check_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{what} must be an integer >= 0, got {value!r}")
    return value


def check_autoscale(a: AutoScale) -> None:
    lo = _check_count(a.min_replicas, "autoscale.min_replicas")
    hi = _check_count(a.max_replicas, "autoscale.max_replicas")
    if lo > hi:
        raise InvalidArgumentError(f"autoscale.min_replicas ({lo}) > max_replicas ({hi})")
    if a.metric not in _METRICS:
        raise InvalidArgumentError(f"autoscale.metric must be one of {_METRICS}, got {a.metric!r}")
    if isinstance(a.target, bool) or not isinstance(a.target, int) or not 0 <= a.target <= 100:
        raise InvalidArgumentError(f"autoscale.target must be 0..100 (percent), got {a.target!r}")


def _autoscaling(a: AutoScale) -> dict[str, Any]:
    return {
        "enabled": True,
        "minReplicas": a.min_replicas,
        "maxReplicas": a.max_replicas,
        "targetMetric": [{"name": a.metric, "target": str(a.target)}],
    }


def _auth(auth: EndpointAuth) -> dict[str, Any]:
    if auth is None:
        return {"enabled": False}
    if auth == "api_key":
        return {"enabled": True, "userApiKey": True}
    if isinstance(auth, TokenAuth):
        return {"enabled": True, "token": auth.token}
    if isinstance(auth, BasicAuth):
        return {"enabled": True, "username": auth.username, "password": auth.password}
    raise InvalidArgumentError(
        "auth must be 'api_key', TokenAuth(token), BasicAuth(username, password) or None"
    )


def _probe(h: HealthCheck | None) -> dict[str, Any]:
    h = h or HealthCheck()
    probe: dict[str, Any] = {
        "failureThreshold": h.failure_threshold,
        "initialDelaySeconds": h.initial_delay,
        "intervalSeconds": h.interval,
        "timeoutSeconds": h.timeout,
    }
    if h.path is not None:
        probe["httpGet"] = {"path": h.path, **({"port": h.port} if h.port else {})}
    return probe


def _env(
    env: Mapping[str, str] | None, secrets: Mapping[str, str] | None
) -> builtins.list[dict[str, str]]:
    out = [{"name": str(k), "value": str(v)} for k, v in (env or {}).items()]
    out += [{"name": str(k), "fromSecret": str(s)} for k, s in (secrets or {}).items()]
    return out


class DeploymentLifecycle(DeploymentLookup):
    """``client.deployments``: create, update, stop, start and delete deployments."""

    @staticmethod
    def _validate(req: DeploymentRequest) -> None:
        check_name(req.name, "deployment name")
        check_workload(req.image, req.studio, req.command, "deployment")
        resolve_machine(req.machine)
        _check_count(req.replicas, "replicas")
        if req.autoscale is not None:
            check_autoscale(req.autoscale)
        if isinstance(req.ports, int) or not req.ports:
            raise InvalidArgumentError("ports must be a non-empty sequence of port numbers")
        for p in req.ports:
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
                raise InvalidArgumentError(f"port must be 1..65535, got {p!r}")
        for k in req.env or {}:
            check_name(k, "env variable name")
        for k, s in (req.secrets or {}).items():
            check_name(k, "env variable name")
            check_name(s, "secret name")
        _auth(req.auth)
        if req.health_check is not None:
            h = req.health_check
            for what in ("initial_delay", "interval", "timeout", "failure_threshold"):
                _check_count(getattr(h, what), f"health_check.{what}")

    def _body(
        self, req: DeploymentRequest, studio: Studio | None, cluster_id: str, marker: str
    ) -> dict[str, Any]:
        machine = resolve_machine(req.machine)
        auto = req.autoscale or AutoScale(req.replicas, req.replicas)
        env = _env(req.env, req.secrets)
        env.append({"name": CREATE_ID_ENV, "value": marker})
        spec: dict[str, Any] = {
            "clusterId": cluster_id,
            "command": req.command or "",
            "image": req.image or "",
            "instanceName": machine.value,
            "env": env,
            "spot": bool(req.interruptible),
            "includeCredentials": True,
            "pathMappings": [],
            "readinessProbe": _probe(req.health_check),
        }
        body: dict[str, Any] = {
            "name": req.name,
            "replicas": req.replicas,
            "autoscaling": _autoscaling(auto),
            "clusterId": cluster_id,
            "endpoint": {"ports": [str(p) for p in req.ports], "auth": _auth(req.auth)},
            "spec": spec,
        }
        if studio is not None:
            spec["cloudspaceId"] = body["cloudspaceId"] = studio.id
        return body

    async def create(
        self,
        name: str,
        *,
        image: str | None = None,
        studio: Studio | str | None = None,
        command: str | None = None,
        machine: Machine | str | None = None,
        replicas: int = 1,
        autoscale: AutoScale | None = None,
        ports: tuple[int, ...] | builtins.list[int] = (8080,),
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        health_check: HealthCheck | None = None,
        auth: EndpointAuth = "api_key",
        interruptible: bool = False,
        cloud_account: str | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> Deployment:
        """Create a deployment serving ``command`` in a docker ``image`` or a ``studio``'s
        environment on ``machine`` (default ``cpu-4``), with ``replicas`` replicas (fixed,
        unless ``autoscale`` gives bounds), reachable on ``ports`` behind ``auth``
        (``"api_key"``: Lightning API keys; :class:`TokenAuth`; :class:`BasicAuth`; None:
        public). ``secrets`` maps env variable names to teamspace secret names.

        Arguments are checked before any request; a name already taken raises
        :class:`ConflictError`. Returns at once: use :meth:`wait` for readiness."""
        req = DeploymentRequest(
            name=name, image=image, studio=studio, command=command, machine=machine,
            replicas=replicas, autoscale=autoscale, ports=tuple(ports), env=env, secrets=secrets,
            health_check=health_check, auth=auth, interruptible=interruptible,
            cloud_account=cloud_account,
        )  # fmt: skip
        return await self._create(req, teamspace)

    async def _create(
        self, req: DeploymentRequest, teamspace: TeamspaceRef | Teamspace | None
    ) -> Deployment:
        self._validate(req)
        ts = await self._teamspace(teamspace)
        studio: Studio | None = None
        if req.studio is not None:
            studio = await self._client.studios._resolve(req.studio, ts)
            cluster_id = studio.cluster_id
        else:
            cluster_id = req.cloud_account or ts.default_cluster or ""
        marker = uuid.uuid4().hex
        body = self._body(req, studio, cluster_id, marker)
        attempt = 0
        while True:
            attempt += 1
            try:
                return Deployment.from_model(
                    await self._api.create_deployment(ts.id, body=body), ts.id
                )
            except ConflictError:
                found = await self._find_created(ts.id, req.name, marker)
                if found is not None:
                    return found  # an earlier attempt of ours got through
                raise
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)) or attempt >= 6:
                    raise
                found = await self._find_created(ts.id, req.name, marker)
                if found is not None:
                    return found
                await anyio.sleep(random.uniform(0.05, 0.3) * attempt)

    async def _find_created(self, teamspace_id: str, name: str, marker: str) -> Deployment | None:
        found = await self._find(teamspace_id, name)
        if found is None or found.raw is None or found.raw.spec is None:
            return None
        for var in found.raw.spec.env or []:
            if var.name == CREATE_ID_ENV:
                return found if var.value == marker else None
        return None

    async def _put(self, d: Deployment, change: dict[str, Any]) -> Deployment:
        """``PUT`` the deployment as just read, with ``change`` merged in (one level deep)."""
        fresh = await self.refresh(d)
        assert fresh.raw is not None
        body: dict[str, Any] = msgspec.to_builtins(fresh.raw)
        for key, value in change.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
        resp = await self._api.update_deployment(fresh.teamspace_id, fresh.id, body=body)
        return Deployment.from_model(resp, fresh.teamspace_id)

    async def update(
        self,
        deployment: DeploymentRef,
        *,
        machine: Machine | str | None = None,
        replicas: int | None = None,
        autoscale: AutoScale | None = None,
        command: str | None = None,
        image: str | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> Deployment:
        """Change the machine, replica count, autoscaling bounds, command or image (a change
        of machine, command or image rolls out a new release). Returns at once."""
        change: dict[str, Any] = {}
        spec: dict[str, Any] = {}
        if machine is not None:
            spec["instanceName"] = resolve_machine(machine).value
            spec["instanceType"] = ""
        if command is not None:
            if not isinstance(command, str):
                raise InvalidArgumentError(f"command must be a string, got {command!r}")
            spec["command"] = command
        if image is not None:
            spec["image"] = check_name(image, "image")
        if spec:
            change["spec"] = spec
        if replicas is not None:
            change["replicas"] = _check_count(replicas, "replicas")
        if autoscale is not None:
            check_autoscale(autoscale)
            change["autoscaling"] = _autoscaling(autoscale)
        if not change:
            raise InvalidArgumentError(
                "nothing to update: give machine, replicas, autoscale, command or image"
            )
        d = await self._resolve(deployment, teamspace)
        return await self._put(d, change)

    async def _stop(self, d: Deployment) -> Deployment:
        """Scale to zero as the SDK does (``autoscaling`` 0..0); a no-op when stopped."""
        fresh = await self.refresh(d)
        if fresh.replicas == 0 and fresh.max_replicas == 0:
            return fresh
        return await self._put(fresh, {"autoscaling": {"minReplicas": 0, "maxReplicas": 0}})

    async def _start(self, d: Deployment, replicas: int, autoscale: AutoScale | None) -> Deployment:
        auto = autoscale or AutoScale(replicas, replicas)
        change = {
            "desiredState": "DEPLOYMENT_STATE_RUNNING",
            "replicas": replicas,
            "autoscaling": _autoscaling(auto),
        }
        return await self._put(d, change)

    async def delete(
        self,
        deployment: DeploymentRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete the deployment (``DELETE .../deployments/{id}``). Re-sent after an
        ambiguous failure; a 404 to a re-sent DELETE means the first one deleted it."""
        policy = no_ambiguous_resend(self._client.transport.retry)
        try:
            d = await self._resolve(deployment, teamspace)
            await delete_once(
                lambda: self._api.delete_deployment(d.teamspace_id, d.id, retry=policy)
            )
        except NotFoundError:
            if not missing_ok:
                raise

    @staticmethod
    def _check_start(replicas: int, autoscale: AutoScale | None) -> None:
        check_positive_int(replicas, "replicas")
        if autoscale is not None:
            check_autoscale(autoscale)
