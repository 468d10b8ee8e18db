"""What an emulated operation's handler receives, and the table handlers register into."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiMapping

from ._errors import ApiError

if TYPE_CHECKING:
    from ._state import State, User

__all__ = ["Call", "Handler", "Route", "RouteTable"]


class Call:
    """One request to an emulated operation, already authenticated and validated."""

    __slots__ = ("body", "params", "request", "route", "state", "user")

    def __init__(
        self,
        state: State,
        request: web.Request,
        route: Route,
        params: dict[str, str],
        user: User,
        body: dict[str, Any],
    ) -> None:
        self.state = state
        self.request = request
        self.route = route
        self.params = params
        self.user = user
        self.body = body

    @property
    def query(self) -> MultiMapping[str]:
        return self.request.query

    def q(self, name: str, default: str = "") -> str:
        v = self.request.query.get(name)
        if v is None:
            v = self.request.query.get(_snake(name))
        # the generated SDK client sends a parameter passed as None as the literal "None"
        return default if v is None or v == "None" else v

    def qlist(self, name: str) -> list[str]:
        q = self.request.query
        vals = q.getall(name, []) or q.getall(_snake(name), [])
        return [v for v in vals if v != ""]

    def qbool(self, name: str) -> bool | None:
        v = self.q(name, "")
        if v == "":
            return None
        low = v.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", "none"):
            return False
        raise ApiError(400, f"invalid boolean for query parameter {name}: {v!r}")

    def qint(self, name: str) -> int | None:
        v = self.q(name, "")
        if v == "" or v == "None":
            return None
        try:
            return int(v)
        except ValueError:
            raise ApiError(400, f"invalid integer for query parameter {name}: {v!r}") from None


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    handler: Handler
    body_model: str | None = None
    auth: bool = True  # False: no credentials needed (login)
    read_body: bool = True  # False: the body is not read (501 routes)


class RouteTable:
    """Handlers register themselves with `@table.route("GET", "/v1/...")`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self, method: str, template: str, *, body: str | None = None, auth: bool = True
    ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), template, fn, body, auth))
            return fn

        return deco
