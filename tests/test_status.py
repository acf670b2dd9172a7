"""Naming and classifying handshake ``status_code`` values, in both status tables.

The expected classification of every number is written out here by hand
(from docs/protocol.md §4.3), so the tables in status.py are pinned, not copied.
"""

from __future__ import annotations

import pytest

from rtms_proto._status import _TEXT_RULES, StatusTable, classify_status, name_status
from rtms_proto.enums import FailureReason, LegacyStatusCode, StatusCode

R = FailureReason


def _spread(spec: dict[tuple[int, int], FailureReason]) -> dict[int, FailureReason]:
    """``{(first, last): reason}`` (inclusive ranges) to ``{code: reason}``."""
    table: dict[int, FailureReason] = {}
    for (first, last), reason in spec.items():
        for code in range(first, last + 1):
            assert code not in table
            table[code] = reason
    return table


CURRENT = _spread(
    {
        (1, 1): R.INVALID_REQUEST,  # INVALID_MESSAGE_TYPE
        (2, 3): R.AUTHENTICATION_FAILED,  # INVALID_RTMS_STREAM_ID, INVALID_SIGNATURE
        (4, 7): R.INVALID_REQUEST,  # payload, events, event type, media type
        (8, 8): R.DUPLICATE_SIGNAL,
        (9, 13): R.MEDIA_NOT_AVAILABLE,  # MEDIA_TYPE_*_NOT_SUPPORT
        (14, 14): R.INVALID_REQUEST,  # MEDIA_TYPE_INVALID_VALUE
        (15, 16): R.DUPLICATE_MEDIA_CONNECTION,
        (17, 43): R.INVALID_REQUEST,  # INVALID_MEDIA_*, session id, ready ack, subscribe
        (44, 45): R.HANDSHAKE_REJECTED,  # duplicate video subscription, internal exception
        (46, 46): R.INVALID_REQUEST,  # INVALID_MEDIA_TRANSCRIPT_TARGET_LANGUAGE
        (47, 47): R.HANDSHAKE_REJECTED,  # CHAT_SESSION_KEY_NOT_AVAILABLE
        (48, 60): R.HANDSHAKE_REJECTED,  # unknown numbers
    }
)

LEGACY = _spread(
    {
        (1, 1): R.HANDSHAKE_REJECTED,  # CONNECTION_TIMEOUT
        (2, 12): R.INVALID_REQUEST,  # JSON, msg_type, meeting uuid, stream id faults
        (13, 13): R.HANDSHAKE_REJECTED,  # SESSION_NOT_FOUND
        (14, 16): R.AUTHENTICATION_FAILED,  # signature missing/invalid, bad ids
        (17, 17): R.DUPLICATE_SIGNAL,
        (18, 23): R.INVALID_REQUEST,  # events and media type faults
        (24, 28): R.MEDIA_NOT_AVAILABLE,
        (29, 29): R.INVALID_REQUEST,  # MEDIA_TYPE_INVALID_VALUE
        (30, 31): R.DUPLICATE_MEDIA_CONNECTION,
        (32, 71): R.INVALID_REQUEST,  # media params faults
        (72, 75): R.HANDSHAKE_REJECTED,  # data buffers, first packet, session not found
        (76, 90): R.HANDSHAKE_REJECTED,  # unknown numbers
    }
)


@pytest.mark.parametrize("table", list(StatusTable))
def test_zero_is_the_only_success(table: StatusTable) -> None:
    assert classify_status(0, "", table) is None
    # Whatever the text says.
    assert classify_status(0, "duplicate signal request; invalid signature", table) is None


@pytest.mark.parametrize(("code", "reason"), sorted(CURRENT.items()))
def test_current_table(code: int, reason: FailureReason) -> None:
    assert classify_status(code) is reason
    assert classify_status(code, "", StatusTable.CURRENT) is reason
    assert classify_status(code, "some other text", StatusTable.CURRENT) is reason


@pytest.mark.parametrize(("code", "reason"), sorted(LEGACY.items()))
def test_legacy_table(code: int, reason: FailureReason) -> None:
    assert classify_status(code, "", StatusTable.LEGACY) is reason


@pytest.mark.parametrize("table", list(StatusTable))
@pytest.mark.parametrize("code", [-1, -1000, 2**31, 10**30])
def test_numbers_outside_every_table_are_plain_rejections(table: StatusTable, code: int) -> None:
    assert classify_status(code, "", table) is R.HANDSHAKE_REJECTED


