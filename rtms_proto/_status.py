"""Naming and classifying RTMS ``status_code`` values.

Two incompatible status tables are in use (docs/protocol.md §4.3): the current one
and a legacy one.  Success is ``0`` in both and nothing else; failures are
classified by number in the configured table *and* by the ``reason`` text,
because Zoom's own samples recognise duplicates by text and Zoom's mock server
sends no number at all.  The text rules are derived from the numbered tables
(a reason naming a status is classified as that status's number), so the two
never disagree.
"""

from __future__ import annotations

import enum
import re

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


def _by_number(code: int, table: StatusTable) -> FailureReason:
    """The numbered rules: what a non-zero ``code`` means in ``table``."""
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


def _words(text: str) -> str:
    """Lower-case words between single spaces, padded: ``"STATUS_INVALID_SIGNATURE"``
    and ``"Invalid signature."`` both contain ``" invalid signature "``."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


_WORD = re.compile(r"[a-z0-9]+")

_Twins = tuple[StatusCode | LegacyStatusCode, ...]


def _named_rules() -> list[tuple[str, _Twins]]:
    """A text rule per status name of either table (its words), longest first."""
    rules = []
    for name in sorted({*_S.__members__, *_L.__members__} - {"STATUS_OK"}):
        in_tables = (_S.__members__.get(name), _L.__members__.get(name))
        rules.append((_words(name), tuple(m for m in in_tables if m is not None)))
    rules.sort(key=lambda rule: -len(rule[0]))
    return rules


_TEXT_RULES: tuple[tuple[str, _Twins], ...] = (
    # Zoom's samples retry on this phrase: it is looked for first, so a duplicate
    # is never taken for a fatal error whatever else the text says.  (This rule
    # and the last match the start of a word: "signatures", "signaling".)
    (" duplicate signal", (_S.DUPLICATE_SIGNAL_REQUEST, _L.DUPLICATE_SIGNAL_REQUEST)),
    # The most specific name a reason contains decides.
    *_named_rules(),
    # Any other mention of the signature ("Signature mismatch", "signatures differ").
    (" signature", (_S.INVALID_SIGNATURE, _L.INVALID_SIGNATURE)),
)
"""The text rules: a phrase of the ``reason`` (as :func:`_words`) and its numbered
twins, the statuses whose classification it takes.  The twins of a phrase
classify alike in their tables (pinned by the tests), so a rule is derived
from the numbered tables, never written twice."""

_MAX_TEXT = 1024
"""How much of a ``reason`` the text rules read: a status name is short."""


def _table_of(member: StatusCode | LegacyStatusCode) -> StatusTable:
    return StatusTable.LEGACY if isinstance(member, LegacyStatusCode) else StatusTable.CURRENT


def classify_status(
    code: int | None, reason: str = "", table: StatusTable = StatusTable.CURRENT
) -> FailureReason | None:
    """Why a handshake with this status failed, or ``None`` for success (code 0).

    The ``reason`` text is read first: when it names a status (any name of
    either table, in any case and punctuation, or mentions a duplicate signal
    request or the signature), the failure is classified as that status's
    number is, so a server on the other table, or one that sends no number at
    all (Zoom's mock), is understood the same.  Otherwise the number decides
    in ``table``; a missing number is a plain (retryable) rejection.
    """
    if code == 0:
        return None
    words = _words(reason[:_MAX_TEXT])
    for phrase, twins in _TEXT_RULES:
        if phrase in words:
            twin = twins[0]
            return _by_number(int(twin), _table_of(twin))
    if code is None:
        return FailureReason.HANDSHAKE_REJECTED
    return _by_number(code, table)
