"""Bounds on what one server message can cost (issue 10, items 5 and 9).

Numbers: both JSON parsers (orjson for short texts, the stdlib decoder for
long ones and for what orjson refuses) read every number the same way, and
an integer field takes a 64-bit integer only; anything else is one
MalformedMessage and the stream goes on.

Memory: a message of n bytes with i JSON items (``_json.MAX_JSON_ITEMS`` at
most) costs at most ``10·n + 256·i + 2 MiB`` to decode (so at most
``10·n + 6 MiB``); a message beyond the item limit is refused before anything
is built.  The events log writes a bounded line for any event.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conn_harness import media, reach
from hostile import frame, many_containers
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rtms_app.sinks import EventsLog
from rtms_app.sinks.events_log import (
    MAX_CHARS_PER_EVENT,
    MAX_DEPTH,
    MAX_ITEMS_PER_EVENT,
    MAX_LINE_BYTES,
    event_to_json,
)
from rtms_proto import ConnectionOptions
from rtms_proto import events as ev
from rtms_proto._connection import ConnState
from rtms_proto._fields import WireFieldError, opt_user_id, read_stop_reason, req_int
from rtms_proto._json import (
    MAX_JSON_ITEMS,
    ORJSON_MAX_CHARS,
    count_items,
    orjson_loads,
    stdlib_loads,
)
from rtms_proto.messages import DecodeError, decode_message

MiB = 1024 * 1024
TEXT = 0x1
PER_ITEM = 256
SLACK = 2 * MiB
MAX_SIZE = 16 * MiB


def _through_connection(payloads: list[bytes]) -> tuple[list[object], int]:
    """Feed server messages to an open media connection; its outputs and the peak allocation."""
    conn = media(options=ConnectionOptions(max_message_size=MAX_SIZE))
    reach(conn, ConnState.OPEN)
    frames = [frame(TEXT, p) for p in payloads]
    tracemalloc.start()
    try:
        out: list[object] = []
        for i, data in enumerate(frames):
            conn.receive_data(data, now=1.0 + i)
            out.extend(conn.drain())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, peak


def _bound(payload: bytes) -> int:
    n = len(payload)
    return 10 * n + PER_ITEM * min(count_items(payload.decode()), MAX_JSON_ITEMS) + SLACK


# --- numbers: one rule for both parsers ---------------------------------------------------------


def _number_tokens() -> st.SearchStrategy[str]:
    ints = st.integers(min_value=-(10**400), max_value=10**400).map(str)
    digits = st.integers(min_value=1, max_value=420).map(lambda k: "9" * k)
    floats = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    huge = st.sampled_from(["1e400", "-1e400", "1E309", "2e308", "1e-400", "1.5e300", "-0"])
    edges = st.sampled_from(
        [str(v) for v in (2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1)]
    )
    return ints | digits | floats | huge | edges


def _is_64_bit_int(token: str) -> bool:
    try:
        value = int(token)
    except ValueError:
        return False
    return -(2**63) <= value <= 2**64 - 1


@given(token=_number_tokens())
def test_both_parsers_read_every_number_alike(token: str) -> None:
    """Same value and type, or both refuse (orjson's reading is the reference)."""
    for text in (token, f'{{"a":[{token}]}}'):
        try:
            fast: object = orjson_loads(text)
        except ValueError:
            fast = ValueError
        try:
            slow: object = stdlib_loads(text)
        except ValueError:
            slow = ValueError
        assert repr(fast) == repr(slow)


# Every integer field a server message has, as (message with "@" where the number goes, field).
NUMERIC_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"msg_type": "@"}, "msg_type"),
    ({"msg_type": 12, "timestamp": "@"}, "timestamp"),
    ({"msg_type": 12, "sequence": "@"}, "sequence"),
    ({"msg_type": 14, "content": {"data": "AAA=", "user_id": "@"}}, "content.user_id"),
    ({"msg_type": 15, "content": {"data": "AAA=", "timestamp": "@"}}, "content.timestamp"),
    ({"msg_type": 16, "content": {"data": "AAA=", "length": "@"}}, "content.length"),
    ({"msg_type": 17, "content": {"data": "t", "start_time": "@"}}, "content.start_time"),
    ({"msg_type": 17, "content": {"data": "t", "end_time": "@"}}, "content.end_time"),
    ({"msg_type": 17, "content": {"data": "t", "language": "@"}}, "content.language"),
    ({"msg_type": 18, "content": {"data": "t", "timestamp": "@"}}, "content.timestamp"),
    ({"msg_type": 6, "event": {"event_type": 2, "timestamp": "@"}}, "event.timestamp"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_id": "@"}}, "event.user_id"),
    (
        {"msg_type": 6, "event": {"event_type": 3, "participants": [{"user_id": "@"}]}},
        "event.participants[0].user_id",
    ),
    ({"msg_type": 8, "state": "@"}, "state"),
    ({"msg_type": 8, "state": 4, "reason": "@"}, "reason"),
    ({"msg_type": 9, "state": 1, "stop_reason": "@"}, "stop_reason"),
    ({"msg_type": 2, "status_code": "@"}, "status_code"),
    ({"msg_type": 4, "status_code": "@"}, "status_code"),
    ({"msg_type": 29, "user_id": "@", "status_code": 0}, "user_id"),
    ({"msg_type": 22, "status_code": "@"}, "status_code"),
]


