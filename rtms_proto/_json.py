"""JSON in and out, and read-only copies of parsed JSON.

One place for the parser (orjson when installed, with the standard library
behind it for what orjson refuses, and alone where orjson is missing: PyPy, a
platform with no wheel), the compact encoder, and :func:`freeze`, which the codec and
the webhooks both use so that "kept raw" means the same everywhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

from ._errors import InvalidConfig

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_JSON_DEPTH",
    "MAX_JSON_ITEMS",
    "ORJSON_MAX_CHARS",
    "JsonLimitError",
    "JsonValue",
    "OrjsonError",
    "FAST_PARSER",
    "count_items",
    "dumps",
    "fast_parser",
    "freeze",
    "frozen_copy",
    "loads",
    "orjson_loads",
    "parse_network",
    "stdlib_loads",
]

JsonValue: TypeAlias = (
    bool | int | float | str | tuple["JsonValue", ...] | Mapping[str, "JsonValue"] | None
)
"""A JSON value as the codec hands it out: arrays are tuples, objects read-only mappings."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


INT64_MIN = -(2**63)
INT64_MAX = 2**64 - 1
"""The integers both parsers give as ``int`` (signed 64-bit, or unsigned when positive)."""

MAX_JSON_ITEMS = 16_384
"""The most JSON items one server message may hold: ``[``, ``{``, ``,`` and ``:`` outside strings.

Every value but the first follows one of them, so this bounds the objects,
arrays, members and elements a message can make Python build (at most about
200 bytes each, ~3 MiB in all), whatever the message size.  A join event
listing 3,000 participants stays well inside it.
"""

MAX_JSON_DEPTH = 32
"""How deeply a kept ``raw`` object may nest (RTMS messages nest at most 5 deep)."""

ORJSON_MAX_CHARS = 128 * 1024
"""Longer texts are parsed by the stdlib decoder: orjson reserves ~12 bytes per
input byte while parsing, the stdlib decoder ~1 (a 16 MiB message would cost
~200 MiB in orjson)."""


class JsonLimitError(ValueError):
    """Parsed JSON beyond :data:`MAX_JSON_ITEMS` or :data:`MAX_JSON_DEPTH`."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _parse_int(text: str) -> int | float:
    """An integer as orjson reads it, so that both parsers give the same value.

    Within the 64-bit range (signed, or unsigned when positive) it stays ``int``;
    beyond it, the nearest double; beyond a double's range, an error.  Integer
    fields then refuse anything outside the signed 64-bit range.
    """
    if len(text) <= 18:
        return int(text)
    if len(text) <= 21:
        value = int(text)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    return _finite_float(text)


# One decoder instance keeps json's C scanner and avoids a per-call constructor;
# it rejects NaN/Infinity (not JSON, and not re-encodable with allow_nan=False).
_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_parse_int
)
# The decoder's C scanner (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(_decoder)["scan_once"]


def loads(text: str) -> Any:
    """Parse JSON: orjson for speed when installed, the stdlib decoder for the rest.

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


class _NeverRaised(Exception):
    """Stands for orjson's error when orjson is missing: nothing raises it."""


def fast_parser() -> tuple[Callable[[str], Any], type[Exception], bool]:
    """orjson's parser and error when orjson imports, else :func:`stdlib_loads`.

    Returns ``(loads, error, is_orjson)``.  The stdlib parser gives the same
    values (:func:`_parse_int`), so callers never see which one they got;
    with it, ``error`` is never raised and a bad text fails with the stdlib's
    own message at once.
    """
    try:
        import orjson
    except ImportError:
        return stdlib_loads, _NeverRaised, False
    return orjson.loads, orjson.JSONDecodeError, True


orjson_loads, OrjsonError, FAST_PARSER = fast_parser()
"""The parser for short texts; ``FAST_PARSER`` says whether it is orjson."""


_STRING_END = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def count_items(text: str, limit: int = MAX_JSON_ITEMS) -> int:
    """The ``[``, ``{``, ``,`` and ``:`` outside strings, counted until one past ``limit``.

    Cheap on media packets (a few strings, skipped with ``str.find``), linear
    in the worst case.  Counting stops at an unterminated string: a parser
    stops there too, so nothing past it is ever built.
    """
    n = 0
    pos = 0
    find = text.find
    count = text.count
    while True:
        quote = find('"', pos)
        stop = len(text) if quote < 0 else quote
        n += count(",", pos, stop) + count(":", pos, stop)
        n += count("[", pos, stop) + count("{", pos, stop)
        if n > limit or quote < 0:
            return n
        end = find('"', quote + 1)
        if end > 0 and text[end - 1] == "\\":  # an escape inside: let the regex decide
            match = _STRING_END.match(text, quote + 1)
            end = -1 if match is None else match.end() - 1
        if end < 0:
            return n
        pos = end + 1


def parse_network(text: str) -> Any:
    """Parse a peer's JSON within the bounds above; raises ``ValueError`` otherwise.

    A text with more than :data:`MAX_JSON_ITEMS` items is refused before any
    of it is built (:class:`JsonLimitError`); a text longer than
    :data:`ORJSON_MAX_CHARS` goes to the stdlib decoder.  Both parsers give
    the same values (:func:`_parse_int`), so which one ran never shows.
    """
    if len(text) > MAX_JSON_ITEMS and count_items(text) > MAX_JSON_ITEMS:
        raise JsonLimitError(f"more than {MAX_JSON_ITEMS} JSON items (brackets, commas, colons)")
    if len(text) <= ORJSON_MAX_CHARS:
        try:
            return orjson_loads(text)
        except OrjsonError:
            pass
    return stdlib_loads(text)


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


def freeze(root: Mapping[str, Any], max_depth: int | None = None) -> Mapping[str, JsonValue]:
    """Deep read-only copy: mappings become mappingproxies, lists and tuples tuples.

    Iterative (children before parents), so a deeply nested but parseable
    document cannot exhaust the stack; a container shared by two parents is
    copied once, and one that contains itself raises :class:`InvalidConfig` (a
    caller's mistake: parsed JSON never does).  With ``max_depth``, a container
    nested deeper (``root`` is depth 1) raises :class:`JsonLimitError`, so
    what is kept can be walked recursively by anyone.
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
            if max_depth is not None and len(path) >= max_depth:
                raise JsonLimitError(f"nested deeper than {max_depth} levels")
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
