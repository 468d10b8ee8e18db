"""Finding studios: the root of ``client.studios``, its name cache, and lookup by name or id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..._errors import NotFoundError
from .._polling import check_positive_int
from ._models import Studio, StudioNotFoundError, StudioRef, check_studio_name

if TYPE_CHECKING:
    from ..._client import AsyncLightning
    from ...api.cloud_space import CloudSpaceApi
    from ..teamspaces import Teamspace, TeamspaceRef


class StudioLookup:
    """The root of ``client.studios``: the client, the name cache, lookup by name or id."""

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client
        self._by_name: dict[tuple[str, str], Studio] = {}
        self._user_id: str | None = None

    @property
    def _api(self) -> CloudSpaceApi:
        return self._client.api.cloud_space

    async def _teamspace(self, teamspace: TeamspaceRef | Teamspace | None) -> Teamspace:
        return await self._client.teamspaces.resolve(teamspace)

    async def _resolve(
        self, studio: StudioRef, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Studio:
        if isinstance(studio, Studio):
            return studio
        check_studio_name(studio, "studio")
        return await self.get(studio, teamspace=teamspace)

    async def get(
        self, name_or_id: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Studio:
        """The studio with this name (``GET .../cloudspaces?name=``) or id."""
        key = check_studio_name(name_or_id, "studio name or id")
        ts = await self._teamspace(teamspace)
        cached = self._by_name.get((ts.id, key))
        if cached is not None:
            return cached
        found = await self._find_by_name(ts.id, key)
        if found is None:
            try:
                cs = await self._api.get_cloud_space(ts.id, key)
            except NotFoundError:
                raise StudioNotFoundError(
                    f"studio {key!r} does not exist in teamspace {ts.name!r}"
                ) from None
            found = Studio.from_model(cs, ts.id)
        self._by_name[(ts.id, key)] = found
        return found

    async def _find_by_name(self, teamspace_id: str, name: str) -> Studio | None:
        resp = await self._api.list_cloud_spaces(teamspace_id, name=name)
        for cs in resp.cloudspaces or []:
            if cs.name == name:
                return Studio.from_model(cs, teamspace_id)
        return None

    async def _me(self) -> str:
        if self._user_id is None:
            who = await self._client.api.auth.whoami()
            self._user_id = who.user_id or ""
        return self._user_id

    async def list(
        self,
        teamspace: TeamspaceRef | Teamspace | None = None,
        *,
        all_users: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[Studio]:
        """Every studio of the teamspace, page by page (``nextPageToken``).

        Like the SDK, only the caller's own studios unless ``all_users=True``.
        """
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        ts = await self._teamspace(teamspace)
        user_id = None if all_users else await self._me()
        pager = self._api.list_cloud_spaces_iter(ts.id, user_id=user_id, limit=page_size)
        async for cs in pager:
            yield Studio.from_model(cs, ts.id)

    def _remember(self, studio: Studio) -> Studio:
        self._by_name[(studio.teamspace_id, studio.name)] = studio
        return studio

    def _forget(self, studio: Studio) -> None:
        for key in [k for k, v in self._by_name.items() if v.id == studio.id]:
            del self._by_name[key]
