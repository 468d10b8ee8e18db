"""The table of subcommands: each module in it registers its own parsers and handlers."""

from __future__ import annotations

from . import _completion, _demo, _deployments, _emulator, _jobs, _runs, _storage, _studios
from ._parser import CliParser, root_parser

__all__ = ["COMMANDS", "build_parser"]

# in the order `aiolightning --help` lists them; each module has `register(commands)`
COMMANDS = (_demo, _emulator, _studios, _jobs, _deployments, _storage, _runs, _completion)


def build_parser() -> CliParser:
    """The whole argparse tree: the root parser and every subcommand of ``COMMANDS``."""
    parser = root_parser()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    commands.required = True
    for module in COMMANDS:
        module.register(commands)
    parser.set_defaults(command_tree=parser)  # for `completion`, which prints the tree
    return parser
