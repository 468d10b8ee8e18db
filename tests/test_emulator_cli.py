"""`python -m aiolightning.emulator` and spawn_emulator / EmulatorThread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from aiolightning.emulator import EmulatorConfig, EmulatorThread, Faults, spawn_emulator


def _whoami(url: str, user_id: str, api_key: str) -> dict[str, str]:
    import base64

    req = urllib.request.Request(url + "/v1/auth/whoami")
    token = base64.b64encode(f"{user_id}:{api_key}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def exported(lines: list[str]) -> dict[str, str]:
    """The variables that the emulator's lines set, as a POSIX shell that evals them sees."""
    script = "".join(lines) + "\nenv -0"
    out = subprocess.run(
        ["sh", "-c", script], env={"PATH": os.defpath}, capture_output=True, check=True
    ).stdout
    pairs = (item.split(b"=", 1) for item in out.split(b"\0") if item)
    return {k.decode(): v.decode() for k, v in pairs if k.startswith((b"LIGHTNING_", b"REQ"))}


def test_spawn_emulator() -> None:
    config = EmulatorConfig(faults=Faults(latency=0.0), admin=True)
    with spawn_emulator(seed=3, config=config) as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        assert _whoami(emu.url, emu.user_id, emu.api_key)["userId"] == emu.user_id
        with urllib.request.urlopen(emu.url + "/_emulator/counters", timeout=10) as r:
            assert json.loads(r.read())["requests"] == 1
        proc = emu.proc  # type: ignore[attr-defined]
    assert proc.poll() is not None  # terminated on exit


def test_thread_emulator_same_identity_as_seed() -> None:
    with EmulatorThread(seed=3) as a, spawn_emulator(seed=3) as b:
        assert (a.user_id, a.api_key, a.teamspace_id) == (b.user_id, b.api_key, b.teamspace_id)
        assert _whoami(a.url, a.user_id, a.api_key)["username"] == a.username


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_credentials_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolightning.emulator", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        assert "listening on http://127.0.0.1:" in lines[0]
        env = exported(lines)
        user_id = env["LIGHTNING_USER_ID"]
        assert _whoami(env["LIGHTNING_CLOUD_URL"], user_id, env["LIGHTNING_API_KEY"])["userId"] == (
            user_id
        )
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_printed_lines_can_be_evald_by_a_shell() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolightning", "emulator", "--port", "0", "--admin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        assert all(line.startswith(("export ", "# ")) for line in lines), lines
        env = exported(lines)
        assert set(env) == {
            "LIGHTNING_CLOUD_URL",
            "LIGHTNING_USER_ID",
            "LIGHTNING_API_KEY",
            "LIGHTNING_TEAMSPACE",
        }
        who = _whoami(
            env["LIGHTNING_CLOUD_URL"], env["LIGHTNING_USER_ID"], env["LIGHTNING_API_KEY"]
        )
        assert who["userId"] == env["LIGHTNING_USER_ID"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_help_names_the_command_it_runs_under_and_explains_every_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aiolightning.cli import main as cli_main
    from aiolightning.emulator._cli import parser

    with pytest.raises(SystemExit):
        cli_main(["emulator", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: aiolightning emulator ")
    assert "python -m" not in out
    with pytest.raises(SystemExit):
        cli_main(["emulator", "--no-such-option"])
    assert capsys.readouterr().err.startswith("usage: aiolightning emulator ")
    undocumented = [
        a.option_strings[0]
        for a in parser()._actions  # argparse keeps its actions there
        if a.option_strings and not a.help
    ]
    assert undocumented == []
