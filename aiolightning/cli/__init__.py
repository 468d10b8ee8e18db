"""The ``aiolightning`` console command.

    aiolightning demo | emulator | studios ... | jobs ... | storage ...

``main(argv)`` returns the exit code (documented in ``--help`` and in ``_exit.ExitCode``);
it never lets a traceback reach the user unless ``--debug`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any

from .._errors import LightningError
from ._exit import ExitCode, exit_code_for, one_line, unwrap

__all__ = ["main", "run_script"]


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if debug:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.DEBUG, handlers=[handler], force=True)
    else:
        # warnings from the library (e.g. a credentials file that cannot be parsed) are
        # worth a line; retries and throttles are counted and shown in summaries instead.
        handler.setFormatter(logging.Formatter("aiolightning: %(levelname)s: %(message)s"))
        logging.basicConfig(level=logging.ERROR, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from ._commands import build_parser
    from ._context import Context

    args_list = list(sys.argv[1:] if argv is None else argv)
    # `aiolightning emulator ...` hands its arguments over untouched to the emulator's own CLI
    if args_list[:1] == ["emulator"]:
        from ._emulator import serve

        return serve(args_list[1:])

    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE

    debug = bool(getattr(args, "debug", False))
    _setup_logging(debug)
    ctx = Context(args)
    try:
        code = asyncio.run(ctx.run(args.handler))
    except KeyboardInterrupt:
        sys.stderr.write("\naiolightning: interrupted\n")
        return ExitCode.INTERRUPTED
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.write(f"aiolightning: error: {one_line(exc)}\n")
        sys.stderr.flush()
        return exit_code_for(exc)
    return int(code)


def run_script(main: Coroutine[Any, Any, int | None], *, prog: str | None = None) -> int:
    """Run a script's ``main()`` coroutine as the command runs its own: an aiolightning
    error is one line on stderr, ``<prog>: error: <what>`` (no traceback, no credential),
    and the command's exit code (3: no credentials, 4: unreachable ...) is returned; any
    other exception (a bug) keeps its traceback::

        raise SystemExit(run_script(main(args)))
    """
    name = prog or os.path.basename(sys.argv[0]) or "script"
    try:
        return int(asyncio.run(main) or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{name}: interrupted\n")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if not isinstance(unwrap(exc), LightningError):
            raise
        sys.stderr.write(f"{name}: error: {one_line(exc, flags=False)}\n")
        sys.stderr.flush()
        return exit_code_for(exc)
