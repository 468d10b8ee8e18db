"""``aiolightning completion bash|zsh`` prints a script that completes the real command tree."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from aiolightning.cli import main


def script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(script_text: str, *words: str) -> list[str]:
    """What bash offers after ``aiolightning <words>`` (the last word is the one typed)."""
    line = " ".join(f'"{w}"' for w in words)
    probe = (
        f"{script_text}\nCOMP_WORDS=(aiolightning {line}); COMP_CWORD={len(words)}; "
        '_aiolightning; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_script_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    text = script("bash", capsys)
    assert '"") echo "demo emulator studios jobs deployments storage runs completion' in text
    assert '"studios") echo "list start stop start-many' in text
    assert "complete -o default -F _aiolightning aiolightning" in text
    assert script("zsh", capsys).startswith("autoload -U +X bashcompinit && bashcompinit\n")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_subcommands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = script("bash", capsys)
    assert complete(text, "st") == ["studios", "storage"]
    assert complete(text, "--json", "jobs", "")[:4] == ["submit", "list", "watch", "stop"]
    assert "--machine" in complete(text, "studios", "start", "--m")
    assert complete(text, "completion", "z") == ["zsh"]


def test_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "fish"]) == 2
    assert "invalid choice" in capsys.readouterr().err
