"""Jobs (single-machine jobs): submit, find, list, status, wait, stop, delete, logs, and the
fleet helpers ``submit_many``, ``poll`` and ``watch``.

Wire facts are in wire-flows §5. The rooms: ``_models`` (the value types and the state
mapping), ``_lookup`` (find/get/refresh/list), ``_submit`` (idempotent submit),
``_watch`` (wait/poll/watch) and ``_jobs`` (the :class:`Jobs` resource itself).
"""

from __future__ import annotations

from ._jobs import Jobs
from ._models import Job, JobChange, JobNotFoundError, JobRef, JobRequest, JobStatus, LogLine

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
