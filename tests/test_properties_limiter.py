"""The limiter as a state machine, driven by Hypothesis through random schedules.

A schedule is a list of steps run on one event loop: callers ask for a slot, the driver
hands slots back with an outcome (ok, error, neutral, a throttle with or without a short
``Retry-After``), cancels callers at random points (queued, granted but not yet resumed,
holding), lets the loop run, sleeps. The steps between two awaits run back to back, so a
slot handed to a queued caller and that caller's cancellation can land in the same tick.

Properties: the cap stays within ``[min, max]`` and ``[1, pool]``; no more slots than
``max`` are ever out; every caller not cancelled gets a slot (the pause gate and the token
bucket release every waiter); and once everyone is done no slot is leaked: ``in_flight``
and ``waiting`` are 0 and ``cap`` callers get a slot at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiolightning._limiter import Limiter, LimiterConfig, ScopeLimiter

OUTCOMES = ["ok", "ok", "error", "neutral", "throttled"]


@dataclass
class Caller:
    via_slot: bool  # through Limiter.slot() (else acquire/release by hand)
    task: asyncio.Task[None] | Any = None
    ticket: int | None = None  # set once the caller resumed holding a slot
    done: asyncio.Event = field(default_factory=asyncio.Event)
    released: bool = False
    cancelled: bool = False
    # for callers through Limiter.slot(): the outcome to report when done is set
    outcome: tuple[str, float | None] = ("ok", None)


configs = st.builds(
    lambda initial, hi, lo, pool, decrease, rate, burst, jitter, spread: (
        LimiterConfig(
            initial=initial,
            max=hi,
            min=lo,
            decrease=decrease,
            rate=rate,
            burst=burst if rate else None,
            pause_jitter=jitter,
            pause_spread=spread,
            adaptive_rate=False,  # the adaptive rate has its own (clocked) tests
        ),
        pool,
    ),
    st.integers(1, 8),
    st.integers(1, 8),
    st.integers(1, 4),
    st.none() | st.integers(1, 8),
    st.sampled_from([0.1, 0.5, 0.7, 0.9]),
    st.none() | st.sampled_from([2000.0, 5000.0]),
    st.integers(1, 4),
    st.sampled_from([0.0, 0.1]),
    st.sampled_from([0.0, 0.25, 0.5]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.booleans()),  # True: through Limiter.slot()
        st.tuples(
            st.just("release"),
            st.integers(0, 30),
            st.sampled_from(OUTCOMES),
            st.none() | st.sampled_from([0.001, 0.005, 0.02]),
        ),
        # cancel a caller: any, one not holding yet (queued, or granted but not resumed),
        # or one holding a slot
        st.tuples(st.just("cancel"), st.integers(0, 30), st.sampled_from(["any", "q", "h"])),
        st.tuples(st.just("tick"), st.integers(1, 3)),
        st.tuples(st.just("sleep"), st.sampled_from([0.001, 0.005])),
    ),
    max_size=40,
)


def check(s: ScopeLimiter, pool: int | None, callers: list[Caller]) -> None:
    assert 1 <= s.min <= s.cap <= s.max
    assert s.max <= (pool or s.max)
    assert 0 <= s.in_flight <= s.max
    holding = sum(1 for c in callers if c.ticket is not None and not c.released)
    live = sum(1 for c in callers if not c.task.done())
    assert holding <= s.in_flight <= live  # granted-but-not-resumed callers count too


async def run_schedule(cfg: LimiterConfig, pool: int | None, schedule: list[Any]) -> None:
    lim = Limiter(cfg, pool_size=pool)
    s = lim.scope("read")
    callers: list[Caller] = []

    async def raw(c: Caller) -> None:
        ticket = await s.acquire()
        c.ticket = ticket
        try:
            await c.done.wait()
        finally:
            if not c.released:  # cancelled while holding
                s.release(ticket, outcome="cancelled")
                c.released = True

    async def through_slot(c: Caller) -> None:
        try:
            async with lim.slot("read") as slot:
                c.ticket = 0
                await c.done.wait()
                outcome, retry_after = c.outcome
                if outcome == "throttled":
                    slot.throttle(retry_after)
                elif outcome == "error":
                    slot.fail()
        finally:
            c.released = c.ticket is not None  # the slot went back when the block was left

    def holders() -> list[Caller]:
        return [
            c for c in callers if c.ticket is not None and not c.released and not c.done.is_set()
        ]

    def give_back(c: Caller, outcome: str, retry_after: float | None) -> None:
        if not c.via_slot:
            assert c.ticket is not None
            s.release(c.ticket, outcome=outcome, retry_after=retry_after)
            c.released = True
        else:
            c.outcome = (outcome, retry_after)
        c.done.set()

    for step in schedule:
        kind = step[0]
        if kind == "ask":
            c = Caller(via_slot=step[1])
            c.task = asyncio.create_task(through_slot(c) if c.via_slot else raw(c))
            callers.append(c)
        elif kind == "release":
            held = holders()
            if held:
                give_back(held[step[1] % len(held)], step[2], step[3])
        elif kind == "cancel":
            live = [
                c
                for c in callers
                if not c.task.done()
                and not c.cancelled
                and (step[2] == "any" or (c.ticket is None) == (step[2] == "q"))
            ]
            if live:
                victim = live[step[1] % len(live)]
                victim.cancelled = True
                victim.task.cancel()
        elif kind == "tick":
            for _ in range(step[1]):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(step[1])
        check(s, pool, callers)

    # every caller not cancelled gets a slot: the gate and the bucket let everyone through
    # (pauses here are <= 20 ms and the bucket grants thousands a second; the bound only
    # keeps a stuck schedule from hanging the run while Hypothesis shrinks it)
    with anyio.fail_after(5):
        while any(not c.task.done() for c in callers):
            for c in holders():
                give_back(c, "ok", None)
            await asyncio.sleep(0.001)
            check(s, pool, callers)
    for c in callers:
        if not c.cancelled:
            assert c.task.exception() is None and c.ticket is not None
    st_ = s.stats()
    assert st_.in_flight == 0 and st_.waiting == 0
    # no slot leaked: `cap` callers hold a slot together
    with anyio.fail_after(5):
        tickets = await asyncio.gather(*(s.acquire() for _ in range(s.cap)))
    assert s.in_flight == len(tickets) == s.cap
    for t in tickets:
        s.release(t)
    assert s.in_flight == 0


@settings(max_examples=300, deadline=None)
@given(configs, steps)
@example(  # a slot handed to a queued caller cancelled before it resumed comes back
    (LimiterConfig(initial=1, max=1, adaptive_rate=False), None),
    [("ask", False), ("ask", False), ("tick", 1), ("release", 0, "ok", None), ("cancel", 0, "q")],
)
def test_limiter_schedules_keep_the_cap_in_bounds_and_leak_no_slot(
    config: tuple[LimiterConfig, int | None], schedule: list[Any]
) -> None:
    cfg, pool = config
    asyncio.run(run_schedule(cfg, pool, schedule))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.sampled_from([0.005, 0.02]),
    st.sampled_from([0.0, 0.5]),
    st.sets(st.integers(0, 11)),
)
def test_the_pause_gate_lets_every_waiter_through(
    cap: int, waiters: int, pause: float, spread: float, cancelled: set[int]
) -> None:
    async def main() -> None:
        s = Limiter(
            LimiterConfig(initial=cap, max=cap, pause_spread=spread, adaptive_rate=False)
        ).scope("write")
        first = await s.acquire()
        s.release(first, outcome="throttled", retry_after=pause)
        opens = s.paused_until
        assert opens > 0
        got: list[int] = []

        async def one(i: int) -> None:
            t = await s.acquire()
            assert time.monotonic() >= opens  # the limiter's own clock: never before
            got.append(i)
            s.release(t)

        tasks = [asyncio.create_task(one(i)) for i in range(waiters)]
        await asyncio.sleep(0)
        for i in cancelled:
            if i < waiters:
                tasks[i].cancel()
        with anyio.fail_after(10):
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            assert t.cancelled() or t.exception() is None
        assert sorted(got) == [i for i, t in enumerate(tasks) if not t.cancelled()]
        st_ = s.stats()
        assert st_.in_flight == 0 and st_.waiting == 0
        assert st_.paused_for == 0.0 or not got  # open once a caller went through

    asyncio.run(main())
