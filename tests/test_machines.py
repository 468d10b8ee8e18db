"""Machines: the slugs, validation before any request, and what a teamspace offers."""

from __future__ import annotations

import pytest

from aiolightning import InvalidArgumentError, LightningError
from aiolightning.emulator import Emulator
from aiolightning.resources.machines import DEFAULT_MACHINE, Machine, resolve_machine

pytestmark = pytest.mark.anyio

SLUGS = [
    "cpu-2",
    "cpu-4",
    "cpu-8",
    "lit-t4-1",
    "lit-t4-2",
    "lit-l4-1",
    "lit-a100-1",
    "lit-a100-8",
    "lit-h100-1",
    "lit-h100-8",
    "lit-h200x-1",
    "lit-b200x-8",
]


def test_the_slugs_users_know() -> None:
    assert [m.value for m in Machine] == SLUGS
    assert DEFAULT_MACHINE is Machine.CPU_X_4
    assert str(DEFAULT_MACHINE) == "cpu-4"
    assert Machine["CPU"] is Machine["CPU_X_4"]  # an alias


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, Machine.CPU_X_4),
        (Machine.A100, Machine.A100),
        ("lit-a100-1", Machine.A100),
        ("LIT-A100-1", Machine.A100),
        ("  cpu-8 ", Machine.CPU_X_8),
        ("A100_X_8", Machine.A100_X_8),
        ("h100", Machine.H100),
    ],
)
def test_resolve_accepts_enum_slug_and_name(given: str | None, expected: Machine) -> None:
    assert resolve_machine(given) is expected


@pytest.mark.parametrize("bad", ["gpu-9000", "", "lit-a100", 4, "cpu-16"])
def test_unknown_machines_are_rejected_with_the_valid_list(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        resolve_machine(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and isinstance(info.value, LightningError)
    for slug in SLUGS:
        assert slug in str(info.value)


async def test_list_what_the_teamspace_offers() -> None:
    async with Emulator() as emu:
        async with emu.client() as client:
            offered = await client.machines.list()
            slugs = {m.slug for m in offered}
            assert {"cpu-4", "lit-a100-1"} <= slugs
            a100 = next(m for m in offered if m.slug == "lit-a100-1")
            assert a100.machine is Machine.A100 and a100.gpus >= 1
            assert a100.cluster_id == emu.cluster_id
            assert all(m.enabled for m in offered)
            # by explicit teamspace too
            again = await client.machines.list(f"{emu.org_name}/{emu.teamspace_name}")
            assert {m.slug for m in again} == slugs


async def test_unknown_machine_sends_nothing() -> None:
    async with Emulator() as emu:
        async with emu.client() as client:
            before = emu.counters.get("requests")
            with pytest.raises(InvalidArgumentError):
                await client.studios.start("anything", "lit-z9-1")
            with pytest.raises(InvalidArgumentError):
                await client.jobs.submit("j", "echo", image="u", machine="lit-z9-1")
            assert emu.counters.get("requests") == before
