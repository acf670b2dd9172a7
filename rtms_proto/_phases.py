"""The phases of a :class:`~rtms_proto.Session`, and what moves it between them.

:data:`PHASES` is the whole ``(phase, input) -> next phase`` table: the
session looks every phase change up in it, the tests walk every pair, and
``docs/generate.py`` renders the phase diagram and the reconnect rules from it
and from :data:`RULES`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["PHASES", "RULES", "SessionInput", "SessionPhase"]


class SessionPhase(enum.Enum):
    """Where the session is as a whole."""

    IDLE = "idle"
    CONNECTING = "connecting"
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    CLOSING_STREAM = "closing_stream"
    ENDING = "ending"
    ENDED = "ended"


class SessionInput(enum.Enum):
    """What the session concluded from a driver input or a command."""

    START = "start"
    SIGNALING_CONNECTED = "signaling_connected"
    SIGNALING_LOST = "signaling_lost"
    MEDIA_LOST = "media_lost"
    MEDIA_INTERRUPTED = "media_interrupted"
    FAILOVER = "failover"
    STREAM_TERMINATING = "stream_terminating"
    CLOSE_STREAM = "close_stream"
    END = "end"
    SOCKETS_CLOSED = "sockets_closed"


_P = SessionPhase
_I = SessionInput
_RUNNING = (_P.CONNECTING, _P.ACTIVE, _P.RECONNECTING)

PHASES: Mapping[tuple[SessionPhase, SessionInput], SessionPhase] = {
    (_P.IDLE, _I.START): _P.CONNECTING,
    # A TERMINATING heard during a signaling handshake is forgotten when the
    # handshake then succeeds: the session is active again.
    **{
        (p, _I.SIGNALING_CONNECTED): _P.ACTIVE
        for p in (_P.CONNECTING, _P.RECONNECTING, _P.CLOSING_STREAM)
    },
    **{(p, _I.SIGNALING_LOST): _P.RECONNECTING for p in _RUNNING},
    **{(p, _I.FAILOVER): _P.RECONNECTING for p in _RUNNING},
    # Media sockets exist only once signaling is up: losing signaling closes them.
    (_P.ACTIVE, _I.MEDIA_LOST): _P.ACTIVE,
    (_P.ACTIVE, _I.MEDIA_INTERRUPTED): _P.ACTIVE,
    (_P.CLOSING_STREAM, _I.MEDIA_INTERRUPTED): _P.CLOSING_STREAM,
    **{(p, _I.STREAM_TERMINATING): _P.CLOSING_STREAM for p in (*_RUNNING, _P.CLOSING_STREAM)},
    (_P.ACTIVE, _I.CLOSE_STREAM): _P.CLOSING_STREAM,
    **{(p, _I.END): _P.ENDING for p in (*_RUNNING, _P.CLOSING_STREAM)},
    (_P.ENDING, _I.SOCKETS_CLOSED): _P.ENDED,
}
"""Every phase change the session makes; it never makes one that is not here.

The pairs were found from what each input requires: ``SIGNALING_CONNECTED``
needs a signaling socket being built, which only start, a signaling reconnect
and failover create; ``CLOSE_STREAM`` needs an open signaling socket, which
means ACTIVE; ``SIGNALING_LOST`` and ``MEDIA_LOST`` while CLOSING_STREAM are
``END`` instead.
"""

RULES: Mapping[SessionInput, tuple[str, str]] = {
    _I.START: ("`start()`", "open the signaling socket"),
    _I.SIGNALING_CONNECTED: (
        "the signaling handshake succeeds",
        "subscribe the wanted events (and video) again, open every media socket;"
        " a signaling reconnect is complete, but its backoff episode (window and"
        " attempts) goes on until the socket proves itself: open for the policy's"
        " `settle` seconds with a message received after its handshake"
        " (the same holds for a media reconnect)",
    ),
    _I.SIGNALING_LOST: (
        "the signaling socket fails for a retryable reason (no message within"
        " keepalive_timeout included) or the server closes it",
        "close media, reconnect signaling after `signaling_backoff`"
        " (`duplicate_backoff` after DUPLICATE_SIGNAL_REQUEST), then every media socket",
    ),
    _I.MEDIA_LOST: (
        "a media socket fails for a retryable reason (no message within keepalive_timeout"
        " included) or the server closes it",
        "reconnect that media socket only, after `media_backoff`",
    ),
    _I.MEDIA_INTERRUPTED: (
        "MEDIA_CONNECTION_INTERRUPTED (event 7) naming a media socket still open here;"
        " or naming none, when all are open and none is lost within `interruption_grace`",
        "reconnect the named media socket after `media_backoff`; unnamed: wait"
        " `interruption_grace` for the lost socket to show itself (then only it reconnects,"
        " as MEDIA_LOST), else reconnect the sockets silent during the grace, or all",
    ),
    _I.FAILOVER: (
        "`failover(url)`: a new rtms_started for a live stream",
        "fresh connections to the new URL, at once",
    ),
    _I.STREAM_TERMINATING: (
        "stream state TERMINATING",
        "drop the planned reconnects; a socket lost from now on ends the session",
    ),
    _I.CLOSE_STREAM: (
        "`close_stream()`",
        "ask Zoom to end the stream; end on its answer, on a lost socket,"
        " or after `close_stream_timeout`",
    ),
    _I.END: (
        "a fatal status (bad signature or stream id, bad parameters, media not allowed) or"
        " another failure that is not retryable; no usable media URL; stream TERMINATED;"
        " session STOPPED; `notify_stopped()`; `stop()`; the stream close answered or timed"
        " out; backoff attempts or window used up (RECONNECT_EXHAUSTED, also for a"
        " server that keeps dropping right after its handshakes); the first"
        " signaling socket failing with `retry_first_connect=False`",
        "close every socket",
    ),
    _I.SOCKETS_CLOSED: (
        "the last socket is closed",
        "report `SessionEnded`, the last event",
    ),
}
"""When each input happens and what the session does then; rendered into docs/reference.md."""
