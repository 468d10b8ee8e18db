"""Teamspaces ("projects" on the wire): resolve a name, ``owner/name`` or id to a
:class:`Teamspace`, and list the caller's teamspaces.

Resolution follows the official SDK (wire-flows §3.2): the caller's memberships
(``GET /v1/memberships?filterByUserId=true``) are matched by ``name`` / ``displayName`` (and
owner, when given), then ``GET /v1/projects/{id}`` gives the details. The SDK never lists
projects the caller isn't a member of; neither do we. Resolutions are cached per client.
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import InvalidArgumentError, LightningError, NotFoundError

if TYPE_CHECKING:
    from .._client import AsyncLightning

__all__ = ["Teamspace", "TeamspaceNotFoundError", "TeamspaceRef", "Teamspaces"]

#: A teamspace given by name, ``"owner/name"`` or id (or an already resolved Teamspace).
TeamspaceRef = str


class TeamspaceNotFoundError(NotFoundError):
    """No teamspace of the caller matches the name (or more than one does)."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True, slots=True)
class Teamspace:
    """A teamspace (project) the caller is a member of."""

    id: str
    name: str
    display_name: str = ""
    owner_id: str = ""
    owner_type: str = ""  # "user" | "organization" | "unspecifiedOwnerType"
    default_cluster: str = ""  # the default cloud account, "" if none is configured
    start_studios_on_spot: bool = False

    @property
    def org_id(self) -> str:
        """The owning organization's id, or "" for a user-owned teamspace."""
        return self.owner_id if self.owner_type == "organization" else ""

    def __str__(self) -> str:
        return self.name


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


