"""Request-body and query checks against the generated models, and zero-filled response shapes.

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

__all__ = ["camelize", "check_query", "decode_body", "model", "query_types", "zero_template"]

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
        _check_enums(obj, model_name, "$")
        if t is not None:
            _check_int64(obj, t, "$")
    return obj


def _check_int64(obj: dict[str, Any], t: type[Any], where: str) -> None:
    """400 for an int64 field given as a string that is not an integer (protojson reads
    int64 as a number or a decimal string; the models accept any string there)."""
    int64s, nested = _int64_plan(t)
    for key in int64s:
        value = obj.get(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and not (_INT.match(v) and -_INT64 <= int(v) < _INT64):
                raise ApiError(
                    400, f"invalid request body: invalid value for int64 field {where}.{key}: {v!r}"
                )
    for key, child in nested.items():
        value = obj.get(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict):
                _check_int64(v, child, f"{where}.{key}")


_int64_plans: dict[type[Any], tuple[list[str], dict[str, type[Any]]]] = {}


def _int64_plan(t: type[Any]) -> tuple[list[str], dict[str, type[Any]]]:
    """(wire names of the int64 fields, {wire name: model} of the message fields) of a model."""
    plan = _int64_plans.get(t)
    if plan is None:
        hints = _hints(t)
        int64s: list[str] = []
        nested: dict[str, type[Any]] = {}
        fields: tuple[str, ...] = getattr(t, "__struct_fields__", ())
        wire: tuple[str, ...] = getattr(t, "__struct_encode_fields__", fields)
        for attr, key in zip(fields, wire, strict=True):
            args = [a for a in get_args(hints.get(attr)) if a is not type(None)]
            if str in args and int in args:
                int64s.append(key)
                continue
            inner = args[0] if len(args) == 1 else None
            if get_origin(inner) is list:
                inner = (get_args(inner) or (None,))[0]
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                nested[key] = inner
        plan = _int64_plans[t] = (int64s, nested)
    return plan


def _check_enums(obj: dict[str, Any], schema: str, where: str) -> None:
    """400 for an enum field whose value is not one of its names (null is unset); the models
    type enum fields as plain strings. protojson takes an enum's number too, but the spec
    lists the names only, so a number is refused (by the model's `str`) before this."""
    from ._schema_facts import BODY_ENUMS, BODY_NESTED

    for key, allowed in BODY_ENUMS.get(schema, {}).items():
        value = obj.get(key)
        for v in value if isinstance(value, list) else [value]:
            if v is None or v in allowed:
                continue
            raise ApiError(
                400, f"invalid request body: invalid value for enum field {where}.{key}: {v!r}"
            )
    for key, child in BODY_NESTED.get(schema, {}).items():
        value = obj.get(key)
        items = value if isinstance(value, list) else [value]
        for i, v in enumerate(items):
            if isinstance(v, dict):
                at = f"{where}.{key}[{i}]" if isinstance(value, list) else f"{where}.{key}"
                _check_enums(v, child, at)


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


# ---------------------------------------------------------------------------------------------
# query parameters, checked as grpc-gateway parses them into the request message

# strconv.ParseBool's spellings (grpc-gateway parses a bool parameter with it, so an empty
# value is a 400 as well)
_BOOLS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false"})
_BOOLS = _BOOLS | {"False"}
_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64 = 1 << 63
_INT32 = 1 << 31
_query_types: dict[tuple[str, str], dict[str, str]] | None = None


def query_types(method: str, template: str) -> dict[str, str]:
    """The declared query parameters of an operation: wire name -> generated type (`bool`,
    `int`, `float`, `str`, `str | int` for an int64, `list[...]`); {} if unknown."""
    global _query_types
    if _query_types is None:
        try:
            from aiolightning.api._operations import OPERATIONS
        except ImportError:
            OPERATIONS = ()
        _query_types = {
            (op.method.upper(), op.path): {wire: kind for _, wire, kind in op.query_params}
            for op in OPERATIONS
        }
    return _query_types.get((method, template), {})


def check_query(query: Any, declared: dict[str, str]) -> None:
    """400 for a declared query parameter that the service could not parse: a boolean or a
    number that is not one (an empty value included: strconv refuses it), or several values
    for a parameter that is not a list. The literal ``None``, which the SDK's generated
    client sends for a parameter passed as None, counts as unset (as `Call.q` reads it)."""
    for wire, kind in declared.items():
        values = query.getall(wire, ()) or query.getall(_snake_of(wire), ())
        if not values:
            continue
        if kind.startswith("list["):
            if kind == "list[int]":
                for v in values:
                    _check_scalar(wire, "int", v)
            continue
        if len(values) > 1:
            raise ApiError(400, f"invalid query parameter {wire}: too many values")
        _check_scalar(wire, kind, values[0])


def _check_scalar(wire: str, kind: str, value: str) -> None:
    if value == "None" or kind == "str":
        return
    if kind == "bool":
        ok = value in _BOOLS
    elif kind in ("int", "str | int"):
        bound = _INT32 if kind == "int" else _INT64  # the generator types every int64 str | int
        ok = bool(_INT.match(value)) and -bound <= int(value) < bound
    elif kind == "float":
        try:
            float(value)
        except ValueError:
            ok = False
        else:
            ok = "_" not in value and value.strip() == value
    else:
        ok = True
    if not ok:
        what = {"bool": "a boolean", "float": "a number"}.get(kind, "an integer")
        raise ApiError(400, f"invalid query parameter {wire}: {value!r} is not {what}")


def _snake_of(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)
