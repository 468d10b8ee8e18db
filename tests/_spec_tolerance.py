"""The spec as the service speaks it, and the failures that are its behaviour, for
tests/test_schemathesis.py: the explicit list of what is tolerated, each with its evidence.

``spec_as_spoken`` rewrites the spec where it misdescribes the wire and adds the OpenAPI
links it lacks; ``TOLERATED`` names, per schemathesis check, the rules that let a failure
pass; ``validate`` runs schemathesis' checks less those. Anything else is a failure, to be
fixed in the emulator.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from schemathesis.core.failures import Failure, FailureGroup

from aiolightning import models
from aiolightning.api._operations import OPERATIONS, OPERATIONS_BY_ID
from aiolightning.emulator._router import Router, split_path

__all__ = ["TOLERATED", "spec_as_spoken", "validate"]

_QUERY_KINDS = {
    (op.method.upper(), op.path, wire): kind
    for op in OPERATIONS
    for _, wire, kind in op.query_params
}


# -- the spec as the service really speaks it -------------------------------------------------


def spec_as_spoken(raw: dict[str, Any]) -> dict[str, Any]:
    """The spec with the service's encoding deviations written in (a copy).

    1. An unset sub-message is ``null`` (grpc-gateway marshals with EmitUnpopulated: every
       field present, unset messages as null; wire-flows §1.4, §8 item 4). The spec types
       such fields as plain objects: they become nullable.
    2. An unset ``google.protobuf.Timestamp`` is a message too, so ``null`` as well; the spec
       types timestamps as ``string`` / ``date-time``: they become nullable.
    3. int64 values travel as strings (wire-flows §1.4) and the spec types them as plain
       ``string``, so any text would do; but grpc-gateway parses an int64 query parameter
       with strconv.ParseInt and protojson an int64 field as a decimal integer, so only an
       integer's digits are valid. The generator knows which fields and query parameters
       are int64 (``str | int``): they get the pattern of an integer, in requests and in
       responses alike.
    4. The other integer query parameters are proto int32s (the generator maps every int64
       to ``str | int``), which grpc-gateway parses with strconv.ParseInt(v, 10, 32); the
       spec dropped their ``format: int32``: they get its bounds.
    """
    spec = copy.deepcopy(raw)
    schemas = spec["components"]["schemas"]

    def is_message(prop: dict[str, Any]) -> bool:
        ref = prop.get("$ref")
        if ref is not None:
            target = schemas.get(ref.rsplit("/", 1)[-1], {})
            return target.get("type") == "object" or "properties" in target
        return prop.get("type") == "object"

    def nullable(props: dict[str, Any]) -> None:
        for name, prop in props.items():
            if "$ref" in prop and is_message(prop):
                props[name] = {"allOf": [{"$ref": prop["$ref"]}], "nullable": True}
            elif is_message(prop) or prop.get("format") == "date-time":
                prop["nullable"] = True

    for name, s in schemas.items():
        props = s.get("properties") or {}
        for key in _int64_fields(name):
            if props.get(key, {}).get("type") == "string":
                props[key]["pattern"] = INT64
        nullable(props)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []) if isinstance(op, dict) else []:
                kind = _QUERY_KINDS.get((method.upper(), path, p["name"]))
                if p["in"] == "query" and kind == "str | int":
                    p["schema"] = {"type": "string", "pattern": INT64}
                elif p["in"] == "query" and kind == "int":
                    p["schema"].update(minimum=-(2**31), maximum=2**31 - 1)
    _add_links(spec)
    return spec


INT64 = r"^-?[0-9]{1,18}$"


def _int64_fields(schema: str) -> list[str]:
    """The wire names of the int64 fields of a schema, from its generated model."""
    t = getattr(models, schema, None)
    if t is None or not hasattr(t, "__struct_encode_fields__"):
        return []
    hints = typing.get_type_hints(t)
    return [
        wire
        for wire, attr in zip(t.__struct_encode_fields__, t.__struct_fields__, strict=True)
        if {str, int} <= set(typing.get_args(hints.get(attr)))
    ]


def _link(op: str, **params: str) -> dict[str, Any]:
    return {"operationId": op, "parameters": params}


def _add_links(spec: dict[str, Any]) -> None:
    """The spec declares no OpenAPI links at all; these follow the ids the service returns
    to the operations that take them, so the stateful phase reaches real studios and jobs."""
    studio = {"projectId": "$response.body#/projectId", "id": "$response.body#/id"}
    studio_ops = [
        "cloud_space_service_get_cloud_space",
        "cloud_space_service_update_cloud_space",
        "cloud_space_service_delete_cloud_space",
        "cloud_space_service_start_cloud_space_instance",
        "cloud_space_service_stop_cloud_space_instance",
        "cloud_space_service_get_cloud_space_instance_status",
        "cloud_space_service_get_cloud_space_instance_config",
        "cloud_space_service_update_cloud_space_instance_config",
        "cloud_space_service_keep_alive_cloud_space_instance",
        "cloud_space_service_update_cloud_space_sleep_config",
        "cloud_space_service_execute_command_in_cloud_space",
        "cloud_space_service_switch_cloud_space_instance",
        "cloud_space_service_cancel_cloud_space_instance_switch",
    ]
    runs = {"projectId": "$response.body#/projectId", "cloudspaceId": "$response.body#/id"}
    job = {"projectId": "$response.body#/projectId", "id": "$response.body#/id"}
    job_ops = ["jobs_service_get_job", "jobs_service_update_job", "jobs_service_delete_job"]
    links: dict[tuple[str, str], dict[str, Any]] = {
        ("/v1/projects/{projectId}/cloudspaces", "post"): {
            **{op: _link(op, **studio) for op in studio_ops},
            "runs": _link("cloud_space_service_create_lightning_run", **runs),
            "list_runs": _link("cloud_space_service_list_lightning_runs", **runs),
        },
        ("/v1/projects/{projectId}/jobs", "post"): {
            **{op: _link(op, **job) for op in job_ops},
            "find": _link(
                "jobs_service_find_job",
                projectId="$response.body#/projectId",
                name="$response.body#/name",
            ),
        },
        ("/v1/projects", "post"): {
            "get": _link("projects_service_get_project", id="$response.body#/id"),
        },
    }
    for (path, method), named in links.items():
        spec["paths"][path][method]["responses"]["200"]["links"] = {
            name.removeprefix("cloud_space_service_").removeprefix("jobs_service_"): link
            for name, link in named.items()
        }


# -- failures that are the service's documented behaviour, not the emulator's ---------------

_ALL_SPEC_ROUTES: Router[str] = Router()
for _op in OPERATIONS:
    _ALL_SPEC_ROUTES.add(_op.method.upper(), _op.path, _op.operation_id)


def _allow_is_the_specs(case: Any, failure: Failure, response: Any) -> bool:
    """The spec has path items that are one URL template under two names
    (``/v1/projects/{id}`` with GET/PUT/DELETE, ``/v1/projects/{projectId}`` with POST) or
    that overlap (``/jobs/find`` is also ``/jobs/{id}``), so one URL is served with the methods
    of several path items. The emulator's ``Allow`` lists exactly the methods the spec
    documents for the URL across all its path items; schemathesis compares it with one."""
    allow = {m.strip() for m in response.headers.get("allow", [""])[0].split(",") if m.strip()}
    segments = split_path(urlsplit(response.request.url).path)
    return allow == set(_ALL_SPEC_ROUTES.allowed_methods(segments))


def _accepted_by_protojson(case: Any, failure: Failure, response: Any) -> bool:
    """Three bodies the spec calls invalid that the service reads:

    * no body at all: grpc-gateway reads an absent body as the empty message ``{}`` (an
      io.EOF from the decoder is not an error), and the SDK sends body-less POSTs
      (wire-flows §8 item 3); the spec marks every body ``required``;
    * a ``null`` field: the proto3 JSON mapping accepts null for every field type and reads
      it as the field's default; the spec's types have no null;
    * an int64 as a JSON number: the proto3 JSON mapping accepts a number or a string for
      an int64 (wire-flows §8 item 3); the spec types int64 fields as ``string`` only (the
      generated model, built from the same spec plus the int64 facts, types them
      ``str | int``).
    """
    message = str(failure.message)
    if "Missing request body" in message:
        return True
    if _valid_without_nulls(case):
        return True
    path = _body_field(message)
    if path is None:
        return False
    value = _lookup(case.body, path)
    if value is None:
        return True
    return type(value) is int and _is_int64(case.operation.definition.raw["operationId"], path)


def _valid_without_nulls(case: Any) -> bool:
    """Whether the body has nulls and is valid once they are dropped (as protojson reads
    them: unset). Several mutations at once leave schemathesis' message without a field
    name, so the body itself is checked against the operation's body schema."""
    body = case.body
    stripped = _drop_nulls(body)
    if not isinstance(body, dict) or stripped == body:
        return False
    raw = case.operation.definition.raw
    target = raw["requestBody"]["content"]["application/json"]["schema"]
    root = {**target, "components": case.operation.schema.raw_schema["components"]}
    return bool(jsonschema_rs.validator_for(root).is_valid(stripped))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _is_int64(operation_id: str, path: list[str]) -> bool:
    t: Any = getattr(models, OPERATIONS_BY_ID[operation_id].body_model or "", None)
    for key in path:
        if t is None or not hasattr(t, "__struct_encode_fields__"):
            return False
        hints = typing.get_type_hints(t)
        names = dict(zip(t.__struct_encode_fields__, t.__struct_fields__, strict=True))
        hint = hints.get(names.get(key, ""))
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        t = args[0] if len(args) == 1 else None
        if {str, int} <= set(args):
            return key == path[-1]
    return False


