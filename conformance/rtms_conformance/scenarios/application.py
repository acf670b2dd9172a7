"""The application and the transport: a slow consumer the transport must keep alive,
a cancellation mid-handshake, many streams at once, and commands sent on events."""

from __future__ import annotations

from rtms_conformance.faults import IgnoreHandshake
from rtms_conformance.timeline import ActiveSpeaker, Utterance
from rtms_proto import AudioParams, MediaParams, VideoParams
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.enums import Codec, DataOption, EventType, MediaType

from .builders import ALICE, BOB, meeting_events, stream
from .model import (
    Action,
    ClientSettings,
    On,
    Pause,
    RequestStreamState,
    Scenario,
    ServerSettings,
    SubscribeEvents,
    SubscribeVideo,
    trace_lines,
)

APPLICATION: tuple[Scenario, ...] = (
    Scenario(
        name="slow-consumer",
        description="The app stalls 0.5 s at the 10th audio packet while 20 ms packets keep"
        " coming and the server sends keep-alives every 100 ms (two misses drop a socket):"
        " nothing may be lost and every keep-alive must be answered.",
        streams=(
            stream(
                "slow-consumer",
                entries=meeting_events(
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
            stream(
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
        streams=lambda: tuple(stream(f"many-streams-{i}") for i in range(1, 7)),
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
        streams=(stream("app-commands"),),
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
