"""Run by tests/test_emulator_sdk.py in a subprocess whose env points lightning_sdk at an emulator.

Runs a multi-machine job to completion (MMT.run → wait → status), reads its machines,
finds it by name, stops a second one and deletes both.
"""

import os

from lightning_sdk import MMT, Job, Machine, Status, Teamspace

ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
mmt = MMT.run("sdk-mmt", 3, Machine.CPU, command="python train.py", image="pytorch", teamspace=ts)
print("submitted", mmt.name, mmt.status)
mmt.wait(interval=0.2, timeout=30)
print("finished", mmt.status)
assert mmt.status == Status.Completed, mmt.status
machines = mmt.machines
print("machines", len(machines), sorted(m.status.name for m in machines))

again = Job("sdk-mmt", teamspace=ts)
print("found", type(again).__name__, again.name, again.status)

long = MMT.run(
    "sdk-mmt-long",
    2,
    "cpu-2",
    command="sleep 100",
    image="pytorch",
    teamspace=ts,
    env={"EMULATOR_RUNNING_SECONDS": "60"},
)
long.stop()
print("stopped", long.status)
long.delete()
mmt.delete()
print("deleted")
