"""Property tests of the ``Retry-After`` parser: delta-seconds, HTTP dates, garbage,
negative, huge, whitespace -- it never raises and its result is bounded."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import pytest
from _servers import json_response, serve
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiolightning import AsyncLightning, RetryPolicy
from aiolightning._retry import MAX_RETRY_AFTER, parse_retry_after

FAST = settings(max_examples=300, deadline=None)
NOW = 1_800_000_000.0

spaces = st.sampled_from(["", " ", "\t", "  \t ", "\r\n", "\u00a0"])
http_dates = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: email.utils.format_datetime(d, usegmt=True))
TOKENS = [
    "-", "+", ".", "e", "E", "1", "9", "0", "inf", "nan", "GMT", "Mon,", " ", "Jan", "99999",
    ":", "_", "0x", "\x00", "\u0663", "\ud800", "9" * 400,
]  # fmt: skip
garbage = st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=10).map("".join)


def bounded(r: float | None) -> bool:
    return r is None or 0.0 <= r <= MAX_RETRY_AFTER


@FAST
@given(st.one_of(garbage, http_dates, st.text()), spaces, spaces)
@example("Sat, 01 Jan 99999999999 00:00:00 GMT", "", "")  # raised OverflowError
@example("Sat, 01 Jan 10000 00:00:00 GMT", "", "")
@example("1e400", "", "")
@example("Mon, 01 Jan 0001 00:00:00 GMT", "", "")
def test_never_raises_and_is_bounded(value: str, before: str, after: str) -> None:
    assert bounded(parse_retry_after(before + value + after, now=NOW))
    assert bounded(parse_retry_after(before + value + after))


@FAST
@given(st.integers(min_value=-(10**30), max_value=10**30), spaces, spaces)
def test_delta_seconds(n: int, before: str, after: str) -> None:
    assert parse_retry_after(f"{before}{n}{after}") == min(max(float(n), 0.0), MAX_RETRY_AFTER)


@FAST
@given(st.floats(min_value=NOW - 10**9, max_value=NOW + 10**9), spaces)
def test_http_dates_are_seconds_from_now(when: float, pad: str) -> None:
    header = pad + email.utils.formatdate(when, usegmt=True) + pad
    got = parse_retry_after(header, now=NOW)
    assert got is not None
    want = min(max(int(when) - NOW, 0.0), MAX_RETRY_AFTER)  # the header drops sub-seconds
    assert abs(got - want) <= 1.0


@pytest.mark.anyio
async def test_an_unreadable_retry_after_falls_back_to_the_computed_wait() -> None:
    answers = iter(
        [
            ("Sat, 01 Jan 99999999999 00:00:00 GMT", 429),  # a year past datetime's range
            ("\u0663\ud7ff", 503),
            ("-5", 429),
        ]
    )

    async def handler(request: web.Request) -> web.Response:
        header, status = next(answers, ("", 200))
        if status == 200:
            return json_response({"ok": True})
        return json_response({"message": "slow down"}, status, {"Retry-After": header})

    creds: dict[str, Any] = {"user_id": "u", "api_key": "k"}
    policy = RetryPolicy(base=0.001, jitter=False, max_attempts=5)
    async with serve(catch_all=handler) as (url, rec):
        async with AsyncLightning(url, retry=policy, **creds) as c:
            assert await c.transport.request("GET", "/v1/x") == {"ok": True}
            assert c.limiter.stats("read").paused_for == 0.0
    assert rec.count() == 4
