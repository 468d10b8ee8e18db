"""Run by tests/test_emulator_sdk.py: machine switch, exit codes, env vars, listing studios."""

import os

from lightning_sdk import Machine, Studio, Teamspace

ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
studio = Studio("sdk-switch", teamspace=ts, create_ok=True)
studio.start(Machine.CPU)
print("machine", studio.machine, studio.status)
studio.switch_machine(Machine.T4)
print("switched", studio.machine, studio.status)
print("exit", studio.run_with_exit_code("echo x; exit 4"))
studio.set_env({"A": "1"})
print("env", studio.env, studio.run("printenv A"))
print("listed", [s.name for s in ts.studios])
studio.stop()
print("stopped", studio.status)
