"""The fake server's media generation: audio, video and share packets, transcripts, chat.

Once CLIENT_READY_ACK releases a media socket, this is what fills it, all
derived from the stream's meeting script so clients can check the bytes.
"""

from __future__ import annotations

import math

from rtms_conformance.meeting import audio_packets
from rtms_conformance.payloads import SLOT_MS, video_frame
from rtms_proto import DeskshareParams, VideoParams
from rtms_proto import messages as m
from rtms_proto.enums import DataOption, MediaType, StreamState

from .output import Output
from .state import Conn, ConnState, Stream
from .types import ServerConfig

__all__ = ["Media"]


class Media:
    """Releasing media sockets and sending what they carry, written through ``output``."""

    def __init__(self, config: ServerConfig, output: Output) -> None:
        self._config = config
        self._output = output

    def release(self, s: Stream, at: float) -> None:
        """CLIENT_READY_ACK: every media socket whose handshake is done starts receiving.

        Zoom's samples send one per media handshake, Zoom's own client one
        after all of them (docs/protocol.md §13); releasing every waiting socket
        serves both.
        """
        rel = s.rel_ms(at)
        released = False
        for c in s.media.values():
            if c.state is not ConnState.OPEN or c.released:
                continue
            c.released = released = True
            if c.carried & MediaType.AUDIO:
                if s.audio_cursor is None:
                    s.audio_cursor = 0 if s.buffer_data else rel - rel % SLOT_MS
                oldest = rel - round(self._config.audio_buffer_limit * 1000)
                if s.audio_cursor < oldest:
                    s.audio_cursor = -(-oldest // SLOT_MS) * SLOT_MS
            if c.params is not None and c.params.video is not None:
                c.video_next = math.ceil(rel * c.params.video.fps / 1000)
                c.video_since_idr = 0
            if c.params is not None and c.params.deskshare is not None:
                c.share_next = math.ceil(rel * c.params.deskshare.fps / 1000)
                c.share_since_idr = 0
        if released and not s.active_sent and s.signaling is not None:
            s.active_sent = True
            self._output.send(
                s.signaling,
                m.StreamStateUpdate(state=StreamState.ACTIVE, timestamp=self._output.wall(at)),
                at,
            )

    def send_audio(self, s: Stream, c: Conn, at: float) -> None:
        """The audio due at the stream's cursor: mixed, or one packet per speaker."""
        assert c.params is not None and c.params.audio is not None and s.audio_cursor is not None
        params = c.params.audio
        start = s.audio_cursor
        s.audio_cursor = start + int(params.send_rate)
        if s.paused:
            return
        stamp = s.info.media_epoch_ms + start
        for user, data in audio_packets(
            s.script, params, start, packet_index=start // int(params.send_rate)
        ):
            name = None if user == 0 else (s.roster.get(user) or s.script.name_of(user))
            self._output.send(
                c,
                m.AudioData(
                    data=data, user_id=user, user_name=name, timestamp=stamp, length=len(data)
                ),
                at,
            )

    def _video_user(self, s: Stream, c: Conn) -> int | None:
        assert c.params is not None and c.params.video is not None
        if c.params.video.data_opt == DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM:
            user = s.video_sub
        else:
            user = s.speaker
        return user if user in s.video_on else None

    def send_frame(self, s: Stream, c: Conn, at: float, *, share: bool) -> None:
        """The next video (or ``share``) frame on ``c``, when someone is on screen."""
        assert c.params is not None
        params: VideoParams | DeskshareParams | None
        if share:
            params = c.params.deskshare
            index, c.share_next = c.share_next, c.share_next + 1
            user = s.sharer
        else:
            params = c.params.video
            index, c.video_next = c.video_next, c.video_next + 1
            user = self._video_user(s, c)
        assert params is not None
        if user is None or s.paused:
            return
        stamp = s.info.media_epoch_ms + index * 1000 // params.fps
        since = c.share_since_idr if share else c.video_since_idr
        if since >= 2 * params.fps:  # a key frame every two seconds
            since = 0
        if since == 0:
            c.idr_count += 1
        name = s.roster.get(user) or s.script.name_of(user)
        data = video_frame(
            params.codec,
            params.resolution,
            frame_num=since,
            idr_id=c.idr_count,
            label=f"rtms-fake user={user} ts={stamp}".encode(),
            clock_ms=stamp - s.info.media_epoch_ms if self._config.video_pictures else None,
            name=("sharing: " if share else "") + (name or f"user {user}"),
        )
        if share:
            c.share_since_idr = since + 1
        else:
            c.video_since_idr = since + 1
        cls = m.DeskshareData if share else m.VideoData
        self._output.send(
            c, cls(data=data, user_id=user, user_name=name, timestamp=stamp, length=len(data)), at
        )

    def deliver(self, s: Stream, carried: MediaType, msg: m.Message, at: float) -> None:
        """Send a transcript or chat message to every released socket carrying it."""
        if s.paused:
            return
        for c in s.media.values():
            if c.released and c.carried & carried and c.state is ConnState.OPEN:
                self._output.send(c, msg, at)
