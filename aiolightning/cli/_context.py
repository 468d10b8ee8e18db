"""What a running command gets: its arguments, the output, progress settings and a client.

The client is built on first use, from ``--url``/``--credentials``/``--teamspace`` and
otherwise exactly the way ``AsyncLightning()`` finds its settings (environment variables,
credentials file), and closed when the command ends.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from ._exit import UsageError
from ._output import Output
from ._progress import Progress, progress_enabled

if TYPE_CHECKING:
    from .._client import AsyncLightning

__all__ = ["Context", "Handler"]

Handler = Callable[["Context"], Awaitable[int | None]]


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(getattr(args, "json", False))
        self.debug: bool = bool(getattr(args, "debug", False))
        self.out = Output(json=self.json)
        self.show_progress = progress_enabled(requested=not getattr(args, "no_progress", False))
        self.stack = contextlib.AsyncExitStack()
        self._client: AsyncLightning | None = None

    async def run(self, handler: Handler) -> int:
        async with self.stack:
            code = await handler(self)
        return 0 if code is None else int(code)

    def err(self, text: str) -> None:
        """A line of information for people, on stderr (stdout holds only results)."""
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def progress(
        self, label: str, total: float | None = None, *, unit: Literal["bytes", "items"] = "items"
    ) -> Progress:
        return Progress(label, total, unit=unit, enabled=self.show_progress)

    async def client(self, **overrides: Any) -> AsyncLightning:
        """The command's client (created on first call, closed when the command ends)."""
        if self._client is None:
            from .._client import AsyncLightning

            kwargs: dict[str, Any] = {
                "base_url": getattr(self.args, "url", None),
                "credentials_path": getattr(self.args, "credentials", None),
                "teamspace": getattr(self.args, "teamspace", None),
            }
            if getattr(self.args, "proxy", None):
                kwargs["proxy"] = self.args.proxy
            ca_bundle = getattr(self.args, "ca_bundle", None)
            if getattr(self.args, "insecure", False):
                if ca_bundle:
                    raise UsageError("--ca-bundle and --insecure contradict each other")
                kwargs["verify"] = False
                self.err("aiolightning: warning: --insecure: TLS certificates are not verified")
            elif ca_bundle:
                kwargs["verify"] = ca_bundle
            retries = getattr(self.args, "retries", None)
            if retries is not None:
                from .._retry import RetryPolicy

                if retries < 0:
                    raise UsageError("--retries must not be negative")
                kwargs["retry"] = RetryPolicy(max_attempts=retries + 1)
            kwargs.update(overrides)
            client = AsyncLightning(**kwargs)
            self._client = await self.stack.enter_async_context(client)
        return self._client
