"""Run by tests/test_emulator_sdk.py in a subprocess whose env points lightning_sdk at an emulator.

Creates a deployment (start), reads its status, scales it (update), calls its endpoint,
stops it, starts it again and deletes it; a duplicate name and an unknown machine fail.
"""

import os

from lightning_sdk import Deployment, Machine, Teamspace
from lightning_sdk.api.deployment_api import AutoScaleConfig, DeploymentApi

ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
dep = Deployment("sdk-dep", teamspace=ts)
assert not dep.is_started
dep.start(
    machine=Machine.CPU, image="ghcr.io/acme/model:1", command="python serve.py", ports=[8080]
)
print("created", dep.name, dep.replicas, dep.min_replicas, dep.max_replicas, dep.ports)
print("urls", len(dep.urls or []))
dep.update(replicas=2, min_replicas=1, max_replicas=3)
print("updated", dep.replicas, dep.min_replicas, dep.max_replicas)
dep.update(machine=Machine.T4)
print("machine", dep._deployment.spec.instance_name)

again = Deployment("sdk-dep", teamspace=ts)
print("found", again.name, again.is_started, again.auth)

dep.stop()
print("stopped", dep.replicas, dep.max_replicas)
dep.start()
print("restarted", dep.replicas, dep.min_replicas, dep.max_replicas)

try:
    dup = Deployment("sdk-dep-dup", teamspace=ts)
    dup._name = "sdk-dep"
    dup.start(machine=Machine.CPU, image="x", ports=[8080])
except Exception as e:  # the SDK raises a plain Exception after its 409 retries
    print("duplicate rejected", "409" in str(e) or "Conflict" in str(e))

try:
    Deployment("sdk-dep-bad", teamspace=ts).start(
        machine="no-such-machine",
        image="x",
        ports=[8080],  # type: ignore[arg-type]
        autoscale=AutoScaleConfig(min_replicas=0, max_replicas=1, metric="CPU", threshold=90),
    )
except Exception as e:
    print("bad machine rejected", "no-such-machine" in str(e))

DeploymentApi().delete_deployment(dep._deployment)
print("deleted", Deployment("sdk-dep", teamspace=ts).is_started)
