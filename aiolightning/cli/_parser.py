"""Parser building blocks: the one-line-error parser, the shared options, subcommand parsers."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, NoReturn

from .._version import __version__
from ._exit import EXIT_CODES_HELP, ExitCode

__all__ = ["CliParser", "add_common_options", "root_parser", "subcommand"]

_DESCRIPTION = """\
Asyncio client for the Lightning AI REST API: studios, jobs and storage in bulk, plus a
faithful local emulator to try it all without an account.

  aiolightning demo                  # the whole tour against a built-in emulator
  aiolightning emulator --port 8123  # serve the emulator; prints URL and credentials
  aiolightning studios list          # against the real service or an emulator
"""

_CONFIG_HELP = """\
credentials and service URL (found the way the Python client finds them):
  URL          --url, else LIGHTNING_CLOUD_URL, else https://lightning.ai
  credentials  LIGHTNING_USER_ID + LIGHTNING_API_KEY (or LIGHTNING_AUTH_TOKEN), else the
               credentials file: --credentials, LIGHTNING_CREDENTIAL_PATH, or
               ~/.lightning/credentials.json
  teamspace    --teamspace, else LIGHTNING_TEAMSPACE, else the user's only/first teamspace
  proxy        --proxy, else HTTPS_PROXY / HTTP_PROXY (NO_PROXY exempts hosts)
  TLS          --ca-bundle, else LIGHTNING_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE /
               SSL_CERT_DIR, else the system's trust store; --insecure turns checks off

"""


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``aiolightning: error: ...``."""

    def error(self, message: str) -> NoReturn:
        hint = f"see '{self.prog} --help'"
        sys.stderr.write(f"aiolightning: error: {message} ({hint})\n")
        raise SystemExit(ExitCode.USAGE)


def add_common_options(parser: argparse.ArgumentParser, *, root: bool) -> None:
    """Options accepted before or after the command name.

    The root parser holds the defaults; subcommand copies use SUPPRESS so that an option given
    before the command is not reset by the subparser's default.
    """

    def default(value: Any) -> Any:
        return value if root else argparse.SUPPRESS

    group = parser.add_argument_group("common options")
    group.add_argument(
        "--url",
        metavar="URL",
        default=default(None),
        help="service base URL (default: $LIGHTNING_CLOUD_URL or https://lightning.ai)",
    )
    group.add_argument(
        "--teamspace",
        metavar="NAME",
        default=default(None),
        help="teamspace name or id (default: $LIGHTNING_TEAMSPACE or your first teamspace)",
    )
    group.add_argument(
        "--credentials",
        metavar="FILE",
        default=default(None),
        help="credentials file (default: $LIGHTNING_CREDENTIAL_PATH or "
        "~/.lightning/credentials.json)",
    )
    group.add_argument(
        "--proxy",
        metavar="URL",
        default=default(None),
        help="proxy for every request, API and storage (http://user:password@host:3128; "
        "default: $HTTPS_PROXY / $HTTP_PROXY, minus $NO_PROXY)",
    )
    group.add_argument(
        "--ca-bundle",
        dest="ca_bundle",
        metavar="FILE",
        default=default(None),
        help="CA certificates (PEM) to verify the service with (default: "
        "$LIGHTNING_CA_BUNDLE, $REQUESTS_CA_BUNDLE, $SSL_CERT_FILE, else the system's)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=default(False),
        help="do not verify TLS certificates (never on a network you do not trust)",
    )
    group.add_argument(
        "--retries",
        metavar="N",
        type=int,
        default=default(None),
        help="retry a failed request (connection error, timeout, 429, 5xx) up to N times "
        "(default 4)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as one JSON document on stdout",
    )
    group.add_argument(
        "--no-progress",
        dest="no_progress",
        action="store_true",
        default=default(False),
        help="never draw progress bars (they are drawn only when stderr is a terminal)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and DEBUG logging on stderr",
    )


def root_parser() -> CliParser:
    """The ``aiolightning`` parser with its description, ``--version`` and the common options."""
    parser = CliParser(
        prog="aiolightning",
        description=_DESCRIPTION,
        epilog=_CONFIG_HELP + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aiolightning {__version__}")
    add_common_options(parser, root=True)
    return parser


def subcommand(
    commands: Any,
    name: str,
    help: str,
    *,
    description: str | None = None,
    common: bool = True,
) -> CliParser:
    """Add a subcommand parser with the common options and the exit-code epilog."""
    parser: CliParser = commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description or help[:1].upper() + help[1:] + ".", 88),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if common:
        add_common_options(parser, root=False)
    return parser
