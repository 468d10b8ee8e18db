"""Jobs (single-machine jobs): submit, find, list, status, wait, stop, delete, logs, and the
fleet helpers ``submit_many``, ``poll`` and ``watch``.

Wire facts are in wire-flows §5. The ``V1Job.state`` string maps to :class:`JobStatus` as in
§5.4. ``poll``/``watch`` refresh many jobs with the paged list call
(``GET /v1/projects/{pid}/jobs?limit=..&pageToken=..``) when that costs fewer requests than
one ``GET`` per job, and learn per teamspace how many pages a full walk takes.

Idempotency: a job create that fails ambiguously (5xx, timeout, dropped connection after
sending) is checked with ``GET .../jobs/find?name=`` before it is sent again. Each submit
carries a random ``AIOLIGHTNING_SUBMIT_ID`` environment variable so the check recognises
*this* submission even when an older job has the same name; a retried submit never creates
a second job.
"""

from __future__ import annotations

import builtins
import enum
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .. import models
from .._errors import InvalidArgumentError, LightningError, NotFoundError, RateLimitError
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
    from ..api.jobs import JobsApi
    from .studios import Studio
    from .teamspaces import Teamspace, TeamspaceRef

__all__ = [
    "Job",
    "JobChange",
    "JobNotFoundError",
    "JobRef",
    "JobRequest",
    "JobStatus",
    "Jobs",
    "LogLine",
]

SUBMIT_ID_ENV = "AIOLIGHTNING_SUBMIT_ID"


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.COMPLETED, JobStatus.FAILED)

    @classmethod
    def from_state(cls, state: str | None) -> JobStatus:
        """Map a ``V1Job.state`` string (wire-flows §5.4); unknown values are pending."""
        return _STATE_TO_STATUS.get((state or "").lower(), JobStatus.PENDING)


_STATE_TO_STATUS: dict[str, JobStatus] = {
    "pending": JobStatus.PENDING,
    "creating": JobStatus.PENDING,
    "running": JobStatus.RUNNING,
    "restarting": JobStatus.RUNNING,
    "stopping": JobStatus.STOPPING,
    "stop": JobStatus.STOPPING,
    "delete": JobStatus.STOPPING,
    "complete": JobStatus.STOPPING,
    "fail": JobStatus.STOPPING,
    "stopped": JobStatus.STOPPED,
    "deleted": JobStatus.STOPPED,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
}


class JobNotFoundError(NotFoundError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True, slots=True)
class Job:
    """A job. Pass it (or its name or id) to the ``client.jobs`` methods."""

    id: str
    name: str
    teamspace_id: str
    state: str = ""  # the raw V1Job.state string
    image: str = ""
    command: str = ""
    studio_id: str = ""
    cluster_id: str = ""
    machine: str = ""
    created_at: str = ""
    started_at: str = ""
    stopped_at: str = ""
    total_cost: float | None = None
    raw: models.V1Job | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> JobStatus:
        return JobStatus.from_state(self.state)

    @classmethod
    def from_model(cls, j: models.V1Job, teamspace_id: str = "") -> Job:
        spec = j.spec
        return cls(
            id=j.id or "",
            name=j.name or "",
            teamspace_id=j.project_id or teamspace_id,
            state=j.state or "",
            image=(spec.image or "") if spec is not None else "",
            command=(spec.command or "") if spec is not None else "",
            studio_id=(spec.cloudspace_id or "") if spec is not None else "",
            cluster_id=(spec.cluster_id or "") if spec is not None else "",
            machine=(spec.instance_name or spec.instance_type or "") if spec is not None else "",
            created_at=str(j.created_at or ""),
            started_at=str(j.started_at or ""),
            stopped_at=str(j.stopped_at or ""),
            total_cost=j.total_cost,
            raw=j,
        )

    def __str__(self) -> str:
        return self.name or self.id


#: A job given as a :class:`Job`, its name, or its id.
JobRef = Job | str

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class JobRequest:
    """Arguments of one :meth:`Jobs.submit`, for :meth:`Jobs.submit_many`."""

    name: str
    command: str | None = None
    image: str | None = None
    studio: Studio | str | None = None
    machine: Machine | str | None = None
    env: Mapping[str, str] | None = None
    interruptible: bool = False
    cloud_account: str | None = None
    entrypoint: str | None = _UNSET
    max_runtime: int | None = None
    tags: Sequence[str] | None = None
    image_secret: str | None = None
    cloud_account_auth: bool = False
    path_mappings: Mapping[str, str] | None = None
    max_run_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class JobChange:
    """A job's status changed (``previous`` is None the first time a job is seen)."""

    job: Job
    previous: JobStatus | None
    status: JobStatus


