"""Happy paths: the default media and every media type, in each layout, with no fault:
the baseline every other scenario's trace departs from."""

from __future__ import annotations

from rtms_proto import Layout

from .builders import ALL_MEDIA, ALL_PARAMS, stream
from .model import ClientSettings, Scenario, trace_lines

HAPPY_PATHS: tuple[Scenario, ...] = (
    Scenario(
        name="happy-split",
        description="Audio and transcript on their own sockets; the meeting ends at 1.3 s.",
        streams=(stream("happy-split"),),
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
        name="happy-unified",
        description="Audio and transcript on one 'all' socket.",
        streams=(stream("happy-unified"),),
        client=ClientSettings(layout=Layout.UNIFIED),
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
            all: ChatReceived x1 bytes=178 users=16778240 sha=3b148999e4cf
            all: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            all: closed all#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="every-media-split",
        description="All five media types, each on its own socket, with their events.",
        streams=(stream("every-media-split"),),
        client=ClientSettings(media=ALL_MEDIA, params=ALL_PARAMS),
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
            chat: ChatReceived x2 bytes=192 users=16778240,16780288 sha=32df9b8d0e08
            chat: closed chat#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
    Scenario(
        name="every-media-unified",
        description="All five media types on one 'all' socket.",
        streams=(stream("every-media-unified"),),
        client=ClientSettings(media=ALL_MEDIA, params=ALL_PARAMS, layout=Layout.UNIFIED),
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
            all: MediaConnected all#1 ALL audio(RAW_AUDIO,SR_16K,MONO,L16,AUDIO_MIXED_STREAM,400) \
                video(RAW_VIDEO,JPG,HD,VIDEO_SINGLE_ACTIVE_STREAM,5) \
                deskshare(RAW_VIDEO,H264,FHD,5) transcript(TEXT,-,True) chat(TEXT)
            all: AudioReceived x1 bytes=12800 ts=+0..+0 users=0 sha=894e9f100ab4
            all: TranscriptReceived x1 bytes=15 ts=+0..+0 users=16778240 sha=bdfbf8b58818
            all: ChatReceived x1 bytes=6 users=16780288 sha=d19f42bf86bd
            all: AudioReceived x1 bytes=12800 ts=+400..+400 users=0 sha=508eca2b62e0
            all: VideoReceived x1 bytes=3802 ts=+800..+800 users=16779264 sha=67eff1c76cca
            all: DeskshareReceived x1 bytes=8190 ts=+800..+800 users=16779264 sha=e42a486711c0
            all: VideoReceived x1 bytes=3802 ts=+1000..+1000 users=16779264 sha=d93a1f423f9e
            all: DeskshareReceived x1 bytes=11 ts=+1000..+1000 users=16779264 sha=7b798e3f40e9
            all: TranscriptReceived x1 bytes=19 ts=+600..+600 users=16779264 sha=c1c5aa12850f
            all: ChatReceived x1 bytes=190 users=16778240 sha=a5b0fac9ab5f
            all: AudioReceived x1 bytes=12800 ts=+800..+800 users=0 sha=27c3f9906793
            all: closed all#1
            end: SessionEnded stream_terminated stop_reason=MEETING_ENDED
        """
        ),
    ),
)
