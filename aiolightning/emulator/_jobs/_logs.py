"""Job logs: the lines a job has printed by now, and the paged `page-logs` route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._call import Call, RouteTable
from .._errors import ApiError
from ._model import Job

if TYPE_CHECKING:
    from .._state import State

__all__ = ["routes"]

routes = RouteTable()


def _log_lines(st: State, j: Job, now: float) -> list[tuple[float, str, str]]:
    """(time, severity, message) of the lines the job has printed by `now`."""
    n = max(0, st.config.timings.log_lines)
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
    for i in range(n):
        t = start + span * (i + 1) / (n + 1)
        if t > now or t > end:
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


@routes.route("GET", "/v1/projects/{projectId}/page-logs")
async def page_logs(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    job_ids = call.qlist("jobIds")
    if not job_ids:
        if (
            call.q("deploymentId")
            or call.q("mmtId")
            or call.q("sandboxId")
            or call.qlist("sandboxCommandIds")
        ):
            return {"entries": [], "nextPageToken": "", "followUrl": ""}
        raise ApiError(400, "one of jobIds, deploymentId, mmtId, sandboxId is required")
    now = st.clock.now()
    entries: list[dict[str, Any]] = []
    severity = call.q("severity").lower()
    query = call.q("query")
    for jid in job_ids:
        j = st.jobs.get(p, jid)
        for no, (t, sev, msg) in enumerate(_log_lines(st, j, now), start=1):
            if severity and sev != severity:
                continue
            if query and query not in msg:
                continue
            entries.append(
                {
                    "message": msg,
                    "timestamp": st.iso(t),
                    "line": str(no),
                    "severity": sev,
                    "resourceId": j.id,
                }
            )
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
    chunk = entries[offset : offset + size]
    nxt = str(offset + size) if offset + size < len(entries) else ""
    return {"entries": chunk, "nextPageToken": nxt, "followUrl": ""}
