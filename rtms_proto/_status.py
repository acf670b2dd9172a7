"""Naming and classifying RTMS ``status_code`` values.

Two incompatible status tables are in use (protocol.md §4.3): the current one
and a legacy one.  Success is ``0`` in both and nothing else; failures are
classified by number in the configured table *and* by the ``reason`` text,
because Zoom's own samples recognise duplicates by text.
"""

from __future__ import annotations

import enum

from .enums import FailureReason, LegacyStatusCode, StatusCode, to_enum

__all__ = ["StatusTable", "classify_status", "name_status"]


class StatusTable(enum.Enum):
    """Which numbering the server uses for ``status_code``."""

    CURRENT = "current"
    LEGACY = "legacy"


_S = StatusCode
_L = LegacyStatusCode

_CURRENT: dict[int, FailureReason] = {
    _S.DUPLICATE_SIGNAL_REQUEST: FailureReason.DUPLICATE_SIGNAL,
    _S.MEDIA_DATA_ALL_CONNECTION_EXIST: FailureReason.DUPLICATE_MEDIA_CONNECTION,
    _S.DUPLICATE_MEDIA_DATA_CONNECTION: FailureReason.DUPLICATE_MEDIA_CONNECTION,
    _S.INVALID_RTMS_STREAM_ID: FailureReason.AUTHENTICATION_FAILED,
    _S.INVALID_SIGNATURE: FailureReason.AUTHENTICATION_FAILED,
    _S.MEDIA_TYPE_AUDIO_NOT_SUPPORT: FailureReason.MEDIA_NOT_AVAILABLE,
    _S.MEDIA_TYPE_VIDEO_NOT_SUPPORT: FailureReason.MEDIA_NOT_AVAILABLE,
    _S.MEDIA_TYPE_DESKSHARE_NOT_SUPPORT: FailureReason.MEDIA_NOT_AVAILABLE,
    _S.MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT: FailureReason.MEDIA_NOT_AVAILABLE,
    _S.MEDIA_TYPE_CHAT_NOT_SUPPORT: FailureReason.MEDIA_NOT_AVAILABLE,
    _S.INTERNAL_EXCEPTION: FailureReason.HANDSHAKE_REJECTED,
    _S.CHAT_SESSION_KEY_NOT_AVAILABLE: FailureReason.HANDSHAKE_REJECTED,
}
_CURRENT_INVALID = {
    *range(_S.INVALID_MESSAGE_TYPE, _S.INVALID_MEDIA_TYPE + 1),
    _S.MEDIA_TYPE_INVALID_VALUE,
    *range(_S.INVALID_MEDIA_PARAMS, _S.INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE + 1),
    _S.INVALID_MEDIA_TRANSCRIPT_TARGET_LANGUAGE,
}

_LEGACY: dict[int, FailureReason] = {
    _L.CONNECTION_TIMEOUT: FailureReason.HANDSHAKE_REJECTED,
    _L.SESSION_NOT_FOUND: FailureReason.HANDSHAKE_REJECTED,
    _L.DUPLICATE_SIGNAL_REQUEST: FailureReason.DUPLICATE_SIGNAL,
    _L.MEDIA_DATA_ALL_CONNECTION_EXIST: FailureReason.DUPLICATE_MEDIA_CONNECTION,
    _L.DUPLICATE_MEDIA_DATA_CONNECTION: FailureReason.DUPLICATE_MEDIA_CONNECTION,
    _L.SIGNATURE_NOT_EXIST: FailureReason.AUTHENTICATION_FAILED,
    _L.INVALID_SIGNATURE: FailureReason.AUTHENTICATION_FAILED,
    _L.INVALID_MEETING_OR_STREAM_ID: FailureReason.AUTHENTICATION_FAILED,
    **dict.fromkeys(
        range(_L.MEDIA_TYPE_AUDIO_NOT_SUPPORT, _L.MEDIA_TYPE_CHAT_NOT_SUPPORT + 1),
        FailureReason.MEDIA_NOT_AVAILABLE,
    ),
    **dict.fromkeys(
        range(_L.INVALID_AUDIO_DATA_BUFFER, _L.RTMS_SESSION_NOT_FOUND + 1),
        FailureReason.HANDSHAKE_REJECTED,
    ),
}


def name_status(
    code: int, table: StatusTable = StatusTable.CURRENT
) -> StatusCode | LegacyStatusCode | int:
    """The enum member for ``code`` in ``table``, or the number when unknown."""
    if table is StatusTable.LEGACY:
        return to_enum(LegacyStatusCode, code)
    return to_enum(StatusCode, code)


def classify_status(
    code: int | None, reason: str = "", table: StatusTable = StatusTable.CURRENT
) -> FailureReason | None:
    """Why a handshake with this status failed, or ``None`` for success (code 0).

    A missing code (Zoom's mock server omits it on failures) is a rejection.
    ``reason`` text overrides the number for the two cases samples detect by
    text, so a server on the other table is still understood.
    """
    if code == 0:
        return None
    text = reason.lower()
    if "duplicate signal" in text:
        return FailureReason.DUPLICATE_SIGNAL
    if "signature" in text:
        return FailureReason.AUTHENTICATION_FAILED
    if code is None:
        return FailureReason.HANDSHAKE_REJECTED
    if table is StatusTable.LEGACY:
        if code in _LEGACY:
            return _LEGACY[code]
        if 0 < code <= _L.RTMS_SESSION_NOT_FOUND:
            return FailureReason.INVALID_REQUEST
        return FailureReason.HANDSHAKE_REJECTED
    if code in _CURRENT:
        return _CURRENT[code]
    if code in _CURRENT_INVALID:
        return FailureReason.INVALID_REQUEST
    return FailureReason.HANDSHAKE_REJECTED
