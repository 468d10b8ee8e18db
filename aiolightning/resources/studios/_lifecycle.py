"""Creating, deleting, starting, stopping and switching one studio, each exactly once.

:meth:`Studios.start` checks ``codestatus`` first and does nothing when the studio is
already starting or running; after an ambiguous failure of the start POST (5xx, timeout,
dropped connection) it checks again before re-sending, and a 409/400 "already running"
answer counts as success once ``codestatus`` confirms it. Create, stop, switch and delete
ask the server the same way (``.._reconcile``), so a lost answer never repeats an effect.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

import anyio

from ... import models
from ..._errors import (
    BadRequestError,
    ConflictError,
    InvalidArgumentError,
    LightningError,
    NotFoundError,
    RateLimitError,
)
from .._polling import (
    Deadline,
    WaitTimeoutError,
    check_positive_int,
    check_timeout,
    is_ambiguous,
)
from .._reconcile import delete_once, mutate_once, no_ambiguous_resend
from ..machines import Machine, resolve_machine
from ._models import (
    _PHASE,
    Studio,
    StudioError,
    StudioRef,
    StudioState,
    StudioStatus,
    check_studio_name,
)
from ._status import StudioWaits

if TYPE_CHECKING:
    from ..teamspaces import Teamspace, TeamspaceRef


def _env_interruptible() -> bool | None:
    value = os.environ.get("LIGHTNING_INTERRUPTIBLE_OVERRIDE")
    if value is None:
        return None
    return value.strip().lower() == "true"


def _already_message(exc: LightningError) -> bool:
    text = str(exc).lower()
    return "already" in text and ("running" in text or "start" in text or "pending" in text)


class StudioLifecycle(StudioWaits):
    """``client.studios``: create and delete studios; start, stop and switch their machines."""

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

        Like the SDK, a new studio gets a lightning run registered (``POST .../runs``). A
        create that fails ambiguously (5xx, timeout, lost answer) is checked by name before
        it is sent again, so a retry never makes a second studio; the run registration is
        checked the same way (the studio's runs are listed), so the studio is never left
        without its run nor given two, and a studio that exists is never reported failed.
        ``exist_ok`` on a studio whose run registration was lost registers it (once)."""
        name = check_studio_name(name)
        ts = await self._teamspace(teamspace)
        existing = await self._existing(ts.id, name)
        if existing is not None:
            if exist_ok:
                await self._register_run(existing, check_first=True)
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
        for attempt in range(1, 6):
            try:
                cs = await self._api.create_cloud_space(ts.id, body=body)
                break
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)) or attempt == 5:
                    if isinstance(exc, ConflictError) and exist_ok:
                        found = await self._find_by_name(ts.id, name)
                        if found is not None:
                            await self._register_run(found, check_first=True)
                            return found
                    raise
                found = await self._find_by_name(ts.id, name)
                if found is not None:
                    # created by the attempt whose answer was lost: finish the operation
                    await self._register_run(found, check_first=True)
                    return self._remember(found)
                await anyio.sleep(random.uniform(0.1, 0.5) * attempt)
        studio = Studio.from_model(cs, ts.id)
        await self._register_run(studio, check_first=False)
        return self._remember(studio)

    async def _register_run(self, studio: Studio, *, check_first: bool) -> None:
        """Like the SDK, register a lightning run with local source for a new studio
        (wire-flows §4.3; its answer is ignored), exactly once: after an ambiguous failure
        the studio's runs are listed before the POST is sent again."""
        if check_first and await self._has_run(studio):
            return
        body = {"clusterId": studio.cluster_id, "localSource": True}

        async def send() -> bool:
            await self._api.create_lightning_run(studio.teamspace_id, studio.id, body=body)
            return True

        async def took_effect() -> bool | None:
            return True if await self._has_run(studio) else None

        await mutate_once(send, took_effect)

    async def _has_run(self, studio: Studio) -> bool:
        resp = await self._api.list_lightning_runs(studio.teamspace_id, studio.id)
        return bool(resp.runs)

    async def delete(
        self,
        studio: StudioRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete a studio (``DELETE .../cloudspaces/{id}``). Re-sent after an ambiguous
        failure; a 404 to a re-sent DELETE means the first one deleted it."""
        policy = no_ambiguous_resend(self._client.transport.retry)
        try:
            s = await self._resolve(studio, teamspace)
            await delete_once(
                lambda: self._api.delete_cloud_space(s.teamspace_id, s.id, retry=policy)
            )
        except NotFoundError:
            if not missing_ok:
                raise
            return
        self._forget(s)

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
        create: bool = False,
    ) -> StudioState:
        """Start the studio on ``machine`` (default ``cpu-4``) and, with ``wait``, poll until
        it runs and is ready. Starting a studio that is already starting or running on that
        machine is a no-op (a running studio on another machine raises :class:`StudioError`;
        use :meth:`switch_machine`). ``interruptible`` defaults to
        ``LIGHTNING_INTERRUPTIBLE_OVERRIDE``, then to the teamspace setting.

        A studio that does not exist raises :class:`StudioNotFoundError`, unless ``create``
        is true: then ``studio`` (a string) is a name, and a studio of that name is created
        first if there is none (as ``aiolightning studios start NAME --create`` does)."""
        m = resolve_machine(machine)
        check_timeout(timeout)
        if max_runtime is not None:
            check_positive_int(max_runtime, "max_runtime")
        s = await self._resolve_or_create(studio, teamspace, create)
        deadline = Deadline(timeout)
        instance = await self._ensure_started(s, m, interruptible, max_runtime, deadline)
        if not wait:
            return await self._state(s)
        return await self._wait(s, StudioStatus.RUNNING, deadline, track=instance)

    async def _resolve_or_create(
        self, studio: StudioRef, teamspace: TeamspaceRef | Teamspace | None, create: bool
    ) -> Studio:
        """The studio; with ``create``, a string is a name, and the studio is created unless
        one of that name exists (one lookup, then the create)."""
        if not isinstance(create, bool):
            raise InvalidArgumentError(f"create must be True or False, got {create!r}")
        if not create or not isinstance(studio, str):
            return await self._resolve(studio, teamspace)
        name = check_studio_name(studio)
        ts = await self._teamspace(teamspace)
        cached = self._by_name.get((ts.id, name))
        if cached is not None:
            return cached
        return await self.create(name, teamspace=ts, exist_ok=True)

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
            await self._send_stop(s, deadline)
        if not wait:
            return await self._state(s)
        return await self._wait(s, StudioStatus.STOPPED, deadline)

    async def _send_stop(self, s: Studio, deadline: Deadline) -> None:
        """Stop ``s`` once: after an ambiguous failure the studio's state says whether the
        stop took effect before it is sent again."""

        async def send() -> bool:
            await self._api.stop_cloud_space_instance(s.teamspace_id, s.id)
            return True

        async def took_effect() -> bool | None:
            now = await self._state(s)
            stopping = now.status in (StudioStatus.STOPPING, StudioStatus.STOPPED)
            return True if stopping or not now.live_instance() else None

        await mutate_once(send, took_effect, deadline=deadline)

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
        policy = no_ambiguous_resend(self._client.transport.retry)

        async def request_switch() -> bool:
            await self._api.update_cloud_space_instance_config(
                s.teamspace_id, s.id, body=body, retry=policy
            )
            return True

        async def switch_requested() -> bool | None:
            # a repeated PUT would request a second new machine: look first
            now = await self._state(s)
            requested = now.requested_instance_id and now.requested_machine == m.value
            return True if requested or now.machine == m.value else None

        await mutate_once(request_switch, switch_requested, deadline=deadline)
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

        async def confirm() -> bool:
            await self._api.switch_cloud_space_instance(s.teamspace_id, s.id)
            return True

        async def confirmed() -> bool | None:
            now = await self._state(s)
            return True if not now.requested_instance_id and now.machine == m.value else None

        try:
            await mutate_once(confirm, confirmed, deadline=deadline)
        except BadRequestError:
            # "no machine switch is in progress": a lost earlier confirm did it
            if await confirmed() is None:
                raise
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
        """Tell the service the studio is in use (``POST .../keep-alive``; the SDK does it
        every 30 s). Idempotent in effect (the idle clock restarts from now), so one whose
        answer was lost is sent again: nothing can be read back to tell if it landed."""
        s = await self._resolve(studio, teamspace)
        policy = self._client.transport.retry.with_options(retry_non_idempotent=True)
        await self._api.keep_alive_cloud_space_instance(s.teamspace_id, s.id, body={}, retry=policy)
