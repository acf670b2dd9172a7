"""The fake RTMS server's protocol core, driven in memory on a simulated clock.

Clients are rtms_proto's own ``Session`` (the real client machines) or raw
WebSocket peers that send exactly what a test wants, including what Zoom's
official client sends (docs/protocol.md §13).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from rtms_conformance import faults as f
from rtms_conformance.meeting import DEFAULT_PEOPLE, MeetingSpec
from rtms_conformance.memory import ClientRecord, MemoryNetwork, WsPeer
from rtms_conformance.server import (
    Abort,
    Close,
    ConnId,
    EmitWebhook,
    FakeRtmsServer,
    PauseReading,
    Send,
    ServerAction,
    ServerConfig,
    StreamInfo,
    StreamSpec,
)
from rtms_conformance.server.schedule import Scheduler, next_due
from rtms_conformance.server.state import Stream
from rtms_conformance.timeline import (
    EndStream,
    PauseSession,
    ResumeSession,
    TimelineEntry,
)
from rtms_proto import (
    AudioParams,
    ConnectionOptions,
    Credentials,
    Layout,
    MediaParams,
    Session,
    SessionConfig,
    StatusTable,
    StreamIdentity,
    VideoParams,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import (
    DataOption,
    EventType,
    FailureReason,
    MediaType,
    Product,
    SessionState,
    StopReason,
    StreamState,
)
from rtms_proto.webhooks import RtmsStarted, RtmsStopped, parse_webhook, verify_webhook

CLIENT_ID = "fake-client-id"
SECRET = "fake-client-secret"
BASE = "ws://127.0.0.1:9000"
UUID = "4444AAAiAAAAAiAiAiiAii=="
SID = "03db704592624398931a588dd78200cb"
ALICE, BOB, CAROL = DEFAULT_PEOPLE[:3]
OPTIONS = ConnectionOptions(allowed_hosts=("127.0.0.1",))


def make_server(**config: Any) -> FakeRtmsServer:
    return FakeRtmsServer(
        ServerConfig(client_id=CLIENT_ID, client_secret=SECRET, base_url=BASE, **config)
    )


def add_stream(server: FakeRtmsServer, now: float = 0.0, **spec: Any) -> StreamInfo:
    spec.setdefault("meeting_uuid", UUID)
    spec.setdefault("rtms_stream_id", SID)
    return server.add_stream(StreamSpec(**spec), now)


def setup(**spec: Any) -> tuple[FakeRtmsServer, StreamInfo, MemoryNetwork]:
    config = spec.pop("config", {})
    server = make_server(**config)
    info = add_stream(server, **spec)
    return server, info, MemoryNetwork(server)


def signature(secret: str = SECRET, instance: str = UUID, stream: str = SID) -> str:
    return handshake_signature(
        client_id=CLIENT_ID, client_secret=secret, instance_id=instance, rtms_stream_id=stream
    )


def hs1(**over: object) -> dict[str, object]:
    msg: dict[str, object] = {
        "msg_type": 1,
        "protocol_version": 1,
        "meeting_uuid": UUID,
        "rtms_stream_id": SID,
        "signature": signature(),
    }
    msg.update(over)
    return {k: v for k, v in msg.items() if v is not None}


def hs3(media_type: int, params: object = None, **over: object) -> dict[str, object]:
    msg = hs1(msg_type=3, media_type=media_type, **over)
    if params is not None:
        msg["media_params"] = params
    return msg


def path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def signaling(net: MemoryNetwork, info: StreamInfo, **over: object) -> WsPeer:
    peer = net.open(path(info.signaling_url))
    peer.send(hs1(**over))
    return peer


def media(
    net: MemoryNetwork, kind: str, media_type: int, params: object = None, **over: object
) -> WsPeer:
    peer = net.open(f"/media/{SID}/{kind}")
    peer.send(hs3(media_type, params, **over))
    return peer


def reply(peer: WsPeer) -> Any:
    """The first message the server sent on a socket (the handshake reply)."""
    return peer.messages[0]


def make_session(
    info: StreamInfo,
    *,
    media: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT,
    secret: str = SECRET,
    **config: Any,
) -> Session:
    return Session(
        SessionConfig(
            stream=StreamIdentity(
                instance_id=info.instance_id,
                rtms_stream_id=info.rtms_stream_id,
                product=info.product,
            ),
            server_url=info.signaling_url,
            credentials=Credentials(client_id=CLIENT_ID, client_secret=secret),
            media=media,
            signaling_options=OPTIONS,
            media_options=OPTIONS,
            **config,
        ),
        jitter=lambda: 0.5,
    )


def audio_of(record: ClientRecord) -> list[ev.AudioReceived]:
    return [e for e in record.of(ev.AudioReceived) if isinstance(e, ev.AudioReceived)]


def check_audio(
    server: FakeRtmsServer, info: StreamInfo, packets: list[ev.AudioReceived], params: AudioParams
) -> None:
    """Packets are contiguous, unique, and byte for byte what the server says it sends."""
    stamps = [p.timestamp for p in packets if p.timestamp is not None]
    assert len(stamps) == len(packets)
    step = int(params.send_rate)
    first, last = stamps[0], stamps[-1]
    assert stamps == list(range(first, last + step, step)), "gap or duplicate in the audio"
    recording = b"".join(p.data for p in packets)
    assert recording == server.expected_audio(info, params, first, last + step)


# --- the happy path ---------------------------------------------------------------------------


def test_session_gets_a_full_meeting() -> None:
    server, info, net = setup()
    session = make_session(
        info,
        media=MediaType.AUDIO
        | MediaType.VIDEO
        | MediaType.DESKSHARE
        | MediaType.TRANSCRIPT
        | MediaType.CHAT,
    )
    client = net.add_client(session)
    net.run_until(13.0)
    connected = client.of(ev.SignalingConnected)[0]
    assert isinstance(connected, ev.SignalingConnected)
    assert dict(connected.media_urls) == {
        kind: f"{BASE}/media/{SID}/{kind}"
        for kind in ("audio", "video", "deskshare", "transcript", "chat", "all")
    }
    assert client.of(ev.FirstPacketReceived) == [
        ev.FirstPacketReceived(timestamp=info.media_epoch_ms)
    ]
    joined = client.of(ev.ParticipantsJoined)[0]
    assert isinstance(joined, ev.ParticipantsJoined)
    assert [p.user_id for p in joined.participants] == [ALICE.user_id, BOB.user_id, CAROL.user_id]
    speakers = [
        e.user_id
        for e in client.of(ev.ActiveSpeakerChanged)
        if isinstance(e, ev.ActiveSpeakerChanged)
    ]
    assert speakers == [BOB.user_id, CAROL.user_id, ALICE.user_id]
    transcripts = [
        e for e in client.of(ev.TranscriptReceived) if isinstance(e, ev.TranscriptReceived)
    ]
    assert transcripts[0].text == "Alice Example says sentence number 1."
    assert transcripts[0].start_time == info.media_epoch_ms
    assert transcripts[0].end_time == info.media_epoch_ms + 3500
    assert len(client.of(ev.ChatReceived)) == 2
    assert len(client.of(ev.SharingStarted)) == 1 and len(client.of(ev.SharingStopped)) == 1
    shares = client.of(ev.DeskshareReceived)
    assert 6 <= len(shares) <= 7
    videos = [e for e in client.of(ev.VideoReceived) if isinstance(e, ev.VideoReceived)]
    assert len(videos) == 13 * 5 + 1
    assert videos[0].data.startswith(b"\xff\xd8") and videos[0].user_id == ALICE.user_id
    check_audio(server, info, audio_of(client), AudioParams())
    assert server.status(info).media_released == {
        SocketRole.AUDIO,
        SocketRole.VIDEO,
        SocketRole.DESKSHARE,
        SocketRole.TRANSCRIPT,
        SocketRole.CHAT,
    }


def test_confirmed_params_have_the_defaults_filled_in() -> None:
    _, info, net = setup()
    signaling(net, info)
    video = media(net, "video", 2, {"video": {"fps": 3}})
    chat = media(net, "chat", 16)
    transcript = media(net, "transcript", 8, None)
    raw = [json.loads(p.frames[0]) for p in (video, chat, transcript)]
    assert raw[0] == {
        "msg_type": 4,
        "protocol_version": 1,
        "sequence": 0,
        "status_code": 0,
        "reason": "",
        "payload_encrypted": False,
        "media_params": {
            "video": {"content_type": 3, "codec": 5, "resolution": 2, "data_opt": 3, "fps": 3}
        },
    }
    assert raw[1]["media_params"] == {"chat": {"content_type": 5}}
    assert raw[2]["media_params"] == {"transcript": {"content_type": 5, "enable_lid": True}}


def test_unified_socket_confirms_every_scoped_type() -> None:
    _, info, net = setup(scopes=MediaType.AUDIO | MediaType.TRANSCRIPT)
    sig = signaling(net, info)
    assert set(reply(sig).media_urls) == {"audio", "transcript", "all"}
    peer = media(net, "all", 32, {"audio": {"sample_rate": 3}, "video": {"fps": 1}})
    confirmed = reply(peer).media_params
    assert confirmed.audio == AudioParams(sample_rate=3)
    assert confirmed.video is None and confirmed.transcript is not None


def test_session_in_unified_layout_gets_audio_and_transcripts() -> None:
    server, info, net = setup()
    client = net.add_client(make_session(info, layout=Layout.UNIFIED))
    net.run_until(4.0)
    assert server.status(info).media_released == {SocketRole.ALL}
    assert len(client.of(ev.TranscriptReceived)) == 1
    check_audio(server, info, audio_of(client), AudioParams())


# --- signaling handshake checks ---------------------------------------------------------------


def test_bad_signature_is_rejected_and_the_socket_closed() -> None:
    _, info, net = setup()
    peer = signaling(net, info, signature=signature(secret="wrong"))
    answer = reply(peer)
    assert isinstance(answer, m.SignalingHandshakeResponse)
    assert (answer.status_code, answer.reason) == (3, "invalid signature")
    assert peer.close_code == 1000 and peer.eof


def test_session_with_a_wrong_secret_fails_fatally() -> None:
    _, info, net = setup()
    client = net.add_client(make_session(info, secret="not-the-secret"))
    net.run_until(5.0)
    failed = client.of(ev.ConnectionFailed)[0]
    assert isinstance(failed, ev.ConnectionFailed)
    assert failed.reason is FailureReason.AUTHENTICATION_FAILED
    assert int(failed.error.status or 0) == 3
    ended = client.of(ev.SessionEnded)
    assert len(ended) == 1


@pytest.mark.parametrize(
    ("over", "current", "legacy"),
    [
        ({"signature": signature(secret="x")}, 3, 15),
        ({"signature": None}, 3, 14),
        ({"rtms_stream_id": "other"}, 2, 16),
        ({"rtms_stream_id": None}, 2, 10),
        ({"meeting_uuid": "other-meeting"}, 2, 16),
        ({"meeting_uuid": None}, 4, 7),
        ({"protocol_version": 2}, 4, 3),
        ({"msg_type": 3}, 1, 4),
    ],
)
def test_handshake_statuses_in_both_tables(
    over: dict[str, object], current: int, legacy: int
) -> None:
    for table, expected in ((StatusTable.CURRENT, current), (StatusTable.LEGACY, legacy)):
        _, info, net = setup(config={"status_table": table})
        peer = signaling(net, info, **over)
        assert reply(peer).status_code == expected


def test_missing_protocol_version_is_accepted() -> None:
    _, info, net = setup()
    peer = signaling(net, info, protocol_version=None)
    assert reply(peer).status_code == 0


def test_instance_id_under_any_product_key() -> None:
    _, info, net = setup(product=Product.VIDEO_SDK)
    peer = signaling(net, info, meeting_uuid=None, session_id=UUID)
    assert reply(peer).status_code == 0
    body = json.loads(net.server.rtms_started_body(info))
    assert body["event"] == "session.rtms_started"
    assert body["payload"]["session_id"] == UUID


def test_malformed_handshake_is_rejected() -> None:
    _, info, net = setup()
    peer = net.open(path(info.signaling_url))
    peer.send("this is not json")
    assert reply(peer).status_code == 4


def test_duplicate_signaling_is_rejected_while_the_first_is_live() -> None:
    for table, code in ((StatusTable.CURRENT, 8), (StatusTable.LEGACY, 17)):
        server, info, net = setup(config={"status_table": table})
        first = signaling(net, info)
        second = signaling(net, info)
        assert reply(first).status_code == 0
        answer = reply(second)
        assert (answer.status_code, answer.reason) == (code, "duplicate signal request")
        assert second.eof
        assert server.status(info).signaling_connected


def test_a_new_signaling_handshake_is_accepted_after_the_first_is_gone() -> None:
    server, info, net = setup()
    first = signaling(net, info)
    first.drop()
    assert not server.status(info).signaling_connected
    assert [e for e, _ in server.webhooks(info)][-1] == "meeting.rtms_interrupted"
    assert reply(signaling(net, info)).status_code == 0


def test_binary_frames_and_zooms_pretty_printed_json_are_accepted() -> None:
    _, info, net = setup()
    peer = net.open(path(info.signaling_url), subprotocols=("websocket",))
    assert peer.subprotocol == "websocket"
    text = json.dumps(hs1(rtms_client_agent="Zoom.App", sequence=1234567), indent=2, sort_keys=True)
    peer.send(text.encode(), binary=True)
    assert reply(peer).status_code == 0


def test_unknown_paths_are_refused() -> None:
    _, _info, net = setup()
    for target in ("/", "/signaling/unknown-stream", f"/media/{SID}/bogus", f"/signaling2/{SID}"):
        peer = net.open(target)
        assert peer.rejected_status == 404 and peer.eof


def test_a_socket_that_never_handshakes_is_closed() -> None:
    _, info, net = setup(config={"handshake_timeout": 5.0})
    peer = net.open(path(info.signaling_url))
    net.run_until(4.9)
    assert not peer.closed
    net.run_until(5.0)
    assert peer.close_code == 1000
    net.run_until(8.0)
    assert peer.eof


# --- media handshake checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "media_type", "params", "status"),
    [
        ("audio", 2, None, 7),
        ("audio", 9, None, 14),
        ("audio", 64, None, 14),
        ("audio", 1, {"audio": {"sample_rate": 9}}, 20),
        ("audio", 1, {"audio": {"channel": 3}}, 21),
        ("audio", 1, {"audio": {"codec": 5}}, 22),
        ("audio", 1, {"audio": {"codec": 4}}, 20),
        ("audio", 1, {"audio": {"data_opt": 3}}, 23),
        ("audio", 1, {"audio": {"send_rate": 30}}, 24),
        ("audio", 1, {"audio": {"content_type": 3}}, 19),
        ("audio", 1, {"audio": {"sample_rate": "fast"}}, 18),
        ("audio", 1, {"audio": [1, 2]}, 18),
        ("audio", 1, [1, 2], 17),
        ("video", 2, {"video": {"resolution": 7}}, 28),
        ("video", 2, {"video": {"fps": 31}}, 30),
        ("video", 2, {"video": {"data_opt": 1}}, 29),
        ("video", 2, {"video": {"codec": 1}}, 27),
        ("deskshare", 4, {"deskshare": {"content_type": 5}}, 32),
        ("transcript", 8, {"transcript": {"src_language": 99}}, 43),
        ("transcript", 8, {"transcript": {"content_type": 2}}, 37),
        ("chat", 16, {"chat": {"content_type": 2}}, 39),
    ],
)
def test_media_handshake_statuses(kind: str, media_type: int, params: object, status: int) -> None:
    _, info, net = setup()
    signaling(net, info)
    peer = media(net, kind, media_type, params)
    assert reply(peer).status_code == status
    assert peer.close_code == 1000


def test_media_types_outside_the_scopes_are_not_supported() -> None:
    _, info, net = setup(scopes=MediaType.AUDIO)
    signaling(net, info)
    expected = {"video": (2, 10), "deskshare": (4, 11), "transcript": (8, 12), "chat": (16, 13)}
    for kind, (flag, status) in expected.items():
        assert reply(media(net, kind, flag)).status_code == status


def test_documented_adjustments_of_media_params() -> None:
    _, info, net = setup()
    signaling(net, info)
    audio = reply(media(net, "audio", 1, {"audio": {"send_rate": 2000}})).media_params.audio
    assert audio.send_rate == 1000
    video = reply(media(net, "video", 2, {"video": {"fps": 25}})).media_params.video
    assert (video.codec, video.fps) == (5, 5)  # no codec: JPG at 5 fps (ISS #94)
    share = reply(media(net, "deskshare", 4, {"deskshare": {"fps": 10, "codec": 7}}))
    assert share.media_params.deskshare.fps == 10


def test_duplicate_and_conflicting_media_connections() -> None:
    _, info, net = setup()
    signaling(net, info)
    assert reply(media(net, "audio", 1)).status_code == 0
    assert reply(media(net, "audio", 1)).status_code == 16
    assert reply(media(net, "all", 32)).status_code == 16
    _, info, net = setup()
    signaling(net, info)
    assert reply(media(net, "all", 32)).status_code == 0
    assert reply(media(net, "audio", 1)).status_code == 15


def test_media_before_signaling_is_refused() -> None:
    _, _info, net = setup()
    peer = media(net, "audio", 1)
    assert reply(peer).status_code == 45


def test_media_waits_for_client_ready() -> None:
    server, info, net = setup()
    sig = signaling(net, info)
    audio = media(net, "audio", 1)
    net.run_until(2.0)
    assert audio.of(m.AudioData) == []
    sig.send({"msg_type": 7, "rtms_stream_id": SID})
    net.run_until(2.0)
    # Buffered from the stream start: 2 s of audio at once, timestamps from the epoch.
    packets = audio.of(m.AudioData)
    assert len(packets) == 100
    first = packets[0]
    assert isinstance(first, m.AudioData)
    assert first.timestamp == info.media_epoch_ms and first.user_id == 0 and first.user_name is None
    stream_state = sig.of(m.StreamStateUpdate)
    assert stream_state == [
        m.StreamStateUpdate(state=StreamState.ACTIVE, timestamp=server.config.epoch_ms + 2000)
    ]


# --- Zoom's own client (docs/protocol.md §13) ----------------------------------------------


def zoom_json(obj: Mapping[str, object]) -> bytes:
    """Zoom's client: binary frames, pretty-printed, sorted keys."""
    return json.dumps(obj, indent=4, sort_keys=True).encode()


