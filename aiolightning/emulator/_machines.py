"""The machine catalogue: accelerators the emulated cloud account offers.

Covers every slug `lightning_sdk.Machine` sends (§4.4 of wire-flows) plus the `x` variants of
the newest GPUs, so `Studio.start(Machine.X)` and job submission work for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MACHINES", "Machine", "find_machine", "valid_slugs"]


@dataclass(frozen=True, slots=True)
class Machine:
    slug: str
    family: str
    count: int  # GPUs for GPU machines, vCPUs for CPU machines
    gpu: bool
    instance_id: str
    cost: float

    def accelerator(self, cluster_id: str) -> dict[str, Any]:
        cpus = self.count if not self.gpu else 8 * self.count
        return {
            "slug": self.slug,
            "slugMultiCloud": self.slug,
            "instanceId": self.instance_id,
            "secondaryInstanceId": "",
            "family": self.family,
            "acceleratorType": "GPU" if self.gpu else "CPU",
            "displayName": f"{self.family} x{self.count}" if self.gpu else f"{self.count} CPU",
            "deviceCard": self.family if self.gpu else "",
            "deviceInfo": "",
            "resources": {
                "cpu": cpus,
                "gpu": self.count if self.gpu else 0,
                "cpus": str(cpus),
                "gpuType": self.family if self.gpu else "",
                "memoryMb": str(cpus * 4096),
                "storageGb": "400",
                "iops": "0",
                "throughput": "0",
                "extra": {},
            },
            "enabled": True,
            "outOfCapacity": False,
            "dwsSupported": False,
            "dwsOnly": False,
            "full": False,
            "provider": "AWS",
            "clusterId": cluster_id,
            "cost": self.cost,
            "spotPrice": round(self.cost * 0.4, 4),
            "originalCost": self.cost,
            "originalSpotPrice": round(self.cost * 0.4, 4),
            "capacityBlockPrice": 0,
            "dwsCost": 0,
            "availableZones": ["us-east-1a"],
            "allowedResources": [],
            "availabilityStrategy": "",
            "availableInSeconds": "0",
            "availableInSecondsSpot": "0",
            "byocOnly": False,
            "capacityBlockOnly": False,
            "capacityBlocksAvailable": [],
            "detailedQuotasInfo": [],
            "isCustom": False,
            "isTierRestricted": False,
            "lightningInterruptible": False,
            "localDiskIncluded": False,
            "localDiskSize": "0",
            "localDiskSupported": False,
            "localDisksCount": "0",
            "maxAvailableQuota": "0",
            "nonOndemand": False,
            "nonSpot": False,
            "partitionOnly": False,
            "partitionableParent": "",
            "partitionableParents": [],
            "persistentDiskSupported": True,
            "quotaCode": "",
            "quotaName": "",
            "quotaPageUrl": "",
            "quotaServiceCode": "",
            "quotaUtilization": "0",
            "quotaValue": "0",
            "reservable": False,
            "reservationAvailableZones": [],
            "reservationQuotaCode": "",
            "reservationQuotaName": "",
            "reservationQuotaPageUrl": "",
            "spotQuotaCode": "",
            "spotQuotaName": "",
            "spotQuotaPageUrl": "",
        }


def _cpu(slug: str, family: str, n: int, inst: str, cost: float) -> Machine:
    return Machine(slug, family, n, False, inst, cost)


def _gpu(slug: str, family: str, n: int, inst: str, cost: float) -> Machine:
    return Machine(slug, family, n, True, inst, cost)


MACHINES: tuple[Machine, ...] = (
    _cpu("cpu-2", "CPU", 2, "m6i.large", 0.1),
    _cpu("cpu-4", "CPU", 4, "m6i.xlarge", 0.2),
    _cpu("cpu-8", "CPU", 8, "m6i.2xlarge", 0.4),
    _cpu("cpu-16", "CPU", 16, "m6i.4xlarge", 0.8),
    _cpu("data-prep-mid", "DATA-PREP", 32, "m6i.8xlarge", 1.6),
    _cpu("data-prep-max-large", "DATA-PREP", 64, "m6i.16xlarge", 3.2),
    _cpu("data-prep-ultra-extra-large", "DATA-PREP", 96, "m6i.24xlarge", 4.8),
    _gpu("lit-t4-1-small", "T4", 1, "g4dn.xlarge", 0.5),
    _gpu("lit-t4-1", "T4", 1, "g4dn.2xlarge", 0.7),
    _gpu("lit-t4-2", "T4", 2, "g4dn.12xlarge-2", 1.4),
    _gpu("lit-t4-4", "T4", 4, "g4dn.12xlarge", 2.8),
    _gpu("lit-t4-8", "T4", 8, "g4dn.metal", 5.6),
    _gpu("lit-l4-1", "L4", 1, "g6.4xlarge", 0.9),
    _gpu("lit-l4-2", "L4", 2, "g6.12xlarge-2", 1.8),
    _gpu("lit-l4-4", "L4", 4, "g6.12xlarge", 3.6),
    _gpu("lit-l4-8", "L4", 8, "g6.48xlarge", 7.2),
    _gpu("lit-l40s-1", "L40S", 1, "g6e.4xlarge", 1.9),
    _gpu("lit-l40s-2", "L40S", 2, "g6e.12xlarge-2", 3.8),
    _gpu("lit-l40s-4", "L40S", 4, "g6e.12xlarge", 7.6),
    _gpu("lit-l40s-8", "L40S", 8, "g6e.48xlarge", 15.2),
    _gpu("lit-rtx-6000-pro-1", "RTX PRO", 1, "rtx-6000-pro-1", 2.0),
    _gpu("lit-rtx-6000-pro-2", "RTX PRO", 2, "rtx-6000-pro-2", 4.0),
    _gpu("lit-rtx-6000-pro-4", "RTX PRO", 4, "rtx-6000-pro-4", 8.0),
    _gpu("lit-rtx-6000-pro-8", "RTX PRO", 8, "rtx-6000-pro-8", 16.0),
    _gpu("lit-a100-1", "A100", 1, "a2-highgpu-1g", 2.5),
    _gpu("lit-a100-2", "A100", 2, "a2-highgpu-2g", 5.0),
    _gpu("lit-a100-4", "A100", 4, "a2-highgpu-4g", 10.0),
    _gpu("lit-a100-8", "A100", 8, "p4d.24xlarge", 20.0),
    _gpu("lit-a100-40gb-1", "A100", 1, "a100-40gb-1", 2.5),
    _gpu("lit-a100-40gb-2", "A100", 2, "a100-40gb-2", 5.0),
    _gpu("lit-a100-40gb-4", "A100", 4, "a100-40gb-4", 10.0),
    _gpu("lit-a100-40gb-8", "A100", 8, "a100-40gb-8", 20.0),
    _gpu("lit-a100-80gb-1", "A100", 1, "a2-ultragpu-1g", 3.0),
    _gpu("lit-a100-80gb-2", "A100", 2, "a2-ultragpu-2g", 6.0),
    _gpu("lit-a100-80gb-4", "A100", 4, "a2-ultragpu-4g", 12.0),
    _gpu("lit-a100-80gb-8", "A100", 8, "p4de.24xlarge", 24.0),
    _gpu("lit-h100-1", "H100", 1, "a3-highgpu-1g", 4.0),
    _gpu("lit-h100-2", "H100", 2, "a3-highgpu-2g", 8.0),
    _gpu("lit-h100-4", "H100", 4, "a3-highgpu-4g", 16.0),
    _gpu("lit-h100-8", "H100", 8, "p5.48xlarge", 32.0),
    _gpu("lit-h200-1", "H200", 1, "h200-1", 5.0),
    _gpu("lit-h200-2", "H200", 2, "h200-2", 10.0),
    _gpu("lit-h200-4", "H200", 4, "h200-4", 20.0),
    _gpu("lit-h200-8", "H200", 8, "p5e.48xlarge", 40.0),
    _gpu("lit-h200x-1", "H200", 1, "h200x-1", 5.0),
    _gpu("lit-b200-1", "B200", 1, "b200-1", 7.0),
    _gpu("lit-b200-8", "B200", 8, "p6-b200.48xlarge", 56.0),
    _gpu("lit-b200x-8", "B200", 8, "b200x-8", 56.0),
)

_BY_NAME: dict[str, Machine] = {}
for _m in MACHINES:
    _BY_NAME.setdefault(_m.slug, _m)
for _m in MACHINES:
    _BY_NAME.setdefault(_m.instance_id, _m)


def find_machine(name: str) -> Machine | None:
    """A machine by slug or instance type (what the SDK sends as `computeConfig.name`)."""
    return _BY_NAME.get(name)


def valid_slugs() -> list[str]:
    return [m.slug for m in MACHINES]
