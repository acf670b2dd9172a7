"""From what an application saw to a trace that every transport must reproduce exactly.

A *record* is what one stream's application saw, in order: the session's
events, the commands the application issued (:class:`AppCommand`) and, when
the run did not end with :class:`~rtms_proto.events.SessionEnded`, how it ended
(:class:`RunEnded`).  :func:`normalise` turns a record into a tuple of
``"lane: item"`` strings.

What is kept, and why it is stable across transports:

* **Lanes.**  Each socket's bytes arrive in order, but two sockets race: a
  transport may hand the application an audio packet before or after a
  signaling event that the server sent at the same moment.  So the trace is a
  set of lanes, one per socket role (``signaling``, ``audio`` ... ``all``), each
  in the order the application saw it, and lanes are never interleaved.
  Signaling messages go to ``signaling``; media data to the lane of the socket
  that carries it (its own type in the split layout, ``all`` in the unified
  one); a reconnect or a ``MediaUnavailable`` to the lane of its scope; an
  application command to the lane of the event that triggered it.  The run's
  end (``SessionEnded``, a cancellation, a connect error) is the ``end`` lane.
* **Sockets** are named by role and ordinal (``audio#2`` is the second audio
  socket), not by the session's global socket number: when two sockets
  reconnect at the same time, which one the session numbers first is a race.
* **Fields.**  Event class names, enums (reasons, states, stop reasons, media
  types, status codes), attempt numbers, backoff delays (fixed by the injected
  jitter), user ids and names, close codes the server sent.  Never free-text
  details (a transport's error text differs), wall-clock timestamps, URLs (the
  port differs) or raw dicts.
* **Media data** is collapsed: consecutive data events of one kind in a lane
  become one item with the count, total bytes, the first and last timestamps
  relative to the stream's media epoch, the user ids and a digest over every
  packet (timestamp, user, payload).  Chat timestamps are left out (the fake
  server rounds them from its clock).

Differences that are not the transport's doing, and how they are made equal
(each is a difference of order or of reporting, never of outcome):

1. When the server ends several sockets at once (stream end, signaling loss,
   failover), a media socket that had connected may end by the server's close
   frame, by a reset, or by the client's own teardown, depending on which
   socket the client notices first.  Such an end is written ``closed
   audio#1``; an end the client detected itself (keep-alive timeout, protocol
   error, oversized message) keeps its reason.  A socket that never connected
   keeps its full failure (its handshake answer decides it).  The signaling
   socket keeps how it ended: the session reacts to each message before it
   reads the next, so a close frame behind a TERMINATED, a STOPPED or an
   answer always finds the client in the same state.
2. A media reconnect that was scheduled but never started (because signaling
   went down, or the session ended, first) is dropped: whether the client saw
   that socket go before the event that superseded it is the same race.
3. MEDIA_CONNECTION_INTERRUPTED and the loss of that socket arrive on
   different sockets; the close of a media socket is listed before the
   reconnect scheduled for it, whichever came first.
4. ``MediaInterrupted`` events that arrive after the session started ending
   on its own decision (the application stopped or closed it, a fatal failure,
   stream TERMINATED, session STOPPED) are dropped: the server reports the
   media sockets it sees closing, or not, depending on which close it reads
   first.
5. A session that ends before any signaling handshake succeeded is reduced to
   ``end: not connected: <reason> ...``: transports may report that as events
   or by raising the session's error from their connect step.
6. ``SessionEnded`` keeps its ``error`` only when the error is why it ended
   (``fatal_error``, ``reconnect_exhausted``).

Invariants are checked on the raw record and reported in an ``invariant``
lane when broken: one ``SessionEnded``, last; at most one terminal event per
socket and nothing after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rtms_proto import Layout, MediaParams, RemoteProtocolError
from rtms_proto import events as ev
from rtms_proto.actions import SocketId, SocketRole
from rtms_proto.enums import FailureReason, MediaType, SessionState, StreamState

from .scenarios import (
    CloseStream,
    Command,
    Failover,
    NotifyStopped,
    Pause,
    RequestStreamState,
    Stop,
    SubscribeEvents,
    SubscribeVideo,
)

__all__ = [
    "LANES",
    "AppCommand",
    "RecordItem",
    "RunEnded",
    "RunEndKind",
    "describe_command",
    "normalise",
]

LANES = (
    "signaling",
    "audio",
    "video",
    "deskshare",
    "transcript",
    "chat",
    "all",
    "invariant",
    "end",
    "server",
)
"""Lanes in the order a trace lists them."""


@dataclass(frozen=True, slots=True)
class AppCommand:
    """The application issued ``command`` right after record item ``trigger``;
    ``error`` names the exception class if the session refused it."""

    command: Command
    trigger: int
    error: str | None = None


class RunEndKind(enum.Enum):
    """How a run ended when it did not end with ``SessionEnded``."""

    CANCELLED = "cancelled"
    RAISED = "raised"
    TIMED_OUT = "timed out"


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run ended without (or after) ``SessionEnded``: cancelled as the scenario
    asked, an exception from the transport, or the time limit."""

    kind: RunEndKind
    error: BaseException | None = None
    detail: str = ""


