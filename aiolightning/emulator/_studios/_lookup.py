"""What the studio handlers check first: the studio a call names, its machine and flag fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._call import Call
from .._errors import ApiError
from .._machines import find_machine, valid_slugs
from ._model import Studio

if TYPE_CHECKING:
    from .._state import Project

__all__ = ["bool_or_400", "machine_or_400", "studio_for"]


def machine_or_400(name: Any, field_name: str) -> str:
    if not isinstance(name, str):
        raise ApiError(400, f"invalid {field_name}: expected a string, got {type(name).__name__}")
    if find_machine(name) is None:
        raise ApiError(
            400,
            f"invalid {field_name}: unknown machine {name!r}; valid slugs: {', '.join(valid_slugs())}",
        )
    return name


def bool_or_400(v: Any, field_name: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ApiError(400, f"invalid {field_name}: expected a boolean")
    return v


def studio_for(call: Call, key: str = "id") -> tuple[Project, Studio]:
    p = call.state.project_for(call.params["projectId"], call.user)
    return p, call.state.studios.get(p, call.params[key])
