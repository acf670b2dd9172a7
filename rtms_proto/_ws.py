"""The client end of one WebSocket: bytes in, whole messages out.

wsproto performs the HTTP upgrade and frames everything we send (client
frames must be masked, and wsproto owns the close handshake's send side).
Once upgraded, nothing of wsproto is kept: the handshake's HTTP machine
(h11) is let go, and each frame sent is framed and masked by a
``FrameProtocol`` of its own (:func:`_writer`).  A socket's own writer would
also hold wsproto's frame reader, never used here; together they were most
of what an idle socket held, while a new one costs a microsecond against one
keep-alive answer a second.  Whether a frame may still be sent (open, and no
close sent yet) is tracked here: the only state of wsproto's connection that
was used.
Frames *from* the server are read here instead of by wsproto's general
reader: they are never masked or compressed (we offer no extension), and an
RTMS stream is almost entirely single-frame JSON messages, so a reader
specialised for that shape costs a fraction of wsproto's per-frame price and
lets the whole stack outrun wsproto's frame parsing alone
(``bench/bench_media.py``).  Every rule RFC 6455 sets for a client reading
frames is still enforced: no mask, no reserved bits, known opcodes, minimal
length encoding, whole and short control frames, continuation order, valid
UTF-8 text, and a size cap checked from the frame header before any payload
is buffered.  Each violation becomes one :class:`WsFault` value, so the
connection machines never see an exception.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    RejectConnection,
    Request,
)
from wsproto.frame_protocol import CloseReason, FrameProtocol
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from .enums import FailureReason

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1014), *range(3000, 5000)})
"""Close codes an endpoint may put in a close frame (RFC 6455 §7.4, IANA registry)."""

_END_OF_HEAD = re.compile(b"\n\r?\n")
"""A blank line ends an HTTP head: LF LF or LF CR LF, the rule h11 (so wsproto) reads by."""
_OP_CONTINUATION = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA
_FIN = 0x80
_RSV = 0x70
_MASK = 0x80
_MAX_CONTROL_PAYLOAD = 125


@dataclass(frozen=True, slots=True)
class WsOpened:
    """The server accepted the upgrade."""


@dataclass(frozen=True, slots=True)
class WsClosed:
    """The server sent a close frame (our reply, if due, is in :class:`WsSend`)."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class WsFault:
    """The peer broke the WebSocket protocol or a limit; the connection is unusable.

    ``close_code`` is the code of the close frame to send, when one can be sent.
    ``detail`` never depends on how the bytes were cut into pieces.
    """

    reason: FailureReason
    detail: str
    close_code: int = CLOSE_PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class WsSend:
    """Bytes the layer itself must send (pong, close reply)."""

    data: bytes


WsItem = bytes | str | WsOpened | WsClosed | WsFault | WsSend
"""A whole message (``str`` from a text frame, ``bytes`` from a binary one) or a signal."""


def _protocol_fault(detail: str) -> WsFault:
    return WsFault(FailureReason.PROTOCOL_ERROR, detail)


