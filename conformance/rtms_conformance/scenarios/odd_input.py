"""Odd input from the server: malformed, unknown and oversized messages, reported or
tolerated as specified instead of ending the session."""

from __future__ import annotations

from rtms_conformance.faults import (
    BinaryFrames,
    SendMalformed,
    SendOversized,
    SendRaw,
    SendUnknownType,
)
from rtms_proto.actions import SocketRole

from .builders import stream
from .model import ClientSettings, Scenario, trace_lines

ODD_INPUT: tuple[Scenario, ...] = (
    Scenario(
        name="malformed-input",
        description="Extra keys, bad JSON, an unknown msg_type and event_type, a binary"
        " frame, metadata, then binary frames only: reported or tolerated as specified.",
        streams=(
            stream(
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
            stream(
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
)
