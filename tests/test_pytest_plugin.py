"""The pytest plugin, run the way users run it: pytester sessions with the plugin autoloaded."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

USER_TESTS = """
import pytest
from aiolightning import AsyncLightning, JobRequest, Lightning


def test_sync_client(lightning_sync_client: Lightning, lightning_emulator) -> None:
    studio = lightning_sync_client.studios.create("dev")
    lightning_sync_client.studios.start(studio)
    assert lightning_emulator.counters.get(f"starts:{studio.id}") == 1


@pytest.mark.anyio
async def test_async_client(lightning_client: AsyncLightning, lightning_emulator) -> None:
    job = await lightning_client.jobs.submit("train", "echo hi", image="py:3")
    assert (await lightning_client.jobs.wait(job, timeout=30)).status.value == "completed"
    assert lightning_emulator.counters.get("creates:job:train") == 1


def test_fresh_per_test(lightning_emulator) -> None:
    assert lightning_emulator.counters.get("requests") == 0


def test_knobs_on_the_fixture_object(lightning_emulator, lightning_sync_client) -> None:
    lightning_emulator.config.timings.job_outcome = "fail"
    job = lightning_sync_client.jobs.submit("bad", "echo hi", image="py:3")
    assert lightning_sync_client.jobs.wait(job, timeout=30).status.value == "failed"


def test_session_variant(lightning_emulator_session) -> None:
    assert lightning_emulator_session.url.startswith("http://127.0.0.1:")
"""


def test_user_tests_pass_with_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        '@__import__("pytest").fixture\ndef anyio_backend():\n    return "asyncio"\n'
    )
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "anyio")
    result.assert_outcomes(passed=5)


def test_marker_knobs_take_effect(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_knobs="""
import pytest
from aiolightning import RetryPolicy, ServerError


@pytest.mark.lightning_emulator(rate_limit=2, rate_burst=1, job_outcome="fail", page_size=2)
def test_knobs(lightning_emulator, lightning_sync_client) -> None:
    cfg = lightning_emulator.config
    assert (cfg.faults.rate_limit, cfg.timings.job_outcome, cfg.page_size) == (2, "fail", 2)
    for _ in range(4):
        lightning_sync_client.api.auth.whoami()
    assert lightning_emulator.counters.get("throttled") > 0  # 429s, retried


@pytest.mark.lightning_emulator(error_rate=1.0)
def test_errors(lightning_sync_client) -> None:
    with pytest.raises(ServerError):
        lightning_sync_client.api.auth.whoami(retry=RetryPolicy.none())


@pytest.mark.lightning_emulator(no_such_knob=1)
def test_unknown(lightning_emulator) -> None:
    pass
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unknown knob 'no_such_knob'*"])


def test_disabled_with_p_no(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_off="def test_uses(lightning_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:aiolightning")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'lightning_emulator' not found*"])
    assert "lightning_sync_client" not in result.stdout.str()
