"""Error values: equality, hashing, text, and no secrets."""

from __future__ import annotations

import pytest
from conn_harness import reach, signaling

from rtms_proto import ConnState, RemoteProtocolError
from rtms_proto import events as ev
from rtms_proto import messages as m
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


# --- what the server said, shown whether or not a number came with it -------------------------


def test_a_reason_without_a_status_is_shown_with_the_class() -> None:
    e = RemoteProtocolError(
        FailureReason.AUTHENTICATION_FAILED,
        "signaling handshake rejected",
        status_reason="Invalid signature",
    )
    assert str(e) == (
        "authentication_failed: signaling handshake rejected (reason 'Invalid signature')"
    )
    assert "Invalid signature" in repr(e)
    assert str(e) in str(e.args)  # what logging's %s and tracebacks show


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[2J\x1b[31mpwned\x07",
        "line\r\nFAKE: second line",
        "tab\there\x00nul\x7fdel\x9bcsi",
        "bidi \u202egnirts\u202c zero\u200bwidth \u2028sep",
    ],
)
@pytest.mark.parametrize("status", [None, StatusCode.INVALID_SIGNATURE, 99])
def test_the_servers_reason_is_printable(hostile: str, status: StatusCode | int | None) -> None:
    """Server-chosen text reaches terminals and logs: nothing in it may move the
    cursor, ring, clear, break the line or reorder it."""
    e = RemoteProtocolError(
        FailureReason.HANDSHAKE_REJECTED, "rejected", status=status, status_reason=hostile
    )
    for text in (str(e), repr(e)):
        assert text.isprintable(), text
        assert "\\x1b" not in text and "\\r" not in text  # not even escaped: replaced
    assert "reason '" in str(e)
    # the printable parts are kept
    assert all(word in str(e) for word in hostile.split() if word.isprintable() and word.isalpha())


def test_a_long_reason_is_cut() -> None:
    e = RemoteProtocolError(
        FailureReason.HANDSHAKE_REJECTED, "rejected", status_reason="x" * 100_000
    )
    assert len(str(e)) < 300
    assert str(e).endswith("...')")


def test_an_empty_reason_adds_nothing() -> None:
    e = RemoteProtocolError(FailureReason.HANDSHAKE_REJECTED, "rejected", status_reason="")
    assert str(e) == "handshake_rejected: rejected"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Invalid signature", FailureReason.AUTHENTICATION_FAILED),
        ("Invalid meeting or stream ID", FailureReason.AUTHENTICATION_FAILED),
        ("Failed to initialize media server", FailureReason.HANDSHAKE_REJECTED),
    ],
)
def test_a_status_less_rejection_through_the_connection(reason: str, kind: FailureReason) -> None:
    """Zoom's mock answers ``{"msg_type":2,"reason":"Invalid signature"}``: the failure
    event's error names the class and the reason, and is fatal when the text says so."""
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(
        w.peer.send(m.SignalingHandshakeResponse(status_code=None, reason=reason)), now=1.0
    )
    failures = [o for o in w.drain() if isinstance(o, ev.ConnectionFailed)]
    assert len(failures) == 1
    error = failures[0].error
    assert (error.reason, error.status, error.status_reason) == (kind, None, reason)
    assert str(error) == f"{kind.value}: signaling handshake rejected (reason {reason!r})"
    assert error.retryable is kind.retryable
