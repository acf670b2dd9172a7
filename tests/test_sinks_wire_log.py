"""The wire log: record a session's inputs, replay them into identical files.

The session runs against the fake server on the in-memory network (simulated
time, no sockets), through reconnects of both scopes.
"""

from __future__ import annotations

import filecmp
import random
from pathlib import Path

import pytest

from rtms_app.sinks import (
    Recorder,
    RecorderOptions,
    TappedSession,
    WireFormatError,
    WireKind,
    WireLogWriter,
    config_from_header,
    config_to_header,
    read_wire_log,
    replay,
)
from rtms_conformance import faults as f
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.memory import MemoryNetwork
from rtms_conformance.server import FakeRtmsServer, ServerConfig, StreamSpec
from rtms_proto import (
    ConnectionOptions,
    Credentials,
    Layout,
    MediaType,
    SessionConfig,
    StreamIdentity,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.enums import StopReason

CLIENT_ID = "wire-client"
SECRET = "wire-secret-never-written"
UUID = "wire-meeting=="
SID = "wire-stream"
MEDIA = MediaType.AUDIO | MediaType.VIDEO | MediaType.TRANSCRIPT | MediaType.CHAT


def session_config(layout: Layout = Layout.SPLIT) -> SessionConfig:
    hosts = ("127.0.0.1",)
    return SessionConfig(
        stream=StreamIdentity(instance_id=UUID, rtms_stream_id=SID),
        server_url=f"ws://127.0.0.1/signaling/{SID}",
        credentials=Credentials(client_id=CLIENT_ID, client_secret=SECRET),
        media=MEDIA,
        layout=layout,
        signaling_options=ConnectionOptions(allowed_hosts=hosts),
        media_options=ConnectionOptions(allowed_hosts=hosts),
    )


def record_session(
    folder: Path, faults: tuple[f.Fault, ...], layout: Layout = Layout.SPLIT
) -> tuple[list[tuple[float | None, ev.Event]], Path]:
    """Run a stream on the in-memory network, recording its files and its wire log."""
    server = FakeRtmsServer(ServerConfig(client_id=CLIENT_ID, client_secret=SECRET))
    server.add_stream(
        StreamSpec(
            meeting_uuid=UUID,
            rtms_stream_id=SID,
            meeting=MeetingSpec(duration=12.0, turn=1.5, pause=0.3, chat_interval=2.0),
            faults=faults,
        ),
        0.0,
    )
    config = session_config(layout)
    folder.mkdir(parents=True, exist_ok=True)
    wire_path = folder / "wire.rtms"
    writer = WireLogWriter(wire_path, config_to_header(config, {"gap_fill": True}))
    session = TappedSession(config, jitter=random.Random(7).random, wire=writer)
    net = MemoryNetwork(server)
    record = net.add_client(session)
    assert net.run_until_true(lambda: session.ended, limit=60.0)
    writer.close()
    recorder = Recorder(folder, RecorderOptions(expect=MEDIA))
    events: list[tuple[float | None, ev.Event]] = []
    for now, item in record.events:
        event: ev.Event = item  # type: ignore[assignment]
        elapsed = now - 0.0
        events.append((elapsed, event))
        recorder.handle(event, elapsed)
    recorder.close()
    return events, wire_path


FAULTS: tuple[f.Fault, ...] = (
    f.InterruptMedia(at=2.0, media_type=MediaType.AUDIO, drop=True),
    f.DropSocket(at=5.0, role=SocketRole.SIGNALING),
    f.SendMalformed(at=7.0),
)


def same_tree(a: Path, b: Path, ignore: tuple[str, ...] = ("wire.rtms",)) -> None:
    cmp = filecmp.dircmp(a, b, ignore=list(ignore))

    def check(c: filecmp.dircmp[str]) -> None:
        assert not c.left_only and not c.right_only, (c.left_only, c.right_only)
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        assert not mismatch and not errors, (mismatch, errors)
        for sub in c.subdirs.values():
            check(sub)

    check(cmp)


@pytest.mark.parametrize("layout", [Layout.SPLIT, Layout.UNIFIED])
def test_replay_regenerates_identical_files(tmp_path: Path, layout: Layout) -> None:
    first = tmp_path / "first"
    events, wire_path = record_session(first, FAULTS, layout)
    kinds = {type(e) for _, e in events}
    assert ev.ReconnectCompleted in kinds and ev.MalformedMessage in kinds
    scopes = {e.scope for _, e in events if isinstance(e, ev.ReconnectCompleted)}
    assert ev.ReconnectScope.SIGNALING in scopes
    if layout is Layout.SPLIT:
        assert ev.ReconnectScope.MEDIA in scopes

    second = tmp_path / "second"
    recorder = Recorder(second, RecorderOptions(expect=MEDIA))
    replayed: list[tuple[float | None, ev.Event]] = []

    def on_event(event: ev.Event, elapsed: float | None) -> None:
        replayed.append((elapsed, event))
        recorder.handle(event, elapsed)

    header, ended = replay(wire_path, on_event)
    recorder.close()
    assert header["stream"]["rtms_stream_id"] == SID
    assert ended == events[-1][1]
    assert isinstance(ended, ev.SessionEnded) and ended.why is ev.EndReason.STREAM_TERMINATED
    assert replayed == events
    same_tree(first, second)
    assert (second / "audio.wav").stat().st_size > 12 * 32000


def test_wire_log_holds_no_secret(tmp_path: Path) -> None:
    _, wire_path = record_session(tmp_path, ())
    data = wire_path.read_bytes()
    signature = handshake_signature(
        client_id=CLIENT_ID, client_secret=SECRET, instance_id=UUID, rtms_stream_id=SID
    )
    assert SECRET.encode() not in data
    assert signature.encode() not in data
    header, records = read_wire_log(wire_path)
    assert "client_secret" not in str(header)
    kinds = [r.kind for r in records]
    assert kinds[0] is WireKind.START
    assert {WireKind.OPENED, WireKind.DATA, WireKind.TIMER} <= set(kinds)


def test_truncated_log_replays_what_it_has(tmp_path: Path) -> None:
    _, wire_path = record_session(tmp_path / "a", ())
    data = wire_path.read_bytes()
    cut = tmp_path / "cut.rtms"
    cut.write_bytes(data[: len(data) // 2 + 3])  # a crash mid-record
    seen: list[ev.Event] = []
    _, ended = replay(cut, lambda e, t: seen.append(e))
    assert ended is None
    assert any(isinstance(e, ev.AudioReceived) for e in seen)


def test_commands_are_recorded_and_replayed(tmp_path: Path) -> None:
    server = FakeRtmsServer(ServerConfig(client_id=CLIENT_ID, client_secret=SECRET))
    server.add_stream(StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID), 0.0)
    config = session_config()
    writer = WireLogWriter(tmp_path / "w.rtms", config_to_header(config, {}))
    session = TappedSession(config, jitter=lambda: 0.25, wire=writer)
    net = MemoryNetwork(server)
    record = net.add_client(session)
    net.run_for(1.0)
    session.subscribe_events([9], now=net.now)
    session.request_stream_state(now=net.now)
    session.request_session_state(f"{SID}-session-1", now=net.now)
    net.run_for(0.5)
    session.notify_stopped(StopReason.MEETING_ENDED, now=net.now)
    net.run_for(1.0)
    assert session.ended
    writer.close()
    live = [e for _, e in record.events]
    replayed: list[ev.Event] = []
    _, ended = replay(tmp_path / "w.rtms", lambda e, t: replayed.append(e))
    assert replayed == live
    assert ended is not None and ended.stop_reason is StopReason.MEETING_ENDED


def test_close_stream_and_failover_commands(tmp_path: Path) -> None:
    server = FakeRtmsServer(ServerConfig(client_id=CLIENT_ID, client_secret=SECRET))
    server.add_stream(
        StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID, faults=(f.Failover(at=1.0),)), 0.0
    )
    config = session_config()
    writer = WireLogWriter(tmp_path / "w.rtms", config_to_header(config, {}))
    session = TappedSession(config, jitter=lambda: 0.5, wire=writer)
    net = MemoryNetwork(server)
    record = net.add_client(session)
    net.run_for(1.5)
    started = [w for w in net.webhooks if w.event.endswith("rtms_started")]
    assert started
    from rtms_proto.webhooks import RtmsStarted, parse_webhook

    event = parse_webhook(started[-1].body, allowed_hosts=("127.0.0.1",))
    assert isinstance(event, RtmsStarted)
    session.failover(event.server_url.url, now=net.now)
    net.run_for(2.0)
    session.close_stream(now=net.now)
    net.run_for(2.0)
    assert session.ended
    writer.close()
    replayed: list[ev.Event] = []
    replay(tmp_path / "w.rtms", lambda e, t: replayed.append(e))
    assert replayed == [e for _, e in record.events]


def test_header_round_trip_and_bad_files(tmp_path: Path) -> None:
    config = session_config(Layout.UNIFIED)
    back = config_from_header(config_to_header(config, {}))
    assert back.stream == config.stream and back.server_url == config.server_url
    assert back.media == config.media and back.layout is Layout.UNIFIED
    assert back.effective_params == config.effective_params
    assert back.signaling_options == config.signaling_options
    assert back.media_backoff == config.media_backoff
    assert back.credentials.client_id == CLIENT_ID
    assert back.credentials.client_secret != SECRET

    bad = tmp_path / "bad"
    bad.write_bytes(b"not a wire log")
    with pytest.raises(WireFormatError):
        read_wire_log(bad)
    bad.write_bytes(b"RTMSWIRE\n\x01")
    with pytest.raises(WireFormatError, match="truncated"):
        read_wire_log(bad)
    bad.write_bytes(b"RTMSWIRE\n\x03\x00\x00\x00{x}")
    with pytest.raises(WireFormatError, match="header"):
        read_wire_log(bad)
    bad.write_bytes(b'RTMSWIRE\n\x0e\x00\x00\x00{"version":99}')
    with pytest.raises(WireFormatError, match="version"):
        read_wire_log(bad)