def test_every_known_number_is_classified_in_its_table() -> None:
    assert {int(c) for c in StatusCode} - {0} <= set(CURRENT)
    assert {int(c) for c in LegacyStatusCode} - {0} <= set(LEGACY)


@pytest.mark.parametrize("table", list(StatusTable))
@pytest.mark.parametrize("code", [None, 1, 4, 17, 45, 99])
@pytest.mark.parametrize(
    "text",
    [
        "duplicate signal request",
        "Duplicate Signal Request",
        "error: DUPLICATE SIGNAL (retry later)",
    ],
)
def test_duplicate_text_means_duplicate_whatever_the_number(
    table: StatusTable, code: int | None, text: str
) -> None:
    assert classify_status(code, text, table) is R.DUPLICATE_SIGNAL


@pytest.mark.parametrize("table", list(StatusTable))
@pytest.mark.parametrize("code", [None, 1, 4, 17, 45, 99])
@pytest.mark.parametrize("text", ["invalid signature", "Signature mismatch", "BAD SIGNATURE"])
def test_signature_text_means_authentication_failed(
    table: StatusTable, code: int | None, text: str
) -> None:
    assert classify_status(code, text, table) is R.AUTHENTICATION_FAILED


def test_duplicate_text_wins_over_signature_text() -> None:
    assert classify_status(3, "duplicate signal request (signature ok)") is R.DUPLICATE_SIGNAL


@pytest.mark.parametrize("table", list(StatusTable))
def test_a_missing_status_is_a_rejection(table: StatusTable) -> None:
    assert classify_status(None, "", table) is R.HANDSHAKE_REJECTED
    assert classify_status(None, "unauthorized", table) is R.HANDSHAKE_REJECTED
    assert classify_status(None) is R.HANDSHAKE_REJECTED


# --- the text rules agree with the numbered rules --------------------------------------------


def _pinned(member: StatusCode | LegacyStatusCode) -> FailureReason:
    """The hand-written classification of a status by its number, in its own table."""
    return (LEGACY if isinstance(member, LegacyStatusCode) else CURRENT)[int(member)]


def _spoken(name: str) -> list[str]:
    """How a server may word a status name in its ``reason``."""
    words = name.lower().split("_")
    return [
        name,
        f"STATUS_{name}",
        " ".join(words).capitalize(),  # "Invalid meeting or stream id"
        f"error: {' '.join(words).upper()}.",
    ]


@pytest.mark.parametrize("table", list(StatusTable))
@pytest.mark.parametrize("code", [None, 45, 99])
@pytest.mark.parametrize(
    "member",
    [*(c for c in StatusCode if c), *(c for c in LegacyStatusCode if c)],
    ids=lambda c: f"{type(c).__name__}.{c.name}",
)
def test_a_reason_naming_a_status_is_classified_as_its_number(
    member: StatusCode | LegacyStatusCode, code: int | None, table: StatusTable
) -> None:
    """With no number, or a number that names something else in the configured table:
    the text names the status, so the status's own numbered rule applies."""
    for text in _spoken(member.name):
        assert classify_status(code, text, table) is _pinned(member), text


@pytest.mark.parametrize(("phrase", "twins"), _TEXT_RULES, ids=[p for p, _ in _TEXT_RULES])
def test_every_text_rule_agrees_with_its_numbered_twins(
    phrase: str, twins: tuple[StatusCode | LegacyStatusCode, ...]
) -> None:
    assert twins
    expected = {_pinned(twin) for twin in twins}
    assert len(expected) == 1, f"{phrase!r}: the twins disagree: {twins}"
    for twin in twins:
        table = StatusTable.LEGACY if isinstance(twin, LegacyStatusCode) else StatusTable.CURRENT
        assert classify_status(int(twin), "", table) in expected
    for table in StatusTable:
        assert classify_status(None, phrase, table) in expected
        assert classify_status(None, phrase.strip().title() + "!", table) in expected