def test_zoom_official_client_flow() -> None:
    server, info, net = setup()
    sig = net.open(path(info.signaling_url), subprotocols=("websocket",))
    sig.send(zoom_json(hs1(rtms_client_agent="rtms-sdk/1.1.0", sequence=987654321)), binary=True)
    urls = reply(sig).media_urls
    assert {"audio", "video", "deskshare", "transcript"} <= set(urls)
    sdk_params = {
        "audio": {"content_type": 2, "codec": 4, "sample_rate": 3, "channel": 2, "data_opt": 2,
                  "send_rate": 20},
        "video": {"content_type": 3, "codec": 7, "resolution": 2, "data_opt": 3, "fps": 30},
        "deskshare": {"content_type": 3, "codec": 7, "resolution": 2, "fps": 30},
    }  # fmt: skip
    peers = {}
    for kind, flag in (("audio", 1), ("video", 2), ("deskshare", 4), ("transcript", 8)):
        peer = net.open(path(urls[kind]), subprotocols=("websocket",))
        body = hs3(flag, None, sequence=1)
        body["media_params"] = {kind: sdk_params[kind]} if kind in sdk_params else None
        peer.send(zoom_json(body), binary=True)
        assert reply(peer).status_code == 0, kind
        peers[kind] = peer
    assert reply(peers["audio"]).media_params.audio.codec == 4
    # One client-ready after all media handshakes, then the subscription.
    sig.send(zoom_json({"msg_type": 7, "rtms_stream_id": SID}), binary=True)
    events = [{"event_type": t, "subscribe": True} for t in (2, 3, 4)]
    sig.send(zoom_json({"msg_type": 5, "events": events}), binary=True)
    net.run_until(8.0)
    assert server.status(info).media_released == {
        SocketRole.AUDIO, SocketRole.VIDEO, SocketRole.DESKSHARE, SocketRole.TRANSCRIPT
    }  # fmt: skip
    audio = [x for x in peers["audio"].of(m.AudioData) if isinstance(x, m.AudioData)]
    assert audio and all(a.user_name for a in audio)  # multi-stream audio carries names
    assert {a.data for a in audio} == {b"\xfc\xff\xfe"}  # Opus stereo frames
    video = [x for x in peers["video"].of(m.VideoData) if isinstance(x, m.VideoData)]
    assert video[0].data.startswith(b"\x00\x00\x00\x01\x67")  # SPS first
    assert len(video) == 8 * 30 + 1
    assert peers["transcript"].of(m.TranscriptData)
    # Keep-alives carry a sequence (the SDK ignores those without).
    keepalives = peers["transcript"].of(m.KeepAliveRequest)
    assert not keepalives
    net.run_until(30.0)
    idle = peers["deskshare"].of(m.KeepAliveRequest)
    assert idle and all(isinstance(k, m.KeepAliveRequest) and k.sequence for k in idle)


