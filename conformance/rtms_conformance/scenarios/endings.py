"""Endings: every way a stream stops, on Zoom's side (a revoked stream, a stopped
session) or the application's (close_stream(), the rtms_stopped webhook, stop())."""

from __future__ import annotations

from rtms_conformance.faults import SendRaw
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, StopReason

from .builders import stream
from .model import (
    Action,
    ClientSettings,
    CloseStream,
    NotifyStopped,
    On,
    Scenario,
    Stop,
    trace_lines,
)

ENDINGS: tuple[Scenario, ...] = (
    Scenario(
        name="stream-close",
        description="The app closes the stream when Bob speaks (0.6 s).",
        streams=(stream("stream-close"),),
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
        streams=(stream("stream-revoked", reason=StopReason.STREAM_REVOKED),),
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
            stream(
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
        streams=(stream("stop-webhook"),),
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
        streams=(stream("local-stop"),),
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
)
