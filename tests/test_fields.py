"""Fields read in more than one place mean the same thing in each: codec, webhooks, params."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto.enums import StopReason
from rtms_proto.messages import DecodeError, EventUpdate, StreamStateUpdate, decode_message
from rtms_proto.webhooks import RtmsStopped, WebhookRejected, parse_webhook

NAMES = [
    *StopReason.__members__,
    "APP_DISABLED_BY_HOST",
    "MEETING_CONNECTION_INTERRUPTED",
    "SOMETHING_NEW",
    "6",
    "",
]
stop_reason_values = (
    st.sampled_from(NAMES).flatmap(
        lambda name: st.sampled_from([name, f"STOP_BC_{name}", name.lower(), f"stop_bc_{name}"])
    )
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.text(max_size=8)
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.integers(), max_size=1)
)


def _from_webhook(value: object) -> object:
    raw = {
        "event": "meeting.rtms_stopped",
        "payload": {"meeting_uuid": "m", "rtms_stream_id": "s", "stop_reason": value},
    }
    try:
        event = parse_webhook(json.dumps(raw).encode())
    except WebhookRejected as exc:
        assert exc.field == "payload.stop_reason"
        return exc
    assert isinstance(event, RtmsStopped)
    return event.stop_reason


@given(stop_reason_values)
def test_webhooks_and_codec_read_stop_reasons_alike(value: Any) -> None:
    """One reader: the webhook takes what the codec reads as a reason, and refuses the rest.

    The webhook is the stricter of the two: a name the codec keeps as text (it
    must not drop a terminal state update) makes a webhook body malformed.
    """
    decoded = decode_message(json.dumps({"msg_type": 8, "state": 4, "reason": value}))
    webhook = _from_webhook(value)
    if isinstance(decoded, DecodeError) or type(getattr(decoded, "reason", None)) is str:
        assert isinstance(webhook, WebhookRejected)
    else:
        assert isinstance(decoded, StreamStateUpdate)
        assert webhook == decoded.reason and type(webhook) is type(decoded.reason)


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("stop_bc_app_disabled_by_host", StopReason.HOST_DISABLED_APP),
        ("MEETING_CONNECTION_INTERRUPTED", StopReason.INSTANCE_CONNECTION_INTERRUPTED),
        ("STOP_BC_UNDEFINED", StopReason.UNDEFINED),
    ],
)
def test_older_and_falsy_names_read_the_same_everywhere(name: str, member: StopReason) -> None:
    decoded = decode_message(json.dumps({"msg_type": 9, "state": 5, "stop_reason": name}))
    assert getattr(decoded, "stop_reason", None) is member
    assert _from_webhook(name) is member


def test_decoded_event_raw_is_frozen_deeply() -> None:
    shared = {"event_type": 99, "list": [[1, {"a": [2]}]], "obj": {"b": {"c": []}}}
    decoded = decode_message(json.dumps({"msg_type": 6, "event": shared}))
    assert isinstance(decoded, EventUpdate)
    assert decoded.raw == {"event_type": 99, "list": ((1, {"a": (2,)}),), "obj": {"b": {"c": ()}}}
    with pytest.raises(TypeError):
        decoded.raw["obj"]["b"] = 1  # type: ignore[index]