# --- keep-alives --------------------------------------------------------------------------------


def test_keepalives_on_an_idle_socket_and_the_three_miss_rule() -> None:
    server, info, net = setup(meeting=MeetingSpec(participants=0))
    sig = signaling(net, info)
    sig.auto_keepalive = False
    net.run_until(39.9)
    requests = [x for x in sig.of(m.KeepAliveRequest) if isinstance(x, m.KeepAliveRequest)]
    epoch = server.config.epoch_ms
    assert [(k.timestamp, k.sequence) for k in requests] == [
        (epoch + 10_000, 1),
        (epoch + 20_000, 2),
        (epoch + 30_000, 3),
    ]
    assert not sig.closed
    net.run_until(40.0)
    assert sig.reset  # dropped without a close frame
    assert not server.status(info).signaling_connected
    events = [e for e, _ in server.webhooks(info)]
    assert events == ["meeting.rtms_started", "meeting.rtms_interrupted"]
    net.run_until(99.9)
    assert not server.status(info).ended
    net.run_until(100.0)
    status = server.status(info)
    assert status.ended and status.stop_reason == StopReason.KEEP_ALIVE_TIMEOUT
    stopped = parse_webhook(server.webhooks(info)[-1][1], allowed_hosts=("127.0.0.1",))
    assert isinstance(stopped, RtmsStopped) and stopped.stop_reason == StopReason.KEEP_ALIVE_TIMEOUT


def test_answered_keepalives_keep_the_socket() -> None:
    server, info, net = setup(
        meeting=MeetingSpec(participants=0), config={"keepalive_interval": 2.0}
    )
    sig = signaling(net, info)
    net.run_until(60.0)
    assert len(sig.of(m.KeepAliveRequest)) == 30
    assert server.status(info).signaling_connected


def test_a_wrong_keepalive_echo_does_not_count() -> None:
    _, info, net = setup(meeting=MeetingSpec(participants=0))
    sig = signaling(net, info)
    sig.auto_keepalive = False
    for t in (10.0, 20.0, 30.0):
        net.run_until(t)
        sig.send({"msg_type": 13, "timestamp": 1, "sequence": 1})
    net.run_until(40.0)
    assert sig.reset


