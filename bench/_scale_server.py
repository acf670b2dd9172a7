"""The load server of ``bench_scale.py``: many RTMS meetings, each as cheap as possible.

Not the conformance fake server: that one models a meeting faithfully and its
own cost per message would dominate at a thousand meetings.  This one is raw
asyncio (a ``Protocol`` per socket, its own small WebSocket code), pinned to
its own CPU by the bench, and does per message no more than one
``transport.write`` of a prebuilt frame:

* a signaling socket (``/signaling``) answers the handshake (msg 1) with msg 2
  offering one ``audio`` URL; an audio socket (``/audio``) answers msg 3 with
  msg 4 echoing the requested parameters; msg 7 on signaling makes the meeting
  ready;
* every socket gets a keep-alive request (msg 12, ``timestamp`` and
  ``sequence``) every second, spread over the second; the round trip is timed
  when msg 13 echoes the timestamp back;
* during a phase with audio, every ready meeting gets one 20 ms L16 16 kHz mono
  audio message (640 bytes, base64 in JSON, msg 14) every 20 ms, whose
  ``timestamp`` is the wall-clock millisecond it is written in;
* at the end of a phase each audio socket gets a last keep-alive (a fence: its
  answer proves the client read every audio message before it), then the
  signaling socket gets STREAM_STATE_UPDATE TERMINATED and SESSION_STATE_UPDATE
  STOPPED, which end the stream normally; the client closes its sockets.

Commanded by the bench on stdin, one line each; answers are JSON lines on stdout:

``wait N SECONDS``
    ``{"ready": n}`` once N meetings are ready, or after SECONDS.
``run SECONDS AUDIO``
    a phase of SECONDS (audio if AUDIO is 1, keep-alives only if 0):
    ``{"phase_end": ...}`` when it ends, then ``{"done": ...}`` when every
    stream was ended and every socket closed (or gave up waiting).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import sys
import time
from typing import Any

TICK = 0.020
"""The audio period; keep-alives go out on one tick in fifty, per socket."""
SLOTS = 50
FENCE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 30.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PCM = bytes((i * 7) & 0xFF for i in range(640))
AUDIO_PREFIX = (
    b'{"msg_type":14,"content":{"user_id":0,"user_name":"bench","data":"'
    + base64.b64encode(PCM)
    + b'","timestamp":'
)
AUDIO_SUFFIX = b"}}"


def frame_header(length: int, opcode: int = 1) -> bytes:
    """The header of an unmasked, final server frame carrying ``length`` bytes."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    return frame_header(len(payload)) + payload


def wall_ms() -> int:
    return int(time.time() * 1000)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Meeting:
    """One stream: its two sockets and where it is in its life."""

    __slots__ = ("audio", "ended", "ready", "signaling", "stream_id")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.signaling: Conn | None = None
        self.audio: Conn | None = None
        self.ready = False
        self.ended = False