def _same(result: object) -> object:
    """``result`` without the key each path added (kept in a raw message's ``raw``)."""
    raw = getattr(result, "raw", None)
    if raw is None:
        return result
    return type(result), {k: v for k, v in raw.items() if k not in ("s", "p")}


def _with(template: dict[str, Any], token: str, extra: str) -> str:
    text = json.dumps(template, separators=(",", ":")).replace('"@"', token)
    return text[:-1] + extra + "}"


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(token=_number_tokens(), case=st.sampled_from(NUMERIC_FIELDS))
def test_every_numeric_field_follows_one_rule_on_every_path(
    token: str, case: tuple[dict[str, Any], str]
) -> None:
    """orjson, the stdlib fallback (a lone surrogate elsewhere) and the long-text path
    (padding beyond ORJSON_MAX_CHARS) give the same result; a number that is not a
    64-bit integer is a DecodeError, never a value."""
    template, field = case
    short = decode_message(_with(template, token, ""))
    fallback = decode_message(_with(template, token, ',"s":"\\ud800"'))
    long = decode_message(_with(template, token, ',"p":"' + "x" * ORJSON_MAX_CHARS + '"'))
    assert _same(short) == _same(fallback) == _same(long)
    if not _is_64_bit_int(token):
        assert isinstance(short, DecodeError)
        assert short.field in (field, None)  # None: beyond a double's range, invalid JSON


@pytest.mark.parametrize("digits", [20, 25, 308, 309, 400, 5000])
def test_a_huge_integer_is_one_malformed_message_and_the_stream_goes_on(digits: int) -> None:
    huge = "9" * digits
    good = b'{"msg_type":14,"content":{"data":"AQI=","user_id":5,"timestamp":40}}'
    bad = [
        f'{{"msg_type":14,"content":{{"data":"AQI=","user_id":{huge}}}}}'.encode(),
        f'{{"msg_type":14,"content":{{"data":"AQI=","timestamp":{huge}}}}}'.encode(),
        f'{{"msg_type":14,"content":{{"data":"AQI=","user_id":"{huge}"}}}}'.encode(),
        f'{{"msg_type":6,"event":{{"event_type":2,"user_id":{huge}}}}}'.encode(),
    ]
    out, _ = _through_connection([*bad, good])
    assert [type(o) for o in out] == [ev.MalformedMessage] * len(bad) + [ev.AudioReceived]
    last = out[-1]
    assert isinstance(last, ev.AudioReceived) and last.user_id == 5 and last.data == b"\x01\x02"