RecordItem = ev.Event | AppCommand | RunEnded
"""One entry of a record."""


# --- formatting helpers -----------------------------------------------------------------------


def _v(value: object) -> str:
    """An enum by name (unknown numbers stay numbers), None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, enum.Flag):
        return value.name or str(value.value)
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _params(params: MediaParams) -> str:
    """Confirmed parameters, values in field order: ``audio(RAW_AUDIO,SR_16K,...)``."""
    parts = []
    for f in dataclasses.fields(params):
        sub = getattr(params, f.name)
        if sub is None:
            continue
        inner = ",".join(_v(getattr(sub, g.name)) for g in dataclasses.fields(sub))
        parts.append(f"{f.name}({inner})")
    return " ".join(parts)


def _error(error: RemoteProtocolError) -> str:
    text = error.reason.value
    if error.status is not None:
        text += f" status={_v(error.status)}"
    if error.status_reason:
        text += f" status_reason={error.status_reason!r}"
    return text


def _people(participants: Sequence[object]) -> str:
    out = []
    for p in participants:
        user_id = getattr(p, "user_id", None)
        name = getattr(p, "user_name", None)
        out.append(f"{user_id}" if name is None else f"{user_id}:{name}")
    return ",".join(out)


def describe_command(command: Command) -> str:
    """A command as the trace shows it."""
    match command:
        case CloseStream():
            return "close_stream"
        case Stop():
            return "stop"
        case NotifyStopped(stop_reason=reason):
            return f"notify_stopped {_v(reason)}"
        case Failover():
            return "failover (new rtms_started)"
        case SubscribeVideo(user_id=user, subscribe=on):
            return f"subscribe_video {user} {'on' if on else 'off'}"
        case SubscribeEvents(event_types=types, subscribe=on):
            return f"subscribe_events {','.join(_v(t) for t in types)} {'on' if on else 'off'}"
        case RequestStreamState():
            return "request_stream_state"
        case Pause(seconds=seconds):
            return f"pause {seconds:g}s"


# --- media runs -------------------------------------------------------------------------------

_DATA: dict[type[object], SocketRole] = {
    ev.AudioReceived: SocketRole.AUDIO,
    ev.VideoReceived: SocketRole.VIDEO,
    ev.DeskshareReceived: SocketRole.DESKSHARE,
    ev.TranscriptReceived: SocketRole.TRANSCRIPT,
    ev.ChatReceived: SocketRole.CHAT,
}

_MEDIA_LANE: dict[MediaType, str] = {
    MediaType.AUDIO: "audio",
    MediaType.VIDEO: "video",
    MediaType.DESKSHARE: "deskshare",
    MediaType.TRANSCRIPT: "transcript",
    MediaType.CHAT: "chat",
    MediaType.ALL: "all",
}


class _Run:
    """Consecutive data events of one kind in one lane."""

    def __init__(self, kind: type[object], epoch: int) -> None:
        self.kind = kind
        self.epoch = epoch
        self.count = 0
        self.size = 0
        self.first: int | None = None
        self.last: int | None = None
        self.users: set[int | None] = set()
        self.digest = hashlib.sha256()

    def _rel(self, stamp: int | None) -> int | None:
        return None if stamp is None else stamp - self.epoch

    def add(self, event: object) -> None:
        self.count += 1
        parts: list[object]
        if isinstance(event, ev.AudioReceived | ev.VideoReceived | ev.DeskshareReceived):
            payload, user = event.data, event.user_id
            self.size += len(payload)
            stamp = self._rel(event.timestamp)
            parts = [stamp, event.user_id, event.user_name]
            if not isinstance(event, ev.AudioReceived) and event.timestamp is not None:
                # Pictures may show their own wall-clock timestamp (the fake server
                # labels its JPEG/PNG frames with it): hash them with it made relative.
                payload = payload.replace(str(event.timestamp).encode(), f"+{stamp}".encode())
        elif isinstance(event, ev.TranscriptReceived):
            payload, user = event.text.encode(), event.user_id
            self.size += len(payload)
            stamp = self._rel(event.timestamp)
            parts = [
                stamp,
                event.user_id,
                event.user_name,
                self._rel(event.start_time),
                self._rel(event.end_time),
                _v(event.language),
                _v(event.attribute),
            ]
        else:
            assert isinstance(event, ev.ChatReceived)
            payload, user = event.text.encode(), event.user_id
            self.size += len(payload)
            stamp = None
            parts = [event.user_id, event.user_name]
        self.users.add(user)
        if stamp is not None:
            self.first = stamp if self.first is None else self.first
            self.last = stamp
        self.digest.update(repr(parts).encode())
        self.digest.update(len(payload).to_bytes(8, "big"))
        self.digest.update(payload)

    def render(self) -> str:
        text = f"{self.kind.__name__} x{self.count} bytes={self.size}"
        if self.first is not None:
            text += f" ts=+{self.first}..+{self.last}"
        users = ",".join(str(u) for u in sorted(self.users, key=lambda u: (u is None, u or 0)))
        return f"{text} users={users} sha={self.digest.hexdigest()[:12]}"


# --- normalising --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    text: str
    kind: str = ""  # "closed", "sched", "started" for the race rules
    key: str = ""  # the media lane a reconnect item belongs to


def _socket_names(record: Sequence[RecordItem]) -> dict[SocketId, str]:
    socks: set[SocketId] = set()
    for item in record:
        sock = getattr(item, "sock", None)
        if isinstance(sock, SocketId):
            socks.add(sock)
    names: dict[SocketId, str] = {}
    for role in SocketRole:
        ours = sorted((s for s in socks if s.role is role), key=lambda s: s.number)
        for ordinal, sock in enumerate(ours, start=1):
            names[sock] = f"{role.value}#{ordinal}"
    return names


def _ends_session(item: RecordItem) -> bool:
    """Whether the session starts ending on its own decision at this item (rule 4)."""
    if isinstance(item, AppCommand):
        return isinstance(item.command, Stop | CloseStream | NotifyStopped) and item.error is None
    if isinstance(item, ev.ConnectionFailed):
        return not item.error.retryable
    if isinstance(item, ev.StreamStateChanged):
        return item.state in (StreamState.TERMINATED, StreamState.TERMINATING)
    if isinstance(item, ev.SessionStateChanged):
        return item.state == SessionState.STOPPED
    return False


_RACY_END_REASONS = frozenset({FailureReason.CONNECTION_LOST, FailureReason.CLOSED_BY_SERVER})


def _invariants(record: Sequence[RecordItem], names: Mapping[SocketId, str]) -> list[str]:
    problems: list[str] = []
    events = [item for item in record if not isinstance(item, AppCommand | RunEnded)]
    ended = [i for i, item in enumerate(events) if isinstance(item, ev.SessionEnded)]
    if len(ended) > 1:
        problems.append(f"{len(ended)} SessionEnded events")
    if ended and ended[0] != len(events) - 1:
        problems.append("events after SessionEnded")
    if not ended and not any(isinstance(item, RunEnded) for item in record):
        problems.append("the run ended without SessionEnded")
    finished: dict[SocketId, int] = {}
    for item in events:
        sock = getattr(item, "sock", None)
        if not isinstance(sock, SocketId):
            continue
        name = names.get(sock, str(sock))
        if sock in finished:
            problems.append(f"{type(item).__name__} after the end of {name}")
        if isinstance(item, ev.ConnectionFailed | ev.SocketClosed):
            finished[sock] = finished.get(sock, 0) + 1
    return problems


def _not_connected(record: Sequence[RecordItem]) -> str | None:
    """Rule 5: the reduced trace of a session that never completed a signaling handshake."""
    if any(isinstance(item, ev.SignalingConnected) for item in record):
        return None
    for item in record:
        error: BaseException | None = None
        if isinstance(item, ev.SessionEnded) or (
            isinstance(item, RunEnded) and item.kind is RunEndKind.RAISED
        ):
            error = item.error
        if isinstance(error, RemoteProtocolError):
            return f"end: not connected: {_error(error)}"
    return None


def normalise(
    record: Sequence[RecordItem], *, layout: Layout, media_epoch_ms: int
) -> tuple[str, ...]:
    """The trace of one stream's record (see the module docstring)."""
    reduced = _not_connected(record)
    if reduced is not None:
        return (reduced,)
    names = _socket_names(record)
    connected = {
        item.sock for item in record if isinstance(item, ev.MediaConnected | ev.SignalingConnected)
    }
    lanes: dict[str, list[_Entry | _Run]] = {lane: [] for lane in LANES}
    lane_of: dict[int, str] = {}
    ending = False

    def racy(sock: SocketId) -> bool:
        """Rule 1: how this connected media socket ends depends on which socket is read first."""
        return sock in connected and sock.role is not SocketRole.SIGNALING

    def name(sock: SocketId) -> str:
        return names.get(sock, str(sock))

    def put(index: int, lane: str, entry: _Entry | _Run) -> None:
        lane_of[index] = lane
        lanes[lane].append(entry)

    def media_lane(media_type: MediaType | None) -> str:
        if media_type is None:
            return "signaling"
        return _MEDIA_LANE.get(media_type, "all")

    for index, item in enumerate(record):
        if isinstance(item, AppCommand):
            lane = lane_of.get(item.trigger, "signaling")
            text = f"app: {describe_command(item.command)}"
            if item.error is not None:
                text += f" -> refused ({item.error})"
            put(index, lane, _Entry(text))
            ending = ending or _ends_session(item)
            continue
        if isinstance(item, RunEnded):
            text = item.kind.value
            if item.kind is not RunEndKind.CANCELLED:
                error = item.error
                text += f": {type(error).__name__}: {error}" if error is not None else ""
                text += f" {item.detail}" if item.detail else ""
            put(index, "end", _Entry(text))
            continue
        ending_here = _ends_session(item)
        role = _DATA.get(type(item))
        if role is not None:
            lane = "all" if layout is Layout.UNIFIED else role.value
            lanes_list = lanes[lane]
            last = lanes_list[-1] if lanes_list else None
            if isinstance(last, _Run) and last.kind is type(item):
                lane_of[index] = lane
                last.add(item)
            else:
                run = _Run(type(item), media_epoch_ms)
                run.add(item)
                put(index, lane, run)
            continue
        match item:
            case ev.SignalingConnected():
                urls = ",".join(sorted(item.media_urls))
                text = f"SignalingConnected {name(item.sock)} urls={urls}"
                put(index, "signaling", _Entry(text))
            case ev.MediaConnected():
                text = f"MediaConnected {name(item.sock)} {_v(item.media_type)} "
                put(index, item.sock.role.value, _Entry(text + _params(item.params)))
            case ev.ConnectionFailed():
                lane = item.sock.role.value
                if racy(item.sock) and item.reason in _RACY_END_REASONS:
                    put(index, lane, _Entry(f"closed {name(item.sock)}", "closed", lane))
                else:
                    text = f"ConnectionFailed {name(item.sock)} {_error(item.error)}"
                    put(index, lane, _Entry(text))
            case ev.SocketClosed():
                lane = item.sock.role.value
                if racy(item.sock):
                    put(index, lane, _Entry(f"closed {name(item.sock)}", "closed", lane))
                elif item.by_peer:
                    text = f"SocketClosed {name(item.sock)} by_peer code={item.code}"
                    text += f" reason={item.reason!r}" if item.reason else ""
                    put(index, lane, _Entry(text))
                else:
                    put(index, lane, _Entry(f"SocketClosed {name(item.sock)} local"))
            case ev.MalformedMessage():
                err = item.error
                text = f"MalformedMessage {name(item.sock)} msg_type={_v(err.msg_type)}"
                put(index, item.sock.role.value, _Entry(f"{text} field={_v(err.field)}"))
            case ev.UnknownMessageReceived():
                text = f"UnknownMessageReceived {name(item.sock)} msg_type={item.msg_type}"
                put(index, item.sock.role.value, _Entry(text))
            case ev.MetadataReceived():
                text = f"MetadataReceived {name(item.sock)} msg_type={item.msg_type}"
                put(index, item.sock.role.value, _Entry(text))
            case ev.FirstPacketReceived():
                stamp = "-" if item.timestamp is None else f"+{item.timestamp - media_epoch_ms}"
                put(index, "signaling", _Entry(f"FirstPacketReceived ts={stamp}"))
            case ev.ActiveSpeakerChanged():
                text = f"ActiveSpeakerChanged {item.user_id}:{item.user_name}"
                put(index, "signaling", _Entry(text))
            case ev.ParticipantsJoined():
                text = f"ParticipantsJoined {_people(item.participants)}"
                put(index, "signaling", _Entry(text))
            case ev.ParticipantsLeft():
                put(index, "signaling", _Entry(f"ParticipantsLeft {_people(item.participants)}"))
            case ev.SharingStarted():
                text = f"SharingStarted {item.user_id}:{item.user_name}"
                put(index, "signaling", _Entry(text))
            case ev.SharingStopped():
                put(index, "signaling", _Entry("SharingStopped"))
            case ev.MediaInterrupted():
                if not ending:
                    named = item.raw.get("media_type")
                    if isinstance(named, int) and not isinstance(named, bool):
                        with contextlib.suppress(ValueError):
                            named = MediaType(named)
                    text = f"MediaInterrupted media_type={_v(named)}"
                    put(index, "signaling", _Entry(text))
            case ev.ParticipantVideoChanged():
                ids = ",".join(str(u) for u in item.user_ids)
                text = f"ParticipantVideoChanged {'on' if item.on else 'off'} {ids}"
                put(index, "signaling", _Entry(text))
            case ev.ChatGroupChanged():
                put(index, "signaling", _Entry(f"ChatGroupChanged {_v(item.event_type)}"))
            case ev.ContactCenterEvent():
                put(index, "signaling", _Entry(f"ContactCenterEvent {_v(item.event_type)}"))
            case ev.UnknownEventReceived():
                text = f"UnknownEventReceived event_type={item.event_type}"
                put(index, "signaling", _Entry(text))
            case ev.StreamStateChanged():
                text = f"StreamStateChanged {_v(item.state)} reason={_v(item.reason)}"
                put(index, "signaling", _Entry(text))
            case ev.SessionStateChanged():
                text = f"SessionStateChanged {_v(item.state)} stop_reason={_v(item.stop_reason)}"
                put(index, "signaling", _Entry(text))
            case ev.StreamStateReported():
                put(index, "signaling", _Entry(f"StreamStateReported {_v(item.state)}"))
            case ev.SessionStateReported():
                put(index, "signaling", _Entry(f"SessionStateReported {_v(item.state)}"))
            case ev.StreamCloseAcknowledged():
                text = f"StreamCloseAcknowledged status={_v(item.status)} reason={item.reason!r}"
                put(index, "signaling", _Entry(text))
            case ev.VideoSubscriptionResult():
                text = (
                    f"VideoSubscriptionResult {item.user_id} status={_v(item.status)}"
                    f" {'subscribed' if item.subscribed else 'unsubscribed'}"
                )
                put(index, "signaling", _Entry(text))
            case ev.MediaUnavailable():
                lane = media_lane(item.media_type)
                put(index, lane, _Entry(f"MediaUnavailable {_v(item.media_type)}"))
            case ev.ReconnectScheduled():
                lane = media_lane(item.media_type)
                text = (
                    f"ReconnectScheduled {item.scope.value} attempt={item.attempt}"
                    f" delay={item.delay:.3f} reason={item.reason.value}"
                )
                put(index, lane, _Entry(text, "sched", lane))
            case ev.ReconnectStarted():
                lane = media_lane(item.media_type)
                text = f"ReconnectStarted {item.scope.value} attempt={item.attempt}"
                put(index, lane, _Entry(text, "started", lane))
            case ev.ReconnectCompleted():
                lane = media_lane(item.media_type)
                text = f"ReconnectCompleted {item.scope.value} attempts={item.attempts}"
                put(index, lane, _Entry(text))
            case ev.SessionEnded():
                text = f"SessionEnded {item.why.value} stop_reason={_v(item.stop_reason)}"
                fatal = item.why in (ev.EndReason.FATAL_ERROR, ev.EndReason.RECONNECT_EXHAUSTED)
                if fatal and item.error is not None:
                    text += f" error={_error(item.error)}"
                put(index, "end", _Entry(text))
            case _:
                put(index, "signaling", _Entry(type(item).__name__))
        ending = ending or ending_here
    for lane in ("audio", "video", "deskshare", "transcript", "chat", "all"):
        lanes[lane] = _media_races(lanes[lane])
    lanes["invariant"] = [_Entry(text) for text in _invariants(record, names)]
    out: list[str] = []
    for lane in LANES:
        for entry in lanes[lane]:
            text = entry.render() if isinstance(entry, _Run) else entry.text
            out.append(f"{lane}: {text}")
    return tuple(out)


def _media_races(entries: list[_Entry | _Run]) -> list[_Entry | _Run]:
    """Rules 2 and 3 on one media lane."""
    items = list(entries)
    # Rule 3: a socket's close comes before the reconnect scheduled for it.
    changed = True
    while changed:
        changed = False
        for i in range(len(items) - 1):
            a, b = items[i], items[i + 1]
            if (
                isinstance(a, _Entry)
                and isinstance(b, _Entry)
                and a.kind == "sched"
                and b.kind == "closed"
            ):
                items[i], items[i + 1] = b, a
                changed = True
    # Rule 2: drop a scheduled reconnect that never started.
    kept: list[_Entry | _Run] = []
    for i, entry in enumerate(items):
        if isinstance(entry, _Entry) and entry.kind == "sched":
            later = [e for e in items[i + 1 :] if isinstance(e, _Entry) and e.kind]
            follow = next((e for e in later if e.kind in ("sched", "started")), None)
            if follow is None or follow.kind != "started":
                continue
        kept.append(entry)
    return kept
