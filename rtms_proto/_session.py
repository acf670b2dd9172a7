"""One RTMS stream: a signaling socket plus its media sockets, with reconnects.

:class:`Session` runs the two-phase flow (signaling handshake, then one media
handshake per socket, client ready after each), re-subscribes events after
every signaling reconnect, and owns the reconnect policy:

* a media socket lost, or Zoom's MEDIA_CONNECTION_INTERRUPTED event: rebuild
  that media socket only, while signaling stays up;
* the signaling socket lost: close the media sockets, rebuild signaling, then
  every media socket;
* ``failover(url)`` (a new ``rtms_started`` for a live stream): fresh
  connections to the new URL;
* a duplicate-signal rejection: back off on its own schedule and retry;
* fatal handshake statuses, stream TERMINATED, session STOPPED, a stop
  webhook, ``close_stream`` and ``stop``: end, exactly once, with
  :class:`~rtms_proto.events.SessionEnded` as the last event.

It is pure: time comes in as ``now`` and jitter from the ``jitter`` callable.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import events as ev
from ._auth import Credentials
from ._backoff import Backoff, BackoffPolicy, RetryPlan
from ._config import ConnectionOptions, StreamIdentity
from ._connection import Connection, ConnState, Output
from ._errors import (
    ConnectionClosed,
    DisallowedHost,
    InvalidConfig,
    LocalProtocolError,
    RemoteProtocolError,
)
from ._media import MediaConnection
from ._params import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    MediaParams,
    TranscriptParams,
    VideoParams,
)
from ._signaling import SignalingConnection
from ._urls import ServerUrl, parse_server_url
from .actions import SocketId, SocketRole
from .enums import (
    DataOption,
    EventType,
    FailureReason,
    MediaType,
    SessionState,
    StreamState,
    media_name,
)

__all__ = ["Layout", "Session", "SessionConfig", "SessionState_"]

SPLIT_TYPES: tuple[MediaType, ...] = (
    MediaType.AUDIO,
    MediaType.VIDEO,
    MediaType.DESKSHARE,
    MediaType.TRANSCRIPT,
    MediaType.CHAT,
)

# Keys of ``media_server.server_urls`` per media type.  Zoom documents only
# audio, video, transcript and all; Zoom's samples disagree on share.
URL_KEYS: dict[MediaType, tuple[str, ...]] = {
    MediaType.AUDIO: ("audio",),
    MediaType.VIDEO: ("video",),
    MediaType.DESKSHARE: ("deskshare", "sharescreen", "share"),
    MediaType.TRANSCRIPT: ("transcript",),
    MediaType.CHAT: ("chat",),
    MediaType.ALL: ("all",),
}

_ROLES = {
    MediaType.AUDIO: SocketRole.AUDIO,
    MediaType.VIDEO: SocketRole.VIDEO,
    MediaType.DESKSHARE: SocketRole.DESKSHARE,
    MediaType.TRANSCRIPT: SocketRole.TRANSCRIPT,
    MediaType.CHAT: SocketRole.CHAT,
    MediaType.ALL: SocketRole.ALL,
}


_REACTIVE = frozenset(
    {
        ev.SignalingConnected,
        ev.MediaConnected,
        ev.ConnectionFailed,
        ev.SocketClosed,
        ev.StreamStateChanged,
        ev.SessionStateChanged,
        ev.StreamCloseAcknowledged,
        ev.MediaInterrupted,
    }
)


RECONNECT_RULES: tuple[tuple[str, str], ...] = (
    ("a media socket fails or the server closes it", "reconnect that media socket only"),
    (
        "MEDIA_CONNECTION_INTERRUPTED (event 7)",
        "reconnect the named media socket, or every media socket when none is named",
    ),
    ("the signaling socket fails or closes", "close media, reconnect signaling, then all media"),
    ("no message within keepalive_timeout on a socket", "that socket fails: rules above"),
    ("status DUPLICATE_SIGNAL_REQUEST (or its reason text)", "back off (1.5, 3, 6 s) and retry"),
    ("failover(url): a new rtms_started for a live stream", "fresh connections to the new URL"),
    ("fatal status: bad signature or stream id, bad parameters, media not allowed", "end"),
    ("stream TERMINATED, session STOPPED, stop webhook, close_stream, stop", "end"),
    ("backoff attempts or window used up", "end with RECONNECT_EXHAUSTED"),
)
"""What causes a reconnect and of what scope; rendered into docs/reference.md."""


class Layout(enum.Enum):
    """How media travels: one socket per type, or one ``all`` socket."""

    SPLIT = "split"
    UNIFIED = "unified"


def _default_params(media: MediaType) -> MediaParams:
    return MediaParams(
        audio=AudioParams() if MediaType.AUDIO in media else None,
        video=VideoParams() if MediaType.VIDEO in media else None,
        deskshare=DeskshareParams() if MediaType.DESKSHARE in media else None,
        transcript=TranscriptParams() if MediaType.TRANSCRIPT in media else None,
        chat=ChatParams() if MediaType.CHAT in media else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """Everything a :class:`Session` needs; validated when built.

    ``media`` names the wanted types (not ``ALL``; pick ``layout`` for that).
    ``params`` fills in only what you set; missing sub-objects of wanted types
    get the protocol defaults (L16 16 kHz mono audio, JPG video…).
    ``events`` defaults to speaker, join and leave, plus sharing events when
    deskshare is wanted and video on/off when video is.
    """

    stream: StreamIdentity
    server_url: str
    credentials: Credentials
    media: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT
    layout: Layout = Layout.SPLIT
    params: MediaParams = field(default_factory=MediaParams)
    events: tuple[EventType | int, ...] | None = None
    buffer_data: bool | None = None
    signaling_options: ConnectionOptions = field(default_factory=ConnectionOptions)
    media_options: ConnectionOptions = field(default_factory=ConnectionOptions)
    signaling_backoff: BackoffPolicy = field(default_factory=BackoffPolicy.signaling)
    media_backoff: BackoffPolicy = field(default_factory=BackoffPolicy.media)
    duplicate_backoff: BackoffPolicy = field(default_factory=BackoffPolicy.duplicate_signal)
    close_stream_timeout: float = 10.0
    retry_first_connect: bool = True
    """False: when the very first signaling socket fails before its handshake
    (wrong host, CA, proxy), end at once with ``FATAL_ERROR`` instead of
    retrying for Zoom's window, so a misconfiguration shows immediately."""

    def __post_init__(self) -> None:
        if self.media & MediaType.ALL or not self.media:
            raise InvalidConfig(
                "media must name one or more of AUDIO, VIDEO, DESKSHARE, TRANSCRIPT, CHAT"
                " (use layout=Layout.UNIFIED for one 'all' socket)"
            )
        if int(self.media) & ~0x1F:
            raise InvalidConfig(f"media has unknown bits: {int(self.media)}")
        if not self.close_stream_timeout > 0:
            raise InvalidConfig("close_stream_timeout must be positive")
        self.effective_params.validate()
        self.signaling_url  # noqa: B018 - validates the URL against the allowlist

    @property
    def signaling_url(self) -> ServerUrl:
        return parse_server_url(self.server_url, allowed_hosts=self.signaling_options.allowed_hosts)

    @property
    def effective_params(self) -> MediaParams:
        """The parameters requested: yours, with protocol defaults for gaps."""
        base = _default_params(self.media)
        p = self.params
        return MediaParams(
            audio=(p.audio or base.audio) if base.audio else None,
            video=(p.video or base.video) if base.video else None,
            deskshare=(p.deskshare or base.deskshare) if base.deskshare else None,
            transcript=(p.transcript or base.transcript) if base.transcript else None,
            chat=(p.chat or base.chat) if base.chat else None,
        )

    @property
    def effective_events(self) -> tuple[EventType | int, ...]:
        if self.events is not None:
            return self.events
        chosen: list[EventType | int] = [
            EventType.ACTIVE_SPEAKER_CHANGE,
            EventType.PARTICIPANT_JOIN,
            EventType.PARTICIPANT_LEAVE,
        ]
        if MediaType.DESKSHARE in self.media:
            chosen += [EventType.SHARING_START, EventType.SHARING_STOP]
        if MediaType.VIDEO in self.media:
            chosen += [EventType.PARTICIPANT_VIDEO_ON, EventType.PARTICIPANT_VIDEO_OFF]
        return tuple(chosen)


