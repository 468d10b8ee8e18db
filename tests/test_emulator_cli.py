"""`python -m aiolightning.emulator` and spawn_emulator / EmulatorThread."""

from __future__ import annotations

import json
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
        lines = [proc.stdout.readline() for _ in range(4)]
        assert "listening on http://127.0.0.1:" in lines[0]
        url = lines[1].strip().split("=", 1)[1]
        user_id = lines[2].strip().split("=", 1)[1]
        api_key = lines[3].strip().split("=", 1)[1]
        assert _whoami(url, user_id, api_key)["userId"] == user_id
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
