"""Running the emulator: in-process (`Emulator`), on a thread (`EmulatorThread`), or in a
subprocess (`spawn_emulator`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .._sync._portal import register_local_server, unregister_local_server
from ._app import build_app
from ._config import Counters, EmulatorConfig
from ._info import INFO_KEYS, EmulatorInfo
from ._state import State
from ._storage import ArtifactStore
from ._tls import TLS_HOSTS, make_tls_files, require_tls_extra

__all__ = ["Emulator", "EmulatorThread", "cli_args", "spawn_emulator"]


class Emulator(EmulatorInfo):
    """The emulator on the running event loop.

    ```
    async with Emulator(seed=0, config=EmulatorConfig(...)) as emu:
        emu.url, emu.user_id, emu.api_key, emu.teamspace_id, ...
    ```

    ``tls=True`` serves both listeners over https with a certificate for 127.0.0.1, ::1 and
    localhost (and ``host``) signed by a CA made at start: ``emu.ca_file`` (``tls`` extra).
    """

    def __init__(
        self,
        seed: int = 0,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        counters: Counters | None = None,
        tls: bool = False,
    ) -> None:
        if tls:
            require_tls_extra()  # before anything starts: the error names the extra
        self.seed = seed
        self.config = config if config is not None else EmulatorConfig()
        self.counters = counters if counters is not None else Counters()
        self.host = host
        self.port = port
        self.tls = tls
        self.ca_file: str | None = None
        self.state = State(seed, self.config, self.counters)
        st = self.state
        self.url = ""
        self.storage_url = ""
        self.user_id = st.user.id
        self.api_key = st.user.api_key
        self.username = st.user.username
        self.teamspace_id = st.teamspace.id
        self.teamspace_name = st.teamspace.name
        self.org_name = st.org.name
        self.org_id = st.org.id
        self.cluster_id = st.cluster.id
        self._runner: web.AppRunner | None = None
        self._tmp: str | None = None
        self._store: ArtifactStore | None = None

    @property
    def storage(self) -> ArtifactStore:
        """The artifacts store (open uploads, objects), available while the emulator runs."""
        if self._store is None:
            raise RuntimeError("the emulator is not running: its storage exists only while it runs")
        return self._store

    async def start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="aiolightning-emulator-")
        ssl_context = None
        if self.tls:
            names = TLS_HOSTS
            if self.host not in (*names, "0.0.0.0", "::", ""):
                names += (self.host,)
            tls_files = make_tls_files(Path(self._tmp) / "tls", names)
            ssl_context = tls_files.server_context()
            self.ca_file = str(tls_files.ca_file)
        store = ArtifactStore(
            Path(self._tmp),
            self.state.token_secret + b"storage",
            self.config,
            self.counters,
            lambda: self.url,
            lambda: self.storage_url,
        )
        store.studio_resolver = self.state.studios.id_by_name
        self._store = store
        app = build_app(self.state, store)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(
            runner, self.host, self.port, reuse_address=True, ssl_context=ssl_context
        )
        await site.start()
        addr = runner.addresses[0]
        self.port = int(addr[1])
        # A second listener for redirected downloads: another port is another origin, so a
        # client following the redirect must drop the Lightning Authorization header.
        storage_site = web.TCPSite(
            runner, self.host, 0, reuse_address=True, ssl_context=ssl_context
        )
        await storage_site.start()
        storage_port = int(runner.addresses[-1][1])
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self.storage_url = f"{scheme}://{host}:{storage_port}"
        self.state.base_url = self.url
        for url in (self.url, self.storage_url):  # a blocking client on this loop would hang
            register_local_server(url, asyncio.get_running_loop())

    async def close(self) -> None:
        for url in (self.url, self.storage_url):
            unregister_local_server(url)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self.ca_file = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


_PROXIED = frozenset({*INFO_KEYS, "port", "host", "seed", "tls"})


class EmulatorThread(EmulatorInfo):
    """The emulator on a background thread with its own event loop (for synchronous code).

    ```
    with EmulatorThread(seed=0) as emu:
        requests.get(emu.url + "/v1/auth/whoami", auth=(emu.user_id, emu.api_key))
    ```
    """

    def __init__(
        self,
        seed: int = 0,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self.emulator = Emulator(seed, config, host=host, port=port, tls=tls)
        self.config = self.emulator.config
        self.counters = self.emulator.counters
        self.state = self.emulator.state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:
        if name in _PROXIED:
            return getattr(self.emulator, name)
        raise AttributeError(name)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await self.emulator.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.emulator.close()

        try:
            loop.run_until_complete(main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aiolightning-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self) -> None:
        if self._thread is None:
            return
        loop, ev = self._loop, self._stop
        if loop is not None and ev is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ev.set)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Spawned(EmulatorInfo):
    def __init__(self, info: dict[str, Any], proc: subprocess.Popen[bytes]) -> None:
        for k, v in info.items():
            setattr(self, k, v)
        self.proc = proc


def cli_args(
    seed: int = 0,
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
) -> list[str]:
    """The `python -m aiolightning.emulator` flags that reproduce these settings."""
    c = config if config is not None else EmulatorConfig()
    f, t = c.faults, c.timings
    args = ["--host", host, "--port", str(port), "--seed", str(seed)]
    pairs: list[tuple[str, Any]] = [
        ("--latency", f.latency),
        ("--jitter", f.latency_jitter),
        ("--rate-limit", f.rate_limit),
        ("--rate-burst", f.rate_burst),
        ("--error-rate", f.error_rate),
        ("--drop-rate", f.drop_rate),
        ("--url-ttl", f.url_ttl),
        ("--part-failure-rate", f.part_failure_rate),
        ("--upload-ttl", f.upload_ttl),
        ("--drop-after-rate", f.drop_after_rate),
        ("--error-after-rate", f.error_after_rate),
        ("--truncate-rate", f.truncate_rate),
        ("--slow-commit", f.slow_commit),
        ("--slow-commit-rate", f.slow_commit_rate),
        ("--studio-start", t.studio_start),
        ("--studio-stop", t.studio_stop),
        ("--studio-switch", t.studio_switch),
        ("--job-pending", t.job_pending),
        ("--job-creating", t.job_creating),
        ("--job-running", t.job_running),
        ("--job-finishing", t.job_finishing),
        ("--job-stop", t.job_stop),
        ("--command-time", t.command),
        ("--job-outcome", t.job_outcome),
        ("--log-lines", t.log_lines),
        ("--page-size", c.page_size),
        ("--token-ttl", c.token_ttl),
    ]
    for flag, value in pairs:
        if value is not None:
            args += [flag, str(value)]
    if c.admin:
        args.append("--admin")
    if f.redirect_downloads:
        args.append("--redirect-downloads")
    if tls:
        args.append("--tls")
    return args


@contextlib.contextmanager
def spawn_emulator(
    seed: int = 0,
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    python: str | None = None,
    startup_timeout: float = 30.0,
    tls: bool = False,
) -> Iterator[EmulatorInfo]:
    """Run `python -m aiolightning.emulator` in a subprocess (its own core) for the block."""
    cmd = [python or sys.executable, "-m", "aiolightning.emulator", "--json"]
    cmd += cli_args(seed, config, host=host, port=port, tls=tls)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = _readline_with_timeout(proc, startup_timeout)
        if not line:
            raise RuntimeError(f"emulator subprocess exited with {proc.wait()} before it was ready")
        info = json.loads(line)
        yield _Spawned(info, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    result: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        result.append(proc.stdout.readline())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        proc.kill()
        raise TimeoutError(f"emulator subprocess did not start within {timeout}s")
    return result[0] if result else b""