def test_readers_refuse_integers_beyond_64_bits_given_directly() -> None:
    """The readers hold the rule for any mapping (webhooks parse with ``json``)."""
    with pytest.raises(WireFieldError, match="integer beyond 64 bits"):
        req_int({"t": 2**64}, "t", "")
    with pytest.raises(WireFieldError, match="integer beyond 64 bits"):
        read_stop_reason({"r": -(2**63) - 1}, "r", "")
    with pytest.raises(WireFieldError, match="integer beyond 64 bits"):
        opt_user_id({"u": str(2**64)}, "u", "")
    assert req_int({"t": 2**64 - 1}, "t", "") == 2**64 - 1
    assert opt_user_id({"u": str(2**64 - 1)}, "u", "") == 2**64 - 1


# --- memory: items counted before parsing ------------------------------------------------------


def _nested_objects(count: int) -> bytes:
    return b'{"msg_type":6,"event":{"event_type":99,"x":[' + b'{"a":{}},' * count + b"{}]}}"


@pytest.mark.parametrize(
    "payload",
    [many_containers(MiB // 3), _nested_objects(MiB // 9)],
    ids=["1 MiB of [] in an unknown event", "1 MiB of {a:{}}"],
)
def test_a_message_of_a_million_tiny_containers_is_refused_before_it_is_built(
    payload: bytes,
) -> None:
    """Before: 64-86x the message size and seconds; now one MalformedMessage within 3x."""
    out, peak = _through_connection([payload])
    assert len(out) == 1 and isinstance(out[0], ev.MalformedMessage)
    assert f"more than {MAX_JSON_ITEMS} JSON items" in str(out[0].error)
    assert peak < 3 * len(payload)


def test_the_item_limit_is_exact_and_ignores_strings() -> None:
    """MAX_JSON_ITEMS items are kept, one more is refused; brackets and commas inside
    strings (escaped quotes included) are not items."""
    head = '{"msg_type":99,"x":['  # 5 items: { : , : [
    at_limit = head + ",".join(["0"] * (MAX_JSON_ITEMS - 4)) + "]}"
    assert count_items(at_limit) == MAX_JSON_ITEMS
    kept = decode_message(at_limit)
    assert not isinstance(kept, DecodeError)
    over = head + ",".join(["0"] * (MAX_JSON_ITEMS - 3)) + "]}"
    refused = decode_message(over)
    assert isinstance(refused, DecodeError) and refused.detail.startswith("too large")
    noisy = '{"msg_type":99,"s":"' + '[,{:\\"' * 20_000 + '\\\\","x":[1,2]}'
    assert count_items(noisy) == 8  # { : , : , : [ ,
    assert not isinstance(decode_message(noisy), DecodeError)
    assert count_items('{"a":"unterminated [[[[') == 2


# JSON of any shape, kept small for speed.
_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=30,
)


def _forms(value: object) -> list[bytes]:
    """``value`` where a server could put it: unknown message, event, extra key, chat JSON."""
    chat = json.dumps({"message_id": "m", "data": "hi", "x": value})
    forms: list[object] = [
        {"msg_type": 99, "x": value},
        {"msg_type": 23, "x": value},
        {"msg_type": 6, "event": {"event_type": 77, "x": value}},
        {"msg_type": 14, "content": {"data": "AAA=", "x": value}},
        {"msg_type": 18, "content": {"data": chat}},
    ]
    return [json.dumps(f).encode() for f in forms]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),  # no slow "explain"
)
@given(value=_json, repeat=st.integers(min_value=1, max_value=20))
def test_any_server_json_stays_within_the_memory_bound(value: object, repeat: int) -> None:
    """Arbitrary JSON, repeated up to 20 times, in every place a server can put it:
    decoding stays within 10·n + 256·items + 2 MiB, and its events-log line is bounded."""
    for payload in _forms([value] * repeat):
        out, peak = _through_connection([payload])
        assert len(out) == 1
        assert peak <= _bound(payload)
        line = json.dumps(event_to_json(out[0]), ensure_ascii=False).encode()  # type: ignore[arg-type]
        assert len(line) <= MAX_LINE_BYTES