@dataclass(frozen=True, slots=True)
class LogLine:
    message: str
    timestamp: str = ""
    line: int = 0
    severity: str = ""


def _path_mappings(mappings: Mapping[str, str] | None) -> builtins.list[dict[str, str]]:
    out = []
    for container_path, target in (mappings or {}).items():
        connection, sep, path = target.rpartition(":")
        if not sep:
            connection, path = target, ""
        out.append(
            {"containerPath": container_path, "connectionName": connection, "connectionPath": path}
        )
    return out


class Jobs:
    """``client.jobs``."""

    poll_initial = 0.3
    poll_cap = 2.0
    #: page size of the paged list calls used by poll/watch
    list_page_size = 1000

    def __init__(self, client: AsyncLightning) -> None:
        self._client = client
        self._pages_estimate: dict[str, int] = {}  # teamspace id -> pages of a full walk

    @property
    def _api(self) -> JobsApi:
        return self._client.api.jobs

    async def _teamspace(self, teamspace: TeamspaceRef | Teamspace | None) -> Teamspace:
        return await self._client.teamspaces.resolve(teamspace)

    # lookup -----------------------------------------------------------------------------

    async def find(
        self, name: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job | None:
        """The job called ``name`` (``GET .../jobs/find?name=``), or None."""
        name = check_name(name, "job name")
        ts = await self._teamspace(teamspace)
        return await self._find(ts.id, name)

    async def _find(self, teamspace_id: str, name: str) -> Job | None:
        try:
            j = await self._api.find_job(teamspace_id, name=name)
        except NotFoundError:
            return None
        return Job.from_model(j, teamspace_id)

    async def get(
        self, name_or_id: str, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job:
        """The job with this name or id."""
        key = check_name(name_or_id, "job name or id")
        ts = await self._teamspace(teamspace)
        found = await self._find(ts.id, key)
        if found is not None:
            return found
        try:
            return Job.from_model(await self._api.get_job(ts.id, key), ts.id)
        except NotFoundError:
            raise JobNotFoundError(f"job {key!r} does not exist in teamspace {ts.name!r}") from None

    async def _resolve(self, job: JobRef, teamspace: TeamspaceRef | Teamspace | None) -> Job:
        if isinstance(job, Job):
            return job
        return await self.get(job, teamspace=teamspace)

    async def refresh(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> Job:
        """The job as the service sees it now (``GET .../jobs/{id}``)."""
        j = await self._resolve(job, teamspace)
        return Job.from_model(await self._api.get_job(j.teamspace_id, j.id), j.teamspace_id)

    async def status(
        self, job: JobRef, *, teamspace: TeamspaceRef | Teamspace | None = None
    ) -> JobStatus:
        return (await self.refresh(job, teamspace=teamspace)).status

    async def list(
        self,
        teamspace: TeamspaceRef | Teamspace | None = None,
        *,
        page_size: int | None = 100,
        state: str | None = None,
        standalone: bool | None = None,
    ) -> AsyncIterator[Job]:
        """Every job of the teamspace, following ``nextPageToken`` (``limit=page_size``)."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        ts = await self._teamspace(teamspace)
        pager = self._api.list_jobs_iter(ts.id, limit=page_size, state=state, standalone=standalone)
        async for j in pager:
            yield Job.from_model(j, ts.id)

    # submit -----------------------------------------------------------------------------

    def _body(
        self, req: JobRequest, *, studio: Studio | None, cluster_id: str, submit_id: str
    ) -> dict[str, Any]:
        machine = resolve_machine(req.machine)
        env = [{"name": str(k), "value": str(v)} for k, v in (req.env or {}).items()]
        env.append({"name": SUBMIT_ID_ENV, "value": submit_id})
        spec: dict[str, Any] = {
            "cloudspaceId": studio.id if studio is not None else "",
            "clusterId": cluster_id,
            "command": req.command or "",
            "env": env,
            "image": req.image or "",
            "instanceName": machine.value,
            "runId": "",
            "spot": bool(req.interruptible),
            "imageClusterCredentials": bool(req.cloud_account_auth),
            "imageSecretRef": req.image_secret or "",
            "pathMappings": _path_mappings(req.path_mappings),
            "volumes": [],
        }
        if studio is None:
            if req.entrypoint is _UNSET:
                if req.command:
                    spec["entrypoint"] = "sh -c"
            elif req.entrypoint:
                spec["entrypoint"] = req.entrypoint
        if req.max_runtime is not None:
            spec["requestedRunDurationSeconds"] = str(req.max_runtime)
        if req.max_run_attempts:
            spec["maxRunAttempts"] = req.max_run_attempts
        body: dict[str, Any] = {"name": req.name, "spec": spec}
        if req.tags:
            body["tags"] = builtins.list(req.tags)
        return body

    @staticmethod
    def _validate(req: JobRequest) -> None:
        check_name(req.name, "job name")
        if (req.image is None) == (req.studio is None):
            raise InvalidArgumentError("give exactly one of image= and studio=")
        if req.image is not None:
            check_name(req.image, "image")
        if req.studio is not None:
            if isinstance(req.studio, str):
                check_name(req.studio, "studio")
            check_name(req.command, "command (a studio job needs one)")
        elif req.command is not None and not isinstance(req.command, str):
            raise InvalidArgumentError(f"command must be a string, got {req.command!r}")
        resolve_machine(req.machine)
        if req.max_runtime is not None:
            check_positive_int(req.max_runtime, "max_runtime")
        if req.max_run_attempts is not None:
            check_positive_int(req.max_run_attempts, "max_run_attempts")
        for tag in req.tags or ():
            check_name(tag, "tag")
        if isinstance(req.tags, str):
            raise InvalidArgumentError("tags must be a list of strings, not a string")
        for k in req.env or {}:
            check_name(k, "env variable name")

    async def submit(
        self,
        name: str,
        command: str | None = None,
        *,
        image: str | None = None,
        studio: Studio | str | None = None,
        machine: Machine | str | None = None,
        env: Mapping[str, str] | None = None,
        interruptible: bool = False,
        cloud_account: str | None = None,
        entrypoint: str | None = _UNSET,
        max_runtime: int | None = None,
        tags: Sequence[str] | None = None,
        image_secret: str | None = None,
        cloud_account_auth: bool = False,
        path_mappings: Mapping[str, str] | None = None,
        max_run_attempts: int | None = None,
        teamspace: TeamspaceRef | Teamspace | None = None,
    ) -> Job:
        """Submit a job running ``command`` in a docker ``image`` or in a ``studio``'s
        environment, on ``machine`` (default ``cpu-4``). Body as in wire-flows §5.1.

        Arguments are checked before any request. The server may rename the job to keep
        names unique; the returned :class:`Job` has the name it got.
        """
        req = JobRequest(
            name=name, command=command, image=image, studio=studio, machine=machine, env=env,
            interruptible=interruptible, cloud_account=cloud_account, entrypoint=entrypoint,
            max_runtime=max_runtime, tags=tags, image_secret=image_secret,
            cloud_account_auth=cloud_account_auth, path_mappings=path_mappings,
            max_run_attempts=max_run_attempts,
        )  # fmt: skip
        return await self._submit(req, teamspace)

    async def _submit(self, req: JobRequest, teamspace: TeamspaceRef | Teamspace | None) -> Job:
        self._validate(req)
        ts = await self._teamspace(teamspace)
        studio_obj: Studio | None = None
        if req.studio is not None:
            studio_obj = await self._client.studios._resolve(req.studio, ts)
            cluster_id = studio_obj.cluster_id
        else:
            cluster_id = req.cloud_account or ts.default_cluster or ""
        submit_id = uuid.uuid4().hex
        body = self._body(req, studio=studio_obj, cluster_id=cluster_id, submit_id=submit_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                j = await self._api.create_job(ts.id, body=body)
                return Job.from_model(j, ts.id)
            except LightningError as exc:
                if not (is_ambiguous(exc) or isinstance(exc, RateLimitError)) or attempt >= 6:
                    raise
                # the server may have created it: look before sending it again
                found = await self._find_submitted(ts.id, req, submit_id)
                if found is not None:
                    return found
                await anyio.sleep(random.uniform(0.05, 0.3) * attempt)

    async def _find_submitted(
        self, teamspace_id: str, req: JobRequest, submit_id: str
    ) -> Job | None:
        found = await self._find(teamspace_id, req.name)
        if found is None or found.raw is None:
            return None
        spec = found.raw.spec
        env = (spec.env if spec is not None else None) or []
        for var in env:
            if var.name == SUBMIT_ID_ENV:
                return found if var.value == submit_id else None
        # a server that does not echo env: accept the same command and image
        same = found.command == (req.command or "") and found.image == (req.image or "")
        return found if same and req.studio is None else None

    async def submit_many(
        self,
        requests: AsyncOrSyncIterable[JobRequest],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        concurrency: int = 64,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
    ) -> builtins.list[Outcome[JobRequest, Job]]:
        """Submit many jobs; one :class:`Outcome` per request, in input order. A bad request
        fails alone (before any request of its own); no job is ever created twice."""
        check_positive_int(concurrency, "concurrency")

        async def one(req: JobRequest) -> Job:
            return await self._submit(req, teamspace)

        return await map_outcomes(
            one, requests, concurrency=concurrency, on_progress=on_progress,
            stop_on_error=stop_on_error,
        )  # fmt: skip

    # wait / stop / delete ---------------------------------------------------------------

    async def wait(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = 3600.0,  # noqa: ASYNC109
    ) -> Job:
        """Poll until the job is terminal (completed, stopped or failed); return it."""
        check_timeout(timeout)
        j = await self._resolve(job, teamspace)
        deadline = Deadline(timeout)
        intervals = poll_intervals(self.poll_initial, self.poll_cap)
        while True:
            j = await self.refresh(j)
            if j.status.is_terminal:
                return j
            if deadline.expired():
                raise WaitTimeoutError(
                    f"job {j} did not finish within {timeout:g} s (status {j.status.value})"
                )
            await deadline.sleep(next(intervals))

    async def stop(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        wait: bool = True,
        timeout: float | None = 600.0,  # noqa: ASYNC109
    ) -> Job:
        """Stop the job (``PUT {"state": "stop"}``; a no-op when it is terminal or already
        stopping) and, with ``wait``, poll until it is terminal."""
        check_timeout(timeout)
        j = await self.refresh(job, teamspace=teamspace)
        if j.status.is_terminal:
            return j
        if j.status is not JobStatus.STOPPING:
            resp = await self._api.update_job(j.teamspace_id, j.id, body={"state": "stop"})
            j = Job.from_model(resp, j.teamspace_id)
        if not wait:
            return j
        return await self.wait(j, timeout=timeout)

    async def delete(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete the job (``DELETE .../jobs/{id}?cloudspaceId=..``)."""
        try:
            j = await self._resolve(job, teamspace)
            await self._api.delete_job(j.teamspace_id, j.id, cloudspace_id=j.studio_id)
        except NotFoundError:
            if not missing_ok:
                raise

    async def logs(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[LogLine]:
        """The job's log lines (``GET .../page-logs?jobIds=..``), page by page."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        j = await self._resolve(job, teamspace)
        token: str | None = None
        first = True
        while True:
            resp = await self._api.get_logs(
                j.teamspace_id,
                job_ids=[j.id],
                since=since,
                until=until,
                page_size=str(page_size) if page_size is not None else None,
                page_token=token,
            )
            entries = builtins.list(resp.entries or [])
            if first and entries and entries[0].message == "+ lightning":
                entries = entries[1:]
            first = False
            for e in entries:
                try:
                    line = int(e.line or 0)
                except (TypeError, ValueError):
                    line = 0
                yield LogLine(
                    message=e.message or "",
                    timestamp=str(e.timestamp or ""),
                    line=line,
                    severity=str(e.severity or ""),
                )
            token = resp.next_page_token or None
            if not token:
                return

    # fleets: poll and watch --------------------------------------------------------------

    async def poll(
        self,
        jobs: Iterable[JobRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        concurrency: int = 64,
    ) -> dict[str, Job]:
        """One refresh of many jobs: ``{job id: Job}``.

        Per teamspace, uses the paged list call when a full walk of the teamspace's jobs
        takes fewer requests than one ``GET`` per job (the walk stops early once every
        wanted job was seen), else concurrent ``GET``\\ s. Jobs that could not be read
        (deleted meanwhile, or failing) are left out of the result.
        """
        check_positive_int(concurrency, "concurrency")
        found, _gone = await self._poll_many(builtins.list(jobs), teamspace, concurrency)
        return found

    async def _poll_many(
        self,
        jobs: builtins.list[JobRef],
        teamspace: TeamspaceRef | Teamspace | None,
        concurrency: int,
    ) -> tuple[dict[str, Job], set[str]]:
        resolved = [j for j in jobs if isinstance(j, Job)]
        names = [j for j in jobs if not isinstance(j, Job)]
        if names:
            outs = await map_outcomes(
                lambda n: self._resolve(n, teamspace), names, concurrency=concurrency
            )
            resolved.extend(o.result() for o in outs)
        by_ts: dict[str, dict[str, Job]] = {}
        for j in resolved:
            by_ts.setdefault(j.teamspace_id, {})[j.id] = j
        found: dict[str, Job] = {}
        gone: set[str] = set()
        for ts_id, wanted in by_ts.items():
            f, g = await self._poll_teamspace(ts_id, wanted, concurrency)
            found.update(f)
            gone |= g
        return found, gone

    def _use_list(self, ts_id: str, n: int) -> bool:
        pages = self._pages_estimate.get(ts_id)
        return n > 20 and (pages is None or pages < n)

    async def _poll_teamspace(
        self, ts_id: str, wanted: dict[str, Job], concurrency: int
    ) -> tuple[dict[str, Job], set[str]]:
        out: dict[str, Job] = {}
        gone: set[str] = set()
        missing = set(wanted)
        if self._use_list(ts_id, len(wanted)):
            token: str | None = None
            walked = 0
            while missing:
                resp = await self._api.list_jobs(ts_id, limit=self.list_page_size, page_token=token)
                walked += 1
                for j in resp.jobs or []:
                    if j.id in missing:
                        missing.discard(j.id)
                        out[j.id] = Job.from_model(j, ts_id)
                token = resp.next_page_token or None
                if not token:
                    self._pages_estimate[ts_id] = walked
                    break
            else:
                # stopped early: a full walk takes at least this many pages
                self._pages_estimate[ts_id] = max(walked, self._pages_estimate.get(ts_id, 0))
        if missing:
            outs = await map_outcomes(
                lambda jid: self._api.get_job(ts_id, jid),
                builtins.list(missing),
                concurrency=concurrency,
            )
            for o in outs:
                if o.ok and o.value is not None:
                    out[o.item] = Job.from_model(o.value, ts_id)
                elif isinstance(o.error, NotFoundError):
                    gone.add(o.item)
        return out, gone

    async def watch(
        self,
        jobs: Iterable[JobRef],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        interval: float | None = None,
        concurrency: int = 64,
    ) -> AsyncIterator[JobChange]:
        """Yield a :class:`JobChange` whenever a job's status changes (and once when each
        job is first seen), until every job is terminal. Polls with :meth:`poll` (paged list
        calls when cheaper than one GET per job).

        Raises :class:`WaitTimeoutError` if jobs are still not terminal after ``timeout``.
        A job deleted meanwhile is reported once as stopped; one that fails to refresh is
        simply asked again next round.
        """
        check_timeout(timeout)
        if interval is not None:
            check_timeout(interval, "interval")
        check_positive_int(concurrency, "concurrency")
        deadline = Deadline(timeout)
        refs = builtins.list(jobs)
        known: dict[str, JobStatus | None] = {}
        current, gone = await self._poll_many(refs, teamspace, concurrency)
        pending: dict[str, Job] = {}
        for j in refs:
            if isinstance(j, Job) and j.id not in current and j.id not in gone:
                pending[j.id] = j  # not readable yet: keep asking
        intervals = poll_intervals(self.poll_initial, self.poll_cap)
        while True:
            for jid, j in current.items():
                prev = known.get(jid)
                if prev is not j.status:
                    known[jid] = j.status
                    yield JobChange(j, prev, j.status)
                if j.status.is_terminal:
                    pending.pop(jid, None)
                else:
                    pending[jid] = j
            for jid in gone:
                old = pending.pop(jid, None)
                if old is not None and known.get(jid) is not JobStatus.STOPPED:
                    yield JobChange(old, known.get(jid), JobStatus.STOPPED)
            if not pending:
                return
            if deadline.expired():
                raise WaitTimeoutError(
                    f"{len(pending)} job(s) still not terminal after {timeout:g} s"
                )
            await deadline.sleep(interval if interval is not None else next(intervals))
            current, gone = await self._poll_many(
                builtins.list(pending.values()), None, concurrency
            )
