"""schemathesis, a fuzzer nobody here wrote, against the emulator: every operation of the spec
that the emulator implements (not its 501s), a bounded number of generated cases each, all
of schemathesis' checks, then stateful runs along OpenAPI links.

The service differs from its spec in known ways (grpc-gateway's encoding, validation in code
that proto3 cannot declare, overlapping path templates). Each is tolerated explicitly, with
the evidence, in ``_spec_tolerance.py``: ``spec_as_spoken`` rewrites the spec where it
misdescribes the wire (and adds the links it lacks), ``TOLERATED`` lets a named check's
failure pass under named conditions. Any other failure fails the test and is to be fixed in
the emulator.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from _spec_tolerance import spec_as_spoken, validate
from schemathesis import GenerationMode

from aiolightning.api._operations import OPERATIONS
from aiolightning.emulator import EmulatorConfig, EmulatorThread, Timings
from aiolightning.emulator._app import EMULATED_ROUTES

SPEC = Path(__file__).resolve().parent.parent / "spec" / "lightning-openapi.json"
# the emulator's identities follow from its seed: known here, before it starts
# (no simulated durations: a studio runs and a job ends at once, so that a replayed scenario
# meets the same answers, as hypothesis requires of a state machine)
INSTANT = Timings(**{f.name: 0.0 for f in dataclasses.fields(Timings) if f.type == "float"})
EMU = EmulatorThread(seed=0, config=EmulatorConfig(timings=INSTANT))

_EMULATED = {(r.method, r.template) for r in EMULATED_ROUTES}
EMULATED = sorted(op.operation_id for op in OPERATIONS if (op.method.upper(), op.path) in _EMULATED)


# -- the runs ---------------------------------------------------------------------------------

AUTH = "Basic " + base64.b64encode(f"{EMU.user_id}:{EMU.api_key}".encode()).decode()
config = schemathesis.Config.from_dict(
    {
        "seed": 1,  # the same cases on every run
        # per operation: 10 fuzzed cases, plus the coverage phase's boundary and negative
        # cases (most of what was found); the whole file takes well under a minute
        "generation": {"max-examples": 10},
        # the emulator's teamspace: otherwise nearly every case stops at a 404 for a project
        "parameters": {"projectId": EMU.teamspace_id},
        "auth": {"basic": {"username": EMU.user_id, "password": EMU.api_key}},
        "phases": {"examples": {"enabled": False}},  # the spec has no examples
    }
)
SPEC_AS_SPOKEN = spec_as_spoken(json.loads(SPEC.read_text()))
schema = schemathesis.openapi.from_dict(SPEC_AS_SPOKEN, config=config).include(
    operation_id=EMULATED
)


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    EMU.start()
    try:
        yield EMU
    finally:
        EMU.stop()


@schema.parametrize()
def test_operation(case: Any, emu: EmulatorThread) -> None:
    validate(case, case.call(base_url=emu.url))


def _acceptable(case: Any) -> None:
    """Make a fuzzed create, start or switch body one the service accepts (the references
    it checks in code point at what exists), so that the scenario goes on with a real studio
    or job; every other field stays as generated."""
    if case.meta is not None and case.meta.generation.mode != GenerationMode.POSITIVE:
        return  # a case meant to be refused stays as it is (it may be its body that is bad)
    op = case.operation.definition.raw["operationId"]
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return
    if op == "cloud_space_service_create_cloud_space":
        body["name"] = body.get("name") or "studio"
        body["clusterId"] = EMU.cluster_id
        body["computeName"] = "cpu-4"
    elif op in (
        "cloud_space_service_start_cloud_space_instance",
        "cloud_space_service_update_cloud_space_instance_config",
    ):
        cc = body.get("computeConfig")
        if isinstance(cc, dict):
            cc["name"] = "cpu-8" if "update" in op else "cpu-4"
    elif op == "jobs_service_create_job":
        body["name"] = body.get("name") or "job"
        spec = body["spec"] = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        spec.update(image="ubuntu:24.04", cloudspaceId="", instanceName="cpu-4")
        spec.update(clusterId=EMU.cluster_id, env=[])
        body["tags"] = []


def test_stateful(emu: EmulatorThread) -> None:
    """Sequences of calls along the links: a studio is created, then started, switched,
    stopped, run in, deleted; a job is created, then found, stopped, deleted."""
    before = emu.counters.effects()

    # the studio and job operations only, so each scenario starts from a create
    linked = schemathesis.openapi.from_dict(SPEC_AS_SPOKEN, config=config).include(
        operation_id=[
            op.operation_id
            for op in OPERATIONS
            if op.operation_id in EMULATED
            and re.match(r"/v1/projects/\{projectId\}/(cloudspaces|jobs)\b", op.path)
        ]
    )

    scenarios = itertools.count()

    class Machine(linked.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # each scenario in a teamspace of its own, empty: what went before cannot change
            # its answers (a name already taken, a studio already running)
            body = {"name": f"scenario-{next(scenarios)}"}
            headers = {"Authorization": AUTH}
            r = requests.post(f"{emu.url}/v1/projects", json=body, headers=headers, timeout=30)
            r.raise_for_status()
            self.project_id = r.json()["id"]

        def before_call(self, case: Any) -> None:
            # nor the configured parameters: the calls go to the scenario's teamspace
            case.path_parameters["projectId"] = self.project_id
            _acceptable(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            # the configured auth is not applied by a bare state machine
            return {"base_url": emu.url, "headers": {"Authorization": AUTH}}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            validate(case, response, transport_kwargs=kwargs, recorder=self.recorder)

    Machine.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=8,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    after = emu.counters.effects()
    reached = {kind for kind in after if after[kind] != before.get(kind)}
    # the links led to real studios and jobs, not only to 404s
    assert {"studio_created", "job_created"} <= reached, reached


def test_every_emulated_operation_is_fuzzed() -> None:
    assert len(EMULATED) == len(_EMULATED)  # each emulated route is an operation of the spec
    ops = {r.ok().definition.raw["operationId"] for r in schema.get_all_operations()}
    assert ops == set(EMULATED)
