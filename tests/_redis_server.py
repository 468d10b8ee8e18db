"""A real ``redis-server`` for the shared-limiter tests: a free loopback port, a temp dir.

Started once per test session (``redis_url`` in conftest.py) with a random password, no
persistence; the tests that need it are skipped, with the reason printed, only when the
``redis-server`` binary cannot be found (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "redis_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at this moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Run ``redis-server`` in ``workdir``; yields ``redis://:<password>@127.0.0.1:<port>/0``.

    Raises ``FileNotFoundError`` when there is no ``redis-server`` on PATH."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "redis-server is not on PATH (Debian: apt-get install redis-server)"
        )
    password = secrets.token_hex(12)
    for _ in range(3):  # another process may take the free port before redis binds it
        port = free_port()
        log = workdir / f"redis-{port}.log"
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir), "--requirepass", password, "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10.0
        while proc.poll() is None and not _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None and _accepts(port):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError(f"redis-server did not start; see {workdir}")
    try:
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
