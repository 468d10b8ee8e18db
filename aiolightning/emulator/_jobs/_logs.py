"""Job logs: the lines a job has printed by now (they grow while it runs), and the paged
`page-logs` route (by `jobIds`, or every machine of a multi-machine job by `mmtId`).

A job prints `Timings.log_lines` "step" lines spread over its running time, or as many as its
spec's `EMULATOR_LOG_LINES` env var says. Entries are ordered by time (then machine rank), so
lines printed later always come after those already served: the offset page token stays
valid while the log grows. `since`/`until` (RFC 3339) bound the entries' timestamps
(inclusive); `line` counts each job's lines from 1.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from .._call import Call, RouteTable
from .._errors import ApiError
from ._model import Job

if TYPE_CHECKING:
    from .._state import State

__all__ = ["routes"]

routes = RouteTable()


def _lines_wanted(st: State, j: Job) -> int:
    for e in j.spec.get("env") or []:
        if isinstance(e, dict) and e.get("name") == "EMULATOR_LOG_LINES":
            try:
                return max(0, int(str(e.get("value"))))
            except ValueError:
                raise ApiError(400, "invalid EMULATOR_LOG_LINES: expected an integer") from None
    return max(0, st.config.timings.log_lines)


def _log_lines(st: State, j: Job, now: float) -> list[tuple[float, str, str]]:
    """(time, severity, message) of the lines the job has printed by `now`."""
    n = _lines_wanted(st, j)
    start = j.t_running
    end = j.t_finishing
    if j.stop_at is not None:
        end = min(end, j.stop_at)
    if now < start or (j.stop_at is not None and j.stop_at < start):
        return []
    lines: list[tuple[float, str, str]] = [(start, "info", "+ lightning")]
    cmd = str(j.spec.get("command") or "") or str(j.spec.get("image") or "")
    lines.append((start, "info", f"Starting job {j.name}: {cmd}"))
    span = max(end - start, 1e-6)
    limit = min(now, end)
    for i in range(n):
        t = start + span * (i + 1) / (n + 1)
        if t > limit:
            break
        lines.append((t, "info", f"[{j.name}] step {i + 1}/{n}"))
    if j.stop_at is not None and now >= j.stop_at and j.stop_at <= j.t_finishing:
        lines.append((j.stop_at, "warning", f"Job {j.name} received a stop request"))
    elif now >= j.t_finishing:
        if j.outcome == "complete":
            lines.append((j.t_finishing, "info", f"Job {j.name} finished successfully"))
        else:
            lines.append((j.t_finishing, "error", f"Job {j.name} failed with exit code 1"))
    return lines


def _time(st: State, name: str, value: str) -> float | None:
    """An RFC 3339 query value as the clock's time (None when absent)."""
    if not value:
        return None
    try:
        wall = _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(400, f"invalid {name}: an RFC 3339 timestamp is required") from None
    return wall - st.clock.wall(0.0)


@routes.route("GET", "/v1/projects/{projectId}/page-logs")
async def page_logs(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    job_ids = call.qlist("jobIds")
    mmt_id = call.q("mmtId")
    if mmt_id:
        job_ids = [*job_ids, *st.mmts.get(p, mmt_id).job_ids]
    if not job_ids:
        if call.q("deploymentId") or call.q("sandboxId") or call.qlist("sandboxCommandIds"):
            return {"entries": [], "nextPageToken": "", "followUrl": ""}
        raise ApiError(400, "one of jobIds, deploymentId, mmtId, sandboxId is required")
    now = st.clock.now()
    severity = call.q("severity").lower()
    query = call.q("query")
    # microsecond timestamps: a line whose own timestamp is `since` is kept (inclusive)
    since = _time(st, "since", call.q("since"))
    until = _time(st, "until", call.q("until"))
    picked: list[tuple[float, int, int, str, str, Job]] = []
    jobs = [st.jobs.get(p, jid) for jid in job_ids]
    for rank, j in enumerate(jobs):
        for no, (t, sev, msg) in enumerate(_log_lines(st, j, now), start=1):
            if since is not None and t < since - 2e-6:
                continue
            if until is not None and t > until + 2e-6:
                continue
            if (severity and sev != severity) or (query and query not in msg):
                continue
            picked.append((t, rank, no, sev, msg, j))
    if len(jobs) > 1:
        picked.sort(key=lambda e: (e[0], e[1], e[2]))
    size_raw = call.q("pageSize")
    try:
        size = int(size_raw) if size_raw else 1000
    except ValueError:
        raise ApiError(400, f"invalid pageSize {size_raw!r}") from None
    token = call.q("pageToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise ApiError(400, f"invalid pageToken {token!r}") from None
    size = max(1, min(size, 5000))
    chunk = picked[offset : offset + size]
    nxt = str(offset + size) if offset + size < len(picked) else ""
    entries = [
        {
            "message": msg,
            "timestamp": st.iso(t),
            "line": str(no),
            "severity": sev,
            "resourceId": j.id,
        }
        for t, _rank, no, sev, msg, j in chunk
    ]
    return {"entries": entries, "nextPageToken": nxt, "followUrl": ""}
