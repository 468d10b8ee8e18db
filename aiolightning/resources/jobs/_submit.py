"""Idempotent job submission: the create body, argument checks and the marker lookup.

A job create that fails ambiguously (5xx, timeout, dropped connection after sending) is
checked with ``GET .../jobs/find?name=`` before it is sent again. Each submit carries a
random ``AIOLIGHTNING_SUBMIT_ID`` environment variable so the check recognises *this*
submission even when an older job has the same name, in which case the service named the
new one ``<name>-2`` (``-3`` ...): those names are checked too. A retried submit never
creates a second job.
"""

from __future__ import annotations

import builtins
import dataclasses
import random
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ..._errors import ConflictError, InvalidArgumentError, LightningError, RateLimitError
from ...fanout import AsyncOrSyncIterable, Outcome, ProgressCallback, map_outcomes
from ...runs import JournalLike, journaled
from .._bulk import check_bulk, check_bulk_item
from .._polling import check_name, check_positive_int, check_workload, is_ambiguous
from ..machines import Machine, resolve_machine
from ._models import UNSET, Job, JobRequest
from ._multi import SUBMIT_ID_ENV, JobMulti
from ._runs import IfExists, check_if_exists, submit_plan

if TYPE_CHECKING:
    from ..studios import Studio
    from ..teamspaces import Teamspace, TeamspaceRef

_EXPECTED = "JobRequest objects (or mappings of their fields)"
_Request = TypeVar("_Request", bound="JobRequest | Mapping[str, Any]")
_FIELDS = frozenset(f.name for f in dataclasses.fields(JobRequest))


def _is_request(item: object) -> bool:
    return isinstance(item, JobRequest | Mapping)


def _as_request(item: JobRequest | Mapping[str, Any]) -> JobRequest:
    """The item as a JobRequest: a mapping needs a ``name`` and JobRequest's fields only."""
    check_bulk_item(item, "jobs.submit_many", _EXPECTED, _is_request)
    if isinstance(item, JobRequest):
        return item
    unknown = sorted(str(k) for k in item if k not in _FIELDS)
    if unknown or "name" not in item:
        problem = f"unknown field(s) {', '.join(unknown)}" if unknown else "no 'name'"
        raise TypeError(
            f"jobs.submit_many(): a mapping with {problem}; JobRequest's fields are "
            f"{', '.join(f.name for f in dataclasses.fields(JobRequest))}"
        )
    return JobRequest(**item)


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


class JobSubmit(JobMulti):
    """The part of ``client.jobs`` that submits jobs, one or many."""

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
            if req.entrypoint is UNSET:
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
        check_workload(req.image, req.studio, req.command, "job")
        resolve_machine(req.machine)
        check_positive_int(req.machines, "machines")
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
        entrypoint: str | None = UNSET,
        max_runtime: int | None = None,
        tags: Sequence[str] | None = None,
        image_secret: str | None = None,
        cloud_account_auth: bool = False,
        path_mappings: Mapping[str, str] | None = None,
        max_run_attempts: int | None = None,
        machines: int = 1,
        teamspace: TeamspaceRef | Teamspace | None = None,
        if_exists: IfExists = "new",
    ) -> Job:
        """Submit a job running ``command`` in a docker ``image`` or in a ``studio``'s
        environment, on ``machine`` (default ``cpu-4``). Body as in wire-flows §5.1.

        Arguments are checked before any request. The server may rename the job to keep
        names unique; the returned :class:`Job` has the name it got. With ``machines > 1``
        it is a multi-machine job (wire-flows §5.7): ``machines(job)`` lists its per-machine
        jobs, ``logs(job, rank=n)`` reads one machine's log. A job of that name already there:
        ``if_exists="new"`` submits anyway (the service renames it ``<name>-2``), ``"skip"``
        returns the existing one, ``"error"`` raises :class:`ConflictError`.
        """
        req = JobRequest(
            name=name, command=command, image=image, studio=studio, machine=machine, env=env,
            interruptible=interruptible, cloud_account=cloud_account, entrypoint=entrypoint,
            max_runtime=max_runtime, tags=tags, image_secret=image_secret,
            cloud_account_auth=cloud_account_auth, path_mappings=path_mappings,
            max_run_attempts=max_run_attempts, machines=machines,
        )  # fmt: skip
        check_if_exists(if_exists)
        return await self._submit(req, teamspace, if_exists=if_exists)

    async def _submit(
        self,
        req: JobRequest,
        teamspace: TeamspaceRef | Teamspace | None,
        *,
        if_exists: IfExists = "new",
        submit_id: str | None = None,
    ) -> Job:
        self._validate(req)
        ts = await self._teamspace(teamspace)
        if if_exists != "new":
            existing = await self._find(ts.id, req.name)
            if existing is not None:
                if if_exists == "skip":
                    return existing
                raise ConflictError(409, f"a job named {req.name!r} already exists ({existing.id})")
        studio_obj: Studio | None = None
        if req.studio is not None:
            studio_obj = await self._client.studios._resolve(req.studio, ts)
            cluster_id = studio_obj.cluster_id
        else:
            cluster_id = req.cloud_account or ts.default_cluster or ""
        submit_id = submit_id or uuid.uuid4().hex
        body = self._body(req, studio=studio_obj, cluster_id=cluster_id, submit_id=submit_id)
        if req.machines > 1:
            return await self._submit_multi(ts.id, req, body, submit_id)
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
        """The job this submission created, if the server acted on it.

        The service gives a new job whose name is taken the first free ``<name>-N``
        (N = 2, 3, ...; wire-flows §5.1), so the candidates are looked up in that order
        (``GET .../jobs/find?name=``) until two names in a row are free (one gap may be a
        job deleted since), and the one carrying this submission's marker is it. A server
        that echoes no env at all: the newest candidate with the same command and image.
        """
        newest_alike: Job | None = None
        free_in_a_row = 0
        n = 1
        while free_in_a_row < 2:
            found = await self._find(teamspace_id, req.name if n == 1 else f"{req.name}-{n}")
            n += 1
            if found is None or found.raw is None:
                free_in_a_row += 1
                continue
            free_in_a_row = 0
            spec = found.raw.spec
            markers = [
                var.value
                for var in (spec.env if spec is not None else None) or []
                if var.name == SUBMIT_ID_ENV
            ]
            if submit_id in markers:
                return found
            if not markers and (found.command, found.image) == (req.command or "", req.image or ""):
                newest_alike = found
        return newest_alike if req.studio is None else None

    async def submit_many(
        self,
        requests: AsyncOrSyncIterable[_Request],
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        concurrency: int = 64,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        if_exists: IfExists = "new",
        journal: JournalLike | None = None,
    ) -> builtins.list[Outcome[_Request, Job]]:
        """Submit many jobs; one :class:`Outcome` per request, in input order. A request is a
        :class:`JobRequest` or a mapping of its fields (``{"name": ..., "command": ...}``).
        A bad request fails alone (before any request of its own); no job is ever created
        twice. Wrong types raise :class:`TypeError` (see :mod:`aiolightning.resources._bulk`).

        ``if_exists`` as in :meth:`submit`. With ``journal`` (a file path or a
        :class:`~aiolightning.Journal`) a rerun after a crash or a cancel sends only what the
        service never saw: done jobs are returned from the journal, jobs in flight are looked
        up by their submit marker first."""
        check_positive_int(concurrency, "concurrency")
        check_if_exists(if_exists)
        check_bulk(requests, "jobs.submit_many", _EXPECTED, _is_request)
        if isinstance(requests, Collection):
            for item in requests:
                _as_request(item)  # a mapping's fields too, before anything is sent
        plan = submit_plan(self, teamspace, if_exists, _as_request)
        async with journaled(journal, plan) as step:
            return await map_outcomes(
                step, requests, concurrency=concurrency, on_progress=on_progress,
                stop_on_error=stop_on_error,
            )  # fmt: skip
