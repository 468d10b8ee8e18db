"""Studios ("cloudspaces" on the wire): create, find, start, stop, switch machines, run
commands, and the same for whole fleets (``start_many`` / ``stop_many`` / ``delete_many``).

Wire facts are in wire-flows §4. Status comes from ``GET .../codestatus`` and maps as in §4.6
(``inUse`` missing -> stopped). Every wait has a timeout and polls with a jittered interval
that starts around 0.3 s and grows to a cap.

Idempotency: :meth:`Studios.start` checks ``codestatus`` first and does nothing when the
studio is already starting or running; after an ambiguous failure of the start POST (5xx,
timeout, dropped connection) it checks again before re-sending, and a 409/400 "already
running" answer counts as success once ``codestatus`` confirms it. A studio is therefore
started at most once per call, however flaky the network.
"""

from __future__ import annotations

import builtins
import enum
import os
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .. import models
from .._errors import (
    BadRequestError,
    ConflictError,
    LightningError,
    NotFoundError,
    RateLimitError,
)
from ..fanout import AsyncOrSyncIterable, Outcome, ProgressCallback, map_outcomes
from ._polling import (
    Deadline,
    WaitTimeoutError,
    check_name,
    check_positive_int,
    check_timeout,
    is_ambiguous,
    poll_intervals,
)
from .machines import Machine, resolve_machine

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from ..api.cloud_space import CloudSpaceApi
    from .teamspaces import Teamspace, TeamspaceRef

__all__ = [
    "CommandError",
    "CommandResult",
    "CommandTimeoutError",
    "Studio",
    "StudioError",
    "StudioNotFoundError",
    "StudioRef",
    "StudioState",
    "StudioStatus",
    "Studios",
]


class StudioStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


_PHASE = "CLOUD_SPACE_INSTANCE_STATE_"
_PHASE_TO_STATUS: dict[str, StudioStatus] = {
    _PHASE + "UNSPECIFIED": StudioStatus.PENDING,
    _PHASE + "PENDING": StudioStatus.PENDING,
    _PHASE + "IMAGE_BUILDING": StudioStatus.PENDING,  # the SDK raises KeyError here
    _PHASE + "RUNNING": StudioStatus.RUNNING,
    _PHASE + "STOPPING": StudioStatus.STOPPING,
    _PHASE + "STOPPED": StudioStatus.STOPPED,
    _PHASE + "FAILED": StudioStatus.FAILED,
    _PHASE + "DELETED": StudioStatus.STOPPED,  # the SDK raises KeyError here
}
_TERMINAL_PHASES = frozenset(
    _PHASE + p for p in ("FAILED", "STOPPING", "STOPPED", "DELETED")
)  # what the SDK's start poll treats as "this instance is over"


class StudioError(LightningError):
    """A studio is not in a state that allows the operation, or failed to get there."""


