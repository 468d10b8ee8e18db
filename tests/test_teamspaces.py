"""client.teamspaces against the emulator: resolution by name, owner/name, id; defaults; cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolightning import InvalidArgumentError, NotFoundError
from aiolightning._client import AsyncLightning
from aiolightning.emulator import Emulator
from aiolightning.resources.teamspaces import Teamspace, TeamspaceNotFoundError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as e:
        yield e


def make_client(emu: Emulator, teamspace: str | None = None) -> AsyncLightning:
    return emu.client(teamspace=teamspace)


async def test_resolve_by_name_owner_and_id(emu: Emulator) -> None:
    async with make_client(emu) as client:
        ts = await client.teamspaces.get(emu.teamspace_name)
        assert isinstance(ts, Teamspace)
        assert ts.id == emu.teamspace_id and ts.name == emu.teamspace_name
        assert ts.owner_type == "organization" and ts.org_id == ts.owner_id
        assert ts.default_cluster == emu.cluster_id

        by_slug = await client.teamspaces.resolve(f"{emu.org_name}/{emu.teamspace_name}")
        assert by_slug.id == ts.id
        by_owner = await client.teamspaces.get(emu.teamspace_name, owner=emu.org_name)
        assert by_owner.id == ts.id
        assert (await client.teamspaces.get_by_id(emu.teamspace_id)).id == ts.id
        assert (await client.teamspaces.resolve(emu.teamspace_id)).id == ts.id

        personal = await client.teamspaces.resolve(f"{emu.username}/personal")
        assert personal.owner_type == "user" and personal.org_id == ""

        names = sorted(t.name for t in await client.teamspaces.list())
        assert names == sorted([emu.teamspace_name, "personal"])  # not others' teamspaces


async def test_resolutions_are_cached(emu: Emulator) -> None:
    async with make_client(emu, teamspace=emu.teamspace_name) as client:
        first = await client.teamspaces.resolve()
        seen = emu.counters.get("requests")
        again = await client.teamspaces.resolve()
        assert again is first
        await client.teamspaces.get_by_id(first.id)
        assert emu.counters.get("requests") == seen


async def test_default_from_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_TEAMSPACE", "personal")
    async with make_client(emu) as client:
        ts = await client.teamspaces.resolve()
        assert ts.name == "personal"


async def test_no_default_and_several_teamspaces(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIGHTNING_TEAMSPACE", raising=False)
    async with make_client(emu) as client:
        with pytest.raises(InvalidArgumentError, match="LIGHTNING_TEAMSPACE"):
            await client.teamspaces.resolve()


async def test_unknown_and_invalid(emu: Emulator) -> None:
    async with make_client(emu) as client:
        with pytest.raises(TeamspaceNotFoundError, match="does not exist"):
            await client.teamspaces.get("nope")
        with pytest.raises(NotFoundError):
            await client.teamspaces.get("emu-private")  # exists, but not ours
        with pytest.raises(NotFoundError):
            await client.teamspaces.resolve("no-such-owner-xyz/emu-teamspace")
        before = emu.counters.get("requests")
        for bad in ("", "   ", "/x", "x/"):
            with pytest.raises(InvalidArgumentError):
                await client.teamspaces.resolve(bad)
        with pytest.raises(InvalidArgumentError):
            await client.teamspaces.get("x", owner_type="team")
        assert emu.counters.get("requests") == before


async def test_logs_and_errors_name_the_route_that_was_requested(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """``GET /v1/orgs/?name=`` is not ``GET /v1/orgs/{id}``: the label must fit the request."""
    import logging

    from aiolightning.api.organizations import OrganizationsApi

    caplog.set_level(logging.DEBUG, logger="aiolightning")
    async with make_client(emu) as client:
        await client.teamspaces.resolve(f"{emu.org_name}/{emu.teamspace_name}")
        org_lines = [r.getMessage() for r in caplog.records if "/v1/orgs" in r.getMessage()]
        assert org_lines and all("{id}" not in line for line in org_lines), org_lines
        assert any("GET /v1/orgs/ " in line for line in org_lines), org_lines
        with pytest.raises(NotFoundError) as err:
            await OrganizationsApi(client.transport).get_organization(id="", name="nobody")
        assert "{id}" not in str(err.value) and "/v1/orgs/" in str(err.value)
        org = await client.api.organizations.get_organization(id="", name=emu.org_name)
        with pytest.raises(NotFoundError):
            await client.api.organizations.get_organization(id=(org.id or "") + "x")
        assert "GET /v1/orgs/{id} -> 404" in caplog.records[-1].getMessage()  # a real id
