"""Handshakes that go wrong: rejections (fatal or retried), a timeout, duplicate signal
requests, the legacy status table, an unknown URL, media the app may not receive."""

from __future__ import annotations

from rtms_conformance.faults import DuplicateSignal, IgnoreHandshake, RejectHandshake
from rtms_conformance.server import StreamSpec
from rtms_proto import Layout, StatusTable
from rtms_proto.actions import SocketRole
from rtms_proto.enums import LegacyStatusCode, MediaType, StatusCode

from .builders import STANDARD, meeting_fields, stream
from .model import ClientSettings, Scenario, ServerSettings, trace_lines

HANDSHAKES: tuple[Scenario, ...] = (
    Scenario(
        name="reject-signature",
        description="A wrong client secret: the signaling handshake is refused (fatal).",
        streams=(stream("reject-signature"),),
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
            stream(
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
            stream(
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
            stream(
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
            stream(
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
            stream("handshake-timeout", IgnoreHandshake(role=SocketRole.SIGNALING), offset=0.5),
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
        streams=(stream("duplicate-signal", DuplicateSignal(count=2), offset=0.5),),
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
            stream(
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
        streams=(stream("upgrade-rejected"),),
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
                **meeting_fields(*STANDARD),
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
                **meeting_fields(*STANDARD),
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
)
