"""Exit codes of the ``aiolightning`` command, and the one-line message for each failure.

A failure is reported as exactly one line on stderr, ``aiolightning: error: <what>``, and an
exit code a script can branch on. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import asyncio
import enum
import os

from .._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CredentialsError,
    InvalidArgumentError,
    LightningError,
    NotFoundError,
    PermissionDeniedError,
    TLSVerificationError,
)

__all__ = [
    "EXIT_CODES_HELP",
    "CliError",
    "ExitCode",
    "OperationFailed",
    "UsageError",
    "exit_code_for",
    "one_line",
    "unwrap",
]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # the operation ran and failed (a job failed, a studio did not start, HTTP 4xx/5xx)
    USAGE = 2  # bad arguments, input or settings (unknown machine, bad lit:// URL, HTTP 400,
    # a TLS certificate that cannot be verified with the configured CA bundle)
    CREDENTIALS = 3  # no credentials found, or the service rejected them (HTTP 401/403)
    UNREACHABLE = 4  # the service could not be reached (refused, DNS, timeout)
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  the operation failed (a job failed, a studio did not start, an API error)
  2  usage error, bad input or settings (unknown machine, malformed lit:// URL, HTTP 400,
     a TLS certificate that the configured CA bundle cannot verify)
  3  credentials missing or rejected (HTTP 401/403)
  4  connection failure: the service is unreachable or timed out
"""


class CliError(Exception):
    """An error the CLI itself detects; carries its exit code."""

    code: ExitCode = ExitCode.FAILED


class UsageError(CliError):
    """Bad arguments or bad input: exit code 2."""

    code = ExitCode.USAGE


class OperationFailed(CliError):
    """The command ran but what it did failed (some studios did not start, a job failed)."""

    code = ExitCode.FAILED


def unwrap(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (task groups wrap what went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that ended a command."""
    exc = unwrap(exc)
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, CredentialsError | AuthenticationError | PermissionDeniedError):
        return ExitCode.CREDENTIALS
    if isinstance(exc, TLSVerificationError):  # a setting to fix, not an unreachable service
        return ExitCode.USAGE
    if isinstance(exc, APIConnectionError):  # includes APITimeoutError
        return ExitCode.UNREACHABLE
    if isinstance(exc, BadRequestError | InvalidArgumentError):
        return ExitCode.USAGE
    if isinstance(exc, LightningError) and isinstance(exc, ValueError):
        return ExitCode.USAGE  # rejected before sending: bad path, bad lit:// URL ...
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED


def _secrets() -> list[str]:
    """Credential values known to this process, so that no message can ever show one."""
    values = [
        os.environ.get(name, "")
        for name in ("LIGHTNING_API_KEY", "LIGHTNING_AUTH_TOKEN", "LIGHTNING_SANDBOX_API_KEY")
    ]
    return [v for v in values if len(v) >= 6]


def _credentials_line(exc: CredentialsError, flags: bool) -> str:
    """A short line about what a command line user can set (``--credentials`` when
    ``flags``), not the Python arguments that the library's message lists."""
    if exc.path is None or exc.problem is None:
        return str(exc)
    if exc.path_given:
        which = "the --credentials file" if flags else "the credentials file"
        return f"no credentials: {which} {exc.path} {exc.problem}"
    other = "give --credentials FILE" if flags else "run `lightning login`"
    return (
        f"no credentials: set LIGHTNING_USER_ID and LIGHTNING_API_KEY, or {other} "
        f"({exc.path} {exc.problem})"
    )


def one_line(exc: BaseException, *, extra_secrets: tuple[str, ...] = (), flags: bool = True) -> str:
    """A single readable line describing ``exc`` (no newlines, no credentials); ``flags``:
    the line may name the ``aiolightning`` command's options."""
    exc = unwrap(exc)
    if isinstance(exc, TLSVerificationError):
        text = f"TLS certificate verification failed: {exc}"
    elif isinstance(exc, APITimeoutError):
        text = f"timed out talking to the service: {exc}"
    elif isinstance(exc, APIConnectionError):
        text = f"cannot reach the service: {exc}"
    elif isinstance(exc, CredentialsError):
        text = _credentials_line(exc, flags)
    elif isinstance(exc, AuthenticationError):
        text = f"credentials rejected by the service (HTTP 401): {exc.message}"
    elif isinstance(exc, PermissionDeniedError):
        text = f"permission denied (HTTP 403): {exc.message}"
    elif isinstance(exc, NotFoundError):
        text = f"not found: {exc.message or exc}"
    elif isinstance(exc, APIStatusError):
        text = str(exc)
    elif isinstance(exc, LightningError | CliError):
        text = str(exc)
    elif isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        text = "interrupted"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    for secret in (*_secrets(), *extra_secrets):
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text or type(exc).__name__
