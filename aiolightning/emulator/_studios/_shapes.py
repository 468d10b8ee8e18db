"""The JSON shapes of a studio: its record, its codeconfig and its codestatus (re-rendered
only when the state machine has moved on)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .._machines import find_machine
from .._validation import filled
from ._model import PENDING, RUNNING, STOPPING, Instance, Studio, phase_at

if TYPE_CHECKING:
    from .._state import State

__all__ = ["codeconfig_json", "codestatus_bytes", "codestatus_json", "studio_json"]


def _compute_config(name: str, spot: bool) -> dict[str, Any]:
    return filled(
        "V1UserRequestedComputeConfig",
        {
            "name": name,
            "spot": spot,
            "count": 1,
            "diskSize": 400,
            "shmSize": 0,
            "id": "",
            "clusterOverride": "",
            "placementGroupId": "",
            "requestedRunDurationSeconds": "0",
            "affinityIdentifier": "",
            "cpuImageOverride": "",
            "gpuImageOverride": "",
            "sameComputeOnResume": False,
        },
    )


def _instance_json(st: State, s: Studio, inst: Instance, now: float) -> dict[str, Any]:
    phase = phase_at(inst, now)
    stopping = phase == STOPPING
    initial = not stopping and now >= inst.initial_at
    topup = not stopping and inst.topup_at is not None and now >= inst.topup_at
    if stopping:
        message = "Stopping"
    elif topup:
        message = "Running"
    elif phase == RUNNING:
        message = "Restoring files"
    else:
        message = "Starting machine"
    m = find_machine(inst.machine)
    ip_tail = int(inst.id[-4:], 16) % 250 + 1
    return filled(
        "Externalv1CloudSpaceInstanceStatus",
        {
            "cloudSpaceId": s.id,
            "cloudSpaceInstanceId": inst.id,
            "clusterId": s.cluster_id,
            "phase": phase,
            "statusMessage": message,
            "computeConfig": _compute_config(inst.machine, inst.spot),
            "startupStatus": filled(
                "V1CloudSpaceInstanceStartupStatus",
                {
                    "initialRestoreFinished": initial,
                    "topUpRestoreFinished": topup,
                    "startedAt": st.iso(inst.started),
                    "initialRestoreAt": st.iso(inst.initial_at) if initial else None,
                    "topUpRestoreAt": st.iso(inst.topup_at) if topup else None,
                    "stageProgress": [],
                },
            ),
            "creationTimestamp": st.iso(inst.started),
            "startTimestamp": st.iso(inst.running_at) if phase != PENDING else None,
            "instanceId": f"i-{inst.id[-17:]}",
            "instanceRegion": "us-east-1",
            "publicIpAddress": f"198.51.100.{ip_tail}" if phase == RUNNING else "",
            "privateIpAddress": f"10.0.0.{ip_tail}" if phase == RUNNING else "",
            "price": (m.cost * (0.4 if inst.spot else 1.0)) if m else 0,
            "free": False,
            "alerts": [],
            "dataConnectionMounts": [],
            "startupStages": [],
            "startupPhase": "",
            "startupPercentage": "100" if topup else "0",
            "startupEtaSeconds": "0",
            "bytesToSync": "0",
            "filesToSync": "0",
            "sshPort": 22,
            "sshHost": "",
            "sshUsername": "",
            "requiresMaintenance": False,
        },
    )


def _instance_key(inst: Instance | None, now: float) -> tuple[Any, ...] | None:
    """What the instance's status depends on at `now` (its JSON is a function of this)."""
    if inst is None:
        return None
    stopping = inst.stop_at is not None and now >= inst.stop_at
    return (
        inst.id,
        inst.machine,
        inst.spot,
        stopping,
        now >= inst.running_at,
        now >= inst.initial_at,
        inst.topup_at is not None and now >= inst.topup_at,
    )


def codestatus_bytes(st: State, s: Studio, now: float) -> bytes:
    """The encoded codestatus, re-rendered only when the state machine has moved on."""
    st.studios.settle(s, now)
    key = (_instance_key(s.instance, now), _instance_key(s.requested, now))
    cached = s.status_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    body = msgspec.json.encode(codestatus_json(st, s, now))
    s.status_cache = (key, body)
    return body


def codestatus_json(st: State, s: Studio, now: float) -> dict[str, Any]:
    st.studios.settle(s, now)
    return {
        "inUse": _instance_json(st, s, s.instance, now) if s.instance else None,
        "requested": _instance_json(st, s, s.requested, now) if s.requested else None,
        "collabSession": None,
        "collabStatus": None,
    }


def codeconfig_json(s: Studio) -> dict[str, Any]:
    machine, spot = s.machine, s.spot
    if s.instance is not None:
        machine, spot = s.instance.machine, s.instance.spot
    return filled(
        "V1CloudSpaceInstanceConfig",
        {
            "computeConfig": _compute_config(machine, spot),
            "dataConnectionMounts": [],
            "disableAutoShutdown": s.disable_auto_shutdown,
            "idleShutdownSeconds": s.idle_shutdown_seconds,
            "ide": "vscode",
            "publishWithComputeName": "",
            "targetWorkspaceDiskSizeGb": "0",
            "tutorialShown": False,
        },
    )


def studio_json(st: State, s: Studio, now: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "displayName": s.display_name,
        "projectId": s.project_id,
        "clusterId": s.cluster_id,
        "userId": s.user_id,
        "state": "CLOUD_SPACE_STATE_READY",
        "env": [{"name": e["name"], "value": e["value"], "fromSecret": ""} for e in s.env],
        "environmentTemplateId": s.template_id,
        "createdAt": st.iso(s.created),
        "updatedAt": st.iso(s.updated),
        "codeConfig": codeconfig_json(s),
        "codeStatus": codestatus_json(st, s, now),
        "description": "",
        "tags": [],
        "dataConnectionMounts": [],
        "publications": [],
        "numberOfFiles": "1",
        "totalSizeBytes": "32",
        "operatingCost": "0",
        "syncDuration": "0",
        "syncPercentage": "100",
        "maxRunDuration": "0",
        "userMetadata": "",
        "webPath": f"/{s.name}",
        "engagementCounts": {},
    }
    data.update(s.extra)
    return filled("V1CloudSpace", data)
