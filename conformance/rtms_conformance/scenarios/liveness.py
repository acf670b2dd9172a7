"""Keep-alives and liveness: every socket answers the server's keep-alives, and a
socket that goes silent is failed by the client's liveness deadline."""

from __future__ import annotations

from rtms_conformance.faults import Silence
from rtms_conformance.timeline import ActiveSpeaker, Utterance
from rtms_proto import Layout
from rtms_proto.actions import SocketRole

from .builders import ALICE, ALL_MEDIA, ALL_PARAMS, BOB, CAROL, meeting_events, stream
from .model import ClientSettings, Scenario, ServerSettings, trace_lines

FAST_KEEPALIVES = ServerSettings(
    keepalive_interval=0.1, keepalive_misses=2, keepalive_while_data=True
)
"""A keep-alive every 100 ms on every socket, data or not; two misses drop the socket."""


LIVENESS: tuple[Scenario, ...] = (
    Scenario(
        name="keepalive-every-socket",
        description="A keep-alive every 100 ms on all six sockets; two misses would drop one.",
        streams=(stream("keepalive-every-socket"),),
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
        streams=(stream("keepalive-unified"),),
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
            stream(
                "liveness-timeout",
                Silence(at=0.65, role=SocketRole.TRANSCRIPT),
                entries=meeting_events(
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
)
