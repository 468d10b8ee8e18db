"""Run by tests/test_emulator_sdk.py: resolve users/orgs and list teamspaces with lightning_sdk."""

import os

from lightning_sdk import Organization, Teamspace, User

org = Organization(os.environ["EMU_ORG"])
print("org", org.name, org.id)
print("org teamspaces", sorted(t.name for t in org.teamspaces))
user = User(os.environ["EMU_USERNAME"])
print("user", user.name, user.id)
print("user teamspaces", sorted(t.name for t in user.teamspaces))
ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
print("teamspace", ts.name, ts.id, ts.owner.name)
print("studios", [s.name for s in ts.studios])