def test_a_message_at_the_item_limit_stays_within_the_bound(tmp_path: Path) -> None:
    """The worst shapes at MAX_JSON_ITEMS, and what writing them to events.jsonl costs."""
    k = MAX_JSON_ITEMS // 2 - 4
    shapes: list[Callable[[], bytes]] = [
        lambda: b'{"msg_type":99,"x":[' + b"{}," * k + b"{}]}",
        lambda: (
            b'{"msg_type":6,"event":{"event_type":77,"x":[' + b'{"a":{}},' * (k // 2 - 2) + b"1]}}"
        ),
        lambda: b'{"msg_type":99,"x":[' + b'"ab",' * (2 * k) + b"1]}",
        lambda: b'{"msg_type":99,"x":"' + b"\xf0\x9f\x98\x80" * MiB + b'"}',
    ]
    log = EventsLog(tmp_path)
    for make in shapes:
        payload = make()
        out, peak = _through_connection([payload])
        assert len(out) == 1 and not isinstance(out[0], ev.MalformedMessage)
        assert peak <= _bound(payload) <= 10 * len(payload) + 6 * MiB
        tracemalloc.start()
        log.add(out[0])  # type: ignore[arg-type]
        log_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert log_peak <= 8 * MAX_LINE_BYTES + SLACK
    log.close()
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == len(shapes)
    assert all(len(line) <= MAX_LINE_BYTES for line in lines)
    assert [json.loads(line).get("truncated") for line in lines] == [True] * len(shapes)


# --- the events log's own limits ----------------------------------------------------------------


def test_events_log_cuts_deep_wide_and_long_values_with_markers() -> None:
    deep: object = "bottom"
    for _ in range(MAX_DEPTH + 3):
        deep = [deep]
    raw: dict[str, Any] = {"deep": deep, "long": "\x01" * MiB}
    line = event_to_json(ev.UnknownEventReceived(event_type=77, timestamp=1, raw=raw))
    assert line["truncated"] is True
    text = json.dumps(line, ensure_ascii=False)
    assert len(text.encode()) <= MAX_LINE_BYTES
    got = line["raw"]
    assert isinstance(got, dict)
    node = got["deep"]
    for _ in range(MAX_DEPTH - 1):  # raw is at depth 0, "deep" at 1: containers to 7 kept
        assert isinstance(node, list)
        node = node[0]
    assert node == {"truncated": 1}
    wide_raw: dict[str, Any] = {"wide": list(range(5 * MAX_ITEMS_PER_EVENT))}
    wide_line = event_to_json(ev.UnknownEventReceived(event_type=77, timestamp=1, raw=wide_raw))
    assert wide_line["truncated"] is True
    wide = wide_line["raw"]["wide"]  # type: ignore[index]
    assert isinstance(wide, list) and wide[-1] == {
        "truncated": 5 * MAX_ITEMS_PER_EVENT - len(wide) + 1
    }
    long = got["long"]
    assert isinstance(long, str) and long.endswith(f"…[truncated, {MiB} chars]")
    assert len(long) < MAX_CHARS_PER_EVENT + 40
    keys = {f"k{i}": i for i in range(5 * MAX_ITEMS_PER_EVENT)}
    cut = event_to_json(ev.UnknownEventReceived(event_type=77, timestamp=1, raw=keys))["raw"]
    assert isinstance(cut, dict) and cut["truncated"] > 0
    assert "truncated" not in event_to_json(ev.FirstPacketReceived(timestamp=5))
