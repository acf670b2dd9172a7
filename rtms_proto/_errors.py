"""Exception types.

Exceptions are raised only for caller misuse (:class:`LocalProtocolError`).
Faults of the peer never raise out of an input method: they become failure
events that carry a :class:`RemoteProtocolError` value.  No error message ever
contains a secret (client secret, signature, webhook token).
"""

from __future__ import annotations

from .enums import FailureReason, LegacyStatusCode, StatusCode

__all__ = [
    "ConnectionClosed",
    "InvalidConfig",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RtmsError",
    "WebhookError",
]


class RtmsError(Exception):
    """Base class of every error raised by rtms_proto."""


class LocalProtocolError(RtmsError):
    """The caller asked for something illegal in the current state; nothing changed."""


class InvalidConfig(LocalProtocolError, ValueError):
    """A configuration value or command argument is invalid."""


class ConnectionClosed(LocalProtocolError):
    """A command was issued on a connection that is already closed or failed."""


class WebhookError(RtmsError):
    """A webhook request is unsigned, wrongly signed, stale or malformed."""


class RemoteProtocolError(RtmsError):
    """What the peer did wrong: carried on failure events, never raised by inputs.

    ``status`` is the RTMS ``status_code`` when the server sent one (a known
    member of the configured table, or the raw number), ``status_reason`` its
    ``reason`` text.
    """

    def __init__(
        self,
        reason: FailureReason,
        detail: str,
        *,
        status: StatusCode | LegacyStatusCode | int | None = None,
        status_reason: str | None = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.status = status
        self.status_reason = status_reason
        super().__init__(self.__str__())

    @property
    def retryable(self) -> bool:
        return self.reason.retryable

    def __str__(self) -> str:
        """The class, the detail, and what the server said (code and reason, either alone).

        The server's reason is shown sanitised (:func:`printable`): it is
        server-chosen text headed for terminals and logs.
        """
        text = f"{self.reason.value}: {self.detail}"
        said: list[str] = []
        if self.status is not None:
            name = (
                self.status.name if isinstance(self.status, (StatusCode, LegacyStatusCode)) else "?"
            )
            said.append(f"status {int(self.status)} {name}")
        if self.status_reason:
            said.append(f"reason {printable(self.status_reason)!r}")
        if said:
            text += f" ({', '.join(said)})"
        return text

    def __repr__(self) -> str:
        return f"RemoteProtocolError({self.__str__()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RemoteProtocolError):
            return NotImplemented
        return (self.reason, self.detail, self.status, self.status_reason) == (
            other.reason,
            other.detail,
            other.status,
            other.status_reason,
        )

    def __hash__(self) -> int:
        return hash((self.reason, self.detail, self.status, self.status_reason))


MAX_SHOWN_REASON = 200
"""How many characters of a server's reason text an error shows."""


def printable(text: str, limit: int = MAX_SHOWN_REASON) -> str:
    """``text`` safe to print: every non-printable character (control, format,
    separator, surrogate: what could move a cursor, ring a bell or reorder the
    line) becomes U+FFFD, and more than ``limit`` characters are cut with "...".
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


class DisallowedHost(InvalidConfig):
    """A server URL names a host outside the allowlist.

    Its own type so that a caller can tell "this URL points somewhere we refuse
    to connect to" (possibly a forged webhook) from a plain typo in a URL.
    """


__all__ += ["DisallowedHost"]