@pytest.mark.parametrize("table", list(StatusTable))
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Zoom's mock server words its refusals so, with no status_code.
        ("Invalid meeting or stream ID", R.AUTHENTICATION_FAILED),
        ("Invalid signature", R.AUTHENTICATION_FAILED),
        ("Unsupported protocol version", R.HANDSHAKE_REJECTED),
        ("Failed to initialize media server", R.HANDSHAKE_REJECTED),
    ],
)
def test_the_mock_servers_status_less_refusals(
    table: StatusTable, text: str, reason: FailureReason
) -> None:
    assert classify_status(None, text, table) is reason


def test_invalid_ids_are_fatal_with_or_without_a_number() -> None:
    """The mock's status-less "Invalid meeting or stream ID" was retried for ~26 s
    while the same refusal with a number was fatal."""
    text = "Invalid meeting or stream ID"
    auth = R.AUTHENTICATION_FAILED
    assert not auth.retryable
    for table in StatusTable:
        assert classify_status(None, text, table) is auth
    legacy = LegacyStatusCode.INVALID_MEETING_OR_STREAM_ID
    assert classify_status(legacy, "", StatusTable.LEGACY) is auth
    assert classify_status(legacy, text, StatusTable.LEGACY) is auth
    # 16 names a duplicate media connection in the current table: the text tells.
    assert classify_status(legacy, "", StatusTable.CURRENT) is R.DUPLICATE_MEDIA_CONNECTION
    assert classify_status(legacy, text, StatusTable.CURRENT) is auth
    assert classify_status(StatusCode.INVALID_RTMS_STREAM_ID, "", StatusTable.CURRENT) is auth


def test_names_must_be_whole_words() -> None:
    """A name inside a longer word is not the name (except the two prefix rules)."""
    assert classify_status(None, "invalid payloads") is R.HANDSHAKE_REJECTED
    assert classify_status(None, "xinvalid meeting or stream id") is R.HANDSHAKE_REJECTED
    assert classify_status(None, "signatures differ") is R.AUTHENTICATION_FAILED
    assert classify_status(None, "duplicate signaling socket") is R.DUPLICATE_SIGNAL
    assert classify_status(None, "resignature") is R.HANDSHAKE_REJECTED


def test_only_the_head_of_a_long_reason_is_read() -> None:
    assert classify_status(None, "x" * 1000 + " invalid signature") is R.AUTHENTICATION_FAILED
    assert classify_status(None, "x " * 600 + "invalid signature") is R.HANDSHAKE_REJECTED
    assert classify_status(8, "x " * 600 + "invalid signature") is R.DUPLICATE_SIGNAL


def test_retryable_defaults_of_the_classifications() -> None:
    assert not R.AUTHENTICATION_FAILED.retryable
    assert not R.INVALID_REQUEST.retryable
    assert not R.MEDIA_NOT_AVAILABLE.retryable
    assert R.DUPLICATE_SIGNAL.retryable
    assert R.DUPLICATE_MEDIA_CONNECTION.retryable
    assert R.HANDSHAKE_REJECTED.retryable


# --- naming -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", range(48))
def test_name_status_current(code: int) -> None:
    named = name_status(code)
    assert type(named) is StatusCode
    assert named == code
    assert name_status(code, StatusTable.CURRENT) is named


@pytest.mark.parametrize("code", range(76))
def test_name_status_legacy(code: int) -> None:
    named = name_status(code, StatusTable.LEGACY)
    assert type(named) is LegacyStatusCode
    assert named == code


@pytest.mark.parametrize(
    ("code", "table", "named"),
    [
        (3, StatusTable.CURRENT, StatusCode.INVALID_SIGNATURE),
        (3, StatusTable.LEGACY, LegacyStatusCode.INVALID_JSON_MSG),
        (8, StatusTable.CURRENT, StatusCode.DUPLICATE_SIGNAL_REQUEST),
        (17, StatusTable.LEGACY, LegacyStatusCode.DUPLICATE_SIGNAL_REQUEST),
        (17, StatusTable.CURRENT, StatusCode.INVALID_MEDIA_PARAMS),
    ],
)
def test_the_same_number_names_differently_per_table(
    code: int, table: StatusTable, named: StatusCode | LegacyStatusCode
) -> None:
    assert name_status(code, table) is named


@pytest.mark.parametrize(("code", "table"), [(48, StatusTable.CURRENT), (76, StatusTable.LEGACY)])
def test_unknown_numbers_stay_numbers(code: int, table: StatusTable) -> None:
    named = name_status(code, table)
    assert type(named) is int
    assert named == code
    assert name_status(-1, table) == -1
