"""Reconnects: a lost media or signaling socket, a close frame, a false media
interruption and a failover; only what was lost may reconnect."""

from __future__ import annotations

from rtms_conformance.faults import DropSocket, InterruptMedia, SendClose
from rtms_conformance.faults import Failover as FailoverFault
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType

from .builders import stream
from .model import Action, Failover, On, Scenario, trace_lines

RECONNECTS: tuple[Scenario, ...] = (
    Scenario(
        name="media-reconnect",
        description="The server drops the audio socket at 0.65 s: only audio reconnects, and"
        " the audio it buffered meanwhile arrives on the new socket.",
        streams=(stream("media-reconnect", DropSocket(at=0.65, role=SocketRole.AUDIO)),),
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
            stream(
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
        streams=(stream("signaling-reconnect", DropSocket(at=0.65, role=SocketRole.SIGNALING)),),
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
            stream(
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
        streams=(stream("failover", FailoverFault(at=0.65)),),
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
)
