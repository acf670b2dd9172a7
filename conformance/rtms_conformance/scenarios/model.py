"""The scenario data model and the helpers every scenario module writes with.

A :class:`Scenario` names what the fake server does (its streams, their
meetings and faults, the server's timing), how the client is configured
(layout, media, parameters, short timeouts and backoff policies so that a
real-time run lasts about a second), what the application does (commands
triggered by events, a slow consumer's pauses, a cancellation) and the trace
every transport must produce (see :mod:`rtms_conformance.trace` for how a run
becomes a trace).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_proto import (
    AudioParams,
    BackoffPolicy,
    ConnectionOptions,
    InvalidConfig,
    Jitter,
    Layout,
    MediaParams,
    StatusTable,
)
from rtms_proto.actions import SocketRole
from rtms_proto.enums import EventType, MediaType, StopReason

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEFAULT_AUDIO",
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
    "StreamsBuilder",
    "SubscribeEvents",
    "SubscribeVideo",
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


# --- how the server and the client are set up ---------------------------------------------


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


# --- the scenario and its expected trace --------------------------------------------------


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