def _body_field(message: str) -> list[str] | None:
    """The body field a type failure names, in either of schemathesis' two wordings."""
    short = re.search(r"in body - ([\w.]+): Incorrect type", message)
    if short is not None:
        return short.group(1).split(".")
    long = re.search(r"in body - violates `type` at ((?:/properties/\w+)+) \(", message)
    if long is not None:
        return long.group(1).split("/")[2::2]
    return None


def _lookup(body: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(body, dict) or key not in body:
            return "missing"
        body = body[key]
    return body


def _validated_in_code(*operations: str) -> Callable[[Any, Failure, Any], bool]:
    """proto3 has no required fields and no references, so the spec declares neither; the
    service checks in code the fields it needs (a studio, job or deployment needs a name, a
    job or deployment an image or a studio, a command its text, a log page a target), the names that must
    exist (a machine slug, a cluster bound to the teamspace) and the one state a job can be
    set to (``state`` is a free string in the spec, wire-flows §5.4; only a stop is
    accepted), and answers 400 INVALID_ARGUMENT naming the field."""

    def tolerated(case: Any, failure: Failure, response: Any) -> bool:
        return case.operation.definition.raw.get("operationId") in operations and (
            response.status_code == 400 and response.json().get("code") == 3
        )

    return tolerated


#: (check code, why it is the service's behaviour) -> the failures it lets pass
def _opaque_page_token(case: Any, failure: Failure, response: Any) -> bool:
    """A page token is opaque: only one the service handed out is valid, and any other is a
    400 INVALID_ARGUMENT; the spec can only type it as a string."""
    return response.status_code == 400 and "pageToken" in response.json().get("message", "")


def _failed_precondition(case: Any, failure: Failure, response: Any) -> bool:
    """A valid request that the resource's state refuses (a command in a studio that is not
    running, a start while it stops, a switch-confirm with no switch under way) is grpc's
    FAILED_PRECONDITION (code 9), which grpc-gateway answers with 400 (wire-flows §7.1);
    the spec cannot say what state an operation needs."""
    return response.status_code == 400 and response.json().get("code") == 9


def _found_by_a_name_it_lost(case: Any, failure: Failure, response: Any) -> bool:
    """``GET /jobs/find?name=`` after the job was deleted by id or renamed (``PUT
    /jobs/{id}`` with a new name, wire-flows §5.6) rightly answers 404; schemathesis counts
    only a DELETE on the path it found the job by, and the delete was on ``/jobs/{id}``."""
    return case.operation.definition.raw["operationId"] == "jobs_service_find_job"


Rule = Callable[[Any, Failure, Any], bool]

#: check code -> the rules that let its failure pass (each one's docstring is its evidence)
TOLERATED: dict[str, tuple[Rule, ...]] = {
    "ST205": (_allow_is_the_specs,),  # Allow header mismatch
    "ST302": (_found_by_a_name_it_lost,),  # created resource not found
    "ST201": (_accepted_by_protojson,),  # schema-violating request accepted
    "ST202": (  # schema-valid request rejected
        _opaque_page_token,
        _failed_precondition,
        _validated_in_code(
            "projects_service_create_project",
            "cloud_space_service_create_cloud_space",
            "cloud_space_service_execute_command_in_cloud_space",
            "jobs_service_create_job",
            "jobs_service_update_job",
            "jobs_service_get_logs",
            # a deployment needs a name, a machine, a spec with an image or a studio, and
            # replicas within its autoscaling bounds; a multi-machine job a name, a spec
            # and machines >= 1 (what lightning-sdk's Deployment and MMT always send)
            "jobs_service_create_deployment",
            "jobs_service_update_deployment",
            "jobs_service_create_multi_machine_job",
            "jobs_service_update_multi_machine_job",
        ),
    ),
}


def validate(case: Any, response: Any, **kwargs: Any) -> None:
    """schemathesis' checks, less the failures ``TOLERATED`` lets pass."""
    try:
        case.validate_response(response, **kwargs)
    except FailureGroup as group:
        left = []
        for failure in group.exceptions:
            rules = TOLERATED.get(failure.code, ())
            if not any(rule(case, failure, response) for rule in rules):
                left.append(failure)
        if left:
            raise FailureGroup(left, group.message) from None
