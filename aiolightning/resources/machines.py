"""Machines: the slugs users pick (``cpu-4``, ``lit-a100-1`` ...) and what a teamspace offers.

``Machine`` is a ``StrEnum``; every call that takes a machine also accepts a plain string
(the slug, case-insensitive, or the member name such as ``"A100"``). Anything else is rejected
with :class:`~aiolightning.InvalidArgumentError` *before any request is sent*; the message
lists the valid slugs.

``client.machines.list(teamspace)`` asks the service which accelerators the teamspace's cloud
accounts offer (wire-flows §3.3).
"""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgumentError

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from .teamspaces import Teamspace, TeamspaceRef

__all__ = ["DEFAULT_MACHINE", "Machine", "MachineInfo", "Machines", "resolve_machine"]


class Machine(enum.StrEnum):
    """The machine slugs Lightning users know (what the SDK sends as ``computeConfig.name``)."""

    CPU_X_2 = "cpu-2"
    CPU_X_4 = "cpu-4"
    CPU_X_8 = "cpu-8"
    T4 = "lit-t4-1"
    T4_X_2 = "lit-t4-2"
    L4 = "lit-l4-1"
    A100 = "lit-a100-1"
    A100_X_8 = "lit-a100-8"
    H100 = "lit-h100-1"
    H100_X_8 = "lit-h100-8"
    H200 = "lit-h200x-1"
    B200_X_8 = "lit-b200x-8"

    # friendly aliases (same values)
    CPU = "cpu-4"
    CPU_SMALL = "cpu-2"


#: What studios start on and jobs run on when no machine is given.
DEFAULT_MACHINE = Machine.CPU_X_4

_BY_NAME: dict[str, Machine] = {}
for _name, _member in Machine.__members__.items():
    _BY_NAME[_name.lower()] = _member
    _BY_NAME[_member.value] = _member


def valid_machine_slugs() -> list[str]:
    return [m.value for m in Machine]


def resolve_machine(machine: Machine | str | None) -> Machine:
    """Validate a machine given as enum member, slug or member name.

    ``None`` means the default (``cpu-4``). Raises :class:`InvalidArgumentError` (a
    ``ValueError``) listing the valid slugs for anything else.
    """
    if machine is None:
        return DEFAULT_MACHINE
    if isinstance(machine, Machine):
        return machine
    if isinstance(machine, str):
        key = machine.strip().lower()
        found = _BY_NAME.get(key) or _BY_NAME.get(key.replace("-", "_"))
        if found is not None:
            return found
    raise InvalidArgumentError(
        f"unknown machine {machine!r}; valid machines are: {', '.join(valid_machine_slugs())}"
    )


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """One accelerator a teamspace's cloud account offers."""

    slug: str
    cluster_id: str
    family: str = ""
    instance_type: str = ""
    accelerator_type: str = ""  # "GPU" or "CPU"
    gpus: int = 0
    cpus: int = 0
    enabled: bool = True
    out_of_capacity: bool = False
    provider: str = ""
    cost: float | None = None
    spot_price: float | None = None
    slug_multi_cloud: str = ""

    @property
    def machine(self) -> Machine | None:
        """The :class:`Machine` this accelerator is, if it is one of the known slugs."""
        for candidate in (self.slug, self.slug_multi_cloud):
            if candidate:
                found = _BY_NAME.get(candidate.lower())
                if found is not None:
                    return found
        return None


def _as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _info_from(acc: Any, cluster_id: str) -> MachineInfo:
    resources = getattr(acc, "resources", None)
    return MachineInfo(
        slug=acc.slug or "",
        cluster_id=acc.cluster_id or cluster_id,
        family=acc.family or "",
        instance_type=acc.instance_id or "",
        accelerator_type=acc.accelerator_type or "",
        gpus=_as_int(getattr(resources, "gpu", 0)) if resources is not None else 0,
        cpus=_as_int(getattr(resources, "cpu", 0)) if resources is not None else 0,
        enabled=bool(acc.enabled) if acc.enabled is not None else True,
        out_of_capacity=bool(acc.out_of_capacity),
        provider=acc.provider or "",
        cost=acc.cost,
        spot_price=acc.spot_price,
        slug_multi_cloud=acc.slug_multi_cloud or "",
    )


_GLOBAL = "CLUSTER_TYPE_GLOBAL"
_PROVIDER_FIELDS = {
    "aws_v1": "AWS",
    "google_cloud_v1": "GCP",
    "lambda_labs_v1": "LAMBDA_LABS",
    "nebius_v1": "NEBIUS",
    "machine_v1": "LIGHTNING",
}


def _provider_of(cluster: Any) -> str:
    spec = getattr(cluster, "spec", None)
    if spec is None:
        return ""
    for attr, provider in _PROVIDER_FIELDS.items():
        if getattr(spec, attr, None) is not None:
            return provider
    driver = getattr(spec, "driver", None) or ""
    return str(driver).removeprefix("CLOUD_PROVIDER_") if driver else ""


class Machines:
    """``client.machines``: validation helpers and the accelerators a teamspace offers."""

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client

    @staticmethod
    def resolve(machine: Machine | str | None) -> Machine:
        return resolve_machine(machine)

    async def list(
        self, teamspace: TeamspaceRef | Teamspace | None = None, *, enabled_only: bool = True
    ) -> builtins.list[MachineInfo]:
        """The accelerators the teamspace's cloud accounts offer (wire-flows §3.3).

        For each cloud account bound to the teamspace: a GLOBAL account's accelerators come
        from ``GET /v1/core/accelerators?cloudProvider=..&projectId=..``, any other account's
        from ``GET /v1/core/clusters/{id}/accelerators``.
        """
        ts = await self._client.teamspaces.resolve(teamspace)
        api = self._client.api.cluster
        clusters = (await api.list_clusters(project_id=ts.id)).clusters or []
        out: builtins.list[MachineInfo] = []
        seen: set[tuple[str, str]] = set()
        for cluster in clusters:
            cid = cluster.id or ""
            spec = getattr(cluster, "spec", None)
            ctype = getattr(spec, "cluster_type", None) if spec is not None else None
            resp: Any
            if ctype == _GLOBAL:
                resp = await api.list_default_cluster_accelerators(
                    cloud_provider=_provider_of(cluster) or None, project_id=ts.id
                )
            else:
                resp = await api.list_cluster_accelerators(id=cid, org_id=ts.org_id or "")
            for acc in resp.accelerator or []:
                info = _info_from(acc, cid)
                if enabled_only and not info.enabled:
                    continue
                key = (info.slug, info.cluster_id)
                if key in seen:
                    continue
                seen.add(key)
                out.append(info)
        return out
