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
    # Faults AFTER the act: the handler has run and committed its change (the studio is
    # started, the job created, the part stored), then the answer is lost or spoiled, as a
    # proxy or a dying connection does it. One draw per answered request (/v1 and /_storage;
    # never a streamed answer, already on the wire), in this order of the fractions:
    drop_after_rate: float = 0.0  # the connection is closed without an answer
    error_after_rate: float = 0.0  # 500/502/503 instead of the answer, some with an HTML body
    truncate_rate: float = 0.0  # half the answer is sent (half the head if no body), then close
    # seconds slept after the commit, before the answer (so a client timeout fires first),
    # on a slow_commit_rate fraction of the answered requests
    slow_commit: float = 0.0
    slow_commit_rate: float = 1.0
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
    * `runs:created`: lightning runs registered for a studio (`GET .../runs` lists them)
    * `starts:<studio id>`: start requests that passed validation (including a repeat while
      it already runs); `switches:<studio id>`, `stops:<job id>`
    * `deletes:studio`, `deletes:job`, `commands`, `keepalives`, `sdk_command_history`
    * faults after the act: `faults:drop_after`, `faults:error_after`, `faults:truncate`,
      `faults:slow_commit`; every fault kind also as `faults:<kind>:<METHOD> <route template>`
    * effects, counted where the state really changes (a start of a running studio is not
      one): `effects:<kind>` and, per item, `effects:<kind>:<key>`; read them with
      :meth:`effects`. Kinds and keys: `studio_created` (name), `studio_started`,
      `studio_stopped`, `studio_deleted`, `machine_switched` (studio id), `command_executed`
      (`<studio id>:<command>`), `studio_kept_alive` (studio id: every keep-alive, an
      idempotent effect: a repeat restarts the idle clock from about the same time), `job_created` (the name asked for: a second job under a
      server-chosen `<name>-2` shows as 2), `job_stopped`, `job_deleted` (job id),
      `mmt_created` (name), `mmt_stopped`, `mmt_deleted` (multi-machine job id),
      `deployment_created` (name), `deployment_updated` (id: only an update that changes
      something), `deployment_stopped` / `deployment_started` (id: its replicas went to 0 /
      from 0), `deployment_deleted`,
      `part_stored` (`<path>#<part number>`), `upload_completed`, `blob_deleted` (path;
      a studio's files as `cloudspaces/<studio id>/<path>`)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def incr(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def effect(self, kind: str, key: str) -> None:
        """Count one `kind` effect on the item `key` (the total and the item's tally)."""
        with self._lock:
            self._c[f"effects:{kind}"] += 1
            self._c[f"effects:{kind}:{key}"] += 1

    def effects(self, kind: str | None = None) -> dict[str, Any]:
        """The per-item tallies: `{key: n}` of one kind, or `{kind: {key: n}}` of all."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for name, n in self._c.items():
                if name.startswith("effects:"):
                    k, sep, key = name[8:].partition(":")
                    if sep:
                        out.setdefault(k, {})[key] = n
        if kind is not None:
            return dict(out.get(kind, {}))
        return dict(out)

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._c)

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
