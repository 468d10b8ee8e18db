"""Run by tests/test_emulator_sdk.py in a subprocess whose env points lightning_sdk at an emulator.

Submits an image job that completes, one that fails (EMULATOR_OUTCOME=fail), stops a third,
lists jobs and reads logs.
"""

import os

from lightning_sdk import Job, Machine, Status, Teamspace

ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
job = Job.run("sdk-job", Machine.CPU, command="echo hello", image="ubuntu:22.04", teamspace=ts)
print("submitted", job.name, job.status)
job.wait(interval=0.2, timeout=30)
print("finished", job.status)
assert job.status == Status.Completed, job.status

failing = Job.run(
    "sdk-job-fail",
    "cpu-2",
    command="false",
    image="ubuntu:22.04",
    teamspace=ts,
    env={"EMULATOR_OUTCOME": "fail"},
)
failing.wait(interval=0.2, timeout=30)
print("failing", failing.status)
assert failing.status == Status.Failed, failing.status

long = Job.run(
    "sdk-job-long",
    Machine.T4,
    command="sleep 100",
    image="ubuntu:22.04",
    teamspace=ts,
    env={"EMULATOR_RUNNING_SECONDS": "60"},
)
long.stop()
print("stopped", long.status)
assert long.status == Status.Stopped, long.status

again = Job("sdk-job", teamspace=ts)
print("found", again.name, again.status)
names = sorted(j.name for j in ts.jobs)
print("listed", names)
assert {"sdk-job", "sdk-job-fail", "sdk-job-long"} <= set(names), names
print("logs", repr(str(job.logs)[:80]))
long.delete()
print("deleted")