class WsClient:
    """One client-side WebSocket over one byte stream.

    Reading state: ``_pending`` holds received bytes not yet parsed (at most
    one incomplete frame), ``_need`` how many bytes that frame needs before
    parsing can move on, so a large frame arriving in many reads is joined
    once.  A fragmented message collects in ``_parts`` or, decoded as it
    arrives, ``_text_parts`` (``_part_op`` is its opcode, 0 when none is open).
    """

    __slots__ = (
        "_done",
        "_have",
        "_head_tail",
        "_max_size",
        "_need",
        "_part_op",
        "_part_size",
        "_parts",
        "_pending",
        "_sending",
        "_text_parts",
        "_upgraded",
        "_utf8",
        "_ws",
    )

    def __init__(self, *, max_message_size: int) -> None:
        self._ws: WSConnection | None = WSConnection(ConnectionType.CLIENT)  # the upgrade's
        self._sending = False  # from the upgrade until a close is sent
        self._max_size = max_message_size
        self._upgraded = False
        self._done = False
        self._head_tail = b""
        self._pending: list[bytes] = []
        self._have = 0
        self._need = 2
        self._part_op = 0
        self._part_size = 0
        self._parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def upgrade_request(self, *, host: str, resource: str) -> bytes:
        """The HTTP upgrade request to send first."""
        assert self._ws is not None, "the upgrade request is sent once, first"
        return self._ws.send(Request(host=host, target=resource))

    def send_text(self, text: str) -> bytes:
        """Frame one text message (JSON is sent as text, as Zoom's docs show)."""
        assert self._sending, "text is sent only while open"
        return bytes(_writer().send_data(text))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """A close frame, or nothing when the state does not allow one.

        Only an open WebSocket can send one: before the upgrade there is
        nothing to close, and a close frame from the server was already
        answered by :meth:`feed`.
        """
        if not self._sending:
            return b""
        self._sending = False  # nothing is sent after a close
        return bytes(_writer().close(code, reason))

    def feed(self, received: bytes | bytearray | memoryview) -> Iterator[WsItem]:
        """Everything ``data`` completes, in order.  Never raises.

        Frames are parsed as the caller iterates, so what the caller sends for
        one item (a keep-alive answer, the RTMS handshake) goes out before a
        close frame later in the same ``data`` is answered: the result does not
        depend on how the peer's bytes were cut into pieces.  Nothing follows
        a :class:`WsFault` or a :class:`WsClosed`, and nothing is read after
        them.
        """
        if self._done or (not received and self._have < self._need):
            return  # (no bytes, but what :meth:`keep` gave back may be read now)
        data = received if isinstance(received, bytes) else bytes(received)
        if not self._upgraded:
            yield from self._feed_upgrade(data)
            if self._done or self._have < self._need:
                return
            buf = self._pending[0]
        else:
            have = self._have + len(data)
            if have < self._need:
                self._pending.append(data)
                self._have = have
                return
            if self._pending:
                self._pending.append(data)
                buf = b"".join(self._pending)
            else:
                buf = data
        yield from self._frames(buf)

    def read_texts(self, data: bytes) -> tuple[list[str], list[int], bytes, bool] | None:
        """The text messages of the whole unfragmented text frames that ``data`` (behind
        the bytes buffered before it) starts with; None when this reader cannot take
        them (a fragmented message open, the upgrade not done, the stream over), and
        then nothing changed.

        Also returns the offset where each message ends in ``buf``, the bytes read
        (``data`` behind the buffered ones), and whether a frame for the general
        reader stopped the list: what follows the last message is buffered, and
        :meth:`feed` with no bytes reads it then.  A cut frame of this kind at
        the end is buffered until a read finishes it.

        The usual read of a live RTMS stream: one or a few audio messages, read
        in one call without the generators of :meth:`feed`.  It checks only what
        such a frame can break: FIN and text opcode without reserved bits
        (``0x81``), no mask, a minimal 7- or 16-bit length, the size cap, and
        UTF-8; anything else stops the list (the general reader says what is
        wrong).  A property test holds it to :meth:`feed`.
        """
        if self._part_op or self._done or not self._upgraded:
            return None
        texts: list[str] = []
        ends: list[int] = []
        pending = self._pending
        if pending:
            have = self._have + len(data)
            pending.append(data)
            if have < self._need:  # the frame buffered is still cut
                self._have = have
                return texts, ends, b"", False
            buf = b"".join(pending)
        else:
            buf = data
        size = len(buf)
        cap = self._max_size
        pos = 0
        while True:
            if size - pos < 2:
                need = 2
                break
            if buf[pos] != _FIN | _OP_TEXT:
                need = 0
                break
            length = buf[pos + 1]  # no mask bit: 0-127
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    need = 4
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 126:
                    need = 0
                    break
                start = pos + 4
            else:
                need = 0  # masked, or a 64-bit length
                break
            if length > cap:
                need = 0
                break
            end = start + length
            if end > size:
                need = end - pos
                break
            try:
                texts.append(buf[start:end].decode())
            except UnicodeDecodeError:
                need = 0
                break
            ends.append(end)
            pos = end
        if pos < size:
            rest = buf[pos:]
            self._pending = [rest]
            self._have = len(rest)
        elif pending:
            self._pending = []
            self._have = 0
        self._need = need or 2  # 2: feed() reads the frame there at once
        return texts, ends, buf, not need

    def keep(self, buf: bytes, pos: int) -> None:
        """Buffer again the messages of ``buf`` (from :meth:`read_texts`) from ``pos`` on,
        not read after all: :meth:`feed` with no bytes reads them."""
        if pos < len(buf):
            rest = buf[pos:]
            self._pending = [rest]
            self._have = len(rest)
            self._need = 2

    def _feed_upgrade(self, data: bytes) -> Iterator[WsItem]:
        """Feed wsproto the HTTP answer, and not one byte past its head.

        The answer to an upgrade has no body, so it ends at the first blank
        line (CRLF or bare LF line ends, as h11 accepts them); what follows is
        already frames, which must reach our reader, not wsproto's: they are
        kept in ``_pending`` before :class:`WsOpened` is yielded, so a caller
        that stops there loses nothing.  ``_head_tail`` keeps the last two
        bytes of the head fed so far, enough for a blank line cut by a read.
        """
        ws = self._ws
        assert ws is not None, "fed the upgrade answer twice"
        while data:
            window = self._head_tail + data
            found = _END_OF_HEAD.search(window)
            if found is None:
                head, data = data, b""
                self._head_tail = window[-2:]
            else:
                cut = found.end() - len(self._head_tail)
                head, data = data[:cut], data[cut:]
                self._head_tail = b""
            try:
                ws.receive_data(head)
            except WsRemoteProtocolError as exc:
                self._done = True
                yield WsFault(FailureReason.PROTOCOL_ERROR, f"bad upgrade response: {exc}")
                return
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    # The HTTP machine and wsproto's connection are of no more use.
                    self._ws = None
                    self._sending = True
                    self._upgraded = True
                    self._pending = [data] if data else []
                    self._have = len(data)
                    yield WsOpened()
                    return
                # A client's handshake ends in one of two events; the body of a
                # refusal (RejectData) is never fed.
                assert isinstance(event, RejectConnection)
                self._done = True
                yield WsFault(
                    FailureReason.WEBSOCKET_UPGRADE_REJECTED,
                    f"server answered the upgrade with HTTP {event.status_code}",
                )
                return

    def _frames(self, buf: bytes) -> Iterator[WsItem]:
        """Parse every whole frame in ``buf``; keep the rest for the next call."""
        pos = 0
        size = len(buf)
        need = 2
        try:
            while True:
                left = size - pos
                if left < 2:
                    need = 2
                    break
                b0 = buf[pos]
                b1 = buf[pos + 1]
                if b1 & _MASK:
                    yield self._fail(_protocol_fault("the server sent a masked frame"))
                    return
                if b0 & _RSV:
                    yield self._fail(_protocol_fault("reserved bits set but no extension agreed"))
                    return
                opcode = b0 & 0x0F
                length = b1 & 0x7F
                if opcode >= _OP_CLOSE:
                    fault = _check_control(opcode, b0 & _FIN, length)
                    if fault is not None:
                        yield self._fail(fault)
                        return
                    start = pos + 2
                else:
                    if length < 126:
                        start = pos + 2
                    elif length == 126:
                        if left < 4:
                            need = 4
                            break
                        length = (buf[pos + 2] << 8) | buf[pos + 3]
                        start = pos + 4
                        if length < 126:
                            yield self._fail(_protocol_fault("frame length not minimally encoded"))
                            return
                    else:
                        if left < 10:
                            need = 10
                            break
                        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                        start = pos + 10
                        if length < 0x10000 or length >> 63:
                            yield self._fail(_protocol_fault("frame length not minimally encoded"))
                            return
                    fault = self._check_data(opcode, length)
                    if fault is not None:
                        yield self._fail(fault)
                        return
                end = start + length
                if end > size:
                    need = end - pos
                    break
                payload = buf[start:end]
                pos = end
                if opcode < _OP_CLOSE:
                    if b0 & _FIN and not self._part_op:
                        # The usual case: a whole message in one frame.  (A
                        # continuation frame here was refused by _check_data.)
                        if opcode == _OP_TEXT:
                            try:
                                yield payload.decode()
                            except UnicodeDecodeError:
                                yield self._fail(_bad_utf8())
                                return
                        else:
                            yield payload
                    else:
                        item = self._add_part(opcode, payload, bool(b0 & _FIN))
                        if item is not None:
                            yield item
                            if type(item) is WsFault:
                                return
                elif opcode == _OP_PING:
                    if self._sending:
                        yield WsSend(bytes(_writer().pong(payload)))
                elif opcode == _OP_CLOSE:
                    yield from self._on_close(payload)
                    return
                # A pong carries nothing the protocol needs.
        finally:
            if pos < size:
                rest = buf[pos:]
                self._pending = [rest]
                self._have = len(rest)
            else:  # the usual end: every byte read (no new list, no empty slice)
                if self._pending:
                    self._pending = []
                self._have = 0
            self._need = need

    def _check_data(self, opcode: int, length: int) -> WsFault | None:
        """The rules for a data frame that its header alone decides."""
        if opcode > _OP_BINARY:
            return _protocol_fault(f"unknown opcode {opcode:#x}")
        if opcode == _OP_CONTINUATION:
            if not self._part_op:
                return _protocol_fault("continuation frame outside a fragmented message")
            length += self._part_size
        elif self._part_op:
            return _protocol_fault("new message inside a fragmented one")
        if length > self._max_size:
            return self._too_big()
        return None

    def _add_part(self, opcode: int, payload: bytes, fin: bool) -> bytes | str | WsFault | None:
        """Collect fragments; text is decoded (so checked for UTF-8) as it arrives."""
        if opcode:
            self._part_op = opcode
        if self._part_op == _OP_TEXT:
            try:
                self._text_parts.append(self._utf8.decode(payload, final=fin))
            except UnicodeDecodeError:
                return self._fail(_bad_utf8())
        else:
            self._parts.append(payload)
        self._part_size += len(payload)
        if not fin:
            return None
        self._part_size = 0
        if self._part_op == _OP_TEXT:
            self._part_op = 0
            text = "".join(self._text_parts)
            self._text_parts = []
            return text
        self._part_op = 0
        whole = b"".join(self._parts)
        self._parts = []
        return whole

    def _on_close(self, payload: bytes) -> Iterator[WsItem]:
        """Read the server's close frame, answer it if it opened the close."""
        self._done = True
        if not payload:
            code, reason = CLOSE_NO_STATUS, ""
        elif len(payload) == 1:
            yield _protocol_fault("close frame with a 1-byte payload")
            return
        else:
            code = (payload[0] << 8) | payload[1]
            if code not in SENDABLE_CLOSE_CODES:
                yield _protocol_fault(f"close frame with code {code}, which no peer may send")
                return
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                yield WsFault(
                    FailureReason.PROTOCOL_ERROR,
                    "invalid UTF-8 in close reason",
                    CLOSE_INVALID_DATA,
                )
                return
        if self._sending:
            self._sending = False  # nothing is sent after a close
            # Echo the code; wsproto sends an empty close for "no status".
            reply_code = CloseReason.NO_STATUS_RCVD if code == CLOSE_NO_STATUS else code
            yield WsSend(bytes(_writer().close(reply_code, reason)))
        yield WsClosed(code, reason)

    def _fail(self, fault: WsFault) -> WsFault:
        self._done = True
        return fault

    def _too_big(self) -> WsFault:
        # No size in the text: it would depend on where the bytes were cut.
        return WsFault(
            FailureReason.MESSAGE_TOO_BIG,
            f"message exceeds the {self._max_size}-byte limit",
            CLOSE_TOO_BIG,
        )


def _writer() -> FrameProtocol:
    """A client frame writer (it masks each frame) for one frame: see the module docstring."""
    return FrameProtocol(client=True, extensions=[])


def _check_control(opcode: int, fin: int, length: int) -> WsFault | None:
    """The rules for a control frame that its first two bytes decide."""
    if opcode > _OP_PONG:
        return _protocol_fault(f"unknown opcode {opcode:#x}")
    if not fin:
        return _protocol_fault("fragmented control frame")
    if length > _MAX_CONTROL_PAYLOAD:
        return _protocol_fault("control frame longer than 125 bytes")
    return None


def _bad_utf8() -> WsFault:
    return WsFault(FailureReason.PROTOCOL_ERROR, "invalid UTF-8 text", CLOSE_INVALID_DATA)
