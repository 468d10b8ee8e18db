"""Request-body checks against the generated models, and zero-filled response shapes.

Bodies are decoded to plain JSON, their snake_case keys renamed to camelCase (protojson
accepts both), then converted with `msgspec.convert(..., type=aiolightning.models.X)`, so a
wrong type is a 400 whose message carries msgspec's path (`$.computeConfig.name`). The
generated models are imported lazily; without them only the JSON syntax is checked.

`zero_template(name)` builds, once per schema, a dict of every field of the response
schema set to its zero value (`""`, `0`, `false`, `[]`, `{}`, int64 as `"0"`, messages as
`null`) so responses emit all fields the way grpc-gateway does.
"""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

import msgspec

from ._errors import ApiError

__all__ = ["camelize", "decode_body", "model", "zero_template"]

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
_models: Any = None
_models_failed = False


def _load_models() -> Any:
    global _models, _models_failed
    if _models is None and not _models_failed:
        try:
            from aiolightning import models as m
        except ImportError:
            _models_failed = True
        else:
            _models = m
    return _models


def model(name: str) -> type[Any] | None:
    m = _load_models()
    if m is None:
        return None
    t = getattr(m, name, None)
    return t if isinstance(t, type) and issubclass(t, msgspec.Struct) else None


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camelize(obj: Any) -> Any:
    """Rename snake_case keys to camelCase, recursively (values are left alone)."""
    if isinstance(obj, dict):
        return {(_camel(k) if _SNAKE.match(k) else k): camelize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camelize(v) for v in obj]
    return obj


def decode_body(raw: bytes, model_name: str | None) -> dict[str, Any]:
    """Decode, normalise and validate a JSON object body; raise ApiError(400) if it's bad."""
    if not raw.strip():
        return {}
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise ApiError(400, f"invalid JSON body: {e}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "request body must be a JSON object")
    obj = camelize(obj)
    assert isinstance(obj, dict)
    if model_name:
        t = model(model_name)
        if t is not None:
            try:
                msgspec.convert(obj, type=t)
            except msgspec.ValidationError as e:
                raise ApiError(400, f"invalid request body: {e}") from None
    return obj


# ---------------------------------------------------------------------------------------------
# zero-filled response shapes

_templates: dict[str, dict[str, Any]] = {}


def _zero_for(t: Any) -> Any:
    origin = get_origin(t)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(t) if a is not type(None)]
        if str in args and int in args:
            return "0"  # proto int64: a string on the wire
        if len(args) == 1:
            return _zero_for(args[0])
        return None
    if origin in (list, tuple, set, frozenset) or t in (list, tuple):
        return []
    if origin is dict or t is dict:
        return {}
    if t is str:
        return ""
    if t is bool:
        return False
    if t is int or t is float:
        return 0
    return None  # nested messages, Any


def zero_template(name: str) -> dict[str, Any]:
    tpl = _templates.get(name)
    if tpl is not None:
        return tpl
    tpl = {}
    t = model(name)
    if t is not None:
        from ._schema_facts import DATETIME, ENUMS

        datetimes = DATETIME.get(name, frozenset())
        enums = ENUMS.get(name, {})
        hints = _hints(t)
        fields: tuple[str, ...] = getattr(t, "__struct_fields__", ())
        wire: tuple[str, ...] = getattr(t, "__struct_encode_fields__", fields)
        for attr, key in zip(fields, wire, strict=True):
            if key in datetimes:
                tpl[key] = None
            elif key in enums:
                tpl[key] = enums[key]
            else:
                tpl[key] = _zero_for(hints.get(attr, Any))
        _templates[name] = tpl
    return tpl


def _hints(t: type[Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(t)
    except Exception:
        return {}


def filled(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` over the zero template of schema `name`."""
    tpl = zero_template(name)
    if not tpl:
        return data
    out = dict(tpl)
    out.update(data)
    return out