class Teamspaces:
    """``client.teamspaces``."""

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client
        self._by_key: dict[tuple[str, str], Teamspace] = {}
        self._by_id: dict[str, Teamspace] = {}
        self._owners: dict[str, tuple[str, str]] = {}  # owner name -> (id, type)
        self._lock = anyio.Lock()
        self._memberships: builtins.list[Any] | None = None

    # public -----------------------------------------------------------------------------

    @property
    def default(self) -> str | None:
        """The default teamspace reference: the client's, else ``LIGHTNING_TEAMSPACE``."""
        ref = getattr(self._client, "default_teamspace", None)
        return ref or os.environ.get("LIGHTNING_TEAMSPACE") or None

    async def resolve(self, teamspace: TeamspaceRef | Teamspace | None = None) -> Teamspace:
        """A :class:`Teamspace` from a Teamspace, a name, ``owner/name``, an id, or None
        (the default teamspace; if none is configured and the caller belongs to exactly one
        teamspace, that one)."""
        if isinstance(teamspace, Teamspace):
            return teamspace
        if teamspace is None:
            ref = self.default
            if ref is None:
                return await self._only_teamspace()
            teamspace = ref
        name = _check_name(teamspace, "teamspace")
        owner: str | None = None
        if "/" in name:
            owner, _, name = name.partition("/")
            owner, name = _check_name(owner, "teamspace owner"), _check_name(name, "teamspace")
        return await self.get(name, owner=owner)

    async def get(
        self, name: str, *, owner: str | None = None, owner_type: str | None = None
    ) -> Teamspace:
        """The caller's teamspace called ``name`` (or with id ``name``), optionally owned by
        the org or user ``owner`` (``owner_type`` "organization" or "user" skips guessing)."""
        name = _check_name(name, "teamspace name")
        if owner is not None:
            owner = _check_name(owner, "owner")
        if owner_type not in (None, "organization", "user"):
            raise InvalidArgumentError(
                f"owner_type must be 'organization' or 'user', got {owner_type!r}"
            )
        key = (owner or "", name)
        cached = self._by_key.get(key) or (self._by_id.get(name) if owner is None else None)
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._by_key.get(key)
            if cached is not None:
                return cached
            owner_id = None
            if owner is not None:
                owner_id, _ = await self._resolve_owner(owner, owner_type)
            memberships = await self._list_memberships()
            matches = [
                m
                for m in memberships
                if name in (m.name, m.display_name) and (owner_id is None or m.owner_id == owner_id)
            ]
            if not matches and owner_id is None:
                matches = [m for m in memberships if m.project_id == name]
            if not matches:
                whose = f" owned by {owner!r}" if owner else ""
                raise TeamspaceNotFoundError(f"teamspace {name!r}{whose} does not exist")
            if len(matches) > 1:
                raise TeamspaceNotFoundError(
                    f"teamspace name {name!r} is not unique; give its owner ('owner/{name}')"
                )
            ts = await self._fetch(matches[0].project_id)
            self._by_key[key] = ts
            return ts

    async def get_by_id(self, teamspace_id: str) -> Teamspace:
        """The teamspace with this id (``GET /v1/projects/{id}``), cached."""
        teamspace_id = _check_name(teamspace_id, "teamspace id")
        cached = self._by_id.get(teamspace_id)
        if cached is not None:
            return cached
        return await self._fetch(teamspace_id)

    async def list(self) -> builtins.list[Teamspace]:
        """Every teamspace the caller is a member of."""
        from ..fanout import map_outcomes

        memberships = await self._list_memberships(refresh=True)
        outcomes = await map_outcomes(
            lambda m: self.get_by_id(m.project_id), memberships, concurrency=8
        )
        return [o.result() for o in outcomes]

    def clear_cache(self) -> None:
        self._by_key.clear()
        self._by_id.clear()
        self._owners.clear()
        self._memberships = None

    # internals --------------------------------------------------------------------------

    async def _only_teamspace(self) -> Teamspace:
        memberships = await self._list_memberships()
        if len(memberships) == 1:
            return await self.get_by_id(memberships[0].project_id)
        raise InvalidArgumentError(
            "no teamspace given: pass teamspace=..., AsyncLightning(teamspace=...) or set "
            "LIGHTNING_TEAMSPACE"
        )

    async def _list_memberships(self, *, refresh: bool = False) -> builtins.list[Any]:
        if self._memberships is None or refresh:
            resp = await self._client.api.projects.list_memberships(filter_by_user_id=True)
            self._memberships = list(resp.memberships or [])
        return self._memberships

    async def _fetch(self, project_id: str) -> Teamspace:
        project = await self._client.api.projects.get_project(id=project_id)
        settings = project.project_settings
        default_cluster = (settings.preferred_cluster if settings is not None else None) or ""
        owner_type = str(project.owner_type or "")
        owner_id = project.owner_id or ""
        if not default_cluster and owner_type == "organization" and owner_id:
            try:
                org = await self._client.api.organizations.get_organization(id=owner_id)
                default_cluster = org.preferred_cluster or ""
            except LightningError:
                pass
        ts = Teamspace(
            id=project.id or project_id,
            name=project.name or "",
            display_name=project.display_name or "",
            owner_id=owner_id,
            owner_type=owner_type,
            default_cluster=default_cluster,
            start_studios_on_spot=bool(settings.start_studio_on_spot_instance)
            if settings is not None
            else False,
        )
        self._by_id[ts.id] = ts
        return ts

    async def _resolve_owner(self, owner: str, owner_type: str | None) -> tuple[str, str]:
        """``owner`` as an org (``GET /v1/orgs/?name=``) first, then as a user."""
        cached = self._owners.get(owner)
        if cached is not None:
            return cached
        result: tuple[str, str] | None = None
        if owner_type in (None, "organization"):
            try:
                org = await self._client.api.organizations.get_organization(id="", name=owner)
                if org.id:
                    result = (org.id, "organization")
            except NotFoundError:
                if owner_type == "organization":
                    raise
        if result is None:
            me = await self._client.api.auth.get_user()
            if me.username == owner and me.id:
                result = (me.id, "user")
            else:
                found = await self._client.api.user.search_users(query=owner)
                for user in found.users or []:
                    if user.username == owner and user.id:
                        result = (user.id, "user")
                        break
        if result is None:
            raise TeamspaceNotFoundError(f"no organization or user called {owner!r}")
        self._owners[owner] = result
        return result
