"""Naming and classifying handshake ``status_code`` values, in both status tables.

The expected classification of every number is written out here by hand
(from protocol.md §4.3), so the tables in status.py are pinned, not copied.
"""

from __future__ import annotations

import pytest

from rtms_proto._status import StatusTable, classify_status, name_status
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
