"""A hostile RTMS server for tests: raw sockets and hand-made WebSocket frames.

Written from RFC 6455 and ``docs/protocol.md`` alone, not from the project's fake
server (``rtms_conformance``): a second, independent reading of the protocol
that can break any rule on purpose.  Tests import it (no tests here).

Server
    :class:`HostileServer` listens on 127.0.0.1 (port 0, plain ``ws://``, which
    the library allows on loopback when the host is in ``allowed_hosts``) and
    runs one *script* per accepted TCP connection, each in its own thread.  A
    script is a function taking a :class:`Peer` (the accepted socket and
    helpers to read the client's upgrade request and masked frames, answer the
    upgrade rightly or wrongly, write any frame, answer the RTMS handshakes,
    drop, go silent or stop reading).  Given a mapping of paths to scripts
    (:func:`routes`), the server reads each upgrade request and picks the
    script by path.  It counts connections and completed handshakes per path.
    Every wait ends after ``io_timeout``, or when the test ends (``hold``,
    ``silence``).  Leaving the ``with`` block stops every script, closes every
    socket, and re-raises what a script raised (a client that broke RFC 6455
    or the RTMS handshake, a timeout), so the test fails with it.  A client
    frame that is not masked, or has reserved bits set, is such an error:
    every scenario also checks the client's framing.

Client
    :func:`client_config` builds a :class:`~rtms_proto.SessionConfig` for the
    server (only 127.0.0.1 allowed, short timeouts, a fast backoff);
    :func:`drive` runs it through the public ``connect()`` of any of the three
    drivers, stops it (or leaves it by an exception) when an event or a check
    of the server's counters says so, and returns every event.

Probes
    :class:`MemoryProbe` (peak traced memory while a scenario runs: the
    server's threads are traced too, so scripts send big payloads in small
    pieces), :func:`fd_count` (open descriptors of the process),
    ``Peer.bytes_in`` / :meth:`HostileServer.bytes_in` (bytes the client
    wrote), and :func:`drive`'s ``ClientRun.exit_seconds`` (from asking the
    stream to stop, or leaving it by an exception, to ``connect()`` returning).

Scenarios (scripts, or tables of scripts, ready to use)
    * :func:`serve_signaling`, :func:`serve_media`, :func:`routes`: a Zoom that
      behaves; ``then=`` says what a socket does after its handshake.
    * :func:`in_turn`, :func:`repeat`: the k-th connection on a path runs the
      k-th script ("drop twice, then behave").
    * :func:`drop_during_handshake` (:class:`Stage`): close, reset or refuse
      before, during or right after the upgrade or the RTMS handshake.
    * :func:`bad_frame` (:class:`BadFrame`): one frame breaking one RFC 6455
      rule (masked, reserved bits, reserved opcodes, non-minimal length,
      64-bit length with its top bit set, fragmented or long control frame,
      orphan continuation, bad UTF-8, bad close payload); :func:`huge_header`:
      a header announcing any size, with as much of the payload as wanted.
    * Issue 10's open defects, expressed but not asserted here:
      :func:`handshake_then_drop` (:class:`Drop`: FIN, reset, close 1000 or
      silence) with :func:`repeat` for "handshake then drop at once, N times"
      (defect 1); :func:`stop_reading_after_handshake` (defect 2: the server
      never reads again while keep-alives go on); :func:`flood_unread` (defect
      4: never read, flood pings or keep-alive requests);
      :func:`bare_lf_upgrade` (defect 16: a ``\\n``-only 101 answer with a
      frame in the same write); :func:`media_without_handshake_answer`
      (defect 20); :func:`unnamed_interruption` (defect 17: event 7 naming no
      socket, then one media socket drops); message builders
      (:func:`audio_msg`, :func:`event_msg`, :func:`many_containers`...) take
      any value, for huge integers, control characters, timestamp jumps and
      many user ids (defects 5, 7-9, 12, 13).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import itertools
import json
import os
import select
import socket
import struct
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, TypeVar

import trio

import rtms_transports.asyncio as rt_asyncio
import rtms_transports.blocking as rt_blocking
import rtms_transports.trio as rt_trio
from rtms_proto import (
    BackoffPolicy,
    ConnectionClosed,
    ConnectionOptions,
    Credentials,
    Jitter,
    Layout,
    MediaType,
    RtmsError,
    SessionConfig,
    StreamIdentity,
)
from rtms_proto import events as ev
from rtms_transports import TransportOptions

HOST = "127.0.0.1"
CLIENT_ID = "hostile-test-client"
CLIENT_SECRET = "hostile-test-secret-41c7"
MEETING_UUID = "hostile-meeting=="
STREAM_ID = "hostile-stream"

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

MEDIA_KEYS = ("audio", "video", "deskshare", "transcript", "chat", "all")
"""``media_server.server_urls`` keys offered by default, each served at ``/<key>``."""

POLL = 0.02
"""How often a blocked script looks at the stop flag (seconds)."""

MAX_CLIENT_FRAME = 1 << 20
"""A client frame larger than this is a bug in the client (it only sends small JSON)."""

JsonObject = dict[str, Any]
Script = Callable[["Peer"], None]
Step = Callable[["Peer"], None]
E = TypeVar("E")


# --------------------------------------------------------------------------- errors


class PeerGone(Exception):
    """The client ended the conversation (EOF, reset, or its close frame): a script ends quietly."""


class ServerStopping(Exception):
    """The test is over: scripts unwind quietly."""


class ProtocolViolation(AssertionError):
    """The client broke RFC 6455 or the RTMS handshake: the test fails."""


# --------------------------------------------------------------------------- frames (RFC 6455 §5)


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode()


def apply_mask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (masking and unmasking are the same)."""
    if not data:
        return b""
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
    length_bytes: Literal[0, 2, 8] | None = None,
) -> bytes:
    """One frame exactly as asked, legal or not.

    ``length`` announces a payload size other than ``len(payload)`` (the
    payload bytes given are still appended); ``length_bytes`` forces the
    length encoding (0: 7-bit, 2: 16-bit, 8: 64-bit) even when not minimal;
    ``mask`` (4 bytes) masks the payload, which a server must never do.
    """
    announced = len(payload) if length is None else length
    if length_bytes is None:
        length_bytes = 0 if announced < 126 else 2 if announced < 1 << 16 else 8
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        if announced > 125:
            raise ValueError("a 7-bit length holds at most 125")
        head = bytes([b0, mask_bit | announced])
    elif length_bytes == 2:
        head = bytes([b0, mask_bit | 126]) + announced.to_bytes(2, "big")
    else:
        head = bytes([b0, mask_bit | 127]) + announced.to_bytes(8, "big")
    if mask is not None:
        if len(mask) != 4:
            raise ValueError("a masking key has 4 bytes")
        return head + mask + apply_mask(mask, payload)
    return head + payload


