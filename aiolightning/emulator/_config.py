"""Knobs of the emulator: fault injection, simulated durations, and counters.

Every field is live: changing it on a running emulator takes effect on the next request
(state machines capture their durations when a studio starts or a job is created).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counters", "EmulatorConfig", "Faults", "Timings"]


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every /v1 (and /_storage) request
    latency_jitter: float = 0.0  # extra uniform random [0, jitter] seconds
    rate_limit: float | None = None  # requests/s per credential (token bucket); None = off
    rate_burst: float | None = None  # bucket size; None = max(1, rate_limit)
    error_rate: float = 0.0  # fraction of /v1 requests answered with a 5xx (503 or 500)
    drop_rate: float = 0.0  # fraction of /v1 requests whose connection is dropped
    url_ttl: float = 3600.0  # lifetime of presigned storage URLs, seconds
    part_failure_rate: float = 0.0  # fraction of presigned part PUTs answered with 500
    # fraction of presigned PUTs stored with one byte damaged, as if in transit: the
    # ETag is the MD5 of the damaged bytes, so only a client that checks it notices
    corrupt_rate: float = 0.0
    # seconds an incomplete multipart upload lives before it is expired and its parts deleted
    # (an object store's lifecycle rule; the blobs API has no abort call); <= 0: never
    upload_ttl: float = 86400.0
    # GET/HEAD <base>/blobs/<path> answer 307 to a presigned, expiring URL on the emulator's
    # second listener (another origin, so clients must drop Authorization) instead of the bytes
    redirect_downloads: bool = False
    # a bucket under SSE-KMS: PUTs answer 32-hex ETags that are not the MD5 of the bytes (the
    # same for the same bytes), and PUT/GET/HEAD say "x-amz-server-side-encryption: aws:kms"
    kms_etags: bool = False
    kms_headers: bool = True  # False: those ETags without the headers (a store that hides it)


@dataclass
class Timings:
    studio_start: float = 0.3  # seconds from start to RUNNING + restore finished
    studio_stop: float = 0.1
    studio_switch: float = 0.3
    job_pending: float = 0.1
    job_creating: float = 0.1
    job_running: float = 0.3
    job_finishing: float = 0.1  # complete/fail -> completed/failed
    job_stop: float = 0.1
    command: float = 0.05  # time for a studio command to finish (plus its `sleep`s)
    job_outcome: str = "complete"  # "complete" or "fail"
    log_lines: int = 20  # "step i/N" lines a job prints while running


@dataclass
class EmulatorConfig:
    faults: Faults = field(default_factory=Faults)
    timings: Timings = field(default_factory=Timings)
    admin: bool = False  # serve /_emulator/... admin routes
    page_size: int = 50  # default page size of list operations
    token_ttl: float = 43200.0  # longest lifetime of a login JWT, seconds


class Counters:
    """Thread-safe counters of what the emulator did.

    * `requests`: every /v1 and /_storage request; `requests:<METHOD> <route template>`
      (e.g. `requests:GET /v1/projects/{projectId}/cloudspaces/{id}/codestatus`);
      `responses:<status>`
    * faults: `throttled` (429s), `faults:latency`, `faults:error` (5xx), `faults:drop`;
      `unimplemented` (501s); the storage module adds its own (`faults:part_failure`, ...)
    * `creates:studio:<name>`, `creates:job:<name>`, `creates:teamspace:<name>`: create
      requests that named it (counted before duplicate checks, so a second create shows)
    * `starts:<studio id>`: start requests that passed validation (including a repeat while
      it already runs); `switches:<studio id>`, `stops:<job id>`
    * `deletes:studio`, `deletes:job`, `commands`, `keepalives`, `sdk_command_history`
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def incr(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._c)

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
