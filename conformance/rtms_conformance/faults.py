"""Faults the fake server can inject, scripted per stream (``StreamSpec.faults``).

Two kinds: *occurrence* faults change how the server answers the n-th
handshake on a kind of socket (:class:`RejectHandshake`,
:class:`DuplicateSignal`, :class:`IgnoreHandshake`); *timed* faults happen
``at`` seconds after the stream started, on the sockets selected by ``role``
(a :class:`~rtms_proto.actions.SocketRole`, or None for every socket of the
stream).  A timed fault with no matching live socket at its time does nothing
(the server's trace notes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType

__all__ = [
    "BinaryFrames",
    "DropSocket",
    "DuplicateSignal",
    "Failover",
    "Fault",
    "IgnoreHandshake",
    "InterruptMedia",
    "RejectHandshake",
    "SendClose",
    "SendMalformed",
    "SendOversized",
    "SendRaw",
    "SendUnknownType",
    "Silence",
    "SlowReads",
    "TimedFault",
]


def _check_at(at: float) -> None:
    if not at >= 0:
        raise ValueError(f"at must be a number of seconds >= 0, not {at!r}")


def _check_nth(nth: int, count: int) -> None:
    if nth < 1 or count < 1:
        raise ValueError("nth and count must be >= 1")


# --- occurrence faults ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectHandshake:
    """Answer handshakes ``nth`` .. ``nth + count - 1`` on ``role`` sockets with ``status``.

    ``status`` is sent as given (any number, any table); the socket is then
    closed with a close frame, as Zoom does after a failed handshake.
    """

    status: int
    reason: str = "rejected by fault injection"
    role: SocketRole = SocketRole.SIGNALING
    nth: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        _check_nth(self.nth, self.count)


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateSignal:
    """Reject the first ``count`` signaling handshakes as "duplicate signal request"."""

    count: int = 1

    def __post_init__(self) -> None:
        _check_nth(1, self.count)


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoreHandshake:
    """Never answer handshake number ``nth`` on ``role`` sockets (the client must time out)."""

    role: SocketRole = SocketRole.SIGNALING
    nth: int = 1

    def __post_init__(self) -> None:
        _check_nth(self.nth, 1)


# --- timed faults -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DropSocket:
    """Drop the TCP connection without a close frame (the server "crashes" that socket)."""

    at: float
    role: SocketRole | None = SocketRole.SIGNALING

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendClose:
    """Send a WebSocket close frame (then close TCP once the client answers or after a timeout).

    The stream stays alive: the server treats the socket as lost and waits for a reconnect.
    """

    at: float
    role: SocketRole | None = SocketRole.SIGNALING
    code: int = 1000
    reason: str = ""

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterruptMedia:
    """Send MEDIA_CONNECTION_INTERRUPTED (event 7) naming ``media_type`` on signaling.

    With ``drop`` the server also drops that media socket, as when it really
    lost it; without, the event is a false alarm the client must still handle.
    """

    at: float
    media_type: MediaType = MediaType.AUDIO
    drop: bool = True

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """Send nothing (no keep-alives, no data) for ``duration`` seconds (None: forever).

    Audio that falls due while silent is delivered late, in order, when the
    silence ends: the server stalls, it does not lose data.
    """

    at: float
    role: SocketRole | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        _check_at(self.at)
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be positive or None")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowReads:
    """Stop reading from the socket for ``seconds`` (the driver pauses reading)."""

    at: float
    role: SocketRole | None = None
    seconds: float = 5.0

    def __post_init__(self) -> None:
        _check_at(self.at)
        if not self.seconds > 0:
            raise ValueError("seconds must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOversized:
    """Send one valid JSON message of ``size`` bytes (a META_DATA_AUDIO padded out)."""

    at: float
    role: SocketRole | None = SocketRole.AUDIO
    size: int = 16 * 1024 * 1024 + 1

    def __post_init__(self) -> None:
        _check_at(self.at)
        if self.size < 64:
            raise ValueError("size must be at least 64 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMalformed:
    """Send a frame that is not valid JSON."""

    at: float
    role: SocketRole | None = SocketRole.SIGNALING
    data: str = '{"msg_type": 6, "event": {'

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendUnknownType:
    """Send a well-formed message of a ``msg_type`` nobody knows."""

    at: float
    role: SocketRole | None = SocketRole.SIGNALING
    msg_type: int = 99

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRaw:
    """Send ``data`` as it is, in a text frame (``str``) or a binary frame (``bytes``)."""

    at: float
    role: SocketRole | None = SocketRole.SIGNALING
    data: str | bytes = "{}"

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryFrames:
    """From ``at`` on, send every message in binary frames (Zoom "may send binary frames")."""

    at: float = 0.0

    def __post_init__(self) -> None:
        _check_at(self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failover:
    """The stream moves to a new server: drop every socket, stop serving the old URLs
    and emit a new ``rtms_started`` webhook naming ``/signaling<N>/...`` (N = 2, 3, …)."""

    at: float

    def __post_init__(self) -> None:
        _check_at(self.at)


TimedFault: TypeAlias = (
    DropSocket
    | SendClose
    | InterruptMedia
    | Silence
    | SlowReads
    | SendOversized
    | SendMalformed
    | SendUnknownType
    | SendRaw
    | BinaryFrames
    | Failover
)
"""Faults that happen at a time."""

Fault: TypeAlias = RejectHandshake | DuplicateSignal | IgnoreHandshake | TimedFault
"""Every fault a stream can be scripted with."""
