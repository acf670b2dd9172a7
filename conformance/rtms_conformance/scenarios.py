"""The conformance scenarios, as data.

A :class:`Scenario` names what the fake server does (its streams, their
meetings and faults, the server's timing), how the client is configured
(layout, media, parameters, short timeouts and backoff policies so that a
real-time run lasts about a second), what the application does (commands
triggered by events, a slow consumer's pauses, a cancellation) and the trace
every transport must produce (see :mod:`rtms_conformance.trace` for how a run
becomes a trace).

Times are seconds from the moment the server starts serving the stream.  The
catalogue keeps every moment that depends on the client's speed (its first
handshakes, a reconnect finishing, an application command reaching the
server) at least 200 ms away from the server's scheduled output that could
race with it; connecting takes 10-50 ms on loopback.  Audio packets are due
every 400 ms (0.4, 0.8, 1.2 s), video and screen-share frames every 200 ms,
the standard meeting's events happen at 0.6 and 1.0 s and it ends at 1.3 s,
faults mostly strike at 0.65 s.  An application command happens *on an
event* (the n-th event of a kind), never at a wall-clock time, so that it
happens at the same point of the trace in every transport; "at time t" is
expressed as "on the event the server sends at t".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.backoff import BackoffPolicy, Jitter
from rtms_proto.config import ConnectionOptions
from rtms_proto.enums import (
    Codec,
    DataOption,
    EventType,
    LegacyStatusCode,
    MediaType,
    StatusCode,
    StopReason,
)
from rtms_proto.errors import InvalidConfig
from rtms_proto.params import AudioParams, DeskshareParams, MediaParams, VideoParams
from rtms_proto.session import Layout
from rtms_proto.status import StatusTable

from .faults import (
    BinaryFrames,
    DropSocket,
    DuplicateSignal,
    Fault,
    IgnoreHandshake,
    InterruptMedia,
    RejectHandshake,
    SendClose,
    SendMalformed,
    SendOversized,
    SendRaw,
    SendUnknownType,
    Silence,
)
from .faults import Failover as FailoverFault
from .meeting import DEFAULT_PEOPLE, MeetingSpec
from .server_types import ServerConfig, StreamSpec
from .timeline import (
    ActiveSpeaker,
    Chat,
    EndStream,
    ServerEvent,
    SharingStart,
    SharingStop,
    TimelineEntry,
    Utterance,
    VideoOn,
)

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SCENARIOS",
    "Action",
    "ClientSettings",
    "CloseStream",
    "Command",
    "Failover",
    "NotifyStopped",
    "On",
    "Pause",
    "RequestStreamState",
    "Scenario",
    "ServerSettings",
    "Stop",
    "SubscribeEvents",
    "SubscribeVideo",
    "by_name",
    "trace_lines",
]

CLIENT_ID = "conformance-client-id"
CLIENT_SECRET = "conformance-client-secret"


# --- what the application does ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseStream:
    """``close_stream()``: ask Zoom to end the stream."""


@dataclass(frozen=True, slots=True)
class Stop:
    """``stop()``: end locally."""


@dataclass(frozen=True, slots=True)
class NotifyStopped:
    """``notify_stopped(stop_reason)``: the ``*.rtms_stopped`` webhook arrived."""

    stop_reason: StopReason | int | None = None


@dataclass(frozen=True, slots=True)
class Failover:
    """``failover(url)`` with the URL of the stream's newest ``rtms_started`` webhook."""


@dataclass(frozen=True, slots=True)
class SubscribeVideo:
    """``subscribe_video(user_id, subscribe)``."""

    user_id: int
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class SubscribeEvents:
    """``subscribe_events(event_types, subscribe)``."""

    event_types: tuple[EventType | int, ...]
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class RequestStreamState:
    """``request_stream_state()``."""


@dataclass(frozen=True, slots=True)
class Pause:
    """The application is busy for ``seconds`` before it takes the next event (a slow
    consumer); the transport must keep the session alive meanwhile."""

    seconds: float


Command: TypeAlias = (
    CloseStream
    | Stop
    | NotifyStopped
    | Failover
    | SubscribeVideo
    | SubscribeEvents
    | RequestStreamState
    | Pause
)
"""Everything a scenario's application can do."""


@dataclass(frozen=True, slots=True)
class On:
    """The ``nth`` event of class ``event`` (and, for socket events, of socket ``role``)."""

    event: type[object]
    nth: int = 1
    role: SocketRole | None = None

    def __post_init__(self) -> None:
        if self.nth < 1:
            raise InvalidConfig("nth is 1-based")

    def __str__(self) -> str:
        role = f" {self.role.value}" if self.role is not None else ""
        return f"{self.event.__name__}{role} #{self.nth}"


@dataclass(frozen=True, slots=True)
class Action:
    """Once ``on`` happens, the application does ``do``, in order, before it takes the
    next event."""

    on: On
    do: tuple[Command, ...]


# --- configuration --------------------------------------------------------------------------