def close_payload(code: int | None, reason: str = "") -> bytes:
    """A close frame's body: nothing, or a 2-byte code and a UTF-8 reason."""
    return b"" if code is None else struct.pack("!H", code) + reason.encode()


class BadFrame(enum.Enum):
    """Server frames a client must refuse (RFC 6455 §5.1-5.5, §7.4, §8.1)."""

    MASKED = "masked"
    RSV1 = "rsv1"
    RSV2 = "rsv2"
    RSV3 = "rsv3"
    RESERVED_DATA_OPCODE = "opcode-0x3"
    RESERVED_CONTROL_OPCODE = "opcode-0xb"
    FRAGMENTED_CONTROL = "fragmented-ping"
    LONG_CONTROL = "ping-126-bytes"
    NON_MINIMAL_LENGTH = "non-minimal-length"
    LENGTH_MSB_SET = "64-bit-length-msb-set"
    ORPHAN_CONTINUATION = "orphan-continuation"
    DATA_INSIDE_FRAGMENTED = "text-inside-fragmented-text"
    INVALID_UTF8_TEXT = "invalid-utf8-text"
    CLOSE_ONE_BYTE = "close-1-byte"
    CLOSE_RESERVED_CODE = "close-code-1005"


_KEEPALIVE_JSON = b'{"msg_type":12,"timestamp":1,"sequence":1}'


def bad_frame(kind: BadFrame) -> bytes:
    """The bytes of one frame that breaks the rule ``kind`` names."""
    data = _KEEPALIVE_JSON
    match kind:
        case BadFrame.MASKED:
            return frame(TEXT, data, mask=b"\x11\x22\x33\x44")
        case BadFrame.RSV1:
            return frame(TEXT, data, rsv=0b100)
        case BadFrame.RSV2:
            return frame(TEXT, data, rsv=0b010)
        case BadFrame.RSV3:
            return frame(TEXT, data, rsv=0b001)
        case BadFrame.RESERVED_DATA_OPCODE:
            return frame(0x3, data)
        case BadFrame.RESERVED_CONTROL_OPCODE:
            return frame(0xB, b"")
        case BadFrame.FRAGMENTED_CONTROL:
            return frame(PING, b"ab", fin=False)
        case BadFrame.LONG_CONTROL:
            return frame(PING, b"p" * 126)
        case BadFrame.NON_MINIMAL_LENGTH:
            return frame(TEXT, data, length_bytes=2)
        case BadFrame.LENGTH_MSB_SET:
            return frame(BINARY, b"", length=1 << 63)
        case BadFrame.ORPHAN_CONTINUATION:
            return frame(CONT, data)
        case BadFrame.DATA_INSIDE_FRAGMENTED:
            return frame(TEXT, data[:5], fin=False) + frame(TEXT, data)
        case BadFrame.INVALID_UTF8_TEXT:
            return frame(TEXT, b'{"msg_type":12,"x":"\xff"}')
        case BadFrame.CLOSE_ONE_BYTE:
            return frame(CLOSE, b"\x03")
        case BadFrame.CLOSE_RESERVED_CODE:
            return frame(CLOSE, close_payload(1005))


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame read from the client, unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """The client's HTTP upgrade request (header names lower-cased)."""

    method: str
    path: str
    version: str
    headers: Mapping[str, str]
    raw: bytes


# --------------------------------------------------------------------------- RTMS messages


def keep_alive_msg(timestamp: int | None = None, sequence: int | None = None) -> JsonObject:
    """KEEP_ALIVE_REQ (12); a field left ``None`` is left out, as some servers do."""
    msg: JsonObject = {"msg_type": 12}
    if timestamp is not None:
        msg["timestamp"] = timestamp
    if sequence is not None:
        msg["sequence"] = sequence
    return msg


def audio_msg(
    data: bytes,
    *,
    user_id: int | None = 0,
    user_name: str | None = None,
    timestamp: int | None = None,
) -> JsonObject:
    """MEDIA_DATA_AUDIO (14): base64 audio in ``content``; any value goes through."""
    content: JsonObject = {"data": base64.b64encode(data).decode(), "length": len(data)}
    if user_id is not None:
        content["user_id"] = user_id
    if user_name is not None:
        content["user_name"] = user_name
    if timestamp is not None:
        content["timestamp"] = timestamp
    return {"msg_type": 14, "content": content}


