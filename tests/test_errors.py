"""Error values: equality, hashing, text, and no secrets."""

from __future__ import annotations

from rtms_proto import RemoteProtocolError
from rtms_proto.enums import FailureReason, StatusCode


def test_remote_protocol_error_is_a_value() -> None:
    a = RemoteProtocolError(
        FailureReason.HANDSHAKE_REJECTED,
        "signaling handshake rejected",
        status=StatusCode.INTERNAL_EXCEPTION,
        status_reason="boom",
    )
    b = RemoteProtocolError(
        FailureReason.HANDSHAKE_REJECTED,
        "signaling handshake rejected",
        status=StatusCode.INTERNAL_EXCEPTION,
        status_reason="boom",
    )
    c = RemoteProtocolError(FailureReason.CONNECTION_LOST, "reset")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != "not an error"
    assert len({a, b, c}) == 2
    assert str(a) == (
        "handshake_rejected: signaling handshake rejected"
        " (status 45 INTERNAL_EXCEPTION, reason 'boom')"
    )
    assert repr(c) == "RemoteProtocolError('connection_lost: reset')"
    assert a.retryable and c.retryable


def test_unknown_status_numbers_are_shown_as_numbers() -> None:
    e = RemoteProtocolError(FailureReason.HANDSHAKE_REJECTED, "rejected", status=99)
    assert str(e) == "handshake_rejected: rejected (status 99 ?)"
    assert not RemoteProtocolError(FailureReason.AUTHENTICATION_FAILED, "x").retryable
