"""How the fake server keeps sockets alive, and lets go of those that are not.

Keep-alive requests on idle (or, if configured, every) open socket, answers
to the client's own requests, the end of an injected silence, and connection
deadlines: a WebSocket or RTMS handshake that takes too long, a close
handshake the client never finishes.
"""

from __future__ import annotations

import math

from rtms_proto import messages as m
from rtms_proto.enums import StopReason

from .endings import Endings
from .output import Output
from .state import Conn, ConnState, Stream
from .types import ServerConfig

__all__ = ["Liveness"]


class Liveness:
    """Keep-alives, silences and deadlines, written through ``output``; a socket whose
    keep-alives go unanswered is lost through ``endings``."""

    def __init__(self, config: ServerConfig, output: Output, endings: Endings) -> None:
        self._config = config
        self._output = output
        self._endings = endings

    def keepalive(self, s: Stream, c: Conn, at: float) -> None:
        """``c``'s keep-alive is due: drop it if too many went unanswered, else ask again."""
        out = self._output
        if len(c.ka_outstanding) >= self._config.keepalive_misses:
            out.abort(c, at, f"{len(c.ka_outstanding)} keep-alives unanswered")
            self._endings.gone(c, at, StopReason.KEEP_ALIVE_TIMEOUT)
            return
        c.ka_seq += 1
        stamp = out.wall(at)
        c.ka_outstanding.append(stamp)
        c.ka_last = at
        out.send(c, m.KeepAliveRequest(timestamp=stamp, sequence=c.ka_seq), at)

    def on_message(self, c: Conn, msg: m.Message | m.DecodeError, at: float) -> bool:
        """Handle a keep-alive request or response on an open socket; False for others."""
        if isinstance(msg, m.KeepAliveResponse):
            if msg.timestamp in c.ka_outstanding:
                c.ka_outstanding.clear()
            else:
                self._output.note(c, at, "keep-alive response matches no outstanding request")
            return True
        if isinstance(msg, m.KeepAliveRequest):
            reply = m.KeepAliveResponse(timestamp=msg.timestamp, sequence=msg.sequence)
            self._output.send(c, reply, at)
            return True
        return False

    def silence_ends(self, s: Stream, c: Conn, at: float) -> None:
        """An injected silence on ``c`` is over: resume from now, skipping what was missed."""
        c.silent_until = None
        c.ka_last = max(c.ka_last, at)
        rel = s.rel_ms(at)
        if c.params is not None and c.params.video is not None:
            c.video_next = max(c.video_next, math.ceil(rel * c.params.video.fps / 1000))
        if c.params is not None and c.params.deskshare is not None:
            c.share_next = max(c.share_next, math.ceil(rel * c.params.deskshare.fps / 1000))
        self._output.note(c, at, "silence ends")

    def time_out(self, c: Conn) -> None:
        """``c``'s deadline has come: the close handshake or the handshake took too long."""
        at = c.deadline
        assert at is not None
        c.deadline = None
        if c.state is ConnState.CLOSING:
            self._output.close_now(c)
        elif c.state in (ConnState.UPGRADING, ConnState.HANDSHAKING):
            self._output.note(c, at, "no handshake in time")
            self._output.close(c, at)
