"""A tiny deterministic shell for `execute` in a studio.

Commands are split on `;`, `&&`, `||` and newlines (quotes respected, no expansion) and
run in order with the usual short-circuit rules. Built-ins:

* `echo [-n] ARGS...`   prints the arguments joined by spaces (and a newline unless `-n`)
* `printf FMT`          prints FMT with `\\n` and `\\t` escapes (no format arguments)
* `true`, `:`           exit 0;  `false` exits 1;  `exit [N]` stops the script with N
* `sleep S`             takes S seconds of simulated time (the command is "running" meanwhile)
* `pwd`                 `/teamspace/studios/this_studio`
* `whoami`, `hostname`  the user name and the instance id
* `printenv [NAME]`, `env`   the studio's environment variables
* `cat`, `ls`, `mkdir`, `cd`, `touch`, `rm`, `cp`, `mv`, `pip`, `python` … print nothing
  and exit 0 (accepted so set-up scripts pass)

Anything else prints `sh: 1: NAME: not found` and exits **127**, like `sh`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["Program", "run_script"]

_NOOPS = frozenset(
    {
        "cat",
        "ls",
        "mkdir",
        "cd",
        "touch",
        "rm",
        "cp",
        "mv",
        "pip",
        "python",
        "python3",
        "export",
        "uv",
    }
)


@dataclass(slots=True)
class Program:
    chunks: list[tuple[float, str]]  # (time offset, output) in order
    exit_code: int
    duration: float  # simulated seconds until the exit code is known

    def output_until(self, elapsed: float) -> str:
        return "".join(text for t, text in self.chunks if t <= elapsed)

    @property
    def output(self) -> str:
        return "".join(text for _, text in self.chunks)


def _split(script: str) -> list[tuple[str, list[str]]]:
    """[(operator that precedes the command, argv)]; the first operator is ';'."""
    lex = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    out: list[tuple[str, list[str]]] = []
    op = ";"
    argv: list[str] = []
    for tok in lex:
        if tok in (";", "&&", "||", ";;", "&"):
            if argv:
                out.append((op, argv))
            argv = []
            op = "&&" if tok == "&&" else "||" if tok == "||" else ";"
        else:
            argv.append(tok)
    if argv:
        out.append((op, argv))
    return out


def _escapes(s: str) -> str:
    return s.replace("\\n", "\n").replace("\\t", "\t")


def run_script(
    script: str,
    *,
    base_duration: float,
    env: dict[str, str],
    username: str,
    hostname: str,
) -> Program:
    """Interpret `script`; `base_duration` is the time any command takes to finish."""
    chunks: list[tuple[float, str]] = []
    t = 0.0
    status = 0
    try:
        commands = _split(script)
    except ValueError as e:  # unbalanced quotes
        return Program([(0.0, f"sh: 1: Syntax error: {e}\n")], 2, base_duration)

    def emit(text: str) -> None:
        if text:
            chunks.append((t, text))

    for op, argv in commands:
        if op == "&&" and status != 0:
            continue
        if op == "||" and status == 0:
            continue
        name, args = argv[0], argv[1:]
        status = 0
        if name == "echo":
            newline = True
            if args and args[0] == "-n":
                newline, args = False, args[1:]
            emit(" ".join(args) + ("\n" if newline else ""))
        elif name == "printf":
            emit(_escapes(args[0]) if args else "")
        elif name in ("true", ":"):
            pass
        elif name == "false":
            status = 1
        elif name == "exit":
            try:
                status = int(args[0]) & 0xFF if args else 0
            except ValueError:
                emit(f"sh: 1: exit: Illegal number: {args[0]}\n")
                status = 2
            return Program(chunks, status, t + base_duration)
        elif name == "sleep":
            try:
                t += max(0.0, float(args[0].rstrip("s"))) if args else 0.0
            except ValueError:
                emit(f"sleep: invalid time interval '{args[0]}'\n")
                status = 1
        elif name == "pwd":
            emit("/teamspace/studios/this_studio\n")
        elif name == "whoami":
            emit(username + "\n")
        elif name == "hostname":
            emit(hostname + "\n")
        elif name in ("printenv", "env"):
            if args:
                if args[0] in env:
                    emit(env[args[0]] + "\n")
                else:
                    status = 1
            else:
                emit("".join(f"{k}={v}\n" for k, v in env.items()))
        elif name in _NOOPS:
            pass
        else:
            emit(f"sh: 1: {name}: not found\n")
            status = 127
    return Program(chunks, status, t + base_duration)
