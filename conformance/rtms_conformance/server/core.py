"""The fake RTMS server's protocol core: pure, Sans-I/O, deterministic.

:class:`FakeRtmsServer` serves any number of streams.  A driver feeds it
connections by opaque ids (``connection_made``, ``receive_data``,
``connection_lost``), calls ``handle_timer`` at ``next_deadline()`` and
performs what ``drain()`` returns (:class:`Send`, :class:`Close`,
:class:`Abort`, :class:`PauseReading`, :class:`EmitWebhook`), in order.  Time
is the ``now`` the driver passes (monotonic seconds); nothing is random, and
wall-clock timestamps in messages are ``config.epoch_ms + round(t * 1000)``
where ``t`` is the time an action was *due*, so a run is reproducible however
late the driver's timer fires.

Each stream has a signaling URL ``/signaling/<stream id>`` and media URLs
``/media/<stream id>/<kind>`` (kind audio, video, deskshare, transcript, chat,
all) under ``config.base_url``; after a failover the prefixes become
``/signaling2``, ``/media2`` and so on.  What the server checks and answers
follows docs/protocol.md §3-§10 and satisfies Zoom's own client (§13).

The server is composed of parts, one concern each, built here and handed
their collaborators explicitly:

* :class:`~.output.Output` — driver actions, the trace, framing and closing
  (every other part writes through it);
* :class:`~.endings.Endings` — losing sockets, ending streams;
* :class:`~.media.Media` — releasing media sockets and filling them;
* :class:`~.handshakes.Handshakes` — answering handshakes (checks in :mod:`.checks`);
* :class:`~.signaling.Signaling` — signaling commands;
* :class:`~.liveness.Liveness` — keep-alives, silences, connection deadlines;
* :class:`~.timeline.Timeline` — the meeting's events and timed faults;
* :class:`~.connections.Connections` — bytes in, WebSocket items, routing;
* :class:`~.schedule.Scheduler` — when timed work is due, run in order.

This module holds the public API and the driver inputs, and dispatches each
piece of timed work to its part.  The state the parts act on is plain data
(:mod:`.state`), the URLs are :mod:`.routes`, the public values :mod:`.types`.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from rtms_conformance.meeting import expected_audio
from rtms_proto import AudioParams, InvalidConfig
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import StopReason

from .connections import Connections
from .endings import Endings
from .handshakes import Handshakes
from .liveness import Liveness
from .media import Media
from .output import Output
from .routes import signaling_url
from .schedule import Due, Scheduler, Work
from .signaling import Signaling
from .state import Conn, Stream
from .timeline import Timeline
from .types import (
    ConnId,
    ServerAction,
    ServerConfig,
    StreamInfo,
    StreamSpec,
    StreamStatus,
    TraceEntry,
)

__all__ = ["FakeRtmsServer"]


class FakeRtmsServer:
    """A faithful fake of Zoom's RTMS servers for any number of streams (see the module doc).

    An input costs the same however many other streams and connections there
    are: the :class:`~.schedule.Scheduler` keeps streams' next due times and
    connections' deadlines on agendas (heaps), and recomputes a stream's due
    time only when something may have changed it.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._streams: dict[str, Stream] = {}
        self._conns: dict[ConnId, Conn] = {}
        self._served: dict[str, int] = {}
        output = self._output = Output(config)
        self.trace: list[TraceEntry] = output.trace
        """Messages in and out (media data counted in ``StreamStatus.sent``), and notes."""
        endings = self._endings = Endings(output)
        media = self._media = Media(config, output)
        self._liveness = Liveness(config, output, endings)
        self._timeline = Timeline(config, output, media, endings)
        self._schedule = Scheduler(
            config,
            self._streams,
            self._conns,
            perform=self._perform,
            time_out=self._liveness.time_out,
        )
        self._connections = Connections(
            config,
            self._conns,
            self._streams,
            self._schedule.timeouts,
            output=output,
            endings=endings,
            handshakes=Handshakes(config, output),
            liveness=self._liveness,
            signaling=Signaling(config, output, media, endings),
            renew=self._renew if config.fresh_meetings else None,
        )

    # --- streams ----------------------------------------------------------------------------

    def add_stream(self, spec: StreamSpec, now: float) -> StreamInfo:
        """Start serving a stream at ``now``; its meeting and faults are timed from here."""
        if spec.rtms_stream_id in self._streams:
            raise InvalidConfig(f"stream {spec.rtms_stream_id!r} is already served")
        info = StreamInfo(
            rtms_stream_id=spec.rtms_stream_id,
            instance_id=spec.meeting_uuid,
            product=spec.product,
            rtms_session_id=spec.session_id,
            signaling_url=signaling_url(self.config.base_url, spec.rtms_stream_id, 0),
            started_at=now,
            media_epoch_ms=self._output.wall(now),
        )
        stream = Stream(spec, info, now, len(self._streams))
        stream.started_body = self._output.started_body(stream, now)
        self._streams[spec.rtms_stream_id] = stream
        self._schedule.touch(stream)
        self._schedule.run_due(now)
        return info

    def streams(self) -> tuple[StreamInfo, ...]:
        """Every stream ever added."""
        return tuple(s.info for s in self._streams.values())

    def rtms_started_body(self, stream: StreamInfo | str) -> bytes:
        """The current ``*.rtms_started`` webhook body (after a failover: the new one)."""
        return self._stream(stream).started_body

    def webhooks(self, stream: StreamInfo | str) -> tuple[tuple[str, bytes], ...]:
        """Every webhook the stream produced, ``(event, body)``, the first ``rtms_started`` too."""
        return tuple(self._stream(stream).webhooks)

    def status(self, stream: StreamInfo | str) -> StreamStatus:
        """A snapshot of the stream's state."""
        s = self._stream(stream)
        return StreamStatus(
            rtms_stream_id=s.info.rtms_stream_id,
            ended=s.ended,
            stop_reason=s.stop_reason,
            generation=s.generation,
            signaling_connected=s.signaling is not None,
            media_connected=frozenset(c.role for c in s.media.values() if c.role is not None),
            media_released=frozenset(
                c.role for c in s.media.values() if c.role is not None and c.released
            ),
            signaling_handshakes=s.handshakes.get(SocketRole.SIGNALING, 0),
            subscribed_events=frozenset(s.subscribed),
            audio_cursor_ms=s.audio_cursor,
            video_subscription=s.video_sub,
            sent=MappingProxyType(dict(s.sent)),
            served=self._served.get(s.info.rtms_stream_id, 0)
            + (1 if s.ended and s.ever_connected else 0),
        )

    def end_stream(
        self,
        stream: StreamInfo | str,
        now: float,
        reason: StopReason | int = StopReason.MEETING_ENDED,
    ) -> None:
        """End a stream now, as Zoom does (state updates, close frames, ``rtms_stopped``)."""
        self._schedule.run_due(now)
        s = self._stream(stream)
        self._endings.end_stream(s, now, reason)
        self._schedule.touch(s)

    def expected_audio(
        self,
        stream: StreamInfo | str,
        params: AudioParams,
        first_timestamp: int,
        end_timestamp: int,
        *,
        user_id: int | None = None,
    ) -> bytes:
        """The audio bytes this server sends for packet timestamps in
        ``[first_timestamp, end_timestamp)`` (mixed, or ``user_id``'s multi-stream packets)."""
        s = self._stream(stream)
        epoch = s.info.media_epoch_ms
        return expected_audio(
            s.script, params, first_timestamp - epoch, end_timestamp - epoch, user_id=user_id
        )

    def received(
        self, stream: StreamInfo | str, role: SocketRole | None = None
    ) -> list[m.Message | m.DecodeError]:
        """What clients sent on the stream's sockets (of ``role``), in order."""
        sid = self._stream(stream).info.rtms_stream_id
        return [
            e.message
            for e in self.trace
            if e.direction == "in"
            and e.rtms_stream_id == sid
            and e.message is not None
            and (role is None or e.role == role)
        ]

    # --- driver inputs ----------------------------------------------------------------------

    def connection_made(self, conn: ConnId, now: float) -> None:
        """A client connected (TCP and, for wss, TLS are up)."""
        self._schedule.run_due(now)
        self._connections.made(conn, now)

    def receive_data(self, conn: ConnId, data: bytes, now: float) -> None:
        """Bytes from a client.  Never raises because of what they contain."""
        schedule = self._schedule
        schedule.run_due(now)
        c = self._connections.receive(conn, data, now)
        if c is not None:
            schedule.touch(c.stream)
            schedule.run_due(now)

    def connection_lost(self, conn: ConnId, now: float) -> None:
        """The TCP connection is gone (whoever closed it)."""
        schedule = self._schedule
        schedule.run_due(now)
        c = self._connections.lost(conn, now)
        if c is not None:
            schedule.touch(c.stream)
            schedule.run_due(now)

    def handle_timer(self, now: float) -> None:
        """Do everything that is due; early calls do nothing."""
        self._schedule.run_due(now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or None."""
        return self._schedule.next_deadline()

    def drain(self) -> list[ServerAction]:
        """Everything to do since the last call, in order."""
        return self._output.drain()

    # --- lookup and timed work --------------------------------------------------------------

    def _stream(self, stream: StreamInfo | str) -> Stream:
        sid = stream if isinstance(stream, str) else stream.rtms_stream_id
        found = self._streams.get(sid)
        if found is None:
            raise InvalidConfig(f"unknown stream {sid!r}")
        return found

    def _renew(self, old: Stream, now: float) -> Stream:
        """A new meeting of ``old``'s stream from ``now`` (``ServerConfig.fresh_meetings``)."""
        sid = old.info.rtms_stream_id
        if old.ended and old.ever_connected:
            self._served[sid] = self._served.get(sid, 0) + 1
        old.ended = True  # detached: whatever it had scheduled is dropped
        info = dataclasses.replace(
            old.info,
            signaling_url=signaling_url(self.config.base_url, sid, 0),
            started_at=now,
            media_epoch_ms=self._output.wall(now),
        )
        stream = Stream(old.spec, info, now, old.order)
        stream.started_body = self._output.started_body(stream, now)
        self._streams[sid] = stream
        self._schedule.touch(stream)
        return stream

    def _perform(self, s: Stream, due: Due) -> None:
        """Do one piece of the stream's timed work, by the part it concerns."""
        at, kind, c, key, ms = due
        if kind is Work.AUDIO:
            assert c is not None
            self._media.send_audio(s, c, at)
        elif kind is Work.VIDEO or kind is Work.SHARE:
            assert c is not None
            self._media.send_frame(s, c, at, share=kind is Work.SHARE)
        elif kind is Work.KEEPALIVE:
            assert c is not None
            self._liveness.keepalive(s, c, at)
        elif kind is Work.SILENCE_END:
            assert c is not None
            self._liveness.silence_ends(s, c, at)
        elif kind is Work.SCRIPT:
            self._timeline.advance(s, at, ms)
        elif kind is Work.FAULT:
            self._timeline.next_fault(s, at)
        else:
            self._endings.expire(s, at, key)
