"""What the driver must do: open a socket, send bytes, close a socket.

Actions are the only way the core touches the network.  A driver performs
them in the order :meth:`drain` returns them and has no other protocol logic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Action", "CloseSocket", "OpenSocket", "SendBytes", "SocketId", "SocketRole"]


class SocketRole(enum.Enum):
    """What a socket carries: signaling, one media type, or every media type."""

    SIGNALING = "signaling"
    AUDIO = "audio"
    VIDEO = "video"
    DESKSHARE = "deskshare"
    TRANSCRIPT = "transcript"
    CHAT = "chat"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class SocketId:
    """Names one socket; a session never reuses a number, even across reconnects."""

    number: int
    role: SocketRole

    def __str__(self) -> str:
        return f"{self.role.value}#{self.number}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenSocket:
    """Open a TCP connection (TLS when ``secure``) to ``host:port``, then call
    ``socket_opened``; on failure call ``socket_failed``.

    ``url`` is given for logging; ``host``, ``port``, ``secure`` and
    ``resource`` are already parsed so that drivers need not parse anything.
    """

    sock: SocketId
    url: str
    host: str
    port: int
    secure: bool
    resource: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendBytes:
    """Write ``data`` to the socket, in order with every earlier SendBytes."""

    sock: SocketId
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseSocket:
    """Flush what was sent, then close the socket; feed nothing more for it."""

    sock: SocketId


Action = OpenSocket | SendBytes | CloseSocket
