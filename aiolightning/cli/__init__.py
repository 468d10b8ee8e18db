"""The ``aiolightning`` console command.

    aiolightning demo | emulator | studios ... | jobs ... | storage ...

``main(argv)`` returns the exit code (documented in ``--help`` and in ``_exit.ExitCode``);
it never lets a traceback reach the user unless ``--debug`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Sequence

from ._exit import ExitCode, exit_code_for, one_line

__all__ = ["main"]


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
