"""Running a shell command in a studio, and reading the command's status stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ... import models
from ..._errors import APIConnectionError, NotFoundError, ServerError
from .._polling import Deadline, WaitTimeoutError, check_name, check_timeout, poll_intervals
from .._reconcile import ATTEMPTS, mutate_once
from ._models import Studio, StudioError, StudioRef, StudioStatus
from ._status import StudioWaits

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


class CommandError(StudioError):
    """A command run in a studio could not be run or its status could not be read."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command run in a studio printed, and its exit code."""

    output: str
    exit_code: int
    session: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class CommandTimeoutError(WaitTimeoutError):
    """The command did not finish in time; ``output`` holds what it printed so far."""

    def __init__(self, message: str, output: str = "", session: str = "") -> None:
        super().__init__(message)
        self.output = output
        self.session = session


def _parse_command_stream(
    items: Iterable[models.StreamResultOfV1GetLongRunningCommandInCloudSpaceResponse],
) -> tuple[str, int | None]:
    """Interpret one answer of ``.../execute/{session}/stream`` (NDJSON, wire-flows §4.10).

    Returns the output so far and the exit code, ``None`` while the command still runs (no
    lines at all, or a result with ``exitCode == -1``). ``exitCode`` omitted counts as 0
    (protojson omits zero values). A line carrying only ``{"error": ...}`` raises.
    """
    outputs: list[str] = []
    code: int | None = None
    for item in items:
        if item.result is None:
            err = item.error
            message = (err.message if err is not None else None) or "no details"
            raise CommandError(f"the command status stream reported an error: {message}")
        exit_code = item.result.exit_code if item.result.exit_code is not None else 0
        if exit_code == -1:
            return "".join(outputs), None  # still running
        if code is not None and exit_code != code:
            raise CommandError(f"conflicting exit codes {code} and {exit_code}")
        code = exit_code
        outputs.append(item.result.output or "")
    return "".join(outputs), code


class StudioCommands(StudioWaits):
    """``client.studios``: run a command in a running studio."""

    async def run(
        self,
        studio: StudioRef,
        command: str,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = 600.0,  # noqa: ASYNC109
        check: bool = False,
    ) -> CommandResult:
        """Run a shell command in a running studio and return its output and exit code.

        Submits ``POST .../execute`` (detached, in a session named here: after an ambiguous
        failure the session is looked up before the command is sent again) and polls the NDJSON status stream with a
        jittered interval until an exit code arrives. With ``check=True`` a non-zero exit
        code raises :class:`CommandError`. Raises :class:`CommandTimeoutError` (with the
        output so far) after ``timeout`` seconds.
        """
        command = check_name(command, "command")
        check_timeout(timeout)
        s = await self._resolve(studio, teamspace)
        deadline = Deadline(timeout)
        state = await self._state(s)
        if state.status is not StudioStatus.RUNNING:
            raise StudioError(f"studio {s} is not running ({state.status.value})")
        # the session is named here, so that after an ambiguous failure the command can be
        # looked up instead of being run a second time
        named = f"aiolightning-{uuid.uuid4().hex[:16]}"
        body = {"command": command, "detached": True, "sessionName": named}

        async def send() -> str:
            resp = await self._api.execute_command_in_cloud_space(s.teamspace_id, s.id, body=body)
            return resp.session_name or ""

        async def took_effect() -> str | None:
            try:
                await self._read_stream(s, named, deadline)
            except NotFoundError:
                return None
            return named

        session = await mutate_once(send, took_effect, deadline=deadline)
        if not session:
            raise CommandError(f"studio {s} did not return a session for the command")
        intervals = poll_intervals(min(0.2, self.poll_initial), self.poll_cap)
        output = ""
        while True:
            items = await self._read_stream(s, session, deadline)
            output, code = _parse_command_stream(items)
            if code is not None:
                result = CommandResult(output=output, exit_code=code, session=session)
                if check and code != 0:
                    raise CommandError(f"command exited with {code}: {output.strip()[-2000:]}")
                return result
            if deadline.expired():
                raise CommandTimeoutError(
                    f"command in studio {s} did not finish within {deadline.timeout:g} s",
                    output=output,
                    session=session,
                )
            await deadline.sleep(next(intervals))

    async def _read_stream(
        self, s: Studio, session: str, deadline: Deadline
    ) -> list[models.StreamResultOfV1GetLongRunningCommandInCloudSpaceResponse]:
        """One read of the command's status stream; a read cut short (the transport retries
        only before the first byte) is read again, it changes nothing on the server."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return [
                    item
                    async for item in self._api.get_long_running_command_in_cloud_space_stream(
                        s.teamspace_id, s.id, session
                    )
                ]
            except (APIConnectionError, ServerError):
                if attempt >= ATTEMPTS or deadline.expired():
                    raise
                await deadline.sleep(0.05 * attempt)