class StudioNotFoundError(NotFoundError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class CommandError(StudioError):
    """A command run in a studio could not be run or its status could not be read."""


@dataclass(frozen=True, slots=True)
class Studio:
    """A studio (cloudspace). Pass it (or its name or id) to the ``client.studios`` methods."""

    id: str
    name: str
    teamspace_id: str
    cluster_id: str = ""
    display_name: str = ""
    user_id: str = ""
    created_at: str = ""
    raw: models.V1CloudSpace | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_model(cls, cs: models.V1CloudSpace, teamspace_id: str = "") -> Studio:
        return cls(
            id=cs.id or "",
            name=cs.name or "",
            teamspace_id=cs.project_id or teamspace_id,
            cluster_id=cs.cluster_id or "",
            display_name=cs.display_name or "",
            user_id=cs.user_id or "",
            created_at=str(cs.created_at or ""),
            raw=cs,
        )

    def __str__(self) -> str:
        return self.name or self.id


#: A studio given as a :class:`Studio`, its name, or its id.
StudioRef = Studio | str


@dataclass(frozen=True, slots=True)
class StudioState:
    """A snapshot of ``GET .../codestatus``."""

    status: StudioStatus
    phase: str = ""  # inUse.phase, "" when no instance is in use
    instance_id: str = ""  # inUse.cloudSpaceInstanceId
    machine: str = ""  # inUse.computeConfig.name
    interruptible: bool = False
    ready: bool = False  # running and the restore of the studio's files has finished
    message: str = ""
    public_ip: str = ""
    requested_phase: str = ""  # the instance being started/switched to, if any
    requested_instance_id: str = ""
    requested_machine: str = ""

    @classmethod
    def from_model(cls, resp: models.V1GetCloudSpaceInstanceStatusResponse | None) -> StudioState:
        in_use = resp.in_use if resp is not None else None
        requested = resp.requested if resp is not None else None
        req_phase = str(requested.phase or "") if requested is not None else ""
        req_id = (requested.cloud_space_instance_id or "") if requested is not None else ""
        req_machine = ""
        if requested is not None and requested.compute_config is not None:
            req_machine = requested.compute_config.name or ""
        if in_use is None or not in_use.phase:
            return cls(
                StudioStatus.STOPPED,
                requested_phase=req_phase,
                requested_instance_id=req_id,
                requested_machine=req_machine,
            )
        phase = str(in_use.phase)
        status = _PHASE_TO_STATUS.get(phase, StudioStatus.PENDING)
        cc = in_use.compute_config
        startup = in_use.startup_status
        ready = status is StudioStatus.RUNNING and (
            startup is None or bool(startup.top_up_restore_finished)
        )
        return cls(
            status=status,
            phase=phase,
            instance_id=in_use.cloud_space_instance_id or "",
            machine=(cc.name or "") if cc is not None else "",
            interruptible=bool(cc.spot) if cc is not None else False,
            ready=ready,
            message=in_use.status_message or "",
            public_ip=in_use.public_ip_address or "",
            requested_phase=req_phase,
            requested_instance_id=req_id,
            requested_machine=req_machine,
        )

    def live_instance(self, exclude: frozenset[str] = frozenset()) -> str:
        """The id of a starting or running instance (in ``requested`` or ``inUse``)."""
        if (
            self.requested_instance_id
            and self.requested_phase not in _TERMINAL_PHASES
            and self.requested_instance_id not in exclude
        ):
            return self.requested_instance_id
        if (
            self.instance_id
            and self.phase not in _TERMINAL_PHASES
            and self.instance_id not in exclude
        ):
            return self.instance_id
        return ""

    def terminal_instances(self) -> frozenset[str]:
        out = set()
        if self.instance_id and self.phase in _TERMINAL_PHASES:
            out.add(self.instance_id)
        if self.requested_instance_id and self.requested_phase in _TERMINAL_PHASES:
            out.add(self.requested_instance_id)
        return frozenset(out)


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


def _env_interruptible() -> bool | None:
    value = os.environ.get("LIGHTNING_INTERRUPTIBLE_OVERRIDE")
    if value is None:
        return None
    return value.strip().lower() == "true"


def _already_message(exc: LightningError) -> bool:
    text = str(exc).lower()
    return "already" in text and ("running" in text or "start" in text or "pending" in text)


def _judge(s: Studio, state: StudioState, target: StudioStatus, track: str) -> bool:
    """Has the studio reached ``target``? Raises :class:`StudioError` if it never will."""
    if target is StudioStatus.RUNNING:
        if state.ready and (not track or state.instance_id == track):
            return True
        if state.status is StudioStatus.FAILED:
            raise StudioError(f"studio {s} failed to start: {state.message or 'no message'}")
        if (
            track
            and state.status in (StudioStatus.STOPPED, StudioStatus.STOPPING)
            and not state.live_instance()
        ):
            raise StudioError(f"studio {s} stopped while starting: {state.message or 'no message'}")
        return False
    return state.status is target


class _Waiter:
    __slots__ = ("error", "event", "state", "studio", "target", "track")

    def __init__(self, studio: Studio, target: StudioStatus, track: str) -> None:
        self.studio = studio
        self.target = target
        self.track = track
        self.event = anyio.Event()
        self.state: StudioState | None = None
        self.error: BaseException | None = None


class _Board:
    """Watches many studios of one teamspace with paged list calls -- each listed studio
    carries its ``codeStatus`` -- instead of one ``codestatus`` GET per studio per poll.
    Studios the listing does not show are asked for one by one."""

    def __init__(self, owner: Studios, teamspace_id: str) -> None:
        self._owner = owner
        self._ts = teamspace_id
        self._waiting: dict[str, list[_Waiter]] = {}
        self._wake = anyio.Event()

    async def wait(
        self, s: Studio, target: StudioStatus, deadline: Deadline, track: str = ""
    ) -> StudioState:
        w = _Waiter(s, target, track)
        self._waiting.setdefault(s.id, []).append(w)
        self._wake.set()
        try:
            remaining = deadline.remaining()
            with anyio.move_on_after(None if remaining == float("inf") else remaining):
                await w.event.wait()
        finally:
            waiters = self._waiting.get(s.id, [])
            if w in waiters:
                waiters.remove(w)
            if not waiters:
                self._waiting.pop(s.id, None)
        if w.error is not None:
            raise w.error
        if w.state is None:
            raise WaitTimeoutError(
                f"studio {s} did not reach {target.value} within {deadline.timeout:g} s"
            )
        return w.state

    def _offer(self, studio_id: str, state: StudioState) -> None:
        for w in list(self._waiting.get(studio_id, [])):
            try:
                done = _judge(w.studio, state, w.target, w.track)
            except StudioError as exc:
                w.error = exc
                w.event.set()
                continue
            if done:
                w.state = state
                w.event.set()

    async def run(self) -> None:
        intervals = self._owner._intervals()
        while True:
            if not self._waiting:
                self._wake = anyio.Event()
                await self._wake.wait()
                intervals = self._owner._intervals()
            try:
                await self._round()
            except LightningError:
                pass  # the transport already retried; ask again next round
            await anyio.sleep(next(intervals))

    async def _round(self) -> None:
        api = self._owner._api
        seen: set[str] = set()
        token: str | None = None
        while self._waiting:
            resp = await api.list_cloud_spaces(self._ts, limit=1000, page_token=token)
            for cs in resp.cloudspaces or []:
                if cs.id in self._waiting and cs.code_status is not None:
                    seen.add(cs.id)
                    self._offer(cs.id, StudioState.from_model(cs.code_status))
            token = resp.next_page_token or None
            if not token or not (self._waiting.keys() - seen):
                break
        rest = [sid for sid in self._waiting if sid not in seen]
        if rest:

            async def one(sid: str) -> None:
                resp = await api.get_cloud_space_instance_status(self._ts, sid)
                self._offer(sid, StudioState.from_model(resp))

            await map_outcomes(one, rest, concurrency=64)


class Studios:
    """``client.studios``."""

    #: polling knobs (seconds); tests and impatient users may lower them
    poll_initial = 0.3
    poll_cap = 1.0

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client
        self._by_name: dict[tuple[str, str], Studio] = {}
        self._user_id: str | None = None

    @property
    def _api(self) -> CloudSpaceApi:
        return self._client.api.cloud_space

    # lookup -----------------------------------------------------------------------------

    async def _teamspace(self, teamspace: TeamspaceRef | Teamspace | None) -> Teamspace:
        return await self._client.teamspaces.resolve(teamspace)

    async def _resolve(
        self, studio: StudioRef, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Studio:
        if isinstance(studio, Studio):
            return studio
        check_name(studio, "studio")
        return await self.get(studio, teamspace=teamspace)

    async def get(
        self, name_or_id: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Studio:
        """The studio with this name (``GET .../cloudspaces?name=``) or id."""
        key = check_name(name_or_id, "studio name or id")
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

    # create / delete --------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        cloud_account: str | None = None,
        template_id: str | None = None,
        exist_ok: bool = False,
    ) -> Studio:
        """Create a studio (not started). With ``exist_ok`` an existing one is returned.

        A create that fails ambiguously (5xx, timeout) is checked by name before it is sent
        again, so a retry never makes a second studio.
        """
        name = check_name(name, "studio name")
        ts = await self._teamspace(teamspace)
        existing = await self._find_by_name(ts.id, name)
        if existing is not None:
            if exist_ok:
                return existing
            raise ConflictError(409, f"studio {name!r} already exists in teamspace {ts.name!r}")
        cluster = cloud_account or ts.default_cluster or None
        body = models.CloudSpaceServiceCreateCloudSpaceBody(
            name=name,
            display_name=name,
            cluster_id=cluster,
            seed_files=[
                models.V1CloudSpaceSeedFile(
                    path="main.py", contents="print('Hello, Lightning World!')\n"
                )
            ],
            disable_secrets=False,
            sandbox=False,
            cloud_space_environment_template_id=template_id,
        )
        cs: models.V1CloudSpace | None = None
        for attempt in range(1, 6):
            try:
                cs = await self._api.create_cloud_space(ts.id, body=body)
                break
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)) or attempt == 5:
                    if isinstance(exc, ConflictError) and exist_ok:
                        found = await self._find_by_name(ts.id, name)
                        if found is not None:
                            return found
                    raise
                found = await self._find_by_name(ts.id, name)
                if found is not None:
                    return self._remember(found)
                await anyio.sleep(random.uniform(0.1, 0.5) * attempt)
        assert cs is not None
        studio = Studio.from_model(cs, ts.id)
        # like the SDK: register a lightning run with local source (its answer is ignored)
        await self._api.create_lightning_run(
            ts.id, studio.id, body={"clusterId": studio.cluster_id, "localSource": True}
        )
        return self._remember(studio)

    def _remember(self, studio: Studio) -> Studio:
        self._by_name[(studio.teamspace_id, studio.name)] = studio
        return studio

    def _forget(self, studio: Studio) -> None:
        for key in [k for k, v in self._by_name.items() if v.id == studio.id]:
            del self._by_name[key]

    async def delete(
        self,
        studio: StudioRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete a studio (``DELETE .../cloudspaces/{id}``, retried: DELETE is idempotent)."""
        try:
            s = await self._resolve(studio, teamspace)
            await self._api.delete_cloud_space(s.teamspace_id, s.id)
        except NotFoundError:
            if not missing_ok:
                raise
            return
        self._forget(s)

    # status -----------------------------------------------------------------------------

    async def state(
        self, studio: StudioRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> StudioState:
        """A :class:`StudioState` from ``GET .../codestatus``."""
        s = await self._resolve(studio, teamspace)
        return await self._state(s)

    async def status(
        self, studio: StudioRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> StudioStatus:
        """The studio's :class:`StudioStatus` (wire-flows §4.6)."""
        return (await self.state(studio, teamspace=teamspace)).status

    async def _state(self, s: Studio) -> StudioState:
        resp = await self._api.get_cloud_space_instance_status(s.teamspace_id, s.id)
        return StudioState.from_model(resp)

    def _intervals(self) -> Iterator[float]:
        return poll_intervals(self.poll_initial, self.poll_cap)

    async def wait(
        self,
        studio: StudioRef,
        status: StudioStatus | str = StudioStatus.RUNNING,
        *,
        timeout: float | None = 600.0,  # noqa: ASYNC109
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> StudioState:
        """Poll until the studio reaches ``status`` (for RUNNING: running *and* ready).

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds (None = no limit), and
        :class:`StudioError` if the studio fails while waiting for it to run.
        """
        target = StudioStatus(status)
        check_timeout(timeout)
        s = await self._resolve(studio, teamspace)
        return await self._wait(s, target, Deadline(timeout))

    async def _wait(
        self, s: Studio, target: StudioStatus, deadline: Deadline, *, track: str = ""
    ) -> StudioState:
        intervals = self._intervals()
        while True:
            state = await self._state(s)
            if _judge(s, state, target, track):
                return state
            if deadline.expired():
                raise WaitTimeoutError(
                    f"studio {s} did not reach {target.value} within {deadline.timeout:g} s "
                    f"(last status {state.status.value})"
                )
            await deadline.sleep(next(intervals))

    # start / stop / switch --------------------------------------------------------------

    async def start(
        self,
        studio: StudioRef,
        machine: Machine | str | None = None,
        *,
        interruptible: bool | None = None,
        max_runtime: int | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 900.0,  # noqa: ASYNC109
    ) -> StudioState:
        """Start the studio on ``machine`` (default ``cpu-4``) and, with ``wait``, poll until
        it runs and is ready. Starting a studio that is already starting or running on that
        machine is a no-op (a running studio on another machine raises :class:`StudioError`;
        use :meth:`switch_machine`). ``interruptible`` defaults to
        ``LIGHTNING_INTERRUPTIBLE_OVERRIDE``, then to the teamspace setting."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        if max_runtime is not None:
            check_positive_int(max_runtime, "max_runtime")
        s = await self._resolve(studio, teamspace)
        deadline = Deadline(timeout)
        instance = await self._ensure_started(s, m, interruptible, max_runtime, deadline)
        if not wait:
            return await self._state(s)
        return await self._wait(s, StudioStatus.RUNNING, deadline, track=instance)

    async def _spot(self, s: Studio, interruptible: bool | None) -> bool:
        if interruptible is not None:
            return interruptible
        env = _env_interruptible()
        if env is not None:
            return env
        try:
            ts = await self._client.teamspaces.get_by_id(s.teamspace_id)
        except LightningError:
            return False
        return ts.start_studios_on_spot

    async def _ensure_started(
        self,
        s: Studio,
        m: Machine,
        interruptible: bool | None,
        max_runtime: int | None,
        deadline: Deadline,
        known: StudioState | None = None,
    ) -> str:
        """Send the start unless the studio already starts/runs; return the live instance id
        ("" if unknown). ``known``: a state just read by the caller (saves a request)."""
        state = known if known is not None else await self._state(s)
        live = state.live_instance()
        if live:
            on = state.requested_machine if live == state.requested_instance_id else state.machine
            if state.status is StudioStatus.RUNNING and on and on != m.value:
                raise StudioError(
                    f"studio {s} is already running on {on}, not {m.value}; "
                    "use switch_machine() to change it"
                )
            return live
        if state.status is StudioStatus.STOPPING:
            state = await self._wait(s, StudioStatus.STOPPED, deadline)
        before = state.terminal_instances()
        compute: dict[str, Any] = {"name": m.value, "spot": await self._spot(s, interruptible)}
        if max_runtime is not None:
            compute["requestedRunDurationSeconds"] = str(max_runtime)
        body = {"computeConfig": compute}
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._api.start_cloud_space_instance(s.teamspace_id, s.id, body=body)
                return ""
            except (ConflictError, BadRequestError) as exc:
                # "already running/starting" (e.g. our own earlier attempt got through)
                state = await self._state(s)
                live = state.live_instance(before)
                if live and (isinstance(exc, ConflictError) or _already_message(exc)):
                    on = (
                        state.requested_machine
                        if live == state.requested_instance_id
                        else state.machine
                    )
                    if on and on != m.value:
                        raise StudioError(
                            f"studio {s} is already running on {on}, not {m.value}; "
                            "use switch_machine() to change it"
                        ) from exc
                    return live
                raise
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)):
                    raise
                if attempt >= 6 or deadline.expired():
                    raise
                # the server may have acted on it: look before sending it again
                state = await self._state(s)
                live = state.live_instance(before)
                if live:
                    return live
                await deadline.sleep(random.uniform(0.05, 0.3) * attempt)

    async def stop(
        self,
        studio: StudioRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 300.0,  # noqa: ASYNC109
    ) -> StudioState:
        """Stop the studio (a no-op if it is stopped) and, with ``wait``, poll until stopped."""
        check_timeout(timeout)
        s = await self._resolve(studio, teamspace)
        deadline = Deadline(timeout)
        state = await self._state(s)
        if state.status is StudioStatus.STOPPED and not state.live_instance():
            return state
        if state.status is not StudioStatus.STOPPING:
            attempt = 0
            while True:
                attempt += 1
                try:
                    await self._api.stop_cloud_space_instance(s.teamspace_id, s.id)
                    break
                except LightningError as exc:
                    # stopping twice is harmless: re-send after ambiguous failures
                    retryable = is_ambiguous(exc) or isinstance(exc, RateLimitError)
                    if not retryable or attempt >= 6 or deadline.expired():
                        raise
                    await deadline.sleep(random.uniform(0.05, 0.3) * attempt)
        if not wait:
            return await self._state(s)
        return await self._wait(s, StudioStatus.STOPPED, deadline)

    async def switch_machine(
        self,
        studio: StudioRef,
        machine: Machine | str,
        *,
        interruptible: bool | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = 900.0,  # noqa: ASYNC109
    ) -> StudioState:
        """Move a running studio to another machine (wire-flows §4.9): ``PUT .../codeconfig``,
        wait for the new instance's initial restore, ``POST .../switch-confirm``, wait until
        the switched studio is ready."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        s = await self._resolve(studio, teamspace)
        deadline = Deadline(timeout)
        state = await self._state(s)
        if state.status is not StudioStatus.RUNNING:
            raise StudioError(f"studio {s} must be running to switch machines ({state.status})")
        if state.machine == m.value and not state.requested_instance_id:
            return state
        body = {"computeConfig": {"name": m.value, "spot": await self._spot(s, interruptible)}}
        await self._api.update_cloud_space_instance_config(s.teamspace_id, s.id, body=body)
        intervals = self._intervals()
        seen_requested = False
        while True:
            resp = await self._api.get_cloud_space_instance_status(s.teamspace_id, s.id)
            watched = None
            if resp.requested is not None:
                seen_requested = True
                watched = resp.requested
            elif seen_requested or resp.in_use is not None:
                watched = resp.in_use
            startup = watched.startup_status if watched is not None else None
            if startup is not None and startup.initial_restore_finished:
                break
            if watched is not None and str(watched.phase or "") == _PHASE + "FAILED":
                raise StudioError(f"switching studio {s} failed: {watched.status_message}")
            if deadline.expired():
                raise WaitTimeoutError(f"switching studio {s} to {m.value} timed out")
            await deadline.sleep(next(intervals))
        await self._api.switch_cloud_space_instance(s.teamspace_id, s.id)
        intervals = self._intervals()
        while True:
            state = await self._state(s)
            if state.ready and not state.requested_instance_id:
                return state
            if deadline.expired():
                raise WaitTimeoutError(f"switching studio {s} to {m.value} timed out")
            await deadline.sleep(next(intervals))

    async def keep_alive(
        self, studio: StudioRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> None:
        """Tell the service the studio is in use (``POST .../keep-alive``), once. The SDK
        does this every 30 s while it believes the studio runs."""
        s = await self._resolve(studio, teamspace)
        await self._api.keep_alive_cloud_space_instance(s.teamspace_id, s.id, body={})

    # commands ---------------------------------------------------------------------------

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

        Submits ``POST .../execute`` (detached) and polls the NDJSON status stream with a
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
        resp = await self._api.execute_command_in_cloud_space(
            s.teamspace_id, s.id, body={"command": command, "detached": True}
        )
        session = resp.session_name or ""
        if not session:
            raise CommandError(f"studio {s} did not return a session for the command")
        intervals = poll_intervals(min(0.2, self.poll_initial), self.poll_cap)
        output = ""
        while True:
            items = [
                item
                async for item in self._api.get_long_running_command_in_cloud_space_stream(
                    s.teamspace_id, s.id, session
                )
            ]
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

    # fleets -----------------------------------------------------------------------------

    async def create_many(
        self,
        names: AsyncOrSyncIterable[str],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        cloud_account: str | None = None,
        exist_ok: bool = False,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[str, Studio]]:
        """Create many studios; one :class:`Outcome` per name, in input order."""
        check_positive_int(concurrency, "concurrency")

        async def one(name: str) -> Studio:
            return await self.create(
                name, teamspace=teamspace, cloud_account=cloud_account, exist_ok=exist_ok
            )

        return await map_outcomes(
            one, names, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    async def _prefetch(
        self, refs: builtins.list[StudioRef], teamspace: TeamspaceRef | Teamspace | None
    ) -> dict[str, StudioState]:
        """Resolve many names with one walk of the teamspace's listing (1000 per page)
        instead of one lookup each; returns the codeStatus seen for each studio."""
        names = {r for r in refs if isinstance(r, str)}
        if len(names) < 16:
            return {}
        ts = await self._teamspace(teamspace)
        states: dict[str, StudioState] = {}
        async for cs in self._api.list_cloud_spaces_iter(ts.id, limit=1000):
            studio = Studio.from_model(cs, ts.id)
            if studio.name in names or studio.id in names:
                key = studio.name if studio.name in names else studio.id
                self._by_name[(ts.id, key)] = studio
                if cs.code_status is not None:
                    states[studio.id] = StudioState.from_model(cs.code_status)
        return states

    async def _many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        action: Callable[[StudioRef, Callable[[str], _Board]], Awaitable[StudioState]],
        *,
        concurrency: int,
        on_progress: ProgressCallback | None,
        stop_on_error: bool,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        boards: dict[str, _Board] = {}
        async with anyio.create_task_group() as tg:

            def board(teamspace_id: str) -> _Board:
                b = boards.get(teamspace_id)
                if b is None:
                    b = boards[teamspace_id] = _Board(self, teamspace_id)
                    tg.start_soon(b.run)
                return b

            outs = await map_outcomes(
                lambda ref: action(ref, board), studios, concurrency=concurrency,
                on_progress=on_progress, stop_on_error=stop_on_error,
            )  # fmt: skip
            tg.cancel_scope.cancel()
        return outs

    async def start_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        machine: Machine | str | None = None,
        *,
        interruptible: bool | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 900.0,  # noqa: ASYNC109
        concurrency: int = 512,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Start many studios; one :class:`Outcome` per studio, in input order.

        Each studio is started at most once (see :meth:`start`), a failure of one never
        affects the others, and the client's limiter keeps the request rate within what the
        service accepts. Names are resolved with one walk of the teamspace's listing, and the
        waits share paged list calls (each listed studio carries its status) rather than
        polling every studio. ``concurrency`` bounds the studios in progress; ``timeout``
        applies to each studio."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        known: dict[str, StudioState] = {}
        if isinstance(studios, Collection) and not isinstance(studios, str):
            known = await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef, board: Callable[[str], _Board]) -> StudioState:
            s = await self._resolve(ref, teamspace)
            deadline = Deadline(timeout)
            instance = await self._ensure_started(
                s, m, interruptible, None, deadline, known=known.pop(s.id, None)
            )
            if not wait:
                return await self._state(s)
            return await board(s.teamspace_id).wait(s, StudioStatus.RUNNING, deadline, instance)

        return await self._many(
            studios, one, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    async def stop_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 300.0,  # noqa: ASYNC109
        concurrency: int = 512,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[StudioRef, StudioState]]:
        """Stop many studios; one :class:`Outcome` per studio, in input order. The waits
        share paged list calls like :meth:`start_many`."""
        check_timeout(timeout)
        check_positive_int(concurrency, "concurrency")
        if isinstance(studios, Collection) and not isinstance(studios, str):
            await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef, board: Callable[[str], _Board]) -> StudioState:
            s = await self._resolve(ref, teamspace)
            state = await self.stop(s, wait=False, timeout=timeout)
            if not wait or (state.status is StudioStatus.STOPPED and not state.live_instance()):
                return state
            return await board(s.teamspace_id).wait(s, StudioStatus.STOPPED, Deadline(timeout))

        return await self._many(
            studios, one, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    async def delete_many(
        self,
        studios: AsyncOrSyncIterable[StudioRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = True,
        concurrency: int = 64,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[StudioRef, None]]:
        """Delete many studios; one :class:`Outcome` per studio, in input order."""
        check_positive_int(concurrency, "concurrency")
        if isinstance(studios, Collection) and not isinstance(studios, str):
            await self._prefetch(builtins.list(studios), teamspace)

        async def one(ref: StudioRef) -> None:
            await self.delete(ref, teamspace=teamspace, missing_ok=missing_ok)

        return await map_outcomes(
            one, studios, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip
