"""Job logs: read them (``GET .../page-logs``, page by page) or follow them until the job
is terminal, for a job, a multi-machine job (all machines, or one ``rank``).

Following polls the paged endpoint (wire-flows §5.8): once the pages run out, it asks again
from the newest timestamp seen (``since`` is inclusive) and drops what it already yielded by
each resource's line number, so no line is lost or repeated across pages, polls or
reconnects (a failed poll is simply asked again: the cursor only moves after a line was
yielded). The job's state is read *before* each drain, so the lines printed up to the end
are all read before following stops.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from ..._errors import InvalidArgumentError, LightningError
from .._polling import check_positive_int, check_timeout, is_ambiguous, poll_intervals
from ._models import Job, JobRef, LogLine
from ._multi import JobMulti

if TYPE_CHECKING:
    from ...models import V1JobLogEntry
    from ..teamspaces import Teamspace, TeamspaceRef


def _line(e: V1JobLogEntry) -> LogLine:
    try:
        line = int(e.line or 0)
    except (TypeError, ValueError):
        line = 0
    return LogLine(
        message=e.message or "",
        timestamp=str(e.timestamp or ""),
        line=line,
        severity=str(e.severity or ""),
        resource_id=e.resource_id or "",
    )


class _Cursor:
    """What was yielded so far: the newest timestamp, and per resource the last line number
    (or, for entries without one, the messages seen at the newest timestamp)."""

    def __init__(self, since: str | None) -> None:
        self.since = since
        self.last: dict[str, int] = {}
        self.at_since: set[tuple[str, str]] = set()

    def is_new(self, ln: LogLine) -> bool:
        if ln.line > 0:
            return ln.line > self.last.get(ln.resource_id, 0)
        return not (ln.timestamp == self.since and (ln.resource_id, ln.message) in self.at_since)

    def advance(self, ln: LogLine) -> None:
        if ln.line > 0:
            self.last[ln.resource_id] = ln.line
        if ln.timestamp and ln.timestamp != self.since:
            self.since = ln.timestamp
            self.at_since.clear()
        self.at_since.add((ln.resource_id, ln.message))


class JobLogs(JobMulti):
    """The part of ``client.jobs`` that reads and follows logs."""

    #: how often a followed log is polled once caught up (seconds, grows to the cap)
    follow_initial = 0.2
    follow_cap = 2.0

    async def logs(
        self,
        job: JobRef,
        *,
        teamspace: TeamspaceRef | Teamspace | None = None,
        follow: bool = False,
        rank: int | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int | None = None,
        interval: float | None = None,
    ) -> AsyncIterator[LogLine]:
        """The job's log lines in order (``GET .../page-logs?jobIds=..``; a multi-machine
        job's: ``?mmtId=..``, or one machine's with ``rank``). With ``follow``, keep reading
        as the job prints until it is terminal (polled every ``interval`` s, default
        0.2 growing to 2 s) and yield each line exactly once."""
        if page_size is not None:
            check_positive_int(page_size, "page_size")
        if interval is not None:
            check_timeout(interval, "interval")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 0):
            raise InvalidArgumentError(f"rank must be an integer >= 0, got {rank!r}")
        j = await self._resolve(job, teamspace)
        source = j
        if rank is not None:
            if not j.is_multi_machine and rank != 0:
                raise InvalidArgumentError(f"job {j} runs on one machine: rank must be 0")
            source = await self._machine(j, rank) if j.is_multi_machine else j
        cursor = _Cursor(since)
        first = True
        intervals = poll_intervals(self.follow_initial, self.follow_cap)
        failures = 0
        while True:
            got = 0
            try:
                done = (await self.refresh(j)).status.is_terminal if follow else True
                async for ln in self._drain(source, cursor.since, until, page_size):
                    if first:
                        first = False
                        if ln.message == "+ lightning":
                            cursor.advance(ln)
                            continue
                    if cursor.is_new(ln):
                        cursor.advance(ln)
                        got += 1
                        yield ln
            except LightningError as exc:
                # following: a poll that failed after the transport's own retries is asked
                # again from the cursor (nothing is lost: it moves only past yielded lines)
                failures += 1
                if not follow or not is_ambiguous(exc) or failures > 10:
                    raise
                done = False
            else:
                failures = 0
            if done:
                return
            if got:
                intervals = poll_intervals(self.follow_initial, self.follow_cap)
            await anyio.sleep(interval if interval is not None else next(intervals))

    async def _drain(
        self, j: Job, since: str | None, until: str | None, page_size: int | None
    ) -> AsyncIterator[LogLine]:
        """Every page from ``since`` on, following ``nextPageToken``."""
        multi = j.is_multi_machine
        token: str | None = None
        while True:
            resp = await self._api.get_logs(
                j.teamspace_id,
                job_ids=None if multi else [j.id],
                mmt_id=j.id if multi else None,
                since=since,
                until=until,
                page_size=str(page_size) if page_size is not None else None,
                page_token=token,
            )
            for e in builtins.list(resp.entries or []):
                yield _line(e)
            token = resp.next_page_token or None
            if not token:
                return