def test_media_keepalive_miss_reports_the_lost_media_type() -> None:
    server, info, net = setup(meeting=MeetingSpec(participants=0))
    sig = signaling(net, info)
    chat = media(net, "chat", 16)
    chat.auto_keepalive = False
    sig.send({"msg_type": 7, "rtms_stream_id": SID})
    net.run_until(40.0)
    assert chat.reset
    interrupted = [x for x in sig.of(m.EventUpdate) if isinstance(x, m.EventUpdate)]
    assert interrupted[-1].event_type == EventType.MEDIA_CONNECTION_INTERRUPTED
    assert interrupted[-1].raw["media_type"] == 16
    net.run_until(104.9)
    assert not server.status(info).ended
    net.run_until(105.0)
    assert server.status(info).stop_reason == StopReason.KEEP_ALIVE_TIMEOUT
    assert sig.of(m.SessionStateUpdate)[-1] == m.SessionStateUpdate(
        state=SessionState.STOPPED,
        stop_reason=StopReason.KEEP_ALIVE_TIMEOUT,
        timestamp=server.config.epoch_ms + 105_000,
        rtms_session_id=info.rtms_session_id,
    )


def test_keepalive_while_data_probes_busy_sockets() -> None:
    server, info, net = setup(config={"keepalive_while_data": True})
    client = net.add_client(make_session(info))
    net.run_until(25.0)
    assert server.status(info).signaling_connected
    audio_keepalives = [
        e
        for e in server.trace
        if e.direction == "out"
        and e.role is SocketRole.AUDIO
        and isinstance(e.message, m.KeepAliveRequest)
    ]
    assert len(audio_keepalives) == 2
    answers = server.received(info, SocketRole.AUDIO)
    assert sum(isinstance(x, m.KeepAliveResponse) for x in answers) == 2
    check_audio(server, info, audio_of(client), AudioParams())


# --- audio buffering and replay (§6.7) --------------------------------------------------------


def test_initial_audio_buffer_is_delivered_first() -> None:
    server, info, net = setup()
    net.run_until(5.0)
    client = net.add_client(make_session(info))
    net.run_until(6.0)
    packets = audio_of(client)
    assert packets[0].timestamp == info.media_epoch_ms
    assert len(packets) == 300
    check_audio(server, info, packets, AudioParams())


def test_buffer_data_false_drops_the_initial_buffer() -> None:
    server, info, net = setup()
    net.run_until(5.0)
    client = net.add_client(make_session(info, buffer_data=False))
    net.run_until(6.0)
    packets = audio_of(client)
    assert packets[0].timestamp == info.media_epoch_ms + 5000
    check_audio(server, info, packets, AudioParams())


def test_the_buffer_holds_at_most_the_limit() -> None:
    server, info, net = setup(config={"audio_buffer_limit": 10.0})
    net.run_until(30.0)
    client = net.add_client(make_session(info))
    net.run_until(31.0)
    packets = audio_of(client)
    assert packets[0].timestamp == info.media_epoch_ms + 20_000
    check_audio(server, info, packets, AudioParams())


def test_audio_lost_while_away_is_replayed_after_the_reconnect() -> None:
    params = AudioParams(send_rate=40, data_opt=DataOption.AUDIO_MIXED_STREAM)
    server, info, net = setup(faults=(f.DropSocket(at=3.0, role=SocketRole.AUDIO),))
    client = net.add_client(make_session(info, params=MediaParams(audio=params)))
    net.run_until(10.0)
    completed = [
        e for e in client.of(ev.ReconnectCompleted) if isinstance(e, ev.ReconnectCompleted)
    ]
    assert MediaType.AUDIO in {e.media_type for e in completed}
    packets = audio_of(client)
    assert packets[-1].timestamp == info.media_epoch_ms + 10_000 - 40
    check_audio(server, info, packets, params)


def test_audio_is_replayed_after_a_signaling_drop() -> None:
    server, info, net = setup(faults=(f.DropSocket(at=2.0, role=SocketRole.SIGNALING),))
    client = net.add_client(make_session(info))
    net.run_until(12.0)
    completed = client.of(ev.ReconnectCompleted)
    assert completed and isinstance(completed[0], ev.ReconnectCompleted)
    assert [e for e, _ in server.webhooks(info)][1] == "meeting.rtms_interrupted"
    check_audio(server, info, audio_of(client), AudioParams())
    assert audio_of(client)[-1].timestamp == info.media_epoch_ms + 12_000 - 20


def test_multi_stream_audio_is_per_speaker_and_checkable() -> None:
    params = AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS)
    server, info, net = setup()
    client = net.add_client(make_session(info, params=MediaParams(audio=params)))
    net.run_until(9.0)
    packets = audio_of(client)
    assert {(p.user_id, p.user_name) for p in packets} == {
        (ALICE.user_id, ALICE.user_name),
        (BOB.user_id, BOB.user_name),
        (CAROL.user_id, CAROL.user_name),
    }
    bob = [p for p in packets if p.user_id == BOB.user_id]
    first, last = bob[0].timestamp, bob[-1].timestamp
    assert first == info.media_epoch_ms + 4000 and last == info.media_epoch_ms + 7480
    recording = b"".join(p.data for p in bob)
    assert recording == server.expected_audio(
        info, params, info.media_epoch_ms, info.media_epoch_ms + 9000, user_id=BOB.user_id
    )


# --- stream state, close, end -----------------------------------------------------------------


def test_stream_close_request_ends_the_stream() -> None:
    server, info, net = setup()
    session = make_session(info)
    client = net.add_client(session)
    net.run_until(2.0)
    session.close_stream(now=net.now)
    net.run_until(3.0)
    ack = client.of(ev.StreamCloseAcknowledged)
    assert ack and isinstance(ack[0], ev.StreamCloseAcknowledged) and ack[0].reason == "OK"
    ended = client.of(ev.SessionEnded)[0]
    assert isinstance(ended, ev.SessionEnded) and ended.why is ev.EndReason.CLOSED_BY_APP
    status = server.status(info)
    assert status.ended and status.stop_reason == StopReason.RECEIVER_REQUEST_CLOSE
    sent = [
        e.message for e in server.trace if e.direction == "out" and e.role is SocketRole.SIGNALING
    ]
    tail = [type(x).__name__ for x in sent[-3:]]
    assert tail == ["StreamCloseResponse", "StreamStateUpdate", "SessionStateUpdate"]
    stopped = parse_webhook(server.webhooks(info)[-1][1], allowed_hosts=("127.0.0.1",))
    assert (
        isinstance(stopped, RtmsStopped)
        and stopped.stop_reason == StopReason.RECEIVER_REQUEST_CLOSE
    )
    late = signaling(net, info)
    assert reply(late).status_code == 2


def test_state_queries_are_answered() -> None:
    server, info, net = setup()
    sig = signaling(net, info)
    sig.send({"msg_type": 19, "rtms_stream_id": SID})
    sig.send({"msg_type": 10, "rtms_session_id": info.rtms_session_id})
    sig.send({"msg_type": 10, "rtms_session_id": "nope"})
    epoch = server.config.epoch_ms
    assert sig.of(m.StreamStateResponse) == [
        m.StreamStateResponse(state=StreamState.INACTIVE, rtms_stream_id=SID, timestamp=epoch)
    ]
    answers = [x for x in sig.of(m.SessionStateResponse) if isinstance(x, m.SessionStateResponse)]
    assert [x.state for x in answers] == [
        SessionState.STARTED,
        SessionState.INACTIVE,
    ]


def test_meeting_end_terminates_every_socket() -> None:
    server, info, net = setup(meeting=MeetingSpec(duration=5.0))
    client = net.add_client(make_session(info))
    net.run_until(7.0)
    left = client.of(ev.ParticipantsLeft)
    assert left and isinstance(left[0], ev.ParticipantsLeft) and len(left[0].participants) == 3
    states = [e for e in client.of(ev.StreamStateChanged) if isinstance(e, ev.StreamStateChanged)]
    assert (
        states[-1].state == StreamState.TERMINATED and states[-1].reason == StopReason.MEETING_ENDED
    )
    ended = client.of(ev.SessionEnded)[0]
    assert isinstance(ended, ev.SessionEnded) and ended.why is ev.EndReason.STREAM_TERMINATED
    packets = audio_of(client)
    assert packets[-1].timestamp == info.media_epoch_ms + 5000 - 20
    check_audio(server, info, packets, AudioParams())


