"""``--save-wire``: a recording of everything that went *into* a session, and its replay.

:class:`TappedSession` is a :class:`~rtms_proto.Session` that writes each
driver input to a :class:`WireLogWriter` before handling it: the raw inbound
bytes of every socket (named by role and number), socket opened / end of
stream / failure, timer calls, commands, each with the session's ``now``, and
every jitter draw.  No outbound byte is kept, so no handshake signature is
ever written; neither is the client secret.

:func:`replay` feeds such a log into a fresh session with a scripted driver (no
network, no clock) and hands the events to a callback: a pure function of the
log, so the files a :class:`~.recorder.Recorder` writes from it are the same
as in the original run.  One input depends on the client's own randomness:
the server's ``Sec-WebSocket-Accept`` answers the client's random key, so the
replay recomputes it for the fresh session's key.

File format (version 1): ``RTMSWIRE\\n``, a 4-byte little-endian length and
that many bytes of JSON header (the session's configuration, without
credentials, and the recorder's options), then records of ``<BdIBI>`` (kind,
now, socket number, role, payload length) followed by the payload.  A record
cut short by a crash ends the log.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import hashlib
import json
import re
import struct
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from rtms_proto import (
    BackoffPolicy,
    CloseSocket,
    ConnectionOptions,
    Credentials,
    Layout,
    MediaParams,
    MediaType,
    OpenSocket,
    SendBytes,
    Session,
    SessionConfig,
    SocketId,
    SocketRole,
    StreamIdentity,
)
from rtms_proto import events as ev
from rtms_proto.enums import EventType, Product, StopReason, to_enum

from ._files import AppendFile

__all__ = [
    "WireFormatError",
    "WireKind",
    "WireLogWriter",
    "WireRecord",
    "TappedSession",
    "config_from_header",
    "config_to_header",
    "read_wire_header",
    "read_wire_log",
    "replay",
]

MAGIC = b"RTMSWIRE\n"
VERSION = 1
_RECORD = struct.Struct("<BdIBI")
_LEN = struct.Struct("<I")
_ROLES = list(SocketRole)
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

D = TypeVar("D")


class WireFormatError(ValueError):
    """The file is not a wire log this version can read."""


class WireKind(enum.IntEnum):
    """What a record is: one driver input of the session, or a jitter draw."""

    START = 1
    OPENED = 2
    DATA = 3
    EOF = 4
    FAILED = 5
    TIMER = 6
    JITTER = 7
    COMMAND = 8


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One record: ``now`` is the session time (for ``JITTER``: the value drawn)."""

    kind: WireKind
    now: float
    sock: SocketId | None
    payload: bytes


# --- configuration in the header -----------------------------------------------------------------


