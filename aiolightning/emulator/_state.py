"""The emulator's in-memory world: users, orgs, teamspaces, clusters, studios, jobs and
deployments."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ._clock import Clock
from ._config import Counters, EmulatorConfig
from ._deployments._model import DeploymentStore
from ._errors import ApiError
from ._ids import IdFactory
from ._jobs._mmt_model import MultiMachineJobStore
from ._jobs._model import JobStore
from ._studios._model import StudioStore

__all__ = ["Cluster", "Org", "Project", "State", "User"]


@dataclass(slots=True)
class User:
    id: str
    username: str
    email: str
    api_key: str
    first_name: str
    last_name: str
    created: float


@dataclass(slots=True)
class Org:
    id: str
    name: str
    display_name: str
    preferred_cluster: str
    members: set[str]
    created: float


@dataclass(slots=True)
class Project:
    id: str
    name: str
    display_name: str
    owner_id: str
    owner_type: str  # "organization" | "user"
    creator_id: str
    members: set[str]
    cluster_ids: list[str]
    created: float
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)  # workload tags by id


@dataclass(slots=True)
class Cluster:
    id: str
    name: str
    region: str
    created: float


class State:
    """Everything the handlers share. Single-threaded: only the emulator's loop touches it."""

    def __init__(self, seed: int, config: EmulatorConfig, counters: Counters) -> None:
        self.seed = seed
        self.config = config
        self.counters = counters
        self.clock = Clock()
        self.ids = IdFactory(seed)
        self.rng = random.Random(f"state:{seed}")
        self.token_secret = random.Random(f"jwt:{seed}").randbytes(32)
        self.base_url = ""
        self.users: dict[str, User] = {}
        self.orgs: dict[str, Org] = {}
        self.projects: dict[str, Project] = {}
        self.clusters: dict[str, Cluster] = {}
        # verified Basic credentials -> user, and the key they carried (a rotated key misses)
        self.basic_cache: dict[str, User] = {}
        self.basic_cache_keys: dict[str, str] = {}
        self.studios: StudioStore = StudioStore()
        self.jobs: JobStore = JobStore()
        self.mmts: MultiMachineJobStore = MultiMachineJobStore()
        self.deployments: DeploymentStore = DeploymentStore()
        self._seed_directory()

    # -- seeding -------------------------------------------------------------------------

    def _seed_directory(self) -> None:
        now = self.clock.now()
        self.cluster = Cluster("lightning-public-prod", "lightning-public-prod", "us-east-1", now)
        self.clusters[self.cluster.id] = self.cluster
        self.user = self.add_user("emu-user", "Emu", "User")
        self.other_user = self.add_user("emu-other", "Other", "User")
        self.org = Org(
            self.ids.new(), "emu-org", "Emulator Org", self.cluster.id, {self.user.id}, now
        )
        self.orgs[self.org.id] = self.org
        self.teamspace = self.add_project("emu-teamspace", self.org.id, "organization", self.user)
        self.personal = self.add_project("personal", self.user.id, "user", self.user)
        self.private = self.add_project("emu-private", self.other_user.id, "user", self.other_user)

    def add_user(self, username: str, first: str, last: str) -> User:
        u = User(
            id=self.ids.new(),
            username=username,
            email=f"{username}@emulator.lightning.local",
            api_key=self.ids.hex(16),
            first_name=first,
            last_name=last,
            created=self.clock.now(),
        )
        self.users[u.id] = u
        return u

    def add_project(self, name: str, owner_id: str, owner_type: str, creator: User) -> Project:
        p = Project(
            id=self.ids.new(),
            name=name,
            display_name=name,
            owner_id=owner_id,
            owner_type=owner_type,
            creator_id=creator.id,
            members={creator.id},
            cluster_ids=[self.cluster.id],
            created=self.clock.now(),
        )
        self.projects[p.id] = p
        return p

    # -- lookups -------------------------------------------------------------------------

    def project_for(self, project_id: str, user: User) -> Project:
        """The project, if `user` may use it: 404 when unknown, 403 when not a member."""
        p = self.projects.get(project_id)
        if p is None:
            raise ApiError(404, f"project {project_id} not found")
        if user.id not in p.members:
            raise ApiError(403, f"user {user.username} is not a member of project {project_id}")
        return p

    def iso(self, t: float | None) -> str | None:
        return self.clock.iso(t)