def test_end_stream_command_and_timeline_end() -> None:
    server, info, net = setup(
        timeline=(TimelineEntry(at=3.0, event=EndStream(reason=StopReason.HOST_TRIGGERED)),)
    )
    sig = signaling(net, info)
    net.run_until(4.0)
    assert sig.close_code == 1000
    assert server.status(info).stop_reason == StopReason.HOST_TRIGGERED
    server2, info2, net2 = setup()
    peer = signaling(net2, info2)
    server2.end_stream(info2, 1.0, StopReason.STREAM_REVOKED)
    net2.pump()
    assert peer.of(m.StreamStateUpdate)[-1] == m.StreamStateUpdate(
        state=StreamState.TERMINATED,
        reason=StopReason.STREAM_REVOKED,
        timestamp=server2.config.epoch_ms + 1000,
    )


def test_connect_window_ends_an_unclaimed_stream() -> None:
    server, info, net = setup(connect_window=30.0)
    net.run_until(30.0)
    assert server.status(info).stop_reason == StopReason.CONNECTION_TIMEOUT


def test_pause_and_resume() -> None:
    _, info, net = setup(
        timeline=(
            TimelineEntry(at=2.0, event=PauseSession()),
            TimelineEntry(at=4.0, event=ResumeSession()),
        )
    )
    client = net.add_client(make_session(info))
    net.run_until(5.0)
    states = [
        e.state for e in client.of(ev.SessionStateChanged) if isinstance(e, ev.SessionStateChanged)
    ]
    assert states == [SessionState.STARTED, SessionState.PAUSED, SessionState.RESUMED]
    stamps = {p.timestamp for p in audio_of(client)}
    assert info.media_epoch_ms + 2980 not in stamps and info.media_epoch_ms + 4000 in stamps


# --- video subscription (28/29) ---------------------------------------------------------------


def test_individual_video_follows_the_subscription() -> None:
    params = MediaParams(video=VideoParams(data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM))
    server, info, net = setup()
    session = make_session(info, media=MediaType.VIDEO, params=params)
    client = net.add_client(session)
    net.run_until(1.0)
    assert client.of(ev.VideoReceived) == []
    session.subscribe_video(CAROL.user_id, now=net.now)
    net.run_until(3.0)
    result = client.of(ev.VideoSubscriptionResult)[0]
    assert isinstance(result, ev.VideoSubscriptionResult) and result.status == 0
    frames = [e for e in client.of(ev.VideoReceived) if isinstance(e, ev.VideoReceived)]
    assert len(frames) == 10 and {e.user_id for e in frames} == {CAROL.user_id}
    assert server.status(info).video_subscription == CAROL.user_id


def test_video_subscription_errors() -> None:
    _, info, net = setup()
    sig = signaling(net, info)
    net.run_until(0.1)
    for user, subscribe in (
        (ALICE.user_id, True),
        (ALICE.user_id, True),
        (12345, True),
        (ALICE.user_id, False),
    ):
        sig.send({"msg_type": 28, "user_id": user, "subscribe": subscribe})
    answers = [
        x for x in sig.of(m.VideoSubscriptionResponse) if isinstance(x, m.VideoSubscriptionResponse)
    ]
    assert [(a.status_code, a.reason) for a in answers] == [
        (0, "OK"),
        (44, "duplicate video subscription"),
        (4, "unknown user_id"),
        (0, "OK"),
    ]


# --- faults -----------------------------------------------------------------------------------


def test_reject_the_first_handshake_then_accept() -> None:
    server, info, net = setup(faults=(f.RejectHandshake(status=45, reason="try later"),))
    client = net.add_client(make_session(info))
    net.run_until(5.0)
    failed = client.of(ev.ConnectionFailed)[0]
    assert isinstance(failed, ev.ConnectionFailed) and failed.error.status_reason == "try later"
    assert server.status(info).signaling_handshakes == 2
    assert server.status(info).media_released


def test_reject_a_media_handshake_with_any_status() -> None:
    _, info, net = setup(faults=(f.RejectHandshake(status=1234, role=SocketRole.AUDIO, nth=2),))
    signaling(net, info)
    first = media(net, "audio", 1)
    first.drop()
    second = media(net, "audio", 1)
    assert reply(first).status_code == 0 and reply(second).status_code == 1234


def test_duplicate_signal_fault_makes_the_session_back_off() -> None:
    server, info, net = setup(faults=(f.DuplicateSignal(count=2),))
    client = net.add_client(make_session(info))
    net.run_until(10.0)
    failures = [e for e in client.of(ev.ConnectionFailed) if isinstance(e, ev.ConnectionFailed)]
    assert [e.reason for e in failures] == [FailureReason.DUPLICATE_SIGNAL] * 2
    assert server.status(info).signaling_connected
    check_audio(server, info, audio_of(client), AudioParams())


def test_ignored_handshake_times_out_on_the_client() -> None:
    server, info, net = setup(faults=(f.IgnoreHandshake(),))
    client = net.add_client(make_session(info))
    net.run_until(15.0)
    failed = client.of(ev.ConnectionFailed)[0]
    assert (
        isinstance(failed, ev.ConnectionFailed) and failed.reason is FailureReason.HANDSHAKE_TIMEOUT
    )
    assert server.status(info).signaling_connected


def test_close_frame_on_signaling() -> None:
    server, info, net = setup(faults=(f.SendClose(at=2.0, code=1001, reason="going away"),))
    client = net.add_client(make_session(info))
    net.run_until(2.0)
    closed = [e for e in client.of(ev.SocketClosed) if isinstance(e, ev.SocketClosed)]
    assert closed[0].by_peer and (closed[0].code, closed[0].reason) == (1001, "going away")
    net.run_until(8.0)
    assert server.status(info).signaling_handshakes == 2
    check_audio(server, info, audio_of(client), AudioParams())


def test_media_interrupted_event_without_a_drop() -> None:
    server, info, net = setup(
        faults=(f.InterruptMedia(at=2.0, media_type=MediaType.AUDIO, drop=False),)
    )
    client = net.add_client(make_session(info))
    net.run_until(6.0)
    interrupted = client.of(ev.MediaInterrupted)[0]
    assert isinstance(interrupted, ev.MediaInterrupted) and interrupted.raw["media_type"] == 1
    assert server.status(info).media_released == {SocketRole.AUDIO, SocketRole.TRANSCRIPT}
    check_audio(server, info, audio_of(client), AudioParams())


def test_silence_stalls_then_delivers_in_order() -> None:
    server, info, net = setup(faults=(f.Silence(at=2.0, role=SocketRole.AUDIO, duration=3.0),))
    client = net.add_client(make_session(info))
    net.run_until(4.9)
    assert audio_of(client)[-1].timestamp == info.media_epoch_ms + 1980
    net.run_until(5.0)
    packets = audio_of(client)
    assert packets[-1].timestamp == info.media_epoch_ms + 4980
    check_audio(server, info, packets, AudioParams())


def test_silence_forever_trips_the_clients_watchdog() -> None:
    _, info, net = setup(
        meeting=MeetingSpec(participants=0),
        faults=(f.Silence(at=1.0, role=SocketRole.SIGNALING),),
    )
    client = net.add_client(make_session(info, media=MediaType.CHAT))
    net.run_until(40.0)
    failed = [e for e in client.of(ev.ConnectionFailed) if isinstance(e, ev.ConnectionFailed)]
    assert failed[0].reason is FailureReason.KEEPALIVE_TIMEOUT


