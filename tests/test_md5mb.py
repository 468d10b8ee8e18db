"""The multi-buffer MD5 extension and the hasher built on it, against hashlib."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading

import anyio
import anyio.lowlevel
import pytest

from aiolightning import _md5mb
from aiolightning.transfer import _md5


def run_ok(code: str, **env: str) -> None:
    """Run ``code`` in a fresh interpreter with ``env`` added; it must print ``ok``."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


EDGE_SIZES = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65_537, 300_001]


@pytest.mark.parametrize("n", EDGE_SIZES)
def test_one_shot_matches_hashlib(n: int) -> None:
    data = os.urandom(n)
    h = _md5mb.MD5(data)
    assert h.hexdigest() == hashlib.md5(data).hexdigest()
    assert h.digest() == hashlib.md5(data).digest()
    assert (h.name, h.digest_size, h.block_size) == ("md5", 16, 64)


def _random_lockstep(rng: random.Random, streams: int) -> None:
    datas = [rng.randbytes(rng.randint(0, 200_000)) for _ in range(streams)]
    states = [_md5mb.MD5() for _ in range(streams)]
    pos = [0] * streams
    while any(p < len(d) for p, d in zip(pos, datas, strict=True)):
        lanes = [i for i in range(streams) if pos[i] < len(datas[i]) and rng.random() < 0.8]
        bufs = []
        for i in lanes:
            step = rng.choice([1, 63, 64, 65, 1000, 4096, 70_000])
            bufs.append(memoryview(datas[i])[pos[i] : pos[i] + step])
            pos[i] += len(bufs[-1])
        _md5mb.update_many([states[i] for i in lanes], bufs)
    for s, d in zip(states, datas, strict=True):
        assert s.hexdigest() == hashlib.md5(d).hexdigest()


def test_update_many_matches_hashlib_for_any_chunking_and_lane_count() -> None:
    rng = random.Random(7)
    for streams in (1, 2, 7, 8, 9, 16):  # both kernels (8 and 16 lanes) and the switch
        for _ in range(4):
            _random_lockstep(rng, streams)


def test_copy_is_independent() -> None:
    h = _md5mb.MD5(b"abc" * 100)
    c = h.copy()
    c.update(b"more")
    assert h.hexdigest() == hashlib.md5(b"abc" * 100).hexdigest()
    assert c.hexdigest() == hashlib.md5(b"abc" * 100 + b"more").hexdigest()


def test_bad_input_is_refused_clearly() -> None:
    h = _md5mb.MD5()
    with pytest.raises(ValueError, match="at most"):
        _md5mb.update_many([_md5mb.MD5() for _ in range(17)], [b"x"] * 17)
    with pytest.raises(ValueError, match="differ in length"):
        _md5mb.update_many([h], [b"a", b"b"])
    with pytest.raises(TypeError, match="not an MD5 object"):
        _md5mb.update_many([hashlib.md5()], [b"a"])  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="listed twice"):
        _md5mb.update_many([h, h], [b"a", b"b"])
    assert h.hexdigest() == hashlib.md5(b"").hexdigest()  # nothing was hashed by the refusals


def test_portable_scalar_path_gives_the_same_digests() -> None:
    """AIOLIGHTNING_MD5MB_SCALAR=1 forces the C fallback used on CPUs without AVX-512."""
    code = (
        "import hashlib, os, random\n"
        "from aiolightning import _md5mb\n"
        "assert not _md5mb.ACCELERATED and _md5mb.LANES == 1\n"
        "from aiolightning.transfer import _md5\n"
        "assert _md5.backend() == 'hashlib'\n"
        "r = random.Random(3)\n"
        "ds = [r.randbytes(r.randint(0, 100000)) for _ in range(5)]\n"
        "ss = [_md5mb.MD5() for _ in ds]\n"
        "_md5mb.update_many(ss, ds)\n"
        "assert [s.hexdigest() for s in ss] == [hashlib.md5(d).hexdigest() for d in ds]\n"
        "print('ok')\n"
    )
    run_ok(code, AIOLIGHTNING_MD5MB_SCALAR="1")


def test_the_hasher_keeps_each_streams_chunks_in_order_under_many_threads() -> None:
    """new_md5() objects fed from many threads at once (the worker-thread path)."""
    rng = random.Random(11)
    datas = [rng.randbytes(rng.randint(0, 3_000_000)) for _ in range(24)]
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        h = _md5.new_md5()
        view = memoryview(datas[i])
        step = [64 * 1024, 100_003, 1 << 20][i % 3]
        for p in range(0, len(view), step):
            h.update(view[p : p + step])
        results[i] = h.hexdigest()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: hashlib.md5(d).hexdigest() for i, d in enumerate(datas)}


@pytest.mark.anyio
async def test_part_md5_streams_from_the_event_loop() -> None:
    rng = random.Random(5)
    datas = [rng.randbytes(rng.randint(1, 4_000_000)) for _ in range(12)]
    got: dict[int, str] = {}

    async def part(i: int) -> None:
        h = _md5.PartMd5()
        try:
            for p in range(0, len(datas[i]), 1 << 20):
                await h.feed(datas[i][p : p + (1 << 20)])
                await anyio.lowlevel.checkpoint()
            got[i] = await h.hexdigest()
        finally:
            h.close()

    async with anyio.create_task_group() as tg:
        for i in range(len(datas)):
            tg.start_soon(part, i)
    assert got == {i: hashlib.md5(d).hexdigest() for i, d in enumerate(datas)}
    if _md5.backend() != "hashlib":
        assert _md5._HASHER is not None and _md5._HASHER.open_streams == 0


@pytest.mark.anyio
async def test_an_abandoned_part_md5_does_not_hold_up_the_others() -> None:
    if _md5._HASHER is None:
        pytest.skip("the multi-buffer hasher is not in use on this CPU")
    dropped = _md5.PartMd5()
    await dropped.feed(os.urandom(1 << 20))
    dropped.close()  # a cancelled part: never asks for its digest
    h = _md5.PartMd5()
    data = os.urandom(3 << 20)
    for p in range(0, len(data), 1 << 20):
        await h.feed(data[p : p + (1 << 20)])
    assert await h.hexdigest() == hashlib.md5(data).hexdigest()
    assert _md5._HASHER.open_streams == 0


def test_hashlib_fallback_when_asked() -> None:
    code = (
        "from aiolightning.transfer import _md5\n"
        "import hashlib\n"
        "assert _md5.backend() == 'hashlib' and _md5.QUEUE_DEPTH == 1\n"
        "h = _md5.new_md5(); h.update(b'x' * 100000)\n"
        "assert h.hexdigest() == hashlib.md5(b'x' * 100000).hexdigest()\n"
        "print('ok')\n"
    )
    run_ok(code, AIOLIGHTNING_MD5="hashlib")