class SessionState_(enum.Enum):
    """Where the session is as a whole."""

    IDLE = "idle"
    CONNECTING = "connecting"
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    CLOSING_STREAM = "closing_stream"
    ENDING = "ending"
    ENDED = "ended"


@dataclass(slots=True)
class _Retry:
    """A reconnect waiting for its time."""

    plan: RetryPlan
    scope: ev.ReconnectScope
    media_type: MediaType | None


@dataclass(slots=True)
class _Ending:
    why: ev.EndReason
    detail: str
    stop_reason: object = None
    error: RemoteProtocolError | None = None


class Session:
    """The state machine of one RTMS stream (see the module docstring).

    ``jitter`` returns a number in [0, 1) for each reconnect delay; pass
    ``random.random`` in production and a constant in tests.
    """

    def __init__(self, config: SessionConfig, *, jitter: Callable[[], float]) -> None:
        self.config = config
        self._jitter = jitter
        self._params = config.effective_params
        self._events_wanted: dict[int, None] = dict.fromkeys(
            int(e) for e in config.effective_events
        )
        self._url = config.signaling_url
        self._state = SessionState_.IDLE
        self._next_number = 1
        self._out: list[Output] = []
        self._now = 0.0
        self._conns: dict[SocketId, Connection] = {}
        self._signaling: SignalingConnection | None = None
        self._media: dict[MediaType, MediaConnection] = {}
        self._media_urls: dict[MediaType, ServerUrl] = {}
        self._sig_backoff = Backoff(config.signaling_backoff)
        self._dup_backoff = Backoff(config.duplicate_backoff)
        self._media_backoff: dict[MediaType, Backoff] = {}
        self._retries: dict[MediaType | None, _Retry] = {}
        self._reconnecting: dict[MediaType | None, int] = {}
        self._close_deadline: float | None = None
        self._ending: _Ending | None = None
        self._video_subscription: tuple[int, bool] | None = None
        self._high_water: dict[tuple[type, int | None], int] = {}
        self._closing_why = ev.EndReason.CLOSED_BY_APP
        self._has_connected = False
        self._opened_types: set[MediaType] = set()
        self._replacements: set[SocketId] = set()

    def __repr__(self) -> str:
        return f"<Session {self.config.stream.rtms_stream_id} {self._state.value}>"

    # --- outputs --------------------------------------------------------------

    @property
    def state(self) -> SessionState_:
        return self._state

    @property
    def has_connected(self) -> bool:
        """True once a signaling handshake has succeeded (it stays True)."""
        return self._has_connected

    @property
    def ended(self) -> bool:
        return self._state is SessionState_.ENDED

    def drain(self) -> list[Output]:
        """Actions and events since the last call, in causal order."""
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` must be called, or ``None``."""
        times = [d for c in self._conns.values() if (d := c.next_deadline()) is not None]
        times.extend(r.plan.at for r in self._retries.values())
        if self._close_deadline is not None:
            times.append(self._close_deadline)
        return min(times) if times else None

    # --- driver inputs ----------------------------------------------------------

    def start(self, now: float) -> None:
        """Open the signaling socket."""
        if self._state is not SessionState_.IDLE:
            raise LocalProtocolError(f"session already started ({self._state.value})")
        self._state = SessionState_.CONNECTING
        self._open_signaling(now)
        self._pump(now)

    def socket_opened(self, sock: SocketId, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            self._now = now
            conn.socket_opened(now)
            self._pump(now)

    def receive_data(
        self, sock: SocketId, data: bytes | bytearray | memoryview, now: float
    ) -> None:
        """Bytes read from ``sock`` (a copy is taken when they are not ``bytes``)."""
        conn = self._conn(sock)
        if conn is not None:
            self._now = now
            conn.receive_data(data, now)
            self._pump(now)

    def receive_eof(self, sock: SocketId, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            self._now = now
            conn.receive_eof(now)
            self._pump(now)

    def socket_failed(self, sock: SocketId, detail: str, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            self._now = now
            conn.socket_failed(now, detail)
            self._pump(now)

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed; early calls do nothing."""
        for conn in list(self._conns.values()):
            conn.handle_timer(now)
        self._pump(now)
        if self._ending is None:
            for key, retry in sorted(self._retries.items(), key=lambda kv: kv[1].plan.at):
                if retry.plan.at <= now and self._retries.get(key) is retry:
                    del self._retries[key]
                    self._begin_retry(retry, now)
            if self._close_deadline is not None and now >= self._close_deadline:
                self._close_deadline = None
                self._end(
                    now,
                    ev.EndReason.CLOSED_BY_APP,
                    f"no stream close answer within {self.config.close_stream_timeout:g} s",
                )
        self._pump(now)

    # --- commands --------------------------------------------------------------

    def subscribe_events(
        self, event_types: Iterable[EventType | int], now: float, subscribe: bool = True
    ) -> None:
        """(Un)subscribe in-meeting events; remembered across signaling reconnects."""
        types = [int(t) for t in event_types]
        sig = self._open_signaling_or_raise()
        sig.subscribe_events(types, subscribe)
        for t in types:
            if subscribe:
                self._events_wanted[t] = None
            else:
                self._events_wanted.pop(t, None)
        self._pump(now)

    def subscribe_video(self, user_id: int, now: float, subscribe: bool = True) -> None:
        """Pick one participant's camera (needs video ``data_opt`` 4)."""
        video = self._params.video
        if video is None or video.data_opt != DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM:
            raise InvalidConfig(
                "video subscription needs video with data_opt VIDEO_SINGLE_INDIVIDUAL_STREAM"
            )
        self._open_signaling_or_raise().subscribe_video(user_id, subscribe)
        self._video_subscription = (user_id, subscribe)
        self._pump(now)

    def request_stream_state(self, now: float) -> None:
        self._open_signaling_or_raise().request_stream_state()
        self._pump(now)

    def request_session_state(self, rtms_session_id: str, now: float) -> None:
        self._open_signaling_or_raise().request_session_state(rtms_session_id)
        self._pump(now)

    def close_stream(self, now: float) -> None:
        """Ask Zoom to end the stream (msg 21) and end when it answers or times out."""
        sig = self._open_signaling_or_raise()
        sig.request_stream_close()
        self._state = SessionState_.CLOSING_STREAM
        self._retries.clear()
        self._close_deadline = now + self.config.close_stream_timeout
        self._pump(now)

    def stop(self, now: float) -> None:
        """End locally: close every socket (Zoom will see the sockets go)."""
        self._require_not_ended()
        self._end(now, ev.EndReason.STOPPED_LOCALLY, "stopped by the application")
        self._pump(now)

    def notify_stopped(self, now: float, stop_reason: object = None) -> None:
        """The ``*.rtms_stopped`` webhook for this stream arrived: end."""
        self._require_not_ended()
        self._end(
            now, ev.EndReason.STREAM_STOPPED, "stop webhook received", stop_reason=stop_reason
        )
        self._pump(now)

    def failover(self, new_signaling_url: str, now: float) -> None:
        """A new ``rtms_started`` for this live stream: reconnect to the new server."""
        self._require_not_ended()
        url = parse_server_url(
            new_signaling_url, allowed_hosts=self.config.signaling_options.allowed_hosts
        )
        if self._state is SessionState_.CLOSING_STREAM or self._ending is not None:
            raise ConnectionClosed("the session is closing")
        self._url = url
        self._teardown(now)
        self._retries.clear()
        self._sig_backoff.reset()
        self._dup_backoff.reset()
        self._state = SessionState_.RECONNECTING
        self._reconnecting[None] = 1
        self._out.append(
            ev.ReconnectStarted(scope=ev.ReconnectScope.SIGNALING, media_type=None, attempt=1)
        )
        self._open_signaling(now)
        self._pump(now)

    # --- internals: connections ---------------------------------------------------

    def _new_sock(self, role: SocketRole) -> SocketId:
        sock = SocketId(self._next_number, role)
        self._next_number += 1
        return sock

    def _conn(self, sock: SocketId) -> Connection | None:
        conn = self._conns.get(sock)
        if conn is None and sock.number >= self._next_number:
            raise LocalProtocolError(f"unknown socket {sock}")
        return conn

    def _open_signaling_or_raise(self) -> SignalingConnection:
        self._require_not_ended()
        sig = self._signaling
        if sig is None or sig.state is not ConnState.OPEN or self._ending is not None:
            raise ConnectionClosed("the signaling socket is not open")
        if self._state is SessionState_.CLOSING_STREAM:
            raise ConnectionClosed("the stream is closing")
        return sig

    def _require_not_ended(self) -> None:
        if self._state is SessionState_.ENDED or self._ending is not None:
            raise ConnectionClosed("the session has ended")
        if self._state is SessionState_.IDLE:
            raise LocalProtocolError("the session has not started")

    def _open_signaling(self, now: float) -> None:
        conn = SignalingConnection(
            sock=self._new_sock(SocketRole.SIGNALING),
            url=self._url,
            stream=self.config.stream,
            credentials=self.config.credentials,
            options=self.config.signaling_options,
            buffer_data=self.config.buffer_data,
        )
        self._signaling = conn
        self._adopt(conn)
        conn.start(now)

    def _open_media(self, media_type: MediaType, now: float) -> None:
        conn = MediaConnection(
            sock=self._new_sock(_ROLES[media_type]),
            url=self._media_urls[media_type],
            stream=self.config.stream,
            credentials=self.config.credentials,
            media_type=media_type,
            params=self._params,
            options=self.config.media_options,
        )
        self._media[media_type] = conn
        self._adopt(conn)
        if media_type in self._opened_types:
            self._replacements.add(conn.sock)
        self._opened_types.add(media_type)
        conn.start(now)

    def _adopt(self, conn: Connection) -> None:
        """Track a new socket and react to its output message by message."""
        self._conns[conn.sock] = conn
        conn._listener = self._progress

    def _progress(self, conn: Connection) -> None:
        """Called by ``conn`` after each WebSocket message that gave output.

        The usual case, a media packet, needs no reaction: only this socket
        has output (every other one was drained by the last pump), so its
        batch is queued and nothing else is looked at.
        """
        if self._take(conn, self._now) or conn.is_terminal:
            self._pump(self._now)

    def _teardown(self, now: float) -> None:
        """Close every socket in order (media first) and forget them as current."""
        for conn in [*self._media.values(), self._signaling]:
            if conn is not None and conn.state not in (
                ConnState.CLOSING,
                ConnState.CLOSED,
                ConnState.FAILED,
            ):
                conn.close(now)
        self._media.clear()
        self._signaling = None

    def _pump(self, now: float) -> None:
        """Move every connection's output to the session queue, then react to it.

        A connection's whole batch is queued before the session reacts, so a
        failure event and its close actions precede the reconnect they cause.
        """
        progress = True
        while progress:
            progress = False
            for conn in list(self._conns.values()):
                if conn._out:
                    progress = True
                    self._take(conn, now)
                if conn.is_terminal:
                    del self._conns[conn.sock]
                    self._replacements.discard(conn.sock)
        self._maybe_finish()

    def _take(self, conn: Connection, now: float) -> bool:
        """Queue one connection's output, then react to it; True if it reacted."""
        reactions: list[Output] = []
        replacements = self._replacements  # usually empty: skip hashing the SocketId
        replacement = bool(replacements) and conn.sock in replacements
        out = self._out
        for item in conn.drain():
            tp = type(item)
            if tp is ev.AudioReceived or tp is ev.VideoReceived or tp is ev.DeskshareReceived:
                if self._is_replay(item, replacement):
                    continue
            elif tp in _REACTIVE:
                reactions.append(item)
            out.append(item)
        for item in reactions:
            if self._ending is None:
                self._react(conn, item, now)
        return bool(reactions)

    def _react(self, conn: Connection, item: Output, now: float) -> None:
        if isinstance(item, ev.SignalingConnected):
            self._on_signaling_connected(conn, item, now)
        elif isinstance(item, ev.MediaConnected):
            self._on_media_connected(conn, now)
        elif isinstance(item, ev.ConnectionFailed):
            self._on_lost(conn, item.error.reason, item.error, now)
        elif isinstance(item, ev.SocketClosed):
            if item.by_peer:
                error = RemoteProtocolError(
                    FailureReason.CLOSED_BY_SERVER,
                    f"the server closed {conn.sock} (code {item.code})",
                )
                self._on_lost(conn, FailureReason.CLOSED_BY_SERVER, error, now)
        elif isinstance(item, ev.StreamStateChanged):
            if item.state == StreamState.TERMINATED:
                self._end(
                    now, ev.EndReason.STREAM_TERMINATED, "the stream was terminated", item.reason
                )
            elif item.state == StreamState.TERMINATING:
                self._retries.clear()
                self._state = SessionState_.CLOSING_STREAM
                self._closing_why = ev.EndReason.STREAM_TERMINATED
        elif isinstance(item, ev.SessionStateChanged):
            if item.state == SessionState.STOPPED:
                self._end(
                    now, ev.EndReason.SESSION_STOPPED, "the session stopped", item.stop_reason
                )
        elif isinstance(item, ev.StreamCloseAcknowledged):
            self._end(
                now, ev.EndReason.CLOSED_BY_APP, f"stream close answered: {item.reason or 'OK'}"
            )
        else:
            assert isinstance(item, ev.MediaInterrupted)
            self._on_media_interrupted(item, now)

    def _is_replay(self, item: Output, replacement: bool) -> bool:
        """On a socket that replaced a lost one, skip packets already delivered.

        Zoom replays buffered audio after a reconnect; a packet whose timestamp
        is not newer than the last one delivered for that user and kind is a
        repeat.  First sockets are never filtered, so a server that reorders
        packets on one socket loses nothing.
        """
        assert isinstance(item, (ev.AudioReceived, ev.VideoReceived, ev.DeskshareReceived))
        ts = item.timestamp
        if ts is None:
            return False
        key = (type(item), item.user_id)
        last = self._high_water.get(key)
        if last is not None and ts <= last:
            return replacement
        self._high_water[key] = ts
        return False

    def _on_signaling_connected(
        self, conn: Connection, item: ev.SignalingConnected, now: float
    ) -> None:
        # Only the current signaling socket can finish a handshake: replaced
        # sockets are closing, and a closing socket reports no handshake.
        assert conn is self._signaling
        self._has_connected = True
        self._sig_backoff.reset()
        self._dup_backoff.reset()
        self._state = SessionState_.ACTIVE
        attempts = self._reconnecting.pop(None, None)
        if attempts is not None:
            self._out.append(
                ev.ReconnectCompleted(
                    scope=ev.ReconnectScope.SIGNALING, media_type=None, attempts=attempts
                )
            )
        if self._events_wanted:
            conn.subscribe_events(list(self._events_wanted))
        if self._video_subscription is not None and self._video_subscription[1]:
            conn.subscribe_video(self._video_subscription[0], True)
        self._plan_media(item, now)

    def _plan_media(self, item: ev.SignalingConnected, now: float) -> None:
        wanted = (
            (MediaType.ALL,)
            if self.config.layout is Layout.UNIFIED
            else tuple(t for t in SPLIT_TYPES if t in self.config.media)
        )
        self._media_urls = {}
        allowed = self.config.media_options.allowed_hosts
        for media_type in wanted:
            raw = next(
                (item.media_urls[k] for k in URL_KEYS[media_type] if k in item.media_urls), None
            )
            if raw is None:
                self._out.append(
                    ev.MediaUnavailable(
                        media_type=media_type,
                        detail=f"the server offered no URL for {media_name(media_type)}"
                        f" (offered: {', '.join(sorted(item.media_urls)) or 'none'})",
                    )
                )
                continue
            try:
                self._media_urls[media_type] = parse_server_url(raw, allowed_hosts=allowed)
            except InvalidConfig as exc:
                kind = "refused host" if isinstance(exc, DisallowedHost) else "bad URL"
                self._out.append(
                    ev.MediaUnavailable(media_type=media_type, detail=f"{kind}: {exc}")
                )
        if not self._media_urls:
            self._end(
                now,
                ev.EndReason.FATAL_ERROR,
                "none of the requested media types can be opened",
                error=RemoteProtocolError(
                    FailureReason.MEDIA_NOT_AVAILABLE, "no usable media URL in the handshake reply"
                ),
            )
            return
        for media_type in self._media_urls:
            self._open_media(media_type, now)

    def _on_media_connected(self, conn: Connection, now: float) -> None:
        assert isinstance(conn, MediaConnection)
        assert self._media.get(conn.media_type) is conn
        backoff = self._media_backoff.get(conn.media_type)
        if backoff is not None:
            backoff.reset()
        attempts = self._reconnecting.pop(conn.media_type, None)
        if attempts is not None:
            self._out.append(
                ev.ReconnectCompleted(
                    scope=ev.ReconnectScope.MEDIA, media_type=conn.media_type, attempts=attempts
                )
            )
        # Media sockets live only while signaling is open (losing signaling
        # closes them), so client ready always has its socket.
        sig = self._signaling
        assert sig is not None
        sig.send_client_ready()

    def _on_lost(
        self, conn: Connection, reason: FailureReason, error: RemoteProtocolError, now: float
    ) -> None:
        if self._state is SessionState_.CLOSING_STREAM:
            self._end(now, self._closing_why, "the stream closed", error=error)
            return
        if not reason.retryable or (
            conn is self._signaling
            and not self._has_connected
            and not self.config.retry_first_connect
        ):
            self._end(now, ev.EndReason.FATAL_ERROR, str(error), error=error)
            return
        if conn is self._signaling:
            self._teardown(now)
            # Media comes back with signaling: drop media retries in flight.
            self._retries.clear()
            self._reconnecting = {k: v for k, v in self._reconnecting.items() if k is None}
            backoff = (
                self._dup_backoff if reason is FailureReason.DUPLICATE_SIGNAL else self._sig_backoff
            )
            self._state = SessionState_.RECONNECTING
            self._schedule(
                backoff, ev.ReconnectScope.SIGNALING, None, reason=reason, error=error, now=now
            )
        elif isinstance(conn, MediaConnection) and self._media.get(conn.media_type) is conn:
            del self._media[conn.media_type]
            self._schedule_media(conn.media_type, reason, error, now)
        # Otherwise the socket was already replaced (it failed in the same
        # step as signaling, whose reconnect rebuilds it): nothing to do.

    def _schedule_media(
        self, media_type: MediaType, reason: FailureReason, error: RemoteProtocolError, now: float
    ) -> None:
        backoff = self._media_backoff.get(media_type)
        if backoff is None:
            backoff = self._media_backoff[media_type] = Backoff(self.config.media_backoff)
        self._schedule(
            backoff, ev.ReconnectScope.MEDIA, media_type, reason=reason, error=error, now=now
        )

    def _schedule(
        self,
        backoff: Backoff,
        scope: ev.ReconnectScope,
        media_type: MediaType | None,
        *,
        reason: FailureReason,
        error: RemoteProtocolError,
        now: float,
    ) -> None:
        plan = backoff.next_attempt(now, self._jitter())
        if plan is None:
            self._end(
                now,
                ev.EndReason.RECONNECT_EXHAUSTED,
                f"gave up reconnecting {scope.value}"
                + (f" ({media_name(media_type)})" if media_type is not None else "")
                + f" after {backoff.attempts} attempts: {error}",
                error=error,
            )
            return
        self._retries[media_type] = _Retry(plan=plan, scope=scope, media_type=media_type)
        self._out.append(
            ev.ReconnectScheduled(
                scope=scope,
                media_type=media_type,
                attempt=plan.attempt,
                delay=plan.delay,
                reason=reason,
            )
        )

    def _begin_retry(self, retry: _Retry, now: float) -> None:
        self._reconnecting[retry.media_type] = retry.plan.attempt
        self._out.append(
            ev.ReconnectStarted(
                scope=retry.scope, media_type=retry.media_type, attempt=retry.plan.attempt
            )
        )
        if retry.media_type is None:
            self._open_signaling(now)
        else:
            # Media retries exist only while signaling is open: losing
            # signaling, ending and failover all clear them.
            self._open_media(retry.media_type, now)

    def _on_media_interrupted(self, item: ev.MediaInterrupted, now: float) -> None:
        """Zoom lost one of our media sockets; its event may not say which.

        A ``media_type`` in the event names the socket: rebuild it when it is
        still up here (when it is already down its own reconnect covers it).
        Without a name, when every media socket still looks open to us, all of
        them are rebuilt (signaling stays up); when one is already down, that
        one is the lost one and its own reconnect covers it.
        """
        named = item.raw.get("media_type")
        if isinstance(named, int) and not isinstance(named, bool):
            targets = [t for t in self._media if int(t) == named]
        elif all(c.state is ConnState.OPEN for c in self._media.values()):
            targets = list(self._media)
        else:
            targets = []
        error = RemoteProtocolError(
            FailureReason.CONNECTION_LOST, "Zoom reported the media connection interrupted"
        )
        for media_type in targets:
            conn = self._media.pop(media_type)
            conn.close(now)
            self._schedule_media(media_type, FailureReason.CONNECTION_LOST, error, now)

    # --- internals: ending ------------------------------------------------------

    def _end(
        self,
        now: float,
        why: ev.EndReason,
        detail: str,
        stop_reason: object = None,
        error: RemoteProtocolError | None = None,
    ) -> None:
        assert self._ending is None
        self._ending = _Ending(why=why, detail=detail, stop_reason=stop_reason, error=error)
        self._state = SessionState_.ENDING
        self._retries.clear()
        self._close_deadline = None
        self._teardown(now)

    def _maybe_finish(self) -> None:
        ending = self._ending
        if ending is None or self._state is SessionState_.ENDED:
            return
        if any(not c.is_terminal for c in self._conns.values()):
            return
        self._state = SessionState_.ENDED
        self._out.append(
            ev.SessionEnded(
                why=ending.why,
                detail=ending.detail,
                stop_reason=ending.stop_reason,  # type: ignore[arg-type]
                error=ending.error,
            )
        )
