"""JSON in and out, and read-only copies of parsed JSON.

One place for the parser (orjson, with the standard library behind it for what
orjson refuses), the compact encoder, and :func:`freeze`, which the codec and
the webhooks both use so that "kept raw" means the same everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import orjson

from ._errors import InvalidConfig

__all__ = [
    "JsonValue",
    "OrjsonError",
    "dumps",
    "freeze",
    "frozen_copy",
    "loads",
    "orjson_loads",
    "stdlib_loads",
]

JsonValue: TypeAlias = (
    bool | int | float | str | tuple["JsonValue", ...] | Mapping[str, "JsonValue"] | None
)
"""A JSON value as the codec hands it out: arrays are tuples, objects read-only mappings."""

orjson_loads = orjson.loads
OrjsonError = orjson.JSONDecodeError


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# One decoder instance keeps json's C scanner and avoids a per-call constructor;
# it rejects NaN/Infinity (not JSON, and not re-encodable with allow_nan=False).
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
# The decoder's C scanner (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(_decoder)["scan_once"]


def loads(text: str) -> Any:
    """Parse JSON: orjson for speed, the stdlib decoder for what orjson refuses.

    orjson is several times faster on media packets (the hot path).  It
    refuses lone surrogate escapes, which JSON allows; those and every error
    go through the stdlib decoder, which also produces the precise message.
    """
    try:
        return orjson_loads(text)
    except OrjsonError:
        return stdlib_loads(text)


def stdlib_loads(text: str) -> Any:
    """The stdlib decoder: lone surrogate escapes, and precise error messages."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _decoder.decode(text)
    if end != len(text):
        return _decoder.decode(text)
    return value


def _encode_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


dumps: Callable[[object], str] = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, default=_encode_default
).encode
"""Compact JSON text (ASCII-escaped); read-only mappings are written as objects."""


_LEAVES = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = (Mapping, list, tuple)


def freeze(root: Mapping[str, Any]) -> Mapping[str, JsonValue]:
    """Deep read-only copy: mappings become mappingproxies, lists and tuples tuples.

    Iterative (children before parents), so a deeply nested but parseable
    document cannot exhaust the stack; a container shared by two parents is
    copied once, and one that contains itself raises :class:`InvalidConfig` (a
    caller's mistake: parsed JSON never does).
    """
    done: dict[int, Any] = {}  # id of a source container -> its frozen copy
    copy_of = done.get
    path: set[int] = set()  # containers whose children are being copied
    stack: list[Any] = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        tp = type(node)
        is_mapping = tp is dict or (tp is not list and isinstance(node, Mapping))
        if key not in path:  # first visit: copy the children first
            if key in done:  # a container seen twice (never in parsed JSON)
                stack.pop()
                continue
            path.add(key)
            for child in node.values() if is_mapping else node:
                tp = type(child)
                if (
                    tp is dict
                    or tp is list
                    or (tp not in _LEAVES and isinstance(child, _CONTAINERS))
                ):
                    if id(child) in path:
                        raise InvalidConfig("a container that contains itself is not JSON")
                    stack.append(child)
            continue
        stack.pop()
        path.discard(key)
        # Every container child is in ``done`` now; a leaf's id never is (both are alive).
        if is_mapping:
            done[key] = MappingProxyType({k: copy_of(id(v), v) for k, v in node.items()})
        else:
            done[key] = tuple([copy_of(id(v), v) for v in node])
    frozen: Mapping[str, JsonValue] = done[id(root)]
    return frozen


def frozen_copy(raw: Mapping[str, Any]) -> Mapping[str, JsonValue]:
    """A deep-frozen JSON copy of a caller's mapping; raises if it is not JSON-serializable."""
    copy: dict[str, Any] = loads(dumps(dict(raw)))
    return freeze(copy)
