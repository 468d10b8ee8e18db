"""Run by tests/test_emulator_sdk.py in a subprocess whose env points lightning_sdk at an emulator."""

import os

from lightning_sdk import Machine, Studio, Teamspace

ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
print("teamspace", ts.name, ts.id)
studio = Studio("sdk-studio", teamspace=ts, create_ok=True)
print("created", studio.name, studio.status)
studio.start(Machine.CPU)
print("started", studio.status, studio.machine)
out = studio.run("echo hi")
print("output", repr(out))
studio.stop()
print("stopped", studio.status)
studio.delete()
print("deleted")
