"""Decoding a large typed response: aiolightning vs lightning-sdk vs untyped msgspec.

The body is a ``V1ListCloudSpacesResponse`` of N cloudspaces (default 1,000), every field of
every object filled from the spec (nested objects, arrays, maps, date-times, int64 fields as
strings, enums), built once and encoded to JSON bytes. Each contender decodes the same bytes:

* ``aiolightning``: the transport's own response path (``Transport._decode`` with the
  generated ``models.V1ListCloudSpacesResponse``: typed ``msgspec`` Structs);
* ``lightning-sdk``: ``ApiClient().deserialize(response, "V1ListCloudSpacesResponse")``, what
  the official SDK runs on every response (``json.loads``, then its model classes; it parses
  date-times with dateutil when that is installed, as it is with the SDK);
* ``msgspec untyped``: ``msgspec.json.decode(body)`` into dicts and lists, the floor for any
  JSON decode in Python.

It prints the best of ``--repeat`` timings per contender and the ratios; targets:
aiolightning >= 50x faster than lightning-sdk and <= 1.2x untyped msgspec.

    python benchmarks/bench_decode.py [--items 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from aiolightning import models
from aiolightning._transport import Transport

SPEC = Path(__file__).resolve().parent.parent / "spec" / "lightning-openapi.json"
MAX_DEPTH = 4  # nested messages deeper than this are left out (the spec has cycles)


class Filler:
    """Builds a JSON value with every field of a spec schema set."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = spec["components"]["schemas"]
        self.counter = 0

    def value(self, schema: dict[str, Any], depth: int) -> Any:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if depth >= MAX_DEPTH:
                return None
            return self.value(self.schemas[name], depth + 1)
        for key in ("allOf", "oneOf", "anyOf"):
            if key in schema:
                return self.value(schema[key][0], depth)
        self.counter += 1
        n = self.counter
        kind = schema.get("type", "object")
        fmt = schema.get("format", "")
        if "enum" in schema:
            values = schema["enum"]
            return values[n % len(values)]
        if kind == "string":
            if fmt == "date-time":
                return f"2026-11-{1 + n % 28:02d}T12:{n % 60:02d}:56.{n % 999999:06d}Z"
            if fmt in ("int64", "uint64"):
                return str(1_000_000_000 + n)
            if fmt == "byte":
                return "aGVsbG8="
            return f"value-{n}"
        if kind == "integer":
            return n % 10_000
        if kind == "number":
            return n / 7
        if kind == "boolean":
            return n % 2 == 0
        if kind == "array":
            item = self.value(schema.get("items", {}), depth)
            return [] if item is None else [item]
        props = schema.get("properties")
        if props:
            out = {}
            for key, sub in props.items():
                v = self.value(sub, depth)
                if v is not None:
                    out[key] = v
            return out
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            v = self.value(extra, depth)
            return {} if v is None else {"key": v}
        return {}


def build_body(items: int) -> bytes:
    spec = json.loads(SPEC.read_text())
    filler = Filler(spec)
    cloudspaces = [
        filler.value({"$ref": "#/components/schemas/V1CloudSpace"}, 0) for _ in range(items)
    ]
    return msgspec.json.encode({"cloudspaces": cloudspaces, "nextPageToken": "tok"})


class _SdkResponse:
    """The shape of the SDK's RESTResponse that ``ApiClient.deserialize`` reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data.decode()


def contenders(body: bytes) -> dict[str, Callable[[], Any]]:
    transport = Transport("http://127.0.0.1:1")
    tp = models.V1ListCloudSpacesResponse
    path = "/v1/projects/p/cloudspaces"
    found: dict[str, Callable[[], Any]] = {
        "aiolightning": lambda: transport._decode(body, tp, "GET", path, 200),
        "msgspec untyped": lambda: msgspec.json.decode(body),
    }
    try:
        from lightning_sdk.lightning_cloud.openapi import ApiClient
    except ImportError:
        print("lightning-sdk is not installed: pip install -e '.[test]' (its row is left out)")
    else:
        client = ApiClient()
        resp = _SdkResponse(body)
        found["lightning-sdk"] = lambda: client.deserialize(resp, "V1ListCloudSpacesResponse")
    return found


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm caches (decoders, class lookups)
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    return min(times)


def check(body: bytes) -> None:
    """Every contender sees the same cloudspaces (the typed decode dropped nothing)."""
    typed = msgspec.json.decode(body, type=models.V1ListCloudSpacesResponse)
    again = msgspec.json.decode(msgspec.json.encode(typed))
    assert again == msgspec.json.decode(body), "typed decode lost fields"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    body = build_body(args.items)
    check(body)
    print(f"V1ListCloudSpacesResponse: {args.items} cloudspaces, {len(body) / 1e6:.2f} MB JSON")
    results = {name: best_of(fn, args.repeat) for name, fn in contenders(body).items()}
    base = results["aiolightning"]
    print(f"{'contender':<18} {'best ms':>9} {'µs/item':>9} {'vs aiolightning':>16}")
    for name, t in results.items():
        print(f"{name:<18} {t * 1e3:>9.2f} {t * 1e6 / args.items:>9.1f} {t / base:>15.2f}x")
    untyped = results["msgspec untyped"]
    print(f"target: aiolightning <= 1.2x untyped msgspec: {base / untyped:.2f}x", end=" ")
    print("met" if base <= 1.2 * untyped else "NOT met")
    if "lightning-sdk" in results:
        ratio = results["lightning-sdk"] / base
        print(f"target: >= 50x lightning-sdk: {ratio:.0f}x", "met" if ratio >= 50 else "NOT met")


if __name__ == "__main__":
    main()
