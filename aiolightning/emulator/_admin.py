"""`/_emulator/...` admin routes (only when `EmulatorConfig.admin` is true; 404 otherwise).

* `GET /_emulator/counters`      the counters snapshot
* `DELETE /_emulator/counters`   reset them
* `GET /_emulator/effects`       the effects per kind and item: `{kind: {key: n}}`
* `GET /_emulator/config`        faults, timings and the other knobs
* `PATCH /_emulator/config`      `{"faults": {...}, "timings": {...}, "page_size": n, ...}`
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from aiohttp import web

from ._config import Counters, EmulatorConfig
from ._errors import ApiError

__all__ = ["admin_routes", "config_to_dict", "patch_config"]


def config_to_dict(config: EmulatorConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _coerce(current: Any, value: Any, where: str, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise ApiError(400, f"invalid {where}: must not be null")
    if isinstance(current, bool) or (current is None and isinstance(value, bool)):
        if not isinstance(value, bool):
            raise ApiError(400, f"invalid {where}: expected a boolean")
        return value
    if isinstance(current, int | float) or current is None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, f"invalid {where}: expected a number")
        return type(current)(value) if current is not None else float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ApiError(400, f"invalid {where}: expected a string")
        return value
    raise ApiError(400, f"invalid {where}: not settable")


def _patch_dataclass(obj: Any, patch: Any, where: str) -> None:
    if not isinstance(patch, dict):
        raise ApiError(400, f"invalid {where}: expected an object")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in patch.items():
        f = fields.get(key)
        if f is None:
            raise ApiError(400, f"invalid {where}.{key}: unknown setting")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _patch_dataclass(current, value, f"{where}.{key}")
            continue
        nullable = "None" in str(f.type)
        setattr(obj, key, _coerce(current, value, f"{where}.{key}", nullable))


def patch_config(config: EmulatorConfig, patch: Any) -> None:
    """Apply a partial update; raise ApiError(400) naming the first bad setting."""
    if isinstance(patch, dict) and "admin" in patch:
        raise ApiError(400, "invalid admin: cannot be changed over the admin API")
    _patch_dataclass(config, patch, "config")


def _json(data: Any) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), content_type="application/json")


def admin_routes(config: EmulatorConfig, counters: Counters) -> list[tuple[str, str, Any]]:
    async def get_counters(request: web.Request) -> web.StreamResponse:
        return _json(counters.snapshot())

    async def reset_counters(request: web.Request) -> web.StreamResponse:
        counters.reset()
        return _json({})

    async def get_effects(request: web.Request) -> web.StreamResponse:
        return _json(counters.effects())

    async def get_config(request: web.Request) -> web.StreamResponse:
        return _json(config_to_dict(config))

    async def patch(request: web.Request) -> web.StreamResponse:
        try:
            data = msgspec.json.decode(await request.read())
        except msgspec.DecodeError as e:
            raise ApiError(400, f"invalid JSON body: {e}") from None
        patch_config(config, data)
        return _json(config_to_dict(config))

    return [
        ("GET", "/_emulator/counters", get_counters),
        ("DELETE", "/_emulator/counters", reset_counters),
        ("GET", "/_emulator/effects", get_effects),
        ("GET", "/_emulator/config", get_config),
        ("PATCH", "/_emulator/config", patch),
    ]
