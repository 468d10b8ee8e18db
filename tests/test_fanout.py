"""The fan-out helpers: bounded workers, per-item outcomes, progress, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from aiolightning.fanout import FanoutAborted, Progress, map_outcomes, stream_outcomes

pytestmark = pytest.mark.anyio


async def test_outcomes_in_input_order_and_one_failure_does_not_stop_the_others() -> None:
    async def fn(i: int) -> int:
        await anyio.sleep(0.001 * (10 - i % 10))  # finish out of order
        if i == 13:
            raise ValueError("thirteen")
        return i * 2

    outs = await map_outcomes(fn, range(50), concurrency=8)
    assert [o.index for o in outs] == list(range(50))
    assert [o.item for o in outs] == list(range(50))
    failed = [o for o in outs if not o.ok]
    assert len(failed) == 1 and isinstance(failed[0].error, ValueError)
    assert all(o.value == o.item * 2 for o in outs if o.ok)
    with pytest.raises(ValueError, match="thirteen"):
        failed[0].result()


async def test_100k_items_from_an_async_generator_with_a_bounded_number_of_tasks() -> None:
    peak = 0
    produced = 0

    async def items() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100_000):
            produced += 1
            yield i

    async def fn(i: int) -> int:
        nonlocal peak
        if i % 500 == 0:  # sampling keeps the test fast; every worker is busy by then
            peak = max(peak, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return i

    baseline = len(asyncio.all_tasks())
    outs = await map_outcomes(fn, items(), concurrency=50)
    assert produced == 100_000 and len(outs) == 100_000
    assert all(o.ok for o in outs)
    assert peak - baseline <= 50 + 2, peak  # the pool, not one task per item


async def test_thousands_of_workers_the_first_items_start_while_the_rest_spawn() -> None:
    spawned_before_first: list[int] = []

    async def fn(i: int) -> int:
        if not spawned_before_first:
            spawned_before_first.append(len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return i

    outs = await map_outcomes(fn, list(range(5000)), concurrency=5000)
    assert [o.value for o in outs] == list(range(5000))
    assert spawned_before_first[0] < 1000  # not after all 5,000 workers were made


async def test_stream_yields_as_completed_and_reports_progress() -> None:
    seen: list[Progress] = []

    async def fn(i: int) -> int:
        await anyio.sleep(0.05 if i == 0 else 0.001)
        if i == 3:
            raise RuntimeError("boom")
        return i

    order = []
    async with stream_outcomes(fn, [0, 1, 2, 3, 4], concurrency=5, on_progress=seen.append) as s:
        async for o in s:
            order.append(o.item)
    assert order[-1] == 0  # the slow one comes last
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert seen[-1] == Progress(done=5, failed=1, total=5)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]


async def test_progress_total_is_none_for_an_iterator() -> None:
    seen: list[Progress] = []

    async def fn(i: int) -> int:
        return i

    await map_outcomes(fn, iter(range(3)), concurrency=2, on_progress=seen.append)
    assert seen[-1] == Progress(3, 0, None)


async def test_cancelling_the_caller_cancels_everything_in_flight() -> None:
    in_flight = 0
    started = 0

    async def slow(i: int) -> None:
        nonlocal in_flight, started
        started += 1
        in_flight += 1
        try:
            await anyio.sleep(10)
        finally:
            in_flight -= 1

    with anyio.move_on_after(0.1):
        await map_outcomes(slow, range(1000), concurrency=20)
    assert in_flight == 0 and started == 20

    started = 0
    with anyio.move_on_after(0.1):
        async for _ in stream_outcomes(slow, range(1000), concurrency=20):
            pass
    assert in_flight == 0 and started == 20
    await anyio.sleep(0.05)
    assert started == 20  # nothing new started after the cancellation


async def test_leaving_a_stream_early_stops_the_workers() -> None:
    started = 0

    async def fn(i: int) -> int:
        nonlocal started
        started += 1
        await anyio.sleep(0.01)
        return i

    async with stream_outcomes(fn, range(10_000), concurrency=4) as s:
        async for o in s:
            if o.index >= 2:
                break
    count = started
    await anyio.sleep(0.05)
    assert started == count < 20


async def test_stop_on_error_cancels_the_rest() -> None:
    async def fn(i: int) -> int:
        if i == 2:
            raise KeyError(i)
        await anyio.sleep(0.5 if i > 2 else 0)
        return i

    outs = await map_outcomes(fn, range(100), concurrency=4, stop_on_error=True)
    assert len(outs) < 100
    errors = {o.index: type(o.error) for o in outs if not o.ok}
    assert errors[2] is KeyError
    assert all(e is FanoutAborted for i, e in errors.items() if i != 2)


async def test_a_failing_input_lets_the_items_in_flight_finish_then_raises() -> None:
    finished = []

    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("input broke")

    async def fn(i: int) -> int:
        await anyio.sleep(0.01)
        finished.append(i)
        return i

    with pytest.raises(OSError, match="input broke"):
        await map_outcomes(fn, items(), concurrency=4)
    assert sorted(finished) == [1, 2]


async def test_concurrency_must_be_positive() -> None:
    async def fn(i: int) -> int:
        return i

    with pytest.raises(ValueError):
        await map_outcomes(fn, [1], concurrency=0)