def event_msg(event_type: int, **fields: Any) -> JsonObject:
    """EVENT_UPDATE (6) carrying ``event_type`` and ``fields``."""
    return {"msg_type": 6, "event": {"event_type": event_type, **fields}}


def stream_state_msg(state: int, reason: int | str | None = None) -> JsonObject:
    """STREAM_STATE_UPDATE (8); state 4 is TERMINATED."""
    msg: JsonObject = {"msg_type": 8, "state": state}
    if reason is not None:
        msg["reason"] = reason
    return msg


def many_containers(count: int) -> bytes:
    """An EVENT_UPDATE whose unknown field holds ``count`` empty arrays (3 bytes each)."""
    return b'{"msg_type":6,"event":{"event_type":99,"x":[' + b"[]," * count + b"[]]}}"


def signature(client_id: str, client_secret: str, instance_id: str, stream_id: str) -> str:
    """Handshake signature: hex HMAC-SHA256 of ``client_id,instance_id,stream_id`` (§8.3)."""
    text = f"{client_id},{instance_id},{stream_id}".encode()
    return hmac.new(client_secret.encode(), text, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- one connection


class Peer:
    """The server's end of one accepted connection, driven by one script in its own thread.

    Reads and writes wait at most ``timeout`` (default: the server's
    ``io_timeout``) and give way when the test ends (:class:`ServerStopping`).
    EOF, a reset, or the client's close frame raise :class:`PeerGone`.
    """

    def __init__(self, server: HostileServer, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        """1 for the server's first connection, and so on (all paths)."""
        self.request: Request | None = None
        self.bytes_in = 0
        """Bytes the client wrote on this connection (as read so far)."""
        self.bytes_out = 0
        self.frames: list[Frame] = []
        """Every frame read from the client, in order."""
        self.messages: list[JsonObject] = []
        """Every JSON message read from the client, in order."""
        self.close_code: int | None = None
        """The code of the client's close frame, once read (-1: a close frame without code)."""
        self.answer_close = True
        """Answer the client's close frame with one (then the script ends); False: say nothing."""
        self.sent: Counter[str] = Counter()
        """What scenarios sent, by kind (``"ping"``, ``"keepalive"``, ``"audio"``...)."""
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._part_opcode = 0
        self._sent_close = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<Peer #{self.number} {self.path}>"

    @property
    def path(self) -> str:
        return self.request.path if self.request is not None else "?"

    # --- waiting --------------------------------------------------------------------------

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.server.io_timeout if timeout is None else timeout)

    def _wait(self, *, write: bool, deadline: float | None) -> None:
        while True:
            if self.server.stopping:
                raise ServerStopping
            step = POLL
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    what = "write to" if write else "read from"
                    raise TimeoutError(f"{self!r}: timed out waiting to {what} the client")
                step = min(step, left)
            try:
                if write:
                    ready = select.select([], [self.sock], [], step)[1]
                else:
                    ready = select.select([self.sock], [], [], step)[0]
            except (OSError, ValueError) as exc:  # closed under us
                raise PeerGone(str(exc)) from None
            if ready:
                return

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without reading or writing (ends early when the test ends)."""
        if self.server.stop_event.wait(seconds):
            raise ServerStopping

    def silence(self) -> NoReturn:
        """Never read or write again: wait for the end of the test."""
        self.server.stop_event.wait()
        raise ServerStopping

    # --- reading --------------------------------------------------------------------------

    def _fill(self, deadline: float | None) -> None:
        self._wait(write=False, deadline=deadline)
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            raise PeerGone(f"read failed: {exc}") from None
        if not data:
            raise PeerGone("EOF")
        self.bytes_in += len(data)
        self.server._add_bytes(self.path, len(data))
        self._buf += data

    def _take(self, n: int, deadline: float | None) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_request(self, timeout: float | None = None) -> Request:
        """Read the HTTP upgrade request (once; later calls return it) and count it by path."""
        if self.request is not None:
            return self.request
        deadline = self._deadline(timeout)
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > 65536:
                raise ProtocolViolation("upgrade request head over 64 KiB")
            self._fill(deadline)
        end = self._buf.index(b"\r\n\r\n") + 4
        raw = bytes(self._buf[:end])
        del self._buf[:end]
        lines = raw[:-4].decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.request = Request(method, path, version, headers, raw)
        self.server._count(self.server._connections, path)
        return self.request

    def recv_frame(self, timeout: float | None = None) -> Frame:
        """The next frame from the client, unmasked; it must be masked, reserved bits clear."""
        return self._recv_frame(self._deadline(timeout))

    def _recv_frame(self, deadline: float | None) -> Frame:
        b0, b1 = self._take(2, deadline)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2, deadline), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8, deadline), "big")
        if length > MAX_CLIENT_FRAME:
            raise ProtocolViolation(f"{self!r}: client frame of {length} bytes")
        masked = bool(b1 & 0x80)
        key = self._take(4, deadline) if masked else b""
        payload = self._take(length, deadline)
        got = Frame(
            fin=bool(b0 & 0x80),
            rsv=(b0 >> 4) & 0x7,
            opcode=b0 & 0xF,
            masked=masked,
            payload=apply_mask(key, payload) if masked else payload,
        )
        self.frames.append(got)
        if not masked:
            raise ProtocolViolation(f"{self!r}: unmasked client frame (RFC 6455 §5.1)")
        if got.rsv:
            raise ProtocolViolation(f"{self!r}: client frame with reserved bits {got.rsv:#o}")
        return got

    def recv_message(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next whole data message ``(opcode, payload)``; pings are answered on the way."""
        return self._recv_message(self._deadline(timeout))

    def _recv_message(self, deadline: float | None) -> tuple[int, bytes]:
        while True:
            f = self._recv_frame(deadline)
            if f.opcode == CLOSE:
                self._client_closed(f.payload)
            elif f.opcode == PING:
                self.send_frame(PONG, f.payload)
            elif f.opcode == PONG:
                continue
            elif f.opcode in (TEXT, BINARY):
                if self._parts:
                    raise ProtocolViolation(f"{self!r}: new message inside a fragmented one")
                self._part_opcode = f.opcode
                self._parts = [f.payload]
            elif f.opcode == CONT:
                if not self._parts:
                    raise ProtocolViolation(f"{self!r}: continuation without a message")
                self._parts.append(f.payload)
            else:
                raise ProtocolViolation(f"{self!r}: client sent opcode {f.opcode:#x}")
            if f.opcode in (TEXT, BINARY, CONT) and f.fin:
                data = b"".join(self._parts)
                self._parts = []
                return self._part_opcode, data

    def _client_closed(self, payload: bytes) -> None:
        self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else -1
        if self.answer_close and not self._sent_close:
            with contextlib.suppress(PeerGone, ServerStopping, TimeoutError):
                self.send_close(None if self.close_code == -1 else self.close_code)
        raise PeerGone(f"close frame {self.close_code}")

    def recv_json(self, timeout: float | None = None) -> JsonObject:
        """The next message, decoded; it must be a JSON object (text or binary frame)."""
        return self._recv_json(self._deadline(timeout))

    def _recv_json(self, deadline: float | None) -> JsonObject:
        _, data = self._recv_message(deadline)
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise ProtocolViolation(f"{self!r}: client sent invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolViolation(f"{self!r}: client sent JSON that is not an object")
        self.messages.append(obj)
        return obj

    def expect(self, msg_type: int, timeout: float | None = None) -> JsonObject:
        """Read messages until one has ``msg_type`` (the others are kept in ``messages``)."""
        deadline = self._deadline(timeout)
        while True:
            msg = self._recv_json(deadline)
            if msg.get("msg_type") == msg_type:
                return msg

    def hold(self) -> None:
        """Keep reading (and recording) until the client leaves or the test ends."""
        while True:
            self._recv_json(None)

    def wait_closed(self, timeout: float | None = None) -> None:
        """Read until the client closes (its close frame, or EOF)."""
        deadline = self._deadline(timeout)
        with contextlib.suppress(PeerGone):
            while True:
                got = self._recv_frame(deadline)
                if got.opcode == CLOSE:
                    self._client_closed(got.payload)

    # --- writing --------------------------------------------------------------------------

    def send(self, data: bytes, timeout: float | None = None) -> None:
        """Write raw bytes (all of them, or :class:`PeerGone`/``TimeoutError``)."""
        deadline = self._deadline(timeout)
        view = memoryview(data)
        while view:
            self._wait(write=True, deadline=deadline)
            try:
                n = self.sock.send(view[:65536])
            except BlockingIOError:
                continue
            except OSError as exc:
                raise PeerGone(f"write failed: {exc}") from None
            self.bytes_out += n
            view = view[n:]

    def send_frame(self, opcode: int, payload: bytes = b"", **kw: Any) -> None:
        """Write one frame (see :func:`frame` for the rule-breaking options)."""
        self.send(frame(opcode, payload, **kw))

    def send_json(self, obj: object, *, binary: bool = False) -> None:
        """One JSON message in a text (default) or binary frame."""
        self.send_frame(BINARY if binary else TEXT, json.dumps(obj).encode())

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        self._sent_close = True
        self.send_frame(CLOSE, close_payload(code, reason))

    def keep_alive(self, timestamp: int | None = None, sequence: int | None = None) -> None:
        """Send KEEP_ALIVE_REQ (12)."""
        self.send_json(keep_alive_msg(timestamp, sequence))
        self.sent["keepalive"] += 1

    # --- the upgrade (RFC 6455 §4) -------------------------------------------------------

    def accept(
        self,
        *,
        key: str | None = None,
        line_end: bytes = b"\r\n",
        extra_headers: tuple[str, ...] = (),
        trailing: bytes = b"",
    ) -> None:
        """Answer the upgrade with 101 (reading the request first if needed).

        ``key`` replaces the right ``Sec-WebSocket-Accept``; ``line_end`` may be
        a bare ``\\n``; ``trailing`` bytes (frames) go out in the same write.
        """
        request = self.read_request()
        h = request.headers
        if request.method != "GET" or h.get("upgrade", "").lower() != "websocket":
            raise ProtocolViolation(f"{self!r}: not a WebSocket upgrade: {request.raw!r}")
        if h.get("sec-websocket-version") != "13" or "sec-websocket-key" not in h:
            raise ProtocolViolation(f"{self!r}: upgrade without version 13 or a key")
        if len(base64.b64decode(h["sec-websocket-key"])) != 16:
            raise ProtocolViolation(f"{self!r}: Sec-WebSocket-Key is not 16 bytes in base64")
        answer = key if key is not None else accept_key(h["sec-websocket-key"])
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {answer}",
            *extra_headers,
        ]
        head = line_end.join(s.encode("latin-1") for s in lines) + line_end + line_end
        self.send(head + trailing)

    def refuse(self, status: int = 403, reason: str = "Forbidden") -> None:
        """Answer the upgrade with an HTTP error, then close."""
        self.read_request()
        self.send(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
        self.close()

    # --- the RTMS handshakes (docs/protocol.md §3.1-3.4) ---------------------------------------

    def signaling_handshake(
        self,
        media_urls: Mapping[str, str] | None = None,
        *,
        status: int = 0,
        reason: str = "",
        timeout: float | None = None,
    ) -> JsonObject:
        """Read msg 1, check it, answer msg 2 (media URLs default to this server's)."""
        msg = self.expect(1, timeout)
        self.server.check_handshake(self, msg)
        reply: JsonObject = {
            "msg_type": 2,
            "protocol_version": 1,
            "sequence": 0,
            "status_code": status,
            "reason": reason,
        }
        if status == 0:
            urls = self.server.media_urls() if media_urls is None else media_urls
            reply["media_server"] = {"server_urls": dict(urls)}
        self.send_json(reply)
        if status == 0:
            self.server._count(self.server._handshakes, self.path)
        return msg

    def media_handshake(
        self, *, status: int = 0, reason: str = "", timeout: float | None = None
    ) -> JsonObject:
        """Read msg 3, check it, answer msg 4 confirming the requested parameters."""
        msg = self.expect(3, timeout)
        self.server.check_handshake(self, msg)
        if not isinstance(msg.get("media_type"), int):
            raise ProtocolViolation(f"{self!r}: media handshake without an integer media_type")
        self.send_json(
            {
                "msg_type": 4,
                "protocol_version": 1,
                "sequence": 0,
                "status_code": status,
                "reason": reason,
                "payload_encrypted": False,
                "media_params": msg.get("media_params"),
            }
        )
        if status == 0:
            self.server._count(self.server._handshakes, self.path)
        return msg

    # --- ending ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close with a FIN: what the client sent and we did not read is read first, so no RST."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            while self.sock.recv(65536):
                pass
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def drop(self, how: Drop) -> None:
        """End the connection the way ``how`` says (see :class:`Drop`)."""
        match how:
            case Drop.FIN:
                self.close()
            case Drop.RESET:
                self.reset()
            case Drop.CLOSE_1000:
                self.send_close(1000)
                self.wait_closed()
                self.close()
            case Drop.SILENCE:
                self.silence()


# --------------------------------------------------------------------------- the server


class HostileServer:
    """A loopback listener in a thread; each connection runs a script in a thread of its own.

    ``script`` is one :data:`Script` for every connection (it is called before
    anything is read), or a mapping from path to script (the request is read
    first; an unknown path gets a 404).  ``rcvbuf`` shrinks the receive buffer
    of accepted sockets (to make a server that does not read fill up fast).
    """

    def __init__(
        self,
        script: Script | Mapping[str, Script],
        *,
        io_timeout: float = 5.0,
        rcvbuf: int | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self._script = script
        self.io_timeout = io_timeout
        self.credentials = (
            credentials
            if credentials is not None
            else Credentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        )
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before listen(): accepted sockets inherit it
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind((HOST, 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self.stop_event = threading.Event()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self._connections: Counter[str] = Counter()
        self._handshakes: Counter[str] = Counter()
        self._bytes: Counter[str] = Counter()
        self._times: dict[str, list[float]] = {}
        self._accepted = 0
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="hostile-accept", daemon=True
        )

    def __enter__(self) -> HostileServer:
        self._acceptor.start()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.stop()
        if exc_type is None and self.errors:
            first = self.errors[0]
            if len(self.errors) > 1:
                first.add_note(f"and {len(self.errors) - 1} more: {self.errors[1:]!r}")
            raise first

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every script, close every socket (bounded)."""
        self.stop_event.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout)
        self._listener.close()
        deadline = time.monotonic() + timeout
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.errors.append(RuntimeError(f"{thread.name} did not end in {timeout} s"))
        for peer in self.peers:
            peer.close()

    # --- addresses ----------------------------------------------------------------------

    def url(self, path: str = "/signaling") -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def media_urls(self, *keys: str) -> dict[str, str]:
        """``server_urls`` pointing at this server: ``{key: ws://127.0.0.1:port/key}``."""
        return {key: self.url(f"/{key}") for key in keys or MEDIA_KEYS}

    # --- counters -------------------------------------------------------------------------

    def _count(self, counter: Counter[str], path: str) -> None:
        with self._cond:
            counter[path] += 1
            if counter is self._connections:
                self._times.setdefault(path, []).append(time.monotonic())
            self._cond.notify_all()

    def _add_bytes(self, path: str, n: int) -> None:
        with self._cond:
            self._bytes[path] += n

    @property
    def accepted(self) -> int:
        """TCP connections accepted (on any path, request read or not)."""
        with self._cond:
            return self._accepted

    def connections(self, path: str) -> int:
        """Upgrade requests read for ``path``."""
        with self._cond:
            return self._connections[path]

    def handshakes(self, path: str) -> int:
        """RTMS handshakes answered with success on ``path``."""
        with self._cond:
            return self._handshakes[path]

    def connect_times(self, path: str) -> list[float]:
        """When each request for ``path`` was read (``time.monotonic()``)."""
        with self._cond:
            return list(self._times.get(path, []))

    def bytes_in(self, path: str | None = None) -> int:
        """Bytes the client wrote (as read by the scripts), on ``path`` or in all."""
        with self._cond:
            return self._bytes[path] if path is not None else sum(self._bytes.values())

    def peers_on(self, path: str) -> list[Peer]:
        with self._cond:
            return [p for p in self.peers if p.path == path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (bounded) until ``predicate()`` holds; counters changing wake it up.

        In a script, the end of the test ends the wait (:class:`ServerStopping`).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                if self.stopping:
                    raise ServerStopping
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # --- checks ---------------------------------------------------------------------------

    def check_handshake(self, peer: Peer, msg: JsonObject) -> None:
        """The client's handshake names the stream and signs it (docs/protocol.md §3.1, §8.3)."""
        stream_id = msg.get("rtms_stream_id")
        instance = msg.get("meeting_uuid")
        if not isinstance(stream_id, str) or not isinstance(instance, str):
            raise ProtocolViolation(f"{peer!r}: handshake without rtms_stream_id/meeting_uuid")
        creds = self.credentials
        want = signature(creds.client_id, creds.client_secret, instance, stream_id)
        if msg.get("signature") != want:
            raise ProtocolViolation(f"{peer!r}: handshake signature does not verify")

    # --- threads --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                ready = select.select([self._listener], [], [], POLL)[0]
                if not ready:
                    continue
                sock, _ = self._listener.accept()
            except BlockingIOError:
                continue
            except OSError:
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):  # already reset by the client: the script sees it
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                self._accepted += 1
                peer = Peer(self, sock, self._accepted)
                self.peers.append(peer)
                thread = threading.Thread(
                    target=self._serve,
                    args=(peer,),
                    name=f"hostile-peer-{peer.number}",
                    daemon=True,
                )
                self._threads.append(thread)
                self._cond.notify_all()
            thread.start()

    def _serve(self, peer: Peer) -> None:
        try:
            script = self._script
            if isinstance(script, Mapping):
                path = peer.read_request().path
                chosen = script.get(path)
                if chosen is None:
                    peer.refuse(404, "Not Found")
                    return
                chosen(peer)
            else:
                script(peer)
        except (PeerGone, ServerStopping):
            pass
        except BaseException as exc:
            exc.add_note(f"in the script of {peer!r}")
            with self._cond:
                self.errors.append(exc)
        finally:
            peer.close()


# --------------------------------------------------------------------------- scenarios


def serve_signaling(
    media_urls: Mapping[str, str] | None = None, *, then: Step = Peer.hold
) -> Script:
    """A signaling socket that behaves: 101, handshake (media URLs to this server), ``then``."""

    def script(peer: Peer) -> None:
        peer.accept()
        peer.signaling_handshake(media_urls)
        then(peer)

    return script


def serve_media(*, then: Step = Peer.hold) -> Script:
    """A media socket that behaves: 101, handshake, ``then``."""

    def script(peer: Peer) -> None:
        peer.accept()
        peer.media_handshake()
        then(peer)

    return script


def routes(
    signaling: Script | None = None, media: Script | None = None, **by_key: Script
) -> dict[str, Script]:
    """A path table: ``/signaling`` and every ``/<media key>``, well-behaved unless given.

    ``media`` replaces every media path; ``by_key`` (``audio=...``) one of them.
    """
    table: dict[str, Script] = {"/signaling": signaling or serve_signaling()}
    for key in MEDIA_KEYS:
        table[f"/{key}"] = media or serve_media()
    for key, script in by_key.items():
        table[f"/{key}"] = script
    return table


def in_turn(*scripts: Script, then: Script) -> Script:
    """The k-th connection given to this script runs ``scripts[k]``, later ones ``then``."""
    counter = itertools.count()
    lock = threading.Lock()

    def script(peer: Peer) -> None:
        with lock:
            k = next(counter)
        (scripts[k] if k < len(scripts) else then)(peer)

    return script


def repeat(script: Script, times: int, *, then: Script) -> Script:
    """``script`` for the first ``times`` connections, then ``then``."""
    return in_turn(*[script] * times, then=then)


class Stage(enum.Enum):
    """Where :func:`drop_during_handshake` ends a connection."""

    REFUSE_UPGRADE = "refuse-upgrade"
    """Answer the upgrade with HTTP 503."""
    BEFORE_UPGRADE = "before-upgrade"
    """Read the request, close without answering."""
    AFTER_UPGRADE = "after-upgrade"
    """Answer 101, close before the RTMS handshake request."""
    AFTER_REQUEST = "after-request"
    """Read the RTMS handshake request, close without answering."""
    CLOSE_FRAME = "close-frame"
    """Read the RTMS handshake request, send a close frame 1000."""
    RESET = "reset"
    """Read the RTMS handshake request, reset the connection."""


def drop_during_handshake(stage: Stage) -> Script:
    """A server that ends the connection before its handshake completes (any path)."""

    def script(peer: Peer) -> None:
        if stage is Stage.REFUSE_UPGRADE:
            peer.refuse(503, "Service Unavailable")
            return
        peer.read_request()
        if stage is Stage.BEFORE_UPGRADE:
            peer.close()
            return
        peer.accept()
        if stage is Stage.AFTER_UPGRADE:
            peer.close()
            return
        peer.recv_json()
        if stage is Stage.AFTER_REQUEST:
            peer.close()
        elif stage is Stage.CLOSE_FRAME:
            peer.drop(Drop.CLOSE_1000)
        else:
            peer.reset()

    return script


class Drop(enum.Enum):
    """How :meth:`Peer.drop` ends an established connection."""

    FIN = "fin"
    RESET = "reset"
    CLOSE_1000 = "close-1000"
    SILENCE = "silence"
    """Stay connected and say nothing (the client's liveness timeout ends it)."""


def _handshake(peer: Peer, media: bool) -> None:
    peer.accept()
    if media:
        peer.media_handshake()
    else:
        peer.signaling_handshake()


def handshake_then_drop(how: Drop, *, media: bool = False) -> Script:
    """Complete the handshake, then drop at once (issue 10 defect 1, with :func:`repeat`)."""

    def script(peer: Peer) -> None:
        _handshake(peer, media)
        peer.drop(how)

    return script


def stop_reading_after_handshake(
    *, media: bool = False, keep_alive_every: float | None = 0.05
) -> Script:
    """Complete the handshake, then never read again (issue 10 defect 2).

    Keep-alive requests go on every ``keep_alive_every`` seconds (None: none),
    so the client keeps having answers to write that nobody reads.
    """

    def script(peer: Peer) -> None:
        _handshake(peer, media)
        if keep_alive_every is None:
            peer.silence()
        for n in itertools.count(1):
            peer.keep_alive(timestamp=n, sequence=n)
            peer.sleep(keep_alive_every)

    return script


class Flood(enum.Enum):
    """What :func:`flood_unread` sends: each asks the client for an answer."""

    PING = "ping"
    KEEPALIVE = "keepalive"


def flood_unread(
    kind: Flood, *, media: bool = False, max_bytes: int = 1 << 20, seconds: float = 1.0
) -> Script:
    """Complete the handshake, then never read and send ``kind`` as fast as the client reads,
    up to ``max_bytes`` or ``seconds``; then stay silent (issue 10 defect 4)."""

    def script(peer: Peer) -> None:
        _handshake(peer, media)
        start, end = peer.bytes_out, time.monotonic() + seconds
        ping = frame(PING, b"p" * 125)
        n = 0
        while peer.bytes_out - start < max_bytes and time.monotonic() < end:
            n += 1
            if kind is Flood.PING:
                peer.send(ping)
                peer.sent["ping"] += 1
            else:
                peer.keep_alive(timestamp=n, sequence=n)
        peer.silence()

    return script


def huge_header(length: int, *, stream: int = 0, chunk: int = 16384, media: bool = False) -> Script:
    """Handshake, then a binary frame header announcing ``length`` bytes, then up to
    ``stream`` bytes of that payload in ``chunk``-sized writes; then read until the client goes."""

    def script(peer: Peer) -> None:
        _handshake(peer, media)
        peer.send(frame(BINARY, b"", length=length))
        filler = b"\0" * chunk
        sent = 0
        with contextlib.suppress(PeerGone):
            while sent < stream:
                peer.send(filler[: stream - sent])
                sent += min(chunk, stream - sent)
        peer.sent["payload"] += sent
        peer.wait_closed()

    return script


def bare_lf_upgrade(trailing: bytes | None = None) -> Script:
    """A 101 answer with bare ``\\n`` line ends and a frame in the same write (defect 16),
    then a normal signaling handshake.  The default frame is a keep-alive request."""
    extra = (
        trailing if trailing is not None else frame(TEXT, json.dumps(keep_alive_msg(7, 7)).encode())
    )

    def script(peer: Peer) -> None:
        peer.accept(line_end=b"\n", trailing=extra)
        peer.signaling_handshake()
        peer.hold()

    return script


def media_without_handshake_answer(*, every: float = 0.02, user_id: int = 0) -> Script:
    """A media socket that never answers msg 3 but sends audio (Zoom's mock; defect 20)."""

    def script(peer: Peer) -> None:
        peer.accept()
        peer.expect(3)
        for n in itertools.count():
            peer.send_json(audio_msg(b"\0" * 640, user_id=user_id, timestamp=n * 20))
            peer.sent["audio"] += 1
            peer.sleep(every)

    return script


def unnamed_interruption(media_key: str = "audio", *, grace: float = 0.1) -> dict[str, Script]:
    """Routes where, once ``media_key`` is up, signaling sends event 7 naming no socket and,
    ``grace`` seconds later, that media socket drops (defect 17: healthy sockets must stay)."""
    lost = threading.Event()
    path = f"/{media_key}"

    def signaling(peer: Peer) -> None:
        peer.accept()
        peer.signaling_handshake()
        if not peer.server.wait_for(lambda: peer.server.handshakes(path) >= 1):
            raise TimeoutError(f"{path} never completed its handshake")
        peer.send_json(event_msg(7, timestamp=1))
        peer.sleep(grace)
        lost.set()
        peer.hold()

    def doomed(peer: Peer) -> None:
        peer.accept()
        peer.media_handshake()
        while not lost.wait(POLL):
            if peer.server.stopping:
                raise ServerStopping
        peer.reset()

    return routes(signaling=signaling, **{media_key: in_turn(doomed, then=serve_media())})


# --------------------------------------------------------------------------- client side


FAST_CONN = ConnectionOptions(
    handshake_timeout=2.0,
    keepalive_timeout=5.0,
    close_timeout=0.5,
    allowed_hosts=(HOST,),
)
"""Per-socket options for tests: short timeouts, only 127.0.0.1 allowed."""

FAST_BACKOFF = BackoffPolicy(
    initial=0.05, factor=2.0, cap=0.2, jitter=Jitter.NONE, max_attempts=3, window=5.0
)
"""Reconnects for tests: 0.05, 0.1, 0.2 s (no jitter), then give up."""


def client_config(
    server: HostileServer,
    *,
    path: str = "/signaling",
    media: MediaType = MediaType.AUDIO,
    layout: Layout = Layout.SPLIT,
    options: ConnectionOptions = FAST_CONN,
    backoff: BackoffPolicy = FAST_BACKOFF,
    **changes: Any,
) -> SessionConfig:
    """A session joining ``server`` (same options and backoff for signaling and media)."""
    base: dict[str, Any] = {
        "stream": StreamIdentity(instance_id=MEETING_UUID, rtms_stream_id=STREAM_ID),
        "server_url": server.url(path),
        "credentials": server.credentials,
        "media": media,
        "layout": layout,
        "signaling_options": options,
        "media_options": options,
        "signaling_backoff": backoff,
        "media_backoff": backoff,
    }
    base.update(changes)
    return SessionConfig(**base)


FAST_TRANSPORT = TransportOptions(connect_timeout=2.0, close_timeout=2.0)


@dataclass
class ClientRun:
    """What :func:`drive` saw: events in order, the error ``connect()`` raised, timings."""

    events: list[ev.Event] = field(default_factory=list)
    error: RtmsError | None = None
    seconds: float = 0.0
    """From calling ``connect()`` to it returning."""
    exit_seconds: float | None = None
    """From the ``until`` event (stop asked, or the block left by an exception) to the end."""

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def ended(self) -> ev.SessionEnded | None:
        ends = self.of(ev.SessionEnded)
        return ends[-1] if ends else None


class _Leave(Exception):
    """Raised inside the stream's block to leave it by an exception."""


Driver = Literal["asyncio", "trio", "blocking"]
DRIVERS: tuple[Driver, ...] = ("asyncio", "trio", "blocking")


def drive(
    driver: Driver,
    config: SessionConfig,
    *,
    until: Callable[[ev.Event], bool] | None = None,
    when: Callable[[], bool] | None = None,
    leave: Literal["stop", "abort"] = "stop",
    timeout: float = 10.0,
    options: TransportOptions = FAST_TRANSPORT,
    jitter: Callable[[], float] = lambda: 0.0,
) -> ClientRun:
    """Run a stream with ``driver`` through its public ``connect()``, collecting every event.

    Once ``until(event)`` holds for an event, or ``when()`` (a check of the
    server's counters, polled every :data:`POLL` seconds) holds, the stream
    is stopped (``leave="stop"``: ``stream.stop()``, events still collected
    to the end) or left at once by an exception (``"abort"``).  The whole
    run is bounded by ``timeout`` (an ``AssertionError`` listing the events
    seen).  What ``connect()`` raises (an :class:`RtmsError`) is kept in
    ``error``.
    """
    run = ClientRun()
    marks: dict[str, float] = {}

    def check(event: ev.Event | None, stop: Callable[[], None]) -> None:
        if event is not None:
            run.events.append(event)
        if "until" in marks:
            return
        if (event is not None and until is not None and until(event)) or (
            when is not None and when()
        ):
            marks["until"] = time.monotonic()
            if leave == "abort":
                raise _Leave
            with contextlib.suppress(ConnectionClosed):
                stop()

    started = time.monotonic()
    deadline = started + timeout
    try:
        if driver == "asyncio":

            async def amain() -> None:
                async with asyncio.timeout(timeout):
                    async with rt_asyncio.connect(config, options=options, jitter=jitter) as s:
                        while True:
                            try:
                                event = await asyncio.wait_for(s.receive(), POLL)
                            except TimeoutError:
                                check(None, s.stop)
                                continue
                            except ConnectionClosed:
                                return
                            check(event, s.stop)

            asyncio.run(amain())
        elif driver == "trio":

            async def tmain() -> None:
                with trio.fail_after(timeout):
                    async with rt_trio.connect(config, options=options, jitter=jitter) as s:
                        while True:
                            got: ev.Event | None = None
                            with trio.move_on_after(POLL):
                                try:
                                    got = await s.receive()
                                except ConnectionClosed:
                                    return
                            check(got, s.stop)

            trio.run(tmain)
        else:
            with rt_blocking.connect(config, options=options, jitter=jitter) as s:
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    try:
                        event = s.receive(timeout=POLL)
                    except TimeoutError:
                        check(None, s.stop)
                        continue
                    except ConnectionClosed:
                        break
                    check(event, s.stop)
    except _Leave:
        pass
    except (TimeoutError, trio.TooSlowError):
        kinds = [type(e).__name__ for e in run.events]
        raise AssertionError(f"{driver}: no end within {timeout} s; events: {kinds}") from None
    except RtmsError as exc:
        run.error = exc
    end = time.monotonic()
    run.seconds = end - started
    if "until" in marks:
        run.exit_seconds = end - marks["until"]
    return run


# --------------------------------------------------------------------------- probes


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


class MemoryProbe:
    """Peak traced memory (bytes above the level at entry) while the block runs.

    Every thread of the process is traced, the hostile server's included:
    scripts send big payloads in small pieces, so the peak is the client's
    plus a small constant.
    """

    def __init__(self) -> None:
        self.peak = 0
        self._base = 0
        self._owner = False

    def __enter__(self) -> MemoryProbe:
        self._owner = not tracemalloc.is_tracing()
        if self._owner:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self._base
        if self._owner:
            tracemalloc.stop()


@contextlib.contextmanager
def no_leaks(grace: float = 3.0) -> Iterator[None]:
    """Fail if the block leaves descriptors or hostile-server threads behind (bounded wait)."""
    before = fd_count()
    yield
    deadline = time.monotonic() + grace
    while fd_count() > before or _server_threads():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"left behind: {fd_count() - before} descriptors, threads {_server_threads()}"
            )
        time.sleep(0.01)


def _server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hostile-")]