def _quick(initial: float = 0.16, attempts: int = 3) -> BackoffPolicy:
    """Short, jittered backoff: with the catalogue's jitter draw u=0.25 the delays are
    0.1, 0.2, 0.4 s (EQUAL jitter: d/2 + u*d/2), so a transport that ignores the
    injected jitter shows up in the trace."""
    return BackoffPolicy(
        initial=initial,
        factor=2.0,
        cap=4 * initial,
        jitter=Jitter.EQUAL,
        max_attempts=attempts,
        window=None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """The fake server's timing for a scenario (see :class:`ServerConfig`)."""

    status_table: StatusTable = StatusTable.CURRENT
    keepalive_interval: float = 0.25
    keepalive_misses: int = 3
    keepalive_while_data: bool = False
    signaling_reconnect_window: float = 10.0
    media_reconnect_window: float = 10.0
    close_timeout: float = 1.0

    def config(self, base_url: str) -> ServerConfig:
        """The server configuration, for clients that reach it at ``base_url``."""
        return ServerConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=base_url,
            status_table=self.status_table,
            keepalive_interval=self.keepalive_interval,
            keepalive_misses=self.keepalive_misses,
            keepalive_while_data=self.keepalive_while_data,
            signaling_reconnect_window=self.signaling_reconnect_window,
            media_reconnect_window=self.media_reconnect_window,
            close_timeout=self.close_timeout,
        )


