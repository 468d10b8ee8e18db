"""The generated models decode what the service sends and encode what it expects."""

from __future__ import annotations

import enum
import gc
from typing import Any

import msgspec
import pytest

from aiolightning import models


def test_cloudspace_round_trip_uses_camel_case_wire_names() -> None:
    space = models.V1CloudSpace(
        id="cs-1",
        project_id="p-1",
        cluster_id="c-1",
        display_name="My Studio",
        code_config=models.V1CloudSpaceInstanceConfig(
            compute_config=models.V1UserRequestedComputeConfig(name="cpu-4")
        ),
        env=[models.V1EnvVar(name="A", value="1")],
    )
    raw = msgspec.json.encode(space)
    wire = msgspec.json.decode(raw)
    assert wire == {
        "clusterId": "c-1",
        "codeConfig": {"computeConfig": {"name": "cpu-4"}},
        "displayName": "My Studio",
        "env": [{"name": "A", "value": "1"}],
        "id": "cs-1",
        "projectId": "p-1",
    }
    assert msgspec.json.decode(raw, type=models.V1CloudSpace) == space


def test_absent_fields_are_none_and_omitted_when_encoding() -> None:
    space = msgspec.json.decode(b'{"id": "x"}', type=models.V1CloudSpace)
    assert space.name is None and space.code_status is None
    assert msgspec.json.encode(space) == b'{"id":"x"}'


def test_unknown_fields_and_unknown_enum_values_decode() -> None:
    raw = (
        b'{"id": "x", "state": "CLOUD_SPACE_STATE_FROM_THE_FUTURE", "brandNewField": {"a": 1},'
        b' "codeStatus": {"inUse": {"phase": "CLOUD_SPACE_INSTANCE_STATE_RUNNING", "x": 1}}}'
    )
    space = msgspec.json.decode(raw, type=models.V1CloudSpace)
    assert space.state == "CLOUD_SPACE_STATE_FROM_THE_FUTURE"
    assert space.code_status is not None and space.code_status.in_use is not None
    assert space.code_status.in_use.phase == models.V1CloudSpaceInstanceState.RUNNING


def test_enums_are_str_enums_comparable_with_wire_strings() -> None:
    assert issubclass(models.V1CloudSpaceState, enum.StrEnum)
    assert models.V1CloudSpaceState.READY.value == "CLOUD_SPACE_STATE_READY"
    space = msgspec.json.decode(b'{"state": "CLOUD_SPACE_STATE_READY"}', type=models.V1CloudSpace)
    assert space.state == models.V1CloudSpaceState.READY
    # a StrEnum member encodes as its value
    body = models.V1CloudSpace(state=models.V1CloudSpaceState.DELETED)
    assert msgspec.json.encode(body) == b'{"state":"CLOUD_SPACE_STATE_DELETED"}'


@pytest.mark.parametrize("raw", [b'{"totalSizeBytes": "1234"}', b'{"totalSizeBytes": 1234}'])
def test_int64_fields_accept_strings_and_numbers(raw: bytes) -> None:
    space = msgspec.json.decode(raw, type=models.V1CloudSpace)
    assert space.total_size_bytes is not None
    assert int(space.total_size_bytes) == 1234


def test_model_upload_part_numbers_sent_as_numbers_validate() -> None:
    # lightning-sdk sends Python ints for some int64 fields (wire-flows §1.3)
    body = msgspec.json.decode(
        b'{"uploadId": "u", "parts": [{"partNumber": 1, "etag": "e"}]}',
        type=models.ModelsStoreCompleteMultiPartUploadBody,
    )
    assert body.parts is not None and body.parts[0].part_number == 1


def test_struct_options() -> None:
    cfg = models.V1CloudSpace.__struct_config__
    assert cfg.omit_defaults and not cfg.gc and not cfg.forbid_unknown_fields
    assert not gc.is_tracked(models.V1CloudSpace(env=[models.V1EnvVar(name="a")]))
    with pytest.raises(TypeError):  # kw_only
        models.V1CloudSpace("positional")  # type: ignore[call-arg, arg-type]


def test_irregular_wire_names_round_trip() -> None:
    # "Source" (capitalised), "orgID"/"returnURL" (acronyms) do not follow rename="camel"
    names = {
        f.encode_name
        for name in dir(models)
        if isinstance(cls := getattr(models, name), type) and issubclass(cls, msgspec.Struct)
        for f in msgspec.structs.fields(cls)
    }
    assert {"Source", "orgID", "returnURL"} <= names


def test_map_fields_and_free_form_objects() -> None:
    space = msgspec.json.decode(b'{"engagementCounts": {"views": "3"}}', type=models.V1CloudSpace)
    assert space.engagement_counts == {"views": "3"}
    status = msgspec.json.decode(
        b'{"code": 5, "message": "nope", "details": [{"@type": "t", "x": [1]}]}',
        type=models.RpcStatus,
    )
    assert status.details == [{"@type": "t", "x": [1]}]


def test_every_struct_decoder_builds_and_accepts_an_empty_object() -> None:
    # resolves every forward reference, including recursive schemas
    count = 0
    for name in models.__all__:
        obj = getattr(models, name)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            assert msgspec.json.Decoder(obj).decode(b"{}") == obj()
            count += 1
    assert count >= 1340


def test_enums_load_lazily_and_are_exported() -> None:
    assert "V1CloudSpaceState" in models.__all__
    assert models.V1CloudSpaceState is models._enums.V1CloudSpaceState
    with pytest.raises(AttributeError):
        getattr(models, "NoSuchModel")  # noqa: B009


def test_wire_names_are_exactly_the_spec_properties() -> None:
    import json
    from pathlib import Path

    spec = json.loads(
        (Path(__file__).parent.parent / "spec" / "lightning-openapi.json").read_text()
    )
    for name, schema in spec["components"]["schemas"].items():
        obj = getattr(models, name)
        if "enum" in schema:
            assert issubclass(obj, enum.StrEnum)
            assert [m.value for m in obj] == schema["enum"]
        elif isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            wire = {f.encode_name for f in msgspec.structs.fields(obj)}
            assert wire == set(schema.get("properties", {})), name
            assert all(f.default is None for f in msgspec.structs.fields(obj)), name
        else:
            assert obj == dict[str, Any], name


def test_self_referencing_schema_decodes_nested_levels() -> None:
    raw = b'{"id": "root", "children": [{"id": "a", "children": [{"id": "a1"}]}, {"id": "b"}]}'
    page = msgspec.json.decode(raw, type=models.V1LitPage)
    assert page.children is not None and page.children[0].children is not None
    assert page.children[0].children[0].id == "a1"
    assert msgspec.json.decode(msgspec.json.encode(page), type=models.V1LitPage) == page