def _dump(obj: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _load(cls: type[D], default: D, data: object) -> D:
    """``cls(**data)``, converting enums and tuples back by the defaults' types."""
    if not isinstance(data, Mapping):
        return default
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        current = getattr(default, f.name)
        if isinstance(current, enum.Enum):
            value = type(current)(value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def config_to_header(config: SessionConfig, recorder: Mapping[str, object]) -> dict[str, object]:
    """The JSON header of a wire log: the session's configuration minus credentials."""
    return {
        "format": "rtms-proto wire log",
        "version": VERSION,
        "stream": {
            "instance_id": config.stream.instance_id,
            "rtms_stream_id": config.stream.rtms_stream_id,
            "product": config.stream.product.value,
        },
        "server_url": config.server_url,
        "client_id": config.credentials.client_id,
        "media": int(config.media),
        "layout": config.layout.value,
        "params": config.effective_params.to_wire(),
        "events": None if config.events is None else [int(e) for e in config.events],
        "buffer_data": config.buffer_data,
        "signaling_options": _dump(config.signaling_options),
        "media_options": _dump(config.media_options),
        "signaling_backoff": _dump(config.signaling_backoff),
        "media_backoff": _dump(config.media_backoff),
        "duplicate_backoff": _dump(config.duplicate_backoff),
        "close_stream_timeout": config.close_stream_timeout,
        "recorder": dict(recorder),
    }


def config_from_header(header: Mapping[str, Any]) -> SessionConfig:
    """A configuration equal to the recorded one, with placeholder credentials."""
    stream = header["stream"]
    events = header.get("events")
    return SessionConfig(
        stream=StreamIdentity(
            instance_id=stream["instance_id"],
            rtms_stream_id=stream["rtms_stream_id"],
            product=Product(stream["product"]),
        ),
        server_url=header["server_url"],
        credentials=Credentials(
            client_id=str(header.get("client_id") or "replay"), client_secret="replay"
        ),
        media=MediaType(header["media"]),
        layout=Layout(header["layout"]),
        params=MediaParams.from_wire(header.get("params") or {}),
        events=None if events is None else tuple(int(e) for e in events),
        buffer_data=header.get("buffer_data"),
        signaling_options=_load(
            ConnectionOptions, ConnectionOptions(), header.get("signaling_options")
        ),
        media_options=_load(ConnectionOptions, ConnectionOptions(), header.get("media_options")),
        signaling_backoff=_load(
            BackoffPolicy, BackoffPolicy.signaling(), header.get("signaling_backoff")
        ),
        media_backoff=_load(BackoffPolicy, BackoffPolicy.media(), header.get("media_backoff")),
        duplicate_backoff=_load(
            BackoffPolicy, BackoffPolicy.duplicate_signal(), header.get("duplicate_backoff")
        ),
        close_stream_timeout=float(header.get("close_stream_timeout", 10.0)),
    )


# --- writing --------------------------------------------------------------------------------------


class WireLogWriter:
    """Appends records to a wire log; written out at least every ``flush_every`` seconds
    of session time, past ``flush_bytes`` held, and at :meth:`close`.

    The log on disk always ends with a whole record: a write that fails (disk
    full) is cut back off and raises ``OSError`` naming the file; what was
    held then is lost, and later records are dropped.
    """

    def __init__(
        self,
        path: Path,
        header: Mapping[str, object],
        *,
        flush_every: float = 0.25,
        flush_bytes: int = 1 << 16,
    ):
        self.path = path
        self._out = AppendFile(path)
        head = json.dumps(header, separators=(",", ":")).encode()
        self._out.write(MAGIC + _LEN.pack(len(head)) + head)
        self._held = bytearray()
        self._flush_every = flush_every
        self._flush_bytes = flush_bytes
        self._flushed_at: float | None = None
        self._failed = False
        self.records = 0

    def write(
        self, kind: WireKind, now: float, sock: SocketId | None, payload: bytes = b""
    ) -> None:
        if self._failed or self._out.closed:
            return
        number, role = (0, 0) if sock is None else (sock.number, _ROLES.index(sock.role))
        self._held += _RECORD.pack(int(kind), now, number, role, len(payload))
        self._held += payload
        self.records += 1
        if kind is WireKind.JITTER and len(self._held) < self._flush_bytes:
            return
        if (
            self._flushed_at is None
            or now - self._flushed_at >= self._flush_every
            or len(self._held) >= self._flush_bytes
        ):
            self._flush()
            self._flushed_at = now

    def command(self, now: float, name: str, **args: object) -> None:
        self.write(WireKind.COMMAND, now, None, json.dumps({"name": name, "args": args}).encode())

    def close(self) -> None:
        """Write out what is held and close; raises ``OSError`` if that write fails."""
        if self._out.closed:
            return
        try:
            if not self._failed:
                self._flush()
        finally:
            self._out.close()

    def _flush(self) -> None:
        if not self._held:
            return
        held, self._held = bytes(self._held), bytearray()
        try:
            self._out.write(held)
        except OSError:
            self._failed = True
            raise


# --- the tap --------------------------------------------------------------------------------------


def _json_arg(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return int(value) if isinstance(value, enum.IntEnum) else value
    return str(value)


class TappedSession(Session):
    """A :class:`~rtms_proto.Session` that records its inputs (see the module docstring).

    :attr:`now` is the time of the latest input and :attr:`elapsed` the
    seconds since :meth:`start`: the clock of the events an input produces.
    ``wire`` may be None (only the clock is kept).
    """

    def __init__(
        self, config: SessionConfig, *, jitter: Callable[[], float], wire: WireLogWriter | None
    ) -> None:
        self.wire = wire
        self.now: float | None = None
        self.started_at: float | None = None

        def draw() -> float:
            u = jitter()
            if self.wire is not None:
                self.wire.write(WireKind.JITTER, u, None)
            return u

        super().__init__(config, jitter=draw)

    @property
    def elapsed(self) -> float | None:
        if self.now is None or self.started_at is None:
            return None
        return self.now - self.started_at

    def _in(self, kind: WireKind, now: float, sock: SocketId | None, payload: bytes = b"") -> None:
        self.now = now
        if self.wire is not None:
            self.wire.write(kind, now, sock, payload)

    def _cmd(self, now: float, name: str, **args: object) -> None:
        self.now = now
        if self.wire is not None:
            self.wire.command(now, name, **args)

    # --- inputs ----------------------------------------------------------------------------

    def start(self, *, now: float) -> None:
        self.started_at = now
        self._in(WireKind.START, now, None)
        super().start(now=now)

    def socket_opened(self, sock: SocketId, *, now: float) -> None:
        self._in(WireKind.OPENED, now, sock)
        super().socket_opened(sock, now=now)

    def receive_data(
        self, sock: SocketId, data: bytes | bytearray | memoryview, *, now: float
    ) -> None:
        data = bytes(data)  # recorded as received, even if the caller reuses its buffer
        self._in(WireKind.DATA, now, sock, data)
        super().receive_data(sock, data, now=now)

    def receive_eof(self, sock: SocketId, *, now: float) -> None:
        self._in(WireKind.EOF, now, sock)
        super().receive_eof(sock, now=now)

    def socket_failed(self, sock: SocketId, detail: str, *, now: float) -> None:
        self._in(WireKind.FAILED, now, sock, detail.encode("utf-8", "replace"))
        super().socket_failed(sock, detail, now=now)

    def handle_timer(self, *, now: float) -> None:
        self._in(WireKind.TIMER, now, None)
        super().handle_timer(now=now)

    # --- commands (recorded once they succeeded) -------------------------------------------

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True, *, now: float
    ) -> None:
        types = [int(t) for t in event_types]
        super().subscribe_events(types, subscribe, now=now)
        self._cmd(now, "subscribe_events", event_types=types, subscribe=subscribe)

    def subscribe_video(self, user_id: int, subscribe: bool = True, *, now: float) -> None:
        super().subscribe_video(user_id, subscribe, now=now)
        self._cmd(now, "subscribe_video", user_id=user_id, subscribe=subscribe)

    def request_stream_state(self, *, now: float) -> None:
        super().request_stream_state(now=now)
        self._cmd(now, "request_stream_state")

    def request_session_state(self, rtms_session_id: str, *, now: float) -> None:
        super().request_session_state(rtms_session_id, now=now)
        self._cmd(now, "request_session_state", rtms_session_id=rtms_session_id)

    def close_stream(self, *, now: float) -> None:
        super().close_stream(now=now)
        self._cmd(now, "close_stream")

    def stop(self, *, now: float) -> None:
        super().stop(now=now)
        self._cmd(now, "stop")

    def notify_stopped(
        self, stop_reason: StopReason | int | str | None = None, *, now: float
    ) -> None:
        super().notify_stopped(stop_reason, now=now)
        self._cmd(now, "notify_stopped", stop_reason=_json_arg(stop_reason))

    def failover(self, new_signaling_url: str, *, now: float) -> None:
        super().failover(new_signaling_url, now=now)
        self._cmd(now, "failover", url=new_signaling_url)


# --- reading and replaying ----------------------------------------------------------------------


def _read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise WireFormatError(f"{path} is not an rtms-proto wire log")
    raw_len = f.read(_LEN.size)
    if len(raw_len) != _LEN.size:
        raise WireFormatError(f"{path} is truncated")
    (length,) = _LEN.unpack(raw_len)
    try:
        header = json.loads(f.read(length))
    except ValueError as exc:
        raise WireFormatError(f"{path} has a damaged header") from exc
    if not isinstance(header, dict) or header.get("version") != VERSION:
        raise WireFormatError(f"{path}: unsupported wire log version")
    return header


def read_wire_header(path: Path) -> dict[str, Any]:
    """The JSON header of the wire log at ``path``."""
    with open(path, "rb") as f:
        return _read_header(f, path)


def read_wire_log(path: Path) -> tuple[dict[str, Any], Generator[WireRecord, None, None]]:
    """The header and an iterator over the records (stops at a truncated record).

    The file is opened when the iteration starts and closed when it ends.
    """
    header = read_wire_header(path)

    def records() -> Generator[WireRecord, None, None]:
        with open(path, "rb") as f:
            _read_header(f, path)
            while True:
                head = f.read(_RECORD.size)
                if len(head) < _RECORD.size:
                    return
                kind, now, number, role, size = _RECORD.unpack(head)
                payload = f.read(size) if size else b""
                if len(payload) < size or kind not in WireKind._value2member_map_:
                    return
                if role >= len(_ROLES):
                    return
                sock = SocketId(number, _ROLES[role]) if number else None
                yield WireRecord(WireKind(kind), now, sock, payload)

    return header, records()


_KEY = re.compile(rb"(?im)^sec-websocket-key:[ \t]*([A-Za-z0-9+/=]+)[ \t]*\r?$")
_ACCEPT = re.compile(rb"(?im)^(sec-websocket-accept:[ \t]*)([A-Za-z0-9+/=]+)")


def _accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())


class _Upgrades:
    """Per socket: the fresh key, and the server's answer held until its header is whole."""

    def __init__(self) -> None:
        self.accept: dict[SocketId, bytes] = {}
        self.head: dict[SocketId, bytes] = {}
        self.done: set[SocketId] = set()

    def sent(self, sock: SocketId, data: bytes) -> None:
        if sock not in self.accept:
            match = _KEY.search(data)
            if match is not None:
                self.accept[sock] = _accept(match.group(1))

    def inbound(self, sock: SocketId, data: bytes) -> bytes | None:
        """The bytes to feed now (None: hold them until the header is complete)."""
        if sock in self.done:
            return data
        buffered = self.head.pop(sock, b"") + data
        end = buffered.find(b"\r\n\r\n")
        if end < 0:
            self.head[sock] = buffered
            return None
        self.done.add(sock)
        accept = self.accept.get(sock)
        if accept is None:
            return buffered
        head, rest = buffered[: end + 4], buffered[end + 4 :]
        return _ACCEPT.sub(lambda m: m.group(1) + accept, head, count=1) + rest


def replay(
    path: Path, on_event: Callable[[ev.Event, float | None], object]
) -> tuple[dict[str, Any], ev.SessionEnded | None]:
    """Run the log at ``path`` through a fresh session; ``on_event(event, elapsed)`` gets
    every event.  Returns the header and the session's end (None if the log stops first)."""
    header, records = read_wire_log(path)
    _, scan = read_wire_log(path)
    jitters = deque(r.now for r in scan if r.kind is WireKind.JITTER)
    with contextlib.closing(records):
        ended = _replay(header, records, jitters, on_event)
    return header, ended


def _replay(
    header: Mapping[str, Any],
    records: Iterator[WireRecord],
    jitters: deque[float],
    on_event: Callable[[ev.Event, float | None], object],
) -> ev.SessionEnded | None:
    session = TappedSession(
        config_from_header(header),
        jitter=lambda: jitters.popleft() if jitters else 0.5,
        wire=None,
    )
    upgrades = _Upgrades()
    ended: ev.SessionEnded | None = None
    for record in records:
        now, sock = record.now, record.sock
        kind = record.kind
        if kind is WireKind.JITTER:
            continue
        if kind is WireKind.START:
            session.start(now=now)
        elif kind is WireKind.TIMER:
            session.handle_timer(now=now)
        elif kind is WireKind.COMMAND:
            _command(session, now, record.payload)
        elif sock is None:
            continue
        elif kind is WireKind.OPENED:
            session.socket_opened(sock, now=now)
        elif kind is WireKind.DATA:
            data = upgrades.inbound(sock, record.payload)
            if data is None:
                continue
            session.receive_data(sock, data, now=now)
        elif kind is WireKind.EOF:
            session.receive_eof(sock, now=now)
        else:
            session.socket_failed(sock, record.payload.decode("utf-8", "replace"), now=now)
        for item in session.drain():
            if isinstance(item, SendBytes):
                upgrades.sent(item.sock, item.data)
            elif isinstance(item, OpenSocket | CloseSocket):
                continue
            else:
                if isinstance(item, ev.SessionEnded):
                    ended = item
                on_event(item, session.elapsed)
    return ended


def _command(session: TappedSession, now: float, payload: bytes) -> None:
    call = json.loads(payload)
    name, args = call["name"], call.get("args", {})
    if name == "subscribe_events":
        session.subscribe_events(args["event_types"], args.get("subscribe", True), now=now)
    elif name == "subscribe_video":
        session.subscribe_video(args["user_id"], args.get("subscribe", True), now=now)
    elif name == "request_stream_state":
        session.request_stream_state(now=now)
    elif name == "request_session_state":
        session.request_session_state(args["rtms_session_id"], now=now)
    elif name == "close_stream":
        session.close_stream(now=now)
    elif name == "stop":
        session.stop(now=now)
    elif name == "notify_stopped":
        reason = args.get("stop_reason")
        if isinstance(reason, int):
            reason = to_enum(StopReason, reason)
        session.notify_stopped(reason, now=now)
    elif name == "failover":
        session.failover(args["url"], now=now)
    else:
        raise WireFormatError(f"unknown command {name!r} in the wire log")
