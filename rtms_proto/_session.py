"""One RTMS stream: a signaling socket plus its media sockets, with reconnects.

:class:`Session` runs the two-phase flow (signaling handshake, then one media
handshake per socket, client ready after each), re-subscribes events after
every signaling reconnect, and owns the reconnect policy:

* a media socket lost, or Zoom's MEDIA_CONNECTION_INTERRUPTED event: rebuild
  that media socket only, while signaling stays up (an event naming no socket
  waits ``interruption_grace`` for the lost one to show itself);
* the signaling socket lost: close the media sockets, rebuild signaling, then
  every media socket;
* ``failover(url)`` (a new ``rtms_started`` for a live stream): fresh
  connections to the new URL;
* a duplicate-signal rejection: back off on its own schedule and retry;
* a reconnect's backoff episode (window, attempts) ends only when the new
  socket proves itself (``BackoffPolicy.settle``), so a server that drops
  right after each handshake ends the session instead of being retried forever;
* fatal handshake statuses, stream TERMINATED, session STOPPED, a stop
  webhook, ``close_stream`` and ``stop``: end, exactly once, with
  :class:`~rtms_proto.events.SessionEnded` as the last event.

Its phase changes are looked up in :data:`~rtms_proto._phases.PHASES`, which
docs/reference.md renders.  Data flows one way: the session calls its sockets
and pulls their outputs (``receive_batches``, ``drain``); they never call it.
It is pure: time comes in as ``now`` and jitter from the ``jitter`` callable.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import assert_never, cast, get_args

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
from ._phases import PHASES, SessionInput, SessionPhase
from ._signaling import SignalingConnection
from ._urls import ServerUrl, parse_server_url
from .actions import SocketId, SocketRole
from .enums import (
    DataOption,
    EventType,
    FailureReason,
    MediaType,
    SessionState,
    StopReason,
    StreamState,
    media_name,
)

StopReasonValue = StopReason | int | str | None
"""A stop reason as Zoom sent it: a known code, an unknown number, or a name."""

__all__ = ["Layout", "Session", "SessionConfig", "SessionPhase"]

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
    interruption_grace: float = 2.0
    """Seconds to wait, after a MEDIA_CONNECTION_INTERRUPTED (event 7) naming no
    socket, for the lost media socket to show itself (its end, reset or
    failure) before rebuilding anything: only that one is then rebuilt, so
    healthy sockets keep flowing (no replay, no duplicates).  If none shows
    itself, the sockets silent during the grace are rebuilt, or all of them
    when none or every one was silent.  2 s: a lost TCP connection usually
    ends within it, and Zoom keeps an interrupted stream for 65 s."""
    retry_first_connect: bool = True
    """False: when the very first signaling socket cannot be opened
    (``CONNECT_FAILED``: DNS, TCP, TLS or proxy), end at once with
    ``FATAL_ERROR`` instead of retrying for Zoom's window, so a
    misconfiguration shows immediately.  Other failures are retried as usual."""

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
        if not (math.isfinite(self.interruption_grace) and self.interruption_grace >= 0):
            raise InvalidConfig("interruption_grace must be a finite number >= 0")
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


_Reactive = (
    ev.SignalingConnected
    | ev.MediaConnected
    | ev.ConnectionFailed
    | ev.SocketClosed
    | ev.StreamStateChanged
    | ev.SessionStateChanged
    | ev.StreamCloseAcknowledged
    | ev.MediaInterrupted
)
"""The events the session acts on; every other output only passes through."""

_REACTIVE = frozenset(get_args(_Reactive))


@dataclass(slots=True, eq=False, kw_only=True)
class _Scope:
    """What keeping one socket up takes: its backoff and its reconnect.

    ``retry`` is a reconnect waiting for its time (``retry_order`` breaks ties
    between retries due at the same time: the first planned goes first);
    ``attempt`` is the reconnect in progress, reported when it completes.
    ``proof`` is a reconnected socket on probation (its backoff episode goes on
    until it proves itself); ``flaps`` counts the handshakes of this episode
    that did not.
    """

    kind: ev.ReconnectScope
    media_type: MediaType | None
    backoff: Backoff
    retry: RetryPlan | None = None
    retry_order: int = 0
    attempt: int | None = None
    proof: _Proof | None = None
    flaps: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class _Proof:
    """A socket that completed its handshake during a backoff episode.

    It proves itself by staying open until ``settle_at`` (``None`` once that
    time has passed) and receiving a message after its handshake (more than
    ``mark`` messages); only then is the episode over.
    """

    conn: Connection
    settle_at: float | None
    mark: int


@dataclass(slots=True, eq=False, kw_only=True)
class _SignalingScope(_Scope):
    """The signaling socket; after a duplicate-signal rejection it backs off on ``duplicate``."""

    duplicate: Backoff
    conn: SignalingConnection | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class _MediaScope(_Scope):
    """The socket of one media type (``ALL`` in the unified layout).

    ``url`` is what the last signaling handshake offered (``None``: nothing
    usable); ``opened`` tells a replacement socket from the first one.
    """

    conn: MediaConnection | None = None
    url: ServerUrl | None = None
    opened: bool = False


_AnyScope = _SignalingScope | _MediaScope


@dataclass(slots=True)
class _Grace:
    """An unnamed media interruption being waited out until ``until``.

    ``marks`` holds each media socket's message count at the event, to tell
    the sockets that were silent during the grace.
    """

    until: float
    marks: dict[SocketId, int]


@dataclass(slots=True)
class _Ending:
    why: ev.EndReason
    detail: str
    stop_reason: StopReasonValue = None
    error: RemoteProtocolError | None = None


class Session:
    """The state machine of one RTMS stream (see the module docstring).

    ``jitter`` returns a number in [0, 1) for each reconnect delay; pass
    ``random.random`` in production and a constant in tests.

    Every input and command takes ``now`` (monotonic seconds) as its last,
    keyword-only argument.  What it causes is queued, in causal order, for
    :meth:`drain`.
    """

    def __init__(self, config: SessionConfig, *, jitter: Callable[[], float]) -> None:
        self.config = config
        self._jitter = jitter
        self._params = config.effective_params
        self._events_wanted: dict[int, None] = dict.fromkeys(
            int(e) for e in config.effective_events
        )
        self._url = config.signaling_url
        self._phase = SessionPhase.IDLE
        self._next_number = 1
        self._out: list[Output] = []
        self._conns: dict[SocketId, Connection] = {}
        """Every socket not yet over, current or replaced (still closing), oldest first."""
        self._by_number: dict[int, Connection] = {}
        """The same connections by socket number: the per-message lookup."""
        self._signaling = _SignalingScope(
            kind=ev.ReconnectScope.SIGNALING,
            media_type=None,
            backoff=Backoff(config.signaling_backoff),
            duplicate=Backoff(config.duplicate_backoff),
        )
        wanted = (
            (MediaType.ALL,)
            if config.layout is Layout.UNIFIED
            else tuple(t for t in SPLIT_TYPES if t in config.media)
        )
        self._media = {
            t: _MediaScope(
                kind=ev.ReconnectScope.MEDIA, media_type=t, backoff=Backoff(config.media_backoff)
            )
            for t in wanted
        }
        self._all_scopes: tuple[_AnyScope, ...] = (self._signaling, *self._media.values())
        self._retries_planned = 0
        self._close_deadline: float | None = None
        self._ending: _Ending | None = None
        self._video_subscription: tuple[int, bool] | None = None
        self._high_water: dict[tuple[type, int | None], int] = {}
        self._closing_why = ev.EndReason.CLOSED_BY_APP
        self._has_connected = False
        self._replacements: set[SocketId] = set()
        self._proofs = 0
        """How many scopes have a socket on probation (skips the check when 0)."""
        self._grace: _Grace | None = None

    def __repr__(self) -> str:
        return f"<Session {self.config.stream.rtms_stream_id} {self._phase.value}>"

    # --- outputs --------------------------------------------------------------

    @property
    def state(self) -> SessionPhase:
        """The session's phase (:data:`~rtms_proto._phases.PHASES` has every change)."""
        return self._phase

    @property
    def has_connected(self) -> bool:
        """True once a signaling handshake has succeeded (it stays True)."""
        return self._has_connected

    @property
    def ended(self) -> bool:
        return self._phase is SessionPhase.ENDED

    def drain(self) -> list[Output]:
        """Actions and events since the last call, in causal order."""
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` must be called, or ``None``."""
        # Asked after every input: no list, no generator, just the smallest time.
        best = self._close_deadline
        grace = self._grace
        if grace is not None and (best is None or grace.until < best):
            best = grace.until
        for conn in self._conns.values():
            at = conn._deadline  # its next_deadline(), without the call
            if at is not None and (best is None or at < best):
                best = at
        proofs = self._proofs  # how many scopes have a proof: most often none
        for scope in self._all_scopes:
            retry = scope.retry
            if retry is not None and (best is None or retry.at < best):
                best = retry.at
            if proofs:
                proof = scope.proof
                settle_at = None if proof is None else proof.settle_at
                if settle_at is not None and (best is None or settle_at < best):
                    best = settle_at
        return best

    # --- driver inputs ----------------------------------------------------------

    def start(self, *, now: float) -> None:
        """Open the signaling socket."""
        if self._phase is not SessionPhase.IDLE:
            raise LocalProtocolError(f"session already started ({self._phase.value})")
        self._move(SessionInput.START)
        self._open_signaling(now)
        self._settle(now)

    def socket_opened(self, sock: SocketId, *, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            conn.socket_opened(now=now)
            self._settle(now)

    def receive_data(
        self, sock: SocketId, data: bytes | bytearray | memoryview, *, now: float
    ) -> None:
        """Bytes read from ``sock`` (a copy is taken when they are not ``bytes``).

        The socket hands its outputs over message by message and the session
        reacts to each batch before the next message is read, so what it does
        cannot depend on how the bytes were cut.  The usual read, a few media
        packets, needs no reaction: the socket hands them over as one batch
        (``receive_run``), which is queued and nothing else is looked at.
        """
        conn = self._conn(sock)
        if conn is not None:
            run = conn.receive_run(data, now=now)  # the usual read: a few media packets
            if run is None:
                self._read_batches(conn, data, now)
            else:
                batch, rest = run
                if self._queue(conn, batch, now) or conn.is_terminal:
                    self._settle(now)
                if rest:  # buffered in the socket, for the general reader
                    self._read_batches(conn, b"", now)
            if self._proofs:
                self._check_proofs(now)

    def _read_batches(
        self, conn: Connection, data: bytes | bytearray | memoryview, now: float
    ) -> None:
        """The general read: react to each message's batch before the next is read."""
        for batch in conn.receive_batches(data, now=now):
            if self._queue(conn, batch, now) or conn.is_terminal:
                self._settle(now)

    def receive_eof(self, sock: SocketId, *, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            conn.receive_eof(now=now)
            self._settle(now)

    def socket_failed(self, sock: SocketId, detail: str, *, now: float) -> None:
        conn = self._conn(sock)
        if conn is not None:
            conn.socket_failed(detail, now=now)
            self._settle(now)

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline that has passed; early calls do nothing."""
        for conn in list(self._conns.values()):
            conn.handle_timer(now=now)
        self._settle(now)
        if self._proofs:
            self._check_proofs(now)
        if self._ending is None:
            if self._grace is not None and now >= self._grace.until:
                self._end_grace(now)
            due = [
                (plan, scope)
                for scope in self._scopes()
                if (plan := scope.retry) is not None and plan.at <= now
            ]
            due.sort(key=lambda d: (d[0].at, d[1].retry_order))
            for plan, scope in due:
                scope.retry = None
                self._begin_retry(scope, plan, now)
            if self._close_deadline is not None and now >= self._close_deadline:
                self._close_deadline = None
                self._end(
                    now,
                    ev.EndReason.CLOSED_BY_APP,
                    f"no stream close answer within {self.config.close_stream_timeout:g} s",
                )
        self._settle(now)

    # --- commands --------------------------------------------------------------

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True, *, now: float
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
        self._settle(now)

    def subscribe_video(self, user_id: int, subscribe: bool = True, *, now: float) -> None:
        """Pick one participant's camera (needs video ``data_opt`` 4)."""
        video = self._params.video
        if video is None or video.data_opt != DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM:
            raise InvalidConfig(
                "video subscription needs video with data_opt VIDEO_SINGLE_INDIVIDUAL_STREAM"
            )
        self._open_signaling_or_raise().subscribe_video(user_id, subscribe)
        self._video_subscription = (user_id, subscribe)
        self._settle(now)

    def request_stream_state(self, *, now: float) -> None:
        self._open_signaling_or_raise().request_stream_state()
        self._settle(now)

    def request_session_state(self, rtms_session_id: str, *, now: float) -> None:
        self._open_signaling_or_raise().request_session_state(rtms_session_id)
        self._settle(now)

    def close_stream(self, *, now: float) -> None:
        """Ask Zoom to end the stream (msg 21) and end when it answers or times out."""
        sig = self._open_signaling_or_raise()
        sig.request_stream_close()
        self._move(SessionInput.CLOSE_STREAM)
        self._drop_retries()
        self._close_deadline = now + self.config.close_stream_timeout
        self._settle(now)

    def stop(self, *, now: float) -> None:
        """End locally: close every socket (Zoom will see the sockets go)."""
        self._require_not_ended()
        self._end(now, ev.EndReason.STOPPED_LOCALLY, "stopped by the application")
        self._settle(now)

    def notify_stopped(self, stop_reason: StopReasonValue = None, *, now: float) -> None:
        """The ``*.rtms_stopped`` webhook for this stream arrived: end."""
        self._require_not_ended()
        self._end(
            now, ev.EndReason.STREAM_STOPPED, "stop webhook received", stop_reason=stop_reason
        )
        self._settle(now)

    def failover(self, new_signaling_url: str, *, now: float) -> None:
        """A new ``rtms_started`` for this live stream: reconnect to the new server."""
        self._require_not_ended()
        url = parse_server_url(
            new_signaling_url, allowed_hosts=self.config.signaling_options.allowed_hosts
        )
        if self._phase is SessionPhase.CLOSING_STREAM or self._ending is not None:
            raise ConnectionClosed("the session is closing")
        self._url = url
        self._teardown(now)
        self._drop_retries()
        sig = self._signaling
        self._forgive(sig)
        sig.duplicate.reset()
        self._move(SessionInput.FAILOVER)
        sig.attempt = 1
        self._out.append(
            ev.ReconnectStarted(scope=ev.ReconnectScope.SIGNALING, media_type=None, attempt=1)
        )
        self._open_signaling(now)
        self._settle(now)

    # --- internals: phases and scopes ----------------------------------------------

    def _move(self, happened: SessionInput) -> None:
        """Change phase by the table; a pair not in it is a bug (KeyError)."""
        self._phase = PHASES[self._phase, happened]

    def _scopes(self) -> list[_AnyScope]:
        return [self._signaling, *self._media.values()]

    def _current_media(self) -> list[tuple[_MediaScope, MediaConnection]]:
        """The open media sockets with their scopes, oldest first."""
        current = [(s, s.conn) for s in self._media.values() if s.conn is not None]
        current.sort(key=lambda sc: sc[1].sock.number)
        return current

    def _drop_retries(self) -> None:
        """Forget planned reconnects (and a media interruption being waited out)."""
        self._grace = None
        for scope in self._scopes():
            scope.retry = None

    # --- internals: connections ---------------------------------------------------

    def _new_sock(self, role: SocketRole) -> SocketId:
        sock = SocketId(self._next_number, role)
        self._next_number += 1
        return sock

    def _conn(self, sock: SocketId) -> Connection | None:
        # By number first (an int hashes in C; a SocketId's hash runs Python code),
        # and a driver passes the very SocketId the session gave it.
        conn = self._by_number.get(sock.number)
        if conn is not None and (conn.sock is sock or conn.sock == sock):
            return conn
        if sock.number >= self._next_number:
            raise LocalProtocolError(f"unknown socket {sock}")
        return None  # over and forgotten (or a number with another role)

    def _open_signaling_or_raise(self) -> SignalingConnection:
        self._require_not_ended()
        sig = self._signaling.conn
        if sig is None or sig.state is not ConnState.OPEN or self._ending is not None:
            raise ConnectionClosed("the signaling socket is not open")
        if self._phase is SessionPhase.CLOSING_STREAM:
            raise ConnectionClosed("the stream is closing")
        return sig

    def _require_not_ended(self) -> None:
        if self._phase is SessionPhase.ENDED or self._ending is not None:
            raise ConnectionClosed("the session has ended")
        if self._phase is SessionPhase.IDLE:
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
        self._signaling.conn = conn
        self._conns[conn.sock] = conn
        self._by_number[conn.sock.number] = conn
        conn.start(now=now)

    def _open_media(self, scope: _MediaScope, now: float) -> None:
        assert scope.media_type is not None and scope.url is not None
        conn = MediaConnection(
            sock=self._new_sock(_ROLES[scope.media_type]),
            url=scope.url,
            stream=self.config.stream,
            credentials=self.config.credentials,
            media_type=scope.media_type,
            params=self._params,
            options=self.config.media_options,
        )
        scope.conn = conn
        self._conns[conn.sock] = conn
        self._by_number[conn.sock.number] = conn
        if scope.opened:
            self._replacements.add(conn.sock)
        scope.opened = True
        conn.start(now=now)

    def _teardown(self, now: float) -> None:
        """Close every socket in order (media first) and forget them as current."""
        sig = self._signaling
        conns: list[Connection] = [conn for _, conn in self._current_media()]
        if sig.conn is not None:
            conns.append(sig.conn)
        for conn in conns:
            if conn.state not in (ConnState.CLOSING, ConnState.CLOSED, ConnState.FAILED):
                conn.close(now=now)
        for scope in self._media.values():
            scope.conn = None
        sig.conn = None

    def _settle(self, now: float) -> None:
        """Take what the session's own commands left on its sockets, and react, until quiet.

        The session pulls each socket's outputs with ``drain`` (in the order
        the sockets were opened) and reacts to each socket's whole batch after
        queueing it, so a failure event and its close actions precede the
        reconnect they cause.  Sockets that are over are forgotten.
        """
        progress = True
        while progress:
            progress = False
            for conn in list(self._conns.values()):
                batch = conn.drain()
                if batch:
                    progress = True
                    self._queue(conn, batch, now)
                if conn.is_terminal:
                    del self._conns[conn.sock]
                    del self._by_number[conn.sock.number]
                    self._replacements.discard(conn.sock)
        self._maybe_finish()

    def _queue(self, conn: Connection, batch: list[Output], now: float) -> bool:
        """Queue one batch of ``conn``'s outputs, then react to it; True if it had reactions.

        Zoom replays buffered audio after a reconnect: on a socket that replaced
        a lost one, a media packet whose timestamp is not newer than the last one
        delivered for that user and kind is a repeat, and is skipped.  First
        sockets are never filtered, so a server that reorders packets on one
        socket loses nothing.
        """
        reactions: list[_Reactive] | None = None  # usually none: no list per media packet
        replacements = self._replacements  # usually empty: skip hashing the SocketId
        replacement = bool(replacements) and conn.sock in replacements
        out = self._out
        high_water = self._high_water
        for item in batch:
            tp = type(item)
            if tp is ev.AudioReceived or tp is ev.VideoReceived or tp is ev.DeskshareReceived:
                # A replay? (see above; inline: this runs for every media packet)
                ts = item.timestamp  # type: ignore[union-attr]
                if ts is not None:
                    key = (tp, item.user_id)  # type: ignore[union-attr]
                    last = high_water.get(key)
                    if last is None or ts > last:
                        high_water[key] = ts
                    elif replacement:
                        continue
            elif tp in _REACTIVE:
                reactions = reactions or []
                reactions.append(cast(_Reactive, item))
            out.append(item)
        if reactions is None:
            return False
        for item in reactions:
            if self._ending is None:
                self._react(conn, item, now)
        return True

    def _react(self, conn: Connection, item: _Reactive, now: float) -> None:
        match item:
            case ev.SignalingConnected():
                self._on_signaling_connected(conn, item, now)
            case ev.MediaConnected():
                self._on_media_connected(conn, now)
            case ev.ConnectionFailed():
                self._on_lost(conn, item.error.reason, item.error, now)
            case ev.SocketClosed():
                if item.by_peer:
                    error = RemoteProtocolError(
                        FailureReason.CLOSED_BY_SERVER,
                        f"the server closed {conn.sock} (code {item.code})",
                    )
                    self._on_lost(conn, FailureReason.CLOSED_BY_SERVER, error, now)
            case ev.StreamStateChanged():
                if item.state == StreamState.TERMINATED:
                    self._end(
                        now,
                        ev.EndReason.STREAM_TERMINATED,
                        "the stream was terminated",
                        item.reason,
                    )
                elif item.state == StreamState.TERMINATING:
                    self._move(SessionInput.STREAM_TERMINATING)
                    self._drop_retries()
                    self._closing_why = ev.EndReason.STREAM_TERMINATED
            case ev.SessionStateChanged():
                if item.state == SessionState.STOPPED:
                    self._end(
                        now, ev.EndReason.SESSION_STOPPED, "the session stopped", item.stop_reason
                    )
            case ev.StreamCloseAcknowledged():
                self._end(
                    now,
                    ev.EndReason.CLOSED_BY_APP,
                    f"stream close answered: {item.reason or 'OK'}",
                )
            case ev.MediaInterrupted():
                self._on_media_interrupted(item, now)
            case _:
                assert_never(item)

    def _on_signaling_connected(
        self, conn: Connection, item: ev.SignalingConnected, now: float
    ) -> None:
        # Only the current signaling socket can finish a handshake: replaced
        # sockets are closing, and a closing socket reports no handshake.
        sig = self._signaling
        current = sig.conn
        assert current is conn and current is not None
        self._has_connected = True
        # The duplicate-signal schedule is about handshakes being refused: one
        # was accepted.  The reconnect episode goes on until the socket proves itself.
        sig.duplicate.reset()
        self._probation(sig, current, now)
        self._move(SessionInput.SIGNALING_CONNECTED)
        attempts, sig.attempt = sig.attempt, None
        if attempts is not None:
            self._out.append(
                ev.ReconnectCompleted(
                    scope=ev.ReconnectScope.SIGNALING, media_type=None, attempts=attempts
                )
            )
        if self._events_wanted:
            current.subscribe_events(list(self._events_wanted))
        if self._video_subscription is not None and self._video_subscription[1]:
            current.subscribe_video(self._video_subscription[0], True)
        self._plan_media(item, now)

    def _plan_media(self, item: ev.SignalingConnected, now: float) -> None:
        allowed = self.config.media_options.allowed_hosts
        for media_type, scope in self._media.items():
            scope.url = None
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
                scope.url = parse_server_url(raw, allowed_hosts=allowed)
            except InvalidConfig as exc:
                kind = "refused host" if isinstance(exc, DisallowedHost) else "bad URL"
                self._out.append(
                    ev.MediaUnavailable(media_type=media_type, detail=f"{kind}: {exc}")
                )
        usable = [scope for scope in self._media.values() if scope.url is not None]
        if not usable:
            self._end(
                now,
                ev.EndReason.FATAL_ERROR,
                "none of the requested media types can be opened",
                error=RemoteProtocolError(
                    FailureReason.MEDIA_NOT_AVAILABLE, "no usable media URL in the handshake reply"
                ),
            )
            return
        for scope in usable:
            self._open_media(scope, now)

    def _on_media_connected(self, conn: Connection, now: float) -> None:
        assert isinstance(conn, MediaConnection)
        scope = self._media[conn.media_type]
        assert scope.conn is conn
        self._probation(scope, conn, now)
        attempts, scope.attempt = scope.attempt, None
        if attempts is not None:
            self._out.append(
                ev.ReconnectCompleted(
                    scope=ev.ReconnectScope.MEDIA, media_type=conn.media_type, attempts=attempts
                )
            )
        # Media sockets live only while signaling is open (losing signaling
        # closes them), so client ready always has its socket.
        sig = self._signaling.conn
        assert sig is not None
        sig.send_client_ready()

    def _on_lost(
        self, conn: Connection, reason: FailureReason, error: RemoteProtocolError, now: float
    ) -> None:
        if self._phase is SessionPhase.CLOSING_STREAM:
            self._end(now, self._closing_why, "the stream closed", error=error)
            return
        sig = self._signaling
        is_signaling = conn is sig.conn
        if not reason.retryable or (
            reason is FailureReason.CONNECT_FAILED
            and is_signaling
            and not self._has_connected
            and not self.config.retry_first_connect
        ):
            self._end(now, ev.EndReason.FATAL_ERROR, str(error), error=error)
            return
        if is_signaling:
            self._teardown(now)
            # Media comes back with signaling: drop media retries in flight.
            self._drop_retries()
            for scope in self._media.values():
                scope.attempt = None
            self._move(SessionInput.SIGNALING_LOST)
            backoff = sig.duplicate if reason is FailureReason.DUPLICATE_SIGNAL else sig.backoff
            self._schedule(sig, backoff, reason, error, now)
        elif (
            isinstance(conn, MediaConnection)
            and (scope := self._media[conn.media_type]).conn is conn
        ):
            scope.conn = None
            self._grace = None  # the interrupted socket showed itself: only it is rebuilt
            self._move(SessionInput.MEDIA_LOST)
            self._schedule(scope, scope.backoff, reason, error, now)
        # Otherwise the socket was already replaced (it failed in the same
        # step as signaling, whose reconnect rebuilds it): nothing to do.

    def _schedule(
        self,
        scope: _Scope,
        backoff: Backoff,
        reason: FailureReason,
        error: RemoteProtocolError,
        now: float,
    ) -> None:
        self._drop_proof(scope)
        plan = backoff.next_attempt(now, self._jitter())
        if plan is None:
            media_type = scope.media_type
            what = scope.kind.value + (
                f" ({media_name(media_type)})" if media_type is not None else ""
            )
            start = backoff.episode_start
            assert start is not None  # next_attempt started the episode
            flapping = (
                f": it kept dropping right after its handshake: {scope.flaps} connections"
                f" in {now - start:.3g} s"
                if scope.flaps
                else ""
            )
            self._end(
                now,
                ev.EndReason.RECONNECT_EXHAUSTED,
                f"gave up reconnecting {what} after {backoff.attempts} attempts{flapping}: {error}",
                error=error,
            )
            return
        scope.retry = plan
        scope.retry_order = self._retries_planned
        self._retries_planned += 1
        self._out.append(
            ev.ReconnectScheduled(
                scope=scope.kind,
                media_type=scope.media_type,
                attempt=plan.attempt,
                delay=plan.delay,
                reason=reason,
            )
        )

    def _begin_retry(self, scope: _AnyScope, plan: RetryPlan, now: float) -> None:
        scope.attempt = plan.attempt
        self._out.append(
            ev.ReconnectStarted(scope=scope.kind, media_type=scope.media_type, attempt=plan.attempt)
        )
        match scope:
            case _SignalingScope():
                self._open_signaling(now)
            case _MediaScope():
                # Media retries exist only while signaling is open: losing
                # signaling, ending and failover all clear them.
                self._open_media(scope, now)
            case _:
                assert_never(scope)

    def _on_media_interrupted(self, item: ev.MediaInterrupted, now: float) -> None:
        """Zoom lost one of our media sockets; its event may not say which.

        A ``media_type`` in the event names the socket: rebuild it when it is
        still up here (when it is already down its own reconnect covers it).
        Without a name, when one is already down, that one is the lost one and
        its own reconnect covers it; when every media socket still looks open,
        wait ``interruption_grace`` for the lost one to show itself
        (:meth:`_end_grace`), so that healthy sockets are not torn down.
        """
        named = item.media_type
        current = self._current_media()
        if named is not None:
            self._rebuild([sc for sc in current if int(sc[1].media_type) == int(named)], now)
        elif self._grace is None and all(conn.state is ConnState.OPEN for _, conn in current):
            self._grace = _Grace(
                until=now + self.config.interruption_grace,
                marks={conn.sock: conn.messages_received for _, conn in current},
            )

    def _end_grace(self, now: float) -> None:
        """No media socket showed itself lost during the grace: guess which to rebuild.

        The sockets silent during the grace when others were not; otherwise all.
        """
        grace = self._grace
        assert grace is not None
        self._grace = None
        current = [
            (scope, conn)
            for scope, conn in self._current_media()
            if conn.sock in grace.marks and conn.state is ConnState.OPEN
        ]
        silent = [sc for sc in current if sc[1].messages_received == grace.marks[sc[1].sock]]
        self._rebuild(silent or current, now)

    def _rebuild(self, targets: list[tuple[_MediaScope, MediaConnection]], now: float) -> None:
        """Close ``targets`` and reconnect them after ``media_backoff``."""
        if targets:
            self._move(SessionInput.MEDIA_INTERRUPTED)
        error = RemoteProtocolError(
            FailureReason.CONNECTION_LOST, "Zoom reported the media connection interrupted"
        )
        for scope, conn in targets:
            if self._ending is not None:
                return  # one gave up: ending closed the others
            scope.conn = None
            conn.close(now=now)
            self._schedule(scope, scope.backoff, FailureReason.CONNECTION_LOST, error, now)

    # --- internals: proving a reconnect ------------------------------------------

    def _probation(self, scope: _AnyScope, conn: Connection, now: float) -> None:
        """A handshake completed during a backoff episode: the episode goes on for now.

        A server that completes handshakes and drops at once would otherwise be
        reconnected to forever; the episode (with its window and attempt
        limits) ends only when the socket proves itself (:meth:`_check_proofs`).
        """
        self._drop_proof(scope)
        if scope.backoff.in_episode:
            settle = scope.backoff.policy.settle
            scope.proof = _Proof(conn=conn, settle_at=now + settle, mark=conn.messages_received)
            scope.flaps += 1
            self._proofs += 1

    def _check_proofs(self, now: float) -> None:
        """End the episode of each socket that stayed open for ``settle`` s and delivered.

        A proof whose socket is gone is dropped (its loss planned the next try).
        """
        for scope in self._scopes():
            proof = scope.proof
            if proof is None:
                continue
            conn = proof.conn
            if conn is not scope.conn or conn.state is not ConnState.OPEN:
                self._drop_proof(scope)
                continue
            if proof.settle_at is not None:
                if now < proof.settle_at:
                    continue
                proof.settle_at = None
            if conn.messages_received > proof.mark:
                self._forgive(scope)

    def _drop_proof(self, scope: _Scope) -> None:
        if scope.proof is not None:
            scope.proof = None
            self._proofs -= 1

    def _forgive(self, scope: _AnyScope) -> None:
        """The episode is over: the next loss starts a fresh one."""
        self._drop_proof(scope)
        scope.backoff.reset()
        scope.flaps = 0

    # --- internals: ending ------------------------------------------------------

    def _end(
        self,
        now: float,
        why: ev.EndReason,
        detail: str,
        stop_reason: StopReasonValue = None,
        error: RemoteProtocolError | None = None,
    ) -> None:
        assert self._ending is None
        self._ending = _Ending(why=why, detail=detail, stop_reason=stop_reason, error=error)
        self._move(SessionInput.END)
        self._drop_retries()
        for scope in self._scopes():
            self._drop_proof(scope)
        self._close_deadline = None
        self._teardown(now)

    def _maybe_finish(self) -> None:
        ending = self._ending
        if ending is None or self._phase is SessionPhase.ENDED:
            return
        if any(not c.is_terminal for c in self._conns.values()):
            return
        self._move(SessionInput.SOCKETS_CLOSED)
        self._out.append(
            ev.SessionEnded(
                why=ending.why,
                detail=ending.detail,
                stop_reason=ending.stop_reason,
                error=ending.error,
            )
        )
