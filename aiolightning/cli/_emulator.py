"""``aiolightning emulator``: serve the local Lightning emulator (prints URL and credentials).

All arguments go untouched to ``python -m aiolightning.emulator``; see
``aiolightning emulator --help``. This is the one command that prints credentials: the
emulator's own, generated for the session, so that clients can be pointed at it.
"""

from __future__ import annotations

from typing import Any

from ._parser import subcommand

__all__ = ["register", "serve"]


def register(commands: Any) -> None:
    # only for the command list in `aiolightning --help`; main() hands `emulator ...` over
    # before argparse sees it, so that every emulator option works unchanged.
    subcommand(
        commands,
        "emulator",
        "serve the local Lightning emulator; prints its URL and credentials",
        common=False,
    )


def serve(argv: list[str]) -> int:
    from ..emulator import main as emulator_main

    code = emulator_main(argv, prog="aiolightning emulator")
    return int(code or 0)