def test_slow_reads_hold_the_clients_bytes() -> None:
    _, info, net = setup(faults=(f.SlowReads(at=1.0, role=SocketRole.SIGNALING, seconds=5.0),))
    sig = signaling(net, info)
    net.run_until(1.0)
    sig.send({"msg_type": 19, "rtms_stream_id": SID})
    assert sig.of(m.StreamStateResponse) == []
    net.run_until(6.0)
    assert len(sig.of(m.StreamStateResponse)) == 1


def test_slow_reads_emit_pause_reading() -> None:
    server = make_server()
    add_stream(server, faults=(f.SlowReads(at=1.0, role=None, seconds=2.5),))
    net = MemoryNetwork(server)
    signaling(net, server.streams()[0])
    net.pump()
    server.handle_timer(1.0)
    assert [a for a in server.drain() if isinstance(a, PauseReading)] == [
        PauseReading(conn=1, seconds=2.5)
    ]


def test_oversized_malformed_unknown_and_raw_messages() -> None:
    faults = (
        f.SendOversized(at=1.0, role=SocketRole.SIGNALING, size=2_000_000),
        f.SendMalformed(at=2.0),
        f.SendUnknownType(at=3.0, msg_type=99),
        f.SendRaw(at=4.0, data=b'{"msg_type": 6, "event": {"event_type": 1}}'),
    )
    _, info, net = setup(meeting=MeetingSpec(participants=0), faults=faults)
    sig = signaling(net, info)
    net.run_until(5.0)
    frames = sig.frames[-4:]
    assert len(frames[0]) == 2_000_000 and json.loads(frames[0])["msg_type"] == 23
    assert isinstance(sig.messages[-3], m.DecodeError)
    unknown = sig.messages[-2]
    assert isinstance(unknown, m.UnknownMessage) and unknown.msg_type == 99
    assert isinstance(frames[3], bytes)


def test_session_survives_malformed_and_unknown_messages() -> None:
    faults = (f.SendMalformed(at=1.0), f.SendUnknownType(at=1.5))
    _, info, net = setup(faults=faults)
    client = net.add_client(make_session(info))
    net.run_until(3.0)
    assert len(client.of(ev.MalformedMessage)) == 1
    assert len(client.of(ev.UnknownMessageReceived)) == 1
    assert client.of(ev.ConnectionFailed) == []


def test_binary_frames_fault() -> None:
    _, info, net = setup(faults=(f.BinaryFrames(at=0.0),))
    sig = signaling(net, info)
    assert all(isinstance(x, bytes) for x in sig.frames)
    assert reply(sig).status_code == 0


def test_oversized_client_messages_are_refused() -> None:
    _, info, net = setup(config={"max_message_size": 4096})
    sig = signaling(net, info)
    sig.send({"msg_type": 5, "events": [], "padding": "x" * 5000})
    assert sig.close_code == 1009


def test_failover_moves_the_stream_to_a_new_url() -> None:
    server, info, net = setup(faults=(f.Failover(at=3.0),))
    session = make_session(info)
    client = net.add_client(session)
    net.run_until(3.0)
    hooks = [w for w in net.webhooks if w.event == "meeting.rtms_started"]
    assert len(hooks) == 1
    started = parse_webhook(hooks[0].body, allowed_hosts=("127.0.0.1",))
    assert isinstance(started, RtmsStarted)
    assert started.server_url.resource == f"/signaling2/{SID}"
    assert server.rtms_started_body(info) == hooks[0].body
    assert net.open(f"/signaling/{SID}").rejected_status == 404
    session.failover(started.server_url.url, now=net.now)
    net.run_until(8.0)
    assert server.status(info).generation == 1 and server.status(info).signaling_connected
    check_audio(server, info, audio_of(client), AudioParams())


def test_faults_with_no_live_socket_are_noted() -> None:
    server, _info, net = setup(faults=(f.DropSocket(at=1.0, role=SocketRole.VIDEO),))
    net.run_until(2.0)
    assert any(e.note == "fault found no live socket" for e in server.trace)


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        f.DropSocket(at=-1.0)
    with pytest.raises(ValueError):
        f.RejectHandshake(status=1, nth=0)
    with pytest.raises(ValueError):
        f.Silence(at=1.0, duration=0)
    with pytest.raises(ValueError):
        f.SendOversized(at=1.0, size=10)


# --- many streams, webhooks, determinism ------------------------------------------------------


def test_many_streams_at_once() -> None:
    server = make_server()
    infos = [
        add_stream(server, rtms_stream_id=f"stream-{i}", meeting_uuid=f"m-{i}") for i in range(3)
    ]
    net = MemoryNetwork(server)
    clients = [net.add_client(make_session(info)) for info in infos]
    net.run_until(3.0)
    for info, client in zip(infos, clients, strict=True):
        assert server.status(info).media_released == {SocketRole.AUDIO, SocketRole.TRANSCRIPT}
        check_audio(server, info, audio_of(client), AudioParams())
    assert len({i.signaling_url for i in infos}) == 3


def test_webhook_bodies_are_signed_and_parseable() -> None:
    from rtms_conformance.webhooks import webhook_headers

    server, info, _ = setup()
    body = server.rtms_started_body(info)
    headers = webhook_headers(body, "webhook-secret", 1_700_000_000)
    verify_webhook(headers=headers, raw_body=body, secret="webhook-secret", now=1_700_000_000)
    started = parse_webhook(body, allowed_hosts=("127.0.0.1",))
    assert isinstance(started, RtmsStarted)
    assert (started.instance_id, started.rtms_stream_id, started.operator_id) == (
        UUID,
        SID,
        "fake-operator",
    )
    assert started.server_url.url == info.signaling_url
    assert started.event_ts == info.media_epoch_ms


def test_runs_are_deterministic() -> None:
    def run() -> list[object]:
        server, info, net = setup(faults=(f.DropSocket(at=2.5, role=SocketRole.AUDIO),))
        client = net.add_client(make_session(info))
        net.run_until(6.0)
        trace: list[object] = [(e.at, e.direction, e.message, e.note) for e in server.trace]
        return trace + client.events

    assert run() == run()


def test_deadlines_are_never_in_the_past() -> None:
    server, info, net = setup(faults=(f.Silence(at=1.0, duration=0.5),))
    net.add_client(make_session(info))
    for step in range(400):
        net.run_until(step * 0.05)
        deadline = server.next_deadline()
        assert deadline is None or deadline > net.now


def test_driver_actions_for_a_dropped_socket() -> None:
    server = make_server()
    add_stream(server, faults=(f.DropSocket(at=1.0),))
    server.connection_made("c", 0.0)
    server.handle_timer(1.0)
    assert server.drain() == []  # nothing to drop before the handshake
    server.receive_data("c", b"garbage\r\n\r\n", 1.5)
    actions = server.drain()
    assert isinstance(actions[0], Send) and actions[0].data.startswith(b"HTTP/1.1 400")
    assert isinstance(actions[-1], Close)
    server.connection_lost("c", 1.6)
    assert not any(isinstance(a, Abort | EmitWebhook) for a in server.drain())