class Conn(asyncio.Protocol):
    """One client socket: HTTP upgrade, then client frames in, server frames out."""

    def __init__(self, server: LoadServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.path = ""
        self.meeting: Meeting | None = None
        self.open = False
        self.close_sent = False
        self.fragments = bytearray()
        self.slot = -1
        self.sequence = 0
        self.pending: dict[int, float] = {}
        """Keep-alive timestamp -> perf_counter at sending (negative: not timed)."""
        self.fence: int | None = None

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.server.conns.discard(self)
        if self.slot >= 0:
            self.server.slots[self.slot].discard(self)
        m = self.meeting
        if m is not None and m.audio is self and not m.ended and self.server.ending:
            self.server.end_meeting(m)  # no fence answer will come

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded and not self._upgrade():
            return
        self._frames()

    # ---------------------------------------------------------------- WebSocket

    def _upgrade(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        self.path = head[0].split(" ")[1] if len(head[0].split(" ")) > 1 else ""
        key = ""
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        assert self.transport is not None
        self.transport.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        self.upgraded = True
        self.open = True
        return True

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
            masked, length = buf[1] & 0x80, buf[1] & 0x7F
            at = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, at = int.from_bytes(buf[2:10], "big"), 10
            mask = b""
            if masked:
                mask, at = bytes(buf[at : at + 4]), at + 4
            if len(buf) < at + length:
                return
            payload = bytes(buf[at : at + length])
            del buf[: at + length]
            if mask:
                key = int.from_bytes((mask * (length // 4 + 1))[:length], "little")
                payload = (int.from_bytes(payload, "little") ^ key).to_bytes(length, "little")
            self._frame(bool(fin), opcode, payload)
            if self.transport is None or self.transport.is_closing():
                return

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == 8:  # close: echo it, then close the TCP connection
            self.open = False
            if not self.close_sent:
                self.close_sent = True
                self._write(frame_header(len(payload[:2]), 8) + payload[:2])
            assert self.transport is not None
            self.transport.close()
        elif opcode == 9:
            self._write(frame_header(len(payload), 10) + payload)
        elif opcode in (0, 1, 2):
            self.fragments += payload
            if fin:
                text, self.fragments = bytes(self.fragments), bytearray()
                self._message(json.loads(text))

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(data)

    def send_json(self, obj: dict[str, Any]) -> None:
        if self.open:
            self._write(text_frame(json.dumps(obj, separators=(",", ":")).encode()))

    # ---------------------------------------------------------------- RTMS

    def _message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("msg_type")
        server = self.server
        if kind == 13:
            self._keepalive_answered(msg)
        elif kind == 1 and self.path.startswith("/signaling"):
            m = server.meeting(str(msg.get("rtms_stream_id")))
            m.signaling, self.meeting = self, m
            self.send_json(
                {
                    "msg_type": 2,
                    "protocol_version": 1,
                    "sequence": 0,
                    "status_code": 0,
                    "reason": "",
                    "media_server": {"server_urls": {"audio": server.audio_url}},
                }
            )
            server.add_keepalives(self)
        elif kind == 3 and self.path.startswith("/audio"):
            m = server.meeting(str(msg.get("rtms_stream_id")))
            m.audio, self.meeting = self, m
            self.send_json(
                {
                    "msg_type": 4,
                    "protocol_version": 1,
                    "sequence": 0,
                    "status_code": 0,
                    "reason": "",
                    "payload_encrypted": False,
                    "media_params": msg.get("media_params") or {},
                }
            )
            server.add_keepalives(self)
        elif kind == 7 and self.meeting is not None and not self.meeting.ready:
            self.meeting.ready = True
            server.ready += 1

    def send_keepalive(self, timed: bool) -> int:
        """A keep-alive request; its timestamp (the key its answer is matched by)."""
        self.sequence += 1
        ts = wall_ms()
        self.pending[ts] = time.perf_counter() if timed else -1.0
        self._write(
            text_frame(b'{"msg_type":12,"timestamp":%d,"sequence":%d}' % (ts, self.sequence))
        )
        return ts

    def _keepalive_answered(self, msg: dict[str, Any]) -> None:
        ts = msg.get("timestamp")
        if not isinstance(ts, int):
            return
        sent = self.pending.pop(ts, None)
        if sent is not None and sent >= 0:
            self.server.rtts.append((time.perf_counter() - sent) * 1000.0)
        if ts == self.fence and self.meeting is not None:
            self.server.end_meeting(self.meeting)


class LoadServer:
    """The meetings, the 20 ms ticker and the phase being run."""

    def __init__(self) -> None:
        self.meetings: dict[str, Meeting] = {}
        self.conns: set[Conn] = set()
        self.slots: list[set[Conn]] = [set() for _ in range(SLOTS)]
        self.next_slot = 0
        self.audio_url = ""
        self.ready = 0
        self.keepalives = True
        self.timing = False
        self.streaming: list[Conn] = []
        self.frame = b""
        self.frame_ms = -1
        self.sent = 0
        self.late_ticks = 0
        self.rtts: list[float] = []
        self.ending = False
        self.ended = 0

    def meeting(self, stream_id: str) -> Meeting:
        m = self.meetings.get(stream_id)
        if m is None:
            m = self.meetings[stream_id] = Meeting(stream_id)
        return m

    def add_keepalives(self, conn: Conn) -> None:
        conn.slot = self.next_slot
        self.next_slot = (self.next_slot + 1) % SLOTS
        self.slots[conn.slot].add(conn)

    def audio_frame(self) -> bytes:
        """The audio frame stamped with the current millisecond (rebuilt when it changes)."""
        ms = wall_ms()
        if ms != self.frame_ms:
            payload = AUDIO_PREFIX + b"%d" % ms + AUDIO_SUFFIX
            self.frame, self.frame_ms = text_frame(payload), ms
        return self.frame

    def tick(self, slots: range) -> None:
        """One audio message per streaming meeting; keep-alives for the sockets in ``slots``."""
        if self.streaming:
            sent = 0
            for conn in self.streaming:
                if conn.open:
                    assert conn.transport is not None
                    conn.transport.write(self.audio_frame())
                    sent += 1
            self.sent += sent
        if self.keepalives:
            for number in slots:
                for conn in self.slots[number % SLOTS]:
                    if conn.open:
                        conn.send_keepalive(self.timing)

    async def ticker(self) -> None:
        """Ticks every 20 ms; ticks missed while this process was not running are skipped.

        Skipped, not caught up: a burst would hide the stall from the lag
        figures (each message is stamped when sent).  ``late_ticks`` counts
        them; a skipped tick's keep-alives still go out, late.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        number = 0
        while True:
            due += TICK
            delay = due - loop.time()
            missed = 0
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                missed = int(-delay / TICK)
                due += missed * TICK
                await asyncio.sleep(0)  # the sockets are read between ticks, always
            self.late_ticks += missed
            self.tick(range(number, number + missed + 1))
            number += missed + 1

    def end_meeting(self, m: Meeting) -> None:
        """TERMINATED then STOPPED on signaling: the normal end of a stream."""
        if m.ended:
            return
        m.ended = True
        self.ended += 1
        sig = m.signaling
        if sig is not None and sig.open:
            ts = wall_ms()
            sig.send_json({"msg_type": 8, "state": 4, "reason": 6, "timestamp": ts})
            sig.send_json(
                {
                    "msg_type": 9,
                    "state": 5,
                    "stop_reason": 6,
                    "timestamp": ts,
                    "rtms_session_id": f"session-{m.stream_id}",
                }
            )

    async def run(self, seconds: float, audio: bool) -> None:
        """One measured phase, then the end of every stream."""
        ready = [m for m in self.meetings.values() if m.ready]
        self.rtts = []
        self.sent = 0
        self.late_ticks = 0
        self.timing = True
        if audio:
            self.streaming = [m.audio for m in ready if m.audio is not None]
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu
        self.streaming = []
        self.timing = False
        self.keepalives = False
        phase = time.perf_counter() - started
        expected = round(len(ready) * phase / TICK) if audio else 0
        emit(
            {
                "phase_end": round(phase, 3),
                "sent": self.sent,
                "expected": expected,
                "late_ticks": self.late_ticks,
                "server_cpu": round(cpu, 3),
            }
        )
        # Fences: an audio socket's last keep-alive, answered after every audio message.
        self.ending = True
        for m in self.meetings.values():
            if m.audio is not None and m.audio.open and not m.ended:
                m.audio.fence = m.audio.send_keepalive(False)
            else:
                self.end_meeting(m)
        deadline = time.monotonic() + FENCE_TIMEOUT
        while self.ended < len(self.meetings) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        fenced = self.ended
        for m in self.meetings.values():
            self.end_meeting(m)
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while self.conns and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        unclosed = len(self.conns)
        unanswered = sum(
            1
            for m in self.meetings.values()
            for c in (m.signaling, m.audio)
            if c is not None
            for sent in c.pending.values()
            if sent >= 0
        )
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.abort()
        emit(
            {
                "done": True,
                "meetings": len(self.meetings),
                "fence_timeouts": len(self.meetings) - fenced,
                "unclosed": unclosed,
                "rtt_p50": percentile(self.rtts, 50),
                "rtt_p99": percentile(self.rtts, 99),
                "rtt_count": len(self.rtts),
                "rtt_unanswered": unanswered,
            }
        )

    async def wait_ready(self, wanted: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.ready < wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        emit({"ready": self.ready})


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = LoadServer()
    listener = await loop.create_server(lambda: Conn(server), "127.0.0.1", 0, backlog=4096)
    port = listener.sockets[0].getsockname()[1]
    server.audio_url = f"ws://127.0.0.1:{port}/audio"
    ticker = asyncio.create_task(server.ticker())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"port": port})
    try:
        while line := await reader.readline():
            words = line.decode().split()
            if words[:1] == ["wait"]:
                await server.wait_ready(int(words[1]), float(words[2]))
            elif words[:1] == ["run"]:
                await server.run(float(words[1]), words[2] == "1")
            else:
                break
    finally:
        ticker.cancel()
        listener.close()
        for conn in list(server.conns):
            if conn.transport is not None:
                conn.transport.abort()


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: two sockets per meeting add up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # An unlimited hard limit may be above what the kernel allows: keep the soft one then.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--cpu" and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(argv[1])})
    raise_fd_limit()
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
