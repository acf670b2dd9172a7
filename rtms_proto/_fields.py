"""Reading and writing single fields of parsed JSON, with the error that names the field.

Shared by the message codec, the media parameters and the webhooks, so that a
field means the same thing wherever it is read: a stop reason given by name,
a participant id given as a numeric string, a key with an older spelling.

One rule for numbers: an integer field (every field read as an integer here:
``msg_type``, timestamps, ids, sequences, status codes...) accepts a 64-bit
integer, from -2**63 to 2**64-1 (timestamps are ``unsigned long long`` in
Zoom's SDK), and nothing else.  Both JSON parsers read a larger integer as a
double (see ``_json._parse_int``), which is the wrong type for the field, so
the message is a ``DecodeError`` naming it; a number beyond a double's range
(such as a 309-digit integer) makes the whole message invalid JSON.
Readers take the object, the key and the dotted ``path`` of the object
(``"content."``) and raise :class:`WireFieldError` naming ``path + key``;
details say what type was found, never the value (it could be a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .enums import StopReason, to_enum

_MIN = -(2**63)
_MAX = 2**64 - 1

__all__ = [
    "WireFieldError",
    "alias",
    "json_type",
    "obj_items",
    "opt_bool",
    "opt_int",
    "opt_list",
    "opt_obj",
    "opt_str",
    "opt_user_id",
    "put",
    "reason_text",
    "req_bool",
    "req_int",
    "req_obj",
    "req_str",
    "req_user_id",
    "read_stop_reason",
    "wire_value",
    "wrong",
]


class WireFieldError(ValueError):
    """A wire value has the wrong type; ``field`` is its dotted path.

    Raised by the readers here and by ``MediaParams.from_wire``; the message
    codec turns it into a ``DecodeError`` value, so it never escapes
    ``decode_message``.
    """

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error details (never the value itself)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def wrong(obj: Mapping[str, Any], key: str, path: str, expected: str) -> WireFieldError:
    """The error for ``obj[key]``: missing, null, of the wrong type, or out of range."""
    value = obj.get(key)
    if value is None:
        return WireFieldError(path + key, "missing" if key not in obj else "is null")
    if type(value) is int and not _MIN <= value <= _MAX:
        return WireFieldError(path + key, "integer beyond 64 bits")
    return WireFieldError(path + key, f"expected {expected}, got {json_type(value)}")


def req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if type(value) is str:
        return value
    raise wrong(obj, key, path, "a string")


def opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise wrong(obj, key, path, "a string")


def req_int(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = obj.get(key)
    if type(value) is int and _MIN <= value <= _MAX:
        return value
    raise wrong(obj, key, path, "an integer")


def opt_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None or (type(value) is int and _MIN <= value <= _MAX):
        return value
    raise wrong(obj, key, path, "an integer")


def req_bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key)
    if type(value) is bool:
        return value
    raise wrong(obj, key, path, "a boolean")


def opt_bool(obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = obj.get(key)
    if value is None or type(value) is bool:
        return value
    raise wrong(obj, key, path, "a boolean")


def req_obj(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = obj.get(key)
    if type(value) is dict:
        return value
    raise wrong(obj, key, path, "an object")


def opt_obj(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise wrong(obj, key, path, "an object")


def opt_list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """An array; absent or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return []
    if type(value) is list:
        return value
    raise wrong(obj, key, path, "an array")


def obj_items(values: list[Any], field: str) -> list[dict[str, Any]]:
    """``values`` itself, once every item is checked to be an object."""
    for i, item in enumerate(values):
        if type(item) is not dict:
            raise WireFieldError(f"{field}[{i}]", f"expected an object, got {json_type(item)}")
    return values


def reason_text(obj: Mapping[str, Any]) -> str:
    """The ``reason`` text of an answer; absent or null reads as empty."""
    value = obj.get("reason")
    if value is None:
        return ""
    if type(value) is str:
        return value
    raise wrong(obj, "reason", "", "a string")


def opt_user_id(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    """A participant id: an integer, or a numeric string as in DOC's join example (§12.18)."""
    value = obj.get(key)
    if value is None:
        return value
    return req_user_id(obj, key, path)


def req_user_id(obj: Mapping[str, Any], key: str, path: str) -> int:
    """A participant id: an integer, or a numeric string, of at most 64 bits."""
    value = obj.get(key)
    if type(value) is int and _MIN <= value <= _MAX:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        if len(value) <= 20 and int(value) <= _MAX:
            return int(value)
        raise WireFieldError(path + key, "integer beyond 64 bits")
    raise wrong(obj, key, path, "an integer or a numeric string")


def alias(obj: Mapping[str, Any], key: str, legacy: str) -> str:
    """The key to read: ``key`` when it has a value, else its alternative spelling."""
    return key if obj.get(key) is not None else legacy


_STOP_REASON_ALIASES = {
    "APP_DISABLED_BY_HOST": StopReason.HOST_DISABLED_APP,
    "MEETING_CONNECTION_INTERRUPTED": StopReason.INSTANCE_CONNECTION_INTERRUPTED,
}
"""Older names of renamed stop reasons (§4.12), as Zoom's mock server still sends them."""


def read_stop_reason(obj: Mapping[str, Any], key: str, path: str) -> StopReason | int | str | None:
    """A stop reason (§4.12): a number, or a name in any case with or without ``STOP_BC_``.

    Unknown numbers stay ``int`` and unknown names stay the text as sent: the
    caller decides whether that is acceptable (the codec keeps it, a webhook
    refuses it).  Older names of renamed reasons read as today's member.
    """
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not _MIN <= value <= _MAX:
            raise WireFieldError(path + key, "integer beyond 64 bits")
        return to_enum(StopReason, value)
    if isinstance(value, str):
        name = value.upper().removeprefix("STOP_BC_")
        member = StopReason.__members__.get(name)
        if member is None:
            member = _STOP_REASON_ALIASES.get(name)
        return value if member is None else member
    raise wrong(obj, key, path, "an integer or a string")


def put(wire: dict[str, object], key: str, value: object) -> None:
    """Set ``key`` unless ``value`` is None: optional fields are omitted, never ``null``."""
    if value is not None:
        wire[key] = value


def wire_value(value: int | str) -> int | str:
    """Numbers on the wire (enum members included); only a name nobody knows stays text."""
    return value if type(value) is str else int(value)
