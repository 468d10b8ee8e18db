"""Storage benchmark: aiolightning vs a bare-aiohttp ceiling vs lightning-sdk, on loopback.

    python benchmarks/bench_storage.py                      # 2 GiB, 1,000 x 1 MiB files
    python benchmarks/bench_storage.py --size-gib 0.25 --files 200   # quick
    python benchmarks/bench_storage.py --no-pin             # today's shared mode instead
    python benchmarks/bench_storage.py --both               # (a) pinned, then (a) shared

Pinned (the default on a machine with 2+ cores): every contender's process runs on one core
and the emulator on another (``os.sched_setaffinity``, every thread), so the client does
not compete with the server for the CPU and its wall time measures the client. Shared
(``--no-pin``): both float over all cores, as before. Every row shows the client's
CPU-seconds per GiB (user + system of its process), the figure that carries over to other
machines; wall times on a loaded machine are noisy (the load average is printed).

The emulator runs in a subprocess (``spawn_emulator``); every contender runs in its own child
process, timed inside the child (imports and start-up excluded), which also reports its peak
RSS. Parts:

(a) one large file up and down: aiolightning ``storage.upload``/``download``; the ceiling:
    the faster of two straightforward bare-aiohttp ways, each with no checksums and no
    journal. Up: PUTs of the same parts to the same presigned URLs at the same
    concurrency, each body streamed in 1 MiB or 4 MiB chunks read with ``os.pread`` in a
    thread (one bytes object per part is ~40% slower). Down: GETs of the same object with
    a 4 MiB ``read_bufsize``, the received chunks written with one ``os.pwritev`` per 8 MiB
    in a thread, as 8 parallel ranges or one stream. lightning-sdk
    ``Teamspace.upload_file`` / ``download_file`` (same part size and worker count; its
    downloads are one stream of 32 KiB chunks without fsync). CPU columns: seconds of CPU
    of the contender's process (and its user / system split) and of the emulator while it
    ran (2 cores are shared, so (client + server) / 2 is a floor for the wall time). The
    "disk" rows write the same number of bytes from memory with the same durability and
    no network, through the page cache (pwritev, sync_file_range, fsync) and as
    aiolightning does (copied into an aligned buffer, O_DIRECT, fsync): a download that
    fsyncs cannot be faster than the faster of them, the ceiling (never waiting for the
    disk) can. ``--perf aio-down,aio-dir-down`` profiles those children with perf.
(b) ``--files`` files of 1 MiB with ``--latency-ms`` added to every request:
    aiolightning ``upload_dir``/``download_dir`` vs lightning-sdk ``upload_folder`` /
    ``download_folder``.
(c) peak RSS of the aiolightning processes vs byte budget + 100 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB


def rss_mib() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: after fork+exec, Linux's ru_maxrss
    still counts the parent's memory at fork time."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    """Wall, CPU, user and system time of this process from creation to ``stop()``."""

    def __init__(self) -> None:
        self.t, self.c, self.times = time.perf_counter(), time.process_time(), os.times()

    def stop(self) -> dict[str, Any]:
        dt, cpu, t1 = time.perf_counter() - self.t, time.process_time() - self.c, os.times()
        return {
            "seconds": dt,
            "cpu_s": cpu,
            "user_s": t1.user - self.times.user,
            "sys_s": t1.system - self.times.system,
            "rss_mib": rss_mib(),
        }


# ------------------------------------------------------------------------------ children


class Census:
    """Where a many-files run's client CPU goes: the event loop (the main thread's CPU) vs
    worker threads, the thread hops, and the CPU (thread_time) of the file-system calls a
    durable download makes, each wrapped while the run lasts."""

    CALLS = ("open", "posix_fallocate", "pwritev", "pwrite", "fsync", "close", "replace", "stat")

    def __init__(self) -> None:
        import threading

        import anyio.to_thread

        self._lock = threading.Lock()
        self.cpu: dict[str, float] = dict.fromkeys(self.CALLS, 0.0)
        self.count: dict[str, int] = dict.fromkeys(self.CALLS, 0)
        self.hops = 0
        self._saved: dict[str, Any] = {}
        for name in self.CALLS:
            self._saved[name] = getattr(os, name)
            setattr(os, name, self._wrap(name, self._saved[name]))
        run_sync = anyio.to_thread.run_sync
        self._saved["run_sync"] = run_sync

        def counted(*a: Any, **kw: Any) -> Any:
            self.hops += 1
            return run_sync(*a, **kw)

        anyio.to_thread.run_sync = counted  # type: ignore[assignment]
        self.loop0 = time.thread_time()

    def _wrap(self, name: str, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            t = time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                dt = time.thread_time() - t
                with self._lock:
                    self.cpu[name] += dt
                    self.count[name] += 1

        return timed

    def stop(self) -> dict[str, Any]:
        import anyio.to_thread

        loop_cpu = time.thread_time() - self.loop0
        for name in self.CALLS:
            setattr(os, name, self._saved[name])
        anyio.to_thread.run_sync = self._saved["run_sync"]
        return {"loop_cpu_s": loop_cpu, "hops": self.hops, "fs_cpu": self.cpu, "fs_n": self.count}


async def _aio(args: argparse.Namespace) -> dict[str, Any]:
    from aiolightning import AsyncLightning
    from aiolightning.transfer import TransferConfig

    cfg = TransferConfig(
        part_size=args.part_mib * MiB,
        multipart_threshold=args.part_mib * MiB,
        byte_budget=args.budget_mib * MiB,
        max_parts_in_flight=args.concurrency,
        download_part_size=args.part_mib * MiB,
        download_threshold=args.part_mib * MiB,
        journal_dir=Path(args.work) / "journals",
        fsync=not args.no_fsync,
        verify_checksums=not args.no_verify,
    )
    # experiments: AIOLIGHTNING_BENCH_CONFIG='{"download_threshold": 4294967296}' etc.
    cfg = cfg.with_options(**json.loads(os.environ.get("AIOLIGHTNING_BENCH_CONFIG") or "{}"))
    async with AsyncLightning(
        args.url, user_id=args.user, api_key=args.key, teamspace=args.teamspace
    ) as client:
        client.storage.configure(cfg)
        await client.teamspaces.resolve(None)  # warm the name resolution (not timed)
        census = Census() if args.op == "aio-dir-down" else None
        clock = Clock()
        if args.op == "aio-up":
            await client.storage.upload(args.local, args.remote)
        elif args.op == "aio-down":
            await client.storage.download(args.remote, args.local)
        elif args.op == "aio-dir-up":
            await client.storage.upload_dir(args.local, args.remote)
        elif args.op == "aio-dir-down":
            await client.storage.download_dir(args.remote, args.local)
        result = clock.stop()
        if census is not None:
            result["census"] = census.stop()
            # the listing alone, once more: its share of the run's CPU
            c0 = time.process_time()
            listed = [e async for e in client.storage.list(args.remote, recursive=True)]
            result["census"]["list_cpu_s"] = time.process_time() - c0
            result["census"]["files"] = len(listed)
        peak = client.storage.engine.budget.peak
    from aiolightning.transfer._md5 import backend, hasher_stats

    calls, chunks = hasher_stats()
    return {
        **result,
        "budget_peak_mib": peak / MiB,
        "md5": backend() + (f", {chunks / calls:.1f} streams/call" if calls else ""),
    }


async def _bare(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling: the same wire flow with nothing but aiohttp and os.pread/pwrite."""
    import aiohttp

    part = args.part_mib * MiB
    auth = aiohttp.BasicAuth(args.user, args.key)
    base = f"{args.url}/v1/projects/{args.teamspace_id}/artifacts"
    conn = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=conn, read_bufsize=4 * MiB) as http:
        clock = Clock()
        if args.op == "bare-up":
            size = os.stat(args.local).st_size
            n = -(-size // part)
            body = {
                "blobs": [{"path": args.remote, "parts": n, "part_size": part}],
                "cluster_id": args.cluster,
            }
            async with http.post(base + "/blobs", json=body, auth=auth) as r:
                res = (await r.json())["results"][0]
            fd = os.open(args.local, os.O_RDONLY)
            sem = asyncio.Semaphore(args.concurrency)
            etags: dict[int, str] = {}

            chunk = args.bare_chunk_mib * MiB

            async def part_body(a: int, b: int) -> Any:
                # the straightforward fast way: a streamed body of big chunks, each read
                # with os.pread in a thread (sending a whole part as one bytes object is
                # ~40% slower here: the loop copies what the socket does not take at once)
                while a < b:
                    data = await asyncio.to_thread(os.pread, fd, min(chunk, b - a), a)
                    a += len(data)
                    yield data

            async def put(u: dict[str, Any]) -> None:
                k = int(u["part_number"])
                a = (k - 1) * part
                b = min(a + part, size)
                async with sem:
                    hdrs = {"Content-Length": str(b - a)}
                    async with http.put(u["url"], data=part_body(a, b), headers=hdrs) as r:
                        assert r.status == 200, r.status
                        etags[k] = r.headers["ETag"]

            await asyncio.gather(*(put(u) for u in res["urls"]))
            os.close(fd)
            parts = [{"part_number": k, "etag": etags[k]} for k in sorted(etags)]
            body = {
                "blobs": [{"path": args.remote, "upload_id": res["upload_id"], "parts": parts}],
                "cluster_id": args.cluster,
            }
            async with http.post(base + "/blobs/complete", json=body, auth=auth) as r:
                assert r.status == 200, await r.text()
        else:
            url = f"{base}/blobs/{args.remote}"
            async with http.head(url, auth=auth) as r:
                size = int(r.headers["Content-Length"])
            fd = os.open(args.local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(fd, size)
            streams = 1 if args.op == "bare-down-1" else args.concurrency
            sem = asyncio.Semaphore(streams)
            step = part if streams > 1 else size

            async def get(a: int) -> None:
                b = min(a + step, size) - 1
                async with sem:
                    hdrs = {"Range": f"bytes={a}-{b}"}
                    async with http.get(url, auth=auth, headers=hdrs) as r:
                        assert r.status == 206
                        # received chunks gathered as they are, written with one
                        # os.pwritev per 8 MiB in a thread (growing a bytearray instead
                        # costs ~40% here: copies and page faults)
                        pos = a
                        batch: list[bytes] = []
                        n = 0
                        async for chunk, _ in r.content.iter_chunks():  # no joining
                            batch.append(chunk)
                            n += len(chunk)
                            if n >= 8 * MiB:
                                await asyncio.to_thread(os.pwritev, fd, batch, pos)
                                pos += n
                                batch, n = [], 0
                        if batch:
                            await asyncio.to_thread(os.pwritev, fd, batch, pos)

            await asyncio.gather(*(get(a) for a in range(0, size, step)))
            os.close(fd)
        result = clock.stop()
    return result


def _aligned(size: int) -> memoryview:
    import mmap

    return memoryview(mmap.mmap(-1, -(-size // 4096) * 4096))


def _open_direct(path: Path | str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    return fd


def _disk(args: argparse.Namespace) -> dict[str, Any]:
    """The disk alone: the object's size written from memory into a fresh file the way a
    durable download writes it, no network. Through the page cache: 8 MiB ``os.pwritev``
    batches, writeback started after each with ``sync_file_range``, an fsync at the end.
    ``disk-write-direct``: as aiolightning does, ``--concurrency`` ranges at once, 2 MiB
    at a time copied into an aligned buffer and written with ``O_DIRECT``, then an fsync. A download that fsyncs cannot be faster
    than the faster of the two; the bare-aiohttp ceiling never waits for the disk."""
    import ctypes

    size = int(args.remote)
    if args.op == "disk-write-direct":  # --concurrency ranges at once, as a download
        from concurrent.futures import ThreadPoolExecutor

        block = os.urandom(64 * MiB)
        part = args.part_mib * MiB

        def write_range(start: int) -> None:
            buf = _aligned(2 * MiB)
            pos, end = start, min(start + part, size)
            while pos < end:
                n = min(2 * MiB, end - pos)
                src = pos % (64 * MiB)
                buf[:n] = block[src : src + n]
                os.pwrite(fd, buf[: -(-n // 4096) * 4096], pos)
                pos += n

        clock = Clock()
        fd = _open_direct(args.local)
        os.posix_fallocate(fd, 0, size)
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(write_range, range(0, size, part)))
        os.ftruncate(fd, size)
        os.fsync(fd)
        os.close(fd)
        return clock.stop()
    block = os.urandom(64 * MiB)
    views = [memoryview(block)[i : i + 256 * 1024] for i in range(0, len(block), 256 * 1024)]
    sfr = ctypes.CDLL(None, use_errno=True).sync_file_range
    sfr.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    clock = Clock()
    fd = os.open(args.local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.posix_fallocate(fd, 0, size)
    pos = i = 0
    while pos < size:
        batch = []
        n = 0
        while n < 8 * MiB and pos + n < size:
            v = views[i % len(views)][: size - pos - n]
            batch.append(v)
            n += len(v)
            i += 1
        os.pwritev(fd, batch, pos)
        sfr(fd, pos, n, 2)  # SYNC_FILE_RANGE_WRITE
        pos += n
    os.fsync(fd)
    os.close(fd)
    return clock.stop()


def _disk_files(args: argparse.Namespace) -> dict[str, Any]:
    """The disk alone for part (b): ``--files`` files of ``--file-kib`` from memory, each
    written to a temp name (through the page cache, or ``disk-files-direct``: with
    ``O_DIRECT`` as aiolightning does), fsynced and renamed into place, no network,
    64 files at once in threads (download_dir's default concurrency, so the
    fsyncs overlap as theirs do): the floor of a durable download_dir of those files."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    n, size = int(args.remote), args.file_kib * 1024
    payload = os.urandom(size)
    root = Path(args.local)
    for k in range(10):
        (root / f"d{k}").mkdir(parents=True, exist_ok=True)
    direct = args.op == "disk-files-direct"
    local = threading.local()

    def one(i: int) -> None:
        d = root / f"d{i % 10}"
        tmp = d / f".f{i:05}.bin.part"
        if direct:  # as aiolightning: copied into an aligned buffer, written with O_DIRECT
            buf = getattr(local, "buf", None)
            if buf is None:
                buf = local.buf = _aligned(size)
            buf[:size] = payload
            fd = _open_direct(tmp)
            os.posix_fallocate(fd, 0, size)
            os.pwrite(fd, buf, 0)
            os.ftruncate(fd, size)
        else:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.posix_fallocate(fd, 0, size)
            os.pwrite(fd, payload, 0)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, d / f"f{i:05}.bin")

    clock = Clock()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(n)))
    return clock.stop()


def _sdk(args: argparse.Namespace) -> dict[str, Any]:
    from lightning_sdk import Teamspace  # type: ignore[import-untyped]

    ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
    ts.list_files("")  # warm the client (not timed)
    clock = Clock()
    if args.op == "sdk-up":
        ts.upload_file(args.local, args.remote, progress_bar=False)
    elif args.op == "sdk-down":
        ts.download_file(args.remote, args.local)
    elif args.op == "sdk-dir-up":
        ts.upload_folder(args.local, args.remote, progress_bar=False)
    elif args.op == "sdk-dir-down":
        ts.download_folder(args.remote, args.local)
    return clock.stop()


async def read_bench(path: Path, part: int, concurrency: int, rounds: int = 3) -> dict[str, float]:
    """Feeding parts from a (cached) file: aiofiles vs ``os.pread`` in a worker thread.
    Best GB/s of ``rounds`` passes over the whole file, each with ``concurrency`` parts in
    flight."""
    import aiofiles
    import anyio

    size = os.stat(path).st_size
    n = -(-size // part)

    async def with_pread() -> None:
        fd = os.open(path, os.O_RDONLY)
        sem = anyio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await anyio.to_thread.run_sync(os.pread, fd, part, i * part)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        os.close(fd)

    async def with_aiofiles() -> None:
        sem = anyio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem, aiofiles.open(path, "rb") as f:
                await f.seek(i * part)
                await f.read(part)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)

    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in (("os.pread in a thread", with_pread), ("aiofiles", with_aiofiles)):
            t = time.perf_counter()
            await fn()
            best[name] = max(best.get(name, 0.0), size / (time.perf_counter() - t) / 1e9)
    return best


def child_main(args: argparse.Namespace) -> None:
    if args.op.startswith("aio"):
        out = asyncio.run(_aio(args))
    elif args.op.startswith("bare"):
        out = asyncio.run(_bare(args))
    elif args.op.startswith("disk-write"):
        out = _disk(args)
    elif args.op.startswith("disk-files"):
        out = _disk_files(args)
    else:
        out = _sdk(args)
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------------ driver


def pin_process(pid: int, cores: set[int]) -> None:
    """Every thread of process ``pid`` onto ``cores`` (sched_setaffinity is per thread;
    threads started later inherit their creator's)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # the thread ended meanwhile
            pass


def core_plan() -> tuple[set[int], set[int]] | None:
    """(client cores, emulator cores) for the pinned mode, or None with fewer than 2 cores."""
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


class Bench:
    def __init__(self, args: argparse.Namespace, emu: Any, work: Path) -> None:
        self.args = args
        self.emu = emu
        self.work = work
        self.all_cores = set(os.sched_getaffinity(0))
        self.plan: tuple[set[int], set[int]] | None = None  # None: shared mode

    def set_mode(self, pinned: bool) -> None:
        """Pinned: contenders on one core, the emulator on another; shared: all on all."""
        self.plan = core_plan() if pinned else None
        pin_process(self.emu.proc.pid, self.plan[1] if self.plan else self.all_cores)

    def mode(self) -> str:
        if self.plan is None:
            return f"shared: client and emulator float over {len(self.all_cores)} cores"
        c, e = self.plan
        return f"pinned: client on core {min(c)}, emulator on core {min(e)}"

    def run(
        self, op: str, local: Path, remote: str, *extra: str, **extra_env: str
    ) -> dict[str, Any]:
        a, e = self.args, self.emu
        cmd = [
            sys.executable,
            __file__,
            "--child",
            op,
            "--url",
            e.url,
            "--user",
            e.user_id,
            "--key",
            e.api_key,
            "--teamspace",
            e.teamspace_name,
            "--teamspace-id",
            e.teamspace_id,
            "--cluster",
            e.cluster_id,
            "--local",
            str(local),
            "--remote",
            remote,
            "--work",
            str(self.work),
            "--part-mib",
            str(a.part_mib),
            "--budget-mib",
            str(a.budget_mib),
            "--concurrency",
            str(a.concurrency),
            "--bare-chunk-mib",
            str(a.bare_chunk_mib),
            "--file-kib",
            str(a.file_kib),
        ]
        if a.no_fsync:
            cmd.append("--no-fsync")
        cmd += extra
        if op in a.perf.split(","):  # profile this child: perf record, call graphs
            data = self.work / f"{op}.perf"
            cmd = ["perf", "record", "-q", "-F", "1000", "-g", "-o", str(data), "--", *cmd]
            print(f"    profiling {op}: perf report -i {data} --no-children", flush=True)
        env = {**os.environ, **e.sdk_env(), **extra_env}
        env["LIGHTNING_MULTIPART_THRESHOLD"] = str(a.part_mib * MiB)
        env["LIGHTNING_MULTI_PART_PART_SIZE"] = str(a.part_mib * MiB)
        env["LIGHTNING_MULTI_PART_MAX_WORKERS"] = str(a.concurrency)
        server0 = self.server_cpu()
        pin_process(self.emu.proc.pid, self.plan[1] if self.plan else self.all_cores)
        cores = self.plan[0] if self.plan else self.all_cores
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
        )
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                # the server's CPU over the whole child run (its start-up calls included)
                return {
                    **json.loads(line[7:]),
                    "server_cpu_s": self.server_cpu() - server0,
                    "load": os.getloadavg()[0],
                }
        raise RuntimeError(
            f"{op} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
        )

    def server_cpu(self) -> float:
        """CPU seconds the emulator process has used so far (all its threads)."""
        try:
            with open(f"/proc/{self.emu.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError, ValueError):
            return 0.0

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.emu.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"{}")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(64 * MiB)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            n = min(left, len(block))
            f.write(i.to_bytes(8, "little") + block[8:n] if n > 8 else block[:n])
            left -= n
            i += 1


def quiesce() -> None:
    """Let the disk finish the previous contender's writes (dirty pages written, freed blocks
    trimmed) so that no run pays for another's: the kernel's cost of finding page-cache
    memory for a write varies several-fold with that backlog."""
    os.sync()
    time.sleep(1.0)


def settle(path: Path) -> None:
    """Delete a downloaded file and let the disk finish with it before the next contender:
    its dirty pages written, and the blocks of a file that was fsync'd trimmed (a filesystem
    mounted with ``discard`` trims them at the next commit), so no run pays for another's."""
    path.unlink()
    quiesce()


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 * MiB):
            h.update(chunk)
    return h.hexdigest()


def bench_a(
    b: Bench, args: argparse.Namespace, big: Path, want: str, root: Path, size: int
) -> dict[str, Any]:
    """Part (a) in the Bench's current mode: the best run of each contender."""
    runs: dict[str, list[dict[str, Any]]] = {}

    def best(key: str, op: str, local: Path, remote: str, *extra: str, **env: str) -> None:
        runs.setdefault(key, []).append(b.run(op, local, remote, *extra, **env))

    def pick(key: str) -> dict[str, Any] | None:
        return min(runs[key], key=lambda r: r["seconds"]) if key in runs else None

    # (a) upload: contenders interleaved, best of --repeat rounds (the machine is shared)
    print("(a) uploads ...", flush=True)
    for _ in range(args.repeat):
        best("up_bare", "bare-up", big, "bench/bare.bin")
        best("up_bare4", "bare-up", big, "bench/bare4.bin", "--bare-chunk-mib", "4")
        best("up_aio", "aio-up", big, "bench/aio.bin")
        best("up_aio_nv", "aio-up", big, "bench/aio-nv.bin", "--no-verify")
        # the same with the one-stream-at-a-time MD5 of hashlib, for comparison
        best("up_aio_hl", "aio-up", big, "bench/aio-hl.bin", AIOLIGHTNING_MD5="hashlib")
        if not args.skip_sdk:
            best("up_sdk", "sdk-up", big, "bench/sdk.bin")
    up_bare, up_aio, up_aio_nv, up_sdk = (
        pick("up_bare"),
        pick("up_aio"),
        pick("up_aio_nv"),
        pick("up_sdk"),
    )
    up_bare4 = pick("up_bare4")
    assert up_bare is not None and up_bare4 is not None and up_aio is not None
    # the ceiling is the faster of the two straightforward bare-aiohttp uploads
    up_ceil = min(up_bare, up_bare4, key=lambda r: float(r["seconds"]))
    # (a) download (all from the object aiolightning wrote)
    print("(a) downloads ...", flush=True)
    out = root / "down.bin"
    for _ in range(0 if args.skip_down else args.repeat):
        for key, op, extra in (
            ("down_bare", "bare-down", ()),
            ("down_bare1", "bare-down-1", ()),
            ("down_aio", "aio-down", ()),
            ("down_aio_nf", "aio-down", ("--no-fsync",)),
            ("down_sdk", "sdk-down", ()),
        ):
            if op == "sdk-down" and args.skip_sdk:
                continue
            best(key, op, out, "bench/aio.bin", *extra)
            assert sha256(out) == want, f"{op}: the downloaded file differs"
            settle(out)
        best("disk", "disk-write", out, str(size))
        settle(out)
        best("disk_direct", "disk-write-direct", out, str(size))
        settle(out)
    down_bare, down_aio, down_sdk = pick("down_bare"), pick("down_aio"), pick("down_sdk")
    down_bare1, down_aio_nf = pick("down_bare1"), pick("down_aio_nf")
    disk = pick("disk")
    down_ceil: dict[str, Any] = {}  # --skip-down: no download rows
    if not args.skip_down:
        assert down_bare is not None and down_bare1 is not None and down_aio is not None
        # the ceiling is the faster of the two straightforward bare-aiohttp downloads
        down_ceil = min(down_bare, down_bare1, key=lambda r: float(r["seconds"]))

    return {
        "up_bare": up_bare,
        "up_bare4": up_bare4,
        "up_ceil": up_ceil,
        "up_aio": up_aio,
        "up_aio_hl": pick("up_aio_hl"),
        "up_aio_nv": up_aio_nv,
        "up_sdk": up_sdk,
        "down_bare": down_bare,
        "down_bare1": down_bare1,
        "down_ceil": down_ceil,
        "down_aio": down_aio,
        "down_aio_nf": down_aio_nf,
        "down_sdk": down_sdk,
        "disk": disk,
        "disk_direct": pick("disk_direct"),
    }


def print_a(mode: str, res: dict[str, Any], args: argparse.Namespace, size: int) -> None:
    """The table of part (a): wall time, GB/s, and the client's CPU-seconds per GiB."""
    gib = size / GiB
    print()
    print(
        f"(a) {gib:.2f} GiB, part {args.part_mib} MiB, concurrency {args.concurrency}, "
        f"budget {args.budget_mib} MiB, loopback, emulator in a subprocess; {mode}"
    )
    print(
        f"{'contender':36} {'seconds':>8} {'GB/s':>6} {'vs ceil':>7} {'vs sdk':>7}"
        f" {'CPU-s/GiB':>9} {'user':>5} {'sys':>5} {'server':>6} {'load':>5} {'peak RSS':>9}"
    )
    up_ceil, up_sdk, down_ceil, down_sdk = (
        res["up_ceil"],
        res["up_sdk"],
        res["down_ceil"],
        res["down_sdk"],
    )
    rows: tuple[tuple[str, dict[str, Any] | None, dict[str, Any], dict[str, Any] | None], ...] = (
        (
            f"upload   bare aiohttp, {args.bare_chunk_mib} MiB chunks",
            res["up_bare"],
            up_ceil,
            up_sdk,
        ),
        ("upload   bare aiohttp, 4 MiB chunks", res["up_bare4"], up_ceil, up_sdk),
        ("upload   aiolightning", res["up_aio"], up_ceil, up_sdk),
        ("upload   aiolightning, hashlib MD5", res["up_aio_hl"], up_ceil, up_sdk),
        ("upload   aiolightning, no MD5 check", res["up_aio_nv"], up_ceil, up_sdk),
        ("upload   lightning-sdk", up_sdk, up_ceil, up_sdk),
        (
            f"download bare aiohttp, {args.concurrency} ranges",
            res["down_bare"],
            down_ceil,
            down_sdk,
        ),
        ("download bare aiohttp, 1 stream", res["down_bare1"], down_ceil, down_sdk),
        ("download aiolightning", res["down_aio"], down_ceil, down_sdk),
        ("download aiolightning, no fsync", res["down_aio_nf"], down_ceil, down_sdk),
        ("download lightning-sdk", down_sdk, down_ceil, down_sdk),
        ("disk     page cache + fsync, no net", res["disk"], down_ceil, None),
        ("disk     O_DIRECT + fsync, no net", res["disk_direct"], down_ceil, None),
    )
    for label, r, ceiling, sdk in rows:
        if r is None:
            print(f"{label:36} {'-':>8}")
            continue
        vs_c = f"{ceiling['seconds'] / r['seconds'] * 100:6.0f}%" if ceiling else "      -"
        vs_s = f"{sdk['seconds'] / r['seconds']:6.2f}x" if sdk else "      -"
        print(
            f"{label:36} {r['seconds']:8.2f} {size / r['seconds'] / 1e9:6.2f} {vs_c} {vs_s}"
            f" {r['cpu_s'] / gib:9.2f} {r['user_s']:4.1f}s {r['sys_s']:4.1f}s"
            f" {r['server_cpu_s']:5.1f}s {r.get('load', 0.0):5.1f} {r['rss_mib']:5.0f} MiB"
        )
    print(
        "    CPU-s/GiB: user + system seconds of the contender's process per GiB moved;"
        " server: the emulator's CPU-s; load: 1-min load average when the run ended"
    )
    for what, r, sdk, ceil in (
        ("upload", res["up_aio"], up_sdk, res["up_bare"]),
        ("download", res["down_aio"], down_sdk, res["down_bare"]),
    ):
        if r is None or sdk is None:
            continue
        line = (
            f"    aiolightning {what}: {sdk['seconds'] / r['seconds']:.2f}x the SDK's wall time,"
            f" {r['cpu_s'] / sdk['cpu_s']:.2f}x its client CPU"
        )
        if ceil:
            line += f", {r['cpu_s'] / ceil['cpu_s']:.2f}x bare aiohttp's client CPU"
        print(line)
    disks = [d for d in (res["disk"], res["disk_direct"]) if d is not None]
    down_aio = res["down_aio"]
    if disks and down_aio is not None:
        disk = min(disks, key=lambda d: float(d["seconds"]))
        floor = max(disk["seconds"], down_ceil["seconds"])
        print(
            f"    a download that fsyncs cannot beat the faster disk row: aiolightning reaches"
            f" {floor / down_aio['seconds'] * 100:.0f}% of max(ceiling, disk)"
        )


def print_b(
    args: argparse.Namespace,
    up_aio: dict[str, Any] | None,
    up_sdk: dict[str, Any] | None,
    down_aio: dict[str, Any] | None,
    down_sdk: dict[str, Any] | None,
    disk: dict[str, Any] | None,
    disk_direct: dict[str, Any] | None,
) -> None:
    """The table of part (b), with the client's CPU per file and where download_dir's goes."""
    n = args.files
    print()
    print(
        f"(b) {n} files x {args.file_kib} KiB, {args.latency_ms:.0f} ms added latency per request,"
        f" {n * args.file_kib / 1024:.0f} MiB in total"
    )
    print(
        f"{'contender':34} {'seconds':>8} {'files/s':>8} {'vs sdk':>7} {'CPU client':>10}"
        f" {'ms/file':>7} {'server':>6} {'load':>5}"
    )
    for label, r, sdk in (
        ("upload_dir      aiolightning", up_aio, up_sdk),
        ("upload_folder   lightning-sdk", up_sdk, up_sdk),
        ("download_dir    aiolightning", down_aio, down_sdk),
        ("download_folder lightning-sdk", down_sdk, down_sdk),
        ("disk  write+fsync+rename, 64 thr", disk, down_sdk),
        ("disk  same with O_DIRECT, 64 thr", disk_direct, down_sdk),
    ):
        if r is None:
            print(f"{label:34} {'-':>8}")
            continue
        sp = f"{sdk['seconds'] / r['seconds']:6.2f}x" if sdk else "      -"
        print(
            f"{label:34} {r['seconds']:8.2f} {n / r['seconds']:8.0f} {sp}"
            f" {r['cpu_s']:9.2f}s {r['cpu_s'] / n * 1000:7.2f} {r['server_cpu_s']:5.1f}s"
            f" {r.get('load', 0.0):5.1f}"
        )
    disks = [d for d in (disk, disk_direct) if d is not None]
    disk = min(disks, key=lambda d: float(d["seconds"])) if disks else None
    if down_aio is not None and down_sdk is not None and disk is not None:
        print(
            f"    download_dir: {down_sdk['seconds'] / down_aio['seconds']:.2f}x download_folder's"
            f" wall time (target >= 2x), {down_aio['seconds'] / disk['seconds']:.2f}x the disk"
            f" floor's (target <= 1.3x); client CPU {down_aio['cpu_s'] / n * 1000:.2f} ms/file"
            f" (target <= 1.5), the SDK's {down_sdk['cpu_s'] / n * 1000:.2f}"
        )
    c = down_aio.get("census") if down_aio else None
    if c is None or down_aio is None:
        return
    total = down_aio["cpu_s"]
    ms = 1000 / n
    print(f"    where download_dir's client CPU goes ({total * ms:.2f} ms per file):")
    print(f"      event loop (main thread)          {c['loop_cpu_s'] * ms:6.2f} ms/file")
    print(f"      worker threads                    {(total - c['loop_cpu_s']) * ms:6.2f} ms/file")
    print(
        f"      listing (measured alone)          {c['list_cpu_s'] * ms:6.2f} ms/file"
        f"  ({c['files']} entries)"
    )
    print(f"      thread hops                       {c['hops'] / n:6.2f} per file")
    for name in Census.CALLS:
        k = c["fs_n"][name]
        if k:
            print(
                f"      os.{name:<18} {k / n:5.2f}/file {c['fs_cpu'][name] * ms:6.2f} ms/file"
                " (thread CPU)"
            )
    calls = down_aio.get("requests")
    if calls is not None:
        print(f"      API/storage requests              {calls / n:6.2f} per file")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=2.0, help="size of the big file (a)")
    p.add_argument("--files", type=int, default=1000, help="number of 1 MiB files (b)")
    p.add_argument("--file-kib", type=int, default=1024, help="size of each small file (b)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added latency in (b)")
    p.add_argument("--part-mib", type=int, default=32)
    p.add_argument("--budget-mib", type=int, default=256)
    p.add_argument("--concurrency", type=int, default=8, help="parts/ranges in flight (a)")
    p.add_argument("--repeat", type=int, default=1, help="runs of (a) per contender (best kept)")
    p.add_argument("--no-fsync", action="store_true", help="aiolightning downloads skip fsync")
    p.add_argument("--no-verify", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--skip-sdk", action="store_true")
    p.add_argument("--skip-a", action="store_true", help="only run (b)")
    p.add_argument("--skip-b", action="store_true", help="only run (a)")
    p.add_argument("--skip-down", action="store_true", help="(a) uploads only")
    p.add_argument("--bare-chunk-mib", type=int, default=1, help="bare-aiohttp PUT body chunk")
    p.add_argument("--no-pin", action="store_true", help="shared mode: no process pinned to a core")
    p.add_argument("--both", action="store_true", help="(a) pinned, then (a) shared")
    p.add_argument(
        "--perf", default="", help="child ops to profile with perf record, e.g. aio-dir-down"
    )
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir in /work)")
    # child-process arguments
    p.add_argument("--child", dest="op", default=None, help=argparse.SUPPRESS)
    for name in (
        "url",
        "user",
        "key",
        "teamspace",
        "teamspace-id",
        "cluster",
        "local",
        "remote",
        "work",
    ):
        p.add_argument(f"--{name}", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.op:
        child_main(args)
        return

    from aiolightning.emulator import EmulatorConfig, spawn_emulator

    root = (
        Path(args.workdir)
        if args.workdir
        else Path(
            tempfile.mkdtemp(
                prefix="bench-storage-", dir="/work" if os.path.isdir("/work") else None
            )
        )
    )
    root.mkdir(parents=True, exist_ok=True)
    size = 0 if args.skip_a else int(args.size_gib * GiB)
    free = shutil.disk_usage(root).free
    if free < 5 * size + 2 * GiB:
        sys.exit(
            f"not enough disk in {root}: {free / GiB:.1f} GiB free, need ~{5 * size / GiB:.1f}"
        )
    try:
        big = root / "big.bin"
        want = ""
        if not args.skip_a:
            print(f"writing {size / GiB:.2f} GiB test file ...", flush=True)
            make_file(big, size)
            want = sha256(big)
        can_pin = core_plan() is not None
        if not can_pin and not args.no_pin:
            print("fewer than 2 cores: nothing to pin, shared mode only", flush=True)
        modes = [False] if args.no_pin or not can_pin else [True, False] if args.both else [True]
        with spawn_emulator(config=EmulatorConfig(admin=True)) as emu:
            b = Bench(args, emu, root)

            results_a = []
            for pinned in [] if args.skip_a else modes:
                b.set_mode(pinned)
                print(f"(a) {b.mode()}", flush=True)
                results_a.append((b.mode(), bench_a(b, args, big, want, root, size)))
            b.set_mode(modes[0])
            dir_up_aio = dir_down_aio = dir_up_sdk = dir_down_sdk = dir_disk = dir_direct = None
            if not args.skip_b:
                # (b) many small files with latency
                print(
                    f"(b) {args.files} files with {args.latency_ms:.0f} ms latency ...", flush=True
                )
                small = root / "small"
                payload = os.urandom(args.file_kib * 1024)
                for i in range(args.files):
                    d = small / f"d{i % 10}"
                    d.mkdir(parents=True, exist_ok=True)
                    (d / f"f{i:05}.bin").write_bytes(payload[i % 256 :] + payload[: i % 256])
                b.admin(
                    "PATCH", "/_emulator/config", {"faults": {"latency": args.latency_ms / 1000}}
                )
                quiesce()
                dir_up_aio = b.run("aio-dir-up", small, "many-aio")
                if not args.skip_sdk:
                    quiesce()
                    dir_up_sdk = b.run("sdk-dir-up", small, "many-sdk")
                quiesce()
                req0 = b.admin("GET", "/_emulator/counters").get("requests", 0)
                dir_down_aio = b.run("aio-dir-down", root / "small-aio", "many-aio")
                req1 = b.admin("GET", "/_emulator/counters").get("requests", 0)
                dir_down_aio["requests"] = req1 - req0 - 1  # minus the first counters call
                if not args.skip_sdk:
                    quiesce()
                    dir_down_sdk = b.run("sdk-dir-down", root / "small-sdk", "many-sdk")
                quiesce()
                b.admin("PATCH", "/_emulator/config", {"faults": {"latency": 0}})
                dir_disk = b.run("disk-files", root / "small-disk", str(args.files))
                quiesce()
                dir_direct = b.run("disk-files-direct", root / "small-direct", str(args.files))
                for i in (0, args.files - 1):
                    rel = Path(f"d{i % 10}") / f"f{i:05}.bin"
                    assert (root / "small-aio" / rel).read_bytes() == (small / rel).read_bytes()
            counters = b.admin("GET", "/_emulator/counters")
        reads = (
            {}
            if args.skip_a
            else asyncio.run(read_bench(big, args.part_mib * MiB, args.concurrency))
        )
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)

    for mode, res in results_a:
        print_a(mode, res, args, size)
    up_aio = results_a[0][1]["up_aio"] if results_a else None
    down_aio = results_a[0][1]["down_aio"] if results_a else None
    if not args.skip_b:
        print_b(args, dir_up_aio, dir_up_sdk, dir_down_aio, dir_down_sdk, dir_disk, dir_direct)
    print()
    limit = args.budget_mib + 100
    print(
        f"(c) peak RSS of the aiolightning process (limit = budget {args.budget_mib} MiB + 100 MiB = {limit} MiB)"
    )
    for label, r in (
        ("upload", up_aio),
        ("download", down_aio),
        ("upload_dir", dir_up_aio),
        ("download_dir", dir_down_aio),
    ):
        if r is None:
            continue
        ok = "ok" if r["rss_mib"] <= limit else "OVER"
        print(
            f"    {label:12} {r['rss_mib']:6.0f} MiB  (byte budget peak {r['budget_peak_mib']:.0f} MiB)  {ok}"
        )
    print()
    if up_aio is not None:
        print(f"MD5 of the default upload: {up_aio.get('md5', '?')}")
    print(
        f"Authorization headers seen on presigned URLs: {counters.get('storage:authorization_header_seen', 0)}"
    )
    if not reads:
        return
    print()
    print(
        f"Reading {args.part_mib} MiB parts of the cached file, {args.concurrency} in flight (best of 3):"
    )
    for name, rate in reads.items():
        print(f"    {name:22} {rate:6.2f} GB/s")


if __name__ == "__main__":
    main()