DEFAULT_AUDIO = AudioParams(send_rate=400)
"""L16 16 kHz mono mixed audio in 400 ms packets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """How the client's :class:`~rtms_proto.SessionConfig` differs from the defaults.

    Timeouts and backoff policies are short so that a real-time run is quick.
    ``jitter`` is the constant every jitter draw returns.  ``client_secret``
    replaces the app's secret (a wrong one makes a bad signature);
    ``signaling_path`` replaces the path of the webhook's signaling URL.
    """

    media: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT
    layout: Layout = Layout.SPLIT
    params: MediaParams = field(default_factory=lambda: MediaParams(audio=DEFAULT_AUDIO))
    events: tuple[EventType | int, ...] | None = None
    buffer_data: bool | None = None
    handshake_timeout: float = 2.0
    keepalive_timeout: float = 2.0
    media_keepalive_timeout: float | None = None
    close_timeout: float = 1.0
    max_message_size: int = 16 * 1024 * 1024
    status_table: StatusTable = StatusTable.CURRENT
    signaling_backoff: BackoffPolicy = field(default_factory=_quick)
    media_backoff: BackoffPolicy = field(default_factory=_quick)
    duplicate_backoff: BackoffPolicy = field(default_factory=_quick)
    close_stream_timeout: float = 2.0
    jitter: float = 0.25
    client_secret: str = CLIENT_SECRET
    signaling_path: str | None = None

    def options(self, allowed_hosts: tuple[str, ...], *, media: bool) -> ConnectionOptions:
        """The signaling (or media) socket options."""
        keepalive = self.keepalive_timeout
        if media and self.media_keepalive_timeout is not None:
            keepalive = self.media_keepalive_timeout
        return ConnectionOptions(
            handshake_timeout=self.handshake_timeout,
            keepalive_timeout=keepalive,
            close_timeout=self.close_timeout,
            max_message_size=self.max_message_size,
            status_table=self.status_table,
            allowed_hosts=allowed_hosts,
        )


# --- scenarios ------------------------------------------------------------------------------


def trace_lines(text: str) -> tuple[str, ...]:
    """An expected trace written as a text block: one ``lane: item`` per line (runs of
    blanks count as one, so a long item can be continued with a backslash)."""
    return tuple(" ".join(line.split()) for line in text.splitlines() if line.strip())


StreamsBuilder: TypeAlias = Callable[[], tuple[StreamSpec, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One conformance scenario: server script, client configuration, application, trace.

    ``streams`` are served by one server and run by the transport at the same
    time; each must produce ``expected``.  ``facts`` name server-side checks
    appended to the trace (``"keepalive"``: which sockets answered keep-alives;
    ``"released"``: whether the server saw every client connection close).
    ``cancel_after`` cancels the run that many seconds after it started, the
    framework's way (asyncio task cancellation, a trio cancel scope, ...).
    ``time_limit`` bounds the run in real time.
    """

    name: str
    description: str
    streams: tuple[StreamSpec, ...] | StreamsBuilder
    expected: tuple[str, ...]
    server: ServerSettings = field(default_factory=ServerSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    actions: tuple[Action, ...] = ()
    cancel_after: float | None = None
    facts: tuple[str, ...] = ()
    time_limit: float = 6.0

    def stream_specs(self) -> tuple[StreamSpec, ...]:
        """The streams to serve (built fresh when ``streams`` is a builder)."""
        specs = self.streams() if callable(self.streams) else self.streams
        if not specs:
            raise InvalidConfig(f"scenario {self.name!r} has no stream")
        return specs


def by_name(name: str) -> Scenario:
    """The catalogue's scenario called ``name``."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in SCENARIOS)
    raise KeyError(f"no scenario {name!r} (known: {known})")


# --- the catalogue --------------------------------------------------------------------------

ALICE, BOB, CAROL = DEFAULT_PEOPLE[:3]


def _meeting(
    *entries: tuple[float, ServerEvent],
    end: float | None = 1.3,
    reason: StopReason | None = None,
    offset: float = 0.0,
) -> dict[str, Any]:
    """A three-person meeting (Alice talks first, everyone present from the start) with
    ``entries`` as its timeline, shifted by ``offset``.  At ``end`` everybody leaves and
    the stream ends with MEETING_ENDED, or, with ``reason``, the stream just ends with it.
    """
    timeline = [TimelineEntry(at=offset + at, event=event) for at, event in entries]
    duration = None
    if end is not None and reason is None:
        duration = offset + end
    elif end is not None and reason is not None:
        timeline.append(TimelineEntry(at=offset + end, event=EndStream(reason=reason)))
    spec = MeetingSpec(
        participants=3,
        turn=600.0,
        pause=0.0,
        transcripts=False,
        chat_interval=None,
        share_at=None,
        video=False,
        duration=duration,
    )
    return {"meeting": spec, "timeline": tuple(timeline)}


STANDARD: tuple[tuple[float, ServerEvent], ...] = (
    (0.6, VideoOn(user_ids=(ALICE.user_id, BOB.user_id))),
    (0.6, SharingStart(user_id=BOB.user_id)),
    (0.6, ActiveSpeaker(user_id=BOB.user_id)),
    (0.6, Utterance(user_id=ALICE.user_id, text="Hello everyone.", start=0.0, end=0.6)),
    (0.6, Chat(user_id=CAROL.user_id, text="Hi all")),
    (1.0, ActiveSpeaker(user_id=CAROL.user_id)),
    (1.0, SharingStop()),
    (1.0, Utterance(user_id=BOB.user_id, text="Thanks for joining.", start=0.6, end=1.0)),
    (1.0, Chat(user_id=ALICE.user_id, text="Bye", structured=True)),
)
"""The standard meeting: at 0.6 s cameras go on, Bob shares his screen and speaks,
Alice's utterance and Carol's chat message arrive; at 1.0 s Carol speaks, the share
stops, Bob's utterance and Alice's chat message arrive; it ends at 1.3 s."""


def _stream(sid: str, *faults: Fault, **meeting: Any) -> StreamSpec:
    entries = meeting.pop("entries", STANDARD)
    return StreamSpec(
        meeting_uuid=f"{sid}-meeting==",
        rtms_stream_id=sid,
        faults=faults,
        **_meeting(*entries, **meeting),
    )


ALL_MEDIA = (
    MediaType.AUDIO | MediaType.VIDEO | MediaType.DESKSHARE | MediaType.TRANSCRIPT | MediaType.CHAT
)
ALL_PARAMS = MediaParams(
    audio=DEFAULT_AUDIO,
    video=VideoParams(codec=Codec.JPG, fps=5),
    deskshare=DeskshareParams(codec=Codec.H264, fps=5),
)


def _entries(*entries: tuple[float, ServerEvent]) -> tuple[tuple[float, ServerEvent], ...]:
    """A meeting timeline other than :data:`STANDARD` (typed for the checker)."""
    return entries


FAST_KEEPALIVES = ServerSettings(
    keepalive_interval=0.1, keepalive_misses=2, keepalive_while_data=True
)
"""A keep-alive every 100 ms on every socket, data or not; two misses drop the socket."""


SCENARIOS: tuple[Scenario, ...] = (
    # --- happy paths and media types --------------------------------------------------------------
    Scenario(
        name="happy-split",
        description="Audio and transcript on their own sockets; the meeting ends at 1.3 s.",
        streams=(_stream("happy-split"),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="happy-unified",
        description="Audio and transcript on one 'all' socket.",
        streams=(_stream("happy-unified"),),
        client=ClientSettings(layout=Layout.UNIFIED),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            all: MediaConnected all#1 ALL audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400) \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5) \
                deskshare(RAW_VIDEO,JPG,FHD,1) transcript(TEXT,-,True) chat(TEXT)
            all: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            all: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            all: ChatReceived x1 bytes=6 users=16780288 sha=d19f42bf86bd
            all: AudioReceived x1 bytes=12800 ts=+400..+400 users=0 sha=508eca2b62e0
            all: VideoReceived x2 bytes=7604 ts=+800..+1000 users=16779264 sha=d330df13a475
            all: DeskshareReceived x1 bytes=8302 ts=+1000..+1000 users=16779264 sha=5aecc0ec5ee9
            all: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 sha=c1c5aa12850f
            all: ChatReceived x1 bytes=178 users=16778240 sha=3b148999e4cf
            all: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            all: closed all#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="every-media-split",
        description="All five media types, each on its own socket, with their events.",
        streams=(_stream("every-media-split"),),
        client=ClientSettings(media=ALL_MEDIA, params=ALL_PARAMS),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ParticipantVideoChanged on 16778240,16779264
            signaling: SharingStarted 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: SharingStopped
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            video: MediaConnected video#1 VIDEO \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5)
            video: VideoReceived x2 bytes=7604 ts=+800..+1000 users=16779264 sha=d330df13a475
            video: closed video#1
            deskshare: MediaConnected deskshare#1 DESKSHARE deskshare(RAW_VIDEO,H264,FHD,5)
            deskshare: DeskshareReceived x2 bytes=8201 ts=+800..+1000 users=16779264 \
                sha=03b379a8f054
            deskshare: closed deskshare#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            chat: MediaConnected chat#1 CHAT chat(TEXT)
            chat: ChatReceived x2 bytes=192 users=16778240,16780288 sha=32df9b8d0e08
            chat: closed chat#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="every-media-unified",
        description="All five media types on one 'all' socket.",
        streams=(_stream("every-media-unified"),),
        client=ClientSettings(media=ALL_MEDIA, params=ALL_PARAMS, layout=Layout.UNIFIED),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ParticipantVideoChanged on 16778240,16779264
            signaling: SharingStarted 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: SharingStopped
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            all: MediaConnected all#1 ALL audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400) \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5) \
                deskshare(RAW_VIDEO,H264,FHD,5) transcript(TEXT,-,True) chat(TEXT)
            all: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            all: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            all: ChatReceived x1 bytes=6 users=16780288 sha=d19f42bf86bd
            all: AudioReceived x1 bytes=12800 ts=+400..+400 users=0 sha=508eca2b62e0
            all: VideoReceived x1 bytes=3802 ts=+800..+800 users=16779264 sha=67eff1c76cca
            all: DeskshareReceived x1 bytes=8190 ts=+800..+800 users=16779264 sha=e42a486711c0
            all: VideoReceived x1 bytes=3802 ts=+1000..+1000 users=16779264 sha=d93a1f423f9e
            all: DeskshareReceived x1 bytes=11 ts=+1000..+1000 users=16779264 sha=7b798e3f40e9
            all: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 sha=c1c5aa12850f
            all: ChatReceived x1 bytes=190 users=16778240 sha=a5b0fac9ab5f
            all: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            all: closed all#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    # --- handshake rejections ---------------------------------------------------------------------
    Scenario(
        name="reject-signature",
        description="A wrong client secret: the signaling handshake is refused (fatal).",
        streams=(_stream("reject-signature"),),
        client=ClientSettings(client_secret="not-the-secret"),
        expected=trace_lines(
            """
            end: not connected: authentication_failed status=INVALID_SIGNATURE \
                status_reason='invalid signature'
        """
        ),
    ),
    Scenario(
        name="reject-media-params",
        description="The audio handshake is refused for bad parameters (fatal).",
        streams=(
            _stream(
                "reject-media-params",
                RejectHandshake(
                    status=StatusCode.INVALID_MEDIA_AUDIO_PARAMS,
                    reason="bad audio params",
                    role=SocketRole.AUDIO,
                ),
            ),
        ),
        client=ClientSettings(media=MediaType.AUDIO),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: SocketClosed signaling#1 local
            audio: ConnectionFailed audio#1 invalid_request status=INVALID_MEDIA_AUDIO_PARAMS \
                status_reason='bad audio params'
            end: SessionEnded fatal_error stop_reason=- error=invalid_request \
                status=INVALID_MEDIA_AUDIO_PARAMS status_reason='bad audio params'
        """
        ),
    ),
    Scenario(
        name="reject-media-not-supported",
        description="The transcript handshake is refused: not in the app's scopes (fatal).",
        streams=(
            _stream(
                "reject-media-not-supported",
                RejectHandshake(
                    status=StatusCode.MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT,
                    reason="transcript not supported",
                    role=SocketRole.TRANSCRIPT,
                ),
            ),
        ),
        client=ClientSettings(media=MediaType.TRANSCRIPT),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: SocketClosed signaling#1 local
            transcript: ConnectionFailed transcript#1 media_not_available \
                status=MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT status_reason='transcript not supported'
            end: SessionEnded fatal_error stop_reason=- error=media_not_available \
                status=MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT status_reason='transcript not supported'
        """
        ),
    ),
    Scenario(
        name="reject-signaling-retryable",
        description="The first signaling handshake gets INTERNAL_EXCEPTION: retry, connect.",
        streams=(
            _stream(
                "reject-signaling-retryable",
                RejectHandshake(status=StatusCode.INTERNAL_EXCEPTION, reason="try again"),
            ),
        ),
        expected=trace_lines(
            """
            signaling: ConnectionFailed signaling#1 handshake_rejected status=INTERNAL_EXCEPTION \
                status_reason='try again'
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 \
                reason=handshake_rejected
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="reject-duplicate-media",
        description="The first audio handshake is refused as a duplicate: retry that socket.",
        streams=(
            _stream(
                "reject-duplicate-media",
                RejectHandshake(
                    status=StatusCode.DUPLICATE_MEDIA_DATA_CONNECTION,
                    reason="duplicate media data connection",
                    role=SocketRole.AUDIO,
                ),
            ),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: ConnectionFailed audio#1 duplicate_media_connection \
                status=DUPLICATE_MEDIA_DATA_CONNECTION status_reason='duplicate media data \
                connection'
            audio: ReconnectScheduled media attempt=1 delay=0.100 \
                reason=duplicate_media_connection
            audio: ReconnectStarted media attempt=1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: ReconnectCompleted media attempts=1
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="handshake-timeout",
        description="The first signaling handshake is never answered: time out, retry.",
        streams=(
            _stream("handshake-timeout", IgnoreHandshake(role=SocketRole.SIGNALING), offset=0.5),
        ),
        client=ClientSettings(handshake_timeout=0.3),
        expected=trace_lines(
            """
            signaling: ConnectionFailed signaling#1 handshake_timeout
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=handshake_timeout
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x4 bytes=51200 ts=+0..+1200 users=0 sha=b5bea42e5e12
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="duplicate-signal",
        description="'duplicate signal request' twice: back off on its own schedule, connect.",
        streams=(_stream("duplicate-signal", DuplicateSignal(count=2), offset=0.5),),
        expected=trace_lines(
            """
            signaling: ConnectionFailed signaling#1 duplicate_signal \
                status=DUPLICATE_SIGNAL_REQUEST status_reason='duplicate signal request'
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=duplicate_signal
            signaling: ReconnectStarted signaling attempt=1
            signaling: ConnectionFailed signaling#2 duplicate_signal \
                status=DUPLICATE_SIGNAL_REQUEST status_reason='duplicate signal request'
            signaling: ReconnectScheduled signaling attempt=2 delay=0.200 reason=duplicate_signal
            signaling: ReconnectStarted signaling attempt=2
            signaling: SignalingConnected signaling#3 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=2
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#3 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x4 bytes=51200 ts=+0..+1200 users=0 sha=b5bea42e5e12
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="legacy-status-table",
        description="A server on the legacy status table: duplicate signal, duplicate media.",
        streams=(
            _stream(
                "legacy-status-table",
                DuplicateSignal(count=1),
                RejectHandshake(
                    status=LegacyStatusCode.DUPLICATE_MEDIA_DATA_CONNECTION,
                    reason="duplicate media data connection",
                    role=SocketRole.TRANSCRIPT,
                ),
            ),
        ),
        server=ServerSettings(status_table=StatusTable.LEGACY),
        client=ClientSettings(status_table=StatusTable.LEGACY),
        expected=trace_lines(
            """
            signaling: ConnectionFailed signaling#1 duplicate_signal \
                status=DUPLICATE_SIGNAL_REQUEST status_reason='duplicate signal request'
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=duplicate_signal
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: ConnectionFailed transcript#1 duplicate_media_connection \
                status=DUPLICATE_MEDIA_DATA_CONNECTION status_reason='duplicate media data \
                connection'
            transcript: ReconnectScheduled media attempt=1 delay=0.100 \
                reason=duplicate_media_connection
            transcript: ReconnectStarted media attempt=1
            transcript: MediaConnected transcript#2 TRANSCRIPT transcript(TEXT,-,True)
            transcript: ReconnectCompleted media attempts=1
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#2
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="upgrade-rejected",
        description="The signaling URL is unknown (HTTP 404): retry until the policy gives up.",
        streams=(_stream("upgrade-rejected"),),
        client=ClientSettings(signaling_path="/signaling/no-such-stream"),
        expected=trace_lines(
            """
            end: not connected: websocket_upgrade_rejected
        """
        ),
    ),
    Scenario(
        name="media-unavailable",
        description="The app may receive audio only: transcript is unavailable, audio goes on.",
        streams=(
            StreamSpec(
                meeting_uuid="media-unavailable==",
                rtms_stream_id="media-unavailable",
                scopes=MediaType.AUDIO,
                offer_all=False,
                **_meeting(*STANDARD),
            ),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 urls=audio
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: MediaUnavailable TRANSCRIPT
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="unified-unavailable",
        description="Unified layout but no 'all' URL offered: nothing can open (fatal).",
        streams=(
            StreamSpec(
                meeting_uuid="unified-unavailable==",
                rtms_stream_id="unified-unavailable",
                offer_all=False,
                **_meeting(*STANDARD),
            ),
        ),
        client=ClientSettings(layout=Layout.UNIFIED),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 urls=audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: SocketClosed signaling#1 local
            all: MediaUnavailable ALL
            end: SessionEnded fatal_error stop_reason=- error=media_not_available
        """
        ),
    ),
    # --- keep-alives and liveness -----------------------------------------------------------------
    Scenario(
        name="keepalive-every-socket",
        description="A keep-alive every 100 ms on all six sockets; two misses would drop one.",
        streams=(_stream("keepalive-every-socket"),),
        server=FAST_KEEPALIVES,
        client=ClientSettings(media=ALL_MEDIA, params=ALL_PARAMS),
        facts=("keepalive",),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ParticipantVideoChanged on 16778240,16779264
            signaling: SharingStarted 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: SharingStopped
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            video: MediaConnected video#1 VIDEO \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5)
            video: VideoReceived x2 bytes=7604 ts=+800..+1000 users=16779264 sha=d330df13a475
            video: closed video#1
            deskshare: MediaConnected deskshare#1 DESKSHARE deskshare(RAW_VIDEO,H264,FHD,5)
            deskshare: DeskshareReceived x2 bytes=8201 ts=+800..+1000 users=16779264 \
                sha=03b379a8f054
            deskshare: closed deskshare#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            chat: MediaConnected chat#1 CHAT chat(TEXT)
            chat: ChatReceived x2 bytes=202 users=16778240,16780288 sha=40b6749486a1
            chat: closed chat#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
            server: keep-alives answered on signaling,audio,video,deskshare,transcript,chat
        """
        ),
    ),
    Scenario(
        name="keepalive-unified",
        description="A keep-alive every 100 ms on the signaling and 'all' sockets.",
        streams=(_stream("keepalive-unified"),),
        server=FAST_KEEPALIVES,
        client=ClientSettings(layout=Layout.UNIFIED),
        facts=("keepalive",),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            all: MediaConnected all#1 ALL audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400) \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5) \
                deskshare(RAW_VIDEO,JPG,FHD,1) transcript(TEXT,-,True) chat(TEXT)
            all: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            all: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            all: ChatReceived x1 bytes=6 users=16780288 sha=d19f42bf86bd
            all: AudioReceived x1 bytes=12800 ts=+400..+400 users=0 sha=508eca2b62e0
            all: VideoReceived x2 bytes=7604 ts=+800..+1000 users=16779264 sha=d330df13a475
            all: DeskshareReceived x1 bytes=8302 ts=+1000..+1000 users=16779264 sha=5aecc0ec5ee9
            all: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 sha=c1c5aa12850f
            all: ChatReceived x1 bytes=186 users=16778240 sha=096a8a2ba7be
            all: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            all: closed all#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
            server: keep-alives answered on signaling,all
        """
        ),
    ),
    Scenario(
        name="liveness-timeout",
        description="The transcript socket goes silent at 0.65 s: the client's liveness"
        " deadline (0.45 s after its last message, at 0.6 s) fails it and that socket alone"
        " reconnects.",
        streams=(
            _stream(
                "liveness-timeout",
                Silence(at=0.65, role=SocketRole.TRANSCRIPT),
                entries=_entries(
                    (0.6, ActiveSpeaker(user_id=BOB.user_id)),
                    (0.6, Utterance(user_id=ALICE.user_id, text="Hello.", start=0.0, end=0.6)),
                    (1.0, ActiveSpeaker(user_id=CAROL.user_id)),
                    (1.4, Utterance(user_id=BOB.user_id, text="Still here?", start=0.6, end=1.4)),
                ),
                end=1.6,
            ),
        ),
        client=ClientSettings(media_keepalive_timeout=0.45),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: MediaInterrupted media_type=TRANSCRIPT
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x4 bytes=51200 ts=+0..+1200 users=0 sha=8b35db9db29b
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=6 ts=+0..+0 users=16778240 sha=a3f795f96e20
            transcript: ConnectionFailed transcript#1 keepalive_timeout
            transcript: ReconnectScheduled media attempt=1 delay=0.100 reason=keepalive_timeout
            transcript: ReconnectStarted media attempt=1
            transcript: MediaConnected transcript#2 TRANSCRIPT transcript(TEXT,-,True)
            transcript: ReconnectCompleted media attempts=1
            transcript: TranscriptReceived x1 bytes=11 ts=+600..+600 users=16779264 \
                sha=0a5048e9c732
            transcript: closed transcript#2
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    # --- reconnects -------------------------------------------------------------------------------
    Scenario(
        name="media-reconnect",
        description="The server drops the audio socket at 0.65 s: only audio reconnects, and"
        " the audio it buffered meanwhile arrives on the new socket.",
        streams=(_stream("media-reconnect", DropSocket(at=0.65, role=SocketRole.AUDIO)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: MediaInterrupted media_type=AUDIO
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            audio: ReconnectScheduled media attempt=1 delay=0.100 reason=connection_lost
            audio: ReconnectStarted media attempt=1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: ReconnectCompleted media attempts=1
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="media-interrupted",
        description="MEDIA_CONNECTION_INTERRUPTED names audio (a false alarm): the client"
        " rebuilds the audio socket anyway.",
        streams=(
            _stream(
                "media-interrupted",
                InterruptMedia(at=0.65, media_type=MediaType.AUDIO, drop=False),
            ),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: MediaInterrupted media_type=AUDIO
            signaling: MediaInterrupted media_type=AUDIO
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            audio: ReconnectScheduled media attempt=1 delay=0.100 reason=connection_lost
            audio: ReconnectStarted media attempt=1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: ReconnectCompleted media attempts=1
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="signaling-reconnect",
        description="The server drops the signaling socket at 0.65 s (and with it every"
        " media socket): signaling reconnects, then all media.",
        streams=(_stream("signaling-reconnect", DropSocket(at=0.65, role=SocketRole.SIGNALING)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ConnectionFailed signaling#1 connection_lost
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=connection_lost
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            transcript: MediaConnected transcript#2 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 \
                sha=c1c5aa12850f
            transcript: closed transcript#2
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="signaling-close-frame",
        description="The server closes signaling with code 4000 at 0.65 s: reconnect.",
        streams=(
            _stream(
                "signaling-close-frame",
                SendClose(at=0.65, role=SocketRole.SIGNALING, code=4000, reason="moving"),
            ),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: SocketClosed signaling#1 by_peer code=4000 reason='moving'
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=closed_by_server
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            transcript: MediaConnected transcript#2 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 \
                sha=c1c5aa12850f
            transcript: closed transcript#2
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="failover",
        description="The stream moves to another server at 0.65 s: the app passes the new"
        " rtms_started URL to failover() when signaling fails.",
        streams=(_stream("failover", FailoverFault(at=0.65)),),
        actions=(Action(On(ev.ConnectionFailed, role=SocketRole.SIGNALING), (Failover(),)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ConnectionFailed signaling#1 connection_lost
            signaling: app: failover (new rtms_started)
            signaling: ReconnectScheduled signaling attempt=1 delay=0.100 reason=connection_lost
            signaling: ReconnectStarted signaling attempt=1
            signaling: SignalingConnected signaling#2 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: ReconnectCompleted signaling attempts=1
            signaling: FirstPacketReceived ts=+0
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#2 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            transcript: MediaConnected transcript#2 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 \
                sha=c1c5aa12850f
            transcript: closed transcript#2
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    # --- endings ----------------------------------------------------------------------------------
    Scenario(
        name="stream-close",
        description="The app closes the stream when Bob speaks (0.6 s).",
        streams=(_stream("stream-close"),),
        actions=(Action(On(ev.ActiveSpeakerChanged), (CloseStream(),)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: app: close_stream
            signaling: StreamCloseAcknowledged status=STATUS_OK reason='OK'
            signaling: StreamStateChanged TERMINATED reason=RECEIVER_REQUEST_CLOSE
            signaling: SessionStateChanged STOPPED stop_reason=RECEIVER_REQUEST_CLOSE
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            end: SessionEnded closed_by_app stop_reason=-
        """
        ),
    ),
    Scenario(
        name="stream-revoked",
        description="The stream is terminated with STREAM_REVOKED at 1.3 s.",
        streams=(_stream("stream-revoked", reason=StopReason.STREAM_REVOKED),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: StreamStateChanged TERMINATED reason=STREAM_REVOKED
            signaling: SessionStateChanged STOPPED stop_reason=STREAM_REVOKED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=STREAM_REVOKED
        """
        ),
    ),
    Scenario(
        name="session-stopped",
        description="SESSION_STATE_UPDATE STOPPED (USER_LEFT) alone at 0.8 s ends the session.",
        streams=(
            _stream(
                "session-stopped",
                SendRaw(
                    at=0.8,
                    role=SocketRole.SIGNALING,
                    data='{"msg_type":9,"rtms_session_id":"session-stopped-session-1",'
                    '"state":5,"stop_reason":3,"timestamp":1700000000800}',
                ),
            ),
        ),
        client=ClientSettings(media=MediaType.TRANSCRIPT),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: SessionStateChanged STOPPED stop_reason=USER_LEFT
            signaling: SocketClosed signaling#1 local
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            end: SessionEnded session_stopped stop_reason=USER_LEFT
        """
        ),
    ),
    Scenario(
        name="stop-webhook",
        description="The app learns from the rtms_stopped webhook that the stream ended.",
        streams=(_stream("stop-webhook"),),
        actions=(Action(On(ev.ActiveSpeakerChanged), (NotifyStopped(StopReason.MEETING_ENDED),)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: app: notify_stopped MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            end: SessionEnded stream_stopped stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="local-stop",
        description="The app stops locally when Bob speaks (0.6 s).",
        streams=(_stream("local-stop"),),
        actions=(Action(On(ev.ActiveSpeakerChanged), (Stop(),)),),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: app: stop
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: closed transcript#1
            end: SessionEnded stopped_locally stop_reason=-
        """
        ),
    ),
    # --- odd input --------------------------------------------------------------------------------
    Scenario(
        name="malformed-input",
        description="Extra keys, bad JSON, an unknown msg_type and event_type, a binary"
        " frame, metadata, then binary frames only: reported or tolerated as specified.",
        streams=(
            _stream(
                "malformed-input",
                SendRaw(
                    at=0.45,
                    data='{"msg_type":6,"future":[1],"event":{"event_type":2,"user_id":16778240,'
                    '"user_name":"Alice Example","timestamp":1,"future":{"x":[1,2]}}}',
                ),
                SendMalformed(at=0.5),
                SendUnknownType(at=0.55, msg_type=99),
                SendRaw(at=0.7, data='{"msg_type":6,"event":{"event_type":77,"timestamp":1}}'),
                SendRaw(at=0.75, data=b'{"msg_type":6,"event":{"event_type":6,"timestamp":1}}'),
                SendRaw(at=0.85, role=SocketRole.AUDIO, data='{"msg_type":23,"x":1}'),
                SendMalformed(at=0.9, role=SocketRole.TRANSCRIPT, data="not json at all"),
                BinaryFrames(at=1.1),
            ),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16778240:Alice Example
            signaling: MalformedMessage signaling#1 msg_type=- field=-
            signaling: UnknownMessageReceived signaling#1 msg_type=99
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: UnknownEventReceived event_type=77
            signaling: SharingStopped
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x2 bytes=25600 ts=+0..+400 users=0 sha=eb5e129e44a4
            audio: MetadataReceived audio#1 msg_type=23
            audio: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            transcript: MalformedMessage transcript#1 msg_type=- field=-
            transcript: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 \
                sha=c1c5aa12850f
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="oversized-message",
        description="A 100 kB message on audio over the client's 64 KiB limit: that socket"
        " fails and reconnects.",
        streams=(
            _stream(
                "oversized-message",
                SendOversized(at=0.65, role=SocketRole.AUDIO, size=100_000),
            ),
        ),
        client=ClientSettings(max_message_size=64 * 1024),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: MediaInterrupted media_type=AUDIO
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            audio: ConnectionFailed audio#1 message_too_big
            audio: ReconnectScheduled media attempt=1 delay=0.100 reason=message_too_big
            audio: ReconnectStarted media attempt=1
            audio: MediaConnected audio#2 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: ReconnectCompleted media attempts=1
            audio: AudioReceived x2 bytes=25600 ts=+400..+800 users=0 sha=bbaf52a3cfe1
            audio: closed audio#2
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    # --- the application and the transport --------------------------------------------------------
    Scenario(
        name="slow-consumer",
        description="The app stalls 0.5 s at the 10th audio packet while 20 ms packets keep"
        " coming and the server sends keep-alives every 100 ms (two misses drop a socket):"
        " nothing may be lost and every keep-alive must be answered.",
        streams=(
            _stream(
                "slow-consumer",
                entries=_entries(
                    (1.0, ActiveSpeaker(user_id=BOB.user_id)),
                    (1.0, Utterance(user_id=ALICE.user_id, text="Go on.", start=0.0, end=1.0)),
                ),
            ),
        ),
        server=ServerSettings(keepalive_interval=0.1, keepalive_misses=2),
        client=ClientSettings(params=MediaParams(audio=AudioParams(send_rate=20))),
        actions=(Action(On(ev.AudioReceived, nth=10), (Pause(0.5),)),),
        facts=("keepalive",),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,20)
            audio: AudioReceived x10 bytes=6400 ts=+0..+180 users=0 sha=4fb391c8eeb4
            audio: app: pause 0.5s
            audio: AudioReceived x55 bytes=35200 ts=+200..+1280 users=0 sha=5f9e02d4fd46
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x1 bytes=6 ts=+0..+0 users=16778240 sha=a854d8724ea3
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
            server: keep-alives answered on signaling,transcript
        """
        ),
    ),
    Scenario(
        name="cancel-mid-handshake",
        description="The audio handshake is never answered; the app cancels at 0.4 s: every"
        " socket must be closed.",
        streams=(
            _stream(
                "cancel-mid-handshake",
                IgnoreHandshake(role=SocketRole.AUDIO),
                entries=(),
                end=None,
            ),
        ),
        client=ClientSettings(media=MediaType.AUDIO),
        cancel_after=0.4,
        facts=("released",),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            end: cancelled
            server: every connection closed
        """
        ),
    ),
    Scenario(
        name="many-streams",
        description="Six streams at once, each the happy path.",
        streams=lambda: tuple(_stream(f"many-streams-{i}") for i in range(1, 7)),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: ActiveSpeakerChanged 16780288:Carol Example
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            audio: MediaConnected audio#1 AUDIO \
                audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400)
            audio: AudioReceived x3 bytes=38400 ts=+0..+800 users=0 sha=4b7affdca53f
            audio: closed audio#1
            transcript: MediaConnected transcript#1 TRANSCRIPT transcript(TEXT,-,True)
            transcript: TranscriptReceived x2 bytes=34 ts=+0..+600 users=16778240,16779264 \
                sha=64e4daca3184
            transcript: closed transcript#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="app-commands",
        description="Individual video: subscribe to Bob's camera, ask the stream state,"
        " unsubscribe speaker events, then Bob's camera.",
        streams=(_stream("app-commands"),),
        client=ClientSettings(
            media=MediaType.VIDEO,
            params=MediaParams(
                video=VideoParams(
                    codec=Codec.JPG, fps=5, data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM
                )
            ),
        ),
        actions=(
            Action(
                On(ev.ParticipantVideoChanged),
                (SubscribeVideo(BOB.user_id), RequestStreamState()),
            ),
            Action(
                On(ev.ActiveSpeakerChanged),
                (SubscribeEvents((EventType.ACTIVE_SPEAKER_CHANGE,), subscribe=False),),
            ),
            Action(On(ev.VideoReceived, nth=2), (SubscribeVideo(BOB.user_id, subscribe=False),)),
        ),
        expected=trace_lines(
            """
            signaling: SignalingConnected signaling#1 \
                urls=all,audio,chat,deskshare,transcript,video
            signaling: FirstPacketReceived ts=+0
            signaling: SessionStateChanged STARTED stop_reason=-
            signaling: ParticipantsJoined 16778240:Alice Example,16779264:Bob \
                Example,16780288:Carol Example
            signaling: StreamStateChanged ACTIVE reason=-
            signaling: ParticipantVideoChanged on 16778240,16779264
            signaling: app: subscribe_video 16779264 on
            signaling: app: request_stream_state
            signaling: ActiveSpeakerChanged 16779264:Bob Example
            signaling: app: subscribe_events ACTIVE_SPEAKER_CHANGE off
            signaling: VideoSubscriptionResult 16779264 status=STATUS_OK subscribed
            signaling: StreamStateReported ACTIVE
            signaling: VideoSubscriptionResult 16779264 status=STATUS_OK unsubscribed
            signaling: ParticipantsLeft 16778240,16779264,16780288
            signaling: StreamStateChanged TERMINATED reason=MEETING_ENDED
            signaling: SessionStateChanged STOPPED stop_reason=MEETING_ENDED
            signaling: SocketClosed signaling#1 local
            video: MediaConnected video#1 VIDEO \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_INDIVIDUAL_STREAM,5)
            video: VideoReceived x2 bytes=7604 ts=+800..+1000 users=16779264 sha=d330df13a475
            video: app: subscribe_video 16779264 off
            video: closed video#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
)
