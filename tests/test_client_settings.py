"""Settings checked when the client is built: a malformed base URL is a clear usage error
(CLI exit 2), and a credentials file that others can read draws one WARNING."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiolightning import AsyncLightning, InvalidArgumentError

KEY = "a-secret-api-key-1234"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://::1:8080", "port"),
        ("not-a-url", "http:// or https://"),
        ("ftp://example.com", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("https://me:pw@lightning.ai", "user info"),
        ("https://lightning.ai/?x=1", "query string"),
    ],
)
def test_a_malformed_base_url_is_refused_at_construction(url: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid service URL") as info:
        AsyncLightning(url, api_key=KEY)
    assert says in str(info.value)
    assert "pw" not in str(info.value).replace("https://lightning.ai", "")


def test_the_variable_is_named_when_it_is_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_CLOUD_URL", "http://::1:8123")
    with pytest.raises(InvalidArgumentError, match="LIGHTNING_CLOUD_URL"):
        AsyncLightning(api_key=KEY)


def test_ipv6_in_brackets_is_fine() -> None:
    assert AsyncLightning("http://[::1]:8080/", api_key=KEY).base_url == "http://[::1]:8080"


def test_cli_exits_2_on_a_malformed_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(HOME=str(tmp_path), LIGHTNING_USER_ID="u", LIGHTNING_API_KEY=KEY)
    proc = subprocess.run(
        [sys.executable, "-m", "aiolightning", "--url", "http://::1:8080", "studios", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("aiolightning: error: invalid service URL") and "[::1]" in line


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_credentials_file_others_can_read_draws_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    for name in ("LIGHTNING_API_KEY", "LIGHTNING_AUTH_TOKEN", "LIGHTNING_USER_ID"):
        monkeypatch.delenv(name, raising=False)
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"user_id": "u1", "api_key": KEY}))
    creds.chmod(0o600)
    AsyncLightning("http://127.0.0.1:9", credentials_path=creds)
    assert not caplog.records
    creds.chmod(0o644)
    AsyncLightning("http://127.0.0.1:9", credentials_path=creds)
    AsyncLightning("http://127.0.0.1:9", credentials_path=creds)  # once per file
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert str(creds) in record.getMessage() and "chmod 600" in record.getMessage()
    assert KEY not in caplog.text
    group = tmp_path / "group.json"
    group.write_text(creds.read_text())
    group.chmod(0o640)
    AsyncLightning("http://127.0.0.1:9", credentials_path=group)
    assert "its group" in caplog.records[-1].getMessage()