def test_the_core_and_its_helpers_do_no_io() -> None:
    """Like rtms_proto's core: no sockets, clocks, threads or randomness below the drivers."""
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("rtms_conformance")
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent
    banned = {"asyncio", "trio", "socket", "ssl", "select", "selectors", "threading", "time",
              "random", "secrets", "os", "http", "subprocess"}  # fmt: skip
    # Every module of the server package (the core and its parts) and the pure helpers.
    pure = {f"server/{p.name}" for p in (root / "server").glob("*.py")} | {
        f"{name}.py" for name in ("meeting", "payloads", "timeline", "faults", "webhooks", "memory")
    }
    assert {"server/core.py", "server/state.py", "server/handshakes.py"} <= pure
    for name in sorted(pure):
        tree = ast.parse((root / name).read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & banned, (name, imported & banned)


def test_interrupting_a_type_carried_by_the_unified_socket_drops_that_socket() -> None:
    server, info, net = setup(faults=(f.InterruptMedia(at=2.0, media_type=MediaType.AUDIO),))
    client = net.add_client(make_session(info, layout=Layout.UNIFIED))
    net.run_until(6.0)
    interrupted = client.of(ev.MediaInterrupted)[0]
    assert isinstance(interrupted, ev.MediaInterrupted) and interrupted.raw["media_type"] == 32
    assert server.status(info).media_released == {SocketRole.ALL}
    check_audio(server, info, audio_of(client), AudioParams())


def test_odd_client_messages_are_noted() -> None:
    server, info, net = setup()
    sig = signaling(net, info)
    sig.send({"msg_type": 7, "rtms_stream_id": "someone-else"})
    sig.send({"msg_type": 5, "events": [{"event_type": 77, "subscribe": True}]})
    sig.send({"msg_type": 14, "content": {"data": ""}})
    notes = [e.note for e in server.trace if e.direction == "note"]
    assert "CLIENT_READY_ACK names another rtms_stream_id" in notes
    assert "subscription names unknown event types [77]" in notes
    assert "ignored msg_type 14 on signaling" in notes
    assert len(server.received(info, SocketRole.SIGNALING)) == 4


# --- scheduling: the cost of an input does not grow with the other streams ----------------------


class _Logged(FakeRtmsServer):
    """Keeps every action it hands out (upgrade answers without the client's random key)."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.log: list[object] = []

    def drain(self) -> list[ServerAction]:
        out = super().drain()
        self.log += [_without_key(action) for action in out]
        return out


def _without_key(action: ServerAction) -> ServerAction:
    if isinstance(action, Send) and action.data.startswith(b"HTTP/1.1 101"):
        return Send(conn=action.conn, data=re.sub(rb"Accept: \S+", b"Accept: -", action.data))
    return action


def scan_run_due(server: FakeRtmsServer, now: float) -> None:
    """The reference scheduler, as the core had it: scan every stream, then every connection."""
    for s in list(server._streams.values()):
        while (due := next_due(s, server.config)) is not None and due[0] <= now:
            server._perform(s, due)
    for c in list(server._conns.values()):
        if c.deadline is not None and c.deadline <= now:
            server._liveness.time_out(c)


def scan_deadline(server: FakeRtmsServer) -> float | None:
    """The true next deadline: the earliest of every stream's due time and connection deadline."""
    times = [c.deadline for c in server._conns.values() if c.deadline is not None]
    times += [
        d[0] for s in server._streams.values() if (d := next_due(s, server.config)) is not None
    ]
    return min(times) if times else None


class _ScanningScheduler(Scheduler):
    """The reference scheduler in the server's scheduler seat: no agendas, a full scan."""

    def __init__(self, server: FakeRtmsServer) -> None:
        super().__init__(
            server.config,
            server._streams,
            server._conns,
            perform=server._perform,
            time_out=server._liveness.time_out,
        )
        self._server = server

    def touch(self, s: Stream | None) -> None:
        pass

    def run_due(self, now: float) -> None:
        scan_run_due(self._server, now)

    def next_deadline(self) -> float | None:
        return scan_deadline(self._server)


class ScanningServer(_Logged):
    """The core with the reference scheduler."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self._schedule = _ScanningScheduler(self)


class CheckedServer(_Logged):
    """The core as it is, checked against a full scan after every input."""

    def _check(self, now: float) -> None:
        routed: dict[str, list[object]] = {}
        for c in self._conns.values():
            if c.stream is not None:
                routed.setdefault(c.stream.info.rtms_stream_id, []).append(c)
        for sid, s in self._streams.items():
            due = next_due(s, self.config)
            assert due is None or due[0] > now, f"{sid} still has work due at {now}"
            assert s.clients_in_order() == routed.get(sid, [])

    def add_stream(self, spec: StreamSpec, now: float) -> StreamInfo:
        info = super().add_stream(spec, now)
        self._check(now)
        return info

    def end_stream(
        self,
        stream: StreamInfo | str,
        now: float,
        reason: StopReason | int = StopReason.MEETING_ENDED,
    ) -> None:
        super().end_stream(stream, now, reason)
        self._check(now)

    def connection_made(self, conn: ConnId, now: float) -> None:
        super().connection_made(conn, now)
        self._check(now)

    def receive_data(self, conn: ConnId, data: bytes, now: float) -> None:
        super().receive_data(conn, data, now)
        self._check(now)

    def connection_lost(self, conn: ConnId, now: float) -> None:
        super().connection_lost(conn, now)
        self._check(now)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self._check(now)

    def next_deadline(self) -> float | None:
        found = super().next_deadline()
        assert found == scan_deadline(self)
        return found


def stream_hello(sid: str, uuid: str, msg_type: int = 1, **extra: object) -> dict[str, object]:
    return {
        "msg_type": msg_type,
        "protocol_version": 1,
        "meeting_uuid": uuid,
        "rtms_stream_id": sid,
        "signature": signature(instance=uuid, stream=sid),
        **extra,
    }


def many_streams(server: FakeRtmsServer) -> list[object]:
    """50 streams started in pairs at staggered times, with clients that meet every timed path:
    audio, keep-alives, silence, drops and reconnections, failover, ends, expiries, timeouts."""
    net = MemoryNetwork(server)
    clients: list[ClientRecord] = []
    peers: list[WsPeer] = []
    for i in range(50):
        start = (i // 2) * 0.011  # pairs start together: their work falls due at the same instants
        net.run_until(start)
        sid, uuid = f"stream-{i * 37 % 50:02d}", f"meeting-{i}=="  # not in sorted order
        kind = i % 10
        spec: dict[str, Any] = {}
        if kind == 1:
            spec["faults"] = (f.DropSocket(at=0.4, role=SocketRole.AUDIO),)
        elif kind == 2:
            spec["faults"] = (f.Silence(at=0.2, duration=0.3),)
        elif kind == 3:
            spec["faults"] = (f.Failover(at=0.5),)
        elif kind == 4:
            spec["connect_window"] = 0.35  # nobody comes
        elif kind == 5:
            spec["timeline"] = (TimelineEntry(at=0.6, event=EndStream()),)
        elif kind == 6:
            spec["faults"] = (f.InterruptMedia(at=0.3),)
        elif kind == 7:
            spec["faults"] = (f.SendClose(at=0.45), f.SlowReads(at=0.2, seconds=0.1))
        elif kind == 9:
            spec["faults"] = (f.IgnoreHandshake(),)
        info = server.add_stream(StreamSpec(meeting_uuid=uuid, rtms_stream_id=sid, **spec), start)
        if kind == 8:
            # Three sockets that never handshake time out together; one leaves first.
            peers += [net.open(path(info.signaling_url)) for _ in range(3)]
            peers[-2].drop()
            net.run_until(start + 0.05)
            sig = net.open(path(info.signaling_url))
            sig.send(stream_hello(sid, uuid))
            sig.auto_keepalive = False  # unanswered keep-alives end it
            peers.append(sig)
        elif kind != 4:
            clients.append(net.add_client(make_session(info)))
    for step in range(1, 31):
        net.run_until(step * 0.05)
    trace = [(e.at, e.rtms_stream_id, e.conn, e.direction, e.message, e.note) for e in server.trace]
    assert isinstance(server, _Logged)
    return [server.log, trace, [c.events for c in clients], [p.messages for p in peers]]


def test_many_streams_are_scheduled_exactly_as_a_full_scan_would() -> None:
    config = ServerConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        base_url=BASE,
        keepalive_interval=0.25,
        handshake_timeout=0.3,
        close_timeout=0.15,
        signaling_reconnect_window=0.4,
        media_reconnect_window=0.45,
    )
    checked = CheckedServer(config)
    run = many_streams(checked)
    assert run == many_streams(ScanningServer(config))
    notes = {e.note for e in checked.trace if e.note}
    for expected in (
        "no handshake in time",
        "silence ends",
        "no signaling connection in time",
        "stream ended, stop reason 6",  # the timeline's MEETING_ENDED
    ):
        assert expected in notes
    assert any(n.startswith("failover") for n in notes)
    assert any(n.startswith("dropped: 3 keep-alives unanswered") for n in notes)


def checked_server(**config: Any) -> CheckedServer:
    return CheckedServer(
        ServerConfig(client_id=CLIENT_ID, client_secret=SECRET, base_url=BASE, **config)
    )


def upgrade_request(target: str) -> bytes:
    return WSConnection(ConnectionType.CLIENT).send(Request(host="localhost", target=target))


def masked_text(text: str) -> bytes:
    """One client text frame (short texts only)."""
    data, mask = text.encode(), b"\x01\x02\x03\x04"
    return (
        bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    )


def test_streams_due_at_once_are_served_in_the_order_they_were_added() -> None:
    server = checked_server(keepalive_interval=100.0)
    net = MemoryNetwork(server)
    sids = ["s-c", "s-a", "s-b"]
    for sid in sids:
        add_stream(server, rtms_stream_id=sid, meeting_uuid=f"m-{sid}")
    audio_conns = {}
    for sid in sids:
        uuid = f"m-{sid}"
        sig = net.open(f"/signaling/{sid}")
        sig.send(stream_hello(sid, uuid))
        audio = net.open(f"/media/{sid}/audio")
        audio.send(stream_hello(sid, uuid, msg_type=3, media_type=1))
        sig.send({"msg_type": 7, "rtms_stream_id": sid})
        assert audio.link is not None
        audio_conns[audio.link.conn] = sid
    assert server.next_deadline() == 0.02
    server.handle_timer(0.1)  # five packets due on every stream
    sent = [audio_conns[a.conn] for a in server.drain() if isinstance(a, Send)]
    # Each stream up to now before the next, in the order they were added, not by time.
    assert sent == ["s-c"] * 5 + ["s-a"] * 5 + ["s-b"] * 5
    assert server.next_deadline() == 0.12


def test_a_stream_touched_late_fires_on_time() -> None:
    server = checked_server(keepalive_interval=2.0, signaling_reconnect_window=1.0)
    net = MemoryNetwork(server)
    for i in range(30):
        add_stream(
            server,
            rtms_stream_id=f"idle-{i}",
            meeting_uuid=f"m-idle-{i}",
            connect_window=20.0,
            meeting=MeetingSpec(participants=0),
        )
    assert server.next_deadline() == 20.0
    net.run_until(5.0)
    sig = net.open("/signaling/idle-17")
    sig.send(stream_hello("idle-17", "m-idle-17"))
    assert server.next_deadline() == 7.0  # its first keep-alive, before every other stream
    net.run_until(6.99)
    assert sig.of(m.KeepAliveRequest) == []
    net.run_until(7.0)
    assert sig.of(m.KeepAliveRequest) == [
        m.KeepAliveRequest(timestamp=server.config.epoch_ms + 7000, sequence=1)
    ]
    net.run_until(7.5)
    sig.drop()  # the reconnection window ends before the next keep-alive would have been due
    assert server.next_deadline() == 8.5
    net.run_until(8.49)
    assert not server.status("idle-17").ended
    net.run_until(8.5)
    assert server.status("idle-17").stop_reason == StopReason.AWAIT_RECONNECTION_TIMEOUT

    sig = net.open("/signaling/idle-3")
    sig.send(stream_hello("idle-3", "m-idle-3"))
    audio = net.open("/media/idle-3/audio")
    audio.send(stream_hello("idle-3", "m-idle-3", msg_type=3, media_type=1))
    sig.send({"msg_type": 7, "rtms_stream_id": "idle-3"})
    assert len(audio.of(m.AudioData)) == 425  # the buffer from the stream start, at once
    assert server.next_deadline() == 8.52
    net.run_until(20.0)
    assert len(audio.of(m.AudioData)) == 1000
    ended = [server.status(f"idle-{i}").ended for i in range(30)]
    assert ended == [i != 3 for i in range(30)]


def test_connection_deadlines_expire_in_the_order_connections_were_made() -> None:
    server = checked_server(handshake_timeout=1.0, close_timeout=0.2)
    info = add_stream(server, meeting=MeetingSpec(participants=0))
    for conn in ("c", "a", "b"):
        server.connection_made(conn, 0.0)
    server.connection_lost("a", 0.2)
    server.connection_made("y", 0.2)
    server.connection_made("a", 0.2)  # the id comes back as a new connection
    server.connection_made("late", 0.2)  # made last, it times out first:
    server.receive_data("late", upgrade_request(path(info.signaling_url)), 0.2)
    server.receive_data("late", masked_text('{"msg_type": 99}'), 0.3)
    replies = server.drain()
    assert isinstance(replies[-1], Send) and replies[-1].data[:1] == b"\x88"  # rejected, closing
    assert server.next_deadline() == 0.5
    server.handle_timer(2.0)  # every deadline at once, in connection order
    assert server.drain() == [Close(conn=c) for c in ("c", "b", "y", "a", "late")]
    timeouts = [(e.conn, e.at) for e in server.trace if e.note == "no handshake in time"]
    assert timeouts == [("c", 1.0), ("b", 1.0), ("y", 1.2), ("a", 1.2)]
    assert server.next_deadline() is None


def test_a_close_timeout_set_by_a_late_timer_waits_for_the_next_one() -> None:
    server = checked_server(handshake_timeout=1.0, close_timeout=0.2)
    info = add_stream(server, meeting=MeetingSpec(participants=0))
    server.connection_made("c", 0.0)
    server.receive_data("c", upgrade_request(path(info.signaling_url)), 0.0)
    server.drain()
    server.handle_timer(2.0)  # the handshake timed out at 1.0: a close frame, closing until 1.2
    (frame,) = server.drain()
    assert isinstance(frame, Send) and frame.data[:1] == b"\x88"
    assert server.next_deadline() == 1.2  # already past, as the driver will see
    server.handle_timer(2.0)
    assert server.drain() == [Close(conn="c")]


@pytest.mark.parametrize("how", ["end", "failover"])
def test_a_streams_sockets_are_closed_in_connection_order(how: str) -> None:
    server = checked_server()
    faults = (f.Failover(at=0.5),) if how == "failover" else ()
    pause = (TimelineEntry(at=1.0, event=PauseSession()),)  # something left to do, ended or not
    info = add_stream(server, meeting=MeetingSpec(participants=0), timeline=pause, faults=faults)
    server.connection_made("first", 0.0)
    server.connection_made("second", 0.0)
    server.receive_data("second", upgrade_request(path(info.signaling_url)), 0.1)
    server.receive_data("first", upgrade_request(path(info.signaling_url)), 0.2)
    server.drain()
    if how == "end":
        server.end_stream(info, 0.5)
        closed = [a.conn for a in server.drain() if isinstance(a, Send)]
    else:
        server.handle_timer(0.5)
        closed = [a.conn for a in server.drain() if isinstance(a, Abort)]
    assert closed == ["first", "second"]
    assert server.next_deadline() == (2.5 if how == "end" else 1.0)  # close timeouts, or pause


def test_stale_schedule_entries_do_not_pile_up() -> None:
    server, info, net = setup(meeting=MeetingSpec(participants=0))
    # Live entries earlier than every stale one keep the stale ones from reaching the top.
    add_stream(
        server,
        rtms_stream_id="anchor",
        meeting_uuid="m-anchor",
        connect_window=50.0,
        meeting=MeetingSpec(participants=0),
    )
    net.open(path(info.signaling_url))  # never handshakes: times out at 30 s
    for _ in range(300):  # each round leaves a stale due time (60 s on) and a stale deadline
        signaling(net, info).drop()
        net.run_for(0.01)
    assert server.status(info).signaling_handshakes == 300
    assert server.next_deadline() == 30.0
    assert len(server._schedule.due) <= 2 * 2 + 64
    assert len(server._schedule.timeouts) <= 2 * len(server._conns) + 64
