"""Test helpers: the server end of a socket, built on a wsproto server.

Client output is checked by decoding it here (client frames are masked with
random keys, so raw bytes are not comparable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId


class Peer:
    """One server-side WebSocket that records what the client sent."""

    def __init__(self, *, accept: bool = True) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.accept = accept
        self.requests: list[Request] = []
        self.received: list[m.Message | m.DecodeError] = []
        self.raw: list[bytes | str] = []
        self.closes: list[CloseConnection] = []
        self.pongs: list[bytes] = []
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        """Take client bytes; return the server's automatic answers (101, close replies)."""
        self.ws.receive_data(data)
        out = b""
        for event in self.ws.events():
            if isinstance(event, Request):
                self.requests.append(event)
                if self.accept:
                    out += self.ws.send(AcceptConnection())
                else:
                    out += self.ws.send(RejectConnection(status_code=403))
            elif isinstance(event, Message):
                assert event.message_finished
                self.raw.append(event.data if isinstance(event, TextMessage) else bytes(event.data))
                self.received.append(m.decode_message(event.data))
            elif isinstance(event, CloseConnection):
                self.closes.append(event)
                if self.ws.state.name == "REMOTE_CLOSING":
                    out += self.ws.send(event.response())
            elif isinstance(event, Pong):
                self.pongs.append(bytes(event.payload))
        return out

    def send(
        self, msg: m.Message | Mapping[str, object] | str | bytes, *, binary: bool = False
    ) -> bytes:
        """Frame a server message (typed, a dict, or raw JSON text)."""
        if isinstance(msg, Mapping):
            text = json.dumps(msg)
        elif isinstance(msg, (str, bytes)):
            text = msg if isinstance(msg, str) else msg.decode()
        else:
            text = m.encode_message(msg).decode()
        if binary:
            return self.ws.send(BytesMessage(data=text.encode()))
        return self.ws.send(TextMessage(data=text))

    def ping(self, payload: bytes = b"hi") -> bytes:
        return self.ws.send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        return self.ws.send(CloseConnection(code=code, reason=reason))


def sent_bytes(outputs: list[object], sock: SocketId | None = None) -> bytes:
    """All SendBytes data in ``outputs`` (for one socket when given)."""
    return b"".join(
        o.data for o in outputs if isinstance(o, SendBytes) and (sock is None or o.sock == sock)
    )


def events_only(outputs: list[object]) -> list[object]:
    """The outputs that are events (not actions)."""
    return [o for o in outputs if not isinstance(o, (SendBytes, OpenSocket, CloseSocket))]
